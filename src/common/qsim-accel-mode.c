#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include "common/qsim-accel-mode.h"

static const gchar *const mode_names[] = {
    [QSIM_ACCEL_MODE_INHERIT] = "inherit",
    [QSIM_ACCEL_MODE_AUTO] = "auto",
    [QSIM_ACCEL_MODE_KVM] = "kvm",
    [QSIM_ACCEL_MODE_TCG] = "tcg",
};

/**
 * qsim_accel_mode_from_string:
 * @text: "auto", "kvm" or "tcg", in any case, without blanks
 * @out: (out): the mode
 *
 * "inherit" is not accepted: it is what an unset key means, never a value a user writes.
 *
 * Returns: %TRUE when @text names a mode
 */
gboolean
qsim_accel_mode_from_string(const gchar *text, QsimAccelMode *out)
{
	if (text == NULL)
		return FALSE;
	for (guint i = QSIM_ACCEL_MODE_AUTO; i < G_N_ELEMENTS(mode_names); i++) {
		if (g_ascii_strcasecmp(text, mode_names[i]) == 0) {
			*out = (QsimAccelMode)i;
			return TRUE;
		}
	}
	return FALSE;
}

const gchar *
qsim_accel_mode_to_string(QsimAccelMode mode)
{
	if ((guint)mode >= G_N_ELEMENTS(mode_names))
		return "unknown";
	return mode_names[mode];
}
