#define G_LOG_DOMAIN "qsim-bench"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent-test-util.h"
#include "agent/qsim-job.h"
#include "agent/qsim-warm-pool.h"
#include "store/qsim-log-entry.h"
#include "vm/qsim-template.h"

/*
 * Fast start through the agent's job (issue 6): the median over N requests per mode
 * (default 10) of submit (the request row's created_at) → the first stdout byte stored
 * in the database (its log entry's timestamp), cold, snapshot and warm (a parked VM of
 * a QsimWarmPool of size 1), alternating, in one run, with a real database and the real
 * tiny guest. The template is built first. Every request is submitted only once the
 * pool has refilled, so no background restore competes with any mode's request.
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

typedef enum { MODE_COLD, MODE_SNAPSHOT, MODE_WARM, N_MODES } Mode;
static const gchar *const mode_names[N_MODES] = {"cold", "snapshot", "warm"};

/* Returns: seconds from submit to the first stored stdout byte, or -1 */
static gdouble
one_request(AgentFixture *fx, QsimConfig *config, QsimWarmPool *pool, Mode *started)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) created =
	    qsim_store_create_request(fx->store, "tiny", "echo hi", 120, &error);
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(QsimTemplateService) service = NULL;
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
	service = qsim_template_service_new(config, fx->store);
	qsim_job_set_template_service(job, service);
	qsim_job_set_warm_pool(job, pool);
	qsim_job_run_async(job, wait_cb, &res);
	if (!agent_test_wait(have_result, &res, 300) ||
	    !qsim_job_run_finish(job, res, &status, NULL))
		return -1;
	final = agent_test_get(fx, created->uuid);
	if (final->status != QSIM_STATUS_DONE)
		return -1;
	logs = agent_test_logs(fx, created->uuid);
	*started = MODE_COLD;
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		gsize len = 0;
		const gchar *data = g_bytes_get_data(e->output, &len);

		if (e->log_type != QSIM_LOG_SYSTEM)
			continue;
		if (g_strstr_len(data, len, "started from the warm pool") != NULL)
			*started = MODE_WARM;
		else if (g_strstr_len(data, len, "restored from snapshot") != NULL &&
		         *started == MODE_COLD)
			*started = MODE_SNAPSHOT;
	}
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);

		if (e->log_type == QSIM_LOG_STDOUT)
			return (e->timestamp_ms - final->created_at) / 1000.0;
	}
	return -1;
}

static gboolean
conf_append_warm_pool(const gchar *path, GError **error)
{
	g_autofree gchar *text = NULL;
	g_autofree gchar *more = NULL;

	if (!g_file_get_contents(path, &text, NULL, error))
		return FALSE;
	more = g_strconcat(text, "WARM_POOL_SIZE=1\n", NULL);
	return g_file_set_contents(path, more, -1, error);
}

static gboolean
pool_parked(gpointer data)
{
	guint parked = 0;

	qsim_warm_pool_get_counts(QSIM_WARM_POOL(data), "tiny", &parked, NULL);
	return parked > 0;
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
	g_autoptr(QsimConfig) warm_config = NULL;
	g_autoptr(QsimWarmPool) pool = NULL;
	g_autofree gchar *tiny_conf = NULL;
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	GArray *times[N_MODES];
	g_autofree gchar *state = NULL;
	g_autofree gchar *empty = NULL;
	g_autofree gchar *setting = NULL;
	g_autofree gchar *empty_setting = NULL;
	gint runs = argc > 1 ? atoi(argv[1]) : 10;
	gint failures = 0;
	gint64 t0;
	gdouble med[N_MODES];

	if (runs < 1) {
		g_printerr("usage: qsim-fast-start-job-bench [N]\n");
		return 2;
	}
	agent_fixture_init(&fx);
	for (gint m = 0; m < N_MODES; m++)
		times[m] = g_array_new(FALSE, FALSE, sizeof(gdouble));
	/* before the build: the .conf is part of the template's inputs */
	tiny_conf = g_build_filename(fx.config_dir, "tiny.conf", NULL);
	if (!conf_append_warm_pool(tiny_conf, &error)) {
		g_printerr("%s\n", error->message);
		agent_fixture_clear(&fx);
		return 1;
	}
	state = g_build_filename(fx.dir, "state", NULL);
	empty = g_build_filename(fx.dir, "no-templates", NULL);
	setting = g_strdup_printf("QSIM_STATE_DIR=%s", state);
	empty_setting = g_strdup_printf("QSIM_STATE_DIR=%s", empty);
	/* two configs on one database: one sees no template (cold), one sees it */
	agent_fixture_config(&fx, empty_setting, NULL);
	cold_config = g_object_ref(fx.config);
	agent_fixture_config(&fx, setting, "QSIM_WARM_POOL_SIZE=1", NULL);
	warm_config = g_object_ref(fx.config);
	agent_fixture_config(&fx, setting, NULL);

	tpl = qsim_template_new(state, "tiny");
	qsim_template_set_accel(tpl, g_strcmp0(g_getenv("QSIM_BENCH_ACCEL"), "kvm") == 0, NULL, 0);
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
	pool = qsim_warm_pool_new(warm_config, NULL, NULL);
	qsim_warm_pool_start(pool);
	for (gint i = 0; i < runs; i++) {
		for (Mode mode = 0; mode < N_MODES; mode++) {
			QsimConfig *config = mode == MODE_COLD       ? cold_config
			                     : mode == MODE_SNAPSHOT ? fx.config
			                                             : warm_config;
			Mode started = MODE_COLD;
			gdouble s;

			/* a hang guard; the wait is not measured */
			agent_test_wait(pool_parked, pool, 120);
			s = one_request(&fx, config, mode == MODE_WARM ? pool : NULL, &started);
			if (s < 0 || started != mode) {
				failures++;
				printf("request %2d %-8s FAILED\n", i + 1, mode_names[mode]);
				continue;
			}
			g_array_append_val(times[mode], s);
			printf("request %2d %-8s %.3f s\n", i + 1, mode_names[mode], s);
			fflush(stdout);
		}
	}
	for (gint m = 0; m < N_MODES; m++)
		med[m] = median(times[m]);
	printf("median submit -> first stdout byte stored, %d requests each: cold %.3f s, "
	       "snapshot %.3f s (%.2fx), warm %.3f s (%.2fx), failures %d\n",
	       runs, med[MODE_COLD], med[MODE_SNAPSHOT],
	       med[MODE_SNAPSHOT] > 0 ? med[MODE_COLD] / med[MODE_SNAPSHOT] : 0.0, med[MODE_WARM],
	       med[MODE_WARM] > 0 ? med[MODE_COLD] / med[MODE_WARM] : 0.0, failures);
	qsim_warm_pool_clear(pool);
	for (gint m = 0; m < N_MODES; m++)
		g_array_unref(times[m]);
	qsim_template_remove(tpl, NULL);
	agent_fixture_clear(&fx);
	return failures == 0 ? 0 : 1;
}
