#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "store/qsim-stats-rows.h"

struct _QsimLatencySample {
	GArray *queue; /* gint64: created_at -> started_at */
	GArray *run;   /* gint64: started_at -> finished_at */
	/* (element-type GArray of gint64), indexed by QsimStartMode */
	GPtrArray *by_mode;
};

/*
 * One row of request_counts: counts by status and by start mode, kept by
 * triggers in the writing transaction (schema v4), where a GROUP BY over
 * requests was O(rows) and stalled the main loop at a million rows.
 */
void
qsim_stats_add_count(QsimStats *stats, const gchar *dimension, const gchar *value, gint64 n)
{
	/* a negative count would be a trigger bug: never show it as 2^64 */
	guint64 count = (guint64)MAX(n, 0);

	if (g_strcmp0(dimension, "status") == 0) {
		QsimStatus status;

		if (!qsim_status_from_string(value, &status))
			return; /* seeded from the CHECKed names */
		stats->counts[status] = count;
		stats->total += count;
	} else {
		QsimStartMode mode = QSIM_START_MODE_NONE;

		/* 'none' is not a mode name and stays NONE */
		qsim_start_mode_from_string(value, &mode);
		stats->start_counts[mode] += count;
	}
}

QsimLatencySample *
qsim_latency_sample_new(void)
{
	QsimLatencySample *self = g_new0(QsimLatencySample, 1);

	self->queue = g_array_new(FALSE, FALSE, sizeof(gint64));
	self->run = g_array_new(FALSE, FALSE, sizeof(gint64));
	self->by_mode = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++)
		g_ptr_array_add(self->by_mode, g_array_new(FALSE, FALSE, sizeof(gint64)));
	return self;
}

void
qsim_latency_sample_free(QsimLatencySample *self)
{
	if (self == NULL)
		return;
	g_array_unref(self->queue);
	g_array_unref(self->run);
	g_ptr_array_unref(self->by_mode);
	g_free(self);
}

/* One finished request; @start_mode is nullable (then NONE) */
void
qsim_latency_sample_add(QsimLatencySample *self, gint64 created_at, gboolean has_started,
                        gint64 started_at, gint64 finished_at, const gchar *start_mode)
{
	QsimStartMode mode = QSIM_START_MODE_NONE;
	gint64 d;

	/* a request cancelled before it started has no queue or run time */
	if (!has_started)
		return;
	/* clamp: clocks of different agent hosts may disagree slightly */
	d = MAX(started_at - created_at, 0);
	g_array_append_val(self->queue, d);
	qsim_start_mode_from_string(start_mode, &mode);
	g_array_append_val((GArray *)g_ptr_array_index(self->by_mode, mode), d);
	d = MAX(finished_at - started_at, 0);
	g_array_append_val(self->run, d);
}

static gint
compare_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Sorts the sample in place and sets the latency fields of @stats */
void
qsim_latency_sample_apply(QsimLatencySample *self, QsimStats *stats)
{
	GArray *queue = self->queue;
	GArray *run = self->run;

	if (queue->len > 0) {
		g_array_sort(queue, compare_int64);
		g_array_sort(run, compare_int64);
		stats->has_queue_latency = TRUE;
		stats->queue_p50_ms = qsim_stats_percentile((gint64 *)queue->data, queue->len, 50);
		stats->queue_p95_ms = qsim_stats_percentile((gint64 *)queue->data, queue->len, 95);
		stats->has_run_latency = TRUE;
		stats->run_p50_ms = qsim_stats_percentile((gint64 *)run->data, run->len, 50);
		stats->run_p95_ms = qsim_stats_percentile((gint64 *)run->data, run->len, 95);
	}
	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++) {
		GArray *sample = g_ptr_array_index(self->by_mode, m);

		if (sample->len == 0)
			continue;
		g_array_sort(sample, compare_int64);
		stats->has_start_latency[m] = TRUE;
		stats->start_p50_ms[m] =
		    qsim_stats_percentile((gint64 *)sample->data, sample->len, 50);
	}
}

/* The request_counts half of /stats, and @slots as the caps count them */
void
qsim_store_metrics_set_queue(QsimStoreMetrics *m, const QsimStats *stats, guint slots)
{
	memcpy(m->status_counts, stats->counts, sizeof m->status_counts);
	m->active_vms = slots;
	m->active_agents = stats->active_agents;
	m->has_oldest_pending = stats->has_oldest_pending;
	m->oldest_pending_age_ms = stats->oldest_pending_age_ms;
}
