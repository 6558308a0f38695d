#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "qsim-pg-fixture.h"
#include "store-test-fixture.h"
#include "store/qsim-store-factory.h"

static gint64
fake_clock(gpointer user_data)
{
	StoreFixture *fx = user_data;

	return fx->now;
}

void
store_fixture_setup(StoreFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("qsim-store-XXXXXX", &error);
	g_assert_no_error(error);
	if (qsim_pg_test_wanted()) {
		/* one server per test binary, a fresh database per test */
		fx->path = qsim_pg_server_create_database(qsim_pg_server_get_shared(), &error);
		g_assert_no_error(error);
	} else {
		fx->path = g_build_filename(fx->dir, "qsim.db", NULL);
	}
	fx->store = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_nonnull(fx->store);
	fx->now = 1764000000000; /* 2025-11-24, an arbitrary fixed start */
	qsim_store_set_clock(fx->store, fake_clock, fx);
}

void
store_fixture_teardown(StoreFixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->store);
	store_test_rmdir(fx->dir);
	g_free(fx->path);
	g_free(fx->dir);
}

void
store_test_rmdir(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	if (d == NULL)
		return;
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, name, NULL);

		g_unlink(path);
	}
	g_rmdir(dir);
}

/* Runs constant SQL on a second, raw connection: to build fixtures the API cannot */
void
store_test_raw_exec(const gchar *path, const gchar *sql)
{
	sqlite3 *db = NULL;
	gchar *msg = NULL;

	if (store_test_is_pg(path)) {
		qsim_pg_exec_sql(path, sql);
		return;
	}

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		g_error("raw_exec: %s", msg);
	sqlite3_close(db);
}

gint64
store_test_raw_int(const gchar *path, const gchar *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	gint64 v;

	if (store_test_is_pg(path))
		return qsim_pg_query_int(path, sql);

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

gboolean
store_test_is_pg(const gchar *path)
{
	return g_str_has_prefix(path, "postgresql://");
}

gboolean
store_test_skip_on_pg(const StoreFixture *fx, const gchar *why)
{
	if (!store_test_is_pg(fx->path))
		return FALSE;
	g_test_skip(why);
	return TRUE;
}

gchar *
store_test_new_request(StoreFixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "true", 60, &error);

	g_assert_no_error(error);
	return g_strdup(r->uuid);
}
