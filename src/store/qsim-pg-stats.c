#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"

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

static gint
compare_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

static gboolean
stats_counts(QsimPgStore *self, QsimStats *stats, gint64 now, GError **error)
{
	g_autoptr(PGresult) res = qsim_pg_store_query(
	    self, "SELECT dimension, value, n FROM request_counts", NULL, error);
	g_autoptr(PGresult) oldest = NULL;

	if (res == NULL)
		return FALSE;
	for (gint i = 0; i < PQntuples(res); i++) {
		const gchar *value = PQgetvalue(res, i, 1);
		guint64 n = (guint64)MAX(qsim_pg_int(res, i, 2), 0);

		if (g_str_equal(PQgetvalue(res, i, 0), "status")) {
			QsimStatus status;

			if (!qsim_status_from_string(value, &status))
				continue;
			stats->counts[status] = n;
			stats->total += n;
		} else {
			QsimStartMode mode = QSIM_START_MODE_NONE;

			qsim_start_mode_from_string(value, &mode);
			stats->start_counts[mode] += n;
		}
	}
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
	g_autoptr(GArray) queue = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GArray) run = g_array_new(FALSE, FALSE, sizeof(gint64));
	g_autoptr(GPtrArray) by_mode =
	    g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);

	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++)
		g_ptr_array_add(by_mode, g_array_new(FALSE, FALSE, sizeof(gint64)));
	qsim_pg_args_int(a, QSIM_STATS_SAMPLE_SIZE);
	res = qsim_pg_store_query(self,
	                          "SELECT created_at, started_at, finished_at, start_mode FROM"
	                          " requests WHERE finished_at IS NOT NULL"
	                          " ORDER BY finished_at DESC LIMIT $1",
	                          a, error);
	if (res == NULL)
		return FALSE;
	for (gint i = 0; i < PQntuples(res); i++) {
		gint64 created = qsim_pg_int(res, i, 0);
		gint64 finished = qsim_pg_int(res, i, 2);
		gint64 started, d;
		QsimStartMode mode = QSIM_START_MODE_NONE;

		if (qsim_pg_is_null(res, i, 1))
			continue;
		started = qsim_pg_int(res, i, 1);
		d = MAX(started - created, 0);
		g_array_append_val(queue, d);
		if (!qsim_pg_is_null(res, i, 3))
			qsim_start_mode_from_string(PQgetvalue(res, i, 3), &mode);
		g_array_append_val((GArray *)g_ptr_array_index(by_mode, mode), d);
		d = MAX(finished - started, 0);
		g_array_append_val(run, d);
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
	memcpy(m->status_counts, stats->counts, sizeof m->status_counts);
	m->active_vms = slots;
	m->active_agents = stats->active_agents;
	m->has_oldest_pending = stats->has_oldest_pending;
	m->oldest_pending_age_ms = stats->oldest_pending_age_ms;
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
