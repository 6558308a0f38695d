#pragma once

#include <glib-object.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

/* A pass every minute; between its batches a short pause lets the main loop serve others */
#define QSIM_RETENTION_DEFAULT_INTERVAL_MS 60000
#define QSIM_RETENTION_DEFAULT_PAUSE_MS 50
/* pages (4 KiB) given back to the file system per incremental vacuum step */
#define QSIM_RETENTION_RECLAIM_PAGES 1024

#define QSIM_TYPE_RETENTION (qsim_retention_get_type())
G_DECLARE_FINAL_TYPE(QsimRetention, qsim_retention, QSIM, RETENTION, GObject)

QsimRetention *qsim_retention_new(QsimStore *store, gint64 retention_ms);
void qsim_retention_set_timing(QsimRetention *self, guint interval_ms, guint pause_ms, guint batch);
void qsim_retention_start(QsimRetention *self);
void qsim_retention_stop(QsimRetention *self);
guint qsim_retention_get_n_passes(QsimRetention *self);
guint qsim_retention_get_n_batches(QsimRetention *self);
guint64 qsim_retention_get_n_purged(QsimRetention *self);

G_END_DECLS
