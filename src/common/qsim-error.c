#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <gio/gio.h>

#include "qsim-error.h"

G_DEFINE_QUARK(qsim - error - quark, qsim_error)

/**
 * qsim_error_code_to_string:
 * @code: a #QsimError
 *
 * Returns: (transfer none): a stable snake_case name for @code, used as the
 * `code` of JSON errors and in logs.
 */
const gchar *
qsim_error_code_to_string(gint code)
{
	switch ((QsimError)code) {
	case QSIM_ERROR_INTERNAL:
		return "internal_error";
	case QSIM_ERROR_INVALID:
		return "invalid";
	case QSIM_ERROR_NOT_FOUND:
		return "not_found";
	case QSIM_ERROR_CONFLICT:
		return "conflict";
	case QSIM_ERROR_AMBIGUOUS:
		return "ambiguous";
	case QSIM_ERROR_BUSY:
		return "busy";
	case QSIM_ERROR_TIMED_OUT:
		return "timed_out";
	case QSIM_ERROR_CANCELLED:
		return "cancelled";
	case QSIM_ERROR_QMP:
		return "qmp_error";
	case QSIM_ERROR_VM:
		return "vm_error";
	case QSIM_ERROR_GUEST:
		return "guest_error";
	case QSIM_ERROR_STORE:
		return "store_error";
	case QSIM_ERROR_UNAUTHORIZED:
		return "unauthorized";
	case QSIM_ERROR_IO:
		return "io_error";
	}
	return "internal_error";
}

static const struct {
	gint io_code;
	QsimError code;
} io_error_map[] = {
    {G_IO_ERROR_NOT_FOUND, QSIM_ERROR_NOT_FOUND},
    {G_IO_ERROR_EXISTS, QSIM_ERROR_CONFLICT},
    {G_IO_ERROR_INVALID_ARGUMENT, QSIM_ERROR_INVALID},
    {G_IO_ERROR_INVALID_DATA, QSIM_ERROR_INVALID},
    {G_IO_ERROR_TIMED_OUT, QSIM_ERROR_TIMED_OUT},
    {G_IO_ERROR_CANCELLED, QSIM_ERROR_CANCELLED},
    {G_IO_ERROR_BUSY, QSIM_ERROR_BUSY},
    {G_IO_ERROR_WOULD_BLOCK, QSIM_ERROR_BUSY},
    {G_IO_ERROR_PERMISSION_DENIED, QSIM_ERROR_IO},
    {G_IO_ERROR_CONNECTION_REFUSED, QSIM_ERROR_IO},
    {G_IO_ERROR_BROKEN_PIPE, QSIM_ERROR_IO},
    {G_IO_ERROR_CONNECTION_CLOSED, QSIM_ERROR_IO},
};

/**
 * qsim_error_convert:
 * @error: (inout) (nullable): an error from GIO, GLib's file or key-file
 * functions, or already in %QSIM_ERROR
 *
 * Rewrites @error into the %QSIM_ERROR domain in place, keeping its message.
 */
void
qsim_error_convert(GError **error)
{
	GError *e;

	if (error == NULL || *error == NULL)
		return;
	e = *error;
	if (e->domain == QSIM_ERROR)
		return;
	if (e->domain == G_IO_ERROR) {
		for (guint i = 0; i < G_N_ELEMENTS(io_error_map); i++) {
			if (e->code == io_error_map[i].io_code) {
				e->domain = QSIM_ERROR;
				e->code = io_error_map[i].code;
				return;
			}
		}
		e->domain = QSIM_ERROR;
		e->code = QSIM_ERROR_IO;
		return;
	}
	if (e->domain == G_FILE_ERROR) {
		e->code = e->code == G_FILE_ERROR_NOENT ? QSIM_ERROR_NOT_FOUND : QSIM_ERROR_IO;
		e->domain = QSIM_ERROR;
		return;
	}
	if (e->domain == G_KEY_FILE_ERROR || e->domain == G_SHELL_ERROR ||
	    e->domain == G_OPTION_ERROR || e->domain == G_CONVERT_ERROR) {
		e->domain = QSIM_ERROR;
		e->code = QSIM_ERROR_INVALID;
		return;
	}
	e->domain = QSIM_ERROR;
	e->code = QSIM_ERROR_INTERNAL;
}
