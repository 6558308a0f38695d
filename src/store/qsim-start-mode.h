#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimStartMode:
 *
 * How a request's VM started: none (not started yet; NULL in the database), cold
 * (booted from the base image), snapshot (restored from a template), warm (taken
 * from the warm pool of paused restored VMs). Stored as its name.
 */
typedef enum {
	QSIM_START_MODE_NONE,
	QSIM_START_MODE_COLD,
	QSIM_START_MODE_SNAPSHOT,
	QSIM_START_MODE_WARM,
} QsimStartMode;

#define QSIM_START_MODE_COUNT (QSIM_START_MODE_WARM + 1)

/* Returns: (transfer none) (nullable): "cold", "snapshot", "warm"; NULL for none */
const gchar *qsim_start_mode_to_string(QsimStartMode mode);

/* Returns: TRUE and sets @out when @str is "cold", "snapshot" or "warm" exactly */
gboolean qsim_start_mode_from_string(const gchar *str, QsimStartMode *out);

G_END_DECLS
