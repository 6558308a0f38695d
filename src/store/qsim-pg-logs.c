#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"

/*
 * One append_logs call is one transaction and ONE multi-row INSERT: the
 * request's row is locked (FOR UPDATE) so two appenders of the same request
 * number their chunks one after the other, and the batch is numbered from the
 * last seq in the same statement.
 */
gint64
qsim_pg_append_logs(QsimStore *store, const gchar *uuid, GPtrArray *chunks, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(GString) sql = g_string_new(NULL);
	g_autoptr(PGresult) last = NULL;
	gint64 now = qsim_pg_now_ms(self);
	gint64 seq;

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return -1;
	qsim_pg_args_text(a, uuid);
	last = qsim_pg_store_query(self,
	                           "SELECT (SELECT COALESCE(MAX(seq), 0) FROM request_logs"
	                           " WHERE request_uuid = $1) FROM requests WHERE uuid = $1"
	                           " FOR NO KEY UPDATE",
	                           a, error);
	if (last == NULL)
		return -1;
	if (PQntuples(last) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
		return -1;
	}
	seq = qsim_pg_int(last, 0, 0);
	g_string_append(sql, "INSERT INTO request_logs (request_uuid, seq, timestamp_ms, log_type,"
	                     " output) VALUES ");
	for (guint i = 0; i < chunks->len; i++) {
		const QsimLogEntry *entry = g_ptr_array_index(chunks, i);
		gsize len = 0;
		gconstpointer data = g_bytes_get_data(entry->output, &len);
		guint p = a->values->len + 1;

		qsim_pg_args_int(a, ++seq);
		qsim_pg_args_int(a, entry->timestamp_ms > 0 ? entry->timestamp_ms : now);
		qsim_pg_args_text(a, qsim_log_type_to_string(entry->log_type));
		qsim_pg_args_bytes(a, data, len);
		g_string_append_printf(sql, "%s($1, $%u, $%u, $%u, $%u)", i > 0 ? ", " : "", p,
		                       p + 1, p + 2, p + 3);
	}
	if (!qsim_pg_store_exec(self, sql->str, a, error) || !qsim_pg_tx_commit(tx, error))
		return -1;
	return seq;
}

GPtrArray *
qsim_pg_read_logs(QsimStore *store, const gchar *uuid, gint64 after_seq, guint limit, gint log_type,
                  gsize max_bytes, gboolean *out_cut, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) entries =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	gsize bytes = 0;

	*out_cut = FALSE;
	qsim_pg_args_text(a, uuid);
	qsim_pg_args_int(a, after_seq);
	qsim_pg_args_text(a, log_type >= 0 ? qsim_log_type_to_string(log_type) : NULL);
	qsim_pg_args_int(a, limit);
	/* the existence check and the page in one statement: one snapshot. Rows come
	 * with the request's own row (a LEFT JOIN), so "no such request" and "no logs
	 * yet" are told apart */
	res = qsim_pg_store_query(
	    self,
	    "SELECT l.seq, l.timestamp_ms, l.log_type, l.output FROM requests r"
	    " LEFT JOIN LATERAL (SELECT seq, timestamp_ms, log_type, output FROM request_logs"
	    "  WHERE request_uuid = r.uuid AND seq > $2"
	    "  AND ($3::text IS NULL OR log_type = $3) ORDER BY seq LIMIT $4) l ON TRUE"
	    " WHERE r.uuid = $1 ORDER BY l.seq",
	    a, error);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
		return NULL;
	}
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimLogType type = QSIM_LOG_SYSTEM;
		gsize len = 0;
		guchar *data;
		QsimLogEntry *entry;

		if (PQgetisnull(res, i, 0))
			break; /* the request without logs */
		data = PQunescapeBytea((const guchar *)PQgetvalue(res, i, 3), &len);
		if (data == NULL) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_STORE,
			                    "cannot decode a log chunk");
			return NULL;
		}
		if (max_bytes > 0 && entries->len > 0 && bytes + len > max_bytes) {
			PQfreemem(data);
			*out_cut = TRUE;
			break;
		}
		bytes += len;
		if (!qsim_log_type_from_string(PQgetvalue(res, i, 2), &type)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
			            "log of request %s has unknown type '%s'", uuid,
			            PQgetvalue(res, i, 2));
			PQfreemem(data);
			return NULL;
		}
		entry = qsim_log_entry_new(type, qsim_pg_int(res, i, 1), data, len);
		entry->seq = qsim_pg_int(res, i, 0);
		PQfreemem(data);
		g_ptr_array_add(entries, entry);
	}
	return g_steal_pointer(&entries);
}

/* ---- retention ---------------------------------------------------------------- */

GPtrArray *
qsim_pg_purge_requests(QsimStore *store, gint status, gint64 before_ms, guint limit,
                       gboolean *out_more, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) candidates = NULL;
	g_autoptr(GPtrArray) deleted = g_ptr_array_new_with_free_func(g_free);
	gint64 log_budget = (gint64)limit * QSIM_STORE_PURGE_LOG_ROWS_PER_REQUEST;
	gboolean more;

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return NULL;
	qsim_pg_args_int(a, before_ms);
	qsim_pg_args_text(a, status >= 0 ? qsim_status_to_string((QsimStatus)status) : NULL);
	qsim_pg_args_int(a, (gint64)limit + 1);
	/* a live lease means the agent still stops the VM of a cancelled request;
	 * SKIP LOCKED: a row another transaction is changing waits for a later pass */
	candidates = qsim_pg_store_query(
	    self,
	    "SELECT uuid FROM requests WHERE finished_at < $1"
	    " AND status IN ('done', 'failed', 'cancelled') AND ($2::text IS NULL OR status = $2)"
	    " AND lease_expires_at IS NULL ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED",
	    a, error);
	if (candidates == NULL)
		return NULL;
	more = (guint)PQntuples(candidates) > limit;
	for (guint i = 0; i < (guint)PQntuples(candidates) && i < limit; i++) {
		const gchar *uuid = PQgetvalue(candidates, (gint)i, 0);
		g_autoptr(QsimPgArgs) l = qsim_pg_args_new();
		g_autoptr(QsimPgArgs) d = qsim_pg_args_new();
		g_autoptr(PGresult) res = NULL;
		gint64 n_logs;

		/* logs first, bounded, so a huge log cannot make this transaction long */
		qsim_pg_args_text(l, uuid);
		qsim_pg_args_int(l, log_budget);
		res = qsim_pg_store_query(
		    self,
		    "DELETE FROM request_logs WHERE request_uuid = $1 AND seq IN"
		    " (SELECT seq FROM request_logs WHERE request_uuid = $1"
		    " ORDER BY seq LIMIT $2)",
		    l, error);
		if (res == NULL)
			return NULL;
		n_logs = g_ascii_strtoll(PQcmdTuples(res), NULL, 10);
		if (n_logs >= log_budget) {
			more = TRUE;
			break;
		}
		log_budget -= n_logs;
		qsim_pg_args_text(d, uuid);
		if (!qsim_pg_store_exec(self, "DELETE FROM requests WHERE uuid = $1", d, error))
			return NULL;
		g_ptr_array_add(deleted, g_strdup(uuid));
	}
	if (!qsim_pg_tx_commit(tx, error))
		return NULL;
	*out_more = more;
	return g_steal_pointer(&deleted);
}

/*
 * Nothing to do step by step: PostgreSQL's autovacuum makes the space of purged
 * rows reusable by itself, in the server's own processes. A VACUUM here would
 * run on the caller's main loop (the retention timer) for as long as the table
 * is big. So: no free pages to report, and incremental, because nothing needs
 * a full rewrite for space to be reused (`qsimd vacuum` still runs VACUUM FULL).
 */
gboolean
qsim_pg_reclaim_space(QsimStore *store, guint max_pages, guint64 *out_free_pages,
                      gboolean *out_incremental, GError **error)
{
	*out_free_pages = 0;
	*out_incremental = TRUE;
	return TRUE;
}

/* `qsimd vacuum`: VACUUM FULL rewrites every table and gives the space to the system */
gboolean
qsim_pg_vacuum(QsimStore *store, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);

	if (!qsim_pg_store_exec(self, "SET statement_timeout = 0", NULL, error) ||
	    !qsim_pg_store_exec(self, "VACUUM FULL", NULL, error)) {
		g_prefix_error(error, "vacuum failed: ");
		qsim_pg_store_exec(self, "SET statement_timeout = 15000", NULL, NULL);
		return FALSE;
	}
	return qsim_pg_store_exec(self, "SET statement_timeout = 15000", NULL, error);
}
