#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-sqlite-hosts.h"
#include "store/qsim-sqlite-schema.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-sqlite-util.h"

#define BUSY_TIMEOUT_MS 5000
/* opening waits up to about this many busy timeouts for another writer */
#define OPEN_BUSY_ATTEMPTS 6
#define OPEN_BUSY_PAUSE_US (100 * 1000)

G_DEFINE_FINAL_TYPE(QsimSqliteStore, qsim_sqlite_store, QSIM_TYPE_STORE)

/* Returns: (transfer none): a cached statement, reset by its g_autoptr cleanup */
QsimSqliteCachedStmt *
qsim_sqlite_store_stmt_get(QsimSqliteStore *self, const gchar *sql, GError **error)
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
gboolean
qsim_sqlite_store_stmt_done(QsimSqliteStore *self, sqlite3_stmt *stmt, const gchar *context,
                            GError **error)
{
	gint rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, context, error);
		return FALSE;
	}
	return TRUE;
}

void
qsim_sqlite_bind_text_or_null(sqlite3_stmt *stmt, gint idx, const gchar *text)
{
	if (text == NULL)
		sqlite3_bind_null(stmt, idx);
	else
		sqlite3_bind_text(stmt, idx, text, -1, SQLITE_TRANSIENT);
}

void
qsim_sqlite_bind_time_or_null(sqlite3_stmt *stmt, gint idx, gint64 ms)
{
	if (ms == 0)
		sqlite3_bind_null(stmt, idx);
	else
		sqlite3_bind_int64(stmt, idx, ms);
}

gchar *
qsim_sqlite_column_dup(sqlite3_stmt *stmt, gint col)
{
	const guchar *text = sqlite3_column_text(stmt, col);

	return text != NULL ? g_strdup((const gchar *)text) : NULL;
}

/* Returns: (transfer full): the request at the current row of a REQUEST_COLUMNS query */
QsimRequest *
qsim_sqlite_row_to_request(sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(QsimRequest) request = qsim_request_new();
	const gchar *status = (const gchar *)sqlite3_column_text(stmt, 4);
	const gchar *held_from = (const gchar *)sqlite3_column_text(stmt, 5);

	request->uuid = qsim_sqlite_column_dup(stmt, 0);
	request->vm_name = qsim_sqlite_column_dup(stmt, 1);
	request->commands = qsim_sqlite_column_dup(stmt, 2);
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
	request->error = qsim_sqlite_column_dup(stmt, 11);
	request->agent_id = qsim_sqlite_column_dup(stmt, 12);
	request->lease_expires_at = sqlite3_column_int64(stmt, 13);
	request->attempts = (guint)sqlite3_column_int64(stmt, 14);
	/* NULL (not started yet) leaves none */
	qsim_start_mode_from_string((const gchar *)sqlite3_column_text(stmt, 15),
	                            &request->start_mode);
	request->output_truncated = sqlite3_column_int(stmt, 16) != 0;
	if (sqlite3_column_type(stmt, 17) != SQLITE_NULL)
		request->artifact_paths =
		    g_strsplit((const gchar *)sqlite3_column_text(stmt, 17), "\n", -1);
	return g_steal_pointer(&request);
}

/* Runs a query to completion, one record per row. Returns: (transfer container) */
GPtrArray *
qsim_sqlite_store_collect_rows(QsimSqliteStore *self, sqlite3_stmt *stmt,
                               QsimSqliteRowFunc row_func, GDestroyNotify free_func,
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
GPtrArray *
qsim_sqlite_store_collect_requests(QsimSqliteStore *self, sqlite3_stmt *stmt, GError **error)
{
	return qsim_sqlite_store_collect_rows(
	    self, stmt, (QsimSqliteRowFunc)qsim_sqlite_row_to_request,
	    (GDestroyNotify)qsim_request_free, "cannot read requests", error);
}

/* The text a request carries, the part that can be large (commands up to 256 KiB) */
static gsize
request_text_bytes(const QsimRequest *r)
{
	return 256 + strlen(r->commands) + (r->error != NULL ? strlen(r->error) : 0) +
	       strlen(r->vm_name) + (r->agent_id != NULL ? strlen(r->agent_id) : 0);
}

/*
 * qsim_sqlite_store_collect_requests() that stops once the rows' text passes @max_bytes (0 = no
 * cap), after at least one row; *out_cut says it stopped early.
 * Returns: (transfer container)
 */
GPtrArray *
qsim_sqlite_store_collect_requests_capped(QsimSqliteStore *self, sqlite3_stmt *stmt,
                                          gsize max_bytes, gboolean *out_cut, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);
	gsize bytes = 0;
	gint rc;

	*out_cut = FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimRequest *r = qsim_sqlite_row_to_request(stmt, error);

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
QsimRequest *
qsim_sqlite_store_load_request(QsimSqliteStore *self, const gchar *uuid, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    qsim_sqlite_store_stmt_get(self, SQL_SELECT_REQUEST, error);
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return qsim_sqlite_row_to_request(stmt, error);
	if (rc == SQLITE_DONE) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
		return NULL;
	}
	qsim_sqlite_set_error(self->db, rc, "cannot read request", error);
	return NULL;
}

/*
 * The one UPDATE for status changes: every column a transition may touch,
 * written from the (already checked) new in-memory row.
 */
gboolean
qsim_sqlite_store_update_request(QsimSqliteStore *self, const QsimRequest *r, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
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
	qsim_sqlite_bind_time_or_null(stmt, 5, r->started_at);
	qsim_sqlite_bind_time_or_null(stmt, 6, r->finished_at);
	if (r->has_exit_code)
		sqlite3_bind_int(stmt, 7, r->exit_code);
	else
		sqlite3_bind_null(stmt, 7);
	qsim_sqlite_bind_text_or_null(stmt, 8, r->error);
	qsim_sqlite_bind_text_or_null(stmt, 9, r->agent_id);
	qsim_sqlite_bind_time_or_null(stmt, 10, r->lease_expires_at);
	sqlite3_bind_int64(stmt, 11, r->attempts);
	/* in the same statement as the status: the finished trigger reads it */
	if (qsim_status_is_final(r->status))
		sqlite3_bind_text(stmt, 12,
		                  qsim_end_reason_to_string(qsim_end_reason_classify(
		                      r->status, r->has_exit_code, r->exit_code, r->error)),
		                  -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 12);
	return qsim_sqlite_store_stmt_done(self, stmt, "cannot update request", error);
}

gint64
qsim_sqlite_store_now_ms(QsimSqliteStore *self)
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
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    qsim_sqlite_store_stmt_get(self, "PRAGMA user_version", error);
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

/* ---- hosts, catalogues, VM slots: the SQL is in qsim-sqlite-hosts.c ---------- */

static gboolean
sqlite_publish_host(QsimStore *store, const QsimHostRecord *host, GPtrArray *vms, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_hosts_publish(self->db, qsim_sqlite_store_now_ms(self), host, vms,
	                                 error);
}

static GPtrArray *
sqlite_list_hosts(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return qsim_sqlite_hosts_list(self->db, qsim_sqlite_store_now_ms(self), error);
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

	return qsim_sqlite_slots_claim(self->db, qsim_sqlite_store_now_ms(self), host, owner, kind,
	                               ref, max_total, max_host, out_id, error);
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

	return qsim_sqlite_slots_adopt(self->db, qsim_sqlite_store_now_ms(self), warm_id, uuid,
	                               agent_id, out_adopted, error);
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

	return qsim_sqlite_slots_release_stale_hosts(self->db, qsim_sqlite_store_now_ms(self),
	                                             out_n, error);
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
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    qsim_sqlite_store_stmt_get(self, "PRAGMA data_version", error);
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
	store_class->insert_request = qsim_sqlite_insert_request;
	store_class->insert_requests = qsim_sqlite_insert_requests;
	store_class->get_request = qsim_sqlite_get_request;
	store_class->list_requests = qsim_sqlite_list_requests;
	store_class->set_status = qsim_sqlite_set_status;
	store_class->delete_request = qsim_sqlite_delete_request;
	store_class->claim_next = qsim_sqlite_claim_next;
	store_class->mark_running = qsim_sqlite_mark_running;
	store_class->renew_lease = qsim_sqlite_renew_lease;
	store_class->finish_request = qsim_sqlite_finish_request;
	store_class->list_expired_leases = qsim_sqlite_list_expired_leases;
	store_class->recover_request = qsim_sqlite_recover_request;
	store_class->append_logs = qsim_sqlite_append_logs;
	store_class->read_logs = qsim_sqlite_read_logs;
	store_class->get_stats = qsim_sqlite_get_stats;
	store_class->count_active_vms = qsim_sqlite_count_active_vms;
	store_class->get_data_version = sqlite_get_data_version;
	store_class->list_leases = qsim_sqlite_list_leases;
	store_class->list_request_events = qsim_sqlite_list_request_events;
	store_class->list_finished_since = qsim_sqlite_list_finished_since;
	store_class->set_start_mode = qsim_sqlite_set_start_mode;
	store_class->set_output_truncated = qsim_sqlite_set_output_truncated;
	store_class->put_accel_verdict = qsim_sqlite_put_accel_verdict;
	store_class->list_accel_verdicts = qsim_sqlite_list_accel_verdicts;
	store_class->upsert_template = qsim_sqlite_upsert_template;
	store_class->get_template = qsim_sqlite_get_template;
	store_class->list_templates = qsim_sqlite_list_templates;
	store_class->request_prepare = qsim_sqlite_request_prepare;
	store_class->claim_prepare = qsim_sqlite_claim_prepare;
	store_class->purge_requests = qsim_sqlite_purge_requests;
	store_class->reclaim_space = qsim_sqlite_reclaim_space;
	store_class->vacuum = qsim_sqlite_vacuum;
	store_class->get_metrics = qsim_sqlite_get_metrics;
	store_class->publish_host = sqlite_publish_host;
	store_class->list_hosts = sqlite_list_hosts;
	store_class->list_host_vms = sqlite_list_host_vms;
	store_class->claim_slot = sqlite_claim_slot;
	store_class->release_slot = sqlite_release_slot;
	store_class->adopt_slot = sqlite_adopt_slot;
	store_class->release_owner_slots = sqlite_release_owner_slots;
	store_class->release_stale_host_slots = sqlite_release_stale_host_slots;
	store_class->list_slots = sqlite_list_slots;
	store_class->export_requests = qsim_sqlite_export_requests;
	store_class->import_requests = qsim_sqlite_import_requests;
	store_class->import_logs = qsim_sqlite_import_logs;
	store_class->count_rows = qsim_sqlite_count_rows;
	store_class->add_artifacts = qsim_sqlite_add_artifacts;
	store_class->list_artifacts = qsim_sqlite_list_artifacts;
	store_class->import_artifacts = qsim_sqlite_import_artifacts;
	store_class->count_artifacts = qsim_sqlite_count_artifacts;
	store_class->upload_add_file = qsim_sqlite_upload_add_file;
	store_class->upload_put_chunk = qsim_sqlite_upload_put_chunk;
	store_class->upload_finish_file = qsim_sqlite_upload_finish_file;
	store_class->upload_discard = qsim_sqlite_upload_discard;
	store_class->delete_uploads = qsim_sqlite_delete_uploads;
	store_class->list_uploads = qsim_sqlite_list_uploads;
	store_class->upload_read_chunk = qsim_sqlite_upload_read_chunk;
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
	/* Another process may hold the write lock for longer than the busy timeout (a
	 * migration, a purge batch, a checkpoint on a loaded host), and a few steps of
	 * opening a WAL file return SQLITE_BUSY without waiting at all: a process that
	 * starts then must wait its turn, not fail. */
	for (guint attempt = 1;; attempt++) {
		g_autoptr(GError) local = NULL;

		if (configure_connection(self, &local) &&
		    qsim_sqlite_schema_migrate(self->db, &self->schema_version, &local))
			break;
		if (!g_error_matches(local, QSIM_ERROR, QSIM_ERROR_BUSY) ||
		    attempt >= OPEN_BUSY_ATTEMPTS) {
			g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", path);
			return NULL;
		}
		g_debug("%s: busy while opening (%s), trying again", path, local->message);
		g_usleep(OPEN_BUSY_PAUSE_US);
	}
	return QSIM_STORE(g_steal_pointer(&self));
}
