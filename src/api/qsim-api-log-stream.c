#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-log-stream.h"
#include "api/qsim-api-mapping.h"
#include "common/qsim-error.h"

/* Enough to catch up quickly without one pump hogging the loop for long. */
#define PUMP_BATCH 500
#define PUMP_MAX_BATCHES 8

/*
 * One Server-Sent Events response for GET /requests/{uuid}/logs?follow=1.
 *
 * The message stays open with chunked encoding; each pump reads what is new
 * from the store, appends one chunk and unpauses the message. Pumps are
 * triggered at once by the store's signals (changes made in this process)
 * and by a poll timer (changes made by `qsimd agents` in another process).
 * Once the client is gone (`disconnected`/`finished`) the message is never
 * touched again.
 */
struct _QsimApiLogStream {
	GObject parent_instance;
	QsimApiServer *server; /* not owned: the server owns us until we end */
	QsimStore *store;
	SoupServerMessage *msg;
	gchar *uuid;
	gint64 last_seq;
	gint log_type;
	gint last_status; /* -1 before the first status event */
	gboolean gone;    /* the message must not be touched any more */
	gboolean ended;   /* the body is complete */
	gulong changed_id;
	gulong appended_id;
	gulong deleted_id;
	guint poll_id;
	guint keepalive_id;
	guint idle_id;
	guint keepalive_ms;
	guint64 data_version; /* the store's data version at the last poll */
	gboolean have_version;
	/* appended minus written is what waits in memory for a client that
	 * may have stopped reading: bounded, see write_text() */
	guint64 appended;
	guint64 written;
	gsize buffer_max;
	gboolean backlogged; /* holding back logs until the client drains */
};

G_DEFINE_TYPE(QsimApiLogStream, qsim_api_log_stream, G_TYPE_OBJECT)

static void
clear_source(guint *id)
{
	if (*id != 0) {
		g_source_remove(*id);
		*id = 0;
	}
}

/* Stops all work; the message itself is left alone. */
static void
teardown(QsimApiLogStream *self)
{
	clear_source(&self->poll_id);
	clear_source(&self->keepalive_id);
	clear_source(&self->idle_id);
	if (self->store != NULL) {
		g_clear_signal_handler(&self->changed_id, self->store);
		g_clear_signal_handler(&self->appended_id, self->store);
		g_clear_signal_handler(&self->deleted_id, self->store);
	}
}

static gboolean keepalive_cb(gpointer user_data);

static void
arm_keepalive(QsimApiLogStream *self)
{
	clear_source(&self->keepalive_id);
	self->keepalive_id = g_timeout_add(self->keepalive_ms, keepalive_cb, self);
}

/* The client stopped reading: buffering on is how one slow reader eats the
 * daemon's memory. It can resume later with Last-Event-ID. */
static void
cut(QsimApiLogStream *self)
{
	g_info("log stream %s: client is not reading, closing the stream", self->uuid);
	self->ended = TRUE;
	teardown(self);
	if (self->server == NULL || !qsim_api_server_abort_message(self->server, self->msg)) {
		soup_message_body_complete(soup_server_message_get_response_body(self->msg));
		soup_server_message_unpause(self->msg);
	}
}

static gboolean
pending_over(QsimApiLogStream *self, gsize bound)
{
	return self->buffer_max > 0 && self->appended - self->written >= bound;
}

/* Takes @text. */
static void
write_text(QsimApiLogStream *self, GString *text)
{
	SoupMessageBody *body;
	gsize len = text->len;

	if (self->gone || self->ended || len == 0) {
		g_string_free(text, TRUE);
		return;
	}
	if (self->buffer_max > 0 && self->appended - self->written >= self->buffer_max) {
		g_string_free(text, TRUE);
		cut(self);
		return;
	}
	self->appended += len;
	body = soup_server_message_get_response_body(self->msg);
	soup_message_body_append(body, SOUP_MEMORY_TAKE, g_string_free(text, FALSE), len);
	soup_server_message_unpause(self->msg);
	arm_keepalive(self);
}

static void schedule_pump(QsimApiLogStream *self);

/* Flow control: logs are read from the store only as fast as the client
 * takes them, so a backlog of any size costs at most the bound in memory. */
static void
on_wrote_body_data(SoupServerMessage *msg, guint chunk_size, gpointer user_data)
{
	QsimApiLogStream *self = user_data;

	self->written += chunk_size;
	if (self->backlogged && !pending_over(self, self->buffer_max / 2)) {
		self->backlogged = FALSE;
		schedule_pump(self);
	}
}

static void
append_event(GString *out, const gchar *event, gint64 id, JsonNode *data)
{
	g_autofree gchar *json = qsim_api_json_to_string(data, NULL);

	g_string_append_printf(out, "event: %s\n", event);
	if (id > 0)
		g_string_append_printf(out, "id: %" G_GINT64_FORMAT "\n", id);
	g_string_append_printf(out, "data: %s\n\n", json);
}

static void
finish(QsimApiLogStream *self, GString *out)
{
	teardown(self);
	if (self->gone || self->ended) {
		g_string_free(out, TRUE);
		return;
	}
	write_text(self, out);
	/* write_text() may have cut a client that stopped reading */
	if (self->ended)
		return;
	self->ended = TRUE;
	soup_message_body_complete(soup_server_message_get_response_body(self->msg));
	soup_server_message_unpause(self->msg);
}

static gboolean
append_new_logs(QsimApiLogStream *self, GString *out)
{
	for (guint batch = 0; batch < PUMP_MAX_BATCHES; batch++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) logs = qsim_store_read_logs(
		    self->store, self->uuid, self->last_seq, PUMP_BATCH, self->log_type, &error);

		if (logs == NULL) {
			if (!g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND))
				g_warning("log stream %s: %s", self->uuid, error->message);
			return FALSE;
		}
		for (guint i = 0; i < logs->len; i++) {
			const QsimLogEntry *e = logs->pdata[i];
			g_autoptr(JsonNode) node = qsim_api_mapping_log(e);

			append_event(out, "log", e->seq, node);
			self->last_seq = e->seq;
			/* the rest is read again once the client has caught up */
			if (self->buffer_max > 0 && out->len >= self->buffer_max) {
				self->backlogged = TRUE;
				return TRUE;
			}
		}
		if (logs->len < PUMP_BATCH)
			break;
	}
	return TRUE;
}

/* Read the status before the logs: an agent appends its last logs before it
 * finishes the request, so a final status read first means every log is
 * already visible to the read that follows. */
static void
pump(QsimApiLogStream *self)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	GString *out;

	if (self->gone || self->ended)
		return;
	/* on_wrote_body_data() pumps again once the client has caught up */
	if (self->backlogged)
		return;
	r = qsim_store_get_request(self->store, self->uuid, QSIM_STORE_MIN_PREFIX_API, &error);
	out = g_string_new(NULL);
	if (r == NULL) {
		/* deleted meanwhile: nothing more will come */
		if (!g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND)) {
			g_warning("log stream %s: %s", self->uuid, error->message);
			write_text(self, out);
			return;
		}
		finish(self, out);
		return;
	}
	if (!append_new_logs(self, out)) {
		finish(self, out);
		return;
	}
	/* more logs wait in the store: status and `end` must come after them */
	if (self->backlogged) {
		write_text(self, out);
		return;
	}
	if ((gint)r->status != self->last_status) {
		g_autoptr(JsonBuilder) b = json_builder_new_immutable();
		g_autoptr(JsonNode) node = NULL;

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "status");
		json_builder_add_string_value(b, qsim_status_to_string(r->status));
		json_builder_end_object(b);
		node = json_builder_get_root(b);
		append_event(out, "status", 0, node);
		self->last_status = (gint)r->status;
	}
	if (qsim_status_is_final(r->status)) {
		g_autoptr(JsonNode) node = qsim_api_mapping_end(r);

		append_event(out, "end", 0, node);
		finish(self, out);
		return;
	}
	write_text(self, out);
}

static gboolean
idle_pump_cb(gpointer user_data)
{
	QsimApiLogStream *self = user_data;
	g_autoptr(QsimApiLogStream) keep = g_object_ref(self);

	self->idle_id = 0;
	pump(self);
	return G_SOURCE_REMOVE;
}

/* Coalesce bursts of signals into one pump on the next loop iteration, and
 * never run store queries from inside another caller's signal emission. */
static void
schedule_pump(QsimApiLogStream *self)
{
	if (self->idle_id == 0 && !self->gone && !self->ended)
		self->idle_id = g_idle_add(idle_pump_cb, self);
}

/* Only other connections (agents in another process, the API's writer) are
 * seen here: the data version tells whether any of them committed since the
 * last poll, so an idle stream costs one PRAGMA per poll, not two queries. */
static gboolean
poll_cb(gpointer user_data)
{
	QsimApiLogStream *self = user_data;
	guint64 version = 0;

	if (qsim_store_get_data_version(self->store, &version, NULL)) {
		if (self->have_version && version == self->data_version)
			return G_SOURCE_CONTINUE;
		self->data_version = version;
		self->have_version = TRUE;
	}
	schedule_pump(self);
	return G_SOURCE_CONTINUE;
}

static gboolean
keepalive_cb(gpointer user_data)
{
	QsimApiLogStream *self = user_data;

	self->keepalive_id = 0;
	/* no progress for a whole keep-alive interval */
	if (self->backlogged && pending_over(self, self->buffer_max / 2)) {
		cut(self);
		return G_SOURCE_REMOVE;
	}
	write_text(self, g_string_new(": keep-alive\n\n"));
	return G_SOURCE_REMOVE;
}

static void
on_request_changed(QsimStore *store, const gchar *uuid, gint status, gpointer user_data)
{
	QsimApiLogStream *self = user_data;

	if (g_strcmp0(uuid, self->uuid) == 0)
		schedule_pump(self);
}

static void
on_logs_appended(QsimStore *store, const gchar *uuid, gint64 last_seq, gpointer user_data)
{
	QsimApiLogStream *self = user_data;

	if (g_strcmp0(uuid, self->uuid) == 0 && last_seq > self->last_seq)
		schedule_pump(self);
}

static void
on_request_deleted(QsimStore *store, const gchar *uuid, gpointer user_data)
{
	on_request_changed(store, uuid, -1, user_data);
}

/* The client went away or the response is complete: drop everything. */
static void
on_msg_done(SoupServerMessage *msg, gpointer user_data)
{
	QsimApiLogStream *self = user_data;
	g_autoptr(QsimApiLogStream) keep = g_object_ref(self);

	if (!self->ended)
		g_debug("log stream %s: client went away", self->uuid);
	self->gone = TRUE;
	teardown(self);
	if (self->server != NULL) {
		QsimApiServer *server = g_steal_pointer(&self->server);
		qsim_api_server_untrack_stream(server, G_OBJECT(self));
	}
}

static void
qsim_api_log_stream_dispose(GObject *object)
{
	QsimApiLogStream *self = QSIM_API_LOG_STREAM(object);

	teardown(self);
	if (self->msg != NULL)
		g_signal_handlers_disconnect_by_data(self->msg, self);
	g_clear_object(&self->msg);
	g_clear_object(&self->store);
	G_OBJECT_CLASS(qsim_api_log_stream_parent_class)->dispose(object);
}

static void
qsim_api_log_stream_finalize(GObject *object)
{
	QsimApiLogStream *self = QSIM_API_LOG_STREAM(object);

	g_free(self->uuid);
	G_OBJECT_CLASS(qsim_api_log_stream_parent_class)->finalize(object);
}

static void
qsim_api_log_stream_class_init(QsimApiLogStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_api_log_stream_dispose;
	object_class->finalize = qsim_api_log_stream_finalize;
}

static void
qsim_api_log_stream_init(QsimApiLogStream *self)
{
	self->last_status = -1;
}

/**
 * qsim_api_log_stream_new:
 * @server: the server; it keeps the stream alive until the stream ends
 * @msg: the GET message to answer with `text/event-stream`
 * @uuid: the full UUID of the request
 * @after_seq: send only chunks with a greater seq (resume point)
 * @log_type: a QsimLogType, or -1 for all
 *
 * Returns: (transfer full): a stream; call qsim_api_log_stream_start()
 */
QsimApiLogStream *
qsim_api_log_stream_new(QsimApiServer *server, SoupServerMessage *msg, const gchar *uuid,
                        gint64 after_seq, gint log_type)
{
	QsimApiLogStream *self = g_object_new(QSIM_TYPE_API_LOG_STREAM, NULL);
	guint poll_ms = 0;

	self->server = server;
	self->store = g_object_ref(qsim_api_server_get_store(server));
	self->msg = g_object_ref(msg);
	self->uuid = g_strdup(uuid);
	self->last_seq = after_seq;
	self->log_type = log_type;
	qsim_api_server_get_stream_intervals(server, &self->keepalive_ms, &poll_ms);
	return self;
}

static void
close_tracked(GObject *stream)
{
	qsim_api_log_stream_close(QSIM_API_LOG_STREAM(stream));
}

/**
 * qsim_api_log_stream_start:
 *
 * Sends the headers and the backlog, then keeps the message open until the
 * request is final, the client leaves, or the server stops. Must be called
 * from the route handler, on the main context.
 */
void
qsim_api_log_stream_start(QsimApiLogStream *self)
{
	SoupMessageHeaders *h = soup_server_message_get_response_headers(self->msg);
	guint keepalive_ms = 0, poll_ms = 0;

	guint max_streams = qsim_api_server_get_max_streams(self->server);

	if (max_streams > 0 && qsim_api_server_get_stream_count(self->server) >= max_streams) {
		qsim_api_error_respond(self->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
		                       "too_many_streams",
		                       "Too many log streams are open, try again later.");
		self->ended = TRUE;
		self->server = NULL;
		return;
	}
	qsim_api_server_get_stream_intervals(self->server, &keepalive_ms, &poll_ms);
	self->buffer_max = qsim_api_server_get_stream_buffer_limit(self->server);
	soup_server_message_set_status(self->msg, SOUP_STATUS_OK, NULL);
	soup_message_headers_set_content_type(h, "text/event-stream", NULL);
	soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
	soup_message_headers_replace(h, "Cache-Control", "no-cache");
	/* tells nginx not to buffer the stream */
	soup_message_headers_replace(h, "X-Accel-Buffering", "no");
	g_signal_connect_object(self->msg, "disconnected", G_CALLBACK(on_msg_done), self, 0);
	g_signal_connect_object(self->msg, "finished", G_CALLBACK(on_msg_done), self, 0);
	g_signal_connect_object(self->msg, "wrote-body-data", G_CALLBACK(on_wrote_body_data), self,
	                        0);
	self->changed_id =
	    g_signal_connect(self->store, "request-changed", G_CALLBACK(on_request_changed), self);
	self->appended_id =
	    g_signal_connect(self->store, "logs-appended", G_CALLBACK(on_logs_appended), self);
	self->deleted_id =
	    g_signal_connect(self->store, "request-deleted", G_CALLBACK(on_request_deleted), self);
	self->poll_id = g_timeout_add(poll_ms, poll_cb, self);
	qsim_api_server_track_stream(self->server, G_OBJECT(self), close_tracked);
	arm_keepalive(self);
	/* read before the first pump so that nothing committed after it is missed */
	self->have_version = qsim_store_get_data_version(self->store, &self->data_version, NULL);
	pump(self);
}

/**
 * qsim_api_log_stream_close:
 *
 * Ends the stream without an `end` event (the server is stopping); a client
 * resumes later with `Last-Event-ID`.
 */
void
qsim_api_log_stream_close(QsimApiLogStream *self)
{
	g_return_if_fail(QSIM_IS_API_LOG_STREAM(self));
	finish(self, g_string_new(NULL));
	self->server = NULL;
}
