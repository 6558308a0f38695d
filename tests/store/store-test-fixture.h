#pragma once

#include <glib.h>

#include "store/qsim-store.h"

/* A store on a fresh database in its own temporary directory, on a fake clock */
typedef struct {
	gchar *dir;
	gchar *path;
	QsimStore *store;
	gint64 now; /* unix ms, read by the store's clock */
} StoreFixture;

void store_fixture_setup(StoreFixture *fx, gconstpointer user_data);

void store_fixture_teardown(StoreFixture *fx, gconstpointer user_data);

/* TRUE when the fixture's @path is a PostgreSQL URL (QSIM_TEST_DATABASE=pg) */
gboolean store_test_is_pg(const gchar *path);

/* For cases that test SQLite itself (PRAGMAs, its trigger syntax, old schema
 * versions): TRUE, after g_test_skip(@why), when the fixture runs on PostgreSQL */
gboolean store_test_skip_on_pg(const StoreFixture *fx, const gchar *why);

/* Returns: (transfer full): the uuid of a new pending "tiny" request running `true` */
gchar *store_test_new_request(StoreFixture *fx);

/* Removes @dir and the files in it (one level) */
void store_test_rmdir(const gchar *dir);

/* Runs constant SQL on a separate raw connection: fixtures the API cannot build */
void store_test_raw_exec(const gchar *path, const gchar *sql);

/* Returns: the first column of the first row of @sql, on a raw connection */
gint64 store_test_raw_int(const gchar *path, const gchar *sql);
