#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimArtifactKind:
 *
 * What a collected guest path was. A symlink is recorded as what it is (its
 * target), never followed.
 */
typedef enum {
	QSIM_ARTIFACT_FILE,
	QSIM_ARTIFACT_SYMLINK,
} QsimArtifactKind;

/**
 * QsimArtifactRecord:
 *
 * One collected artifact's metadata, as the `artifacts` table has it. The bytes
 * of a file are in the artifact store under the same name.
 */
typedef struct {
	gchar *name; /* the guest path without its leading '/' (qsim_artifact_name_validate()) */
	QsimArtifactKind kind;
	guint64 size;  /* bytes stored (a symlink: the length of its target) */
	gchar *sha256; /* lowercase hex of the bytes stored (a symlink: of its target) */
	guint mode;    /* permission bits, 07777 at most */
	gchar *target; /* nullable: a symlink's target, as the guest said it */
	gint64 created_at;
} QsimArtifactRecord;

const gchar *qsim_artifact_kind_to_string(QsimArtifactKind kind);
gboolean qsim_artifact_kind_from_string(const gchar *text, QsimArtifactKind *out);

/* Returns: (transfer full): a zeroed record */
QsimArtifactRecord *qsim_artifact_record_new(void);
QsimArtifactRecord *qsim_artifact_record_copy(const QsimArtifactRecord *self);
void qsim_artifact_record_free(QsimArtifactRecord *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimArtifactRecord, qsim_artifact_record_free)

G_END_DECLS
