#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-units.h"

/**
 * qsim_duration_parse:
 * @text: `0`, or a whole number with a unit: `s`, `m`, `h`, `d` or `w`
 *   (`90m`, `12h`, `30d`); blanks around it are ignored
 * @out_ms: (out): the duration in milliseconds
 *
 * A bare number other than 0 is refused: `RETENTION=30` could mean seconds
 * or days, and guessing wrong deletes data.
 *
 * Returns: %TRUE, or %FALSE with an INVALID error
 */
gboolean
qsim_duration_parse(const gchar *text, gint64 *out_ms, GError **error)
{
	static const struct {
		gchar unit;
		gint64 ms;
	} units[] = {{'s', 1000},
	             {'m', 60 * 1000},
	             {'h', 3600 * 1000},
	             {'d', 24 * 3600 * 1000},
	             {'w', 7 * 24 * 3600 * 1000}};
	g_autofree gchar *s = g_strstrip(g_strdup(text != NULL ? text : ""));
	gsize len = strlen(s);
	guint64 n = 0;

	if (g_strcmp0(s, "0") == 0) {
		*out_ms = 0;
		return TRUE;
	}
	if (len >= 2) {
		g_autofree gchar *digits = g_strndup(s, len - 1);
		gchar unit = g_ascii_tolower(s[len - 1]);

		for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
			if (unit != units[i].unit)
				continue;
			if (!g_ascii_string_to_unsigned(
			        digits, 10, 0, QSIM_DURATION_MAX_MS / units[i].ms, &n, NULL))
				break;
			*out_ms = (gint64)n * units[i].ms;
			return TRUE;
		}
	}
	g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
	                    "not a duration (use a whole number with s, m, h, d or w, e.g. 30d, "
	                    "or 0)");
	return FALSE;
}

/**
 * qsim_size_parse:
 * @text: bytes, or a whole number with `K`, `M`, `G` or `T` (powers of 1024,
 *   optionally followed by `iB` or `B`): `512M`, `1GiB`, `0`
 * @out_bytes: (out): the size in bytes
 *
 * Returns: %TRUE, or %FALSE with an INVALID error
 */
gboolean
qsim_size_parse(const gchar *text, guint64 *out_bytes, GError **error)
{
	static const gchar suffixes[] = "KMGT";
	g_autofree gchar *s = g_strstrip(g_strdup(text != NULL ? text : ""));
	gchar *end = s + strlen(s);
	guint shift = 0;
	guint64 n = 0;

	if (end - s >= 3 && g_ascii_strcasecmp(end - 2, "iB") == 0)
		end -= 2;
	else if (end - s >= 2 && (end[-1] == 'B' || end[-1] == 'b') &&
	         strchr(suffixes, g_ascii_toupper(end[-2])) != NULL)
		end -= 1;
	if (end > s && strchr(suffixes, g_ascii_toupper(end[-1])) != NULL) {
		shift = 10 * (guint)(strchr(suffixes, g_ascii_toupper(end[-1])) - suffixes + 1);
		end -= 1;
	}
	*end = '\0';
	if (s[0] == '\0' || !g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64 >> shift, &n, NULL)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "not a size (use bytes or a whole number with K, M, G or T, "
		                    "e.g. 512M)");
		return FALSE;
	}
	*out_bytes = n << shift;
	return TRUE;
}
