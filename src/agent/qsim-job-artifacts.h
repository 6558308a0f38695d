#pragma once

#include <gio/gio.h>

#include "agent/qsim-log-batcher.h"
#include "common/qsim-config.h"
#include "guest/qsim-guest.h"
#include "store/qsim-artifact-store.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * A request's outputs: after its commands, the guest paths it named are
 * fetched over SFTP into the artifact store and recorded in the QsimStore.
 * Whatever was missing, refused or over MAX_ARTIFACT_BYTES/MAX_ARTIFACT_FILES
 * becomes a `system` log line; nothing here fails the request.
 */
void qsim_job_artifacts_collect_async(QsimGuest *guest, QsimConfig *config, QsimStore *store,
                                      QsimArtifactStore *artifacts, const QsimRequest *request,
                                      QsimLogBatcher *batcher, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);

/* Returns: FALSE only when the collection was aborted (cancelled, session gone) */
gboolean qsim_job_artifacts_collect_finish(GAsyncResult *res, GError **error);

G_END_DECLS
