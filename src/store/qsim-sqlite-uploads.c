#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-store-private.h"

/* Inside the caller's transaction: the request takes the spooled parts. */
gboolean
qsim_sqlite_link_uploads(QsimSqliteStore *self, const gchar *uuid, const gchar *upload_id,
                         gint *out_rc, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "UPDATE uploads SET request_uuid = ?1 WHERE upload_id = ?2 AND request_uuid IS NULL"
	    " AND sha256 IS NOT NULL",
	    error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, upload_id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	*out_rc = rc;
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot attach the uploads", error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
run_stmt(QsimSqliteStore *self, sqlite3_stmt *stmt, const gchar *what, GError **error)
{
	return qsim_sqlite_store_stmt_done(self, stmt, what, error);
}

gboolean
qsim_sqlite_upload_add_file(QsimStore *store, const gchar *upload_id, guint idx,
                            QsimUploadKind kind, const gchar *guest_path, guint mode,
                            GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "INSERT INTO uploads (upload_id, idx, kind, guest_path, mode, created_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, upload_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, idx);
	sqlite3_bind_text(stmt, 3, qsim_upload_kind_to_string(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, guest_path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 5, mode);
	sqlite3_bind_int64(stmt, 6, qsim_sqlite_store_now_ms(self));
	return run_stmt(self, stmt, "cannot record an upload", error);
}

gboolean
qsim_sqlite_upload_put_chunk(QsimStore *store, const gchar *upload_id, guint idx, guint seq,
                             GBytes *data, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "INSERT INTO upload_chunks (upload_id, idx, seq, data) VALUES (?1, ?2, ?3, ?4)",
	    error);
	gsize len = 0;
	gconstpointer bytes = g_bytes_get_data(data, &len);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, upload_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, idx);
	sqlite3_bind_int64(stmt, 3, seq);
	sqlite3_bind_blob(stmt, 4, bytes != NULL ? bytes : "", (int)len, SQLITE_STATIC);
	return run_stmt(self, stmt, "cannot store an upload chunk", error);
}

gboolean
qsim_sqlite_upload_finish_file(QsimStore *store, const gchar *upload_id, guint idx, guint64 size,
                               const gchar *sha256, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "UPDATE uploads SET size = ?3, sha256 = ?4 WHERE upload_id = ?1 AND idx = ?2",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, upload_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, idx);
	sqlite3_bind_int64(stmt, 3, (gint64)size);
	sqlite3_bind_text(stmt, 4, sha256, -1, SQLITE_TRANSIENT);
	return run_stmt(self, stmt, "cannot complete an upload", error);
}

gboolean
qsim_sqlite_upload_discard(QsimStore *store, const gchar *upload_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "DELETE FROM uploads WHERE upload_id = ?1 AND request_uuid IS NULL", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, upload_id, -1, SQLITE_TRANSIENT);
	return run_stmt(self, stmt, "cannot discard an upload", error);
}

gboolean
qsim_sqlite_delete_uploads(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    qsim_sqlite_store_stmt_get(self, "DELETE FROM uploads WHERE request_uuid = ?1", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	return run_stmt(self, stmt, "cannot delete uploads", error);
}

static gpointer
row_to_upload(sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(QsimUploadRecord) r = g_new0(QsimUploadRecord, 1);

	r->upload_id = qsim_sqlite_column_dup(stmt, 0);
	r->idx = (guint)sqlite3_column_int64(stmt, 1);
	if (!qsim_upload_kind_from_string((const gchar *)sqlite3_column_text(stmt, 2), &r->kind)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_STORE,
		                    "an upload has an unknown kind");
		return NULL;
	}
	r->guest_path = qsim_sqlite_column_dup(stmt, 3);
	r->mode = (guint)sqlite3_column_int64(stmt, 4);
	r->size = (guint64)sqlite3_column_int64(stmt, 5);
	r->sha256 = qsim_sqlite_column_dup(stmt, 6);
	return g_steal_pointer(&r);
}

GPtrArray *
qsim_sqlite_list_uploads(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT upload_id, idx, kind, guest_path, mode, size, sha256 FROM uploads"
	    " WHERE request_uuid = ?1 ORDER BY idx",
	    error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	return qsim_sqlite_store_collect_rows(self, stmt, row_to_upload,
	                                      (GDestroyNotify)qsim_upload_record_free,
	                                      "cannot list uploads", error);
}

GBytes *
qsim_sqlite_upload_read_chunk(QsimStore *store, const gchar *upload_id, guint idx, guint seq,
                              GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "SELECT data FROM upload_chunks WHERE upload_id = ?1 AND idx = ?2 AND seq = ?3",
	    error);
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, upload_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, idx);
	sqlite3_bind_int64(stmt, 3, seq);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return g_bytes_new(sqlite3_column_blob(stmt, 0),
		                   (gsize)sqlite3_column_bytes(stmt, 0));
	if (rc == SQLITE_DONE)
		return g_bytes_new(NULL, 0);
	qsim_sqlite_set_error(self->db, rc, "cannot read an upload chunk", error);
	return NULL;
}
