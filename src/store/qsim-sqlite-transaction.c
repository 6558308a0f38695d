#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-metrics.h"
#include "store/qsim-sqlite-transaction.h"
#include "store/qsim-sqlite-util.h"

struct _QsimSqliteTransaction {
	sqlite3 *db;
	gboolean finished;
	gboolean immediate;
	gint64 begun_us; /* before BEGIN: an IMMEDIATE's wait for the lock counts */
};

/* one observation per transaction, however it ends */
static void
observe(QsimSqliteTransaction *self)
{
	qsim_metrics_observe(QSIM_METRIC_STORE_TRANSACTION,
	                     (gdouble)(g_get_monotonic_time() - self->begun_us) / G_USEC_PER_SEC,
	                     self->immediate ? "write" : "read", NULL, NULL);
}

QsimSqliteTransaction *
qsim_sqlite_transaction_begin(sqlite3 *db, gboolean immediate, GError **error)
{
	QsimSqliteTransaction *self;
	gint64 begun_us = g_get_monotonic_time();

	if (!qsim_sqlite_exec(db, immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED", error)) {
		g_prefix_error(error, "cannot begin a transaction: ");
		return NULL;
	}
	self = g_new0(QsimSqliteTransaction, 1);
	self->db = db;
	self->immediate = immediate;
	self->begun_us = begun_us;
	return self;
}

gboolean
qsim_sqlite_transaction_commit(QsimSqliteTransaction *self, GError **error)
{
	g_return_val_if_fail(!self->finished, FALSE);
	if (!qsim_sqlite_exec(self->db, "COMMIT", error)) {
		g_prefix_error(error, "cannot commit: ");
		return FALSE; /* the free rolls back */
	}
	self->finished = TRUE;
	observe(self);
	return TRUE;
}

void
qsim_sqlite_transaction_free(QsimSqliteTransaction *self)
{
	if (self == NULL)
		return;
	/* a failed statement may already have ended the transaction: then this is a no-op */
	if (!self->finished && !sqlite3_get_autocommit(self->db)) {
		g_autoptr(GError) error = NULL;

		if (!qsim_sqlite_exec(self->db, "ROLLBACK", &error))
			g_warning("rollback failed: %s", error->message);
	}
	if (!self->finished)
		observe(self);
	g_free(self);
}
