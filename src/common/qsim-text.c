#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-text.h"

/* U+2026 HORIZONTAL ELLIPSIS */
#define ELLIPSIS "\xe2\x80\xa6"
/* U+FFFD REPLACEMENT CHARACTER */
#define REPLACEMENT "\xef\xbf\xbd"

/* Characters that would let echoed input rewrite what a reader sees: C0/C1
 * controls and DEL, line and paragraph separators, and format characters
 * such as the bidi overrides. */
static gboolean
needs_escape(gunichar u)
{
	switch (g_unichar_type(u)) {
	case G_UNICODE_CONTROL:
	case G_UNICODE_FORMAT:
	case G_UNICODE_LINE_SEPARATOR:
	case G_UNICODE_PARAGRAPH_SEPARATOR:
		return TRUE;
	default:
		return FALSE;
	}
}

/* Appends the text standing for one input character; returns how many characters that is. */
static gsize
append_unit(GString *out, gunichar u)
{
	gsize before = out->len;

	switch (u) {
	case '\n':
		g_string_append(out, "\\n");
		break;
	case '\r':
		g_string_append(out, "\\r");
		break;
	case '\t':
		g_string_append(out, "\\t");
		break;
	default:
		if (u < 0x80 && needs_escape(u))
			g_string_append_printf(out, "\\x%02x", u);
		else if (needs_escape(u))
			g_string_append_printf(out, "\\u%04x", u);
		else if (u == 0xFFFD)
			g_string_append(out, REPLACEMENT);
		else
			g_string_append_unichar(out, u);
	}
	/* escapes are ASCII: only a kept character can be more than one byte long */
	return u >= 0x80 && !needs_escape(u) ? 1 : out->len - before;
}

/**
 * qsim_utf8_safe_dup:
 * @bytes: (nullable) (array length=len): any bytes, e.g. a URL path or a body
 *   sent by a client
 * @len: the length of @bytes, or -1 when it is NUL-terminated
 * @max_chars: the most characters the result may hold, ellipsis included;
 *   0 for no limit
 *
 * The one way qsim turns untrusted bytes into text for an error message or a
 * log line. Each invalid UTF-8 byte becomes U+FFFD, control and format
 * characters become visible escapes (`\n`, `\x1b`, `\u202e`), and a result
 * longer than @max_chars is cut between two characters (never inside one, nor
 * inside an escape) and ends with `…`.
 *
 * Returns: (transfer full): valid UTF-8 without control characters
 */
gchar *
qsim_utf8_safe_dup(const gchar *bytes, gssize len, gsize max_chars)
{
	g_autoptr(GString) out = g_string_new(NULL);
	gsize n = 0;
	gsize chars = 0;
	/* the length of @out when it last had room left for the ellipsis */
	gsize cut = 0;

	if (bytes == NULL)
		return g_strdup("");
	n = len < 0 ? strlen(bytes) : (gsize)len;
	for (gsize i = 0; i < n;) {
		guchar c = (guchar)bytes[i];
		gunichar u;
		gsize step = 1;

		if (c < 0x80) {
			u = c;
		} else {
			u = g_utf8_get_char_validated(bytes + i, (gssize)(n - i));
			if (u >= 0x80000000U)
				u = 0xFFFD;
			else
				step = (gsize)g_unichar_to_utf8(u, NULL);
		}
		if (max_chars > 0 && chars < max_chars)
			cut = out->len;
		chars += append_unit(out, u);
		i += step;
		if (max_chars > 0 && chars > max_chars) {
			g_string_truncate(out, cut);
			g_string_append(out, ELLIPSIS);
			break;
		}
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}
