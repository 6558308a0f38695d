#pragma once

#include <glib.h>

#include "store/qsim-status.h"
#include "store/qsim-template-record.h"

G_BEGIN_DECLS

/**
 * QsimStoreTotal:
 * @event: "submitted", "finished", "started", "template_build" or "output_bytes"
 * @label1: the status, start mode, build result or log type ("" for submitted)
 * @label2: the end reason of a finished request, else ""
 * @n: the total since the database was created (or upgraded to schema v6)
 *
 * One monotonic counter shared by every process using the database.
 */
typedef struct {
	gchar *event;
	gchar *label1;
	gchar *label2;
	guint64 n;
} QsimStoreTotal;

/**
 * QsimStoreMetrics:
 *
 * What the database says about the whole system, read in one snapshot at a
 * cost that does not grow with the number of requests: counters kept by
 * triggers, live leases through their partial index, the small templates
 * table and two PRAGMAs.
 */
typedef struct {
	guint64 status_counts[QSIM_STATUS_COUNT]; /* indexed by QsimStatus */
	GPtrArray *totals; /* (element-type QsimStoreTotal) by event and labels */
	guint active_vms;  /* live leases: the VM slots in use */
	guint active_agents;
	gboolean has_oldest_pending;
	gint64 oldest_pending_age_ms;
	guint64 templates[QSIM_TEMPLATE_RECORD_STATE_COUNT]; /* every host's */
	guint64 db_bytes;      /* pages in use and free, times the page size */
	guint64 db_free_bytes; /* of which free (reclaimable) pages */
} QsimStoreMetrics;

QsimStoreMetrics *qsim_store_metrics_new(void);

void qsim_store_metrics_free(QsimStoreMetrics *self);

void qsim_store_metrics_add_total(QsimStoreMetrics *self, const gchar *event, const gchar *label1,
                                  const gchar *label2, guint64 n);

guint64 qsim_store_metrics_get_total(const QsimStoreMetrics *self, const gchar *event,
                                     const gchar *label1, const gchar *label2);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimStoreMetrics, qsim_store_metrics_free)

G_END_DECLS
