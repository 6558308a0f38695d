/*
 * Metrics from the database (schema v6): the end reason class of a request,
 * the monotonic request_totals kept by triggers, and qsim_store_get_metrics().
 */
#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-hosts.h"
#include "store/qsim-store.h"

#define LEASE_MS 30000

/* The texts the agents really write (qsim-job.c, recovery, shutdown) and their class */
static void
test_classify(void)
{
	const struct {
		QsimStatus status;
		gboolean has_exit_code;
		gint exit_code;
		const gchar *error;
		const gchar *want;
	} cases[] = {
	    {QSIM_STATUS_DONE, TRUE, 0, NULL, "success"},
	    {QSIM_STATUS_FAILED, TRUE, 3, "exit code 3", "exit_nonzero"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "timed out after 300 s", "timeout"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "guest did not become ready within 6 s", "boot_timeout"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "guest did not become ready: ssh refused",
	     "boot_failed"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "qemu exited: killed by signal 9", "qemu_exit"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "qemu failed to start: no such file", "qemu_start"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "command killed by SIGKILL", "signal"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "lost the guest: connection reset", "guest_lost"},
	    {QSIM_STATUS_FAILED, FALSE, 0,
	     "output exceeded OUTPUT_LIMIT=1M (OUTPUT_LIMIT_ACTION=fail)", "output_limit"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "lease lost", "agent_lost"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "agent lost", "agent_lost"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "agent shut down", "shutdown"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "VM vanished cannot be used: no config", "vm_config"},
	    {QSIM_STATUS_FAILED, FALSE, 0, "cannot create run dir /x: EACCES", "other"},
	    {QSIM_STATUS_FAILED, FALSE, 0, NULL, "other"},
	    {QSIM_STATUS_CANCELLED, TRUE, 0, "cancelled by user", "cancelled"},
	    /* free text can never become a label value */
	    {QSIM_STATUS_FAILED, FALSE, 0, "timeout\"} 1\nqsim_evil 1", "other"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		QsimEndReason r = qsim_end_reason_classify(cases[i].status, cases[i].has_exit_code,
		                                           cases[i].exit_code, cases[i].error);
		g_assert_cmpstr(qsim_end_reason_to_string(r), ==, cases[i].want);
	}
	for (guint r = 0; r < QSIM_END_REASON_COUNT; r++) {
		const gchar *name = qsim_end_reason_to_string((QsimEndReason)r);
		/* label-safe: lowercase letters and underscores */
		for (const gchar *p = name; *p != '\0'; p++)
			g_assert_true(g_ascii_islower(*p) || *p == '_');
	}
}

static gchar *
create(QsimStore *store)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(store, "tiny", "true", 60, &error);

	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

static gchar *
claim_and_run(QsimStore *store, const gchar *agent, const gchar *mode)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_claim_next(store, agent, LEASE_MS, 0, &error);

	g_assert_no_error(error);
	g_assert_nonnull(r);
	if (mode != NULL)
		g_assert_true(qsim_store_set_start_mode(store, r->uuid, mode, &error));
	g_assert_true(qsim_store_mark_running(store, r->uuid, agent, &error));
	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

static QsimStoreMetrics *
metrics(QsimStore *store)
{
	g_autoptr(GError) error = NULL;
	QsimStoreMetrics *m = qsim_store_get_metrics(store, &error);

	g_assert_no_error(error);
	g_assert_nonnull(m);
	return m;
}

static guint64
total(QsimStore *store, const gchar *event, const gchar *l1, const gchar *l2)
{
	g_autoptr(QsimStoreMetrics) m = metrics(store);

	return qsim_store_metrics_get_total(m, event, l1, l2);
}

static void
finish(QsimStore *store, const gchar *uuid, QsimStatus final, gboolean has_exit, gint code,
       const gchar *reason)
{
	g_autoptr(GError) error = NULL;
	QsimStatus st;

	g_assert_true(qsim_store_finish_request(store, uuid, "a", final, has_exit, code, reason,
	                                        &st, &error));
	g_assert_no_error(error);
}

static void
test_totals(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *ok = NULL;
	g_autofree gchar *bad = NULL;
	g_autofree gchar *slow = NULL;
	g_autofree gchar *lost = NULL;
	g_autofree gchar *gone = NULL;
	g_autofree gchar *pending = NULL;
	g_autoptr(QsimStoreMetrics) m = NULL;
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	QsimStatus st;

	for (guint i = 0; i < 6; i++)
		g_free(create(fx->store));
	g_assert_cmpuint(total(fx->store, "submitted", "", ""), ==, 6);

	ok = claim_and_run(fx->store, "a", "cold");
	finish(fx->store, ok, QSIM_STATUS_DONE, TRUE, 0, NULL);
	bad = claim_and_run(fx->store, "a", "snapshot");
	finish(fx->store, bad, QSIM_STATUS_FAILED, TRUE, 2, "exit code 2");
	slow = claim_and_run(fx->store, "a", "warm");
	finish(fx->store, slow, QSIM_STATUS_FAILED, FALSE, 0, "timed out after 60 s");
	/* recovered with no retry left: the agent is gone */
	lost = claim_and_run(fx->store, "a", NULL);
	g_assert_true(
	    qsim_store_recover_request(fx->store, lost, "a", FALSE, "agent lost", &st, &error));
	g_assert_no_error(error);
	g_assert_cmpint(st, ==, QSIM_STATUS_FAILED);
	/* a cancel while running, then the agent's own finish: counted once, as cancelled */
	gone = claim_and_run(fx->store, "a", "cold");
	g_clear_pointer(&gone, g_free);
	{
		g_autoptr(QsimRequest) r = NULL;
		g_autoptr(QsimRequest) c = NULL;
		g_autoptr(QsimRequest) only = NULL;

		pending = create(fx->store);
		c = qsim_store_set_status(fx->store, pending, QSIM_STATUS_CANCELLED, &error);
		g_assert_no_error(error);
		only = qsim_store_claim_next(fx->store, "b", LEASE_MS, 0, &error);
		g_assert_no_error(error);
		r = qsim_store_set_status(fx->store, only->uuid, QSIM_STATUS_CANCELLED, &error);
		g_assert_no_error(error);
		g_assert_true(qsim_store_finish_request(fx->store, only->uuid, "b",
		                                        QSIM_STATUS_FAILED, TRUE, 137,
		                                        "exit code 137", &st, &error));
		g_assert_cmpint(st, ==, QSIM_STATUS_CANCELLED);
	}

	m = metrics(fx->store);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "submitted", "", ""), ==, 7);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "finished", "done", "success"), ==, 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "finished", "failed", "exit_nonzero"), ==,
	                 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "finished", "failed", "timeout"), ==, 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "finished", "failed", "agent_lost"), ==,
	                 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "finished", "cancelled", "cancelled"), ==,
	                 2);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "started", "cold", ""), ==, 2);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "started", "snapshot", ""), ==, 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "started", "warm", ""), ==, 1);
	/* the stored class of each ending */
	g_assert_cmpint(store_test_raw_int(fx->path,
	                                   "SELECT COUNT(*) FROM requests"
	                                   " WHERE status = 'failed' AND end_reason IS NULL"),
	                ==, 0);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM requests"
	                                             " WHERE end_reason IS NOT NULL"
	                                             " AND status NOT IN ('done', 'failed',"
	                                             " 'cancelled')"),
	                ==, 0);
	/* gauges: what is left active */
	g_assert_cmpuint(m->status_counts[QSIM_STATUS_RUNNING], ==, 1);
	g_assert_cmpuint(m->status_counts[QSIM_STATUS_DONE], ==, 1);
	g_assert_cmpuint(m->active_vms, ==, 1); /* the running one */
	/* a warm VM holds a slot with no lease: the gauge counts it as the caps do */
	{
		g_autoptr(GError) slot_error = NULL;
		g_autoptr(QsimStoreMetrics) m2 = NULL;
		gint64 slot = 0;

		g_assert_true(qsim_store_claim_slot(fx->store, "node-a:1:0", QSIM_VM_SLOT_WARM,
		                                    "tiny", 0, 0, &slot, &slot_error));
		g_assert_no_error(slot_error);
		g_assert_cmpint(slot, >, 0);
		m2 = metrics(fx->store);
		g_assert_cmpuint(m2->active_vms, ==, 2);
	}
	g_assert_cmpuint(m->db_bytes, >, 0);
	g_assert_cmpuint(m->db_free_bytes, <=, m->db_bytes);

	/* counters never go down: deleting and purging are not events */
	g_assert_true(qsim_store_delete_request(fx->store, ok, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(total(fx->store, "finished", "done", "success"), ==, 1);
	g_assert_cmpuint(total(fx->store, "submitted", "", ""), ==, 7);

	/* output bytes by log type */
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)"hello", 5));
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)"!\n", 2));
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDERR, 0, (const guint8 *)"e", 1));
	g_assert_cmpint(qsim_store_append_logs(fx->store, bad, chunks, &error), >, 0);
	g_assert_no_error(error);
	g_assert_cmpuint(total(fx->store, "output_bytes", "stdout", ""), ==, 7);
	g_assert_cmpuint(total(fx->store, "output_bytes", "stderr", ""), ==, 1);
}

static void
test_template_builds(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const gchar *host = qsim_store_get_local_host();
	gboolean claimed = FALSE;
	g_autoptr(QsimStoreMetrics) m = NULL;

	for (guint i = 0; i < 2; i++) {
		g_autoptr(QsimTemplateRecord) r = NULL;

		g_assert_true(
		    qsim_store_claim_prepare(fx->store, "tiny", host, &claimed, NULL, &error));
		g_assert_no_error(error);
		g_assert_true(claimed);
		r = qsim_store_get_template(fx->store, "tiny", host, &error);
		g_assert_no_error(error);
		r->state = i == 0 ? QSIM_TEMPLATE_RECORD_FAILED : QSIM_TEMPLATE_RECORD_READY;
		g_assert_true(qsim_store_upsert_template(fx->store, r, &error));
		g_assert_no_error(error);
	}
	m = metrics(fx->store);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "template_build", "failed", ""), ==, 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "template_build", "ready", ""), ==, 1);
	g_assert_cmpuint(m->templates[QSIM_TEMPLATE_RECORD_READY], ==, 1);
	g_assert_cmpuint(m->templates[QSIM_TEMPLATE_RECORD_BUILDING], ==, 0);
}

/* a v5 file with rows: the totals start from them (except output bytes) */
static void
test_migrate_from_v5(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) again = NULL;
	g_autoptr(QsimStoreMetrics) m = NULL;

	if (store_test_skip_on_pg(fx, "SQLite schema v5 files; PostgreSQL starts at v7"))
		return;
	for (guint i = 0; i < 3; i++)
		g_free(create(fx->store));
	{
		g_autofree gchar *done = claim_and_run(fx->store, "a", "warm");
		finish(fx->store, done, QSIM_STATUS_DONE, TRUE, 0, NULL);
	}
	g_clear_object(&fx->store);
	store_test_raw_exec(
	    fx->path, "DROP TRIGGER request_totals_insert;"
	              "DROP TRIGGER request_totals_finished;"
	              "DROP TRIGGER request_totals_started;"
	              "DROP TRIGGER request_totals_output;"
	              "DROP TRIGGER request_totals_template;"
	              "DROP TABLE request_totals;"
	              "ALTER TABLE requests DROP COLUMN end_reason;"
	              /* and what v7 added */
	              "DROP TRIGGER request_events_insert; DROP TRIGGER request_events_status;"
	              "DROP TRIGGER request_events_delete; DROP TABLE request_events;"
	              "DROP TRIGGER requests_fts_insert; DROP TRIGGER requests_fts_delete;"
	              "DROP TABLE requests_fts;"
	              "DROP TABLE vm_slots;"
	              "DROP TABLE host_vms;"
	              "DROP TABLE host_agents;"
	              "DROP TABLE hosts;"
	              "DROP TABLE upload_chunks; DROP TABLE uploads;"
	              "DROP TABLE artifacts;"
	              "ALTER TABLE requests DROP COLUMN artifact_paths;"
	              "PRAGMA user_version = 5;");
	again = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_store_get_schema_version(again), ==,
	                 qsim_store_get_current_schema_version());
	m = metrics(again);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "submitted", "", ""), ==, 3);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "finished", "done", "success"), ==, 1);
	g_assert_cmpuint(qsim_store_metrics_get_total(m, "started", "warm", ""), ==, 1);
	g_free(create(again));
	g_assert_cmpuint(total(again, "submitted", "", ""), ==, 4);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	g_test_add_func("/qsim/store/totals/classify", test_classify);
	ADD("/qsim/store/totals/events", test_totals);
	ADD("/qsim/store/totals/template-builds", test_template_builds);
	ADD("/qsim/store/totals/migrate-from-v5", test_migrate_from_v5);
	return g_test_run();
}
