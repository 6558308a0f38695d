#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <stdlib.h>

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"

/* Artifact metadata (schema step 8); the bytes live in the artifact store */

static gboolean
request_exists(QsimPgStore *self, const gchar *uuid, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(a, uuid);
	res = qsim_pg_store_query(self, "SELECT 1 FROM requests WHERE uuid = $1", a, error);
	if (res == NULL)
		return FALSE;
	if (PQntuples(res) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "request %s not found", uuid);
		return FALSE;
	}
	return TRUE;
}

gboolean
qsim_pg_add_artifacts(QsimStore *store, const gchar *uuid, GPtrArray *records, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);
	gint64 now = qsim_pg_now_ms(self);

	if (tx == NULL || !request_exists(self, uuid, error))
		return FALSE;
	for (guint i = 0; i < records->len; i++) {
		const QsimArtifactRecord *r = records->pdata[i];
		g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
		g_autoptr(GError) local = NULL;

		qsim_pg_args_text(a, uuid);
		qsim_pg_args_text(a, r->name);
		qsim_pg_args_text(a, qsim_artifact_kind_to_string(r->kind));
		qsim_pg_args_int(a, (gint64)r->size);
		qsim_pg_args_text(a, r->sha256);
		qsim_pg_args_int(a, r->mode);
		qsim_pg_args_text(a, r->target);
		qsim_pg_args_int(a, now);
		if (qsim_pg_store_exec(
		        self,
		        "INSERT INTO artifacts (request_uuid, name, kind, size, sha256,"
		        " mode, target, created_at)"
		        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		        a, &local))
			continue;
		if (qsim_pg_store_last_was_constraint(self))
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
			            "artifact '%s' is already recorded", r->name);
		else
			g_propagate_prefixed_error(error, g_steal_pointer(&local),
			                           "cannot record an artifact: ");
		return FALSE;
	}
	return qsim_pg_tx_commit(tx, error);
}

GPtrArray *
qsim_pg_list_artifacts(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_text(a, uuid);
	/* one statement: the request's existence and its artifacts in one snapshot;
	 * COLLATE "C": names in byte order, as SQLite's BINARY */
	res = qsim_pg_store_query(self,
	                          "SELECT a.name, a.kind, a.size, a.sha256, a.mode, a.target,"
	                          " a.created_at FROM requests r LEFT JOIN artifacts a"
	                          " ON a.request_uuid = r.uuid WHERE r.uuid = $1"
	                          " ORDER BY a.name COLLATE \"C\"",
	                          a, error);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "request %s not found", uuid);
		return NULL;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		g_autoptr(QsimArtifactRecord) r = NULL;

		if (PQgetisnull(res, i, 0))
			continue; /* the request without artifacts */
		r = qsim_artifact_record_new();
		r->name = qsim_pg_dup(res, i, 0);
		if (!qsim_artifact_kind_from_string(PQgetvalue(res, i, 1), &r->kind)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
			            "artifact %s has an unknown kind", r->name);
			return NULL;
		}
		r->size = (guint64)qsim_pg_int(res, i, 2);
		r->sha256 = qsim_pg_dup(res, i, 3);
		r->mode = (guint)qsim_pg_int(res, i, 4);
		r->target = qsim_pg_dup(res, i, 5);
		r->created_at = qsim_pg_int(res, i, 6);
		g_ptr_array_add(out, g_steal_pointer(&r));
	}
	return g_steal_pointer(&out);
}

gboolean
qsim_pg_import_artifacts(QsimStore *store, const gchar *uuid, GPtrArray *records,
                         guint *out_inserted, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);
	guint inserted = 0;

	if (tx == NULL || !request_exists(self, uuid, error))
		return FALSE;
	for (guint i = 0; i < records->len; i++) {
		const QsimArtifactRecord *r = records->pdata[i];
		g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
		g_autoptr(PGresult) res = NULL;

		qsim_pg_args_text(a, uuid);
		qsim_pg_args_text(a, r->name);
		qsim_pg_args_text(a, qsim_artifact_kind_to_string(r->kind));
		qsim_pg_args_int(a, (gint64)r->size);
		qsim_pg_args_text(a, r->sha256);
		qsim_pg_args_int(a, r->mode);
		qsim_pg_args_text(a, r->target);
		qsim_pg_args_int(a, r->created_at);
		res = qsim_pg_store_query(self,
		                          "INSERT INTO artifacts (request_uuid, name, kind, size,"
		                          " sha256, mode, target, created_at)"
		                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
		                          " ON CONFLICT (request_uuid, name) DO NOTHING",
		                          a, error);
		if (res == NULL)
			return FALSE;
		inserted += (guint)atoi(PQcmdTuples(res));
	}
	if (!qsim_pg_tx_commit(tx, error))
		return FALSE;
	*out_inserted = inserted;
	return TRUE;
}

gboolean
qsim_pg_count_artifacts(QsimStore *store, guint64 *out_count, GError **error)
{
	g_autoptr(PGresult) res = qsim_pg_store_query(
	    QSIM_PG_STORE(store), "SELECT COUNT(*) FROM artifacts", NULL, error);

	if (res == NULL)
		return FALSE;
	*out_count = (guint64)qsim_pg_int(res, 0, 0);
	return TRUE;
}
