#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-sqlite-transaction.h"

/* Returns: the deleted UUIDs; see qsim_store_purge_requests() */
GPtrArray *
qsim_sqlite_purge_requests(QsimStore *store, gint status, gint64 before_ms, guint limit,
                           gboolean *out_more, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) deleted = g_ptr_array_new_with_free_func(g_free);
	gint64 log_budget = (gint64)limit * QSIM_STORE_PURGE_LOG_ROWS_PER_REQUEST;
	gboolean more = FALSE;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return NULL;
	{
		/* spools no request took a day after they began: an API that died mid-upload */
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self, "DELETE FROM uploads WHERE request_uuid IS NULL AND created_at < ?1",
		    error);

		if (stmt == NULL)
			return NULL;
		sqlite3_bind_int64(stmt, 1,
		                   qsim_sqlite_store_now_ms(self) - QSIM_UPLOAD_ABANDONED_MS);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot purge abandoned uploads",
		                                 error))
			return NULL;
	}
	{
		/* a live lease means the agent still stops the VM of a cancelled
		 * request: it would get NOT_FOUND, so that row waits for a later pass */
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "SELECT uuid FROM requests WHERE finished_at < ?1"
		    " AND status IN ('done', 'failed', 'cancelled') AND (?2 IS NULL OR status = ?2)"
		    " AND lease_expires_at IS NULL ORDER BY finished_at LIMIT ?3",
		    error);
		gint rc;

		if (stmt == NULL)
			return NULL;
		sqlite3_bind_int64(stmt, 1, before_ms);
		if (status >= 0)
			sqlite3_bind_text(stmt, 2, qsim_status_to_string((QsimStatus)status), -1,
			                  SQLITE_STATIC);
		else
			sqlite3_bind_null(stmt, 2);
		sqlite3_bind_int64(stmt, 3, (gint64)limit + 1);
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
			g_ptr_array_add(candidates, qsim_sqlite_column_dup(stmt, 0));
		if (rc != SQLITE_DONE) {
			qsim_sqlite_set_error(self->db, rc, "cannot list requests to purge", error);
			return NULL;
		}
	}
	more = candidates->len > limit;
	for (guint i = 0; i < candidates->len && i < limit; i++) {
		const gchar *uuid = candidates->pdata[i];
		gint64 n_logs;

		{
			/* logs first, bounded, so a huge log cannot make this transaction long */
			g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
			    self,
			    "DELETE FROM request_logs WHERE rowid IN (SELECT rowid FROM "
			    "request_logs"
			    " WHERE request_uuid = ?1 LIMIT ?2)",
			    error);

			if (stmt == NULL)
				return NULL;
			sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(stmt, 2, log_budget);
			if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot purge logs", error))
				return NULL;
			n_logs = sqlite3_changes64(self->db);
		}
		if (n_logs >= log_budget) {
			/* maybe more logs of this request: finish it in the next call */
			more = TRUE;
			break;
		}
		log_budget -= n_logs;
		{
			g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
			    self, "DELETE FROM requests WHERE uuid = ?1", error);

			if (stmt == NULL)
				return NULL;
			sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
			if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot purge request", error))
				return NULL;
		}
		g_ptr_array_add(deleted, g_strdup(uuid));
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	*out_more = more;
	return g_steal_pointer(&deleted);
}

gboolean
qsim_sqlite_reclaim_space(QsimStore *store, guint max_pages, guint64 *out_free_pages,
                          gboolean *out_incremental, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	gint64 mode = 0;
	gint64 free_pages = 0;

	if (!qsim_sqlite_query_int64(self->db, "PRAGMA auto_vacuum", &mode, error))
		return FALSE;
	*out_incremental = mode == 2;
	if (*out_incremental && max_pages > 0) {
		/* a pragma's argument cannot be bound; this is our own integer */
		g_autofree gchar *sql = g_strdup_printf("PRAGMA incremental_vacuum(%u)", max_pages);

		if (!qsim_sqlite_exec(self->db, sql, error)) {
			g_prefix_error(error, "cannot reclaim free pages: ");
			return FALSE;
		}
	}
	if (!qsim_sqlite_query_int64(self->db, "PRAGMA freelist_count", &free_pages, error))
		return FALSE;
	*out_free_pages = (guint64)MAX(free_pages, 0);
	return TRUE;
}

gboolean
qsim_sqlite_vacuum(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	/* the mode of an existing file changes only when VACUUM rewrites it */
	if (!qsim_sqlite_exec(self->db, "PRAGMA auto_vacuum = INCREMENTAL", error) ||
	    !qsim_sqlite_exec(self->db, "VACUUM", error)) {
		g_prefix_error(error, "vacuum failed: ");
		return FALSE;
	}
	return TRUE;
}
