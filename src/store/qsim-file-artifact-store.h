#pragma once

#include "common/qsim-config.h"
#include "store/qsim-artifact-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_FILE_ARTIFACT_STORE (qsim_file_artifact_store_get_type())
G_DECLARE_FINAL_TYPE(QsimFileArtifactStore, qsim_file_artifact_store, QSIM, FILE_ARTIFACT_STORE,
                     GObject)

/**
 * qsim_file_artifact_store_new:
 * @root: the directory holding one sub-directory per request, normally
 *   STATE_DIR/artifacts (created 0700 on first write)
 *
 * Artifacts as plain files, 0600 in 0700 directories, opened without following
 * symlinks. The API and every agent must see the same @root: one host, or a
 * shared filesystem mounted at the same STATE_DIR.
 *
 * Returns: (transfer full): the store
 */
QsimArtifactStore *qsim_file_artifact_store_new(const gchar *root);

GPtrArray *qsim_file_artifact_store_list_requests(QsimFileArtifactStore *self, gint64 older_than);
GPtrArray *qsim_file_artifact_store_list_files(QsimFileArtifactStore *self, const gchar *uuid,
                                               guint max);

/* Returns: (transfer full): the store for STATE_DIR/artifacts */
QsimArtifactStore *qsim_file_artifact_store_new_for_state_dir(const gchar *state_dir);

/**
 * qsim_artifact_store_new_for_config:
 *
 * Returns: (transfer full): the configured artifact store: today always the
 * file backend under STATE_DIR/artifacts
 */
QsimArtifactStore *qsim_artifact_store_new_for_config(QsimConfig *config);

G_END_DECLS
