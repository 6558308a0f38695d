#pragma once

/*
 * Private to src/store/: turns the rows both backends read for /stats and
 * /metrics into QsimStats and QsimStoreMetrics. Pure: the backends keep the SQL
 * and the snapshot, these keep the arithmetic, so the two report alike.
 */

#include <glib.h>

#include "store/qsim-stats.h"
#include "store/qsim-store-metrics.h"

G_BEGIN_DECLS

void qsim_stats_add_count(QsimStats *stats, const gchar *dimension, const gchar *value, gint64 n);

typedef struct _QsimLatencySample QsimLatencySample;

QsimLatencySample *qsim_latency_sample_new(void);
void qsim_latency_sample_add(QsimLatencySample *self, gint64 created_at, gboolean has_started,
                             gint64 started_at, gint64 finished_at, const gchar *start_mode);
void qsim_latency_sample_apply(QsimLatencySample *self, QsimStats *stats);
void qsim_latency_sample_free(QsimLatencySample *self);

void qsim_store_metrics_set_queue(QsimStoreMetrics *m, const QsimStats *stats, guint slots);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimLatencySample, qsim_latency_sample_free)

G_END_DECLS
