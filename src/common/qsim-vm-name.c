#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-vm-name.h"

/**
 * qsim_vm_name_validate:
 * @name: (nullable): a VM name from any source (API, CLI, file name)
 * @error: return location for a %QSIM_ERROR_INVALID error
 *
 * The one check for `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`. Every path built
 * from a VM name goes through here first, so `/` and a leading `.` (hence
 * `..`) can never reach the file system.
 *
 * Returns: %TRUE if @name is a valid VM name
 */
gboolean
qsim_vm_name_validate(const gchar *name, GError **error)
{
	gsize len = name != NULL ? strlen(name) : 0;
	g_autofree gchar *esc = NULL;

	if (len == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "invalid VM name '': must not be empty");
		return FALSE;
	}
	if (len > QSIM_VM_NAME_MAX_LEN) {
		/* don't echo an arbitrarily long string into logs and replies */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "invalid VM name: %" G_GSIZE_FORMAT " characters long, the limit is %d",
		            len, QSIM_VM_NAME_MAX_LEN);
		return FALSE;
	}
	esc = g_strescape(name, NULL);
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)name[i];

		if (g_ascii_isalnum(c))
			continue;
		if (c >= 0x80 || c < 0x20 || c == 0x7f) {
			g_set_error(
			    error, QSIM_ERROR, QSIM_ERROR_INVALID,
			    "invalid VM name '%s': only ASCII letters, digits, '.', '_' and "
			    "'-' are allowed",
			    esc);
			return FALSE;
		}
		if (i == 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "invalid VM name '%s': must start with a letter or digit", esc);
			return FALSE;
		}
		if (c != '.' && c != '_' && c != '-') {
			g_set_error(
			    error, QSIM_ERROR, QSIM_ERROR_INVALID,
			    "invalid VM name '%s': '%c' is not allowed (use letters, digits, "
			    "'.', '_' and '-')",
			    esc, c);
			return FALSE;
		}
	}
	return TRUE;
}
