#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include "agent/qsim-job-artifacts.h"
#include "common/qsim-error.h"

/* What the collect op's sink needs on the guest's worker thread: immutable. */
typedef struct {
	QsimArtifactStore *artifacts;
	gchar *uuid;
	QsimGuestCollectSink sink;
	QsimStore *store;
	QsimLogBatcher *batcher;
	QsimGuest *guest;
	gint64 started_us;
} CollectData;

static void
collect_data_free(CollectData *d)
{
	g_clear_object(&d->artifacts);
	g_clear_object(&d->store);
	g_clear_object(&d->batcher);
	g_clear_object(&d->guest);
	g_free(d->uuid);
	g_free(d);
}

static GOutputStream *
sink_open(gpointer data, const gchar *name, GError **error)
{
	CollectData *d = data;

	return qsim_artifact_store_create(d->artifacts, d->uuid, name, error);
}

static void
sink_discard(gpointer data, const gchar *name)
{
	CollectData *d = data;
	g_autoptr(GError) error = NULL;

	if (!qsim_artifact_store_remove(d->artifacts, d->uuid, name, &error))
		g_warning("%s: %s", d->uuid, error->message);
}

static void
collected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	CollectData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) notes = NULL;
	g_autoptr(GPtrArray) found =
	    qsim_guest_collect_finish(QSIM_GUEST(source), res, &notes, &error);
	g_autoptr(GPtrArray) records = NULL;
	guint64 bytes = 0;
	g_autofree gchar *line = NULL;

	if (found == NULL) {
		g_autofree gchar *text =
		    g_strdup_printf("artifacts not collected: %s", error->message);
		qsim_log_batcher_append_line(d->batcher, QSIM_LOG_SYSTEM, text);
		/* a guest with no SFTP is not a reason to fail the request */
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_CANCELLED) ||
		    !qsim_guest_is_connected(d->guest)) {
			g_task_return_error(task, g_steal_pointer(&error));
			return;
		}
		g_task_return_boolean(task, TRUE);
		return;
	}
	for (guint i = 0; notes != NULL && i < notes->len; i++)
		qsim_log_batcher_append_line(d->batcher, QSIM_LOG_SYSTEM, notes->pdata[i]);
	records = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	for (guint i = 0; i < found->len; i++) {
		QsimGuestArtifact *a = found->pdata[i];
		QsimArtifactRecord *r = qsim_artifact_record_new();

		r->name = g_strdup(a->name);
		r->kind = a->is_symlink ? QSIM_ARTIFACT_SYMLINK : QSIM_ARTIFACT_FILE;
		r->size = a->size;
		r->sha256 = g_strdup(a->sha256);
		r->mode = a->mode;
		r->target = g_strdup(a->target);
		if (!a->is_symlink)
			bytes += a->size;
		g_ptr_array_add(records, r);
	}
	if (!qsim_store_add_artifacts(d->store, d->uuid, records, &error)) {
		g_autofree gchar *text =
		    g_strdup_printf("artifacts not recorded: %s", error->message);
		g_autoptr(GError) local = NULL;

		qsim_log_batcher_append_line(d->batcher, QSIM_LOG_SYSTEM, text);
		if (!qsim_artifact_store_delete_request(d->artifacts, d->uuid, &local))
			g_warning("%s: %s", d->uuid, local->message);
		g_task_return_boolean(task, TRUE);
		return;
	}
	line = g_strdup_printf("artifacts: collected %u (%" G_GUINT64_FORMAT " bytes) in %.1f s",
	                       records->len, bytes,
	                       (g_get_monotonic_time() - d->started_us) / (gdouble)G_USEC_PER_SEC);
	qsim_log_batcher_append_line(d->batcher, QSIM_LOG_SYSTEM, line);
	g_task_return_boolean(task, TRUE);
}

void
qsim_job_artifacts_collect_async(QsimGuest *guest, QsimConfig *config, QsimStore *store,
                                 QsimArtifactStore *artifacts, const QsimRequest *request,
                                 QsimLogBatcher *batcher, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	CollectData *d = g_new0(CollectData, 1);
	QsimGuestCollectLimits limits = {
	    .max_files = qsim_config_get_max_artifact_files(config),
	    .max_bytes = qsim_config_get_max_artifact_bytes(config),
	};

	g_task_set_source_tag(task, qsim_job_artifacts_collect_async);
	d->artifacts = g_object_ref(artifacts);
	d->uuid = g_strdup(request->uuid);
	d->store = g_object_ref(store);
	d->batcher = g_object_ref(batcher);
	d->guest = g_object_ref(guest);
	d->started_us = g_get_monotonic_time();
	d->sink.open = sink_open;
	d->sink.discard = sink_discard;
	d->sink.data = d;
	g_task_set_task_data(task, d, (GDestroyNotify)collect_data_free);
	qsim_log_batcher_append_line(batcher, QSIM_LOG_SYSTEM, "collecting artifacts");
	qsim_guest_collect_async(guest, (const gchar *const *)request->artifact_paths, &limits,
	                         &d->sink, cancellable, collected_cb, task);
}

gboolean
qsim_job_artifacts_collect_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}
