#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The Prometheus text exposition format, version 0.0.4 */
#define QSIM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/**
 * QsimMetricsLabels:
 * @names: (array length=n): label names, valid Prometheus names
 * @values: (array length=n): label values, any UTF-8 (escaped on output)
 * @n: how many
 *
 * The labels of one series; %NULL or @n 0 for none.
 */
typedef struct {
	const gchar *const *names;
	const gchar *const *values;
	guint n;
} QsimMetricsLabels;

void qsim_metrics_text_family(GString *out, const gchar *name, const gchar *type,
                              const gchar *help);

void qsim_metrics_text_sample(GString *out, const gchar *name, const QsimMetricsLabels *labels,
                              gdouble value);

void qsim_metrics_text_histogram(GString *out, const gchar *name, const QsimMetricsLabels *labels,
                                 const gdouble *bounds, guint n_bounds, const guint64 *counts,
                                 gdouble sum);

void qsim_metrics_text_append_value(GString *out, gdouble value);

void qsim_metrics_text_append_label_value(GString *out, const gchar *value);

G_END_DECLS
