#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimMetric:
 *
 * The metric families each process measures in its own memory (what happens
 * in this process: its HTTP requests, its store transactions, the requests its
 * agents ran). State shared by every process (counts by status, totals) comes
 * from the database instead, see qsim_store_get_metrics(). Label values are
 * always from a fixed set (a route template, a start mode, a status), never a
 * uuid or a message.
 */
typedef enum {
	QSIM_METRIC_QUEUE_WAIT,        /* histogram: submit -> claim */
	QSIM_METRIC_FIRST_BYTE,        /* histogram by start_mode: submit -> first stdout byte */
	QSIM_METRIC_READY,             /* histogram by start_mode: VM start -> guest ready */
	QSIM_METRIC_REQUEST_DURATION,  /* histogram by status: submit -> final status */
	QSIM_METRIC_STORE_TRANSACTION, /* histogram by kind (read, write): begin -> end */
	QSIM_METRIC_HTTP_DURATION,     /* histogram by route: request -> response finished */
	QSIM_METRIC_HTTP_REQUESTS,     /* counter by route, method and code class */
	QSIM_METRIC_COUNT,
} QsimMetric;

/* The bucket bounds of every qsim histogram, in seconds: 10 ms to 10 min */
const gdouble *qsim_metrics_get_buckets(guint *n_bounds);

void qsim_metrics_observe(QsimMetric metric, gdouble value, const gchar *label1,
                          const gchar *label2, const gchar *label3);

void qsim_metrics_touch(QsimMetric metric, const gchar *label1, const gchar *label2,
                        const gchar *label3);

void qsim_metrics_write(GString *out);

gboolean qsim_metrics_get_histogram(QsimMetric metric, const gchar *label1, const gchar *label2,
                                    const gchar *label3, guint64 *out_count, gdouble *out_sum);

void qsim_metrics_reset(void);

G_END_DECLS
