#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-worker.h"

/*
 * Store calls that must not hold up a main loop run here: in one thread of the
 * worker's own, on a connection of its own, in the order they were queued, each
 * reported back on the main context of its caller through a GTask.
 *
 * Why a thread rather than libpq's PQsendQuery on a socket source: the store's
 * API is synchronous and shared by both backends (SQLite has no asynchronous
 * interface at all), its transactions are several statements whose later ones
 * depend on the earlier ones' rows, and a thread keeps that code one straight
 * sequence for both backends. What waits here is what a network round trip, a
 * server restart (a query waits for tcp_user_timeout) or SQLite's busy timeout
 * would otherwise make every VM of the process wait for: log batches and lease
 * renewals, which come every second from every job.
 *
 * One thread, so calls of one job (its log batches, then its renewals) keep
 * their order; each job has at most one batch and one renewal queued, which
 * bounds the queue.
 */

struct _QsimStoreWorker {
	GObject parent_instance;
	QsimStore *store;   /* the thread's once it runs */
	GAsyncQueue *queue; /* (element-type GTask); the worker itself ends the thread */
	GThread *thread;
	gint queued; /* atomic: queued and running calls */
};

G_DEFINE_TYPE(QsimStoreWorker, qsim_store_worker, G_TYPE_OBJECT)

typedef struct {
	QsimStoreWorkerFunc func;
	gpointer data;
	GDestroyNotify free_data;
} Call;

static void
call_free(Call *call)
{
	if (call->free_data != NULL)
		call->free_data(call->data);
	g_free(call);
}

static gpointer
worker_thread(gpointer user_data)
{
	QsimStoreWorker *self = user_data;

	for (;;) {
		gpointer item = g_async_queue_pop(self->queue);
		g_autoptr(GTask) task = NULL;
		g_autoptr(GError) error = NULL;
		Call *call;
		gboolean ok;

		/* the sentinel comes last: every call queued before it has run */
		if (item == (gpointer)self)
			break;
		task = item;
		call = g_task_get_task_data(task);
		/* GTask reports on the caller's context, through an idle source there:
		 * never in this thread */
		ok = call->func(self->store, call->data, &error);
		/* before the report: its callback may look */
		g_atomic_int_add(&self->queued, -1);
		if (ok)
			g_task_return_boolean(task, TRUE);
		else
			g_task_return_error(task, g_steal_pointer(&error));
	}
	return NULL;
}

/**
 * qsim_store_worker_new:
 * @location: the store to open a second connection to (a SQLite file or a
 *   PostgreSQL URL; not an in-memory database: that would be another one)
 *
 * Returns: (transfer full): a running worker, or %NULL with @error set
 */
QsimStoreWorker *
qsim_store_worker_new(const gchar *location, GError **error)
{
	g_autoptr(QsimStoreWorker) self = NULL;

	g_return_val_if_fail(location != NULL, NULL);
	if (g_str_equal(location, ":memory:")) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "an in-memory store has no second connection");
		return NULL;
	}
	self = g_object_new(QSIM_TYPE_STORE_WORKER, NULL);
	self->store = qsim_store_open(location, error);
	if (self->store == NULL)
		return NULL;
	self->thread = g_thread_new("qsim-store-worker", worker_thread, self);
	return g_steal_pointer(&self);
}

/**
 * qsim_store_worker_run_async:
 * @func: what to run, in the worker's thread
 * @data: (transfer full): given to @func; freed with @free_data once @callback ran
 * @callback: called on the caller's thread-default main context, with a %NULL
 *   source object
 *
 * After qsim_store_worker_stop() @callback gets %QSIM_ERROR_BUSY.
 */
void
qsim_store_worker_run_async(QsimStoreWorker *self, QsimStoreWorkerFunc func, gpointer data,
                            GDestroyNotify free_data, GAsyncReadyCallback callback,
                            gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	Call *call = g_new0(Call, 1);

	g_return_if_fail(QSIM_IS_STORE_WORKER(self));
	call->func = func;
	call->data = data;
	call->free_data = free_data;
	/* no source object: the last unref of a task may happen in the thread, and it
	 * must never be the worker's (its dispose joins that thread) */
	task = g_task_new(NULL, NULL, callback, user_data);
	g_task_set_source_tag(task, qsim_store_worker_run_async);
	g_task_set_task_data(task, call, (GDestroyNotify)call_free);
	if (self->thread == NULL) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "the store worker has stopped");
		return;
	}
	g_atomic_int_inc(&self->queued);
	g_async_queue_push(self->queue, g_steal_pointer(&task));
}

gboolean
qsim_store_worker_run_finish(QsimStoreWorker *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE_WORKER(self), FALSE);
	g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* calls queued or running: each is a job waiting on the database */
guint
qsim_store_worker_get_queued(QsimStoreWorker *self)
{
	g_return_val_if_fail(QSIM_IS_STORE_WORKER(self), 0);
	return (guint)g_atomic_int_get(&self->queued);
}

/**
 * qsim_store_worker_stop:
 *
 * Runs what is queued, then ends the thread. The callbacks of those calls still
 * come, on their main contexts, when those iterate.
 */
void
qsim_store_worker_stop(QsimStoreWorker *self)
{
	g_return_if_fail(QSIM_IS_STORE_WORKER(self));
	if (self->thread == NULL)
		return;
	g_async_queue_push(self->queue, self);
	g_thread_join(g_steal_pointer(&self->thread));
}

static void
qsim_store_worker_dispose(GObject *object)
{
	QsimStoreWorker *self = QSIM_STORE_WORKER(object);

	qsim_store_worker_stop(self);
	g_clear_object(&self->store);
	G_OBJECT_CLASS(qsim_store_worker_parent_class)->dispose(object);
}

static void
qsim_store_worker_finalize(GObject *object)
{
	QsimStoreWorker *self = QSIM_STORE_WORKER(object);

	g_async_queue_unref(self->queue);
	G_OBJECT_CLASS(qsim_store_worker_parent_class)->finalize(object);
}

static void
qsim_store_worker_class_init(QsimStoreWorkerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_store_worker_dispose;
	object_class->finalize = qsim_store_worker_finalize;
}

static void
qsim_store_worker_init(QsimStoreWorker *self)
{
	self->queue = g_async_queue_new();
}
