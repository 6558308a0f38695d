#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"
#include "store/qsim-store-import.h"

/* The PostgreSQL side of `qsimd migrate-store` (store/qsim-store-import.h) */

GPtrArray *
qsim_pg_export_requests(QsimStore *store, gint64 after_id, guint limit, gsize max_bytes,
                        gint64 *out_last_id, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_import_row_free);
	gsize bytes = 0;

	*out_last_id = after_id;
	qsim_pg_args_int(a, after_id);
	qsim_pg_args_int(a, limit);
	res = qsim_pg_store_query(self,
	                          "SELECT " REQUEST_COLUMNS ", end_reason, id FROM requests"
	                          " WHERE id > $1 ORDER BY id LIMIT $2",
	                          a, error);
	if (res == NULL)
		return NULL;
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimRequest *r = qsim_pg_row_to_request(res, i, error);
		g_autofree gchar *reason = NULL;

		if (r == NULL)
			return NULL;
		reason = qsim_pg_dup(res, i, 18);
		g_ptr_array_add(rows, qsim_import_row_new(r, reason));
		*out_last_id = qsim_pg_int(res, i, 19);
		bytes += 256 + strlen(r->commands) + (r->error != NULL ? strlen(r->error) : 0);
		if (max_bytes > 0 && bytes >= max_bytes)
			break;
	}
	return g_steal_pointer(&rows);
}

static gboolean
import_row(QsimPgStore *self, const QsimImportRow *row, guint *inserted, GError **error)
{
	const QsimRequest *r = row->request;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autofree gchar *paths = NULL;

	if (r->artifact_paths != NULL && r->artifact_paths[0] != NULL)
		paths = g_strjoinv("\n", r->artifact_paths);
	qsim_pg_args_text(a, r->uuid);
	qsim_pg_args_text(a, r->vm_name);
	qsim_pg_args_text(a, r->commands);
	qsim_pg_args_int(a, r->timeout_s);
	qsim_pg_args_text(a, qsim_status_to_string(r->status));
	qsim_pg_args_text(a, r->status == QSIM_STATUS_HOLD ? qsim_status_to_string(r->held_from)
	                                                   : NULL);
	qsim_pg_args_int(a, r->created_at);
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
	qsim_pg_args_text(a, r->start_mode != QSIM_START_MODE_NONE
	                         ? qsim_start_mode_to_string(r->start_mode)
	                         : NULL);
	qsim_pg_args_int(a, r->output_truncated ? 1 : 0);
	qsim_pg_args_text(a, row->end_reason);
	qsim_pg_args_text(a, paths);
	/* id comes from the identity: after the target's own rows, in the order given */
	res = qsim_pg_store_query(
	    self,
	    "INSERT INTO requests (uuid, vm_name, commands, timeout, status, held_from,"
	    " created_at, updated_at, started_at, finished_at, exit_code, error, agent_id,"
	    " lease_expires_at, attempts, start_mode, output_truncated, end_reason,"
	    " artifact_paths)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
	    " $18, $19) ON CONFLICT (uuid) DO NOTHING",
	    a, error);
	if (res == NULL) {
		g_prefix_error(error, "%s: ", r->uuid);
		return FALSE;
	}
	*inserted += (guint)atoi(PQcmdTuples(res));
	return TRUE;
}

gboolean
qsim_pg_import_requests(QsimStore *store, GPtrArray *rows, guint *out_inserted, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);
	guint inserted = 0;

	if (tx == NULL)
		return FALSE;
	for (guint i = 0; i < rows->len; i++) {
		if (!import_row(self, rows->pdata[i], &inserted, error))
			return FALSE;
	}
	if (!qsim_pg_tx_commit(tx, error))
		return FALSE;
	*out_inserted = inserted;
	return TRUE;
}

gboolean
qsim_pg_import_logs(QsimStore *store, const gchar *uuid, GPtrArray *entries, guint *out_inserted,
                    GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(GString) sql = g_string_new(NULL);
	g_autoptr(PGresult) exists = NULL;
	g_autoptr(PGresult) res = NULL;

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	qsim_pg_args_text(a, uuid);
	exists = qsim_pg_store_query(self, "SELECT 1 FROM requests WHERE uuid = $1", a, error);
	if (exists == NULL)
		return FALSE;
	if (PQntuples(exists) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request %s", uuid);
		return FALSE;
	}
	/* one multi-row INSERT per page (at most 1000 chunks: 4001 parameters) */
	g_string_append(sql, "INSERT INTO request_logs (request_uuid, seq, timestamp_ms, log_type,"
	                     " output) VALUES ");
	for (guint i = 0; i < entries->len; i++) {
		const QsimLogEntry *entry = g_ptr_array_index(entries, i);
		gsize len = 0;
		gconstpointer data = g_bytes_get_data(entry->output, &len);
		guint p = a->values->len + 1;

		qsim_pg_args_int(a, entry->seq);
		qsim_pg_args_int(a, entry->timestamp_ms);
		qsim_pg_args_text(a, qsim_log_type_to_string(entry->log_type));
		qsim_pg_args_bytes(a, data, len);
		g_string_append_printf(sql, "%s($1, $%u, $%u, $%u, $%u)", i > 0 ? ", " : "", p,
		                       p + 1, p + 2, p + 3);
	}
	g_string_append(sql, " ON CONFLICT (request_uuid, seq) DO NOTHING");
	res = qsim_pg_store_query(self, sql->str, a, error);
	if (res == NULL || !qsim_pg_tx_commit(tx, error))
		return FALSE;
	*out_inserted = (guint)atoi(PQcmdTuples(res));
	return TRUE;
}

gboolean
qsim_pg_count_rows(QsimStore *store, guint64 *out_requests, guint64 *out_logs, GError **error)
{
	g_autoptr(PGresult) res = NULL;

	/* one statement: one snapshot for both counts */
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT (SELECT COUNT(*) FROM requests),"
	                          " (SELECT COUNT(*) FROM request_logs)",
	                          NULL, error);
	if (res == NULL)
		return FALSE;
	*out_requests = (guint64)qsim_pg_int(res, 0, 0);
	*out_logs = (guint64)qsim_pg_int(res, 0, 1);
	return TRUE;
}
