#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "qsim-pg-fixture.h"
#include "store-test-fixture.h"
#include "store/qsim-retention.h"
#include "store/qsim-store-factory.h"

/* @n requests of @vm_name in one transaction (the vm name tags them for raw SQL) */
static void
create_many(StoreFixture *fx, const gchar *vm_name, guint n)
{
	g_autoptr(GPtrArray) drafts =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_draft_free);
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(drafts, qsim_request_draft_new(vm_name, "true", 30));
	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
}

static void
add_logs(StoreFixture *fx, const gchar *uuid, guint n, gsize size)
{
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *data = g_malloc0(size);

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, data, size));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, n);
	g_assert_no_error(error);
}

static gint64
count(StoreFixture *fx, const gchar *sql)
{
	return store_test_raw_int(fx->path, sql);
}

static void
on_deleted(QsimStore *store, const gchar *uuid, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
purge_ok(StoreFixture *fx, gint status, gint64 before, guint limit, guint expect_deleted,
         gboolean expect_more)
{
	g_autoptr(GError) error = NULL;
	guint deleted = 0;
	gboolean more = !expect_more;

	g_assert_true(
	    qsim_store_purge_requests(fx->store, status, before, limit, &deleted, &more, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(deleted, ==, expect_deleted);
	g_assert_cmpint(more, ==, expect_more);
}

/* Finished requests go in bounded batches, oldest first; active, recent and
 * still-leased ones stay; logs go with their request. */
static void
test_purge_batches(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	guint signalled = 0;
	guint deleted = 0;
	gint64 old = fx->now - 10 * 24 * 3600 * 1000LL;

	create_many(fx, "old-done", 1100);
	create_many(fx, "old-failed", 50);
	create_many(fx, "recent", 30);
	create_many(fx, "active", 10);
	create_many(fx, "leased", 5);
	store_test_raw_exec(fx->path, "UPDATE requests SET status = 'done', finished_at = "
	                              "1763000000000 WHERE vm_name = 'old-done';"
	                              "UPDATE requests SET status = 'failed', finished_at = "
	                              "1763000000000 WHERE vm_name = 'old-failed';"
	                              "UPDATE requests SET status = 'done', finished_at = "
	                              "1764000000000 WHERE vm_name = 'recent';"
	                              "UPDATE requests SET status = 'running', agent_id = 'a',"
	                              " lease_expires_at = 1764000060000 WHERE vm_name = 'active';"
	                              "UPDATE requests SET status = 'cancelled', finished_at = "
	                              "1763000000000, agent_id = 'a', lease_expires_at = "
	                              "1764000060000 WHERE vm_name = 'leased';");
	g_assert_cmpint(old, <, 1764000000000);
	{
		QsimRequestFilter filter;

		qsim_request_filter_init(&filter);
		filter.vm_name = "old-done";
		filter.limit = 3;
		rows = qsim_store_list_requests(fx->store, &filter, NULL, &error);
		g_assert_no_error(error);
		for (guint i = 0; i < rows->len; i++)
			add_logs(fx, ((QsimRequest *)rows->pdata[i])->uuid, 4, 100);
	}
	g_signal_connect(fx->store, "request-deleted", G_CALLBACK(on_deleted), &signalled);

	/* arguments: only final statuses, bounded batches */
	g_assert_false(qsim_store_purge_requests(fx->store, QSIM_STATUS_RUNNING, fx->now, 10,
	                                         &deleted, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(
	    qsim_store_purge_requests(fx->store, -1, fx->now, 0, &deleted, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(
	    qsim_store_purge_requests(fx->store, -1, fx->now, 1001, &deleted, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);

	/* a status filter takes only that status */
	purge_ok(fx, QSIM_STATUS_FAILED, fx->now - 3600 * 1000, 500, 50, FALSE);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests WHERE status = 'failed'"), ==, 0);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 1145);

	/* the rest in batches of 500: 500, 500, 100 */
	purge_ok(fx, -1, fx->now - 3600 * 1000, 500, 500, TRUE);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 645);
	purge_ok(fx, -1, fx->now - 3600 * 1000, 500, 500, TRUE);
	purge_ok(fx, -1, fx->now - 3600 * 1000, 500, 100, FALSE);
	purge_ok(fx, -1, fx->now - 3600 * 1000, 500, 0, FALSE);
	g_assert_cmpuint(signalled, ==, 1150);

	/* left: the recent, the active and the leased (its agent still stops the VM) */
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 45);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests WHERE vm_name = 'old-done'"), ==,
	                0);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM request_logs"), ==, 0);

	/* "before now" takes the recent ones too */
	purge_ok(fx, QSIM_STATUS_DONE, fx->now + 1, 1000, 30, FALSE);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 15);
}

/* A request with a long log is purged over several short transactions */
static void
test_purge_long_log(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "yes", 30, &error);

	g_assert_no_error(error);
	add_logs(fx, r->uuid, 25, 10);
	store_test_raw_exec(fx->path, "UPDATE requests SET status = 'done', finished_at = 1");
	/* a batch of 1 may delete QSIM_STORE_PURGE_LOG_ROWS_PER_REQUEST (10) log chunks */
	purge_ok(fx, -1, fx->now, 1, 0, TRUE);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM request_logs"), ==, 15);
	purge_ok(fx, -1, fx->now, 1, 0, TRUE);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM request_logs"), ==, 5);
	purge_ok(fx, -1, fx->now, 1, 1, FALSE);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 0);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM request_logs"), ==, 0);
}

static goffset
file_size(const gchar *path)
{
	GStatBuf st;

	g_assert_cmpint(g_stat(path, &st), ==, 0);
	return st.st_size;
}

/* New files are INCREMENTAL: purged pages go back to the file system in steps */
static void
test_reclaim(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	guint64 free_pages = 1;
	gboolean incremental = FALSE;
	gint64 pages_before;
	guint steps = 0;

	if (store_test_skip_on_pg(
	        fx,
	        "SQLite incremental vacuum; tests/store/test-store-postgres.c covers PostgreSQL"))
		return;
	g_assert_cmpint(count(fx, "PRAGMA auto_vacuum"), ==, 2);
	for (guint i = 0; i < 8; i++) {
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(fx->store, "tiny", "yes", 30, &error);

		g_assert_no_error(error);
		add_logs(fx, r->uuid, 8, 64 * 1024);
	}
	store_test_raw_exec(fx->path, "UPDATE requests SET status = 'done', finished_at = 1;"
	                              "PRAGMA wal_checkpoint(TRUNCATE)");
	pages_before = count(fx, "PRAGMA page_count");
	g_assert_cmpint(pages_before, >, 1000);
	purge_ok(fx, -1, fx->now, 500, 8, FALSE);
	do {
		g_assert_true(
		    qsim_store_reclaim_space(fx->store, 200, &free_pages, &incremental, &error));
		g_assert_no_error(error);
		g_assert_true(incremental);
		steps++;
	} while (free_pages > 0);
	/* bounded steps: 200 pages at a time */
	g_assert_cmpuint(steps, >, 3);
	store_test_raw_exec(fx->path, "PRAGMA wal_checkpoint(TRUNCATE)");
	g_assert_cmpint(count(fx, "PRAGMA page_count"), <, pages_before / 10);
	g_assert_cmpint(file_size(fx->path), <, pages_before * 4096 / 10);
}

/* A file made before incremental vacuum keeps its mode until `qsimd vacuum` */
static void
test_vacuum_old_file(void)
{
	g_autofree gchar *dir = g_dir_make_tmp("qsim-retention-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "old.db", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;
	guint64 free_pages = 0;
	gboolean incremental = TRUE;

	store_test_raw_exec(path, "PRAGMA auto_vacuum = NONE; CREATE TABLE legacy (x);"
	                          "DROP TABLE legacy;");
	store = qsim_store_open(path, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_reclaim_space(store, 100, &free_pages, &incremental, &error));
	g_assert_no_error(error);
	g_assert_false(incremental);
	g_assert_true(qsim_store_vacuum(store, &error));
	g_assert_no_error(error);
	g_assert_cmpint(store_test_raw_int(path, "PRAGMA auto_vacuum"), ==, 2);
	g_assert_true(qsim_store_reclaim_space(store, 100, &free_pages, &incremental, &error));
	g_assert_true(incremental);
	g_clear_object(&store);
	store_test_rmdir(dir);
}

static gboolean
passes_reached(gpointer user_data)
{
	gpointer *args = user_data;
	return qsim_retention_get_n_passes(args[0]) >= GPOINTER_TO_UINT(args[1]);
}

static void
run_until(GSourceFunc pred, gpointer data)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (!pred(data)) {
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
}

/* The RETENTION loop: batches on a timer, by the store's (fake) clock */
static void
test_retention_loop(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(QsimRetention) retention = qsim_retention_new(fx->store, 24 * 3600 * 1000LL);
	gpointer args[2] = {retention, GUINT_TO_POINTER(1)};

	create_many(fx, "old", 30);
	create_many(fx, "young", 5);
	create_many(fx, "active", 2);
	/* old: finished 2 days ago; young: an hour ago */
	store_test_raw_exec(fx->path,
	                    "UPDATE requests SET status = 'done', finished_at = 1763827200000 "
	                    "WHERE vm_name = 'old';"
	                    "UPDATE requests SET status = 'failed', finished_at = 1763996400000 "
	                    "WHERE vm_name = 'young';");
	qsim_retention_set_timing(retention, 30, 0, 7);
	qsim_retention_start(retention);
	run_until(passes_reached, args);
	/* 30 in batches of 7: 7, 7, 7, 7, 2 */
	g_assert_cmpuint(qsim_retention_get_n_batches(retention), ==, 5);
	g_assert_cmpuint(qsim_retention_get_n_purged(retention), ==, 30);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 7);
	/* a day later the young ones are old too; active ones never go */
	fx->now += 24 * 3600 * 1000LL;
	args[1] = GUINT_TO_POINTER(qsim_retention_get_n_passes(retention) + 2);
	run_until(passes_reached, args);
	g_assert_cmpuint(qsim_retention_get_n_purged(retention), ==, 35);
	g_assert_cmpint(count(fx, "SELECT count(*) FROM requests"), ==, 2);
	qsim_retention_stop(retention);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/retention/purge-batches", test_purge_batches);
	ADD("/qsim/store/retention/purge-long-log", test_purge_long_log);
	ADD("/qsim/store/retention/reclaim", test_reclaim);
	ADD("/qsim/store/retention/loop", test_retention_loop);
#undef ADD
	if (!qsim_pg_test_wanted()) /* a SQLite file from before incremental vacuum */
		g_test_add_func("/qsim/store/retention/vacuum-old-file", test_vacuum_old_file);
	return g_test_run();
}
