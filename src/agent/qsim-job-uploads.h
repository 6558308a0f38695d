#pragma once

#include <gio/gio.h>

#include "agent/qsim-log-batcher.h"
#include "common/qsim-config.h"
#include "guest/qsim-guest.h"
#include "store/qsim-store-worker.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * A request's inputs: the parts its POST carried, spooled in the store, go into
 * the guest before the commands run, over SFTP, read back from the store chunk by
 * chunk (through a connection of the guest's worker thread, so the agent may be on
 * another host than the API). A tar part is written to a temporary guest file and
 * unpacked with the guest's `tar`, paths passed quoted. The spool is deleted after,
 * on @worker when there is one (deleting 64 MiB of chunks took 0.3 s of SQLite
 * time that the main loop would otherwise stall for).
 */
void qsim_job_uploads_async(QsimGuest *guest, QsimConfig *config, QsimStore *store,
                            QsimStoreWorker *worker, const QsimRequest *request,
                            QsimLogBatcher *batcher, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);

/* Returns: FALSE with @error when an input could not be put into the guest */
gboolean qsim_job_uploads_finish(GAsyncResult *res, GError **error);

G_END_DECLS
