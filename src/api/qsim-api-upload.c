#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-cors.h"
#include "api/qsim-api-early.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-upload.h"
#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "common/qsim-text.h"

/* Header block of one part, and the preamble before the first boundary. */
#define PART_HEADERS_MAX (16 * 1024)
#define PREAMBLE_MAX (64 * 1024)
/* Parts of one body: each is a row and a guest file. */
#define PARTS_MAX 1000
#define UPLOAD_KEY "qsim-api-upload"

typedef enum {
	STATE_PREAMBLE,
	STATE_AFTER_DELIMITER,
	STATE_HEADERS,
	STATE_BODY,
	STATE_DONE,
	STATE_FAILED,
} State;

typedef enum {
	PART_NONE,
	PART_REQUEST,
	PART_FILE,
} PartKind;

struct _QsimApiUpload {
	QsimStore *store;
	guint64 max_bytes;
	gchar *delimiter; /* "\r\n--" boundary */
	gsize delimiter_len;
	State state;
	GByteArray *buf; /* bytes not parsed yet: bounded by the header and delimiter sizes */
	gsize preamble;
	/* the part being read */
	PartKind part;
	GByteArray *json; /* the `request` part */
	gchar *upload_id; /* set by the first file part */
	guint n_parts;
	guint64 bytes; /* file bytes so far, all parts */
	guint64 part_bytes;
	guint seq;
	GByteArray *chunk; /* up to QSIM_UPLOAD_CHUNK_MAX bytes before they go to the store */
	GChecksum *sum;
	gboolean taken;    /* a request took the spool: never discard it */
	guint fail_status; /* the HTTP status of the refusal, once failed */
	gchar **origins;   /* CORS origins, or NULL: a refusal mid-stream carries them too */
};

static void
upload_free(QsimApiUpload *u)
{
	g_autoptr(GError) error = NULL;

	if (u->upload_id != NULL && !u->taken &&
	    !qsim_store_upload_discard(u->store, u->upload_id, &error))
		g_warning("cannot discard upload %s: %s", u->upload_id, error->message);
	g_clear_object(&u->store);
	g_free(u->delimiter);
	g_byte_array_unref(u->buf);
	g_clear_pointer(&u->json, g_byte_array_unref);
	g_clear_pointer(&u->chunk, g_byte_array_unref);
	g_clear_pointer(&u->sum, g_checksum_free);
	g_free(u->upload_id);
	g_strfreev(u->origins);
	g_free(u);
}

static gboolean fail(QsimApiUpload *u, SoupServerMessage *msg, guint status, const gchar *code,
                     const gchar *format, ...) G_GNUC_PRINTF(5, 6);

/* Answers now and drops the connection: the rest of the body is never read. */
static gboolean
fail(QsimApiUpload *u, SoupServerMessage *msg, guint status, const gchar *code, const gchar *format,
     ...)
{
	g_autofree gchar *text = NULL;
	va_list args;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	u->state = STATE_FAILED;
	u->fail_status = status;
	/* without a message: the parser alone (qsim_api_upload_feed()) */
	if (msg == NULL)
		return FALSE;
	qsim_api_error_respond(msg, status, code, "%s", text);
	/* a browser can read the refusal only with the headers every other reply has */
	if (u->origins != NULL)
		qsim_api_cors_apply(msg, (const gchar *const *)u->origins);
	qsim_api_early_answer(msg);
	return FALSE;
}

static gboolean
flush_chunk(QsimApiUpload *u, SoupServerMessage *msg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;

	if (u->chunk->len == 0)
		return TRUE;
	bytes = g_bytes_new(u->chunk->data, u->chunk->len);
	g_byte_array_set_size(u->chunk, 0);
	if (!qsim_store_upload_put_chunk(u->store, u->upload_id, u->n_parts - 1, u->seq++, bytes,
	                                 &error))
		return fail(u, msg, qsim_api_error_status_for(error), "store_error",
		            "Cannot store the upload: %s", error->message);
	return TRUE;
}

static gboolean
part_data(QsimApiUpload *u, SoupServerMessage *msg, const guint8 *data, gsize len)
{
	if (len == 0)
		return TRUE;
	switch (u->part) {
	case PART_REQUEST:
		if (u->json->len + len > QSIM_API_MAX_BODY)
			return fail(u, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
			            "payload_too_large",
			            "The 'request' part is larger than 1 MiB.");
		g_byte_array_append(u->json, data, (guint)len);
		return TRUE;
	case PART_FILE:
		if (u->bytes + len > u->max_bytes)
			return fail(u, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
			            "payload_too_large",
			            "The uploaded files are larger than MAX_UPLOAD_BYTES "
			            "(%" G_GUINT64_FORMAT " bytes).",
			            u->max_bytes);
		u->bytes += len;
		u->part_bytes += len;
		g_checksum_update(u->sum, data, len);
		while (len > 0) {
			gsize room = QSIM_UPLOAD_CHUNK_MAX - u->chunk->len;
			gsize n = MIN(room, len);

			g_byte_array_append(u->chunk, data, (guint)n);
			data += n;
			len -= n;
			if (u->chunk->len == QSIM_UPLOAD_CHUNK_MAX && !flush_chunk(u, msg))
				return FALSE;
		}
		return TRUE;
	case PART_NONE:
	default:
		return TRUE;
	}
}

static gboolean
part_end(QsimApiUpload *u, SoupServerMessage *msg)
{
	g_autoptr(GError) error = NULL;

	if (u->part != PART_FILE)
		return TRUE;
	if (!flush_chunk(u, msg))
		return FALSE;
	if (!qsim_store_upload_finish_file(u->store, u->upload_id, u->n_parts - 1, u->part_bytes,
	                                   g_checksum_get_string(u->sum), &error))
		return fail(u, msg, qsim_api_error_status_for(error), "store_error",
		            "Cannot store the upload: %s", error->message);
	return TRUE;
}

/* `Content-Type` of a part: what a file part becomes in the guest */
static QsimUploadKind
kind_of(const gchar *type)
{
	if (type == NULL)
		return QSIM_UPLOAD_FILE;
	if (g_ascii_strncasecmp(type, "application/gzip", 16) == 0 ||
	    g_ascii_strncasecmp(type, "application/x-gzip", 18) == 0 ||
	    g_ascii_strncasecmp(type, "application/x-gtar", 18) == 0)
		return QSIM_UPLOAD_TAR_GZ;
	if (g_ascii_strncasecmp(type, "application/x-tar", 17) == 0)
		return QSIM_UPLOAD_TAR;
	return QSIM_UPLOAD_FILE;
}

static gboolean
part_start(QsimApiUpload *u, SoupServerMessage *msg, const gchar *block, gsize len)
{
	g_autofree gchar *text = g_strndup(block, len);
	g_auto(GStrv) lines = g_strsplit(text, "\r\n", -1);
	g_autoptr(GHashTable) params = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *name = NULL, *filename = NULL, *type = NULL, *mode_text = NULL;
	guint64 mode = 0644;
	QsimUploadKind kind;

	for (guint i = 0; lines[i] != NULL; i++) {
		gchar *colon = strchr(lines[i], ':');
		gchar *value;

		if (colon == NULL)
			continue;
		*colon = '\0';
		value = g_strstrip(colon + 1);
		if (g_ascii_strcasecmp(g_strstrip(lines[i]), "Content-Disposition") == 0) {
			gchar *semi = strchr(value, ';');

			if (semi != NULL) {
				g_clear_pointer(&params, g_hash_table_unref);
				params = soup_header_parse_semi_param_list(semi + 1);
			}
		} else if (g_ascii_strcasecmp(lines[i], "Content-Type") == 0) {
			type = value;
		} else if (g_ascii_strcasecmp(lines[i], "X-Qsim-Mode") == 0) {
			mode_text = value;
		}
	}
	if (params != NULL) {
		name = g_hash_table_lookup(params, "name");
		filename = g_hash_table_lookup(params, "filename");
	}
	if (g_strcmp0(name, "request") == 0) {
		if (u->json != NULL)
			return fail(u, msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			            "The body has two 'request' parts.");
		u->json = g_byte_array_new();
		u->part = PART_REQUEST;
		return TRUE;
	}
	if (g_strcmp0(name, "file") != 0)
		return fail(
		    u, msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		    "A part must be named 'request' (the JSON fields) or 'file' (a file, or "
		    "a tar with Content-Type application/x-tar or application/gzip).");
	if (!qsim_guest_path_validate(filename, &error)) {
		g_autofree gchar *shown =
		    qsim_utf8_safe_dup(filename != NULL ? filename : "", -1, 64);
		return fail(u, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		            "A 'file' part's filename must be its absolute guest path (a directory "
		            "for a tar), not '%s': %s.",
		            shown, error->message);
	}
	if (mode_text != NULL && !g_ascii_string_to_unsigned(mode_text, 8, 0, 07777, &mode, NULL))
		return fail(u, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		            "X-Qsim-Mode must be octal permission bits such as 0755.");
	if (u->n_parts >= PARTS_MAX)
		return fail(u, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
		            "At most %d file parts per request.", PARTS_MAX);
	if (u->upload_id == NULL)
		u->upload_id = g_uuid_string_random();
	kind = kind_of(type);
	if (!qsim_store_upload_add_file(u->store, u->upload_id, u->n_parts, kind, filename,
	                                (guint)mode, &error))
		return fail(u, msg, qsim_api_error_status_for(error), "store_error",
		            "Cannot store the upload: %s", error->message);
	u->n_parts++;
	u->part = PART_FILE;
	u->part_bytes = 0;
	u->seq = 0;
	g_clear_pointer(&u->sum, g_checksum_free);
	u->sum = g_checksum_new(G_CHECKSUM_SHA256);
	return TRUE;
}

static gssize
find(const GByteArray *buf, const gchar *needle, gsize len)
{
	if (buf->len < len)
		return -1;
	for (gsize i = 0; i + len <= buf->len; i++) {
		if (buf->data[i] == (guint8)needle[0] && memcmp(buf->data + i, needle, len) == 0)
			return (gssize)i;
	}
	return -1;
}

/* Parses what arrived; FALSE once the message was answered with an error. */
static gboolean
feed(QsimApiUpload *u, SoupServerMessage *msg)
{
	for (;;) {
		gssize at;

		switch (u->state) {
		case STATE_PREAMBLE:
			/* the first delimiter may open the body without its CRLF */
			at = find(u->buf, u->delimiter + 2, u->delimiter_len - 2);
			if (at < 0) {
				gsize keep = MIN(u->buf->len, u->delimiter_len);

				u->preamble += u->buf->len - keep;
				g_byte_array_remove_range(u->buf, 0, u->buf->len - keep);
				if (u->preamble > PREAMBLE_MAX)
					return fail(u, msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
					            "No multipart boundary in the body.");
				return TRUE;
			}
			/* the same limit whether the preamble came in one piece or many */
			if (u->preamble + (gsize)at > PREAMBLE_MAX)
				return fail(u, msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
				            "No multipart boundary in the body.");
			g_byte_array_remove_range(u->buf, 0, (guint)at + u->delimiter_len - 2);
			u->state = STATE_AFTER_DELIMITER;
			break;
		case STATE_AFTER_DELIMITER:
			if (u->buf->len < 2)
				return TRUE;
			if (memcmp(u->buf->data, "--", 2) == 0) {
				u->state = STATE_DONE;
				g_byte_array_set_size(u->buf, 0);
				return TRUE;
			}
			if (memcmp(u->buf->data, "\r\n", 2) != 0)
				return fail(u, msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
				            "Malformed multipart body after a boundary.");
			g_byte_array_remove_range(u->buf, 0, 2);
			u->state = STATE_HEADERS;
			break;
		case STATE_HEADERS:
			if (u->buf->len >= 2 && memcmp(u->buf->data, "\r\n", 2) == 0) {
				at = 0;
			} else {
				/* the limit is on where the blank line starts, so that it holds
				 * the same however the body was cut into chunks */
				at = find(u->buf, "\r\n\r\n", 4);
				if ((at < 0 && u->buf->len > PART_HEADERS_MAX + 3) ||
				    at > PART_HEADERS_MAX)
					return fail(u, msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
					            "A part's headers are larger than 16 KiB.");
				if (at < 0)
					return TRUE;
				at += 2;
			}
			if (!part_start(u, msg, (const gchar *)u->buf->data, (gsize)at))
				return FALSE;
			g_byte_array_remove_range(u->buf, 0, (guint)at + 2);
			u->state = STATE_BODY;
			break;
		case STATE_BODY:
			at = find(u->buf, u->delimiter, u->delimiter_len);
			if (at < 0) {
				/* all but what could be the start of a delimiter */
				gsize safe = u->buf->len > u->delimiter_len - 1
				                 ? u->buf->len - (u->delimiter_len - 1)
				                 : 0;

				if (!part_data(u, msg, u->buf->data, safe))
					return FALSE;
				g_byte_array_remove_range(u->buf, 0, (guint)safe);
				return TRUE;
			}
			if (!part_data(u, msg, u->buf->data, (gsize)at) || !part_end(u, msg))
				return FALSE;
			g_byte_array_remove_range(u->buf, 0, (guint)at + u->delimiter_len);
			u->part = PART_NONE;
			u->state = STATE_AFTER_DELIMITER;
			break;
		case STATE_DONE:
			/* an epilogue is allowed and ignored */
			g_byte_array_set_size(u->buf, 0);
			return TRUE;
		case STATE_FAILED:
		default:
			return FALSE;
		}
	}
}

static void
on_got_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
	QsimApiUpload *u = user_data;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(chunk, &len);

	if (u->state == STATE_FAILED)
		return;
	g_byte_array_append(u->buf, data, (guint)len);
	feed(u, msg);
}

/**
 * qsim_api_upload_is_multipart:
 *
 * Returns: whether @msg is a `multipart/form-data` POST (with a boundary)
 */
gboolean
qsim_api_upload_is_multipart(SoupServerMessage *msg)
{
	g_autoptr(GHashTable) params = NULL;
	const gchar *type = soup_message_headers_get_content_type(
	    soup_server_message_get_request_headers(msg), &params);

	return g_strcmp0(soup_server_message_get_method(msg), "POST") == 0 &&
	       g_strcmp0(type, "multipart/form-data") == 0 && params != NULL &&
	       g_hash_table_lookup(params, "boundary") != NULL;
}

/**
 * qsim_api_upload_new:
 * @boundary: the Content-Type's boundary parameter
 *
 * Returns: (transfer full): a parser answering nothing (see qsim_api_upload_feed())
 */
QsimApiUpload *
qsim_api_upload_new(QsimStore *store, const gchar *boundary, guint64 max_bytes)
{
	QsimApiUpload *u = g_new0(QsimApiUpload, 1);

	u->store = g_object_ref(store);
	u->max_bytes = max_bytes;
	u->delimiter = g_strdup_printf("\r\n--%s", boundary);
	u->delimiter_len = strlen(u->delimiter);
	u->buf = g_byte_array_new();
	u->chunk = g_byte_array_sized_new(QSIM_UPLOAD_CHUNK_MAX);
	return u;
}

/**
 * qsim_api_upload_feed:
 *
 * Parses the next @len bytes of the body, as the got-chunk handler does.
 *
 * Returns: FALSE once the body was refused (see qsim_api_upload_get_fail_status())
 */
gboolean
qsim_api_upload_feed(QsimApiUpload *u, const guint8 *data, gsize len)
{
	if (u->state == STATE_FAILED)
		return FALSE;
	g_byte_array_append(u->buf, data, (guint)len);
	return feed(u, NULL);
}

/* Returns: the HTTP status the body was refused with, or 0 */
guint
qsim_api_upload_get_fail_status(QsimApiUpload *u)
{
	return u->fail_status;
}

void
qsim_api_upload_free(QsimApiUpload *u)
{
	if (u != NULL)
		upload_free(u);
}

/**
 * qsim_api_upload_attach:
 * @msg: a multipart POST /requests whose headers were just read (early handler)
 * @store: (transfer none): the main loop's store, where the parts are spooled
 * @max_bytes: MAX_UPLOAD_BYTES
 * @origins: (nullable) (array zero-terminated=1): the CORS origins, or %NULL when
 *   CORS is off: every refusal carries the same CORS headers as any other reply
 *
 * Streams the body from now on: the JSON `request` part is kept (at most 1 MiB),
 * `file` parts go to the store in chunks of 1 MiB as they arrive, nothing else is
 * held. A declared or counted size over @max_bytes, or a malformed body, is answered
 * at once (413, 400 or 422 JSON) without reading the rest.
 *
 * Returns: FALSE when @msg was answered already
 */
gboolean
qsim_api_upload_attach(SoupServerMessage *msg, QsimStore *store, guint64 max_bytes,
                       const gchar *const *origins)
{
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	g_autoptr(GHashTable) params = NULL;
	QsimApiUpload *u;

	soup_message_headers_get_content_type(h, &params);
	if (max_bytes == 0 ||
	    (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH &&
	     (guint64)soup_message_headers_get_content_length(h) > max_bytes + QSIM_API_MAX_BODY)) {
		qsim_api_error_respond(
		    msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
		    max_bytes == 0 ? "Uploads are off on this server (MAX_UPLOAD_BYTES=0)."
		                   : "The body is larger than MAX_UPLOAD_BYTES (%" G_GUINT64_FORMAT
		                     " bytes) plus 1 MiB for the request part.",
		    max_bytes);
		if (origins != NULL)
			qsim_api_cors_apply(msg, origins);
		qsim_api_early_answer(msg);
		return FALSE;
	}
	u = qsim_api_upload_new(store, g_hash_table_lookup(params, "boundary"), max_bytes);
	u->origins = g_strdupv((gchar **)origins);
	/* the body is parsed as it streams in: libsoup must not keep it too */
	soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
	g_object_set_data_full(G_OBJECT(msg), UPLOAD_KEY, u, (GDestroyNotify)upload_free);
	g_signal_connect(msg, "got-chunk", G_CALLBACK(on_got_chunk), u);
	return TRUE;
}

/* Returns: (transfer none) (nullable): the upload attached to @msg */
QsimApiUpload *
qsim_api_upload_get(SoupServerMessage *msg)
{
	return g_object_get_data(G_OBJECT(msg), UPLOAD_KEY);
}

/**
 * qsim_api_upload_get_request:
 * @len: (out): its length
 *
 * Returns: (transfer none) (nullable): the `request` part's bytes once the body
 * ended with its closing boundary; %NULL when it is missing or the body is cut
 */
const gchar *
qsim_api_upload_get_request(QsimApiUpload *u, gsize *len)
{
	if (u->state != STATE_DONE || u->json == NULL)
		return NULL;
	*len = u->json->len;
	return (const gchar *)u->json->data;
}

gboolean
qsim_api_upload_is_complete(QsimApiUpload *u)
{
	return u->state == STATE_DONE;
}

/* Returns: (transfer none) (nullable): the spool id, %NULL when no file part came */
const gchar *
qsim_api_upload_get_id(QsimApiUpload *u)
{
	return u->upload_id;
}

/* A request took the spool (or will, in the writer): it is no longer discarded here. */
void
qsim_api_upload_take(QsimApiUpload *u)
{
	u->taken = TRUE;
}
