#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include "agent/qsim-job-uploads.h"
#include "common/qsim-error.h"
#include "store/qsim-store-factory.h"

/* The store connection the worker thread reads chunks through, opened there. */
typedef struct {
	gchar *db_path;
	QsimStore *store;
} Reader;

typedef struct {
	Reader *reader;
	QsimUploadRecord *record;
	guint seq;
	guint64 got;
	GChecksum *sum;
} Source;

typedef struct {
	QsimGuest *guest;
	QsimStore *store;
	QsimStoreWorker *worker; /* nullable */
	QsimLogBatcher *batcher;
	gchar *uuid;
	Reader reader;
	GPtrArray *records; /* QsimUploadRecord */
	Source *sources;
	QsimGuestPut *puts;
	guint n;
	guint next_tar;    /* the next part to unpack */
	gboolean via_exec; /* no SFTP in the guest: the tar parts went straight into tar */
	guint64 bytes;
	gint64 started_us;
	GCancellable *cancellable;
} Uploads;

static void
uploads_free(Uploads *u)
{
	for (guint i = 0; i < u->n; i++) {
		g_free(u->puts[i].guest_path);
		g_checksum_free(u->sources[i].sum);
	}
	g_free(u->puts);
	g_free(u->sources);
	g_clear_pointer(&u->records, g_ptr_array_unref);
	g_clear_object(&u->reader.store);
	g_free(u->reader.db_path);
	g_clear_object(&u->guest);
	g_clear_object(&u->store);
	g_clear_object(&u->worker);
	g_clear_object(&u->batcher);
	g_clear_object(&u->cancellable);
	g_free(u->uuid);
	g_free(u);
}

/* Worker thread: the next chunk of one part, checked against its sha256 at the end. */
static GBytes *
source_read(gpointer data, GError **error)
{
	Source *s = data;
	GBytes *chunk;

	if (s->reader->store == NULL) {
		s->reader->store = qsim_store_open(s->reader->db_path, error);
		if (s->reader->store == NULL)
			return NULL;
	}
	chunk = qsim_store_upload_read_chunk(s->reader->store, s->record->upload_id, s->record->idx,
	                                     s->seq++, error);
	if (chunk == NULL)
		return NULL;
	if (g_bytes_get_size(chunk) > 0) {
		g_checksum_update(s->sum, g_bytes_get_data(chunk, NULL), g_bytes_get_size(chunk));
		s->got += g_bytes_get_size(chunk);
		return chunk;
	}
	if (s->got != s->record->size ||
	    g_strcmp0(g_checksum_get_string(s->sum), s->record->sha256) != 0) {
		g_bytes_unref(chunk);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "the stored upload for %s is damaged (size or sha256 differ)",
		            s->record->guest_path);
		return NULL;
	}
	return chunk;
}

static gchar *
tar_temp_path(const Uploads *u, const QsimUploadRecord *r)
{
	return g_strdup_printf("/tmp/.qsim-upload-%.8s-%u%s", u->uuid, r->idx,
	                       r->kind == QSIM_UPLOAD_TAR_GZ ? ".tar.gz" : ".tar");
}

static void unpack_next(GTask *task);

/* Store worker thread: drops the spool of the request named by @data */
static gboolean
delete_spool(QsimStore *store, gpointer data, GError **error)
{
	return qsim_store_delete_uploads(store, data, error);
}

typedef struct {
	QsimStoreWorker *worker;
	gchar *uuid;
} SpoolDelete;

static void
spool_deleted_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SpoolDelete *d = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_store_worker_run_finish(d->worker, res, &error))
		g_warning("%s: uploads not deleted from the store: %s", d->uuid, error->message);
	g_object_unref(d->worker);
	g_free(d->uuid);
	g_free(d);
}

/* The spool is not needed once the inputs are in the guest; a leftover goes with the
 * request (its rows reference it), so a failure here costs space, not correctness */
static void
uploads_delete_spool(Uploads *u)
{
	g_autoptr(GError) error = NULL;

	if (u->worker != NULL) {
		SpoolDelete *d = g_new0(SpoolDelete, 1);

		d->worker = g_object_ref(u->worker);
		d->uuid = g_strdup(u->uuid);
		qsim_store_worker_run_async(u->worker, delete_spool, g_strdup(u->uuid), g_free,
		                            spool_deleted_cb, d);
		return;
	}
	if (!qsim_store_delete_uploads(u->store, u->uuid, &error))
		g_warning("%s: uploads not deleted from the store: %s", u->uuid, error->message);
}

static void
unpacked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	Uploads *u = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!qsim_guest_run_simple_finish(QSIM_GUEST(source), res, NULL, NULL, &error)) {
		const QsimUploadRecord *r = u->records->pdata[u->next_tar];

		g_prefix_error(&error, "cannot unpack the archive into %s: ", r->guest_path);
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	u->next_tar++;
	unpack_next(task);
}

/* Runs the guest's tar for each archive part, one at a time, then ends. */
static void
unpack_next(GTask *task)
{
	Uploads *u = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line = NULL;

	while (u->next_tar < u->records->len) {
		const QsimUploadRecord *r = u->records->pdata[u->next_tar];
		g_autofree gchar *tmp = NULL;
		g_autofree gchar *qtmp = NULL;
		g_autofree gchar *qdir = NULL;
		g_autofree gchar *cmd = NULL;

		if (r->kind == QSIM_UPLOAD_FILE) {
			u->next_tar++;
			continue;
		}
		tmp = tar_temp_path(u, r);
		/* quoted for the guest's shell: the path is the user's, the shell the guest's */
		qtmp = g_shell_quote(tmp);
		qdir = g_shell_quote(r->guest_path);
		cmd = g_strdup_printf(
		    "mkdir -p %s && tar -x%sf %s -C %s; rc=$?; rm -f %s; exit $rc", qdir,
		    r->kind == QSIM_UPLOAD_TAR_GZ ? "z" : "", qtmp, qdir, qtmp);
		qsim_guest_run_simple_async(u->guest, cmd, 0, u->cancellable, unpacked_cb, task);
		return;
	}
	line = g_strdup_printf(
	    "uploaded %u part%s (%" G_GUINT64_FORMAT " bytes) in %.1f s%s", u->n,
	    u->n == 1 ? "" : "s", u->bytes,
	    (g_get_monotonic_time() - u->started_us) / (gdouble)G_USEC_PER_SEC,
	    u->via_exec ? " over exec (cat, tar): the guest has no SFTP subsystem" : "");
	qsim_log_batcher_append_line(u->batcher, QSIM_LOG_SYSTEM, line);
	uploads_delete_spool(u);
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

static void
uploaded_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	Uploads *u = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gint64 total = qsim_guest_upload_finish(QSIM_GUEST(source), res, &u->via_exec, &error);

	if (total < 0) {
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	u->bytes = (guint64)total;
	if (u->via_exec)
		u->next_tar = u->records->len;
	unpack_next(task);
}

void
qsim_job_uploads_async(QsimGuest *guest, QsimConfig *config, QsimStore *store,
                       QsimStoreWorker *worker, const QsimRequest *request, QsimLogBatcher *batcher,
                       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;
	Uploads *u = g_new0(Uploads, 1);

	g_task_set_source_tag(task, qsim_job_uploads_async);
	g_task_set_task_data(task, u, (GDestroyNotify)uploads_free);
	u->guest = g_object_ref(guest);
	u->store = g_object_ref(store);
	u->worker = worker != NULL ? g_object_ref(worker) : NULL;
	u->batcher = g_object_ref(batcher);
	u->uuid = g_strdup(request->uuid);
	u->cancellable = cancellable != NULL ? g_object_ref(cancellable) : NULL;
	u->reader.db_path = g_strdup(qsim_config_get_db_path(config));
	u->started_us = g_get_monotonic_time();
	u->records = qsim_store_list_uploads(store, request->uuid, &error);
	if (u->records == NULL) {
		g_prefix_error(&error, "cannot read the uploads: ");
		g_task_return_error(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	if (u->records->len == 0) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	u->n = u->records->len;
	u->sources = g_new0(Source, u->n);
	u->puts = g_new0(QsimGuestPut, u->n);
	for (guint i = 0; i < u->n; i++) {
		QsimUploadRecord *r = u->records->pdata[i];

		u->sources[i].reader = &u->reader;
		u->sources[i].record = r;
		u->sources[i].sum = g_checksum_new(G_CHECKSUM_SHA256);
		u->puts[i].guest_path =
		    r->kind == QSIM_UPLOAD_FILE ? g_strdup(r->guest_path) : tar_temp_path(u, r);
		u->puts[i].mode = r->kind == QSIM_UPLOAD_FILE ? r->mode : 0600;
		u->puts[i].unpack = r->kind == QSIM_UPLOAD_TAR      ? QSIM_GUEST_UNPACK_TAR
		                    : r->kind == QSIM_UPLOAD_TAR_GZ ? QSIM_GUEST_UNPACK_TAR_GZ
		                                                    : QSIM_GUEST_UNPACK_NONE;
		u->puts[i].unpack_dir = r->guest_path;
		u->puts[i].read = source_read;
		u->puts[i].data = &u->sources[i];
	}
	qsim_log_batcher_append_line(batcher, QSIM_LOG_SYSTEM, "uploading inputs");
	qsim_guest_upload_async(guest, u->puts, u->n, cancellable, uploaded_cb, task);
}

gboolean
qsim_job_uploads_finish(GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}
