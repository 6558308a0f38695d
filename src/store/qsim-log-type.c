#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-log-type.h"

static const gchar *const log_type_names[QSIM_LOG_TYPE_COUNT] = {
    [QSIM_LOG_BOOT] = "boot",     [QSIM_LOG_COMMAND] = "command", [QSIM_LOG_STDOUT] = "stdout",
    [QSIM_LOG_STDERR] = "stderr", [QSIM_LOG_SYSTEM] = "system",
};

/**
 * qsim_log_type_to_string:
 *
 * Returns: (transfer none): the stored and wire name of @log_type
 */
const gchar *
qsim_log_type_to_string(QsimLogType log_type)
{
	if ((guint)log_type >= QSIM_LOG_TYPE_COUNT)
		return "unknown";
	return log_type_names[log_type];
}

gboolean
qsim_log_type_from_string(const gchar *str, QsimLogType *out)
{
	if (str == NULL)
		return FALSE;
	for (guint i = 0; i < QSIM_LOG_TYPE_COUNT; i++) {
		if (g_strcmp0(str, log_type_names[i]) == 0) {
			if (out != NULL)
				*out = (QsimLogType)i;
			return TRUE;
		}
	}
	return FALSE;
}
