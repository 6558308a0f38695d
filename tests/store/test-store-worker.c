#include "config.h"

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store-worker.h"

/* What one call saw in the worker's thread, and what its callback saw */
typedef struct {
	guint index;
	GPtrArray *order; /* (element-type guint) indexes, in the order the calls ran */
	GThread *ran_in;
	GThread *reported_in;
	gboolean reported;
	gboolean ok;
	GError *error;
	QsimRequest *request;
	const gchar *uuid;
} Call;

static gboolean
call_run(QsimStore *store, gpointer data, GError **error)
{
	Call *c = data;

	c->ran_in = g_thread_self();
	g_ptr_array_add(c->order, GUINT_TO_POINTER(c->index));
	c->request = qsim_store_get_request(store, c->uuid, 0, error);
	return c->request != NULL;
}

static void
call_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Call *c = user_data;

	c->reported_in = g_thread_self();
	c->reported = TRUE;
}

static void
wait_reported(Call *calls, guint n)
{
	for (guint i = 0; i < n; i++) {
		while (!calls[i].reported)
			g_main_context_iteration(NULL, TRUE);
	}
}

/* Calls run in queue order, in one thread that is not the caller's, on a connection
 * of their own that sees what the caller committed; reports come on the caller's loop */
static void
test_worker_order(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStoreWorker) worker = qsim_store_worker_new(fx->path, &error);
	g_autoptr(GPtrArray) order = g_ptr_array_new();
	g_autofree gchar *uuid = store_test_new_request(fx);
	Call calls[8] = {{0}};

	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(calls); i++) {
		calls[i].index = i;
		calls[i].order = order;
		/* the last one asks for a request that does not exist */
		calls[i].uuid =
		    i + 1 < G_N_ELEMENTS(calls) ? uuid : "00000000-0000-4000-8000-000000000000";
		qsim_store_worker_run_async(worker, call_run, &calls[i], NULL, call_done_cb,
		                            &calls[i]);
	}
	wait_reported(calls, G_N_ELEMENTS(calls));
	g_assert_cmpuint(order->len, ==, G_N_ELEMENTS(calls));
	for (guint i = 0; i < G_N_ELEMENTS(calls); i++) {
		g_assert_cmpuint(GPOINTER_TO_UINT(g_ptr_array_index(order, i)), ==, i);
		g_assert_true(calls[i].ran_in != g_thread_self());
		g_assert_true(calls[i].ran_in == calls[0].ran_in);
		g_assert_true(calls[i].reported_in == g_thread_self());
		if (i + 1 < G_N_ELEMENTS(calls))
			g_assert_cmpstr(calls[i].request->uuid, ==, uuid);
		else
			g_assert_null(calls[i].request);
		g_clear_pointer(&calls[i].request, qsim_request_free);
	}
	g_assert_cmpuint(qsim_store_worker_get_queued(worker), ==, 0);
}

typedef struct {
	gboolean done;
	gboolean ok;
	GError *error;
	QsimStoreWorker *worker;
} Result;

static void
result_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Result *r = user_data;

	r->ok = qsim_store_worker_run_finish(r->worker, result, &r->error);
	r->done = TRUE;
}

static gboolean
get_run(QsimStore *store, gpointer data, GError **error)
{
	g_autoptr(QsimRequest) r = qsim_store_get_request(store, data, 0, error);

	return r != NULL;
}

/* Errors come back as they are; after stop, a call is refused, never lost silently */
static void
test_worker_errors(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStoreWorker) worker = qsim_store_worker_new(fx->path, &error);
	Result missing = {0};
	Result stopped = {0};

	g_assert_no_error(error);
	missing.worker = worker;
	qsim_store_worker_run_async(worker, get_run,
	                            g_strdup("00000000-0000-4000-8000-00000000000f"), g_free,
	                            result_cb, &missing);
	while (!missing.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(missing.ok);
	g_assert_error(missing.error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&missing.error);

	qsim_store_worker_stop(worker);
	stopped.worker = worker;
	qsim_store_worker_run_async(worker, get_run, g_strdup("x"), g_free, result_cb, &stopped);
	while (!stopped.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(stopped.ok);
	g_assert_error(stopped.error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_clear_error(&stopped.error);

	/* an in-memory database has no second connection to give */
	g_assert_null(qsim_store_worker_new(":memory:", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/store/worker/order", StoreFixture, NULL, store_fixture_setup,
	           test_worker_order, store_fixture_teardown);
	g_test_add("/qsim/store/worker/errors", StoreFixture, NULL, store_fixture_setup,
	           test_worker_errors, store_fixture_teardown);
	return g_test_run();
}
