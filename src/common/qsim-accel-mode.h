#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimAccelMode:
 *
 * The ACCEL setting, globally or in one VM's `.conf`. A VM whose `.conf` does not set it
 * inherits the global value (%QSIM_ACCEL_MODE_INHERIT).
 */
typedef enum {
	QSIM_ACCEL_MODE_INHERIT, /* only in a VM config: use the global ACCEL */
	QSIM_ACCEL_MODE_AUTO,    /* KVM only where a probe proved that it runs a guest */
	QSIM_ACCEL_MODE_KVM,     /* always KVM; a VM that cannot run fails and names KVM */
	QSIM_ACCEL_MODE_TCG,     /* always software emulation */
} QsimAccelMode;

gboolean qsim_accel_mode_from_string(const gchar *text, QsimAccelMode *out);
const gchar *qsim_accel_mode_to_string(QsimAccelMode mode);

G_END_DECLS
