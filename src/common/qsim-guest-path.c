#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"

/* Components of @rel (no leading '/') are non-empty, not . or .., and the text
 * is UTF-8 without control characters. */
static gboolean
check_components(const gchar *what, const gchar *text, const gchar *rel, GError **error)
{
	if (!g_utf8_validate(text, -1, NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s is not valid UTF-8", what);
		return FALSE;
	}
	for (const gchar *p = text; *p != '\0'; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s '%s' has a control character", what, text);
			return FALSE;
		}
	}
	for (const gchar *p = rel;;) {
		const gchar *end = strchr(p, '/');
		gsize len = end != NULL ? (gsize)(end - p) : strlen(p);

		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.')) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s '%s' has an empty, '.' or '..' component", what, text);
			return FALSE;
		}
		if (end == NULL)
			return TRUE;
		p = end + 1;
	}
}

/**
 * qsim_guest_path_validate:
 * @path: (nullable): a guest path or glob
 *
 * Returns: %TRUE when @path is absolute and clean; else %FALSE with INVALID
 */
gboolean
qsim_guest_path_validate(const gchar *path, GError **error)
{
	if (path == NULL || path[0] != '/' || path[1] == '\0') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "guest path '%s' must be absolute and not '/'",
		            path != NULL ? path : "");
		return FALSE;
	}
	if (strlen(path) > QSIM_GUEST_PATH_MAX) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "a guest path has at most %d bytes", QSIM_GUEST_PATH_MAX);
		return FALSE;
	}
	return check_components("guest path", path, path + 1, error);
}

/**
 * qsim_guest_path_validate_list:
 * @paths: (nullable) (array zero-terminated=1): guest paths or globs
 *
 * Returns: %TRUE when every path is valid and there are at most
 *   %QSIM_GUEST_PATH_MAX_PATTERNS of them
 */
gboolean
qsim_guest_path_validate_list(const gchar *const *paths, GError **error)
{
	guint n = paths != NULL ? g_strv_length((gchar **)paths) : 0;

	if (n > QSIM_GUEST_PATH_MAX_PATTERNS) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "at most %d artifact paths per request, got %u",
		            QSIM_GUEST_PATH_MAX_PATTERNS, n);
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		if (!qsim_guest_path_validate(paths[i], error))
			return FALSE;
	}
	return TRUE;
}

/**
 * qsim_artifact_name_validate:
 * @name: (nullable): an artifact name, e.g. "out/report.xml"
 *
 * Returns: %TRUE when @name stays inside its request's directory
 */
gboolean
qsim_artifact_name_validate(const gchar *name, GError **error)
{
	if (name == NULL || name[0] == '\0' || name[0] == '/') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "artifact name '%s' must be a non-empty relative path",
		            name != NULL ? name : "");
		return FALSE;
	}
	if (strlen(name) > QSIM_ARTIFACT_NAME_MAX) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "an artifact name has at most %d bytes", QSIM_ARTIFACT_NAME_MAX);
		return FALSE;
	}
	return check_components("artifact name", name, name, error);
}

/* Returns: whether @component has glob characters (fnmatch would treat it as a pattern) */
gboolean
qsim_guest_path_has_glob(const gchar *component)
{
	return strpbrk(component, "*?[") != NULL;
}
