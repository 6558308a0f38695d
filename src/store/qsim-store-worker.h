#pragma once

#include <gio/gio.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_STORE_WORKER (qsim_store_worker_get_type())
G_DECLARE_FINAL_TYPE(QsimStoreWorker, qsim_store_worker, QSIM, STORE_WORKER, GObject)

/**
 * QsimStoreWorkerFunc:
 * @store: the worker's own connection, used by its thread only
 * @data: the caller's data
 * @error: where to say why it failed
 *
 * Runs in the worker's thread. It must not touch anything the main loop uses
 * meanwhile, but what @data owns.
 *
 * Returns: %FALSE with @error set on failure
 */
typedef gboolean (*QsimStoreWorkerFunc)(QsimStore *store, gpointer data, GError **error);

QsimStoreWorker *qsim_store_worker_new(const gchar *location, GError **error);

void qsim_store_worker_run_async(QsimStoreWorker *self, QsimStoreWorkerFunc func, gpointer data,
                                 GDestroyNotify free_data, GAsyncReadyCallback callback,
                                 gpointer user_data);
gboolean qsim_store_worker_run_finish(QsimStoreWorker *self, GAsyncResult *result, GError **error);

guint qsim_store_worker_get_queued(QsimStoreWorker *self);
void qsim_store_worker_stop(QsimStoreWorker *self);

G_END_DECLS
