#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"

/*
 * Inserts submitted requests in a thread of its own, on a database connection
 * of its own, so that SQLite's commit (and its fsync, if the store ever runs
 * at synchronous=FULL) never stalls the main loop that serves every other
 * connection. The job reports back on the submitter's main context, after the
 * commit: the 201 that follows is durable.
 */
struct _QsimApiWriter {
	GObject parent_instance;
	QsimStore *store; /* used by the writer thread only once it runs */
	GAsyncQueue *queue;
	GThread *thread;
};

G_DEFINE_TYPE(QsimApiWriter, qsim_api_writer, G_TYPE_OBJECT)

typedef struct {
	gchar *vm_name;
	gchar *commands;
	gint64 timeout_s;
	QsimApiWriterFunc func;
	gpointer user_data;
	GMainContext *context;
	QsimRequest *result;
	GError *error;
	gboolean stop; /* the sentinel that ends the thread */
} WriterJob;

static void
writer_job_free(WriterJob *job)
{
	g_free(job->vm_name);
	g_free(job->commands);
	if (job->context != NULL)
		g_main_context_unref(job->context);
	if (job->result != NULL)
		qsim_request_free(job->result);
	g_clear_error(&job->error);
	g_free(job);
}

static gboolean
job_report(gpointer data)
{
	WriterJob *job = data;

	job->func(job->result, job->error, job->user_data);
	return G_SOURCE_REMOVE;
}

static gpointer
writer_thread(gpointer data)
{
	QsimApiWriter *self = data;

	for (;;) {
		WriterJob *job = g_async_queue_pop(self->queue);

		if (job->stop) {
			writer_job_free(job);
			return NULL;
		}
		job->result = qsim_store_create_request(self->store, job->vm_name, job->commands,
		                                        job->timeout_s, &job->error);
		g_main_context_invoke_full(job->context, G_PRIORITY_DEFAULT, job_report, job,
		                           (GDestroyNotify)writer_job_free);
	}
}

static void
qsim_api_writer_dispose(GObject *object)
{
	QsimApiWriter *self = QSIM_API_WRITER(object);

	qsim_api_writer_stop(self);
	g_clear_object(&self->store);
	G_OBJECT_CLASS(qsim_api_writer_parent_class)->dispose(object);
}

static void
qsim_api_writer_finalize(GObject *object)
{
	QsimApiWriter *self = QSIM_API_WRITER(object);

	g_async_queue_unref(self->queue);
	G_OBJECT_CLASS(qsim_api_writer_parent_class)->finalize(object);
}

static void
qsim_api_writer_class_init(QsimApiWriterClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_api_writer_dispose;
	object_class->finalize = qsim_api_writer_finalize;
}

static void
qsim_api_writer_init(QsimApiWriter *self)
{
	self->queue = g_async_queue_new();
}

/**
 * qsim_api_writer_new:
 * @db_path: the database the server's store uses
 *
 * Opens a second connection to @db_path and starts the writer thread.
 *
 * Returns: (transfer full): the writer, or %NULL with @error set
 */
QsimApiWriter *
qsim_api_writer_new(const gchar *db_path, GError **error)
{
	g_autoptr(QsimApiWriter) self = g_object_new(QSIM_TYPE_API_WRITER, NULL);

	self->store = qsim_store_open(db_path, error);
	if (self->store == NULL)
		return NULL;
	self->thread = g_thread_new("qsim-api-writer", writer_thread, self);
	return g_steal_pointer(&self);
}

/**
 * qsim_api_writer_create_request:
 * @func: called once, on the caller's thread-default main context, after
 *   the commit (or its failure)
 *
 * Queues the insertion of a pending request. Arguments are validated by the
 * caller as for qsim_store_create_request().
 */
void
qsim_api_writer_create_request(QsimApiWriter *self, const gchar *vm_name, const gchar *commands,
                               gint64 timeout_s, QsimApiWriterFunc func, gpointer user_data)
{
	WriterJob *job = g_new0(WriterJob, 1);

	g_return_if_fail(QSIM_IS_API_WRITER(self));
	job->vm_name = g_strdup(vm_name);
	job->commands = g_strdup(commands);
	job->timeout_s = timeout_s;
	job->func = func;
	job->user_data = user_data;
	job->context = g_main_context_ref_thread_default();
	if (self->thread == NULL) {
		g_set_error_literal(&job->error, QSIM_ERROR, QSIM_ERROR_BUSY,
		                    "the request writer is stopped");
		g_main_context_invoke_full(job->context, G_PRIORITY_DEFAULT, job_report, job,
		                           (GDestroyNotify)writer_job_free);
		return;
	}
	g_async_queue_push(self->queue, job);
}

/**
 * qsim_api_writer_stop:
 *
 * Lets the thread finish the queued jobs, then joins it. Their reports
 * still arrive on the main context. Safe to call more than once.
 */
void
qsim_api_writer_stop(QsimApiWriter *self)
{
	WriterJob *stop;

	g_return_if_fail(QSIM_IS_API_WRITER(self));
	if (self->thread == NULL)
		return;
	stop = g_new0(WriterJob, 1);
	stop->stop = TRUE;
	g_async_queue_push(self->queue, stop);
	g_thread_join(g_steal_pointer(&self->thread));
}
