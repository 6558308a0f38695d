#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "store/qsim-sqlite-hosts.h"
#include "store/qsim-sqlite-schema.h"
#include "store/qsim-sqlite-store.h"
#include "store/qsim-sqlite-transaction.h"
#include "store/qsim-sqlite-util.h"

#define BUSY_TIMEOUT_MS 5000
#define AMBIGUOUS_SHOWN 10
#define CANCEL_REASON QSIM_END_TEXT_CANCELLED

struct _QsimSqliteStore {
	QsimStore parent_instance;
	sqlite3 *db;
	gchar *path;
	guint schema_version;
	GHashTable *stmts; /* constant SQL text -> sqlite3_stmt*, finalized on dispose */
};

G_DEFINE_FINAL_TYPE(QsimSqliteStore, qsim_sqlite_store, QSIM_TYPE_STORE)

#define REQUEST_COLUMNS                                                                            \
	"uuid, vm_name, commands, timeout, status, held_from, created_at, updated_at,"             \
	" started_at, finished_at, exit_code, error, agent_id, lease_expires_at, attempts,"        \
	" start_mode, output_truncated"

#define SQL_SELECT_REQUEST "SELECT " REQUEST_COLUMNS " FROM requests WHERE uuid = ?1"

/* Returns: (transfer none): a cached statement, reset by its g_autoptr cleanup */
static QsimSqliteCachedStmt *
stmt_get(QsimSqliteStore *self, const gchar *sql, GError **error)
{
	sqlite3_stmt *stmt = g_hash_table_lookup(self->stmts, sql);
	gint rc;

	if (stmt != NULL)
		return stmt;
	rc = sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
	if (rc != SQLITE_OK) {
		qsim_sqlite_set_error(self->db, rc, "cannot prepare statement", error);
		return NULL;
	}
	g_hash_table_insert(self->stmts, (gpointer)sql, stmt);
	return stmt;
}

/* Steps a statement that returns no row; context names the operation in the error */
static gboolean
stmt_done(QsimSqliteStore *self, sqlite3_stmt *stmt, const gchar *context, GError **error)
{
	gint rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, context, error);
		return FALSE;
	}
	return TRUE;
}

static void
bind_text_or_null(sqlite3_stmt *stmt, gint idx, const gchar *text)
{
	if (text == NULL)
		sqlite3_bind_null(stmt, idx);
	else
		sqlite3_bind_text(stmt, idx, text, -1, SQLITE_TRANSIENT);
}

static void
bind_time_or_null(sqlite3_stmt *stmt, gint idx, gint64 ms)
{
	if (ms == 0)
		sqlite3_bind_null(stmt, idx);
	else
		sqlite3_bind_int64(stmt, idx, ms);
}

static gchar *
column_dup(sqlite3_stmt *stmt, gint col)
{
	const guchar *text = sqlite3_column_text(stmt, col);

	return text != NULL ? g_strdup((const gchar *)text) : NULL;
}

/* Returns: (transfer full): the request at the current row of a REQUEST_COLUMNS query */
static QsimRequest *
row_to_request(sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(QsimRequest) request = qsim_request_new();
	const gchar *status = (const gchar *)sqlite3_column_text(stmt, 4);
	const gchar *held_from = (const gchar *)sqlite3_column_text(stmt, 5);

	request->uuid = column_dup(stmt, 0);
	request->vm_name = column_dup(stmt, 1);
	request->commands = column_dup(stmt, 2);
	request->timeout_s = sqlite3_column_int64(stmt, 3);
	if (!qsim_status_from_string(status, &request->status)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "request %s has an unknown status '%s'", request->uuid,
		            status != NULL ? status : "(null)");
		return NULL;
	}
	if (held_from != NULL && !qsim_status_from_string(held_from, &request->held_from)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "request %s has an unknown held_from '%s'", request->uuid, held_from);
		return NULL;
	}
	request->created_at = sqlite3_column_int64(stmt, 6);
	request->updated_at = sqlite3_column_int64(stmt, 7);
	request->started_at = sqlite3_column_int64(stmt, 8);
	request->finished_at = sqlite3_column_int64(stmt, 9);
	request->has_exit_code = sqlite3_column_type(stmt, 10) != SQLITE_NULL;
	request->exit_code = sqlite3_column_int(stmt, 10);
	request->error = column_dup(stmt, 11);
	request->agent_id = column_dup(stmt, 12);
	request->lease_expires_at = sqlite3_column_int64(stmt, 13);
	request->attempts = (guint)sqlite3_column_int64(stmt, 14);
	/* NULL (not started yet) leaves none */
	qsim_start_mode_from_string((const gchar *)sqlite3_column_text(stmt, 15),
	                            &request->start_mode);
	request->output_truncated = sqlite3_column_int(stmt, 16) != 0;
	return g_steal_pointer(&request);
}

/* Reads the record at the current row of a query, or NULL with @error */
typedef gpointer (*RowFunc)(sqlite3_stmt *stmt, GError **error);

/* Runs a query to completion, one record per row. Returns: (transfer container) */
static GPtrArray *
collect_rows(QsimSqliteStore *self, sqlite3_stmt *stmt, RowFunc row_func, GDestroyNotify free_func,
             const gchar *context, GError **error)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(free_func);
	gint rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		gpointer row = row_func(stmt, error);

		if (row == NULL)
			return NULL;
		g_ptr_array_add(rows, row);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, context, error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

/* Runs a REQUEST_COLUMNS query to completion. Returns: (transfer container) */
static GPtrArray *
collect_requests(QsimSqliteStore *self, sqlite3_stmt *stmt, GError **error)
{
	return collect_rows(self, stmt, (RowFunc)row_to_request, (GDestroyNotify)qsim_request_free,
	                    "cannot read requests", error);
}

/* The text a request carries, the part that can be large (commands up to 256 KiB) */
static gsize
request_text_bytes(const QsimRequest *r)
{
	return 256 + strlen(r->commands) + (r->error != NULL ? strlen(r->error) : 0) +
	       strlen(r->vm_name) + (r->agent_id != NULL ? strlen(r->agent_id) : 0);
}

/*
 * collect_requests() that stops once the rows' text passes @max_bytes (0 = no
 * cap), after at least one row; *out_cut says it stopped early.
 * Returns: (transfer container)
 */
static GPtrArray *
collect_requests_capped(QsimSqliteStore *self, sqlite3_stmt *stmt, gsize max_bytes,
                        gboolean *out_cut, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);
	gsize bytes = 0;
	gint rc;

	*out_cut = FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimRequest *r = row_to_request(stmt, error);

		if (r == NULL)
			return NULL;
		bytes += request_text_bytes(r);
		if (max_bytes > 0 && rows->len > 0 && bytes > max_bytes) {
			qsim_request_free(r);
			*out_cut = TRUE;
			return g_steal_pointer(&rows);
		}
		g_ptr_array_add(rows, r);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read requests", error);
		return NULL;
	}
	return g_steal_pointer(&rows);
}

/* Returns: (transfer full): the full row of @uuid, or NULL with NOT_FOUND */
static QsimRequest *
load_request(QsimSqliteStore *self, const gchar *uuid, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(self, SQL_SELECT_REQUEST, error);
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return row_to_request(stmt, error);
	if (rc == SQLITE_DONE) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
		return NULL;
	}
	qsim_sqlite_set_error(self->db, rc, "cannot read request", error);
	return NULL;
}

static gboolean
check_owner(const QsimRequest *request, const gchar *agent_id, GError **error)
{
	if (g_strcmp0(request->agent_id, agent_id) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and claimed by %s, not by agent %s", request->uuid,
		            qsim_status_to_string(request->status),
		            request->agent_id != NULL ? request->agent_id : "no agent", agent_id);
		return FALSE;
	}
	return TRUE;
}

/*
 * The one UPDATE for status changes: every column a transition may touch,
 * written from the (already checked) new in-memory row.
 */
static gboolean
store_request(QsimSqliteStore *self, const QsimRequest *r, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
	    self,
	    "UPDATE requests SET status = ?2, held_from = ?3, updated_at = ?4, started_at = ?5,"
	    " finished_at = ?6, exit_code = ?7, error = ?8, agent_id = ?9,"
	    " lease_expires_at = ?10, attempts = ?11, end_reason = ?12 WHERE uuid = ?1",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, r->uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, qsim_status_to_string(r->status), -1, SQLITE_STATIC);
	if (r->status == QSIM_STATUS_HOLD)
		sqlite3_bind_text(stmt, 3, qsim_status_to_string(r->held_from), -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 3);
	sqlite3_bind_int64(stmt, 4, r->updated_at);
	bind_time_or_null(stmt, 5, r->started_at);
	bind_time_or_null(stmt, 6, r->finished_at);
	if (r->has_exit_code)
		sqlite3_bind_int(stmt, 7, r->exit_code);
	else
		sqlite3_bind_null(stmt, 7);
	bind_text_or_null(stmt, 8, r->error);
	bind_text_or_null(stmt, 9, r->agent_id);
	bind_time_or_null(stmt, 10, r->lease_expires_at);
	sqlite3_bind_int64(stmt, 11, r->attempts);
	/* in the same statement as the status: the finished trigger reads it */
	if (qsim_status_is_final(r->status))
		sqlite3_bind_text(stmt, 12,
		                  qsim_end_reason_to_string(qsim_end_reason_classify(
		                      r->status, r->has_exit_code, r->exit_code, r->error)),
		                  -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 12);
	return stmt_done(self, stmt, "cannot update request", error);
}

static gint64
now_ms(QsimSqliteStore *self)
{
	return qsim_store_now_ms(QSIM_STORE(self));
}

static guint
sqlite_get_schema_version(QsimStore *store)
{
	return QSIM_SQLITE_STORE(store)->schema_version;
}

static gboolean
sqlite_ping(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(self, "PRAGMA user_version", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		qsim_sqlite_set_error(self->db, rc, "database does not answer", error);
		return FALSE;
	}
	if ((guint)sqlite3_column_int64(stmt, 0) != self->schema_version) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "database schema changed to version %" G_GINT64_FORMAT
		            " while qsim runs with %u",
		            (gint64)sqlite3_column_int64(stmt, 0), self->schema_version);
		return FALSE;
	}
	return TRUE;
}

/*
 * Inserts one new row inside the caller's IMMEDIATE transaction (MAX(id) + 1
 * must be computed under the write lock). @out_rc gets SQLite's result code so
 * a batch can tell a refused row from a failed transaction.
 */
static gboolean
insert_row(QsimSqliteStore *self, const QsimRequest *r, gint *out_rc, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "INSERT INTO requests (uuid, id, vm_name, commands, timeout, status,"
	             " created_at, updated_at, attempts)"
	             " VALUES (?1, (SELECT COALESCE(MAX(id), 0) + 1 FROM requests), ?2, ?3, ?4,"
	             " ?5, ?6, ?6, 0)",
	             error);
	gint rc;

	*out_rc = SQLITE_ERROR;
	if (stmt == NULL)
		return FALSE;
	/* STATIC: the strings outlive the step, and the guard clears the bindings */
	sqlite3_bind_text(stmt, 1, r->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->vm_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, r->commands, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 4, r->timeout_s);
	sqlite3_bind_text(stmt, 5, qsim_status_to_string(r->status), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 6, r->created_at);
	rc = sqlite3_step(stmt);
	*out_rc = rc;
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot insert request", error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
sqlite_insert_request(QsimStore *store, const QsimRequest *r, GError **error)
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

static gboolean
sqlite_insert_requests(QsimStore *store, GPtrArray *requests, GError **row_errors, GError **error)
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
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "SELECT " REQUEST_COLUMNS " FROM requests WHERE uuid >= ?1 AND uuid < ?2"
	             " ORDER BY uuid LIMIT ?3",
	             error);
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GString) names = NULL;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, upper, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 3, AMBIGUOUS_SHOWN + 1);
	rows = collect_requests(self, stmt, error);
	if (rows == NULL)
		return NULL;
	if (rows->len == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request matches '%s'",
		            prefix);
		return NULL;
	}
	if (rows->len == 1)
		return qsim_request_copy(g_ptr_array_index(rows, 0));
	names = g_string_new(NULL);
	for (guint i = 0; i < MIN(rows->len, AMBIGUOUS_SHOWN); i++) {
		const QsimRequest *r = g_ptr_array_index(rows, i);

		g_string_append_printf(names, "%s%s", i > 0 ? ", " : "", r->uuid);
	}
	if (rows->len > AMBIGUOUS_SHOWN)
		g_string_append(names, ", ...");
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS,
	            "request ID prefix '%s' is ambiguous: it matches %s", prefix, names->str);
	return NULL;
}

static QsimRequest *
sqlite_get_request(QsimStore *store, const gchar *uuid_or_prefix, guint min_prefix_len,
                   GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	if (strlen(uuid_or_prefix) == 36)
		return load_request(self, uuid_or_prefix, error);
	return get_by_prefix(self, uuid_or_prefix, error);
}

static GPtrArray *
sqlite_list_requests(QsimStore *store, const QsimRequestFilter *filter, gboolean *has_more,
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
		g_autoptr(QsimSqliteCachedStmt) stmt =
		    stmt_get(self, "SELECT id FROM requests WHERE uuid = ?1", error);
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
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(self, sql, error);

		if (stmt == NULL)
			return NULL;
		if (filter->status >= 0)
			sqlite3_bind_text(stmt, 1, qsim_status_to_string(filter->status), -1,
			                  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 2, before_id);
		bind_text_or_null(stmt, 3, filter->vm_name);
		bind_text_or_null(stmt, 4, filter->agent_id);
		sqlite3_bind_int64(stmt, 5, (gint64)filter->limit + 1);
		rows = collect_requests_capped(self, stmt, filter->max_bytes, &cut, error);
		if (rows == NULL)
			return NULL;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	*has_more = cut || rows->len > filter->limit;
	if (rows->len > filter->limit)
		g_ptr_array_set_size(rows, filter->limit);
	return g_steal_pointer(&rows);
}

static QsimRequest *
sqlite_set_status(QsimStore *store, const gchar *uuid, QsimStatus to, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return NULL;
	r = load_request(self, uuid, error);
	if (r == NULL)
		return NULL;
	if (!qsim_status_check_transition(r->status, r->held_from, to, QSIM_STATUS_ACTOR_USER,
	                                  error)) {
		g_prefix_error(error, "request %s: ", r->uuid);
		return NULL;
	}
	if (to == QSIM_STATUS_HOLD)
		r->held_from = r->status;
	if (to == QSIM_STATUS_CANCELLED) {
		/* the lease stays: the agent keeps its VM slot until it has stopped the VM */
		g_free(r->error);
		r->error = g_strdup(CANCEL_REASON);
		if (r->finished_at == 0)
			r->finished_at = now;
	}
	r->status = to;
	r->updated_at = now;
	if (!store_request(self, r, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

static gboolean
sqlite_delete_request(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_request(self, uuid, error);
	if (r == NULL)
		return FALSE;
	if (!qsim_status_is_final(r->status)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s; only a done, failed or cancelled request can be "
		            "deleted",
		            r->uuid, qsim_status_to_string(r->status));
		return FALSE;
	}
	{
		g_autoptr(QsimSqliteCachedStmt) stmt =
		    stmt_get(self, "DELETE FROM requests WHERE uuid = ?1", error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		if (!stmt_done(self, stmt, "cannot delete request", error))
			return FALSE;
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

static gboolean
count_live_leases(QsimSqliteStore *self, gint64 now, guint *out_vms, guint *out_agents,
                  GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "SELECT COUNT(*), COUNT(DISTINCT agent_id) FROM requests"
	             " WHERE lease_expires_at IS NOT NULL AND lease_expires_at > ?1",
	             error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, now);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		qsim_sqlite_set_error(self->db, rc, "cannot count active VMs", error);
		return FALSE;
	}
	if (out_vms != NULL)
		*out_vms = (guint)sqlite3_column_int64(stmt, 0);
	if (out_agents != NULL)
		*out_agents = (guint)sqlite3_column_int64(stmt, 1);
	return TRUE;
}

/* FALSE without @error set when no request is pending */
static gboolean
any_pending(QsimSqliteStore *self, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self, "SELECT 1 FROM requests WHERE status = 'pending' LIMIT 1", error);
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

static QsimRequest *
sqlite_claim_next(QsimStore *store, const gchar *agent_id, gint64 lease_ms, guint max_active_vms,
                  guint max_host_vms, GError **error)
{
	g_autofree gchar *host = NULL;
	gint64 slot_id = 0;
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = now_ms(self);

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
		g_autoptr(QsimSqliteCachedStmt) stmt =
		    stmt_get(self,
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
		r = row_to_request(stmt, error);
		if (r == NULL)
			return NULL;
	}
	if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_ACKNOWLEDGED,
	                                  QSIM_STATUS_ACTOR_AGENT, error))
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
	r->status = QSIM_STATUS_ACKNOWLEDGED;
	g_free(r->agent_id);
	r->agent_id = g_strdup(agent_id);
	r->lease_expires_at = now + lease_ms;
	r->attempts++;
	r->updated_at = now;
	if (!store_request(self, r, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

static gboolean
sqlite_mark_running(QsimStore *store, const gchar *uuid, const gchar *agent_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_request(self, uuid, error);
	if (r == NULL || !check_owner(r, agent_id, error))
		return FALSE;
	if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_RUNNING,
	                                  QSIM_STATUS_ACTOR_AGENT, error)) {
		g_prefix_error(error, "request %s: ", r->uuid);
		return FALSE;
	}
	r->status = QSIM_STATUS_RUNNING;
	r->started_at = now;
	r->updated_at = now;
	if (!store_request(self, r, error))
		return FALSE;
	return qsim_sqlite_transaction_commit(tx, error);
}

static gboolean
sqlite_renew_lease(QsimStore *store, const gchar *uuid, const gchar *agent_id, gint64 lease_ms,
                   QsimStatus *out_status, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_request(self, uuid, error);
	if (r == NULL || !check_owner(r, agent_id, error))
		return FALSE;
	if (r->lease_expires_at == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and holds no lease: it was recovered or finished",
		            r->uuid, qsim_status_to_string(r->status));
		return FALSE;
	}
	{
		/* a narrow UPDATE: renewals are the most frequent write */
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
		    self, "UPDATE requests SET lease_expires_at = ?2 WHERE uuid = ?1", error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(stmt, 2, now_ms(self) + lease_ms);
		if (!stmt_done(self, stmt, "cannot renew lease", error))
			return FALSE;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = r->status;
	return TRUE;
}

static gboolean
sqlite_finish_request(QsimStore *store, const gchar *uuid, const gchar *agent_id, QsimStatus final,
                      gboolean has_exit_code, gint exit_code, const gchar *error_msg,
                      QsimStatus *out_status, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_request(self, uuid, error);
	if (r == NULL || !check_owner(r, agent_id, error))
		return FALSE;
	if (r->status == QSIM_STATUS_CANCELLED) {
		/* the user won the race: keep cancelled and its reason, record the rest */
		if (has_exit_code) {
			r->has_exit_code = TRUE;
			r->exit_code = exit_code;
		}
	} else {
		if (!qsim_status_check_transition(r->status, r->held_from, final,
		                                  QSIM_STATUS_ACTOR_AGENT, error)) {
			g_prefix_error(error, "request %s: ", r->uuid);
			return FALSE;
		}
		r->status = final;
		r->has_exit_code = has_exit_code;
		r->exit_code = has_exit_code ? exit_code : 0;
		g_free(r->error);
		r->error = g_strdup(error_msg);
	}
	if (r->finished_at == 0)
		r->finished_at = now;
	r->lease_expires_at = 0;
	r->updated_at = now;
	/* the agent finishes once its QEMU is gone */
	if (!store_request(self, r, error) ||
	    !qsim_sqlite_slots_drop_request(self->db, uuid, error))
		return FALSE;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_status = r->status;
	return TRUE;
}

static GPtrArray *
sqlite_list_expired_leases(QsimStore *store, gint64 now, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "SELECT " REQUEST_COLUMNS " FROM requests WHERE lease_expires_at IS NOT NULL"
	             " AND lease_expires_at <= ?1 ORDER BY lease_expires_at",
	             error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, now);
	return collect_requests(self, stmt, error);
}

static GPtrArray *
sqlite_list_leases(QsimStore *store, const gchar *agent_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "SELECT " REQUEST_COLUMNS " FROM requests WHERE lease_expires_at IS NOT NULL"
	             " AND (?1 IS NULL OR agent_id = ?1) ORDER BY id",
	             error);

	if (stmt == NULL)
		return NULL;
	bind_text_or_null(stmt, 1, agent_id);
	return collect_requests(self, stmt, error);
}

static gboolean
sqlite_recover_request(QsimStore *store, const gchar *uuid, const gchar *expected_agent_id,
                       gboolean retry, const gchar *reason, QsimStatus *out_status, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_request(self, uuid, error);
	if (r == NULL)
		return FALSE;
	if (expected_agent_id != NULL && !check_owner(r, expected_agent_id, error))
		return FALSE;
	if (r->lease_expires_at == 0) {
		/* the lease is the claim: without it another recoverer already acted */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and holds no lease: nothing to recover", r->uuid,
		            qsim_status_to_string(r->status));
		return FALSE;
	}
	if (qsim_status_is_final(r->status)) {
		/* cancelled while the agent died: only free the VM slot */
	} else if (retry && r->status == QSIM_STATUS_ACKNOWLEDGED &&
	           r->attempts < QSIM_STORE_MAX_ATTEMPTS) {
		if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_PENDING,
		                                  QSIM_STATUS_ACTOR_AGENT, error))
			return FALSE;
		r->status = QSIM_STATUS_PENDING;
		g_clear_pointer(&r->agent_id, g_free);
	} else {
		if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_FAILED,
		                                  QSIM_STATUS_ACTOR_AGENT, error)) {
			g_prefix_error(error, "request %s: ", r->uuid);
			return FALSE;
		}
		r->status = QSIM_STATUS_FAILED;
		g_free(r->error);
		r->error = g_strdup(reason);
		if (r->finished_at == 0)
			r->finished_at = now;
	}
	r->lease_expires_at = 0;
	r->updated_at = now;
	/* its agent is gone, and its QEMU died with it */
	if (!store_request(self, r, error) ||
	    !qsim_sqlite_slots_drop_request(self->db, uuid, error))
		return FALSE;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_status = r->status;
	return TRUE;
}

static gboolean
request_exists(QsimSqliteStore *self, const gchar *uuid, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self, "SELECT 1 FROM requests WHERE uuid = ?1", error);
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

static gint64
sqlite_append_logs(QsimStore *store, const gchar *uuid, GPtrArray *chunks, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	gint64 seq = 0;
	gint64 now = now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return -1;
	if (!request_exists(self, uuid, error))
		return -1;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
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
		g_autoptr(QsimSqliteCachedStmt) stmt =
		    stmt_get(self,
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
		if (!stmt_done(self, stmt, "cannot append log", error))
			return -1;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return -1;
	return seq;
}

static GPtrArray *
sqlite_read_logs(QsimStore *store, const gchar *uuid, gint64 after_seq, guint limit, gint log_type,
                 gsize max_bytes, gboolean *out_cut, GError **error)
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
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
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

static gint
compare_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Counts by status and by start mode come from request_counts, kept by
 * triggers in the writing transaction (schema v4): a GROUP BY over requests
 * was O(rows) and stalled the main loop at a million rows.
 */
static gboolean
stats_counts(QsimSqliteStore *self, QsimStats *stats, gint64 now, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self, "SELECT dimension, value, n FROM request_counts", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const gchar *dimension = (const gchar *)sqlite3_column_text(stmt, 0);
		const gchar *value = (const gchar *)sqlite3_column_text(stmt, 1);
		/* a negative count would be a trigger bug: never show it as 2^64 */
		guint64 n = (guint64)MAX(sqlite3_column_int64(stmt, 2), 0);

		if (g_strcmp0(dimension, "status") == 0) {
			QsimStatus status;

			if (!qsim_status_from_string(value, &status))
				continue; /* seeded from the CHECKed names */
			stats->counts[status] = n;
			stats->total += n;
		} else {
			QsimStartMode mode = QSIM_START_MODE_NONE;

			/* 'none' is not a mode name and stays NONE */
			qsim_start_mode_from_string(value, &mode);
			stats->start_counts[mode] += n;
		}
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot count requests", error);
		return FALSE;
	}
	{
		/* the lowest pending id is the oldest submit: one step down (status, id)
		 * where MIN(created_at) visited every pending row */
		g_autoptr(QsimSqliteCachedStmt) oldest =
		    stmt_get(self,
		             "SELECT created_at FROM requests WHERE status = 'pending'"
		             " ORDER BY id LIMIT 1",
		             error);

		if (oldest == NULL)
			return FALSE;
		rc = sqlite3_step(oldest);
		if (rc == SQLITE_ROW) {
			stats->has_oldest_pending = TRUE;
			stats->oldest_pending_age_ms =
			    MAX(now - sqlite3_column_int64(oldest, 0), 0);
		} else if (rc != SQLITE_DONE) {
			qsim_sqlite_set_error(self->db, rc, "cannot read oldest pending", error);
			return FALSE;
		}
	}
	return count_live_leases(self, now, &stats->active_vms, &stats->active_agents, error);
}

static gboolean
stats_latencies(QsimSqliteStore *self, QsimStats *stats, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "SELECT created_at, started_at, finished_at, start_mode FROM requests"
	             " WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?1",
	             error);
	g_autoptr(GArray) queue = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GArray) run = g_array_new(FALSE, FALSE, sizeof(gint64));
	/* (element-type GArray of gint64), indexed by QsimStartMode */
	g_autoptr(GPtrArray) by_mode =
	    g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++)
		g_ptr_array_add(by_mode, g_array_new(FALSE, FALSE, sizeof(gint64)));
	sqlite3_bind_int(stmt, 1, QSIM_STATS_SAMPLE_SIZE);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		gint64 created = sqlite3_column_int64(stmt, 0);
		gint64 finished = sqlite3_column_int64(stmt, 2);
		gint64 started, d;
		QsimStartMode mode = QSIM_START_MODE_NONE;

		/* a request cancelled before it started has no queue or run time */
		if (sqlite3_column_type(stmt, 1) == SQLITE_NULL)
			continue;
		started = sqlite3_column_int64(stmt, 1);
		/* clamp: clocks of different agent hosts may disagree slightly */
		d = MAX(started - created, 0);
		g_array_append_val(queue, d);
		qsim_start_mode_from_string((const gchar *)sqlite3_column_text(stmt, 3), &mode);
		g_array_append_val((GArray *)g_ptr_array_index(by_mode, mode), d);
		d = MAX(finished - started, 0);
		g_array_append_val(run, d);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read latencies", error);
		return FALSE;
	}
	if (queue->len > 0) {
		g_array_sort(queue, compare_int64);
		g_array_sort(run, compare_int64);
		stats->has_queue_latency = TRUE;
		stats->queue_p50_ms = qsim_stats_percentile((gint64 *)queue->data, queue->len, 50);
		stats->queue_p95_ms = qsim_stats_percentile((gint64 *)queue->data, queue->len, 95);
		stats->has_run_latency = TRUE;
		stats->run_p50_ms = qsim_stats_percentile((gint64 *)run->data, run->len, 50);
		stats->run_p95_ms = qsim_stats_percentile((gint64 *)run->data, run->len, 95);
	}
	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++) {
		GArray *sample = g_ptr_array_index(by_mode, m);

		if (sample->len == 0)
			continue;
		g_array_sort(sample, compare_int64);
		stats->has_start_latency[m] = TRUE;
		stats->start_p50_ms[m] =
		    qsim_stats_percentile((gint64 *)sample->data, sample->len, 50);
	}
	return TRUE;
}

static QsimStats *
sqlite_get_stats(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimStats) stats = qsim_stats_new();

	/* one snapshot, so the numbers agree with each other */
	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return NULL;
	if (!stats_counts(self, stats, now_ms(self), error) || !stats_latencies(self, stats, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&stats);
}

static gboolean
metrics_totals(QsimSqliteStore *self, QsimStoreMetrics *m, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
	    self, "SELECT event, label1, label2, n FROM request_totals ORDER BY 1, 2, 3", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		qsim_store_metrics_add_total(m, (const gchar *)sqlite3_column_text(stmt, 0),
		                             (const gchar *)sqlite3_column_text(stmt, 1),
		                             (const gchar *)sqlite3_column_text(stmt, 2),
		                             (guint64)MAX(sqlite3_column_int64(stmt, 3), 0));
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read totals", error);
		return FALSE;
	}
	return TRUE;
}

/* the templates table has a row per VM and host: small whatever the traffic */
static gboolean
metrics_templates(QsimSqliteStore *self, QsimStoreMetrics *m, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self, "SELECT state, COUNT(*) FROM templates GROUP BY state", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimTemplateRecordState state;

		if (qsim_template_record_state_from_string(
		        (const gchar *)sqlite3_column_text(stmt, 0), &state))
			m->templates[state] = (guint64)sqlite3_column_int64(stmt, 1);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot count templates", error);
		return FALSE;
	}
	return TRUE;
}

static QsimStoreMetrics *
sqlite_get_metrics(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimStoreMetrics) m = qsim_store_metrics_new();
	g_autoptr(QsimStats) stats = qsim_stats_new();
	gint64 pages = 0, free_pages = 0, page_size = 0;

	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return NULL;
	/* the request_counts half of /stats: no latency sample, that one reads rows */
	if (!stats_counts(self, stats, now_ms(self), error) || !metrics_totals(self, m, error) ||
	    !metrics_templates(self, m, error) ||
	    !qsim_sqlite_query_int64(self->db, "PRAGMA page_count", &pages, error) ||
	    !qsim_sqlite_query_int64(self->db, "PRAGMA freelist_count", &free_pages, error) ||
	    !qsim_sqlite_query_int64(self->db, "PRAGMA page_size", &page_size, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	memcpy(m->status_counts, stats->counts, sizeof m->status_counts);
	m->active_vms = stats->active_vms;
	m->active_agents = stats->active_agents;
	m->has_oldest_pending = stats->has_oldest_pending;
	m->oldest_pending_age_ms = stats->oldest_pending_age_ms;
	m->db_bytes = (guint64)MAX(pages, 0) * (guint64)MAX(page_size, 0);
	m->db_free_bytes = (guint64)MAX(free_pages, 0) * (guint64)MAX(page_size, 0);
	return g_steal_pointer(&m);
}

static gboolean
sqlite_count_active_vms(QsimStore *store, guint *out_count, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return count_live_leases(self, now_ms(self), out_count, NULL, error);
}

static gboolean
sqlite_set_start_mode(QsimStore *store, const gchar *uuid, QsimStartMode mode, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_request(self, uuid, error);
	if (r == NULL)
		return FALSE;
	if (r->lease_expires_at == 0) {
		/* the lease is the VM: without one no VM runs for it */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and no agent holds a VM for it: no start mode to "
		            "record",
		            r->uuid, qsim_status_to_string(r->status));
		return FALSE;
	}
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
		    self, "UPDATE requests SET start_mode = ?2, updated_at = ?3 WHERE uuid = ?1",
		    error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(stmt, 2, qsim_start_mode_to_string(mode), -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, now_ms(self));
		if (!stmt_done(self, stmt, "cannot record the start mode", error))
			return FALSE;
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

static gboolean
sqlite_set_output_truncated(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
	    self, "UPDATE requests SET output_truncated = 1, updated_at = ?2 WHERE uuid = ?1",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, now_ms(self));
	if (!stmt_done(self, stmt, "cannot record the output truncation", error))
		return FALSE;
	if (sqlite3_changes(self->db) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "request %s not found", uuid);
		return FALSE;
	}
	return TRUE;
}

/* ---- accelerator verdicts ------------------------------------------------ */

static gboolean
sqlite_put_accel_verdict(QsimStore *store, const QsimAccelVerdict *v, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimSqliteCachedStmt) stmt = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	stmt = stmt_get(self,
	                "INSERT INTO accel_verdicts (host, cache_key, kvm, reason, probe_ms,"
	                " probed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	                " ON CONFLICT (host) DO UPDATE SET cache_key = excluded.cache_key,"
	                " kvm = excluded.kvm, reason = excluded.reason,"
	                " probe_ms = excluded.probe_ms, probed_at = excluded.probed_at",
	                error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, v->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, v->cache_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, v->kvm ? 1 : 0);
	sqlite3_bind_text(stmt, 4, v->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, v->probe_ms);
	sqlite3_bind_int64(stmt, 6, v->probed_at);
	if (!stmt_done(self, stmt, "cannot write the accelerator verdict", error))
		return FALSE;
	g_clear_pointer(&stmt, qsim_sqlite_cached_stmt_release);
	return qsim_sqlite_transaction_commit(tx, error);
}

static GPtrArray *
sqlite_list_accel_verdicts(QsimStore *store, const gchar *host, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    stmt_get(self,
	             "SELECT host, cache_key, kvm, reason, probe_ms, probed_at FROM accel_verdicts"
	             " WHERE (?1 IS NULL OR host = ?1) ORDER BY host",
	             error);
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	if (stmt == NULL)
		return NULL;
	if (host != NULL)
		sqlite3_bind_text(stmt, 1, host, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, 1);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_accel_verdict_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		g_autofree gchar *h = column_dup(stmt, 0);
		g_autofree gchar *key = column_dup(stmt, 1);
		g_autofree gchar *reason = column_dup(stmt, 3);

		g_ptr_array_add(out,
		                qsim_accel_verdict_new(h, key, sqlite3_column_int(stmt, 2) != 0,
		                                       reason, sqlite3_column_int64(stmt, 4),
		                                       sqlite3_column_int64(stmt, 5)));
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read the accelerator verdicts", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

/* ---- templates ------------------------------------------------------------ */

#define TEMPLATE_COLUMNS                                                                           \
	"vm_name, host, state, dir, size_bytes, image_sha256, image_size, image_mtime_us,"         \
	" config_hash, qemu_version, machine, build_started_at, build_finished_at, build_ms,"      \
	" reason, prepare_requested_at, prepare_force, updated_at, builder"

#define SQL_SELECT_TEMPLATE                                                                        \
	"SELECT " TEMPLATE_COLUMNS " FROM templates WHERE vm_name = ?1 AND host = ?2"

/* Returns: (transfer full): the record at the current row of a TEMPLATE_COLUMNS query */
static QsimTemplateRecord *
row_to_template(sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(QsimTemplateRecord) r = g_new0(QsimTemplateRecord, 1);
	const gchar *state = (const gchar *)sqlite3_column_text(stmt, 2);

	r->vm_name = column_dup(stmt, 0);
	r->host = column_dup(stmt, 1);
	if (!qsim_template_record_state_from_string(state, &r->state)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "template %s on %s has an unknown state '%s'", r->vm_name, r->host,
		            state != NULL ? state : "(null)");
		return NULL;
	}
	r->dir = column_dup(stmt, 3);
	r->size_bytes = (guint64)MAX(sqlite3_column_int64(stmt, 4), 0);
	r->image_sha256 = column_dup(stmt, 5);
	r->image_size = (guint64)MAX(sqlite3_column_int64(stmt, 6), 0);
	r->image_mtime_us = sqlite3_column_int64(stmt, 7);
	r->config_hash = column_dup(stmt, 8);
	r->qemu_version = column_dup(stmt, 9);
	r->machine = column_dup(stmt, 10);
	r->build_started_at = sqlite3_column_int64(stmt, 11);
	r->build_finished_at = sqlite3_column_int64(stmt, 12);
	r->build_ms = sqlite3_column_int64(stmt, 13);
	r->reason = column_dup(stmt, 14);
	r->prepare_requested_at = sqlite3_column_int64(stmt, 15);
	r->prepare_force = sqlite3_column_int64(stmt, 16) != 0;
	r->updated_at = sqlite3_column_int64(stmt, 17);
	r->builder = column_dup(stmt, 18);
	return g_steal_pointer(&r);
}

/* Returns: (transfer full): the row, or NULL with NOT_FOUND or a database error */
static QsimTemplateRecord *
load_template(QsimSqliteStore *self, const gchar *vm_name, const gchar *host, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(self, SQL_SELECT_TEMPLATE, error);
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, vm_name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, host, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return row_to_template(stmt, error);
	if (rc == SQLITE_DONE) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no template of %s on %s",
		            vm_name, host);
		return NULL;
	}
	qsim_sqlite_set_error(self->db, rc, "cannot read template", error);
	return NULL;
}

/* Writes every column but the prepare request, inside the caller's transaction */
static gboolean
write_template(QsimSqliteStore *self, const QsimTemplateRecord *r, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
	    self,
	    "INSERT INTO templates (" TEMPLATE_COLUMNS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL, 0,"
	    " ?16, ?17)"
	    " ON CONFLICT (vm_name, host) DO UPDATE SET state = excluded.state,"
	    " dir = excluded.dir, size_bytes = excluded.size_bytes,"
	    " image_sha256 = excluded.image_sha256, image_size = excluded.image_size,"
	    " image_mtime_us = excluded.image_mtime_us, config_hash = excluded.config_hash,"
	    " qemu_version = excluded.qemu_version, machine = excluded.machine,"
	    " build_started_at = excluded.build_started_at,"
	    " build_finished_at = excluded.build_finished_at, build_ms = excluded.build_ms,"
	    " reason = excluded.reason, updated_at = excluded.updated_at,"
	    " builder = excluded.builder",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, r->vm_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, qsim_template_record_state_to_string(r->state), -1,
	                  SQLITE_STATIC);
	bind_text_or_null(stmt, 4, r->dir);
	bind_time_or_null(stmt, 5, (gint64)r->size_bytes);
	bind_text_or_null(stmt, 6, r->image_sha256);
	bind_time_or_null(stmt, 7, (gint64)r->image_size);
	bind_time_or_null(stmt, 8, r->image_mtime_us);
	bind_text_or_null(stmt, 9, r->config_hash);
	bind_text_or_null(stmt, 10, r->qemu_version);
	bind_text_or_null(stmt, 11, r->machine);
	bind_time_or_null(stmt, 12, r->build_started_at);
	bind_time_or_null(stmt, 13, r->build_finished_at);
	bind_time_or_null(stmt, 14, r->build_ms);
	bind_text_or_null(stmt, 15, r->reason);
	sqlite3_bind_int64(stmt, 16, r->updated_at);
	/* only a running build has a builder */
	bind_text_or_null(stmt, 17, r->state == QSIM_TEMPLATE_RECORD_BUILDING ? r->builder : NULL);
	return stmt_done(self, stmt, "cannot write template", error);
}

static gboolean
sqlite_upsert_template(QsimStore *store, const QsimTemplateRecord *record, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	if (!write_template(self, record, error))
		return FALSE;
	return qsim_sqlite_transaction_commit(tx, error);
}

static QsimTemplateRecord *
sqlite_get_template(QsimStore *store, const gchar *vm_name, const gchar *host, GError **error)
{
	return load_template(QSIM_SQLITE_STORE(store), vm_name, host, error);
}

static GPtrArray *
sqlite_list_templates(QsimStore *store, const gchar *host, gboolean only_requested, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	/* two fixed texts: the prepare poll uses the partial index */
	const gchar *sql = only_requested
	                       ? "SELECT " TEMPLATE_COLUMNS " FROM templates"
	                         " WHERE prepare_requested_at IS NOT NULL"
	                         " AND (?1 IS NULL OR host = ?1)"
	                         " ORDER BY prepare_requested_at, vm_name, host"
	                       : "SELECT " TEMPLATE_COLUMNS " FROM templates"
	                         " WHERE (?1 IS NULL OR host = ?1) ORDER BY vm_name, host";
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(self, sql, error);

	if (stmt == NULL)
		return NULL;
	bind_text_or_null(stmt, 1, host);
	return collect_rows(self, stmt, (RowFunc)row_to_template,
	                    (GDestroyNotify)qsim_template_record_free, "cannot read templates",
	                    error);
}

static QsimTemplateRecord *
sqlite_request_prepare(QsimStore *store, const gchar *vm_name, const gchar *host, gboolean force,
                       GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimTemplateRecord) r = NULL;
	gint64 now = now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return NULL;
	{
		/* an earlier request keeps its time (the poll is oldest first); force
		 * only ever turns on until the claim takes it */
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
		    self,
		    "INSERT INTO templates (vm_name, host, state, prepare_requested_at,"
		    " prepare_force, updated_at) VALUES (?1, ?2, 'none', ?3, ?4, ?3)"
		    " ON CONFLICT (vm_name, host) DO UPDATE SET"
		    " prepare_requested_at = COALESCE(templates.prepare_requested_at, ?3),"
		    " prepare_force = CASE WHEN ?4 = 1 THEN 1 ELSE templates.prepare_force END,"
		    " updated_at = ?3",
		    error);

		if (stmt == NULL)
			return NULL;
		sqlite3_bind_text(stmt, 1, vm_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, host, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, now);
		sqlite3_bind_int(stmt, 4, force ? 1 : 0);
		if (!stmt_done(self, stmt, "cannot request a template build", error))
			return NULL;
	}
	r = load_template(self, vm_name, host, error);
	if (r == NULL || !qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

static gboolean
sqlite_claim_prepare(QsimStore *store, const gchar *vm_name, const gchar *host,
                     const gchar *builder, gboolean *out_claimed, gboolean *out_force,
                     GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimTemplateRecord) r = NULL;
	g_autoptr(GError) local = NULL;
	gint64 now = now_ms(self);

	/* the write lock first: the check and the claim must not race another process */
	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_template(self, vm_name, host, &local);
	if (r == NULL) {
		if (!g_error_matches(local, QSIM_ERROR, QSIM_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		r = qsim_template_record_new(vm_name, host);
	}
	if (r->state == QSIM_TEMPLATE_RECORD_BUILDING &&
	    r->build_started_at > now - QSIM_STORE_TEMPLATE_BUILD_STALE_MS) {
		*out_claimed = FALSE; /* another build runs; the guard rolls back */
		return TRUE;
	}
	*out_force = r->prepare_requested_at != 0 && r->prepare_force;
	r->state = QSIM_TEMPLATE_RECORD_BUILDING;
	r->build_started_at = now;
	r->build_finished_at = 0;
	g_clear_pointer(&r->reason, g_free);
	g_free(r->builder);
	r->builder = g_strdup(builder);
	r->updated_at = now;
	if (!write_template(self, r, error))
		return FALSE;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt =
		    stmt_get(self,
		             "UPDATE templates SET prepare_requested_at = NULL, prepare_force = 0"
		             " WHERE vm_name = ?1 AND host = ?2",
		             error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, vm_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, host, -1, SQLITE_STATIC);
		if (!stmt_done(self, stmt, "cannot take the prepare request", error))
			return FALSE;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_claimed = TRUE;
	return TRUE;
}

/* Returns: the deleted UUIDs; see qsim_store_purge_requests() */
static GPtrArray *
sqlite_purge_requests(QsimStore *store, gint status, gint64 before_ms, guint limit,
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
		/* a live lease means the agent still stops the VM of a cancelled
		 * request: it would get NOT_FOUND, so that row waits for a later pass */
		g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(
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
			g_ptr_array_add(candidates, column_dup(stmt, 0));
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
			g_autoptr(QsimSqliteCachedStmt) stmt =
			    stmt_get(self,
			             "DELETE FROM request_logs WHERE rowid IN (SELECT rowid FROM "
			             "request_logs"
			             " WHERE request_uuid = ?1 LIMIT ?2)",
			             error);

			if (stmt == NULL)
				return NULL;
			sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(stmt, 2, log_budget);
			if (!stmt_done(self, stmt, "cannot purge logs", error))
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
			g_autoptr(QsimSqliteCachedStmt) stmt =
			    stmt_get(self, "DELETE FROM requests WHERE uuid = ?1", error);

			if (stmt == NULL)
				return NULL;
			sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
			if (!stmt_done(self, stmt, "cannot purge request", error))
				return NULL;
		}
		g_ptr_array_add(deleted, g_strdup(uuid));
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	*out_more = more;
	return g_steal_pointer(&deleted);
}

static gboolean
sqlite_reclaim_space(QsimStore *store, guint max_pages, guint64 *out_free_pages,
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

static gboolean
sqlite_vacuum(QsimStore *store, GError **error)
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

/* ---- hosts, catalogues, VM slots: the SQL is in qsim-sqlite-hosts.c ---------- */

static gboolean
sqlite_publish_host(QsimStore *store, const QsimHostRecord *host, GPtrArray *vms, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_hosts_publish(self->db, now_ms(self), host, vms, error);
}

static GPtrArray *
sqlite_list_hosts(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_hosts_list(self->db, now_ms(self), error);
}

static GPtrArray *
sqlite_list_host_vms(QsimStore *store, const gchar *vm_name, const gchar *host, GError **error)
{
	return qsim_sqlite_hosts_list_vms(QSIM_SQLITE_STORE(store)->db, vm_name, host, error);
}

static gboolean
sqlite_claim_slot(QsimStore *store, const gchar *host, const gchar *owner, QsimVmSlotKind kind,
                  const gchar *ref, guint max_total, guint max_host, gint64 *out_id, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_slots_claim(self->db, now_ms(self), host, owner, kind, ref, max_total,
	                               max_host, out_id, error);
}

static gboolean
sqlite_release_slot(QsimStore *store, gint64 id, gint kind, gboolean *out_released, GError **error)
{
	return qsim_sqlite_slots_release(QSIM_SQLITE_STORE(store)->db, id, kind, out_released,
	                                 error);
}

static gboolean
sqlite_adopt_slot(QsimStore *store, gint64 warm_id, const gchar *uuid, const gchar *agent_id,
                  gboolean *out_adopted, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_slots_adopt(self->db, now_ms(self), warm_id, uuid, agent_id, out_adopted,
	                               error);
}

static gboolean
sqlite_release_owner_slots(QsimStore *store, const gchar *owner_prefix, guint *out_n,
                           GError **error)
{
	return qsim_sqlite_slots_release_owner(QSIM_SQLITE_STORE(store)->db, owner_prefix, out_n,
	                                       error);
}

static gboolean
sqlite_release_stale_host_slots(QsimStore *store, guint *out_n, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_slots_release_stale_hosts(self->db, now_ms(self), out_n, error);
}

static GPtrArray *
sqlite_list_slots(QsimStore *store, const gchar *host, GError **error)
{
	return qsim_sqlite_slots_list(QSIM_SQLITE_STORE(store)->db, host, error);
}

static void
qsim_sqlite_store_finalize(GObject *object)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(object);

	/* statements first: sqlite3_close() refuses while any is alive */
	g_clear_pointer(&self->stmts, g_hash_table_unref);
	if (self->db != NULL)
		sqlite3_close(self->db);
	g_free(self->path);
	G_OBJECT_CLASS(qsim_sqlite_store_parent_class)->finalize(object);
}

static gboolean
sqlite_get_data_version(QsimStore *store, guint64 *out_version, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = stmt_get(self, "PRAGMA data_version", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		qsim_sqlite_set_error(self->db, rc, "cannot read data version", error);
		return FALSE;
	}
	*out_version = (guint64)sqlite3_column_int64(stmt, 0);
	return TRUE;
}

static void
stmt_finalize(gpointer stmt)
{
	sqlite3_finalize(stmt);
}

static void
qsim_sqlite_store_init(QsimSqliteStore *self)
{
	self->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, stmt_finalize);
}

static void
qsim_sqlite_store_class_init(QsimSqliteStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	QsimStoreClass *store_class = QSIM_STORE_CLASS(klass);

	object_class->finalize = qsim_sqlite_store_finalize;
	store_class->get_schema_version = sqlite_get_schema_version;
	store_class->ping = sqlite_ping;
	store_class->insert_request = sqlite_insert_request;
	store_class->insert_requests = sqlite_insert_requests;
	store_class->get_request = sqlite_get_request;
	store_class->list_requests = sqlite_list_requests;
	store_class->set_status = sqlite_set_status;
	store_class->delete_request = sqlite_delete_request;
	store_class->claim_next = sqlite_claim_next;
	store_class->mark_running = sqlite_mark_running;
	store_class->renew_lease = sqlite_renew_lease;
	store_class->finish_request = sqlite_finish_request;
	store_class->list_expired_leases = sqlite_list_expired_leases;
	store_class->recover_request = sqlite_recover_request;
	store_class->append_logs = sqlite_append_logs;
	store_class->read_logs = sqlite_read_logs;
	store_class->get_stats = sqlite_get_stats;
	store_class->count_active_vms = sqlite_count_active_vms;
	store_class->get_data_version = sqlite_get_data_version;
	store_class->list_leases = sqlite_list_leases;
	store_class->set_start_mode = sqlite_set_start_mode;
	store_class->set_output_truncated = sqlite_set_output_truncated;
	store_class->put_accel_verdict = sqlite_put_accel_verdict;
	store_class->list_accel_verdicts = sqlite_list_accel_verdicts;
	store_class->upsert_template = sqlite_upsert_template;
	store_class->get_template = sqlite_get_template;
	store_class->list_templates = sqlite_list_templates;
	store_class->request_prepare = sqlite_request_prepare;
	store_class->claim_prepare = sqlite_claim_prepare;
	store_class->purge_requests = sqlite_purge_requests;
	store_class->reclaim_space = sqlite_reclaim_space;
	store_class->vacuum = sqlite_vacuum;
	store_class->get_metrics = sqlite_get_metrics;
	store_class->publish_host = sqlite_publish_host;
	store_class->list_hosts = sqlite_list_hosts;
	store_class->list_host_vms = sqlite_list_host_vms;
	store_class->claim_slot = sqlite_claim_slot;
	store_class->release_slot = sqlite_release_slot;
	store_class->adopt_slot = sqlite_adopt_slot;
	store_class->release_owner_slots = sqlite_release_owner_slots;
	store_class->release_stale_host_slots = sqlite_release_stale_host_slots;
	store_class->list_slots = sqlite_list_slots;
}

static gboolean
configure_connection(QsimSqliteStore *self, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	const gchar *mode;
	gint rc;

	sqlite3_extended_result_codes(self->db, 1);
	sqlite3_busy_timeout(self->db, BUSY_TIMEOUT_MS);
	/* before anything writes the file's first page: a new database then gives the
	 * pages freed by purges back in steps (qsim_store_reclaim_space()); on an
	 * existing file it changes nothing until a VACUUM (qsim_store_vacuum()) */
	if (!qsim_sqlite_exec(self->db, "PRAGMA auto_vacuum = INCREMENTAL", error))
		return FALSE;
	if (!qsim_sqlite_exec(self->db, "PRAGMA foreign_keys = ON", error))
		return FALSE;
	rc = sqlite3_prepare_v2(self->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
	if (rc != SQLITE_OK || (rc = sqlite3_step(stmt)) != SQLITE_ROW) {
		qsim_sqlite_set_error(self->db, rc, "cannot enable WAL", error);
		return FALSE;
	}
	mode = (const gchar *)sqlite3_column_text(stmt, 0);
	/* an in-memory database (tests) reports "memory"; anything else must be WAL */
	if (g_strcmp0(mode, "wal") != 0 && g_strcmp0(mode, "memory") != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "cannot enable WAL: journal mode is %s", mode != NULL ? mode : "?");
		return FALSE;
	}
	/* checkpoints are where NORMAL fsyncs: every 10000 pages (~40 MB of WAL) rather
	 * than SQLite's 1000 doubled write throughput in tests/bench/store-bench.c; the
	 * size limit truncates the WAL file back after a checkpoint */
	return qsim_sqlite_exec(self->db, "PRAGMA synchronous = NORMAL", error) &&
	       qsim_sqlite_exec(self->db, "PRAGMA wal_autocheckpoint = 10000", error) &&
	       qsim_sqlite_exec(self->db, "PRAGMA journal_size_limit = 67108864", error);
}

/**
 * qsim_sqlite_store_new:
 *
 * Returns: (transfer full): the store, or NULL with @error set
 */
QsimStore *
qsim_sqlite_store_new(const gchar *path, GError **error)
{
	g_autoptr(QsimSqliteStore) self = NULL;
	gint rc;

	if (path == NULL || path[0] == '\0') {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "no database path given");
		return NULL;
	}
	self = g_object_new(QSIM_TYPE_SQLITE_STORE, NULL);
	self->path = g_strdup(path);
	/* NOMUTEX: one connection is used by one thread at a time (see qsim-store.h) */
	rc =
	    sqlite3_open_v2(path, &self->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		qsim_sqlite_set_error(self->db, rc, "cannot open database", error);
		g_prefix_error(error, "%s: ", path);
		return NULL;
	}
	if (!configure_connection(self, error) ||
	    !qsim_sqlite_schema_migrate(self->db, &self->schema_version, error)) {
		g_prefix_error(error, "%s: ", path);
		return NULL;
	}
	return QSIM_STORE(g_steal_pointer(&self));
}
