#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "store/qsim-store-private.h"

#define REASON_MAX 4096

typedef struct {
	QsimStoreClockFunc clock_func;
	gpointer clock_data;
	/* qsim_store_watch_changes() */
	guint n_watchers;
	guint watch_interval_ms;
	guint watch_id;
	guint heard_id; /* qsim_store_changes_heard(): a check now, not at the next tick */
	guint64 watch_version;
	gboolean watch_have_version;
	/* nullable: where deleted requests' artifact bytes are removed */
	QsimArtifactStore *artifacts;
} QsimStorePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(QsimStore, qsim_store, G_TYPE_OBJECT)

guint qsim_store_signals[SIGNAL_LAST] = {0};

static void
qsim_store_init(QsimStore *self)
{
}

static void
qsim_store_dispose(GObject *object)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(QSIM_STORE(object));

	g_clear_handle_id(&priv->watch_id, g_source_remove);
	g_clear_handle_id(&priv->heard_id, g_source_remove);
	g_clear_object(&priv->artifacts);
	G_OBJECT_CLASS(qsim_store_parent_class)->dispose(object);
}

static void
qsim_store_class_init(QsimStoreClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = qsim_store_dispose;
	qsim_store_signals[SIGNAL_REQUEST_CHANGED] =
	    g_signal_new("request-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT);
	qsim_store_signals[SIGNAL_REQUEST_DELETED] =
	    g_signal_new("request-deleted", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
	qsim_store_signals[SIGNAL_LOGS_APPENDED] =
	    g_signal_new("logs-appended", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT64);
	qsim_store_signals[SIGNAL_TEMPLATE_CHANGED] =
	    g_signal_new("template-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
	qsim_store_signals[SIGNAL_CHANGED_ELSEWHERE] =
	    g_signal_new("changed-elsewhere", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 0);
}

void
qsim_store_emit_changed(QsimStore *self, const gchar *uuid, QsimStatus status)
{
	g_signal_emit(self, qsim_store_signals[SIGNAL_REQUEST_CHANGED], 0, uuid, (gint)status);
}

/* Returns: (transfer full): the lowercase UUID, or NULL with INVALID */
gchar *
qsim_store_normalize_uuid(const gchar *uuid, GError **error)
{
	g_autofree gchar *lower = NULL;

	if (uuid == NULL || !g_uuid_string_is_valid(uuid)) {
		/* bounded: the text may be anything a client sent */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "'%.40s' is not a UUID",
		            uuid != NULL && g_utf8_validate(uuid, -1, NULL) ? uuid : "(invalid)");
		return NULL;
	}
	lower = g_ascii_strdown(uuid, -1);
	return g_steal_pointer(&lower);
}

gboolean
qsim_store_check_text(const gchar *field, const gchar *value, gsize max_len, GError **error)
{
	if (value == NULL || value[0] == '\0') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s must not be empty", field);
		return FALSE;
	}
	if (strlen(value) > max_len) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s is longer than %" G_GSIZE_FORMAT " bytes", field, max_len);
		return FALSE;
	}
	if (!g_utf8_validate(value, -1, NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s is not valid UTF-8", field);
		return FALSE;
	}
	return TRUE;
}

/* Returns: (transfer full) (nullable): @reason as bounded valid UTF-8, for storage */
gchar *
qsim_store_sanitize_reason(const gchar *reason)
{
	g_autofree gchar *valid = NULL;
	const gchar *end;

	if (reason == NULL)
		return NULL;
	valid = g_utf8_make_valid(reason, -1);
	if (strlen(valid) <= REASON_MAX)
		return g_steal_pointer(&valid);
	/* cut on a character boundary so the stored text stays valid UTF-8 */
	end = g_utf8_find_prev_char(valid, valid + REASON_MAX + 1);
	return g_strndup(valid, end - valid);
}

/**
 * qsim_store_set_artifact_store:
 * @artifacts: (nullable): referenced
 *
 * Every request this store deletes (qsim_store_delete_request(), a purge)
 * then has its artifacts removed from @artifacts, after the commit.
 */
void
qsim_store_set_artifact_store(QsimStore *self, QsimArtifactStore *artifacts)
{
	QsimStorePrivate *priv;

	g_return_if_fail(QSIM_IS_STORE(self));
	priv = qsim_store_get_instance_private(self);
	g_set_object(&priv->artifacts, artifacts);
}

/* After a deletion committed: the bytes go too (the rows went by ON DELETE CASCADE). */
void
qsim_store_delete_artifact_files(QsimStore *self, const gchar *uuid)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);
	g_autoptr(GError) error = NULL;

	if (priv->artifacts != NULL &&
	    !qsim_artifact_store_delete_request(priv->artifacts, uuid, &error))
		g_warning("cannot remove the artifacts of request %s: %s", uuid, error->message);
}

gboolean
qsim_store_purge_requests(QsimStore *self, gint status, gint64 before_ms, guint limit,
                          guint *out_deleted, gboolean *out_more, GError **error)
{
	g_autoptr(GPtrArray) uuids = NULL;
	gboolean more = FALSE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_deleted != NULL, FALSE);
	*out_deleted = 0;
	if (status >= 0 && !qsim_status_is_final((QsimStatus)status)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "only done, failed or cancelled requests can be purged, not %s",
		            qsim_status_to_string((QsimStatus)status));
		return FALSE;
	}
	if (limit < 1 || limit > QSIM_STORE_PURGE_MAX_BATCH) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "a purge takes 1 to %u requests at a time, not %u",
		            (guint)QSIM_STORE_PURGE_MAX_BATCH, limit);
		return FALSE;
	}
	uuids = QSIM_STORE_GET_CLASS(self)->purge_requests(self, status, before_ms, limit, &more,
	                                                   error);
	if (uuids == NULL)
		return FALSE;
	for (guint i = 0; i < uuids->len; i++) {
		qsim_store_delete_artifact_files(self, uuids->pdata[i]);
		g_signal_emit(self, qsim_store_signals[SIGNAL_REQUEST_DELETED], 0, uuids->pdata[i]);
	}
	*out_deleted = uuids->len;
	if (out_more != NULL)
		*out_more = more;
	return TRUE;
}

gboolean
qsim_store_reclaim_space(QsimStore *self, guint max_pages, guint64 *out_free_pages,
                         gboolean *out_incremental, GError **error)
{
	guint64 free_pages = 0;
	gboolean incremental = FALSE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (!QSIM_STORE_GET_CLASS(self)->reclaim_space(self, max_pages, &free_pages, &incremental,
	                                               error))
		return FALSE;
	if (out_free_pages != NULL)
		*out_free_pages = free_pages;
	if (out_incremental != NULL)
		*out_incremental = incremental;
	return TRUE;
}

gboolean
qsim_store_vacuum(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	return QSIM_STORE_GET_CLASS(self)->vacuum(self, error);
}

guint
qsim_store_get_schema_version(QsimStore *self)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), 0);
	return QSIM_STORE_GET_CLASS(self)->get_schema_version(self);
}

gboolean
qsim_store_ping(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	return QSIM_STORE_GET_CLASS(self)->ping(self, error);
}

void
qsim_store_set_clock(QsimStore *self, QsimStoreClockFunc func, gpointer user_data)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);

	g_return_if_fail(QSIM_IS_STORE(self));
	priv->clock_func = func;
	priv->clock_data = user_data;
}

gint64
qsim_store_now_ms(QsimStore *self)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);

	if (priv->clock_func != NULL)
		return priv->clock_func(priv->clock_data);
	return g_get_real_time() / 1000;
}

/**
 * qsim_store_get_stats:
 *
 * Returns: (transfer full): a snapshot of the queue
 */
QsimStats *
qsim_store_get_stats(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	return QSIM_STORE_GET_CLASS(self)->get_stats(self, error);
}

QsimStoreMetrics *
qsim_store_get_metrics(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	/* optional for a backend: /metrics then reports the database as down */
	if (QSIM_STORE_GET_CLASS(self)->get_metrics == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "this store backend exports no metrics");
		return NULL;
	}
	return QSIM_STORE_GET_CLASS(self)->get_metrics(self, error);
}

gboolean
qsim_store_count_active_vms(QsimStore *self, guint *out_count, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	return QSIM_STORE_GET_CLASS(self)->count_active_vms(self, out_count, error);
}

gboolean
qsim_store_get_data_version(QsimStore *self, guint64 *out_version, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_version != NULL, FALSE);
	return QSIM_STORE_GET_CLASS(self)->get_data_version(self, out_version, error);
}

static gboolean
qsim_store_watch_cb(gpointer user_data)
{
	QsimStore *self = QSIM_STORE(user_data);
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);
	g_autoptr(GError) error = NULL;
	guint64 version = 0;

	/* a locked or busy database only delays the news to the next tick */
	if (!qsim_store_get_data_version(self, &version, &error)) {
		g_debug("cannot read the data version: %s", error->message);
		return G_SOURCE_CONTINUE;
	}
	if (priv->watch_have_version && version != priv->watch_version) {
		priv->watch_version = version;
		g_signal_emit(self, qsim_store_signals[SIGNAL_CHANGED_ELSEWHERE], 0);
		return G_SOURCE_CONTINUE;
	}
	priv->watch_version = version;
	priv->watch_have_version = TRUE;
	return G_SOURCE_CONTINUE;
}

static gboolean
qsim_store_heard_cb(gpointer user_data)
{
	QsimStore *self = QSIM_STORE(user_data);
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);

	priv->heard_id = 0;
	qsim_store_watch_cb(self);
	return G_SOURCE_REMOVE;
}

/*
 * A backend that is told of changes (PostgreSQL's NOTIFY) calls this when it hears
 * one: the watchers learn of it now instead of at the next tick of the interval,
 * which would add half the interval on average to every submit -> claim. From an
 * idle, so that the handlers (which query the store) never run inside the
 * backend's own callback.
 */
void
qsim_store_changes_heard(QsimStore *self)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);

	if (priv->watch_id == 0 || priv->heard_id != 0)
		return;
	priv->heard_id = g_idle_add(qsim_store_heard_cb, self);
}

void
qsim_store_watch_changes(QsimStore *self, guint interval_ms)
{
	QsimStorePrivate *priv;

	g_return_if_fail(QSIM_IS_STORE(self));
	g_return_if_fail(interval_ms > 0);
	priv = qsim_store_get_instance_private(self);
	priv->n_watchers++;
	if (priv->watch_id != 0 && priv->watch_interval_ms <= interval_ms)
		return;
	g_clear_handle_id(&priv->watch_id, g_source_remove);
	priv->watch_interval_ms = interval_ms;
	if (!priv->watch_have_version)
		priv->watch_have_version =
		    qsim_store_get_data_version(self, &priv->watch_version, NULL);
	priv->watch_id = g_timeout_add(interval_ms, qsim_store_watch_cb, self);
}

void
qsim_store_unwatch_changes(QsimStore *self)
{
	QsimStorePrivate *priv;

	g_return_if_fail(QSIM_IS_STORE(self));
	priv = qsim_store_get_instance_private(self);
	g_return_if_fail(priv->n_watchers > 0);
	if (--priv->n_watchers > 0)
		return;
	g_clear_handle_id(&priv->watch_id, g_source_remove);
	g_clear_handle_id(&priv->heard_id, g_source_remove);
	priv->watch_have_version = FALSE;
}

/* Returns: (transfer none): this process's HOST_ID, see qsim_host_id_get() */
const gchar *
qsim_store_get_local_host(void)
{
	return qsim_host_id_get();
}

gchar *
qsim_store_dup_builder_id(void)
{
	return qsim_layout_dup_builder_id();
}
