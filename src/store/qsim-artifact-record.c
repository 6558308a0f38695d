#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-artifact-record.h"

const gchar *
qsim_artifact_kind_to_string(QsimArtifactKind kind)
{
	return kind == QSIM_ARTIFACT_SYMLINK ? "symlink" : "file";
}

gboolean
qsim_artifact_kind_from_string(const gchar *text, QsimArtifactKind *out)
{
	if (g_strcmp0(text, "file") == 0)
		*out = QSIM_ARTIFACT_FILE;
	else if (g_strcmp0(text, "symlink") == 0)
		*out = QSIM_ARTIFACT_SYMLINK;
	else
		return FALSE;
	return TRUE;
}

QsimArtifactRecord *
qsim_artifact_record_new(void)
{
	return g_new0(QsimArtifactRecord, 1);
}

QsimArtifactRecord *
qsim_artifact_record_copy(const QsimArtifactRecord *self)
{
	QsimArtifactRecord *copy = g_new0(QsimArtifactRecord, 1);

	*copy = *self;
	copy->name = g_strdup(self->name);
	copy->sha256 = g_strdup(self->sha256);
	copy->target = g_strdup(self->target);
	return copy;
}

void
qsim_artifact_record_free(QsimArtifactRecord *self)
{
	if (self == NULL)
		return;
	g_free(self->name);
	g_free(self->sha256);
	g_free(self->target);
	g_free(self);
}
