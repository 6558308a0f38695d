#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimUploadKind:
 *
 * What an uploaded part becomes in the guest: one file, or a tar (plain or
 * gzip) unpacked into a directory.
 */
typedef enum {
	QSIM_UPLOAD_FILE,
	QSIM_UPLOAD_TAR,
	QSIM_UPLOAD_TAR_GZ,
} QsimUploadKind;

/* A spool no request took this long after it began is removed by the next purge. */
#define QSIM_UPLOAD_ABANDONED_MS ((gint64)24 * 3600 * 1000)

/* How many bytes one upload_chunks row holds at most. */
#define QSIM_UPLOAD_CHUNK_MAX (1024 * 1024)

/**
 * QsimUploadRecord:
 *
 * One uploaded part of a request, spooled in the store (`uploads` and
 * `upload_chunks`) until an agent puts it into the guest.
 */
typedef struct {
	gchar *upload_id; /* the spool's id, a UUID */
	guint idx;        /* the part's position, from 0 */
	QsimUploadKind kind;
	gchar *guest_path; /* the file, or the directory a tar is unpacked into */
	guint mode;        /* permission bits of a file */
	guint64 size;
	gchar *sha256; /* nullable until the part is complete */
} QsimUploadRecord;

const gchar *qsim_upload_kind_to_string(QsimUploadKind kind);
gboolean qsim_upload_kind_from_string(const gchar *text, QsimUploadKind *out);
void qsim_upload_record_free(QsimUploadRecord *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimUploadRecord, qsim_upload_record_free)

G_END_DECLS
