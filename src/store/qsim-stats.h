#pragma once

#include <glib.h>

#include "store/qsim-start-mode.h"
#include "store/qsim-status.h"

G_BEGIN_DECLS

#define QSIM_STATS_SAMPLE_SIZE 1000

/**
 * QsimStats:
 *
 * A snapshot of the queue. Latencies are in milliseconds, computed with the
 * nearest-rank method over the QSIM_STATS_SAMPLE_SIZE most recently finished
 * requests; has_* is FALSE when there was no sample.
 */
typedef struct {
	guint64 counts[QSIM_STATUS_COUNT]; /* indexed by QsimStatus */
	guint64 total;
	guint active_vms;    /* requests holding a live lease (a VM slot) */
	guint active_agents; /* distinct agents holding a live lease */
	gboolean has_oldest_pending;
	gint64 oldest_pending_age_ms;
	gboolean has_queue_latency; /* created_at -> started_at */
	gint64 queue_p50_ms;
	gint64 queue_p95_ms;
	gboolean has_run_latency; /* started_at -> finished_at */
	gint64 run_p50_ms;
	gint64 run_p95_ms;
	/* by QsimStartMode (NONE = not started): how many requests started that way,
	 * and their median created_at -> started_at over the same sample */
	guint64 start_counts[QSIM_START_MODE_COUNT];
	gboolean has_start_latency[QSIM_START_MODE_COUNT];
	gint64 start_p50_ms[QSIM_START_MODE_COUNT];
} QsimStats;

/* Returns: (transfer full): zeroed stats */
QsimStats *qsim_stats_new(void);

void qsim_stats_free(QsimStats *self);

/**
 * qsim_stats_percentile:
 * @sorted: ascending values
 * @n: how many, > 0
 * @p: percentile, 0 < p <= 100
 *
 * Returns: the nearest-rank percentile: sorted[ceil(p/100*n) - 1]
 */
gint64 qsim_stats_percentile(const gint64 *sorted, gsize n, guint p);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimStats, qsim_stats_free)

G_END_DECLS
