#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"
#include "store/qsim-store-factory.h"

/*
 * Inserts submitted requests in a thread of its own, on a database connection
 * of its own, so that SQLite's commit (and its fsync, if the store ever runs
 * at synchronous=FULL) never stalls the main loop that serves every other
 * connection.
 *
 * Group commit: while one transaction runs, new submissions pile up in the
 * queue; the next round takes all of them (up to QSIM_API_WRITER_MAX_BATCH)
 * into ONE transaction through qsim_store_create_requests(). The cost of a
 * commit (the lock, the WAL append, an fsync at FULL) is then shared by
 * every request that arrived meanwhile, and a lone request still goes
 * straight through without waiting for company. Each job reports back on its
 * submitter's main context only after that commit: the 201 that follows is
 * durable.
 */
#define QSIM_API_WRITER_MAX_BATCH 512
/* Submissions waiting for the writer while the database is locked: each holds a paused
 * message and its body. Past this a submit gets 503 at once instead of queueing without
 * bound (4 full batches: far above what a healthy database leaves waiting). */
#define QSIM_API_WRITER_MAX_QUEUE (4 * QSIM_API_WRITER_MAX_BATCH)

struct _QsimApiWriter {
	GObject parent_instance;
	QsimStore *store; /* used by the writer thread only once it runs */
	GAsyncQueue *queue;
	GThread *thread;
	gint batches;  /* atomic: transactions run */
	gint requests; /* atomic: jobs handled, created or not */
	gint max_queue;
	gint pending; /* atomic: accepted and not yet reported, the batch in progress included */
};

G_DEFINE_TYPE(QsimApiWriter, qsim_api_writer, G_TYPE_OBJECT)

typedef struct {
	QsimRequestDraft *draft; /* NULL in the sentinel that ends the thread */
	QsimApiWriterFunc func;
	gpointer user_data;
	GMainContext *context;
} WriterJob;

static void
writer_job_free(WriterJob *job)
{
	if (job->draft != NULL)
		qsim_request_draft_free(job->draft);
	if (job->context != NULL)
		g_main_context_unref(job->context);
	g_free(job);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WriterJob, writer_job_free)

/* The jobs of one batch that report to the same main context: one wake-up each */
typedef struct {
	GMainContext *context; /* (transfer none): the first job holds a ref */
	GPtrArray *jobs;       /* (element-type WriterJob) owned */
} WriterReport;

static void
writer_report_free(WriterReport *report)
{
	g_ptr_array_unref(report->jobs);
	g_free(report);
}

static gboolean
report_dispatch(gpointer data)
{
	WriterReport *report = data;

	for (guint i = 0; i < report->jobs->len; i++) {
		WriterJob *job = g_ptr_array_index(report->jobs, i);

		job->func(job->draft->request, job->draft->error, job->user_data);
	}
	return G_SOURCE_REMOVE;
}

/* Hands every job of @jobs (stolen) to its context, in submission order per context */
static void
report_jobs(GPtrArray *jobs)
{
	g_autoptr(GPtrArray) reports = g_ptr_array_new();

	for (guint i = 0; i < jobs->len; i++) {
		WriterJob *job = g_ptr_array_index(jobs, i);
		WriterReport *report = NULL;

		for (guint j = 0; j < reports->len && report == NULL; j++) {
			WriterReport *r = g_ptr_array_index(reports, j);

			if (r->context == job->context)
				report = r;
		}
		if (report == NULL) {
			report = g_new0(WriterReport, 1);
			report->context = job->context;
			report->jobs =
			    g_ptr_array_new_with_free_func((GDestroyNotify)writer_job_free);
			g_ptr_array_add(reports, report);
		}
		g_ptr_array_add(report->jobs, job);
	}
	g_ptr_array_set_free_func(jobs, NULL);
	g_ptr_array_set_size(jobs, 0);
	for (guint j = 0; j < reports->len; j++) {
		WriterReport *report = g_ptr_array_index(reports, j);
		g_autoptr(GSource) source = g_idle_source_new();

		/* an attached source, never g_main_context_invoke(): that runs the
		 * callback right here, in this thread, whenever it can acquire the
		 * context (the global default one is every thread's default), and a
		 * SoupServerMessage must only be touched on the main loop */
		g_source_set_priority(source, G_PRIORITY_DEFAULT);
		g_source_set_callback(source, report_dispatch, report,
		                      (GDestroyNotify)writer_report_free);
		g_source_set_static_name(source, "qsim-api-writer-report");
		g_source_attach(source, report->context);
	}
}

/* One transaction for every job in @jobs; each draft gets its outcome */
static void
run_batch(QsimApiWriter *self, GPtrArray *jobs)
{
	g_autoptr(GPtrArray) drafts = g_ptr_array_sized_new(jobs->len);
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < jobs->len; i++)
		g_ptr_array_add(drafts, ((WriterJob *)g_ptr_array_index(jobs, i))->draft);
	/* on failure every draft carries its own copy of the reason, and each
	 * handler logs it as it answers 503: a warning here would say it twice */
	if (!qsim_store_create_requests(self->store, drafts, &error))
		g_debug("a batch of %u submitted requests failed: %s", jobs->len, error->message);
	g_atomic_int_inc(&self->batches);
	g_atomic_int_add(&self->requests, (gint)jobs->len);
}

static gpointer
writer_thread(gpointer data)
{
	QsimApiWriter *self = data;
	gboolean stop = FALSE;

	while (!stop) {
		g_autoptr(GPtrArray) jobs =
		    g_ptr_array_new_with_free_func((GDestroyNotify)writer_job_free);
		WriterJob *job = g_async_queue_pop(self->queue);

		/* take whatever else is already waiting: that is the group */
		while (job != NULL) {
			if (job->draft == NULL) {
				/* the sentinel comes last: nothing is queued after it */
				writer_job_free(job);
				stop = TRUE;
				break;
			}
			g_ptr_array_add(jobs, job);
			if (jobs->len >= QSIM_API_WRITER_MAX_BATCH)
				break;
			job = g_async_queue_try_pop(self->queue);
		}
		if (jobs->len == 0)
			continue;
		run_batch(self, jobs);
		g_atomic_int_add(&self->pending, -(gint)jobs->len);
		report_jobs(jobs);
	}
	return NULL;
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
	self->max_queue = QSIM_API_WRITER_MAX_QUEUE;
}

/**
 * qsim_api_writer_set_max_queue:
 * @max_queue: submissions that may wait for the database at once, at least 1
 *
 * Past it, a submission is reported at once with %QSIM_ERROR_BUSY (the API's 503).
 */
void
qsim_api_writer_set_max_queue(QsimApiWriter *self, guint max_queue)
{
	g_return_if_fail(QSIM_IS_API_WRITER(self));
	self->max_queue = (gint)CLAMP(max_queue, 1, G_MAXINT);
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
 *   the commit of the transaction that holds this request (or its failure)
 *
 * Queues the insertion of a pending request; it is committed together with
 * whatever else is queued when the writer gets to it. Arguments are
 * validated again by the store (qsim_store_create_requests()): an invalid
 * one fails alone with INVALID.
 */
void
qsim_api_writer_create_request(QsimApiWriter *self, const gchar *vm_name, const gchar *commands,
                               gint64 timeout_s, QsimApiWriterFunc func, gpointer user_data)
{
	qsim_api_writer_create_request_full(self, vm_name, commands, timeout_s, NULL, NULL, func,
	                                    user_data);
}

/**
 * qsim_api_writer_create_request_full:
 * @artifact_paths: (nullable): guest paths or globs to collect, copied
 * @upload_id: (nullable): spooled uploads the request takes
 *
 * As qsim_api_writer_create_request(), with the request's artifact paths.
 */
void
qsim_api_writer_create_request_full(QsimApiWriter *self, const gchar *vm_name,
                                    const gchar *commands, gint64 timeout_s, gchar **artifact_paths,
                                    const gchar *upload_id, QsimApiWriterFunc func,
                                    gpointer user_data)
{
	g_autoptr(WriterJob) job = g_new0(WriterJob, 1);

	g_return_if_fail(QSIM_IS_API_WRITER(self));
	g_return_if_fail(func != NULL);
	job->draft = qsim_request_draft_new(vm_name, commands, timeout_s);
	job->draft->artifact_paths = g_strdupv(artifact_paths);
	job->draft->upload_id = g_strdup(upload_id);
	job->func = func;
	job->user_data = user_data;
	job->context = g_main_context_ref_thread_default();
	if (self->thread == NULL || g_atomic_int_get(&self->pending) >= self->max_queue) {
		g_autoptr(GPtrArray) jobs =
		    g_ptr_array_new_with_free_func((GDestroyNotify)writer_job_free);

		g_set_error_literal(&job->draft->error, QSIM_ERROR, QSIM_ERROR_BUSY,
		                    self->thread == NULL
		                        ? "the request writer is stopped"
		                        : "too many submissions are waiting for the database; "
		                          "retry shortly");
		g_ptr_array_add(jobs, g_steal_pointer(&job));
		report_jobs(jobs);
		return;
	}
	g_atomic_int_inc(&self->pending);
	g_async_queue_push(self->queue, g_steal_pointer(&job));
}

/**
 * qsim_api_writer_get_counts:
 * @out_batches: (out) (optional): transactions run so far
 * @out_requests: (out) (optional): submissions handled so far
 *
 * Their ratio is the mean group size.
 */
void
qsim_api_writer_get_counts(QsimApiWriter *self, guint *out_batches, guint *out_requests)
{
	g_return_if_fail(QSIM_IS_API_WRITER(self));
	if (out_batches != NULL)
		*out_batches = (guint)g_atomic_int_get(&self->batches);
	if (out_requests != NULL)
		*out_requests = (guint)g_atomic_int_get(&self->requests);
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
	g_return_if_fail(QSIM_IS_API_WRITER(self));
	if (self->thread == NULL)
		return;
	/* the sentinel: a job without a draft */
	g_async_queue_push(self->queue, g_new0(WriterJob, 1));
	g_thread_join(g_steal_pointer(&self->thread));
	{
		guint batches = 0, requests = 0;

		qsim_api_writer_get_counts(self, &batches, &requests);
		g_debug("request writer stopped: %u requests in %u transactions", requests,
		        batches);
	}
}
