#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"
#include "store/qsim-stats-rows.h"

/* Counts, stats and metrics: the same sources as SQLite's (qsim-sqlite-stats.c) */

static gboolean
count_live_leases(QsimPgStore *self, gint64 now, guint *out_vms, guint *out_agents, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_int(a, now);
	res = qsim_pg_store_query(self,
	                          "SELECT COUNT(*), COUNT(DISTINCT agent_id) FROM requests"
	                          " WHERE lease_expires_at IS NOT NULL AND lease_expires_at > $1",
	                          a, error);
	if (res == NULL)
		return FALSE;
	if (out_vms != NULL)
		*out_vms = (guint)qsim_pg_int(res, 0, 0);
	if (out_agents != NULL)
		*out_agents = (guint)qsim_pg_int(res, 0, 1);
	return TRUE;
}

static gboolean
stats_counts(QsimPgStore *self, QsimStats *stats, gint64 now, GError **error)
{
	g_autoptr(PGresult) res = qsim_pg_store_query(
	    self, "SELECT dimension, value, n FROM request_counts", NULL, error);
	g_autoptr(PGresult) oldest = NULL;

	if (res == NULL)
		return FALSE;
	for (gint i = 0; i < PQntuples(res); i++)
		qsim_stats_add_count(stats, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		                     qsim_pg_int(res, i, 2));
	oldest = qsim_pg_store_query(self,
	                             "SELECT created_at FROM requests WHERE status = 'pending'"
	                             " ORDER BY id LIMIT 1",
	                             NULL, error);
	if (oldest == NULL)
		return FALSE;
	if (PQntuples(oldest) > 0) {
		stats->has_oldest_pending = TRUE;
		stats->oldest_pending_age_ms = MAX(now - qsim_pg_int(oldest, 0, 0), 0);
	}
	return count_live_leases(self, now, &stats->active_vms, &stats->active_agents, error);
}

static gboolean
stats_latencies(QsimPgStore *self, QsimStats *stats, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(QsimLatencySample) sample = qsim_latency_sample_new();

	qsim_pg_args_int(a, QSIM_STATS_SAMPLE_SIZE);
	res = qsim_pg_store_query(self,
	                          "SELECT created_at, started_at, finished_at, start_mode FROM"
	                          " requests WHERE finished_at IS NOT NULL"
	                          " ORDER BY finished_at DESC LIMIT $1",
	                          a, error);
	if (res == NULL)
		return FALSE;
	for (gint i = 0; i < PQntuples(res); i++)
		qsim_latency_sample_add(sample, qsim_pg_int(res, i, 0), !qsim_pg_is_null(res, i, 1),
		                        qsim_pg_int(res, i, 1), qsim_pg_int(res, i, 2),
		                        qsim_pg_is_null(res, i, 3) ? NULL : PQgetvalue(res, i, 3));
	qsim_latency_sample_apply(sample, stats);
	return TRUE;
}

/* A read-only REPEATABLE READ transaction: one snapshot, so the numbers agree */
static QsimPgTx *
snapshot_begin(QsimPgStore *self, GError **error)
{
	QsimPgTx *tx = qsim_pg_tx_begin(self, error);

	if (tx != NULL &&
	    !qsim_pg_store_exec(self, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
	                        NULL, error)) {
		qsim_pg_tx_free(tx);
		return NULL;
	}
	return tx;
}

QsimStats *
qsim_pg_get_stats(QsimStore *store, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = snapshot_begin(self, error);
	g_autoptr(QsimStats) stats = qsim_stats_new();

	if (tx == NULL)
		return NULL;
	if (!stats_counts(self, stats, qsim_pg_now_ms(self), error) ||
	    !stats_latencies(self, stats, error) || !qsim_pg_tx_commit(tx, error))
		return NULL;
	return g_steal_pointer(&stats);
}

QsimStoreMetrics *
qsim_pg_get_metrics(QsimStore *store, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = snapshot_begin(self, error);
	g_autoptr(QsimStoreMetrics) m = qsim_store_metrics_new();
	g_autoptr(QsimStats) stats = qsim_stats_new();
	g_autoptr(PGresult) totals = NULL;
	g_autoptr(PGresult) templates = NULL;
	g_autoptr(PGresult) size = NULL;
	gint64 now = qsim_pg_now_ms(self);
	guint slots = 0;

	if (tx == NULL)
		return NULL;
	if (!stats_counts(self, stats, now, error) ||
	    !qsim_pg_slots_count(self, now, NULL, &slots, NULL, error))
		return NULL;
	totals = qsim_pg_store_query(
	    self, "SELECT event, label1, label2, n FROM request_totals ORDER BY 1, 2, 3", NULL,
	    error);
	if (totals == NULL)
		return NULL;
	for (gint i = 0; i < PQntuples(totals); i++)
		qsim_store_metrics_add_total(m, PQgetvalue(totals, i, 0), PQgetvalue(totals, i, 1),
		                             PQgetvalue(totals, i, 2),
		                             (guint64)MAX(qsim_pg_int(totals, i, 3), 0));
	templates = qsim_pg_store_query(
	    self, "SELECT state, COUNT(*) FROM templates GROUP BY state", NULL, error);
	if (templates == NULL)
		return NULL;
	for (gint i = 0; i < PQntuples(templates); i++) {
		QsimTemplateRecordState state;

		if (qsim_template_record_state_from_string(PQgetvalue(templates, i, 0), &state))
			m->templates[state] = (guint64)qsim_pg_int(templates, i, 1);
	}
	/* the database's size; PostgreSQL keeps no "free pages" count to report */
	size =
	    qsim_pg_store_query(self, "SELECT pg_database_size(current_database())", NULL, error);
	if (size == NULL || !qsim_pg_tx_commit(tx, error))
		return NULL;
	qsim_store_metrics_set_queue(m, stats, slots);
	m->db_bytes = (guint64)MAX(qsim_pg_int(size, 0, 0), 0);
	m->db_free_bytes = 0;
	return g_steal_pointer(&m);
}

gboolean
qsim_pg_count_active_vms(QsimStore *store, guint *out_count, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);

	return count_live_leases(self, qsim_pg_now_ms(self), out_count, NULL, error);
}
