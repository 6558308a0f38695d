#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-tar.h"
#include "common/qsim-error.h"
#include "common/qsim-tar.h"

#define TAR_CHUNK (64 * 1024)

struct _QsimApiTar {
	QsimArtifactStore *artifacts;
	gchar *uuid;
	GPtrArray *records;
	guint next;         /* the next record to start */
	GInputStream *file; /* the one being copied */
	guint64 file_left;
	guint64 file_size;
	GZlibCompressor *gz;
	gboolean ended;
	gboolean finished; /* the gzip trailer is out */
	gint64 mtime;
};

QsimApiTar *
qsim_api_tar_new(QsimArtifactStore *artifacts, const gchar *uuid, GPtrArray *records)
{
	QsimApiTar *self = g_new0(QsimApiTar, 1);

	self->artifacts = artifacts;
	self->uuid = g_strdup(uuid);
	self->records = records;
	self->gz = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
	self->mtime = g_get_real_time() / G_USEC_PER_SEC;
	return self;
}

void
qsim_api_tar_free(QsimApiTar *self)
{
	g_clear_object(&self->file);
	g_clear_object(&self->artifacts);
	g_clear_object(&self->gz);
	g_ptr_array_unref(self->records);
	g_free(self->uuid);
	g_free(self);
}

/* The header(s) of one record: a pax header first when a name is too long for ustar. */
static void
record_header(QsimApiTar *self, GString *out, const QsimArtifactRecord *r)
{
	gboolean is_link = r->kind == QSIM_ARTIFACT_SYMLINK;

	qsim_tar_header(out, r->name, is_link ? QSIM_TAR_SYMLINK : QSIM_TAR_FILE, r->mode,
	                is_link ? 0 : r->size, r->created_at / 1000, is_link ? r->target : NULL);
}

/* Up to TAR_CHUNK uncompressed tar bytes; empty once everything, trailer included, is out. */
static gboolean
next_raw(QsimApiTar *self, GString *out, GError **error)
{
	while (out->len == 0 && !self->ended) {
		if (self->file != NULL) {
			g_autoptr(GBytes) b = NULL;

			if (self->file_left == 0) {
				g_clear_object(&self->file);
				qsim_tar_pad(out, self->file_size);
				continue;
			}
			b = g_input_stream_read_bytes(
			    self->file, (gsize)MIN(self->file_left, TAR_CHUNK), NULL, error);
			if (b == NULL || g_bytes_get_size(b) == 0) {
				if (b != NULL)
					g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
					            "an artifact shrank while it was sent");
				return FALSE;
			}
			self->file_left -= g_bytes_get_size(b);
			g_string_append_len(out, g_bytes_get_data(b, NULL),
			                    (gssize)g_bytes_get_size(b));
			continue;
		}
		if (self->next < self->records->len) {
			const QsimArtifactRecord *r = self->records->pdata[self->next++];

			if (r->kind == QSIM_ARTIFACT_FILE) {
				self->file = qsim_artifact_store_open(self->artifacts, self->uuid,
				                                      r->name, 0, NULL, error);
				if (self->file == NULL)
					return FALSE;
				self->file_left = self->file_size = r->size;
			}
			record_header(self, out, r);
			continue;
		}
		/* two zero blocks end the archive */
		g_string_set_size(out, 2 * QSIM_TAR_BLOCK);
		memset(out->str, 0, 2 * QSIM_TAR_BLOCK);
		self->ended = TRUE;
	}
	return TRUE;
}

/**
 * qsim_api_tar_read:
 *
 * Returns: (transfer full): compressed bytes; empty at the end
 */
GBytes *
qsim_api_tar_read(QsimApiTar *self, gsize max, GError **error)
{
	g_autoptr(GByteArray) out = g_byte_array_new();
	gboolean flushed = self->finished;

	while (out->len == 0 && !flushed) {
		g_autoptr(GString) raw = g_string_new(NULL);
		gsize in_off = 0;
		gboolean last;

		if (!next_raw(self, raw, error))
			return NULL;
		last = raw->len == 0;
		do {
			guint8 buf[TAR_CHUNK];
			gsize read = 0, written = 0;
			GConverterResult res = g_converter_convert(
			    G_CONVERTER(self->gz), raw->str + in_off, raw->len - in_off, buf,
			    sizeof(buf), last ? G_CONVERTER_INPUT_AT_END : G_CONVERTER_NO_FLAGS,
			    &read, &written, error);

			if (res == G_CONVERTER_ERROR)
				return NULL;
			in_off += read;
			g_byte_array_append(out, buf, (guint)written);
			if (res == G_CONVERTER_FINISHED) {
				flushed = self->finished = TRUE;
				break;
			}
		} while (in_off < raw->len || (last && !flushed));
	}
	(void)max;
	return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}
