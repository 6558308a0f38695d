#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-sqlite-util.h"

/* The request journal (schema v8): rows are written by triggers, only read here. */

GPtrArray *
qsim_sqlite_list_request_events(QsimStore *store, gint64 after_id, guint limit, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	/* the newest alone is a reverse walk of the primary key: one row read */
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    after_id < 0 ? "SELECT id, uuid, kind, status, at FROM request_events"
	                   " ORDER BY id DESC LIMIT ?2"
	                 : "SELECT id, uuid, kind, status, at FROM request_events WHERE id > ?1"
	                   " ORDER BY id LIMIT ?2",
	    error);
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	if (stmt == NULL)
		return NULL;
	if (after_id >= 0)
		sqlite3_bind_int64(stmt, 1, after_id);
	sqlite3_bind_int64(stmt, 2, limit);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_event_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		g_ptr_array_add(out,
		                qsim_request_event_new(sqlite3_column_int64(stmt, 0),
		                                       (const gchar *)sqlite3_column_text(stmt, 1),
		                                       (const gchar *)sqlite3_column_text(stmt, 2),
		                                       (const gchar *)sqlite3_column_text(stmt, 3),
		                                       sqlite3_column_int64(stmt, 4)));
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read the request journal", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

GPtrArray *
qsim_sqlite_list_finished_since(QsimStore *store, gint64 since_ms, guint limit, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	/* the first output is the first stdout/stderr chunk by seq: the primary
	 * key walks a request's chunks in order and stops at the first one */
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT status, created_at, COALESCE(started_at, 0), finished_at,"
	    " COALESCE((SELECT timestamp_ms FROM request_logs l WHERE l.request_uuid = r.uuid"
	    "   AND l.log_type IN ('stdout', 'stderr') ORDER BY seq LIMIT 1), 0)"
	    " FROM requests r WHERE finished_at >= ?1 ORDER BY finished_at DESC LIMIT ?2",
	    error);
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, since_ms);
	sqlite3_bind_int64(stmt, 2, limit);
	out = g_ptr_array_new_with_free_func(g_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimFinishedSample *s = g_new0(QsimFinishedSample, 1);

		if (!qsim_status_from_string((const gchar *)sqlite3_column_text(stmt, 0),
		                             &s->status))
			s->status = QSIM_STATUS_FAILED;
		s->created_at = sqlite3_column_int64(stmt, 1);
		s->started_at = sqlite3_column_int64(stmt, 2);
		s->finished_at = sqlite3_column_int64(stmt, 3);
		s->first_output_at = sqlite3_column_int64(stmt, 4);
		g_ptr_array_add(out, s);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read finished requests", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}
