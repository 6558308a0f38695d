#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <math.h>

#include "common/qsim-metrics-text.h"

/* HELP text escapes only backslash and newline; label values also the quote */
static void
append_escaped(GString *out, const gchar *text, gboolean quote)
{
	for (const gchar *p = text; *p != '\0'; p++) {
		if (*p == '\\')
			g_string_append(out, "\\\\");
		else if (*p == '\n')
			g_string_append(out, "\\n");
		else if (quote && *p == '"')
			g_string_append(out, "\\\"");
		else
			g_string_append_c(out, *p);
	}
}

/**
 * qsim_metrics_text_append_label_value:
 * @value: any text; a label value is never free text in qsim, but escaping it
 *   keeps the output valid whatever a caller passes
 */
void
qsim_metrics_text_append_label_value(GString *out, const gchar *value)
{
	g_string_append_c(out, '"');
	append_escaped(out, value != NULL ? value : "", TRUE);
	g_string_append_c(out, '"');
}

/**
 * qsim_metrics_text_append_value:
 *
 * Integral values print without an exponent or a fraction (counts stay exact
 * and readable); others in the shortest form that reads back the same.
 */
void
qsim_metrics_text_append_value(GString *out, gdouble value)
{
	gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

	if (isnan(value)) {
		g_string_append(out, "NaN");
	} else if (isinf(value)) {
		g_string_append(out, value > 0 ? "+Inf" : "-Inf");
	} else if (value == floor(value) && fabs(value) < 9007199254740992.0) {
		g_string_append_printf(out, "%" G_GINT64_FORMAT, (gint64)value);
	} else {
		/* %.15g reads back the same for most values; %.17g always does */
		g_ascii_formatd(buf, sizeof buf, "%.15g", value);
		if (g_ascii_strtod(buf, NULL) != value)
			g_ascii_formatd(buf, sizeof buf, "%.17g", value);
		g_string_append(out, buf);
	}
}

/**
 * qsim_metrics_text_family:
 * @type: "counter", "gauge" or "histogram"
 *
 * Writes the `# HELP` and `# TYPE` lines that open a metric family.
 */
void
qsim_metrics_text_family(GString *out, const gchar *name, const gchar *type, const gchar *help)
{
	g_string_append_printf(out, "# HELP %s ", name);
	append_escaped(out, help, FALSE);
	g_string_append_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void
append_labels(GString *out, const QsimMetricsLabels *labels, const gchar *le)
{
	guint n = labels != NULL ? labels->n : 0;

	if (n == 0 && le == NULL)
		return;
	g_string_append_c(out, '{');
	for (guint i = 0; i < n; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		g_string_append(out, labels->names[i]);
		g_string_append_c(out, '=');
		qsim_metrics_text_append_label_value(out, labels->values[i]);
	}
	if (le != NULL) {
		if (n > 0)
			g_string_append_c(out, ',');
		g_string_append(out, "le=");
		qsim_metrics_text_append_label_value(out, le);
	}
	g_string_append_c(out, '}');
}

/**
 * qsim_metrics_text_sample:
 * @labels: (nullable): the series' labels
 *
 * Writes one `name{labels} value` line.
 */
void
qsim_metrics_text_sample(GString *out, const gchar *name, const QsimMetricsLabels *labels,
                         gdouble value)
{
	g_string_append(out, name);
	append_labels(out, labels, NULL);
	g_string_append_c(out, ' ');
	qsim_metrics_text_append_value(out, value);
	g_string_append_c(out, '\n');
}

/**
 * qsim_metrics_text_histogram:
 * @bounds: (array length=n_bounds): the buckets' upper bounds, ascending
 * @counts: (array): n_bounds + 1 per-bucket counts (not cumulative), the
 *   last one above every bound
 * @sum: the sum of every observed value
 *
 * Writes one histogram series: cumulative `_bucket` lines, the `+Inf`
 * bucket, `_sum` and `_count`.
 */
void
qsim_metrics_text_histogram(GString *out, const gchar *name, const QsimMetricsLabels *labels,
                            const gdouble *bounds, guint n_bounds, const guint64 *counts,
                            gdouble sum)
{
	g_autofree gchar *bucket = g_strconcat(name, "_bucket", NULL);
	g_autofree gchar *sum_name = g_strconcat(name, "_sum", NULL);
	g_autofree gchar *count_name = g_strconcat(name, "_count", NULL);
	guint64 cumulative = 0;

	for (guint i = 0; i <= n_bounds; i++) {
		g_autoptr(GString) le = g_string_new(NULL);

		cumulative += counts[i];
		if (i < n_bounds)
			qsim_metrics_text_append_value(le, bounds[i]);
		else
			g_string_append(le, "+Inf");
		g_string_append(out, bucket);
		append_labels(out, labels, le->str);
		g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", cumulative);
	}
	qsim_metrics_text_sample(out, sum_name, labels, sum);
	g_string_append(out, count_name);
	append_labels(out, labels, NULL);
	g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", cumulative);
}
