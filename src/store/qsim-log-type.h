#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimLogType:
 *
 * The kind of a log chunk; stored as its string name.
 */
typedef enum {
	QSIM_LOG_BOOT,
	QSIM_LOG_COMMAND,
	QSIM_LOG_STDOUT,
	QSIM_LOG_STDERR,
	QSIM_LOG_SYSTEM,
} QsimLogType;

#define QSIM_LOG_TYPE_COUNT (QSIM_LOG_SYSTEM + 1)

/* Returns: (transfer none): "boot", "command", "stdout", "stderr", "system"; "unknown" */
const gchar *qsim_log_type_to_string(QsimLogType log_type);

/* Returns: TRUE and sets @out when @str names a log type exactly (lowercase) */
gboolean qsim_log_type_from_string(const gchar *str, QsimLogType *out);

G_END_DECLS
