#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-retention.h"

/*
 * RETENTION on a main-loop timer: every interval, a pass purges finished
 * requests older than the retention in batches (one short transaction each,
 * a pause between them so the loop keeps serving), then gives the freed pages
 * back with incremental vacuum steps. Every qsimd process that writes runs
 * one; two passes on one database at once only share the work, since each
 * batch deletes whatever still matches under the write lock.
 */
struct _QsimRetention {
	GObject parent_instance;
	QsimStore *store;
	gint64 retention_ms;
	guint interval_ms;
	guint pause_ms;
	guint batch;
	guint timer_id;
	gboolean reclaiming;
	gboolean warned_not_incremental;
	guint64 pass_purged;
	guint n_passes;
	guint n_batches;
	guint64 n_purged;
};

G_DEFINE_FINAL_TYPE(QsimRetention, qsim_retention, G_TYPE_OBJECT)

static gboolean qsim_retention_tick_cb(gpointer user_data);

static void
qsim_retention_schedule(QsimRetention *self, guint delay_ms)
{
	g_clear_handle_id(&self->timer_id, g_source_remove);
	self->timer_id = g_timeout_add(delay_ms, qsim_retention_tick_cb, self);
}

static void
qsim_retention_end_pass(QsimRetention *self)
{
	self->n_passes++;
	self->reclaiming = FALSE;
	if (self->pass_purged > 0)
		g_info("retention: purged %" G_GUINT64_FORMAT
		       " finished requests older than %" G_GINT64_FORMAT " s",
		       self->pass_purged, self->retention_ms / 1000);
	self->pass_purged = 0;
	qsim_retention_schedule(self, self->interval_ms);
}

static void
qsim_retention_reclaim_step(QsimRetention *self)
{
	g_autoptr(GError) error = NULL;
	guint64 free_pages = 0;
	gboolean incremental = FALSE;

	if (!qsim_store_reclaim_space(self->store, QSIM_RETENTION_RECLAIM_PAGES, &free_pages,
	                              &incremental, &error)) {
		g_warning("retention: %s", error->message);
		qsim_retention_end_pass(self);
		return;
	}
	if (!incremental) {
		if (free_pages > 0 && !self->warned_not_incremental) {
			self->warned_not_incremental = TRUE;
			g_message("retention: the database keeps %" G_GUINT64_FORMAT
			          " free pages for reuse; run `qsimd vacuum` once to give freed "
			          "space back to the file system",
			          free_pages);
		}
		qsim_retention_end_pass(self);
		return;
	}
	if (free_pages > 0) {
		qsim_retention_schedule(self, self->pause_ms);
		return;
	}
	qsim_retention_end_pass(self);
}

static gboolean
qsim_retention_tick_cb(gpointer user_data)
{
	QsimRetention *self = QSIM_RETENTION(user_data);
	g_autoptr(GError) error = NULL;
	guint deleted = 0;
	gboolean more = FALSE;

	self->timer_id = 0;
	if (self->reclaiming) {
		qsim_retention_reclaim_step(self);
		return G_SOURCE_REMOVE;
	}
	if (!qsim_store_purge_requests(self->store, -1,
	                               qsim_store_now_ms(self->store) - self->retention_ms,
	                               self->batch, &deleted, &more, &error)) {
		/* a busy or full database: the next pass tries again */
		g_warning("retention: cannot purge old requests: %s", error->message);
		qsim_retention_end_pass(self);
		return G_SOURCE_REMOVE;
	}
	self->n_batches++;
	self->n_purged += deleted;
	self->pass_purged += deleted;
	if (more) {
		qsim_retention_schedule(self, self->pause_ms);
		return G_SOURCE_REMOVE;
	}
	if (self->pass_purged == 0) {
		qsim_retention_end_pass(self);
		return G_SOURCE_REMOVE;
	}
	self->reclaiming = TRUE;
	qsim_retention_reclaim_step(self);
	return G_SOURCE_REMOVE;
}

static void
qsim_retention_dispose(GObject *object)
{
	QsimRetention *self = QSIM_RETENTION(object);

	g_clear_handle_id(&self->timer_id, g_source_remove);
	g_clear_object(&self->store);
	G_OBJECT_CLASS(qsim_retention_parent_class)->dispose(object);
}

static void
qsim_retention_class_init(QsimRetentionClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = qsim_retention_dispose;
}

static void
qsim_retention_init(QsimRetention *self)
{
	self->interval_ms = QSIM_RETENTION_DEFAULT_INTERVAL_MS;
	self->pause_ms = QSIM_RETENTION_DEFAULT_PAUSE_MS;
	self->batch = QSIM_STORE_PURGE_BATCH;
}

/**
 * qsim_retention_new:
 * @store: the store to purge, used from the main loop only
 * @retention_ms: finished requests older than this go; > 0
 *
 * Returns: (transfer full): a stopped purge loop
 */
QsimRetention *
qsim_retention_new(QsimStore *store, gint64 retention_ms)
{
	QsimRetention *self = g_object_new(QSIM_TYPE_RETENTION, NULL);

	g_return_val_if_fail(retention_ms > 0, self);
	self->store = g_object_ref(store);
	self->retention_ms = retention_ms;
	return self;
}

/* Tests: a faster timer and smaller batches (@batch 1..QSIM_STORE_PURGE_MAX_BATCH) */
void
qsim_retention_set_timing(QsimRetention *self, guint interval_ms, guint pause_ms, guint batch)
{
	g_return_if_fail(QSIM_IS_RETENTION(self));
	self->interval_ms = MAX(interval_ms, 1);
	self->pause_ms = pause_ms;
	self->batch = CLAMP(batch, 1, QSIM_STORE_PURGE_MAX_BATCH);
}

/* Starts the first pass soon (within a second), then one per interval */
void
qsim_retention_start(QsimRetention *self)
{
	g_return_if_fail(QSIM_IS_RETENTION(self));
	qsim_retention_schedule(self, MIN(self->interval_ms, 1000));
}

void
qsim_retention_stop(QsimRetention *self)
{
	g_return_if_fail(QSIM_IS_RETENTION(self));
	g_clear_handle_id(&self->timer_id, g_source_remove);
	self->reclaiming = FALSE;
}

guint
qsim_retention_get_n_passes(QsimRetention *self)
{
	return self->n_passes;
}

guint
qsim_retention_get_n_batches(QsimRetention *self)
{
	return self->n_batches;
}

guint64
qsim_retention_get_n_purged(QsimRetention *self)
{
	return self->n_purged;
}
