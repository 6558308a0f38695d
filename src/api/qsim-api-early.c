#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-cors.h"
#include "api/qsim-api-early.h"
#include "api/qsim-api-error.h"
#include "common/qsim-text.h"

/*
 * Refusing a request before its body is read. libsoup 3 reads the whole
 * request body after the early handler has run, even when that handler has
 * already set an error status, and only then writes the answer: a client that
 * declares a 10 GB upload, or an unauthenticated one, would still be read to
 * the end (and chunked uploads buffered in full). So a refused request takes
 * its connection away from libsoup, gets its answer written here, and is
 * closed.
 */

/* How long, and how much, a refused client may keep sending after its answer
 * (a "lingering close", as nginx does). Closing a socket with unread data
 * makes the kernel send a reset, which can destroy the answer before the
 * client has read it, and many clients (libsoup's among them) only read the
 * answer once they have sent their whole body. The drained bytes are
 * discarded, never buffered or parsed, and both bounds hold whatever the
 * client declared. */
#define QSIM_API_EARLY_LINGER_MS 2000
#define QSIM_API_EARLY_LINGER_MAX (4 * 1024 * 1024)
#define QSIM_API_EARLY_READ_SIZE 16384

typedef struct {
	GIOStream *stream;
	GSocket *socket; /* nullable: to send EOF after the answer */
	GBytes *answer;
	GCancellable *cancellable;
	guint timeout_id;
	gsize drained;
	guint8 buf[QSIM_API_EARLY_READ_SIZE];
} Refusal;

static void
refusal_free(Refusal *r)
{
	g_clear_handle_id(&r->timeout_id, g_source_remove);
	g_clear_pointer(&r->answer, g_bytes_unref);
	g_clear_object(&r->cancellable);
	/* closing the stream is what ends the connection: never leave it open */
	if (r->stream != NULL)
		g_io_stream_close(r->stream, NULL, NULL);
	g_clear_object(&r->stream);
	g_clear_object(&r->socket);
	g_free(r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Refusal, refusal_free)

static gboolean
linger_expired(gpointer user_data)
{
	Refusal *r = user_data;

	r->timeout_id = 0;
	g_cancellable_cancel(r->cancellable);
	return G_SOURCE_REMOVE;
}

static void drained(GObject *source, GAsyncResult *res, gpointer user_data);

/* @r: (transfer full) */
static void
read_more(GInputStream *in, Refusal *r)
{
	g_input_stream_read_async(in, r->buf, sizeof r->buf, G_PRIORITY_DEFAULT, r->cancellable,
	                          drained, r);
}

static void
drained(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(Refusal) r = user_data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, NULL);

	if (n <= 0)
		return;
	r->drained += (gsize)n;
	if (r->drained >= QSIM_API_EARLY_LINGER_MAX)
		return;
	read_more(G_INPUT_STREAM(source), g_steal_pointer(&r));
}

static void
written(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(Refusal) r = user_data;
	GInputStream *in;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, NULL))
		return;
	/* EOF after the answer: the client stops waiting and hangs up, ending the drain */
	if (r->socket != NULL)
		g_socket_shutdown(r->socket, FALSE, TRUE, NULL);
	in = g_io_stream_get_input_stream(r->stream);
	r->timeout_id = g_timeout_add(QSIM_API_EARLY_LINGER_MS, linger_expired, r);
	read_more(in, g_steal_pointer(&r));
}

static void
append_header(const char *name, const char *value, gpointer user_data)
{
	GString *out = user_data;

	/* ours below: the body length is known, and the connection ends here */
	if (g_ascii_strcasecmp(name, "Content-Length") == 0 ||
	    g_ascii_strcasecmp(name, "Connection") == 0 ||
	    g_ascii_strcasecmp(name, "Transfer-Encoding") == 0)
		return;
	g_string_append_printf(out, "%s: %s\r\n", name, value);
}

/* What libsoup would have written for @msg's status, headers and body; plus a close. */
static GBytes *
serialize_answer(SoupServerMessage *msg)
{
	guint status = soup_server_message_get_status(msg);
	const gchar *reason = soup_server_message_get_reason_phrase(msg);
	SoupMessageBody *body = soup_server_message_get_response_body(msg);
	g_autoptr(GBytes) content = soup_message_body_flatten(body);
	GString *out = g_string_new(NULL);
	gsize len = 0;
	gconstpointer data = g_bytes_get_data(content, &len);

	g_string_append_printf(out, "HTTP/1.1 %u %s\r\n", status,
	                       reason != NULL ? reason : soup_status_get_phrase(status));
	soup_message_headers_foreach(soup_server_message_get_response_headers(msg), append_header,
	                             out);
	g_string_append_printf(
	    out, "Content-Length: %" G_GSIZE_FORMAT "\r\nConnection: close\r\n\r\n", len);
	g_string_append_len(out, data, (gssize)len);
	return g_string_free_to_bytes(out);
}

/* Connections accepted through soup_server_accept_iostream() have no GSocket
 * in libsoup, and the stolen stream is libsoup's wrapper around ours. */
static GSocket *
socket_of(GIOStream *stream)
{
	g_autoptr(GIOStream) base = NULL;

	if (G_IS_SOCKET_CONNECTION(stream))
		return g_object_ref(g_socket_connection_get_socket(G_SOCKET_CONNECTION(stream)));
	if (g_object_class_find_property(G_OBJECT_GET_CLASS(stream), "base-iostream") == NULL)
		return NULL;
	g_object_get(stream, "base-iostream", &base, NULL);
	if (base == NULL || !G_IS_SOCKET_CONNECTION(base))
		return NULL;
	return g_object_ref(g_socket_connection_get_socket(G_SOCKET_CONNECTION(base)));
}

/**
 * qsim_api_early_has_body:
 * @msg: a message whose headers have just been read
 *
 * Returns: %TRUE when a request body follows the headers on the wire
 */
gboolean
qsim_api_early_has_body(SoupServerMessage *msg)
{
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);

	switch (soup_message_headers_get_encoding(h)) {
	case SOUP_ENCODING_CONTENT_LENGTH:
		return soup_message_headers_get_content_length(h) > 0;
	case SOUP_ENCODING_NONE:
		return FALSE;
	default:
		return TRUE;
	}
}

/**
 * qsim_api_early_answer:
 * @msg: a message whose status, headers and body are its final answer, from
 *   the early handler or a got-chunk handler
 *
 * Sends that answer now, without reading the rest of the request body, and
 * closes the connection. @msg is finished for libsoup and must not be used
 * afterwards. A message without a body to skip is left to libsoup, which
 * keeps its connection alive.
 */
void
qsim_api_early_answer(SoupServerMessage *msg)
{
	g_autoptr(Refusal) r = NULL;
	g_autoptr(GBytes) answer = NULL;
	g_autofree gchar *shown = NULL;
	GIOStream *stream;
	GOutputStream *out;
	GCancellable *cancellable;
	GSocket *socket;
	gsize len = 0;
	gconstpointer data;

	if (!qsim_api_early_has_body(msg))
		return;
	answer = serialize_answer(msg);
	/* the path is raw client bytes: never put them in the log as they are */
	shown = qsim_utf8_safe_dup(g_uri_get_path(soup_server_message_get_uri(msg)), -1, 256);
	g_info("%s %s %u (refused before the body was read)", soup_server_message_get_method(msg),
	       shown, soup_server_message_get_status(msg));
	socket = soup_server_message_get_socket(msg);
	if (socket != NULL)
		g_object_ref(socket);
	stream = soup_server_message_steal_connection(msg);
	if (stream == NULL) {
		g_clear_object(&socket);
		return;
	}
	r = g_new0(Refusal, 1);
	r->stream = stream;
	if (socket == NULL)
		socket = socket_of(stream);
	r->socket = socket;
	r->answer = g_steal_pointer(&answer);
	r->cancellable = g_cancellable_new();
	out = g_io_stream_get_output_stream(stream);
	data = g_bytes_get_data(r->answer, &len);
	cancellable = r->cancellable;
	g_output_stream_write_all_async(out, data, len, G_PRIORITY_DEFAULT, cancellable, written,
	                                g_steal_pointer(&r));
}

typedef struct {
	gsize max;
	gsize received;
	gboolean refused;
	gchar **origins;
} ChunkLimit;

static void
chunk_limit_free(gpointer data, GClosure *closure)
{
	ChunkLimit *l = data;

	g_strfreev(l->origins);
	g_free(l);
}

static void
on_got_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
	ChunkLimit *l = user_data;
	g_autofree gchar *limit = NULL;

	l->received += g_bytes_get_size(chunk);
	if (l->refused || l->received <= l->max)
		return;
	l->refused = TRUE;
	limit = g_format_size_full(l->max, G_FORMAT_SIZE_IEC_UNITS);
	qsim_api_error_respond(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "payload_too_large",
	                       "The request body is larger than %s.", limit);
	if (l->origins != NULL)
		qsim_api_cors_apply(msg, (const gchar *const *)l->origins);
	/* last: stealing the connection may drop this handler, and @l with it */
	qsim_api_early_answer(msg);
}

/**
 * qsim_api_early_limit_chunks:
 * @msg: a message whose headers have just been read
 * @max_body: the largest body accepted, in bytes
 * @origins: (nullable) (array zero-terminated=1): the CORS origins, or %NULL
 *   when CORS is off
 *
 * A chunked upload declares no length for the early handler to check: count
 * its bytes as they arrive and answer 413 as soon as they pass @max_body,
 * instead of buffering the whole upload first. Bodies with a Content-Length
 * are checked against it before they are read, and need no watch.
 */
void
qsim_api_early_limit_chunks(SoupServerMessage *msg, gsize max_body, const gchar *const *origins)
{
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	ChunkLimit *l;

	if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH ||
	    !qsim_api_early_has_body(msg))
		return;
	l = g_new0(ChunkLimit, 1);
	l->max = max_body;
	l->origins = g_strdupv((gchar **)origins);
	g_signal_connect_data(msg, "got-chunk", G_CALLBACK(on_got_chunk), l, chunk_limit_free, 0);
}
