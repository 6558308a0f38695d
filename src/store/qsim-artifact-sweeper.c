#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-artifact-sweeper.h"

/*
 * Removes what STATE_DIR/artifacts holds but the store does not know: the
 * directory of a request that is gone (deleted or purged while its bytes could
 * not be removed, e.g. the process died in between) or that ended with no
 * artifact recorded (an agent killed mid-collect), and, in the directory of a
 * request that did record artifacts, the files no row names (partial leftovers
 * of an earlier attempt). The store decides, never this process's memory: a
 * request that is not final, or still leased to an agent, is left alone, and so
 * is a directory changed within the grace time. Every qsimd process that runs
 * agents runs one; two on one STATE_DIR only share the work.
 */
struct _QsimArtifactSweeper {
	GObject parent_instance;
	QsimStore *store;
	QsimFileArtifactStore *artifacts;
	guint interval_ms;
	guint pause_ms;
	guint batch;
	guint grace_s;
	guint timer_id;
	GPtrArray *round; /* the request directories of the round under way */
	guint next;
	guint n_rounds;
	guint n_checked;
	guint n_removed;
};

G_DEFINE_FINAL_TYPE(QsimArtifactSweeper, qsim_artifact_sweeper, G_TYPE_OBJECT)

static gboolean
remove_dir(QsimArtifactSweeper *self, const gchar *uuid, const gchar *why)
{
	g_autoptr(GError) error = NULL;

	if (!qsim_artifact_store_delete_request(QSIM_ARTIFACT_STORE(self->artifacts), uuid,
	                                        &error)) {
		g_warning("artifact sweeper: %s", error->message);
		return FALSE;
	}
	g_info("artifact sweeper: removed the artifacts directory of %s (%s)", uuid, why);
	self->n_removed++;
	return TRUE;
}

/* The files no row names: leftovers of an attempt whose collect never finished */
static void
remove_unrecorded(QsimArtifactSweeper *self, const gchar *uuid, GPtrArray *rows)
{
	g_autoptr(GHashTable) known = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) files = qsim_file_artifact_store_list_files(
	    self->artifacts, uuid, QSIM_ARTIFACT_SWEEP_MAX_FILES);
	guint n = 0;

	for (guint i = 0; i < rows->len; i++) {
		const QsimArtifactRecord *r = rows->pdata[i];

		if (r->kind == QSIM_ARTIFACT_FILE)
			g_hash_table_add(known, r->name);
	}
	for (guint i = 0; i < files->len; i++) {
		g_autoptr(GError) error = NULL;

		if (g_hash_table_contains(known, files->pdata[i]))
			continue;
		if (qsim_artifact_store_remove(QSIM_ARTIFACT_STORE(self->artifacts), uuid,
		                               files->pdata[i], &error))
			n++;
		else
			g_warning("artifact sweeper: %s: %s", uuid, error->message);
	}
	if (n > 0) {
		g_info("artifact sweeper: removed %u unrecorded files of %s", n, uuid);
		self->n_removed += n;
	}
}

static void
check(QsimArtifactSweeper *self, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;

	self->n_checked++;
	r = qsim_store_get_request(self->store, uuid, QSIM_STORE_MIN_PREFIX_API, &error);
	if (r == NULL && !g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND)) {
		/* a busy store proves nothing: the next round asks again */
		g_warning("artifact sweeper: %s: %s", uuid, error->message);
		return;
	}
	if (r == NULL) {
		remove_dir(self, uuid, "request gone");
		return;
	}
	/* running, collecting or queued again: its agent owns the directory */
	if (!qsim_status_is_final(r->status) || r->lease_expires_at != 0)
		return;
	rows = qsim_store_list_artifacts(self->store, uuid, &error);
	if (rows == NULL) {
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND))
			remove_dir(self, uuid, "request gone");
		else
			g_warning("artifact sweeper: %s: %s", uuid, error->message);
		return;
	}
	if (rows->len == 0) {
		remove_dir(self, uuid, "no artifacts recorded");
		return;
	}
	remove_unrecorded(self, uuid, rows);
}

/**
 * qsim_artifact_sweeper_pass:
 *
 * One bounded pass: starts a round (lists the request directories older than
 * the grace time) when none is under way, then checks at most the batch size.
 *
 * Returns: TRUE when the round has more to check
 */
gboolean
qsim_artifact_sweeper_pass(QsimArtifactSweeper *self)
{
	guint checked = 0;

	g_return_val_if_fail(QSIM_IS_ARTIFACT_SWEEPER(self), FALSE);
	if (self->round == NULL) {
		/* 0: no grace, every directory */
		gint64 cutoff =
		    self->grace_s > 0 ? g_get_real_time() / G_USEC_PER_SEC - self->grace_s : 0;

		self->round = qsim_file_artifact_store_list_requests(self->artifacts, cutoff);
		if (self->round->len > QSIM_ARTIFACT_SWEEP_MAX_DIRS)
			g_ptr_array_set_size(self->round, QSIM_ARTIFACT_SWEEP_MAX_DIRS);
		self->next = 0;
	}
	while (self->next < self->round->len && checked < self->batch) {
		check(self, self->round->pdata[self->next++]);
		checked++;
	}
	if (self->next < self->round->len)
		return TRUE;
	g_clear_pointer(&self->round, g_ptr_array_unref);
	self->n_rounds++;
	return FALSE;
}

static gboolean
tick_cb(gpointer user_data)
{
	QsimArtifactSweeper *self = QSIM_ARTIFACT_SWEEPER(user_data);
	gboolean more = qsim_artifact_sweeper_pass(self);

	self->timer_id = g_timeout_add(more ? self->pause_ms : self->interval_ms, tick_cb, self);
	return G_SOURCE_REMOVE;
}

static void
qsim_artifact_sweeper_dispose(GObject *object)
{
	QsimArtifactSweeper *self = QSIM_ARTIFACT_SWEEPER(object);

	g_clear_handle_id(&self->timer_id, g_source_remove);
	g_clear_pointer(&self->round, g_ptr_array_unref);
	g_clear_object(&self->store);
	g_clear_object(&self->artifacts);
	G_OBJECT_CLASS(qsim_artifact_sweeper_parent_class)->dispose(object);
}

static void
qsim_artifact_sweeper_class_init(QsimArtifactSweeperClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = qsim_artifact_sweeper_dispose;
}

static void
qsim_artifact_sweeper_init(QsimArtifactSweeper *self)
{
	self->interval_ms = QSIM_ARTIFACT_SWEEP_INTERVAL_MS;
	self->pause_ms = QSIM_ARTIFACT_SWEEP_PAUSE_MS;
	self->batch = QSIM_ARTIFACT_SWEEP_BATCH;
	self->grace_s = QSIM_ARTIFACT_SWEEP_GRACE_S;
}

/**
 * qsim_artifact_sweeper_new:
 * @store: the store that decides, used from the main loop only
 * @artifacts: the file artifact store to sweep
 *
 * Returns: (transfer full): a stopped sweeper
 */
QsimArtifactSweeper *
qsim_artifact_sweeper_new(QsimStore *store, QsimFileArtifactStore *artifacts)
{
	QsimArtifactSweeper *self = g_object_new(QSIM_TYPE_ARTIFACT_SWEEPER, NULL);

	self->store = g_object_ref(store);
	self->artifacts = g_object_ref(artifacts);
	return self;
}

/* Tests: a faster timer, smaller passes, a shorter grace */
void
qsim_artifact_sweeper_set_timing(QsimArtifactSweeper *self, guint interval_ms, guint pause_ms,
                                 guint batch, guint grace_s)
{
	g_return_if_fail(QSIM_IS_ARTIFACT_SWEEPER(self));
	self->interval_ms = MAX(interval_ms, 1);
	self->pause_ms = pause_ms;
	self->batch = MAX(batch, 1);
	self->grace_s = grace_s;
}

/* The first round right away (from the main loop), then one per interval */
void
qsim_artifact_sweeper_start(QsimArtifactSweeper *self)
{
	g_return_if_fail(QSIM_IS_ARTIFACT_SWEEPER(self));
	g_clear_handle_id(&self->timer_id, g_source_remove);
	self->timer_id = g_timeout_add(0, tick_cb, self);
}

void
qsim_artifact_sweeper_stop(QsimArtifactSweeper *self)
{
	g_return_if_fail(QSIM_IS_ARTIFACT_SWEEPER(self));
	g_clear_handle_id(&self->timer_id, g_source_remove);
}

guint
qsim_artifact_sweeper_get_n_rounds(QsimArtifactSweeper *self)
{
	return self->n_rounds;
}

guint
qsim_artifact_sweeper_get_n_checked(QsimArtifactSweeper *self)
{
	return self->n_checked;
}

guint
qsim_artifact_sweeper_get_n_removed(QsimArtifactSweeper *self)
{
	return self->n_removed;
}
