#define G_LOG_DOMAIN "qsim-bench"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent-test-util.h"
#include "agent/qsim-job.h"
#include "store/qsim-log-entry.h"
#include "vm/qsim-template.h"

/*
 * Fast start through the agent's job (issue 6): the median over N requests per mode
 * (default 10) of submit (the request row's created_at) → the first stdout byte stored
 * in the database (its log entry's timestamp), cold against snapshot, alternating, in
 * one run, with a real database and the real tiny guest. The template is built first.
 * Prints figures; asserts nothing. Usage: qsim-fast-start-job-bench [N]
 */

static void
wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

static gboolean
have_result(gpointer data)
{
	return *(GAsyncResult **)data != NULL;
}

/* Returns: seconds from submit to the first stored stdout byte, or -1 */
static gdouble
one_request(AgentFixture *fx, QsimConfig *config, gboolean *restored)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) created =
	    qsim_store_create_request(fx->store, "tiny", "echo hi", 120, &error);
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(QsimJob) job = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	g_autoptr(QsimRequest) final = NULL;
	QsimStatus status;

	if (created == NULL)
		return -1;
	claimed = qsim_store_claim_next(fx->store, "bench", 60000, 0, &error);
	if (claimed == NULL)
		return -1;
	job = qsim_job_new(config, fx->store, "bench", claimed);
	qsim_job_run_async(job, wait_cb, &res);
	if (!agent_test_wait(have_result, &res, 300) ||
	    !qsim_job_run_finish(job, res, &status, NULL))
		return -1;
	final = agent_test_get(fx, created->uuid);
	if (final->status != QSIM_STATUS_DONE)
		return -1;
	logs = agent_test_logs(fx, created->uuid);
	*restored = FALSE;
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		gsize len = 0;
		const gchar *data = g_bytes_get_data(e->output, &len);

		if (e->log_type == QSIM_LOG_SYSTEM && len >= 22 &&
		    g_strstr_len(data, len, "restored from snapshot") != NULL)
			*restored = TRUE;
	}
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);

		if (e->log_type == QSIM_LOG_STDOUT)
			return (e->timestamp_ms - final->created_at) / 1000.0;
	}
	return -1;
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;
	return x < y ? -1 : x > y;
}

static gdouble
median(GArray *a)
{
	if (a->len == 0)
		return 0;
	g_array_sort(a, cmp_double);
	if (a->len % 2 == 1)
		return g_array_index(a, gdouble, a->len / 2);
	return (g_array_index(a, gdouble, a->len / 2 - 1) + g_array_index(a, gdouble, a->len / 2)) /
	       2;
}

int
main(int argc, char **argv)
{
	AgentFixture fx = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimConfig) cold_config = NULL;
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GArray) cold = g_array_new(FALSE, FALSE, sizeof(gdouble));
	g_autoptr(GArray) snap = g_array_new(FALSE, FALSE, sizeof(gdouble));
	g_autofree gchar *state = NULL;
	g_autofree gchar *empty = NULL;
	g_autofree gchar *setting = NULL;
	g_autofree gchar *empty_setting = NULL;
	gint runs = argc > 1 ? atoi(argv[1]) : 10;
	gint failures = 0;
	gint64 t0;
	gdouble mc, ms;

	if (runs < 1) {
		g_printerr("usage: qsim-fast-start-job-bench [N]\n");
		return 2;
	}
	agent_fixture_init(&fx);
	state = g_build_filename(fx.dir, "state", NULL);
	empty = g_build_filename(fx.dir, "no-templates", NULL);
	setting = g_strdup_printf("QSIM_STATE_DIR=%s", state);
	empty_setting = g_strdup_printf("QSIM_STATE_DIR=%s", empty);
	/* two configs on one database: one sees no template (cold), one sees it */
	agent_fixture_config(&fx, empty_setting, NULL);
	cold_config = g_object_ref(fx.config);
	agent_fixture_config(&fx, setting, NULL);

	tpl = qsim_template_new(state, "tiny");
	t0 = g_get_monotonic_time();
	qsim_template_build_async(tpl,
	                          qsim_vm_config_load(fx.images_dir, fx.config_dir, "tiny", NULL),
	                          fx.run_dir, NULL, wait_cb, &res);
	if (!agent_test_wait(have_result, &res, 300) ||
	    !qsim_template_build_finish(tpl, res, &error)) {
		g_printerr("template build failed: %s\n",
		           error != NULL ? error->message : "timeout");
		agent_fixture_clear(&fx);
		return 1;
	}
	printf("template build: %.2f s, %.1f MiB\n", (g_get_monotonic_time() - t0) / 1e6,
	       qsim_template_get_size_bytes(tpl) / 1048576.0);
	for (gint i = 0; i < runs; i++) {
		for (gint mode = 0; mode < 2; mode++) {
			gboolean restored = FALSE;
			gdouble s =
			    one_request(&fx, mode == 1 ? fx.config : cold_config, &restored);

			if (s < 0 || restored != (mode == 1)) {
				failures++;
				printf("request %2d %-8s FAILED\n", i + 1,
				       mode == 1 ? "snapshot" : "cold");
				continue;
			}
			g_array_append_val(mode == 1 ? snap : cold, s);
			printf("request %2d %-8s %.3f s\n", i + 1, mode == 1 ? "snapshot" : "cold",
			       s);
			fflush(stdout);
		}
	}
	mc = median(cold);
	ms = median(snap);
	printf("median submit -> first stdout byte stored, %d requests each: cold %.3f s, "
	       "snapshot %.3f s, speedup %.2fx, failures %d\n",
	       runs, mc, ms, ms > 0 ? mc / ms : 0.0, failures);
	qsim_template_remove(tpl, NULL);
	agent_fixture_clear(&fx);
	return failures == 0 ? 0 : 1;
}
