#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-upload-record.h"

const gchar *
qsim_upload_kind_to_string(QsimUploadKind kind)
{
	switch (kind) {
	case QSIM_UPLOAD_TAR:
		return "tar";
	case QSIM_UPLOAD_TAR_GZ:
		return "tar.gz";
	case QSIM_UPLOAD_FILE:
	default:
		return "file";
	}
}

gboolean
qsim_upload_kind_from_string(const gchar *text, QsimUploadKind *out)
{
	if (g_strcmp0(text, "file") == 0)
		*out = QSIM_UPLOAD_FILE;
	else if (g_strcmp0(text, "tar") == 0)
		*out = QSIM_UPLOAD_TAR;
	else if (g_strcmp0(text, "tar.gz") == 0)
		*out = QSIM_UPLOAD_TAR_GZ;
	else
		return FALSE;
	return TRUE;
}

void
qsim_upload_record_free(QsimUploadRecord *self)
{
	if (self == NULL)
		return;
	g_free(self->upload_id);
	g_free(self->guest_path);
	g_free(self->sha256);
	g_free(self);
}
