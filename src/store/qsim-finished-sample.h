#pragma once

#include <glib.h>

#include "store/qsim-status.h"

G_BEGIN_DECLS

/**
 * QsimFinishedSample:
 *
 * One recently finished request as the dashboard's charts see it
 * (qsim_store_list_finished_since()); times are unix ms, 0 when unset.
 * @first_output_at is the first stdout or stderr chunk's time: with
 * @created_at it gives the first-byte latency a user waits for.
 */
typedef struct {
	QsimStatus status;
	gint64 created_at;
	gint64 started_at;
	gint64 finished_at;
	gint64 first_output_at;
} QsimFinishedSample;

G_END_DECLS
