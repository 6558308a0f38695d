#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qsim-db-url.h"
#include "common/qsim-error.h"
#include "store/qsim-store-private.h"
#include "store/qsim-pg-store-private.h"

/*
 * Every wait on the server is bounded, because the store API is synchronous
 * and some callers sit on the main loop: connecting gives up after
 * CONNECT_TIMEOUT_S, a dead peer is noticed by TCP_USER_TIMEOUT_MS and the
 * keepalives, a statement is cancelled by the server after STATEMENT_TIMEOUT_MS
 * and a row lock wait after LOCK_TIMEOUT_MS (SQLite's busy timeout). While the
 * server is unreachable, calls fail at once with BUSY until the backoff delay
 * has passed; the next call after it tries to connect again.
 */
#define CONNECT_TIMEOUT_S "3"
#define TCP_USER_TIMEOUT_MS "5000"
#define STATEMENT_TIMEOUT_MS 15000
#define LOCK_TIMEOUT_MS 5000
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define LISTEN_BACKOFF_FIRST_MS 1000
#define LISTEN_BACKOFF_MAX_MS 30000
#define NOTIFY_CHANNEL "qsim_changes"

G_DEFINE_FINAL_TYPE(QsimPgStore, qsim_pg_store, QSIM_TYPE_STORE)

/* ---- parameters ------------------------------------------------------------ */

QsimPgArgs *
qsim_pg_args_new(void)
{
	QsimPgArgs *args = g_new0(QsimPgArgs, 1);

	args->values = g_ptr_array_new_with_free_func(g_free);
	args->lengths = g_array_new(FALSE, TRUE, sizeof(gint));
	args->formats = g_array_new(FALSE, TRUE, sizeof(gint));
	return args;
}

void
qsim_pg_args_free(QsimPgArgs *args)
{
	if (args == NULL)
		return;
	g_ptr_array_unref(args->values);
	g_array_unref(args->lengths);
	g_array_unref(args->formats);
	g_free(args);
}

static void
args_add(QsimPgArgs *args, gchar *value, gint len, gint format)
{
	g_ptr_array_add(args->values, value);
	g_array_append_val(args->lengths, len);
	g_array_append_val(args->formats, format);
}

void
qsim_pg_args_text(QsimPgArgs *args, const gchar *text)
{
	args_add(args, g_strdup(text), 0, 0);
}

void
qsim_pg_args_int(QsimPgArgs *args, gint64 value)
{
	args_add(args, g_strdup_printf("%" G_GINT64_FORMAT, value), 0, 0);
}

void
qsim_pg_args_time(QsimPgArgs *args, gint64 value)
{
	if (value == 0)
		args_add(args, NULL, 0, 0);
	else
		qsim_pg_args_int(args, value);
}

void
qsim_pg_args_bytes(QsimPgArgs *args, gconstpointer data, gsize len)
{
	/* a NULL value would be SQL NULL: an empty chunk is an empty bytea */
	gchar *copy = g_malloc(MAX(len, 1));

	if (len > 0)
		memcpy(copy, data, len);
	args_add(args, copy, (gint)len, 1);
}

/* ---- connection --------------------------------------------------------------- */

static void
notice_processor(void *arg, const char *message)
{
	g_debug("postgresql: %s", message);
}

/* libpq's message, one line, for our errors */
static gchar *
conn_message(PGconn *conn)
{
	g_autofree gchar *msg = g_strdup(conn != NULL ? PQerrorMessage(conn) : "out of memory");

	return g_strdup(g_strstrip(g_strdelimit(msg, "\n\t", ' ')));
}

static PGconn *
open_conn(QsimPgStore *self, GError **error)
{
	/* our bounds first; the URL (dbname, expanded) may override them */
	const gchar *keys[] = {"connect_timeout",
	                       "keepalives",
	                       "keepalives_idle",
	                       "keepalives_interval",
	                       "keepalives_count",
	                       "tcp_user_timeout",
	                       "application_name",
	                       "dbname",
	                       self->password != NULL ? "password" : NULL,
	                       NULL};
	const gchar *values[] = {
	    CONNECT_TIMEOUT_S, "1", "5", "2", "2", TCP_USER_TIMEOUT_MS, "qsimd", self->url,
	    self->password,    NULL};
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	g_autofree gchar *setup = NULL;
	PGresult *res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		g_autofree gchar *msg = conn_message(conn);

		g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY, "cannot connect to PostgreSQL: %s",
		            msg);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);
	setup = g_strdup_printf("SET statement_timeout = %d; SET lock_timeout = %d;"
	                        " SET idle_in_transaction_session_timeout = %d;"
	                        " SET client_min_messages = warning; SET TIME ZONE 'UTC'",
	                        STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS, 4 * STATEMENT_TIMEOUT_MS);
	res = PQexec(conn, setup);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE, "cannot set up the session: %s",
		            PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

static void
mark_down(QsimPgStore *self, const gchar *why)
{
	gint64 now = g_get_monotonic_time();

	if (self->conn != NULL) {
		g_warning("PostgreSQL connection lost: %s; reconnecting", why);
		g_clear_pointer(&self->conn, PQfinish);
		/* the first attempt right away: a restart is often over already */
		self->backoff_ms = 0;
	} else {
		self->backoff_ms = self->backoff_ms == 0
		                       ? BACKOFF_FIRST_MS
		                       : MIN(self->backoff_ms * 2, BACKOFF_MAX_MS);
	}
	self->retry_at_us = now + (gint64)self->backoff_ms * 1000;
	g_free(self->last_error);
	self->last_error = g_strdup(why);
}

/*
 * An idle connection whose server went away (a restart sends a FATAL message,
 * then closes): the first read takes the message, a second one sees the end of
 * the stream. Neither waits: libpq's socket is non-blocking.
 */
static gboolean
conn_still_open(PGconn *conn)
{
	for (guint i = 0; i < 2; i++) {
		if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
			return FALSE;
	}
	return TRUE;
}

static gboolean
ensure_conn(QsimPgStore *self, GError **error)
{
	g_autoptr(GError) local = NULL;

	/* Between transactions, read what the server sent meanwhile: a server that
	 * restarted has closed the connection, and noticing it here lets this call run
	 * on a new connection instead of failing.
	 * Inside a transaction a broken connection must fail the call: its work is lost. */
	if (self->conn != NULL && PQstatus(self->conn) == CONNECTION_OK &&
	    PQtransactionStatus(self->conn) == PQTRANS_IDLE && !conn_still_open(self->conn)) {
		g_autofree gchar *msg = conn_message(self->conn);

		mark_down(self, msg);
	}
	if (self->conn != NULL && PQstatus(self->conn) == CONNECTION_OK)
		return TRUE;
	if (self->conn != NULL)
		mark_down(self, "connection closed");
	if (g_get_monotonic_time() < self->retry_at_us) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		            "PostgreSQL is unreachable (%s); trying again in %u ms",
		            self->last_error != NULL ? self->last_error : "?",
		            (guint)((self->retry_at_us - g_get_monotonic_time()) / 1000 + 1));
		return FALSE;
	}
	self->conn = open_conn(self, &local);
	if (self->conn == NULL) {
		mark_down(self, local->message);
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (self->generation > 0)
		g_message("PostgreSQL connection restored");
	self->generation++;
	self->backoff_ms = 0;
	self->retry_at_us = 0;
	self->backend_pid = PQbackendPID(self->conn);
	return TRUE;
}

static gint
code_for_sqlstate(const gchar *state)
{
	if (state == NULL)
		return QSIM_ERROR_STORE;
	/* serialization failure, deadlock, lock timeout, statement timeout, shutdown */
	if (g_str_equal(state, "40001") || g_str_equal(state, "40P01") ||
	    g_str_equal(state, "55P03") || g_str_equal(state, "57014") ||
	    g_str_has_prefix(state, "57P") || g_str_has_prefix(state, "08"))
		return QSIM_ERROR_BUSY;
	return QSIM_ERROR_STORE;
}

gboolean
qsim_pg_store_last_was_constraint(QsimPgStore *self)
{
	return g_str_has_prefix(self->last_sqlstate, "23");
}

PGresult *
qsim_pg_store_query(QsimPgStore *self, const gchar *sql, QsimPgArgs *args, GError **error)
{
	PGresult *res;
	ExecStatusType st;

	self->last_sqlstate[0] = '\0';
	if (!ensure_conn(self, error))
		return NULL;
	if (args != NULL)
		res = PQexecParams(self->conn, sql, (gint)args->values->len, NULL,
		                   (const gchar *const *)args->values->pdata,
		                   (const gint *)(gpointer)args->lengths->data,
		                   (const gint *)(gpointer)args->formats->data, 0);
	else /* the simple protocol: a text may hold several statements */
		res = PQexec(self->conn, sql);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	if (res != NULL && PQresultErrorField(res, PG_DIAG_SQLSTATE) != NULL)
		g_strlcpy(self->last_sqlstate, PQresultErrorField(res, PG_DIAG_SQLSTATE),
		          sizeof self->last_sqlstate);
	if (PQstatus(self->conn) != CONNECTION_OK) {
		g_autofree gchar *msg = conn_message(self->conn);

		mark_down(self, msg);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		            "PostgreSQL connection lost: %s (the operation may not have been "
		            "applied; it is safe to retry)",
		            msg);
	} else {
		g_autofree gchar *msg =
		    g_strdup(res != NULL ? PQresultErrorMessage(res) : "out of memory");

		g_set_error(error, QSIM_ERROR, code_for_sqlstate(self->last_sqlstate), "%s",
		            g_strstrip(msg));
	}
	PQclear(res);
	return NULL;
}

gboolean
qsim_pg_store_exec(QsimPgStore *self, const gchar *sql, QsimPgArgs *args, GError **error)
{
	g_autoptr(PGresult) res = qsim_pg_store_query(self, sql, args, error);

	return res != NULL;
}

/* ---- transactions ------------------------------------------------------------- */

QsimPgTx *
qsim_pg_tx_begin(QsimPgStore *self, GError **error)
{
	QsimPgTx *tx;

	if (!qsim_pg_store_exec(self, "BEGIN", NULL, error))
		return NULL;
	tx = g_new0(QsimPgTx, 1);
	tx->store = self;
	tx->generation = self->generation;
	return tx;
}

gboolean
qsim_pg_tx_commit(QsimPgTx *tx, GError **error)
{
	tx->done = TRUE;
	if (tx->generation != tx->store->generation) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		                    "PostgreSQL connection lost during the transaction");
		return FALSE;
	}
	return qsim_pg_store_exec(tx->store, "COMMIT", NULL, error);
}

void
qsim_pg_tx_free(QsimPgTx *tx)
{
	if (tx == NULL)
		return;
	/* a transaction of a lost connection died with it: never roll back a new one */
	if (!tx->done && tx->generation == tx->store->generation && tx->store->conn != NULL) {
		PGresult *res = PQexec(tx->store->conn, "ROLLBACK");

		PQclear(res);
	}
	g_free(tx);
}

/* ---- rows ------------------------------------------------------------------------ */

gchar *
qsim_pg_dup(const PGresult *res, gint row, gint col)
{
	return PQgetisnull(res, row, col) ? NULL : g_strdup(PQgetvalue(res, row, col));
}

gint64
qsim_pg_int(const PGresult *res, gint row, gint col)
{
	return PQgetisnull(res, row, col) ? 0
	                                  : g_ascii_strtoll(PQgetvalue(res, row, col), NULL, 10);
}

gboolean
qsim_pg_is_null(const PGresult *res, gint row, gint col)
{
	return PQgetisnull(res, row, col);
}

QsimRequest *
qsim_pg_row_to_request(const PGresult *res, gint row, GError **error)
{
	g_autoptr(QsimRequest) request = qsim_request_new();
	const gchar *status = PQgetvalue(res, row, 4);

	request->uuid = qsim_pg_dup(res, row, 0);
	request->vm_name = qsim_pg_dup(res, row, 1);
	request->commands = qsim_pg_dup(res, row, 2);
	request->timeout_s = qsim_pg_int(res, row, 3);
	if (!qsim_status_from_string(status, &request->status)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "request %s has an unknown status '%s'", request->uuid, status);
		return NULL;
	}
	if (!PQgetisnull(res, row, 5) &&
	    !qsim_status_from_string(PQgetvalue(res, row, 5), &request->held_from)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "request %s has an unknown held_from '%s'", request->uuid,
		            PQgetvalue(res, row, 5));
		return NULL;
	}
	request->created_at = qsim_pg_int(res, row, 6);
	request->updated_at = qsim_pg_int(res, row, 7);
	request->started_at = qsim_pg_int(res, row, 8);
	request->finished_at = qsim_pg_int(res, row, 9);
	request->has_exit_code = !PQgetisnull(res, row, 10);
	request->exit_code = (gint)qsim_pg_int(res, row, 10);
	request->error = qsim_pg_dup(res, row, 11);
	request->agent_id = qsim_pg_dup(res, row, 12);
	request->lease_expires_at = qsim_pg_int(res, row, 13);
	request->attempts = (guint)qsim_pg_int(res, row, 14);
	if (!PQgetisnull(res, row, 15))
		qsim_start_mode_from_string(PQgetvalue(res, row, 15), &request->start_mode);
	request->output_truncated = qsim_pg_int(res, row, 16) != 0;
	if (!PQgetisnull(res, row, 17))
		request->artifact_paths = g_strsplit(PQgetvalue(res, row, 17), "\n", -1);
	return g_steal_pointer(&request);
}

GPtrArray *
qsim_pg_collect_requests(const PGresult *res, GError **error)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);

	for (gint i = 0; i < PQntuples(res); i++) {
		QsimRequest *r = qsim_pg_row_to_request(res, i, error);

		if (r == NULL)
			return NULL;
		g_ptr_array_add(rows, r);
	}
	return g_steal_pointer(&rows);
}

QsimRequest *
qsim_pg_load_request(QsimPgStore *self, const gchar *uuid, gboolean for_update, GError **error)
{
	g_autoptr(QsimPgArgs) args = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(args, uuid);
	res = qsim_pg_store_query(
	    self,
	    for_update ? "SELECT " REQUEST_COLUMNS " FROM requests WHERE uuid = $1 FOR UPDATE"
	               : "SELECT " REQUEST_COLUMNS " FROM requests WHERE uuid = $1",
	    args, error);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
		return NULL;
	}
	return qsim_pg_row_to_request(res, 0, error);
}

gboolean
qsim_pg_update_request(QsimPgStore *self, const QsimRequest *r, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, r->uuid);
	qsim_pg_args_text(a, qsim_status_to_string(r->status));
	qsim_pg_args_text(a, r->status == QSIM_STATUS_HOLD ? qsim_status_to_string(r->held_from)
	                                                   : NULL);
	qsim_pg_args_int(a, r->updated_at);
	qsim_pg_args_time(a, r->started_at);
	qsim_pg_args_time(a, r->finished_at);
	if (r->has_exit_code)
		qsim_pg_args_int(a, r->exit_code);
	else
		qsim_pg_args_text(a, NULL);
	qsim_pg_args_text(a, r->error);
	qsim_pg_args_text(a, r->agent_id);
	qsim_pg_args_time(a, r->lease_expires_at);
	qsim_pg_args_int(a, r->attempts);
	/* in the same statement as the status: the finished trigger reads it */
	qsim_pg_args_text(a, qsim_status_is_final(r->status)
	                         ? qsim_end_reason_to_string(qsim_end_reason_classify(
	                               r->status, r->has_exit_code, r->exit_code, r->error))
	                         : NULL);
	return qsim_pg_store_exec(
	    self,
	    "UPDATE requests SET status = $2, held_from = $3, updated_at = $4, started_at = $5,"
	    " finished_at = $6, exit_code = $7, error = $8, agent_id = $9,"
	    " lease_expires_at = $10, attempts = $11, end_reason = $12 WHERE uuid = $1",
	    a, error);
}

gint64
qsim_pg_now_ms(QsimPgStore *self)
{
	return qsim_store_now_ms(QSIM_STORE(self));
}

/* ---- LISTEN/NOTIFY: the data version ------------------------------------------- */

static void listen_drop(QsimPgStore *self);

/* listen_lock held: takes what already arrived, never waits. FALSE when the connection broke */
static gboolean
listen_drain(QsimPgStore *self)
{
	PGnotify *n;

	if (self->listen_conn == NULL || !PQconsumeInput(self->listen_conn)) {
		/* something may have changed while we could not hear it */
		self->data_version++;
		return FALSE;
	}
	while ((n = PQnotifies(self->listen_conn)) != NULL) {
		if (n->be_pid != self->backend_pid)
			self->data_version++;
		PQfreemem(n);
	}
	return TRUE;
}

/* Main context: another connection's commit bumps the version */
static gboolean
listen_ready_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	QsimPgStore *self = user_data;
	guint64 before;
	gboolean heard;
	gboolean keep;

	g_mutex_lock(&self->listen_lock);
	before = self->data_version;
	keep = listen_drain(self);
	heard = self->data_version != before;
	if (!keep) {
		self->listen_source = 0; /* removed by returning REMOVE */
		listen_drop(self);
	}
	g_mutex_unlock(&self->listen_lock);
	if (heard)
		qsim_store_changes_heard(QSIM_STORE(self));
	return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* listen_lock held: 1 s after a break, doubling to 30 s while connecting fails. Each
 * attempt may block its caller up to the connect timeout on a network cut, and
 * this one runs on the main loop (the watch's timer). */
static void
listen_backoff(QsimPgStore *self)
{
	self->listen_backoff_ms = self->listen_backoff_ms == 0
	                              ? LISTEN_BACKOFF_FIRST_MS
	                              : MIN(self->listen_backoff_ms * 2, LISTEN_BACKOFF_MAX_MS);
	self->listen_retry_at_us = g_get_monotonic_time() + (gint64)self->listen_backoff_ms * 1000;
}

/* listen_lock held */
static void
listen_drop(QsimPgStore *self)
{
	if (self->listen_source != 0) {
		g_source_remove(self->listen_source);
		self->listen_source = 0;
	}
	g_clear_pointer(&self->listen_conn, PQfinish);
	listen_backoff(self);
}

/* listen_lock held: a LISTENing connection, its socket watched from the default context */
static gboolean
listen_ensure(QsimPgStore *self, GError **error)
{
	PGresult *res;

	if (self->listen_conn != NULL && PQstatus(self->listen_conn) == CONNECTION_OK)
		return TRUE;
	if (self->listen_conn != NULL) {
		listen_drop(self);
		self->data_version++;
	}
	/* while the query connection is down too, its own backoff does the waiting */
	if (g_get_monotonic_time() < self->listen_retry_at_us || self->conn == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		                    "PostgreSQL is unreachable: no change notifications");
		return FALSE;
	}
	self->listen_conn = open_conn(self, error);
	if (self->listen_conn == NULL) {
		listen_backoff(self);
		return FALSE;
	}
	res = PQexec(self->listen_conn, "LISTEN " NOTIFY_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE, "LISTEN failed: %s",
		            PQresultErrorMessage(res));
		PQclear(res);
		listen_drop(self);
		return FALSE;
	}
	PQclear(res);
	/* reads never block the loop: only what already arrived is consumed */
	PQsetnonblocking(self->listen_conn, 1);
	self->listen_source = g_unix_fd_add(PQsocket(self->listen_conn),
	                                    G_IO_IN | G_IO_HUP | G_IO_ERR, listen_ready_cb, self);
	/* changes made before LISTEN took effect were not heard */
	self->data_version++;
	self->listen_backoff_ms = 0;
	return TRUE;
}

static gboolean
pg_get_data_version(QsimStore *store, guint64 *out_version, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	gboolean ok;

	g_mutex_lock(&self->listen_lock);
	ok = listen_ensure(self, error);
	/* also when no main loop runs the socket source (a worker thread's store) */
	if (ok && !listen_drain(self))
		listen_drop(self);
	*out_version = self->data_version;
	g_mutex_unlock(&self->listen_lock);
	return ok;
}

/* ---- the rest of the vfuncs ---------------------------------------------------- */

static guint
pg_get_schema_version(QsimStore *store)
{
	return QSIM_PG_STORE(store)->schema_version;
}

static gboolean
pg_ping(QsimStore *store, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(PGresult) res =
	    qsim_pg_store_query(self, "SELECT MAX(version) FROM schema_version", NULL, error);

	if (res == NULL) {
		g_prefix_error(error, "database does not answer: ");
		return FALSE;
	}
	if ((guint)qsim_pg_int(res, 0, 0) != self->schema_version) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "database schema changed to version %s while qsim runs with %u",
		            PQgetvalue(res, 0, 0), self->schema_version);
		return FALSE;
	}
	return TRUE;
}

static void
qsim_pg_store_finalize(GObject *object)
{
	QsimPgStore *self = QSIM_PG_STORE(object);

	g_mutex_lock(&self->listen_lock);
	listen_drop(self);
	g_mutex_unlock(&self->listen_lock);
	g_mutex_clear(&self->listen_lock);
	g_clear_pointer(&self->conn, PQfinish);
	g_free(self->url);
	if (self->password != NULL)
		memset(self->password, 0, strlen(self->password));
	g_free(self->password);
	g_free(self->last_error);
	G_OBJECT_CLASS(qsim_pg_store_parent_class)->finalize(object);
}

static void
qsim_pg_store_init(QsimPgStore *self)
{
	g_mutex_init(&self->listen_lock);
}

static void
qsim_pg_store_class_init(QsimPgStoreClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	QsimStoreClass *s = QSIM_STORE_CLASS(klass);

	object_class->finalize = qsim_pg_store_finalize;
	s->get_schema_version = pg_get_schema_version;
	s->ping = pg_ping;
	s->insert_request = qsim_pg_insert_request;
	s->insert_requests = qsim_pg_insert_requests;
	s->get_request = qsim_pg_get_request;
	s->list_requests = qsim_pg_list_requests;
	s->set_status = qsim_pg_set_status;
	s->delete_request = qsim_pg_delete_request;
	s->claim_next = qsim_pg_claim_next;
	s->mark_running = qsim_pg_mark_running;
	s->renew_lease = qsim_pg_renew_lease;
	s->finish_request = qsim_pg_finish_request;
	s->list_expired_leases = qsim_pg_list_expired_leases;
	s->recover_request = qsim_pg_recover_request;
	s->append_logs = qsim_pg_append_logs;
	s->read_logs = qsim_pg_read_logs;
	s->get_stats = qsim_pg_get_stats;
	s->count_active_vms = qsim_pg_count_active_vms;
	s->get_data_version = pg_get_data_version;
	s->list_leases = qsim_pg_list_leases;
	s->set_start_mode = qsim_pg_set_start_mode;
	s->set_output_truncated = qsim_pg_set_output_truncated;
	s->put_accel_verdict = qsim_pg_put_accel_verdict;
	s->list_accel_verdicts = qsim_pg_list_accel_verdicts;
	s->upsert_template = qsim_pg_upsert_template;
	s->get_template = qsim_pg_get_template;
	s->list_templates = qsim_pg_list_templates;
	s->request_prepare = qsim_pg_request_prepare;
	s->claim_prepare = qsim_pg_claim_prepare;
	s->purge_requests = qsim_pg_purge_requests;
	s->reclaim_space = qsim_pg_reclaim_space;
	s->vacuum = qsim_pg_vacuum;
	s->get_metrics = qsim_pg_get_metrics;
	s->publish_host = qsim_pg_publish_host;
	s->list_hosts = qsim_pg_list_hosts;
	s->list_host_vms = qsim_pg_list_host_vms;
	s->claim_slot = qsim_pg_claim_slot;
	s->release_slot = qsim_pg_release_slot;
	s->adopt_slot = qsim_pg_adopt_slot;
	s->release_owner_slots = qsim_pg_release_owner_slots;
	s->release_stale_host_slots = qsim_pg_release_stale_host_slots;
	s->list_slots = qsim_pg_list_slots;
	s->export_requests = qsim_pg_export_requests;
	s->import_requests = qsim_pg_import_requests;
	s->import_logs = qsim_pg_import_logs;
	s->count_rows = qsim_pg_count_rows;
	s->add_artifacts = qsim_pg_add_artifacts;
	s->list_artifacts = qsim_pg_list_artifacts;
	s->import_artifacts = qsim_pg_import_artifacts;
	s->count_artifacts = qsim_pg_count_artifacts;
	s->upload_add_file = qsim_pg_upload_add_file;
	s->upload_put_chunk = qsim_pg_upload_put_chunk;
	s->upload_finish_file = qsim_pg_upload_finish_file;
	s->upload_discard = qsim_pg_upload_discard;
	s->delete_uploads = qsim_pg_delete_uploads;
	s->list_uploads = qsim_pg_list_uploads;
	s->upload_read_chunk = qsim_pg_upload_read_chunk;
	s->list_request_events = qsim_pg_list_request_events;
	s->list_finished_since = qsim_pg_list_finished_since;
}

/* ---- URLs and passwords ------------------------------------------------------ */

gboolean
qsim_pg_store_is_url(const gchar *location)
{
	return qsim_db_url_is_postgres(location);
}

gboolean
qsim_pg_store_check_url(const gchar *url, GError **error)
{
	return qsim_db_url_check(url, error);
}

gchar *
qsim_pg_store_redact_url(const gchar *url)
{
	return qsim_db_url_redact(url);
}

gchar *
qsim_pg_store_read_password_file(const gchar *path, GError **error)
{
	g_autofree gchar *text = NULL;
	struct stat st;
	gint fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		gint saved = errno;

		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "cannot open %s: %s", path,
		            g_strerror(saved));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0077) != 0) {
		close(fd);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s must be a regular file that only its owner can read (mode 0600 or "
		            "0400)",
		            path);
		return NULL;
	}
	close(fd);
	if (!g_file_get_contents(path, &text, NULL, error)) {
		g_prefix_error(error, "cannot read %s: ", path);
		return NULL;
	}
	text[strcspn(text, "\r\n")] = '\0';
	if (text[0] == '\0') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s holds no password", path);
		return NULL;
	}
	return g_steal_pointer(&text);
}

QsimStore *
qsim_pg_store_new(const gchar *url, const gchar *password_file, GError **error)
{
	g_autoptr(QsimPgStore) self = NULL;
	g_autofree gchar *shown = qsim_pg_store_redact_url(url);

	if (!qsim_pg_store_check_url(url, error))
		return NULL;
	self = g_object_new(QSIM_TYPE_PG_STORE, NULL);
	self->url = g_strdup(url);
	if (password_file != NULL && password_file[0] != '\0') {
		self->password = qsim_pg_store_read_password_file(password_file, error);
		if (self->password == NULL)
			return NULL;
	}
	if (!ensure_conn(self, error) ||
	    !qsim_pg_schema_migrate(self, &self->schema_version, error)) {
		g_prefix_error(error, "%s: ", shown);
		return NULL;
	}
	return QSIM_STORE(g_steal_pointer(&self));
}
