/*
 * The request_counts summary (schema v4) behind /stats: it must equal a
 * GROUP BY over requests after every kind of write, from any connection,
 * and after an upgrade from a v3 file that already has rows.
 */
#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

#define LEASE_MS 30000

static const gchar *const mode_names[] = {"none", "cold", "snapshot", "warm"};
G_STATIC_ASSERT(G_N_ELEMENTS(mode_names) == QSIM_START_MODE_COUNT);

/* The truth, by a full scan on a raw connection, against the summary and the stats */
static void
assert_counts_exact(const gchar *path, QsimStore *store)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStats) stats = qsim_store_get_stats(store, &error);
	guint64 total = 0;

	g_assert_no_error(error);
	for (guint s = 0; s < QSIM_STATUS_COUNT; s++) {
		const gchar *name = qsim_status_to_string((QsimStatus)s);
		g_autofree gchar *scan =
		    g_strdup_printf("SELECT COUNT(*) FROM requests WHERE status = '%s'", name);
		g_autofree gchar *summary = g_strdup_printf(
		    "SELECT n FROM request_counts WHERE dimension = 'status' AND value = '%s'",
		    name);
		gint64 want = store_test_raw_int(path, scan);

		g_assert_cmpint(store_test_raw_int(path, summary), ==, want);
		g_assert_cmpuint(stats->counts[s], ==, (guint64)want);
		total += (guint64)want;
	}
	g_assert_cmpuint(stats->total, ==, total);
	g_assert_cmpint(store_test_raw_int(path, "SELECT COUNT(*) FROM requests"), ==,
	                (gint64)total);
	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++) {
		g_autofree gchar *scan = g_strdup_printf(
		    "SELECT COUNT(*) FROM requests WHERE COALESCE(start_mode, 'none') = '%s'",
		    mode_names[m]);
		gint64 want = store_test_raw_int(path, scan);

		g_assert_cmpuint(stats->start_counts[m], ==, (guint64)want);
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

/* pending -> acknowledged -> running, on @agent; returns the uuid */
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

/* Every transition the store makes, checked after each one */
static void
test_counts_transitions(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = NULL;
	g_autofree gchar *b = NULL;
	g_autofree gchar *c = NULL;
	g_autofree gchar *d = NULL;
	g_autofree gchar *e = NULL;
	g_autofree gchar *active = NULL;
	QsimStatus st;

	assert_counts_exact(fx->path, fx->store);
	for (guint i = 0; i < 6; i++)
		g_free(create(fx->store));
	assert_counts_exact(fx->path, fx->store);

	/* pending -> acknowledged, and its start mode */
	{
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(fx->store, "a1", LEASE_MS, 0, &error);

		g_assert_no_error(error);
		a = g_strdup(r->uuid);
	}
	assert_counts_exact(fx->path, fx->store);
	g_assert_true(qsim_store_set_start_mode(fx->store, a, "snapshot", &error));
	assert_counts_exact(fx->path, fx->store);
	/* acknowledged -> running -> done */
	g_assert_true(qsim_store_mark_running(fx->store, a, "a1", &error));
	assert_counts_exact(fx->path, fx->store);
	g_assert_true(qsim_store_finish_request(fx->store, a, "a1", QSIM_STATUS_DONE, TRUE, 0, NULL,
	                                        &st, &error));
	assert_counts_exact(fx->path, fx->store);

	/* running -> failed, on a warm start */
	b = claim_and_run(fx->store, "a1", "warm");
	assert_counts_exact(fx->path, fx->store);
	g_assert_true(qsim_store_finish_request(fx->store, b, "a1", QSIM_STATUS_FAILED, TRUE, 2,
	                                        "exit 2", &st, &error));
	assert_counts_exact(fx->path, fx->store);

	/* running -> hold -> running -> cancelled */
	c = claim_and_run(fx->store, "a2", "cold");
	qsim_request_free(qsim_store_set_status(fx->store, c, QSIM_STATUS_HOLD, &error));
	g_assert_no_error(error);
	assert_counts_exact(fx->path, fx->store);
	qsim_request_free(qsim_store_set_status(fx->store, c, QSIM_STATUS_RUNNING, &error));
	g_assert_no_error(error);
	assert_counts_exact(fx->path, fx->store);
	qsim_request_free(qsim_store_cancel_request(fx->store, c, &error));
	g_assert_no_error(error);
	assert_counts_exact(fx->path, fx->store);

	/* acknowledged -> pending (recovery with retry), and -> failed (without) */
	{
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(fx->store, "a3", LEASE_MS, 0, &error);

		g_assert_no_error(error);
		d = g_strdup(r->uuid);
	}
	g_assert_true(
	    qsim_store_recover_request(fx->store, d, "a3", TRUE, "agent died", &st, &error));
	g_assert_no_error(error);
	g_assert_cmpint(st, ==, QSIM_STATUS_PENDING);
	assert_counts_exact(fx->path, fx->store);
	e = claim_and_run(fx->store, "a3", "cold");
	g_assert_true(
	    qsim_store_recover_request(fx->store, e, "a3", FALSE, "agent died", &st, &error));
	g_assert_cmpint(st, ==, QSIM_STATUS_FAILED);
	assert_counts_exact(fx->path, fx->store);

	/* pending -> hold -> pending, pending -> cancelled */
	{
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(fx->store, "a4", LEASE_MS, 0, &error);
		g_autofree gchar *p = create(fx->store);

		active = g_strdup(r->uuid);

		qsim_request_free(qsim_store_set_status(fx->store, p, QSIM_STATUS_HOLD, &error));
		g_assert_no_error(error);
		assert_counts_exact(fx->path, fx->store);
		qsim_request_free(qsim_store_set_status(fx->store, p, QSIM_STATUS_PENDING, &error));
		g_assert_no_error(error);
		assert_counts_exact(fx->path, fx->store);
		qsim_request_free(qsim_store_cancel_request(fx->store, p, &error));
		g_assert_no_error(error);
		assert_counts_exact(fx->path, fx->store);
	}

	/* a refused transition changes nothing */
	g_assert_null(qsim_store_set_status(fx->store, a, QSIM_STATUS_RUNNING, &error));
	g_assert_nonnull(error);
	g_clear_error(&error);
	g_assert_false(qsim_store_delete_request(fx->store, active, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	assert_counts_exact(fx->path, fx->store);

	/* delete of final requests, with their start modes */
	g_assert_true(qsim_store_delete_request(fx->store, a, &error));
	g_assert_true(qsim_store_delete_request(fx->store, b, &error));
	g_assert_true(qsim_store_delete_request(fx->store, c, &error));
	g_assert_true(qsim_store_delete_request(fx->store, e, &error));
	g_assert_no_error(error);
	assert_counts_exact(fx->path, fx->store);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT MIN(n) FROM request_counts"), >=, 0);
}

/* Writes from outside the store, and rolled-back ones */
static void
test_counts_batch_and_raw_sql(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *x = create(fx->store);

	/* writes that bypass the store (an operator's sqlite3 shell) are counted too */
	store_test_raw_exec(fx->path, "UPDATE requests SET status = 'failed', finished_at = 1,"
	                              " start_mode = 'cold'");
	assert_counts_exact(fx->path, fx->store);
	store_test_raw_exec(fx->path, "DELETE FROM requests");
	assert_counts_exact(fx->path, fx->store);
	/* and a rolled-back write leaves no trace */
	store_test_raw_exec(fx->path, "BEGIN; UPDATE request_counts SET n = n; ROLLBACK;");
	{
		g_autofree gchar *y = create(fx->store);
		g_autofree gchar *sql = g_strdup_printf(
		    "BEGIN; UPDATE requests SET status = 'hold', held_from = 'pending'"
		    " WHERE uuid = '%s'; ROLLBACK;",
		    y);

		store_test_raw_exec(fx->path, sql);
	}
	assert_counts_exact(fx->path, fx->store);
	g_assert_no_error(error);
}

typedef struct {
	const gchar *path;
	const gchar *agent;
	guint n;
} Worker;

/* One connection of its own: submit, claim, run, finish, delete, over and over */
static gpointer
worker_thread(gpointer user_data)
{
	Worker *w = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = qsim_store_open(w->path, &error);

	g_assert_no_error(error);
	for (guint i = 0; i < w->n; i++) {
		g_autofree gchar *mine = create(store);
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(store, w->agent, LEASE_MS, 0, &error);
		QsimStatus st;

		g_assert_no_error(error);
		if (r == NULL)
			continue; /* the other worker took every pending one */
		g_assert_true(
		    qsim_store_set_start_mode(store, r->uuid, i % 2 ? "warm" : "cold", &error));
		g_assert_true(qsim_store_mark_running(store, r->uuid, w->agent, &error));
		g_assert_true(qsim_store_finish_request(
		    store, r->uuid, w->agent, i % 3 ? QSIM_STATUS_DONE : QSIM_STATUS_FAILED, TRUE,
		    0, NULL, &st, &error));
		g_assert_no_error(error);
		if (i % 4 == 0)
			g_assert_true(qsim_store_delete_request(store, r->uuid, &error));
		g_assert_no_error(error);
	}
	return NULL;
}

/* Two connections writing at once, each in its own thread */
static void
test_counts_concurrent(StoreFixture *fx, gconstpointer data)
{
	Worker w1 = {fx->path, "w1", 150};
	Worker w2 = {fx->path, "w2", 150};
	GThread *t1 = g_thread_new("w1", worker_thread, &w1);
	GThread *t2 = g_thread_new("w2", worker_thread, &w2);

	g_thread_join(t1);
	g_thread_join(t2);
	assert_counts_exact(fx->path, fx->store);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM requests"), >, 150);
}

/* A v3 file with rows: the step to v4 counts them */
static void
test_counts_migrate_from_v3(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) again = NULL;

	if (store_test_skip_on_pg(fx, "SQLite schema v3 files; PostgreSQL starts at v7"))
		return;
	for (guint i = 0; i < 5; i++)
		g_free(create(fx->store));
	g_free(claim_and_run(fx->store, "a", "warm"));
	g_free(claim_and_run(fx->store, "a", "snapshot"));
	{
		g_autofree gchar *done = claim_and_run(fx->store, "a", "cold");
		QsimStatus st;

		g_assert_true(qsim_store_finish_request(fx->store, done, "a", QSIM_STATUS_DONE,
		                                        TRUE, 0, NULL, &st, &error));
	}
	g_clear_object(&fx->store);
	/* exactly what v3 had: v4 only added the summary and its triggers */
	store_test_raw_exec(
	    fx->path, "DROP TRIGGER request_counts_insert;"
	              "DROP TRIGGER request_counts_status;"
	              "DROP TRIGGER request_counts_start_mode;"
	              "DROP TRIGGER request_counts_delete;"
	              "DROP TABLE request_counts;"
	              /* and what later versions added */
	              "ALTER TABLE requests DROP COLUMN output_truncated;"
	              "DROP TRIGGER request_totals_insert;"
	              "DROP TRIGGER request_totals_finished;"
	              "DROP TRIGGER request_totals_started;"
	              "DROP TRIGGER request_totals_output;"
	              "DROP TRIGGER request_totals_template;"
	              "DROP TABLE request_totals;"
	              "ALTER TABLE requests DROP COLUMN end_reason;"
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
	              "PRAGMA user_version = 3;");
	/* rows written by a v3 qsim, that no trigger saw */
	store_test_raw_exec(fx->path, "UPDATE requests SET status = 'hold', held_from = 'pending'"
	                              " WHERE id = (SELECT MAX(id) FROM requests)");
	again = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_store_get_schema_version(again), ==,
	                 qsim_store_get_current_schema_version());
	g_assert_cmpint(store_test_raw_int(fx->path,
	                                   "SELECT n FROM request_counts"
	                                   " WHERE dimension = 'status' AND value = 'hold'"),
	                ==, 1);
	assert_counts_exact(fx->path, again);
	/* and the triggers work from there on */
	g_free(create(again));
	assert_counts_exact(fx->path, again);
}

/* /stats reads no more than an index: its plans must not scan requests */
static void
test_stats_plans(StoreFixture *fx, gconstpointer data)
{
	const gchar *queries[] = {
	    "SELECT dimension, value, n FROM request_counts",
	    /* /metrics (schema v6) */
	    "SELECT event, label1, label2, n FROM request_totals ORDER BY 1, 2, 3",
	    "SELECT created_at FROM requests WHERE status = 'pending' ORDER BY id LIMIT 1",
	    "SELECT created_at, started_at, finished_at, start_mode FROM requests"
	    " WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1000",
	    "SELECT COUNT(*), COUNT(DISTINCT agent_id) FROM requests"
	    " WHERE lease_expires_at IS NOT NULL AND lease_expires_at > 5",
	};
	sqlite3 *db = NULL;

	if (store_test_skip_on_pg(fx, "SQLite query plans"))
		return;
	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	for (guint i = 0; i < G_N_ELEMENTS(queries); i++) {
		g_autofree gchar *sql = g_strdup_printf("EXPLAIN QUERY PLAN %s", queries[i]);
		sqlite3_stmt *stmt = NULL;

		g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			const gchar *detail = (const gchar *)sqlite3_column_text(stmt, 3);

			g_test_message("%s: %s", queries[i], detail);
			/* "SCAN requests" without an index is the O(rows) plan */
			if (g_str_has_prefix(detail, "SCAN requests"))
				g_assert_nonnull(strstr(detail, "USING"));
			/* sorting or grouping every row would be a scan by another name; the
			 * DISTINCT over live leases only sees the few rows the index gave */
			g_assert_null(strstr(detail, "TEMP B-TREE FOR ORDER BY"));
			g_assert_null(strstr(detail, "TEMP B-TREE FOR GROUP BY"));
		}
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/counts/transitions", test_counts_transitions);
	ADD("/qsim/store/counts/raw-sql-and-rollback", test_counts_batch_and_raw_sql);
	ADD("/qsim/store/counts/concurrent", test_counts_concurrent);
	ADD("/qsim/store/counts/migrate-from-v3", test_counts_migrate_from_v3);
	ADD("/qsim/store/counts/stats-plans", test_stats_plans);
	return g_test_run();
}
