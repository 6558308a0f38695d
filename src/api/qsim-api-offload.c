#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "store/qsim-file-artifact-store.h"
#include "api/qsim-api-offload.h"
#include "api/qsim-api-server.h"
#include "store/qsim-store-factory.h"

/*
 * Store writes that may wait for the write lock (a BEGIN IMMEDIATE waits up to the busy
 * timeout, 5 s, while an agent or another process writes) or run long (a bulk delete)
 * must not stall every other call on the main loop. They run in a GTask thread on a
 * connection of their own, while their message is paused. Without a writer (the API
 * unit fixture, an in-memory database) they run inline on the server's store.
 */

typedef struct {
	SoupServerMessage *msg;
	QsimStore *server_store;
	gchar *db_path;
	QsimArtifactStore *artifacts;
	QsimApiOffloadFunc func;
	QsimApiOffloadDone done;
	gpointer data;
	GDestroyNotify free_data;
	gboolean gone;
} Offload;

static void
offload_free(Offload *o)
{
	g_signal_handlers_disconnect_by_data(o->msg, o);
	g_object_unref(o->msg);
	g_object_unref(o->server_store);
	g_free(o->db_path);
	g_clear_object(&o->artifacts);
	if (o->free_data != NULL)
		o->free_data(o->data);
	g_free(o);
}

static void
on_client_gone(SoupServerMessage *msg, gpointer user_data)
{
	((Offload *)user_data)->gone = TRUE;
}

static void
offload_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	Offload *o = task_data;
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(GError) error = NULL;

	/* a store is used by one thread at a time: this one is ours alone */
	store = qsim_store_open(o->db_path, &error);
	if (store != NULL)
		qsim_store_set_artifact_store(store, o->artifacts);
	if (store == NULL || !o->func(store, o->data, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
offload_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Offload *o = user_data;
	g_autoptr(GError) error = NULL;

	g_task_propagate_boolean(G_TASK(res), &error);
	o->done(o->gone ? NULL : o->msg, o->server_store, TRUE, o->data, error);
	if (!o->gone)
		soup_server_message_unpause(o->msg);
	offload_free(o);
}

/**
 * qsim_api_offload_write:
 * @ctx: the request being handled
 * @func: the write, given a store it may block on
 * @done: responds (when the client is still there) and tells in-process listeners
 * @data: for @func and @done
 * @free_data: (nullable): frees @data after @done
 */
void
qsim_api_offload_write(QsimApiContext *ctx, QsimApiOffloadFunc func, QsimApiOffloadDone done,
                       gpointer data, GDestroyNotify free_data)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	Offload *o;
	g_autoptr(GTask) task = NULL;

	if (qsim_api_server_get_writer(ctx->server) == NULL) {
		g_autoptr(GError) error = NULL;

		func(store, data, &error);
		done(ctx->msg, store, FALSE, data, error);
		if (free_data != NULL)
			free_data(data);
		return;
	}
	o = g_new0(Offload, 1);
	o->msg = g_object_ref(ctx->msg);
	o->server_store = g_object_ref(store);
	o->db_path =
	    g_strdup(qsim_config_get_store_location(qsim_api_server_get_config(ctx->server)));
	o->artifacts = qsim_artifact_store_new_for_config(qsim_api_server_get_config(ctx->server));
	o->func = func;
	o->done = done;
	o->data = data;
	o->free_data = free_data;
	g_signal_connect(o->msg, "disconnected", G_CALLBACK(on_client_gone), o);
	g_signal_connect(o->msg, "finished", G_CALLBACK(on_client_gone), o);
	soup_server_message_pause(ctx->msg);
	task = g_task_new(NULL, NULL, offload_done_cb, o);
	g_task_set_task_data(task, o, NULL);
	g_task_run_in_thread(task, offload_thread);
}
