#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-start-mode.h"

static const gchar *const start_mode_names[QSIM_START_MODE_COUNT] = {
    [QSIM_START_MODE_NONE] = NULL,
    [QSIM_START_MODE_COLD] = "cold",
    [QSIM_START_MODE_SNAPSHOT] = "snapshot",
    [QSIM_START_MODE_WARM] = "warm",
};

/**
 * qsim_start_mode_to_string:
 *
 * Returns: (transfer none) (nullable): the stored and wire name of @mode
 */
const gchar *
qsim_start_mode_to_string(QsimStartMode mode)
{
	if ((guint)mode >= QSIM_START_MODE_COUNT)
		return NULL;
	return start_mode_names[mode];
}

gboolean
qsim_start_mode_from_string(const gchar *str, QsimStartMode *out)
{
	if (str == NULL)
		return FALSE;
	for (guint i = QSIM_START_MODE_COLD; i < QSIM_START_MODE_COUNT; i++) {
		if (g_strcmp0(str, start_mode_names[i]) == 0) {
			if (out != NULL)
				*out = (QsimStartMode)i;
			return TRUE;
		}
	}
	return FALSE;
}
