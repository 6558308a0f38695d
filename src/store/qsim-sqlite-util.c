#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-util.h"

void
qsim_sqlite_cached_stmt_release(QsimSqliteCachedStmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

void
qsim_sqlite_set_error(sqlite3 *db, gint rc, const gchar *context, GError **error)
{
	gint primary = rc & 0xff;
	QsimError code = QSIM_ERROR_STORE;
	const gchar *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
		code = QSIM_ERROR_BUSY;
	g_set_error(error, QSIM_ERROR, code, "%s: %s (sqlite %d)", context, msg, rc);
}

gboolean
qsim_sqlite_exec(sqlite3 *db, const gchar *sql, GError **error)
{
	g_autofree gchar *errmsg = NULL;
	gchar *raw = NULL;
	gint rc = sqlite3_exec(db, sql, NULL, NULL, &raw);

	/* sqlite3_exec allocates with sqlite3_malloc: copy to GLib memory, then free it */
	errmsg = g_strdup(raw);
	sqlite3_free(raw);
	if (rc != SQLITE_OK) {
		gint primary = rc & 0xff;

		g_set_error(error, QSIM_ERROR,
		            primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? QSIM_ERROR_BUSY
		                                                               : QSIM_ERROR_STORE,
		            "%s (sqlite %d)", errmsg != NULL ? errmsg : sqlite3_errstr(rc), rc);
		return FALSE;
	}
	return TRUE;
}

gboolean
qsim_sqlite_query_int64(sqlite3 *db, const gchar *sql, gint64 *out, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	gint rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);

	if (rc != SQLITE_OK) {
		qsim_sqlite_set_error(db, rc, "cannot prepare query", error);
		return FALSE;
	}
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		qsim_sqlite_set_error(db, rc, "cannot run query", error);
		return FALSE;
	}
	*out = sqlite3_column_int64(stmt, 0);
	return TRUE;
}
