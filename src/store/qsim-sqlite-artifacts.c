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
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "request %s not found", uuid);
	else
		qsim_sqlite_set_error(self->db, rc, "cannot look up the request", error);
	return FALSE;
}

gboolean
qsim_sqlite_add_artifacts(QsimStore *store, const gchar *uuid, GPtrArray *records, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	gint64 now = qsim_sqlite_store_now_ms(self);

	if (tx == NULL || !request_exists(self, uuid, error))
		return FALSE;
	for (guint i = 0; i < records->len; i++) {
		const QsimArtifactRecord *r = records->pdata[i];
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "INSERT INTO artifacts (request_uuid, name, kind, size, sha256, mode, target,"
		    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		    error);
		gint rc;

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 2, r->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 3, qsim_artifact_kind_to_string(r->kind), -1,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, (gint64)r->size);
		sqlite3_bind_text(stmt, 5, r->sha256, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 6, r->mode);
		qsim_sqlite_bind_text_or_null(stmt, 7, r->target);
		sqlite3_bind_int64(stmt, 8, now);
		rc = sqlite3_step(stmt);
		if (rc != SQLITE_DONE) {
			if ((rc & 0xff) == SQLITE_CONSTRAINT)
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
				            "artifact '%s' is already recorded", r->name);
			else
				qsim_sqlite_set_error(self->db, rc, "cannot record an artifact",
				                      error);
			return FALSE;
		}
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

static gpointer
row_to_artifact(sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(QsimArtifactRecord) r = qsim_artifact_record_new();

	r->name = qsim_sqlite_column_dup(stmt, 0);
	if (!qsim_artifact_kind_from_string((const gchar *)sqlite3_column_text(stmt, 1),
	                                    &r->kind)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE, "artifact %s has an unknown kind",
		            r->name);
		return NULL;
	}
	r->size = (guint64)sqlite3_column_int64(stmt, 2);
	r->sha256 = qsim_sqlite_column_dup(stmt, 3);
	r->mode = (guint)sqlite3_column_int64(stmt, 4);
	r->target = qsim_sqlite_column_dup(stmt, 5);
	r->created_at = sqlite3_column_int64(stmt, 6);
	return g_steal_pointer(&r);
}

GPtrArray *
qsim_sqlite_list_artifacts(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = NULL;

	if (!request_exists(self, uuid, error))
		return NULL;
	stmt =
	    qsim_sqlite_store_stmt_get(self,
	                               "SELECT name, kind, size, sha256, mode, target, created_at"
	                               " FROM artifacts WHERE request_uuid = ?1 ORDER BY name",
	                               error);
	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	return qsim_sqlite_store_collect_rows(self, stmt, row_to_artifact,
	                                      (GDestroyNotify)qsim_artifact_record_free,
	                                      "cannot list artifacts", error);
}

gboolean
qsim_sqlite_import_artifacts(QsimStore *store, const gchar *uuid, GPtrArray *records,
                             guint *out_inserted, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	guint inserted = 0;

	if (tx == NULL || !request_exists(self, uuid, error))
		return FALSE;
	for (guint i = 0; i < records->len; i++) {
		const QsimArtifactRecord *r = records->pdata[i];
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "INSERT INTO artifacts (request_uuid, name, kind, size, sha256, mode, target,"
		    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		    " ON CONFLICT (request_uuid, name) DO NOTHING",
		    error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 2, r->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 3, qsim_artifact_kind_to_string(r->kind), -1,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, (gint64)r->size);
		sqlite3_bind_text(stmt, 5, r->sha256, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 6, r->mode);
		qsim_sqlite_bind_text_or_null(stmt, 7, r->target);
		sqlite3_bind_int64(stmt, 8, r->created_at);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot import an artifact", error))
			return FALSE;
		inserted += (guint)sqlite3_changes(self->db);
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_inserted = inserted;
	return TRUE;
}

gboolean
qsim_sqlite_count_artifacts(QsimStore *store, guint64 *out_count, GError **error)
{
	gint64 n = 0;

	if (!qsim_sqlite_query_int64(QSIM_SQLITE_STORE(store)->db, "SELECT COUNT(*) FROM artifacts",
	                             &n, error))
		return FALSE;
	*out_count = (guint64)n;
	return TRUE;
}
