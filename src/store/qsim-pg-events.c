#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"

/*
 * The request journal (schema step 9): rows are written by triggers at
 * commit, in commit order (qsim-pg-schema.c), only read here. A reader
 * therefore never sees an id appear below one it has already returned.
 */

GPtrArray *
qsim_pg_list_request_events(QsimStore *store, gint64 after_id, guint limit, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_int(a, after_id);
	qsim_pg_args_int(a, limit);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          after_id < 0
	                              ? "SELECT id, uuid, kind, status, at FROM request_events"
	                                " WHERE $1::bigint < 0 ORDER BY id DESC LIMIT $2"
	                              : "SELECT id, uuid, kind, status, at FROM request_events"
	                                " WHERE id > $1 ORDER BY id LIMIT $2",
	                          a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_event_free);
	for (gint i = 0; i < PQntuples(res); i++)
		g_ptr_array_add(out, qsim_request_event_new(
		                         qsim_pg_int(res, i, 0), PQgetvalue(res, i, 1),
		                         PQgetvalue(res, i, 2),
		                         PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
		                         qsim_pg_int(res, i, 4)));
	return g_steal_pointer(&out);
}

GPtrArray *
qsim_pg_list_finished_since(QsimStore *store, gint64 since_ms, guint limit, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_int(a, since_ms);
	qsim_pg_args_int(a, limit);
	/* the first output: the primary key walks a request's chunks by seq */
	res = qsim_pg_store_query(
	    QSIM_PG_STORE(store),
	    "SELECT status, created_at, COALESCE(started_at, 0), finished_at,"
	    " COALESCE((SELECT timestamp_ms FROM request_logs l WHERE l.request_uuid = r.uuid"
	    "   AND l.log_type IN ('stdout', 'stderr') ORDER BY seq LIMIT 1), 0)"
	    " FROM requests r WHERE finished_at >= $1 ORDER BY finished_at DESC LIMIT $2",
	    a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func(g_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimFinishedSample *s = g_new0(QsimFinishedSample, 1);

		if (!qsim_status_from_string(PQgetvalue(res, i, 0), &s->status))
			s->status = QSIM_STATUS_FAILED;
		s->created_at = qsim_pg_int(res, i, 1);
		s->started_at = qsim_pg_int(res, i, 2);
		s->finished_at = qsim_pg_int(res, i, 3);
		s->first_output_at = qsim_pg_int(res, i, 4);
		g_ptr_array_add(out, s);
	}
	return g_steal_pointer(&out);
}
