#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "store/qsim-request-rules.h"
#include "store/qsim-sqlite-hosts.h"
#include "store/qsim-store-private.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-sqlite-transaction.h"

#define AMBIGUOUS_SHOWN 10

/*
 * Inserts one new row inside the caller's IMMEDIATE transaction (MAX(id) + 1
 * must be computed under the write lock). @out_rc gets SQLite's result code so
 * a batch can tell a refused row from a failed transaction.
 */
static gboolean
insert_row(QsimSqliteStore *self, const QsimRequest *r, gint *out_rc, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "INSERT INTO requests (uuid, id, vm_name, commands, timeout, status,"
	    " created_at, updated_at, attempts, artifact_paths)"
	    " VALUES (?1, (SELECT COALESCE(MAX(id), 0) + 1 FROM requests), ?2, ?3, ?4,"
	    " ?5, ?6, ?6, 0, ?7)",
	    error);
	g_autofree gchar *paths = NULL;
	gint rc;

	*out_rc = SQLITE_ERROR;
	if (stmt == NULL)
		return FALSE;
	if (r->artifact_paths != NULL && r->artifact_paths[0] != NULL)
		paths = g_strjoinv("\n", r->artifact_paths);
	/* STATIC: the strings outlive the step, and the guard clears the bindings */
	sqlite3_bind_text(stmt, 1, r->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->vm_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, r->commands, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, r->timeout_s);
	sqlite3_bind_text(stmt, 5, qsim_status_to_string(r->status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, r->created_at);
	qsim_sqlite_bind_text_or_null(stmt, 7, paths);
	rc = sqlite3_step(stmt);
	*out_rc = rc;
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot insert request", error);
		return FALSE;
	}
	if (r->upload_id != NULL)
		return qsim_sqlite_link_uploads(self, r->uuid, r->upload_id, out_rc, error);
	return TRUE;
}

gboolean
qsim_sqlite_insert_request(QsimStore *store, const QsimRequest *r, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	gint rc;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	if (!insert_row(self, r, &rc, error))
		return FALSE;
	return qsim_sqlite_transaction_commit(tx, error);
}

gboolean
qsim_sqlite_insert_requests(QsimStore *store, GPtrArray *requests, GError **row_errors,
                            GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	for (guint i = 0; i < requests->len; i++) {
		g_autoptr(GError) row_error = NULL;
		gint rc;

		if (insert_row(self, requests->pdata[i], &rc, &row_error))
			continue;
		/* a constraint (a CHECK, a trigger's RAISE(ABORT)) undoes this one
		 * statement and leaves the transaction open: the other rows still
		 * commit. Anything else (I/O, a full disk, RAISE(ROLLBACK)) may have
		 * ended the transaction, so the whole batch fails. */
		if ((rc & 0xff) == SQLITE_CONSTRAINT && !sqlite3_get_autocommit(self->db)) {
			row_errors[i] = g_steal_pointer(&row_error);
			continue;
		}
		g_propagate_error(error, g_steal_pointer(&row_error));
		return FALSE;
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

static QsimRequest *
get_by_prefix(QsimSqliteStore *self, const gchar *prefix, GError **error)
{
	/* all UUID characters sort below 'g', so [prefix, prefix + "g") is exactly the
	 * set of UUIDs starting with prefix, and the primary key index serves it */
	g_autofree gchar *upper = g_strconcat(prefix, "g", NULL);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT " REQUEST_COLUMNS " FROM requests WHERE uuid >= ?1 AND uuid < ?2"
	    " ORDER BY uuid LIMIT ?3",
	    error);
	g_autoptr(GPtrArray) rows = NULL;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, upper, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 3, AMBIGUOUS_SHOWN + 1);
	rows = qsim_sqlite_store_collect_requests(self, stmt, error);
	if (rows == NULL)
		return NULL;
	return qsim_request_pick_by_prefix(rows, AMBIGUOUS_SHOWN, prefix, error);
}

QsimRequest *
qsim_sqlite_get_request(QsimStore *store, const gchar *uuid_or_prefix, guint min_prefix_len,
                        GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	if (strlen(uuid_or_prefix) == 36)
		return qsim_sqlite_store_load_request(self, uuid_or_prefix, error);
	return get_by_prefix(self, uuid_or_prefix, error);
}

GPtrArray *
qsim_sqlite_list_requests(QsimStore *store, const QsimRequestFilter *filter, gboolean *has_more,
                          GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	gint64 before_id = G_MAXINT64;
	gboolean cut = FALSE;

	/* one snapshot for the cursor lookup and the page */
	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return NULL;
	if (filter->before_uuid != NULL) {
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self, "SELECT id FROM requests WHERE uuid = ?1", error);
		gint rc;

		if (stmt == NULL)
			return NULL;
		sqlite3_bind_text(stmt, 1, filter->before_uuid, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_DONE) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
			            "no request %s to list before", filter->before_uuid);
			return NULL;
		}
		if (rc != SQLITE_ROW) {
			qsim_sqlite_set_error(self->db, rc, "cannot read cursor", error);
			return NULL;
		}
		before_id = sqlite3_column_int64(stmt, 0);
	}
	{
		/* two fixed texts rather than one with "?1 IS NULL OR": the planner
		 * then uses (status, id) when a status is given, (id) otherwise */
		const gchar *sql =
		    filter->status >= 0
		        ? "SELECT " REQUEST_COLUMNS " FROM requests WHERE status = ?1 AND id < ?2"
		          " AND (?3 IS NULL OR vm_name = ?3) AND (?4 IS NULL OR agent_id = ?4)"
		          " ORDER BY id DESC LIMIT ?5"
		        : "SELECT " REQUEST_COLUMNS " FROM requests WHERE id < ?2"
		          " AND (?3 IS NULL OR vm_name = ?3) AND (?4 IS NULL OR agent_id = ?4)"
		          " ORDER BY id DESC LIMIT ?5";
		g_autoptr(QsimSqliteCachedStmt) stmt = NULL;
		g_autofree gchar *phrase = NULL;

		/* the trigram index walked newest first: it gives the order, so a
		 * common word stops after one page and a rare one reads only its hits */
		if (filter->text != NULL)
			sql = "SELECT " REQUEST_COLUMNS " FROM (SELECT r.* FROM requests_fts f"
			      " JOIN requests r ON r.id = f.rowid WHERE requests_fts MATCH ?6"
			      " AND f.rowid < ?2 AND (?1 IS NULL OR r.status = ?1)"
			      " AND (?3 IS NULL OR r.vm_name = ?3) AND (?4 IS NULL OR r.agent_id = "
			      "?4)"
			      " ORDER BY f.rowid DESC LIMIT ?5)";
		stmt = qsim_sqlite_store_stmt_get(self, sql, error);

		if (stmt == NULL)
			return NULL;
		if (filter->status >= 0)
			sqlite3_bind_text(stmt, 1, qsim_status_to_string(filter->status), -1,
			                  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, before_id);
		qsim_sqlite_bind_text_or_null(stmt, 3, filter->vm_name);
		qsim_sqlite_bind_text_or_null(stmt, 4, filter->agent_id);
		sqlite3_bind_int64(stmt, 5, (gint64)filter->limit + 1);
		if (filter->text != NULL) {
			g_autoptr(GString) q = g_string_new("\"");

			/* one FTS5 phrase: the user's text is data, never query syntax */
			for (const gchar *c = filter->text; *c != '\0'; c++) {
				if (*c == '"')
					g_string_append_c(q, '"');
				g_string_append_c(q, *c);
			}
			g_string_append_c(q, '"');
			phrase = g_string_free(g_steal_pointer(&q), FALSE);
			sqlite3_bind_text(stmt, 6, phrase, -1, SQLITE_STATIC);
		}
		rows = qsim_sqlite_store_collect_requests_capped(self, stmt, filter->max_bytes,
		                                                 &cut, error);
		if (rows == NULL)
			return NULL;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	*has_more = qsim_request_page_trim(rows, filter->limit, cut);
	return g_steal_pointer(&rows);
}

QsimRequest *
qsim_sqlite_set_status(QsimStore *store, const gchar *uuid, QsimStatus to, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return NULL;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL || !qsim_request_apply_user_status(r, to, now, error))
		return NULL;
	if (!qsim_sqlite_store_update_request(self, r, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

gboolean
qsim_sqlite_delete_request(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL || !qsim_request_check_deletable(r, error))
		return FALSE;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt =
		    qsim_sqlite_store_stmt_get(self, "DELETE FROM requests WHERE uuid = ?1", error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot delete request", error))
			return FALSE;
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

/* FALSE without @error set when no request is pending */
static gboolean
any_pending(QsimSqliteStore *self, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "SELECT 1 FROM requests WHERE status = 'pending' LIMIT 1", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return TRUE;
	if (rc != SQLITE_DONE)
		qsim_sqlite_set_error(self->db, rc, "cannot look for pending requests", error);
	return FALSE;
}

QsimRequest *
qsim_sqlite_claim_next(QsimStore *store, const gchar *agent_id, gint64 lease_ms,
                       guint max_active_vms, guint max_host_vms, GError **error)
{
	g_autofree gchar *host = NULL;
	gint64 slot_id = 0;
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	/* idle agents poll: answer "nothing pending" from a plain read, without
	 * queueing for the write lock; a miss is caught by the next poll */
	if (!any_pending(self, error))
		return NULL;
	/* the write lock first: the count and the pick must not race another agent */
	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL) {
		g_prefix_error(error, "cannot claim: ");
		return NULL;
	}
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "SELECT " REQUEST_COLUMNS
		    " FROM requests WHERE status = 'pending' ORDER BY id LIMIT 1",
		    error);
		gint rc;

		if (stmt == NULL)
			return NULL;
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_DONE)
			return NULL; /* nothing to do */
		if (rc != SQLITE_ROW) {
			qsim_sqlite_set_error(self->db, rc, "cannot pick a pending request", error);
			return NULL;
		}
		r = qsim_sqlite_row_to_request(stmt, error);
		if (r == NULL)
			return NULL;
	}
	if (!qsim_request_apply_claim(r, agent_id, lease_ms, now, error))
		return NULL;
	/* the request's QEMU gets its slot in the transaction that decides to run it */
	if (!qsim_agent_id_parse(agent_id, &host, NULL))
		host = g_strdup(agent_id);
	if (!qsim_sqlite_slots_insert_capped(self->db, now, host, agent_id, QSIM_VM_SLOT_REQUEST,
	                                     r->uuid, max_active_vms, max_host_vms, &slot_id,
	                                     error))
		return NULL;
	if (slot_id == 0)
		return NULL; /* at capacity; the guard rolls back the empty transaction */
	if (!qsim_sqlite_store_update_request(self, r, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

gboolean
qsim_sqlite_mark_running(QsimStore *store, const gchar *uuid, const gchar *agent_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL || !qsim_request_apply_running(r, agent_id, now, error))
		return FALSE;
	if (!qsim_sqlite_store_update_request(self, r, error))
		return FALSE;
	return qsim_sqlite_transaction_commit(tx, error);
}

gboolean
qsim_sqlite_renew_lease(QsimStore *store, const gchar *uuid, const gchar *agent_id, gint64 lease_ms,
                        QsimStatus *out_status, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL || !qsim_request_check_owner(r, agent_id, error))
		return FALSE;
	if (!qsim_store_check_lease_renewable(r, qsim_sqlite_store_now_ms(self), error))
		return FALSE;
	{
		/* a narrow UPDATE: renewals are the most frequent write */
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self, "UPDATE requests SET lease_expires_at = ?2 WHERE uuid = ?1", error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 2, qsim_sqlite_store_now_ms(self) + lease_ms);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot renew lease", error))
			return FALSE;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = r->status;
	return TRUE;
}

gboolean
qsim_sqlite_finish_request(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                           QsimStatus final, gboolean has_exit_code, gint exit_code,
                           const gchar *error_msg, QsimStatus *out_status, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL || !qsim_request_apply_finish(r, agent_id, final, has_exit_code, exit_code,
	                                            error_msg, now, error))
		return FALSE;
	/* the agent finishes once its QEMU is gone */
	if (!qsim_sqlite_store_update_request(self, r, error) ||
	    !qsim_sqlite_slots_drop_request(self->db, uuid, error))
		return FALSE;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_status = r->status;
	return TRUE;
}

GPtrArray *
qsim_sqlite_list_expired_leases(QsimStore *store, gint64 now, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT " REQUEST_COLUMNS " FROM requests WHERE lease_expires_at IS NOT NULL"
	    " AND lease_expires_at <= ?1 ORDER BY lease_expires_at",
	    error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, now);
	return qsim_sqlite_store_collect_requests(self, stmt, error);
}

GPtrArray *
qsim_sqlite_list_leases(QsimStore *store, const gchar *agent_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT " REQUEST_COLUMNS " FROM requests WHERE lease_expires_at IS NOT NULL"
	    " AND (?1 IS NULL OR agent_id = ?1) ORDER BY id",
	    error);

	if (stmt == NULL)
		return NULL;
	qsim_sqlite_bind_text_or_null(stmt, 1, agent_id);
	return qsim_sqlite_store_collect_requests(self, stmt, error);
}

gboolean
qsim_sqlite_recover_request(QsimStore *store, const gchar *uuid, const gchar *expected_agent_id,
                            gboolean retry, const gchar *reason, QsimStatus *out_status,
                            GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL ||
	    !qsim_request_apply_recover(r, expected_agent_id, retry, reason, now, error))
		return FALSE;
	/* its agent is gone, and its QEMU died with it */
	if (!qsim_sqlite_store_update_request(self, r, error) ||
	    !qsim_sqlite_slots_drop_request(self->db, uuid, error))
		return FALSE;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_status = r->status;
	return TRUE;
}

gboolean
qsim_sqlite_set_start_mode(QsimStore *store, const gchar *uuid, QsimStartMode mode, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_sqlite_store_load_request(self, uuid, error);
	if (r == NULL || !qsim_request_check_vm_held(r, error))
		return FALSE;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self, "UPDATE requests SET start_mode = ?2, updated_at = ?3 WHERE uuid = ?1",
		    error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 2, qsim_start_mode_to_string(mode), -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, qsim_sqlite_store_now_ms(self));
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot record the start mode", error))
			return FALSE;
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

gboolean
qsim_sqlite_set_output_truncated(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "UPDATE requests SET output_truncated = 1, updated_at = ?2 WHERE uuid = ?1",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, qsim_sqlite_store_now_ms(self));
	if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot record the output truncation", error))
		return FALSE;
	if (sqlite3_changes(self->db) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "request %s not found", uuid);
		return FALSE;
	}
	return TRUE;
}
