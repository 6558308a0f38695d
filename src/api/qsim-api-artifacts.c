#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "store/qsim-file-artifact-store.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-tar.h"
#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "common/qsim-text.h"
#include "store/qsim-artifact-store.h"

/* Bytes read from the artifact store per step of a download. */
#define SEND_CHUNK (64 * 1024)
/* Bytes handed to libsoup and not yet written to the socket: a slow client
 * holds at most this much of an artifact in memory. */
#define SEND_WINDOW (256 * 1024)

static void
append_artifact(GString *out, const QsimArtifactRecord *r)
{
	g_string_append(out, "{\"name\":");
	qsim_api_json_append_string(out, r->name);
	g_string_append(out, ",\"kind\":");
	qsim_api_json_append_string(out, qsim_artifact_kind_to_string(r->kind));
	g_string_append(out, ",\"size\":");
	qsim_api_json_append_int(out, (gint64)r->size);
	g_string_append(out, ",\"sha256\":");
	qsim_api_json_append_string(out, r->sha256);
	g_string_append_printf(out, ",\"mode\":\"%04o\"", r->mode);
	g_string_append(out, ",\"target\":");
	qsim_api_json_append_string(out, r->target);
	g_string_append(out, ",\"created_at\":");
	qsim_api_json_append_timestamp(out, r->created_at);
	g_string_append_c(out, '}');
}

static GPtrArray *
list_for(QsimApiContext *ctx, QsimRequest **out_request)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(QsimRequest) r = qsim_api_requests_resolve(ctx);
	g_autoptr(GError) error = NULL;
	GPtrArray *rows;

	if (r == NULL)
		return NULL;
	rows = qsim_store_list_artifacts(store, r->uuid, &error);
	if (rows == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return NULL;
	}
	*out_request = g_steal_pointer(&r);
	return rows;
}

void
qsim_api_artifacts_list(QsimApiContext *ctx)
{
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = list_for(ctx, &r);
	GString *out;

	if (rows == NULL)
		return;
	out = g_string_sized_new(256 * (rows->len + 1));
	g_string_append_c(out, '[');
	for (guint i = 0; i < rows->len; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		append_artifact(out, rows->pdata[i]);
	}
	g_string_append_c(out, ']');
	qsim_api_json_respond_text(ctx->msg, SOUP_STATUS_OK, out);
}

/* ---- streaming a body from a source, as fast as the client takes it -------- */

/* Returns up to @max bytes of the body (an empty GBytes at the end), or NULL with @error. */
typedef GBytes *(*SendReadFunc)(gpointer source, gsize max, GError **error);

typedef struct {
	SoupServerMessage *msg;
	gpointer source;
	GDestroyNotify source_free;
	SendReadFunc read;
	guint64 left; /* G_MAXUINT64: until the source ends (chunked) */
	guint64 queued;
	guint64 written;
	gboolean done;
	gboolean gone;
} Send;

static void
send_free(Send *s)
{
	if (s->source_free != NULL)
		s->source_free(s->source);
	g_object_unref(s->msg);
	g_free(s);
}

static void
send_fill(Send *s)
{
	SoupMessageBody *body = soup_server_message_get_response_body(s->msg);

	while (!s->done && !s->gone && s->queued - s->written < SEND_WINDOW) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) chunk = NULL;

		if (s->left == 0) {
			s->done = TRUE;
			soup_message_body_complete(body);
			break;
		}
		chunk = s->read(s->source, (gsize)MIN(s->left, (guint64)SEND_CHUNK), &error);
		if (chunk == NULL || (g_bytes_get_size(chunk) == 0 && s->left != G_MAXUINT64)) {
			/* the headers are out: all that is left is to cut the connection
			 * short, which a client sees as a truncated body */
			g_warning("artifact download cut: %s",
			          error != NULL ? error->message : "the file shrank");
			GSocket *sock = soup_server_message_get_socket(s->msg);

			s->done = TRUE;
			if (sock != NULL)
				g_socket_shutdown(sock, TRUE, TRUE, NULL);
			soup_message_body_complete(body);
			break;
		}
		if (g_bytes_get_size(chunk) == 0) {
			s->done = TRUE;
			soup_message_body_complete(body);
			break;
		}
		if (s->left != G_MAXUINT64)
			s->left -= g_bytes_get_size(chunk);
		s->queued += g_bytes_get_size(chunk);
		soup_message_body_append_bytes(body, chunk);
	}
	soup_server_message_unpause(s->msg);
}

static void
send_wrote(SoupServerMessage *msg, guint chunk_size, gpointer user_data)
{
	Send *s = user_data;

	s->written += chunk_size;
	/* a chunk written frees its memory; libsoup keeps what it wrote otherwise */
	soup_message_body_set_accumulate(soup_server_message_get_response_body(msg), FALSE);
	if (!s->done && s->queued - s->written < SEND_WINDOW / 2)
		send_fill(s);
}

static void
send_end(SoupServerMessage *msg, gpointer user_data)
{
	Send *s = user_data;

	if (s->gone)
		return;
	s->gone = TRUE;
	g_signal_handlers_disconnect_by_data(msg, s);
	send_free(s);
}

static void
send_start(SoupServerMessage *msg, guint64 length, gpointer source, GDestroyNotify source_free,
           SendReadFunc read)
{
	Send *s = g_new0(Send, 1);
	SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);

	s->msg = g_object_ref(msg);
	s->source = source;
	s->source_free = source_free;
	s->read = read;
	s->left = length;
	if (length == G_MAXUINT64)
		soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
	else
		soup_message_headers_set_content_length(h, (goffset)length);
	soup_message_body_set_accumulate(soup_server_message_get_response_body(msg), FALSE);
	g_signal_connect(msg, "wrote-body-data", G_CALLBACK(send_wrote), s);
	g_signal_connect(msg, "finished", G_CALLBACK(send_end), s);
	g_signal_connect(msg, "disconnected", G_CALLBACK(send_end), s);
	if (g_strcmp0(soup_server_message_get_method(msg), "HEAD") == 0) {
		s->done = TRUE;
		soup_message_body_complete(soup_server_message_get_response_body(msg));
		return;
	}
	send_fill(s);
}

static GBytes *
read_stream(gpointer source, gsize max, GError **error)
{
	GBytes *bytes = g_input_stream_read_bytes(G_INPUT_STREAM(source), max, NULL, error);

	if (bytes == NULL)
		qsim_error_convert(error);
	return bytes;
}

static void
security_headers(SoupServerMessage *msg, const gchar *filename, const gchar *type)
{
	SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
	g_autoptr(GHashTable) params = g_hash_table_new(g_str_hash, g_str_equal);

	/* never rendered by a browser as the API's own origin: a guest chose these bytes */
	soup_message_headers_set_content_type(h, type, NULL);
	soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
	soup_message_headers_replace(h, "Content-Security-Policy", "sandbox");
	g_hash_table_insert(params, "filename", (gpointer)filename);
	soup_message_headers_set_content_disposition(h, "attachment", params);
}

/* Parses a single `bytes=` range against @size. Returns FALSE for an
 * unsatisfiable one; sets *ranged FALSE for none or one we serve whole. */
static gboolean
parse_range(const gchar *header, guint64 size, gboolean *ranged, guint64 *start, guint64 *end)
{
	const gchar *spec;
	const gchar *dash;
	guint64 a = 0, b = 0;
	g_autofree gchar *first = NULL;

	*ranged = FALSE;
	if (header == NULL || !g_str_has_prefix(header, "bytes="))
		return TRUE;
	spec = header + 6;
	/* several ranges would need multipart/byteranges: RFC 9110 lets us send it all */
	if (strchr(spec, ',') != NULL)
		return TRUE;
	dash = strchr(spec, '-');
	if (dash == NULL)
		return TRUE;
	first = g_strndup(spec, (gsize)(dash - spec));
	if (first[0] == '\0') {
		/* suffix: the last N bytes */
		if (!g_ascii_string_to_unsigned(dash + 1, 10, 1, G_MAXINT64, &b, NULL))
			return TRUE;
		if (size == 0)
			return FALSE;
		*start = size > b ? size - b : 0;
		*end = size - 1;
		*ranged = TRUE;
		return TRUE;
	}
	if (!g_ascii_string_to_unsigned(first, 10, 0, G_MAXINT64, &a, NULL))
		return TRUE;
	if (dash[1] == '\0')
		b = size > 0 ? size - 1 : 0;
	else if (!g_ascii_string_to_unsigned(dash + 1, 10, 0, G_MAXINT64, &b, NULL) || b < a)
		return TRUE;
	if (a >= size)
		return FALSE;
	*start = a;
	*end = MIN(b, size - 1);
	*ranged = TRUE;
	return TRUE;
}

void
qsim_api_artifacts_get(QsimApiContext *ctx)
{
	QsimConfig *config = qsim_api_server_get_config(ctx->server);
	const gchar *marker = strstr(ctx->path, "/artifacts/");
	const gchar *name = marker != NULL ? marker + strlen("/artifacts/") : "";
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimArtifactStore) artifacts = NULL;
	g_autoptr(GInputStream) in = NULL;
	const QsimArtifactRecord *found = NULL;
	SoupMessageHeaders *h;
	g_autofree gchar *base = NULL;
	guint64 size = 0, start = 0, end = 0;
	gboolean ranged = FALSE;

	if (!qsim_artifact_name_validate(name, &error)) {
		g_autofree gchar *shown = qsim_utf8_safe_dup(name, -1, 64);
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "'%s' is not an artifact name.", shown);
		return;
	}
	rows = list_for(ctx, &r);
	if (rows == NULL)
		return;
	for (guint i = 0; i < rows->len && found == NULL; i++) {
		if (g_strcmp0(((QsimArtifactRecord *)rows->pdata[i])->name, name) == 0)
			found = rows->pdata[i];
	}
	if (found == NULL) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_NOT_FOUND, "not_found",
		                       "Request %s has no artifact by that name.", r->uuid);
		return;
	}
	if (found->kind == QSIM_ARTIFACT_SYMLINK) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_CONFLICT, "symlink",
		                       "That artifact is a symlink (its target is in the list); "
		                       "it has no bytes of its own.");
		return;
	}
	artifacts = qsim_artifact_store_new_for_config(config);
	in = qsim_artifact_store_open(artifacts, r->uuid, name, 0, &size, &error);
	if (in == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return;
	}
	h = soup_server_message_get_response_headers(ctx->msg);
	if (!parse_range(soup_message_headers_get_one(
	                     soup_server_message_get_request_headers(ctx->msg), "Range"),
	                 size, &ranged, &start, &end)) {
		g_autofree gchar *cr = g_strdup_printf("bytes */%" G_GUINT64_FORMAT, size);
		soup_message_headers_replace(h, "Content-Range", cr);
		qsim_api_error_respond(
		    ctx->msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE, "range_not_satisfiable",
		    "The range is outside the artifact's %" G_GUINT64_FORMAT " bytes.", size);
		return;
	}
	base = g_path_get_basename(name);
	security_headers(ctx->msg, base, "application/octet-stream");
	soup_message_headers_replace(h, "Accept-Ranges", "bytes");
	if (ranged) {
		g_autofree gchar *cr = g_strdup_printf("bytes %" G_GUINT64_FORMAT
		                                       "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
		                                       start, end, size);
		g_clear_object(&in);
		in = qsim_artifact_store_open(artifacts, r->uuid, name, start, NULL, &error);
		if (in == NULL) {
			qsim_api_error_respond_gerror(ctx->msg, error);
			return;
		}
		soup_message_headers_replace(h, "Content-Range", cr);
		soup_server_message_set_status(ctx->msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
		send_start(ctx->msg, end - start + 1, g_steal_pointer(&in), g_object_unref,
		           read_stream);
		return;
	}
	soup_server_message_set_status(ctx->msg, SOUP_STATUS_OK, NULL);
	send_start(ctx->msg, size, g_steal_pointer(&in), g_object_unref, read_stream);
}

static GBytes *
read_tar(gpointer source, gsize max, GError **error)
{
	return qsim_api_tar_read(source, max, error);
}

void
qsim_api_artifacts_tarball(QsimApiContext *ctx)
{
	QsimConfig *config = qsim_api_server_get_config(ctx->server);
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = list_for(ctx, &r);
	g_autofree gchar *filename = NULL;
	QsimApiTar *tar;

	if (rows == NULL)
		return;
	tar = qsim_api_tar_new(qsim_artifact_store_new_for_config(config), r->uuid,
	                       g_steal_pointer(&rows));
	filename = g_strdup_printf("%s-artifacts.tar.gz", r->uuid);
	security_headers(ctx->msg, filename, "application/gzip");
	soup_server_message_set_status(ctx->msg, SOUP_STATUS_OK, NULL);
	send_start(ctx->msg, G_MAXUINT64, tar, (GDestroyNotify)qsim_api_tar_free, read_tar);
}
