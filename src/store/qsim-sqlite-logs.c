#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-sqlite-transaction.h"

static gboolean
request_exists(QsimSqliteStore *self, const gchar *uuid, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    qsim_sqlite_store_stmt_get(self, "SELECT 1 FROM requests WHERE uuid = ?1", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return TRUE;
	if (rc == SQLITE_DONE)
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
	else
		qsim_sqlite_set_error(self->db, rc, "cannot read request", error);
	return FALSE;
}

gint64
qsim_sqlite_append_logs(QsimStore *store, const gchar *uuid, GPtrArray *chunks, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	gint64 seq = 0;
	gint64 now = qsim_sqlite_store_now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return -1;
	if (!request_exists(self, uuid, error))
		return -1;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self, "SELECT COALESCE(MAX(seq), 0) FROM request_logs WHERE request_uuid = ?1",
		    error);
		gint rc;

		if (stmt == NULL)
			return -1;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(stmt);
		if (rc != SQLITE_ROW) {
			qsim_sqlite_set_error(self->db, rc, "cannot read last log seq", error);
			return -1;
		}
		seq = sqlite3_column_int64(stmt, 0);
	}
	for (guint i = 0; i < chunks->len; i++) {
		const QsimLogEntry *entry = g_ptr_array_index(chunks, i);
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "INSERT INTO request_logs (request_uuid, seq, timestamp_ms, log_type,"
		    " output) VALUES (?1, ?2, ?3, ?4, ?5)",
		    error);
		gsize len = 0;
		gconstpointer data = g_bytes_get_data(entry->output, &len);

		if (stmt == NULL)
			return -1;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 2, ++seq);
		sqlite3_bind_int64(stmt, 3, entry->timestamp_ms > 0 ? entry->timestamp_ms : now);
		sqlite3_bind_text(stmt, 4, qsim_log_type_to_string(entry->log_type), -1,
		                  SQLITE_STATIC);
		/* a NULL pointer would bind SQL NULL: an empty chunk is an empty blob */
		if (len == 0)
			sqlite3_bind_zeroblob(stmt, 5, 0);
		else
			sqlite3_bind_blob64(stmt, 5, data, len, SQLITE_STATIC);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot append log", error))
			return -1;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return -1;
	return seq;
}

GPtrArray *
qsim_sqlite_read_logs(QsimStore *store, const gchar *uuid, gint64 after_seq, guint limit,
                      gint log_type, gsize max_bytes, gboolean *out_cut, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(GPtrArray) entries =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	gsize bytes = 0;

	*out_cut = FALSE;
	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return NULL;
	if (!request_exists(self, uuid, error))
		return NULL;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "SELECT seq, timestamp_ms, log_type, output FROM request_logs"
		    " WHERE request_uuid = ?1 AND seq > ?2 AND (?3 IS NULL OR log_type = ?3)"
		    " ORDER BY seq LIMIT ?4",
		    error);
		gint rc;

		if (stmt == NULL)
			return NULL;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 2, after_seq);
		if (log_type >= 0)
			sqlite3_bind_text(stmt, 3, qsim_log_type_to_string(log_type), -1,
			                  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, limit);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			QsimLogType type = QSIM_LOG_SYSTEM;
			const gchar *type_str = (const gchar *)sqlite3_column_text(stmt, 2);
			/* column_blob before column_bytes, as SQLite documents */
			gconstpointer data = sqlite3_column_blob(stmt, 3);
			gsize len = (gsize)sqlite3_column_bytes(stmt, 3);
			QsimLogEntry *entry;

			if (max_bytes > 0 && entries->len > 0 && bytes + len > max_bytes) {
				*out_cut = TRUE;
				break;
			}
			bytes += len;

			if (!qsim_log_type_from_string(type_str, &type)) {
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
				            "log of request %s has unknown type '%s'", uuid,
				            type_str != NULL ? type_str : "(null)");
				return NULL;
			}
			entry = qsim_log_entry_new(type, sqlite3_column_int64(stmt, 1), data, len);
			entry->seq = sqlite3_column_int64(stmt, 0);
			g_ptr_array_add(entries, entry);
		}
		if (!*out_cut && rc != SQLITE_DONE) {
			qsim_sqlite_set_error(self->db, rc, "cannot read logs", error);
			return NULL;
		}
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&entries);
}
