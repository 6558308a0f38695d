#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "common/qsim-db-url.h"
#include "common/qsim-error.h"
#include "qsim-pg-fixture.h"
#include "store/qsim-pg-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store.h"

/*
 * What only the PostgreSQL backend has: a server that goes away and comes
 * back, LISTEN/NOTIFY, passwords, URLs. Each case starts its own server
 * (tests/pg/pg-server.sh), since some stop it.
 */

static QsimPgServer *
start_server(void)
{
	g_autoptr(GError) error = NULL;
	QsimPgServer *server = qsim_pg_server_start(&error);

	g_assert_no_error(error);
	return server;
}

static QsimStore *
open_store(const gchar *url)
{
	g_autoptr(GError) error = NULL;
	QsimStore *store = qsim_store_open(url, &error);

	g_assert_no_error(error);
	g_assert_nonnull(store);
	return store;
}

static GPtrArray *
one_chunk(const gchar *text)
{
	GPtrArray *chunks = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

	g_ptr_array_add(chunks,
	                qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)text, strlen(text)));
	return chunks;
}

/* What the log batcher does: the same batch again after a transient failure, until
 * it is stored. No deadline of its own: meson's test timeout bounds the wait. */
static gint64
append_until_stored(QsimStore *store, const gchar *uuid, const gchar *text, guint *n_failures)
{
	g_autoptr(GPtrArray) chunks = one_chunk(text);

	for (;;) {
		g_autoptr(GError) error = NULL;
		gint64 seq = qsim_store_append_logs(store, uuid, chunks, &error);

		if (seq > 0)
			return seq;
		/* transient, and said clearly */
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
		(*n_failures)++;
		g_usleep(50 * 1000);
	}
}

/*
 * The server stops mid-run (pg_ctl stop -m fast) and comes back on the same
 * port: calls made meanwhile fail at once with BUSY, ping (/health) says so,
 * the store reconnects by itself, no appended log is lost or doubled, and the
 * request is finished exactly once.
 */
static void
test_reconnect(void)
{
	g_autoptr(QsimPgServer) server = start_server();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *url = qsim_pg_server_create_database(server, &error);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	QsimStatus status = QSIM_STATUS_PENDING;
	guint failures = 0;
	gint64 t0;

	g_assert_no_error(error);
	store = open_store(url);
	r = qsim_store_create_request(store, "tiny", "echo hi", 30, &error);
	g_assert_no_error(error);
	claimed = qsim_store_claim_next(store, "host-a:1:0", 60000, 4, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(claimed->uuid, ==, r->uuid);
	g_assert_true(qsim_store_mark_running(store, r->uuid, "host-a:1:0", &error));
	g_assert_cmpint(append_until_stored(store, r->uuid, "line 1\n", &failures), ==, 1);

	g_assert_true(qsim_pg_server_stop(server, &error));
	g_assert_no_error(error);
	/* down: a clear, transient error, and the health check fails */
	g_assert_false(qsim_store_ping(store, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_clear_error(&error);
	/* while the backoff runs, calls fail without waiting on the network */
	t0 = g_get_monotonic_time();
	g_assert_false(qsim_store_ping(store, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_test_message("second call while down failed after %" G_GINT64_FORMAT " us: %s",
	               g_get_monotonic_time() - t0, error->message);
	g_clear_error(&error);
	{
		g_autoptr(GPtrArray) chunks = one_chunk("line 2\n");

		g_assert_cmpint(qsim_store_append_logs(store, r->uuid, chunks, &error), ==, -1);
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
		g_clear_error(&error);
	}

	g_assert_true(qsim_pg_server_restart(server, &error));
	g_assert_no_error(error);
	/* the batch that failed is stored once it is back, after line 1 */
	g_assert_cmpint(append_until_stored(store, r->uuid, "line 2\n", &failures), ==, 2);
	g_assert_cmpuint(failures, >=, 0);
	g_assert_true(qsim_store_ping(store, &error));
	g_assert_no_error(error);

	/* the lease held meanwhile still means the request is ours */
	g_assert_true(qsim_store_renew_lease(store, r->uuid, "host-a:1:0", 60000, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, QSIM_STATUS_RUNNING);
	g_assert_true(qsim_store_finish_request(store, r->uuid, "host-a:1:0", QSIM_STATUS_DONE,
	                                        TRUE, 0, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, QSIM_STATUS_DONE);
	/* a retried finish (its first commit reached the server) changes nothing */
	g_assert_false(qsim_store_finish_request(store, r->uuid, "host-a:1:0", QSIM_STATUS_DONE,
	                                         TRUE, 0, NULL, &status, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_cmpint(qsim_pg_query_int(url, "SELECT n FROM request_totals WHERE event ="
	                                       " 'finished' AND label1 = 'done'"),
	                ==, 1);
	g_assert_cmpint(qsim_pg_query_int(url, "SELECT COUNT(*) FROM vm_slots"), ==, 0);

	logs = qsim_store_read_logs(store, r->uuid, 0, 0, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(logs->len, ==, 2);
	for (guint i = 0; i < logs->len; i++) {
		const QsimLogEntry *e = g_ptr_array_index(logs, i);
		g_autofree gchar *want = g_strdup_printf("line %u\n", i + 1);
		gsize len = 0;
		const gchar *got = g_bytes_get_data(e->output, &len);

		g_assert_cmpint(e->seq, ==, i + 1);
		g_assert_cmpmem(got, len, want, strlen(want));
	}
}

/* The LISTEN connection comes back too: another process's commit is heard again */
static void
test_notify_after_restart(void)
{
	g_autoptr(QsimPgServer) server = start_server();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *url = qsim_pg_server_create_database(server, &error);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimStore) other = NULL;
	guint64 v0 = 0, v1 = 0;

	g_assert_no_error(error);
	store = open_store(url);
	other = open_store(url);
	g_assert_true(qsim_store_get_data_version(store, &v0, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_pg_server_stop(server, &error));
	g_assert_true(qsim_pg_server_restart(server, &error));
	g_assert_no_error(error);
	/* the first look after the break notices it and reconnects (with backoff):
	 * wait for a LISTEN connection that answers, then take the version */
	for (;;) {
		g_clear_error(&error);
		if (qsim_store_get_data_version(store, &v0, &error) &&
		    qsim_store_get_data_version(store, &v1, &error) && v1 == v0)
			break;
		g_usleep(50 * 1000);
	}
	/* another connection commits after the LISTEN is back */
	for (;;) {
		g_autoptr(QsimRequest) r = NULL;

		g_clear_error(&error);
		r = qsim_store_create_request(other, "tiny", "true", 5, &error);
		if (r != NULL)
			break;
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
		g_usleep(50 * 1000);
	}
	/* its notification arrives shortly after the commit */
	do {
		g_usleep(1000);
		g_assert_true(qsim_store_get_data_version(store, &v1, &error));
		g_assert_no_error(error);
	} while (v1 == v0);
	g_assert_cmpuint(v1, !=, v0);
}

/* Many processes starting at once on an empty database: one migrates, the others wait */
static void
test_concurrent_migrations(void)
{
	g_autoptr(QsimPgServer) server = start_server();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *url = qsim_pg_server_create_database(server, &error);
	g_autoptr(GPtrArray) procs = g_ptr_array_new_with_free_func(g_object_unref);
	g_autofree gchar *self_exe = g_file_read_link("/proc/self/exe", NULL);

	g_assert_no_error(error);
	for (guint i = 0; i < 4; i++) {
		GSubprocess *p = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error, self_exe,
		                                  "--open-child", url, NULL);

		g_assert_no_error(error);
		g_ptr_array_add(procs, p);
	}
	for (guint i = 0; i < procs->len; i++) {
		g_assert_true(g_subprocess_wait_check(procs->pdata[i], NULL, &error));
		g_assert_no_error(error);
	}
	/* each step applied once, by one of the four: the first step builds version 7 */
	g_assert_cmpint(qsim_pg_query_int(url, "SELECT COUNT(*) FROM schema_version"), ==,
	                qsim_store_get_current_schema_version() - 6);
	g_assert_cmpint(
	    qsim_pg_query_int(url, "SELECT COUNT(DISTINCT version) FROM schema_version"), ==,
	    qsim_store_get_current_schema_version() - 6);
	g_assert_cmpint(qsim_pg_query_int(url, "SELECT MAX(version) FROM schema_version"), ==,
	                qsim_store_get_current_schema_version());
}

/* Retention's space step is autovacuum's job; `qsimd vacuum` is VACUUM FULL */
static void
test_space(void)
{
	QsimPgServer *server = qsim_pg_server_get_shared();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *url = qsim_pg_server_create_database(server, &error);
	g_autoptr(QsimStore) store = NULL;
	guint64 free_pages = 1;
	gboolean incremental = FALSE;

	g_assert_no_error(error);
	store = open_store(url);
	g_assert_true(qsim_store_reclaim_space(store, 100, &free_pages, &incremental, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(free_pages, ==, 0);
	g_assert_true(incremental);
	g_assert_true(qsim_store_vacuum(store, &error));
	g_assert_no_error(error);
	/* and the session's bounds are back in place after the unbounded VACUUM FULL */
	g_assert_true(qsim_store_ping(store, &error));
	g_assert_no_error(error);
}

/* DATABASE_PASSWORD_FILE: only a private regular file; the password is never shown */
static void
test_password_file(void)
{
	QsimPgServer *server = qsim_pg_server_get_shared();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("qsim-pgpw-XXXXXX", &error);
	g_autofree gchar *path = g_build_filename(dir, "pw", NULL);
	g_autofree gchar *pw = NULL;
	g_autoptr(QsimStore) store = NULL;

	g_assert_no_error(error);
	g_assert_true(g_file_set_contents(path, "s3cret-pw\n", -1, &error));
	g_assert_cmpint(g_chmod(path, 0644), ==, 0);
	g_assert_null(qsim_pg_store_read_password_file(path, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_null(strstr(error->message, "s3cret"));
	g_clear_error(&error);
	g_assert_null(qsim_pg_store_new(qsim_pg_server_get_url(server), path, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);

	g_assert_cmpint(g_chmod(path, 0600), ==, 0);
	pw = qsim_pg_store_read_password_file(path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(pw, ==, "s3cret-pw");
	/* the test server trusts 127.0.0.1: the password is sent and not needed */
	store = qsim_pg_store_new(qsim_pg_server_get_url(server), path, &error);
	g_assert_no_error(error);
	g_assert_nonnull(store);
	g_unlink(path);
	g_rmdir(dir);
}

static void
test_urls(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = qsim_db_url_redact("postgresql://u:pw@h:5432/db?sslmode=require");
	g_autofree gchar *b = qsim_db_url_redact("postgres://h/db?user=u&password=pw&x=1");
	g_autofree gchar *c = qsim_db_url_redact("postgresql://u@h/db");
	g_autofree gchar *d = qsim_db_url_redact("postgresql://u:p@ss@h/db");

	g_assert_cmpstr(a, ==, "postgresql://u:***@h:5432/db?sslmode=require");
	g_assert_cmpstr(b, ==, "postgres://h/db?user=u&password=***&x=1");
	g_assert_cmpstr(c, ==, "postgresql://u@h/db");
	g_assert_cmpstr(d, ==, "postgresql://u:***@h/db");
	g_assert_true(qsim_db_url_check("postgresql://u@127.0.0.1:5/db", &error));
	g_assert_no_error(error);
	g_assert_false(qsim_db_url_check("postgresql://h/db?nope=1", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(qsim_db_url_check("/var/lib/qsim.db", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_true(qsim_store_location_is_url("postgres://h/db"));
	g_assert_false(qsim_store_location_is_url("./simulation.db"));
}

/* An unreachable server: opening fails within the connect timeout, with BUSY */
static void
test_unreachable(void)
{
	g_autoptr(GError) error = NULL;
	/* port 1 on loopback: refused at once */
	g_autoptr(QsimStore) store = qsim_store_open("postgresql://qsim@127.0.0.1:1/qsim", &error);

	g_assert_null(store);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_assert_nonnull(strstr(error->message, "cannot connect to PostgreSQL"));
}

int
main(int argc, char **argv)
{
	if (argc == 3 && g_str_equal(argv[1], "--open-child")) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimStore) store = qsim_store_open(argv[2], &error);

		if (store == NULL) {
			g_printerr("%s\n", error->message);
			return 1;
		}
		return 0;
	}
	g_test_init(&argc, &argv, NULL);
	/* the store warns when its connection breaks: here that is the point */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	g_test_add_func("/qsim/store/pg/urls", test_urls);
	g_test_add_func("/qsim/store/pg/unreachable", test_unreachable);
	g_test_add_func("/qsim/store/pg/password-file", test_password_file);
	g_test_add_func("/qsim/store/pg/space", test_space);
	g_test_add_func("/qsim/store/pg/concurrent-migrations", test_concurrent_migrations);
	g_test_add_func("/qsim/store/pg/reconnect", test_reconnect);
	g_test_add_func("/qsim/store/pg/notify-after-restart", test_notify_after_restart);
	return g_test_run();
}
