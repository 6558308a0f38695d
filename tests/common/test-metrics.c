#include "config.h"

#include <math.h>
#include <string.h>

#include "common/qsim-metrics-text.h"
#include "common/qsim-metrics.h"

static gchar *
label_value(const gchar *value)
{
	GString *s = g_string_new(NULL);

	qsim_metrics_text_append_label_value(s, value);
	return g_string_free(s, FALSE);
}

static void
test_label_escaping(void)
{
	const struct {
		const gchar *in;
		const gchar *out;
	} cases[] = {
	    {"", "\"\""},
	    {"cold", "\"cold\""},
	    {"a\"b", "\"a\\\"b\""},
	    {"back\\slash", "\"back\\\\slash\""},
	    {"two\nlines", "\"two\\nlines\""},
	    {"\\\"\n", "\"\\\\\\\"\\n\""},
	    /* UTF-8 passes as is; the format is UTF-8 */
	    {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *got = label_value(cases[i].in);
		g_assert_cmpstr(got, ==, cases[i].out);
	}
}

static void
test_help_escaping(void)
{
	g_autoptr(GString) s = g_string_new(NULL);

	/* HELP escapes backslash and newline but not quotes */
	qsim_metrics_text_family(s, "qsim_x_total", "counter", "a \"q\" \\ b\nc");
	g_assert_cmpstr(s->str, ==,
	                "# HELP qsim_x_total a \"q\" \\\\ b\\nc\n# TYPE qsim_x_total counter\n");
}

static void
test_sample(void)
{
	g_autoptr(GString) s = g_string_new(NULL);
	const gchar *names[] = {"status", "reason"};
	const gchar *values[] = {"failed", "exit_nonzero"};
	QsimMetricsLabels labels = {names, values, 2};

	qsim_metrics_text_sample(s, "qsim_requests_finished_total", &labels, 3);
	qsim_metrics_text_sample(s, "qsim_up", NULL, 1);
	qsim_metrics_text_sample(s, "qsim_db_bytes", NULL, 12345678901.0);
	qsim_metrics_text_sample(s, "qsim_cpu_seconds_total", NULL, 0.25);
	g_assert_cmpstr(
	    s->str, ==,
	    "qsim_requests_finished_total{status=\"failed\",reason=\"exit_nonzero\"} 3\n"
	    "qsim_up 1\n"
	    "qsim_db_bytes 12345678901\n"
	    "qsim_cpu_seconds_total 0.25\n");
}

static void
test_values(void)
{
	const struct {
		gdouble in;
		const gchar *out;
	} cases[] = {
	    {0, "0"},          {-3, "-3"},         {1.5, "1.5"},        {0.01, "0.01"},
	    {1e300, "1e+300"}, {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GString) s = g_string_new(NULL);

		qsim_metrics_text_append_value(s, cases[i].in);
		g_assert_cmpstr(s->str, ==, cases[i].out);
	}
}

static void
test_histogram_text(void)
{
	g_autoptr(GString) s = g_string_new(NULL);
	const gdouble bounds[] = {0.1, 1, 2.5};
	/* per bucket, not cumulative; the last is above every bound */
	const guint64 counts[] = {1, 0, 2, 3};
	const gchar *names[] = {"start_mode"};
	const gchar *values[] = {"warm"};
	QsimMetricsLabels labels = {names, values, 1};

	qsim_metrics_text_histogram(s, "qsim_h_seconds", &labels, bounds, 3, counts, 12.75);
	g_assert_cmpstr(s->str, ==,
	                "qsim_h_seconds_bucket{start_mode=\"warm\",le=\"0.1\"} 1\n"
	                "qsim_h_seconds_bucket{start_mode=\"warm\",le=\"1\"} 1\n"
	                "qsim_h_seconds_bucket{start_mode=\"warm\",le=\"2.5\"} 3\n"
	                "qsim_h_seconds_bucket{start_mode=\"warm\",le=\"+Inf\"} 6\n"
	                "qsim_h_seconds_sum{start_mode=\"warm\"} 12.75\n"
	                "qsim_h_seconds_count{start_mode=\"warm\"} 6\n");

	g_string_truncate(s, 0);
	qsim_metrics_text_histogram(s, "qsim_q_seconds", NULL, bounds, 3, counts, 0.5);
	g_assert_nonnull(strstr(s->str, "qsim_q_seconds_bucket{le=\"+Inf\"} 6\n"));
	g_assert_nonnull(strstr(s->str, "qsim_q_seconds_sum 0.5\nqsim_q_seconds_count 6\n"));
}

static void
test_registry(void)
{
	g_autoptr(GString) s = g_string_new(NULL);
	guint n_bounds = 0;
	const gdouble *b = qsim_metrics_get_buckets(&n_bounds);
	guint64 count = 0;
	gdouble sum = 0;

	/* 10 ms to 10 min */
	g_assert_cmpfloat(b[0], ==, 0.01);
	g_assert_cmpfloat(b[n_bounds - 1], ==, 600);
	for (guint i = 1; i < n_bounds; i++)
		g_assert_cmpfloat(b[i - 1], <, b[i]);

	qsim_metrics_reset();
	/* an observation exactly on a bound goes into that bucket (le is <=) */
	qsim_metrics_observe(QSIM_METRIC_FIRST_BYTE, 0.01, "cold", NULL, NULL);
	qsim_metrics_observe(QSIM_METRIC_FIRST_BYTE, 0.3, "cold", NULL, NULL);
	qsim_metrics_observe(QSIM_METRIC_FIRST_BYTE, 4000, "cold", NULL, NULL);
	qsim_metrics_observe(QSIM_METRIC_FIRST_BYTE, -1, "warm", NULL, NULL);
	qsim_metrics_observe(QSIM_METRIC_HTTP_REQUESTS, 1, "/requests/{uuid}", "GET", "2xx");
	qsim_metrics_observe(QSIM_METRIC_HTTP_REQUESTS, 1, "/requests/{uuid}", "GET", "2xx");
	qsim_metrics_touch(QSIM_METRIC_READY, "snapshot", NULL, NULL);
	g_assert_true(
	    qsim_metrics_get_histogram(QSIM_METRIC_FIRST_BYTE, "cold", NULL, NULL, &count, &sum));
	g_assert_cmpuint(count, ==, 3);
	g_assert_cmpfloat_with_epsilon(sum, 4000.31, 1e-9);
	g_assert_false(qsim_metrics_get_histogram(QSIM_METRIC_FIRST_BYTE, "snapshot", NULL, NULL,
	                                          &count, &sum));

	qsim_metrics_write(s);
	g_assert_nonnull(strstr(s->str, "# TYPE qsim_first_stdout_byte_seconds histogram\n"));
	g_assert_nonnull(strstr(
	    s->str, "qsim_first_stdout_byte_seconds_bucket{start_mode=\"cold\",le=\"0.01\"} 1\n"));
	g_assert_nonnull(strstr(
	    s->str, "qsim_first_stdout_byte_seconds_bucket{start_mode=\"cold\",le=\"0.5\"} 2\n"));
	g_assert_nonnull(strstr(
	    s->str, "qsim_first_stdout_byte_seconds_bucket{start_mode=\"cold\",le=\"600\"} 2\n"));
	g_assert_nonnull(strstr(
	    s->str, "qsim_first_stdout_byte_seconds_bucket{start_mode=\"cold\",le=\"+Inf\"} 3\n"));
	g_assert_nonnull(
	    strstr(s->str, "qsim_first_stdout_byte_seconds_count{start_mode=\"cold\"} 3\n"));
	/* a negative duration (the wall clock stepped back) counts as 0 */
	g_assert_nonnull(
	    strstr(s->str, "qsim_first_stdout_byte_seconds_sum{start_mode=\"warm\"} 0\n"));
	g_assert_nonnull(strstr(s->str, "qsim_http_requests_total{route=\"/requests/"
	                                "{uuid}\",method=\"GET\",code=\"2xx\"} 2\n"));
	g_assert_nonnull(
	    strstr(s->str, "qsim_vm_ready_seconds_count{start_mode=\"snapshot\"} 0\n"));
	/* an unlabelled histogram is exported at zero before its first observation */
	g_assert_nonnull(strstr(s->str, "qsim_queue_wait_seconds_count 0\n"));
	/* series of a family in a stable (sorted) order */
	g_assert_true(strstr(s->str, "start_mode=\"cold\"") <
	              strstr(s->str, "start_mode=\"warm\""));
	qsim_metrics_reset();
}

static gpointer
observe_thread(gpointer data)
{
	for (guint i = 0; i < 10000; i++)
		qsim_metrics_observe(QSIM_METRIC_STORE_TRANSACTION, 0.001, "write", NULL, NULL);
	return NULL;
}

static void
test_threads(void)
{
	GThread *threads[4];
	guint64 count = 0;
	gdouble sum = 0;

	qsim_metrics_reset();
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		threads[i] = g_thread_new("observe", observe_thread, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		g_thread_join(threads[i]);
	g_assert_true(qsim_metrics_get_histogram(QSIM_METRIC_STORE_TRANSACTION, "write", NULL, NULL,
	                                         &count, &sum));
	g_assert_cmpuint(count, ==, 40000);
	qsim_metrics_reset();
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/metrics/text/label-escaping", test_label_escaping);
	g_test_add_func("/metrics/text/help-escaping", test_help_escaping);
	g_test_add_func("/metrics/text/sample", test_sample);
	g_test_add_func("/metrics/text/values", test_values);
	g_test_add_func("/metrics/text/histogram", test_histogram_text);
	g_test_add_func("/metrics/registry", test_registry);
	g_test_add_func("/metrics/threads", test_threads);
	return g_test_run();
}
