#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QSIM_ERROR (qsim_error_quark())

/**
 * QsimError:
 *
 * The one error domain of qsim. Errors from GIO, SQLite, libssh and QEMU are
 * converted into it at the boundary where they are first seen; only `api/`
 * maps these codes to HTTP statuses.
 */
typedef enum {
	QSIM_ERROR_INTERNAL,     /* a bug or an unexpected state: never user input */
	QSIM_ERROR_INVALID,      /* bad input: config, VM config, request, argument */
	QSIM_ERROR_NOT_FOUND,    /* no such request, VM, image or file */
	QSIM_ERROR_CONFLICT,     /* an illegal state transition, or a resource in use */
	QSIM_ERROR_AMBIGUOUS,    /* a UUID prefix that matches more than one request */
	QSIM_ERROR_BUSY,         /* try again later: locked database, no free slot */
	QSIM_ERROR_TIMED_OUT,    /* a deadline passed */
	QSIM_ERROR_CANCELLED,    /* the operation was cancelled */
	QSIM_ERROR_QMP,          /* QEMU's monitor answered an error or broke */
	QSIM_ERROR_VM,           /* QEMU failed to start or died */
	QSIM_ERROR_GUEST,        /* SSH into the guest or a command in it failed */
	QSIM_ERROR_STORE,        /* the database failed */
	QSIM_ERROR_UNAUTHORIZED, /* missing or wrong API token */
	QSIM_ERROR_IO,           /* a host file or socket failed */
} QsimError;

GQuark qsim_error_quark(void);

const gchar *qsim_error_code_to_string(gint code);

void qsim_error_convert(GError **error);

G_END_DECLS
