#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-sqlite-transaction.h"
#include "store/qsim-store-import.h"

/* The SQLite side of `qsimd migrate-store` (store/qsim-store-import.h) */

static gsize
row_bytes(const QsimRequest *r)
{
	return 256 + strlen(r->commands) + (r->error != NULL ? strlen(r->error) : 0);
}

GPtrArray *
qsim_sqlite_export_requests(QsimStore *store, gint64 after_id, guint limit, gsize max_bytes,
                            gint64 *out_last_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT " REQUEST_COLUMNS ", end_reason, id FROM requests WHERE id > ?1"
	    " ORDER BY id LIMIT ?2",
	    error);
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_import_row_free);
	gsize bytes = 0;
	gint rc;

	*out_last_id = after_id;
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, after_id);
	sqlite3_bind_int64(stmt, 2, limit);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimRequest *r = qsim_sqlite_row_to_request(stmt, error);

		if (r == NULL)
			return NULL;
		g_ptr_array_add(
		    rows, qsim_import_row_new(r, (const gchar *)sqlite3_column_text(stmt, 18)));
		*out_last_id = sqlite3_column_int64(stmt, 19);
		bytes += row_bytes(r);
		if (max_bytes > 0 && bytes >= max_bytes)
			return g_steal_pointer(&rows);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read requests", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

static gboolean
import_row(QsimSqliteStore *self, const QsimImportRow *row, guint *inserted, GError **error)
{
	const QsimRequest *r = row->request;
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "INSERT INTO requests (uuid, id, vm_name, commands, timeout, status, held_from,"
	    " created_at, updated_at, started_at, finished_at, exit_code, error, agent_id,"
	    " lease_expires_at, attempts, start_mode, output_truncated, end_reason,"
	    " artifact_paths)"
	    " VALUES (?1, (SELECT COALESCE(MAX(id), 0) + 1 FROM requests), ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
	    " ON CONFLICT (uuid) DO NOTHING",
	    error);
	g_autofree gchar *paths = NULL;

	if (stmt == NULL)
		return FALSE;
	if (r->artifact_paths != NULL && r->artifact_paths[0] != NULL)
		paths = g_strjoinv("\n", r->artifact_paths);
	sqlite3_bind_text(stmt, 1, r->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->vm_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, r->commands, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, r->timeout_s);
	sqlite3_bind_text(stmt, 5, qsim_status_to_string(r->status), -1, SQLITE_STATIC);
	if (r->status == QSIM_STATUS_HOLD)
		sqlite3_bind_text(stmt, 6, qsim_status_to_string(r->held_from), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, r->created_at);
	sqlite3_bind_int64(stmt, 8, r->updated_at);
	qsim_sqlite_bind_time_or_null(stmt, 9, r->started_at);
	qsim_sqlite_bind_time_or_null(stmt, 10, r->finished_at);
	if (r->has_exit_code)
		sqlite3_bind_int(stmt, 11, r->exit_code);
	qsim_sqlite_bind_text_or_null(stmt, 12, r->error);
	qsim_sqlite_bind_text_or_null(stmt, 13, r->agent_id);
	qsim_sqlite_bind_time_or_null(stmt, 14, r->lease_expires_at);
	sqlite3_bind_int64(stmt, 15, r->attempts);
	if (r->start_mode != QSIM_START_MODE_NONE)
		sqlite3_bind_text(stmt, 16, qsim_start_mode_to_string(r->start_mode), -1,
		                  SQLITE_STATIC);
	sqlite3_bind_int(stmt, 17, r->output_truncated ? 1 : 0);
	qsim_sqlite_bind_text_or_null(stmt, 18, row->end_reason);
	qsim_sqlite_bind_text_or_null(stmt, 19, paths);
	if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot import request", error)) {
		g_prefix_error(error, "%s: ", r->uuid);
		return FALSE;
	}
	*inserted += (guint)sqlite3_changes(self->db);
	return TRUE;
}

gboolean
qsim_sqlite_import_requests(QsimStore *store, GPtrArray *rows, guint *out_inserted, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	guint inserted = 0;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	for (guint i = 0; i < rows->len; i++) {
		if (!import_row(self, rows->pdata[i], &inserted, error))
			return FALSE;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_inserted = inserted;
	return TRUE;
}

gboolean
qsim_sqlite_import_logs(QsimStore *store, const gchar *uuid, GPtrArray *entries,
                        guint *out_inserted, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	guint inserted = 0;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self, "SELECT 1 FROM requests WHERE uuid = ?1", error);
		gint rc;

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_DONE) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
			return FALSE;
		}
		if (rc != SQLITE_ROW) {
			qsim_sqlite_set_error(self->db, rc, "cannot read request", error);
			return FALSE;
		}
	}
	for (guint i = 0; i < entries->len; i++) {
		const QsimLogEntry *entry = g_ptr_array_index(entries, i);
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "INSERT INTO request_logs (request_uuid, seq, timestamp_ms, log_type, output)"
		    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (request_uuid, seq) DO NOTHING",
		    error);
		gsize len = 0;
		gconstpointer data = g_bytes_get_data(entry->output, &len);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 2, entry->seq);
		sqlite3_bind_int64(stmt, 3, entry->timestamp_ms);
		sqlite3_bind_text(stmt, 4, qsim_log_type_to_string(entry->log_type), -1,
		                  SQLITE_STATIC);
		if (len == 0)
			sqlite3_bind_zeroblob(stmt, 5, 0);
		else
			sqlite3_bind_blob64(stmt, 5, data, len, SQLITE_STATIC);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot import log", error))
			return FALSE;
		inserted += (guint)sqlite3_changes(self->db);
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_inserted = inserted;
	return TRUE;
}

gboolean
qsim_sqlite_count_rows(QsimStore *store, guint64 *out_requests, guint64 *out_logs, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	gint64 requests = 0;
	gint64 logs = 0;

	/* one read snapshot: both counts describe the same moment */
	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return FALSE;
	if (!qsim_sqlite_query_int64(self->db, "SELECT COUNT(*) FROM requests", &requests, error) ||
	    !qsim_sqlite_query_int64(self->db, "SELECT COUNT(*) FROM request_logs", &logs, error))
		return FALSE;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_requests = (guint64)requests;
	*out_logs = (guint64)logs;
	return TRUE;
}
