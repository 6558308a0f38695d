#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "store/qsim-sqlite-hosts.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-stats-rows.h"
#include "store/qsim-sqlite-transaction.h"

static gboolean
count_live_leases(QsimSqliteStore *self, gint64 now, guint *out_vms, guint *out_agents,
                  GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
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

static gboolean
stats_counts(QsimSqliteStore *self, QsimStats *stats, gint64 now, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "SELECT dimension, value, n FROM request_counts", error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		qsim_stats_add_count(stats, (const gchar *)sqlite3_column_text(stmt, 0),
		                     (const gchar *)sqlite3_column_text(stmt, 1),
		                     sqlite3_column_int64(stmt, 2));
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot count requests", error);
		return FALSE;
	}
	{
		/* the lowest pending id is the oldest submit: one step down (status, id)
		 * where MIN(created_at) visited every pending row */
		g_autoptr(QsimSqliteCachedStmt) oldest = qsim_sqlite_store_stmt_get(
		    self,
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
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT created_at, started_at, finished_at, start_mode FROM requests"
	    " WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?1",
	    error);
	g_autoptr(QsimLatencySample) sample = qsim_latency_sample_new();
	gint rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int(stmt, 1, QSIM_STATS_SAMPLE_SIZE);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		qsim_latency_sample_add(
		    sample, sqlite3_column_int64(stmt, 0),
		    sqlite3_column_type(stmt, 1) != SQLITE_NULL, sqlite3_column_int64(stmt, 1),
		    sqlite3_column_int64(stmt, 2), (const gchar *)sqlite3_column_text(stmt, 3));
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read latencies", error);
		return FALSE;
	}
	qsim_latency_sample_apply(sample, stats);
	return TRUE;
}

QsimStats *
qsim_sqlite_get_stats(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimStats) stats = qsim_stats_new();

	/* one snapshot, so the numbers agree with each other */
	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return NULL;
	if (!stats_counts(self, stats, qsim_sqlite_store_now_ms(self), error) ||
	    !stats_latencies(self, stats, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&stats);
}

static gboolean
metrics_totals(QsimSqliteStore *self, QsimStoreMetrics *m, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
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
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self, "SELECT state, COUNT(*) FROM templates GROUP BY state", error);
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

QsimStoreMetrics *
qsim_sqlite_get_metrics(QsimStore *store, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimStoreMetrics) m = qsim_store_metrics_new();
	g_autoptr(QsimStats) stats = qsim_stats_new();
	gint64 pages = 0, free_pages = 0, page_size = 0;
	gint64 now = qsim_sqlite_store_now_ms(self);
	guint slots = 0;

	tx = qsim_sqlite_transaction_begin(self->db, FALSE, error);
	if (tx == NULL)
		return NULL;
	/* the request_counts half of /stats: no latency sample, that one reads rows */
	/* slots as the caps count them (vm_slots: requests, warm VMs and builds), so the
	 * gauge and MAX_CONCURRENT_VMS measure the same thing */
	if (!stats_counts(self, stats, now, error) ||
	    !qsim_sqlite_slots_count(self->db, now, NULL, &slots, NULL, error) ||
	    !metrics_totals(self, m, error) || !metrics_templates(self, m, error) ||
	    !qsim_sqlite_query_int64(self->db, "PRAGMA page_count", &pages, error) ||
	    !qsim_sqlite_query_int64(self->db, "PRAGMA freelist_count", &free_pages, error) ||
	    !qsim_sqlite_query_int64(self->db, "PRAGMA page_size", &page_size, error))
		return NULL;
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	qsim_store_metrics_set_queue(m, stats, slots);
	m->db_bytes = (guint64)MAX(pages, 0) * (guint64)MAX(page_size, 0);
	m->db_free_bytes = (guint64)MAX(free_pages, 0) * (guint64)MAX(page_size, 0);
	return g_steal_pointer(&m);
}

gboolean
qsim_sqlite_count_active_vms(QsimStore *store, guint *out_count, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);

	return count_live_leases(self, qsim_sqlite_store_now_ms(self), out_count, NULL, error);
}
