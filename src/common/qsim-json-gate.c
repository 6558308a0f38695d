#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-json-gate.h"

/*
 * A strict RFC 8259 validator that runs before json-glib sees a document.
 * json-glib recurses once per nesting level (100,000 `[` overflow the stack)
 * and is lenient: it takes comments, single quotes, hex and octal numbers and
 * trailing data, and cuts strings at an escaped NUL. This gate is one pass
 * over the bytes with an explicit, bounded stack, so a hostile document costs
 * O(n) time and O(1) memory whatever its shape.
 */

typedef enum {
	EXPECT_VALUE,          /* the root, or after ':' or an array's ',' */
	EXPECT_VALUE_OR_CLOSE, /* just after '[' */
	EXPECT_KEY,            /* after an object's ',' */
	EXPECT_KEY_OR_CLOSE,   /* just after '{' */
	EXPECT_COLON,
	EXPECT_COMMA_OR_CLOSE,
	EXPECT_END, /* the root value is complete: only whitespace may follow */
} GateState;

typedef struct {
	const guchar *p;
	gsize len;
	gsize pos;
	GError **error;
} Gate;

static gboolean fail(Gate *g, gsize at, const gchar *format, ...) G_GNUC_PRINTF(3, 4);

static gboolean
fail(Gate *g, gsize at, const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *what = NULL;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(g->error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s at byte %" G_GSIZE_FORMAT, what,
	            at);
	return FALSE;
}

/* Names the offending byte without ever echoing a non-printable or non-ASCII one. */
static gboolean
fail_unexpected(Gate *g, gsize at)
{
	guchar c = g->p[at];

	if (c == '\'')
		return fail(g, at, "single-quoted strings are not JSON");
	if (c == '/')
		return fail(g, at, "comments are not JSON");
	if (c >= 0x80 && g_utf8_get_char_validated((const gchar *)g->p + at,
	                                           (gssize)(g->len - at)) >= 0x80000000U)
		return fail(g, at, "invalid UTF-8");
	if (c > 0x20 && c < 0x7f)
		return fail(g, at, "unexpected character '%c'", c);
	return fail(g, at, "unexpected byte 0x%02x", c);
}

static gint
hex_value(guchar c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the four hex digits of a \u escape whose backslash is at @at. */
static gboolean
read_u_escape(Gate *g, gsize at, guint *out)
{
	guint v = 0;

	if (at + 6 > g->len || g->p[at] != '\\' || g->p[at + 1] != 'u')
		return FALSE;
	for (gsize i = at + 2; i < at + 6; i++) {
		gint h = hex_value(g->p[i]);
		if (h < 0)
			return FALSE;
		v = v << 4 | (guint)h;
	}
	*out = v;
	return TRUE;
}

/* @g->pos is on the opening quote; on success it is just past the closing one. */
static gboolean
scan_string(Gate *g)
{
	gsize start = g->pos;
	gsize i = g->pos + 1;

	while (i < g->len) {
		guchar c = g->p[i];
		guint unit = 0;

		if (c == '"') {
			g->pos = i + 1;
			return TRUE;
		}
		if (c < 0x20)
			return fail(g, i, "unescaped control character 0x%02x in a string", c);
		if (c >= 0x80) {
			gunichar u = g_utf8_get_char_validated((const gchar *)g->p + i,
			                                       (gssize)(g->len - i));
			if (u >= 0x80000000U)
				return fail(g, i, "invalid UTF-8 in a string");
			i += (gsize)g_unichar_to_utf8(u, NULL);
			continue;
		}
		if (c != '\\') {
			i++;
			continue;
		}
		if (i + 1 >= g->len)
			break;
		if (strchr("\"\\/bfnrt", g->p[i + 1]) != NULL && g->p[i + 1] != '\0') {
			i += 2;
			continue;
		}
		if (g->p[i + 1] != 'u')
			return fail(g, i, "invalid escape in a string");
		if (!read_u_escape(g, i, &unit))
			return fail(g, i, "\\u must be followed by four hexadecimal digits");
		/* json-glib would end the string there and silently drop the rest */
		if (unit == 0)
			return fail(g, i, "\\u0000 (NUL) is not allowed in strings");
		if (unit >= 0xDC00 && unit <= 0xDFFF)
			return fail(g, i, "unpaired low surrogate \\u%04X", unit);
		if (unit >= 0xD800 && unit <= 0xDBFF) {
			guint low = 0;

			if (!read_u_escape(g, i + 6, &low) || low < 0xDC00 || low > 0xDFFF)
				return fail(g, i, "unpaired high surrogate \\u%04X", unit);
			i += 12;
			continue;
		}
		i += 6;
	}
	return fail(g, start, "unterminated string");
}

/* @g->pos is on '-' or a digit; on success it is just past the number. */
static gboolean
scan_number(Gate *g)
{
	gsize i = g->pos;

	if (g->p[i] == '-')
		i++;
	if (i >= g->len || !g_ascii_isdigit(g->p[i]))
		return fail(g, i, "expected a digit");
	if (g->p[i] == '0') {
		i++;
		if (i < g->len && (g->p[i] == 'x' || g->p[i] == 'X'))
			return fail(g, i - 1, "hexadecimal numbers are not JSON");
		if (i < g->len && g_ascii_isdigit(g->p[i]))
			return fail(g, i - 1, "numbers must not have leading zeros");
	} else {
		while (i < g->len && g_ascii_isdigit(g->p[i]))
			i++;
	}
	if (i < g->len && g->p[i] == '.') {
		i++;
		if (i >= g->len || !g_ascii_isdigit(g->p[i]))
			return fail(g, i, "expected a digit after the decimal point");
		while (i < g->len && g_ascii_isdigit(g->p[i]))
			i++;
	}
	if (i < g->len && (g->p[i] == 'e' || g->p[i] == 'E')) {
		i++;
		if (i < g->len && (g->p[i] == '+' || g->p[i] == '-'))
			i++;
		if (i >= g->len || !g_ascii_isdigit(g->p[i]))
			return fail(g, i, "expected a digit in the exponent");
		while (i < g->len && g_ascii_isdigit(g->p[i]))
			i++;
	}
	g->pos = i;
	return TRUE;
}

static gboolean
scan_literal(Gate *g, const gchar *word)
{
	gsize n = strlen(word);

	if (g->len - g->pos < n || memcmp(g->p + g->pos, word, n) != 0)
		return fail_unexpected(g, g->pos);
	g->pos += n;
	return TRUE;
}

/**
 * qsim_json_gate_check:
 * @data: (array length=len): the bytes of a document, not necessarily NUL-terminated
 * @len: the number of bytes
 * @error: return location for a %QSIM_ERROR_INVALID error
 *
 * Accepts exactly one RFC 8259 JSON value, surrounded by optional whitespace,
 * in valid UTF-8, nested at most %QSIM_JSON_GATE_MAX_DEPTH deep, whose strings
 * hold no escaped NUL and no unpaired surrogate escape. The error message
 * names what is wrong and its byte offset, and never quotes the input.
 *
 * Returns: %TRUE when json-glib may safely parse @data
 */
gboolean
qsim_json_gate_check(const gchar *data, gsize len, GError **error)
{
	/* the open containers: '[' or '{' */
	guchar stack[QSIM_JSON_GATE_MAX_DEPTH];
	guint depth = 0;
	GateState state = EXPECT_VALUE;
	Gate g = {(const guchar *)data, len, 0, error};

	if (data == NULL)
		g.len = 0;
	for (;;) {
		guchar c;

		while (g.pos < g.len && (g.p[g.pos] == ' ' || g.p[g.pos] == '\t' ||
		                         g.p[g.pos] == '\n' || g.p[g.pos] == '\r'))
			g.pos++;
		if (g.pos >= g.len) {
			if (state == EXPECT_END)
				return TRUE;
			return fail(&g, g.pos, g.len == 0 ? "empty document" : "unexpected end");
		}
		c = g.p[g.pos];
		switch (state) {
		case EXPECT_END:
			return fail(&g, g.pos, "unexpected data after the JSON value");
		case EXPECT_COLON:
			if (c != ':')
				return fail(&g, g.pos, "expected ':' after an object key");
			g.pos++;
			state = EXPECT_VALUE;
			continue;
		case EXPECT_KEY:
		case EXPECT_KEY_OR_CLOSE:
			if (c == '}' && state == EXPECT_KEY_OR_CLOSE)
				break;
			if (c == '}')
				return fail(&g, g.pos, "trailing comma");
			if (c != '"')
				return c == '\'' || c == '/'
				           ? fail_unexpected(&g, g.pos)
				           : fail(&g, g.pos, "expected a string as object key");
			if (!scan_string(&g))
				return FALSE;
			state = EXPECT_COLON;
			continue;
		case EXPECT_COMMA_OR_CLOSE:
			if (c == ',') {
				g.pos++;
				state = stack[depth - 1] == '[' ? EXPECT_VALUE : EXPECT_KEY;
				continue;
			}
			if (c == ']' || c == '}')
				break;
			return fail_unexpected(&g, g.pos);
		case EXPECT_VALUE:
		case EXPECT_VALUE_OR_CLOSE:
			if (c == ']' && state == EXPECT_VALUE_OR_CLOSE)
				break;
			if (c == ']' && depth > 0 && stack[depth - 1] == '[')
				return fail(&g, g.pos, "trailing comma");
			if (c == '[' || c == '{') {
				if (depth == QSIM_JSON_GATE_MAX_DEPTH)
					return fail(&g, g.pos, "nested deeper than %d levels",
					            QSIM_JSON_GATE_MAX_DEPTH);
				stack[depth++] = c;
				g.pos++;
				state = c == '[' ? EXPECT_VALUE_OR_CLOSE : EXPECT_KEY_OR_CLOSE;
				continue;
			}
			if (c == '"') {
				if (!scan_string(&g))
					return FALSE;
			} else if (c == '-' || g_ascii_isdigit(c)) {
				if (!scan_number(&g))
					return FALSE;
			} else if (c == 't') {
				if (!scan_literal(&g, "true"))
					return FALSE;
			} else if (c == 'f') {
				if (!scan_literal(&g, "false"))
					return FALSE;
			} else if (c == 'n') {
				if (!scan_literal(&g, "null"))
					return FALSE;
			} else {
				return fail_unexpected(&g, g.pos);
			}
			state = depth == 0 ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
			continue;
		}
		/* a closing bracket, already allowed by the state: it must match the opener */
		if ((c == ']') != (stack[depth - 1] == '['))
			return fail(&g, g.pos, "mismatched '%c'", c);
		depth--;
		g.pos++;
		state = depth == 0 ? EXPECT_END : EXPECT_COMMA_OR_CLOSE;
	}
}
