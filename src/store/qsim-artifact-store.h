#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QSIM_TYPE_ARTIFACT_STORE (qsim_artifact_store_get_type())
G_DECLARE_INTERFACE(QsimArtifactStore, qsim_artifact_store, QSIM, ARTIFACT_STORE, GObject)

/**
 * QsimArtifactStoreInterface:
 *
 * Where the bytes of collected artifacts live; their metadata is in the
 * QsimStore (`artifacts` table). The file backend (qsim-file-artifact-store.h)
 * keeps them under STATE_DIR/artifacts/<uuid>/<name>; object storage can come
 * later behind the same calls. Implementations must be usable from several
 * threads at once (the agent writes from guest worker threads, the API reads
 * from its main loop). Names reaching an implementation are validated
 * (qsim_artifact_name_validate()) and @uuid is a full lowercase UUID.
 */
struct _QsimArtifactStoreInterface {
	GTypeInterface parent_iface;

	GOutputStream *(*create)(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
	                         GError **error);
	GInputStream *(*open)(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
	                      guint64 offset, guint64 *out_size, GError **error);
	gboolean (*remove)(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
	                   GError **error);
	gboolean (*delete_request)(QsimArtifactStore *self, const gchar *uuid, GError **error);
};

/**
 * qsim_artifact_store_create:
 *
 * Returns: (transfer full): a stream writing the artifact's bytes (replacing
 * any earlier ones), or NULL with @error
 */
GOutputStream *qsim_artifact_store_create(QsimArtifactStore *self, const gchar *uuid,
                                          const gchar *name, GError **error);

/**
 * qsim_artifact_store_open:
 * @offset: where to start reading (a Range request); past the end reads nothing
 * @out_size: (out) (optional): the stored size in bytes (whole, not from @offset)
 *
 * Returns: (transfer full): a stream reading the artifact from @offset, or NULL
 * with @error (NOT_FOUND when it has no bytes stored)
 */
GInputStream *qsim_artifact_store_open(QsimArtifactStore *self, const gchar *uuid,
                                       const gchar *name, guint64 offset, guint64 *out_size,
                                       GError **error);

/* Removes one artifact's bytes (a failed or refused collection); absent is fine. */
gboolean qsim_artifact_store_remove(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
                                    GError **error);

/* Removes every artifact of a request (its deletion or retention); absent is fine. */
gboolean qsim_artifact_store_delete_request(QsimArtifactStore *self, const gchar *uuid,
                                            GError **error);

G_END_DECLS
