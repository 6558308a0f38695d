#pragma once

/* Private to src/store/: helpers shared by the SQLite backend files. */

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3, sqlite3_close_v2)

/*
 * A statement borrowed from the backend's cache: going out of scope resets it
 * and clears its bindings instead of finalizing it, so the next user starts
 * clean and no read transaction stays open because of a half-stepped cursor.
 */
typedef sqlite3_stmt QsimSqliteCachedStmt;

void qsim_sqlite_cached_stmt_release(QsimSqliteCachedStmt *stmt);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimSqliteCachedStmt, qsim_sqlite_cached_stmt_release)

/* Sets @error from @rc: BUSY/LOCKED -> QSIM_ERROR_BUSY, else QSIM_ERROR_STORE, with @context */
void qsim_sqlite_set_error(sqlite3 *db, gint rc, const gchar *context, GError **error);

/* Runs constant SQL without parameters (pragmas, migrations, BEGIN/COMMIT) */
gboolean qsim_sqlite_exec(sqlite3 *db, const gchar *sql, GError **error);

/* Reads a single integer from constant SQL such as "PRAGMA user_version" */
gboolean qsim_sqlite_query_int64(sqlite3 *db, const gchar *sql, gint64 *out, GError **error);

G_END_DECLS
