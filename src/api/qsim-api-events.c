#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-error.h"
#include "api/qsim-api-events.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "common/qsim-error.h"

#define PUMP_BATCH 500
#define PUMP_MAX_BATCHES 8

/*
 * GET /events: the store's request journal (request_events, written by
 * triggers in whichever process made the change) as Server-Sent Events.
 *
 * Like a log stream (qsim-api-log-stream.c): chunked, pumped on this
 * process's store signals at once and on "changed-elsewhere" for commits by
 * other processes (`qsimd agents`, the API's own writer thread), read only as
 * fast as the client takes it, cut when a client stops reading, and counted
 * against the server's stream cap. The journal, not the signals, is what is
 * sent: a signal only says "look now", so nothing a signal misses is lost and
 * a client that reconnects with Last-Event-ID gets exactly what it missed.
 */
struct _QsimApiEventStream {
	GObject parent_instance;
	QsimApiServer *server; /* not owned: the server owns us until we end */
	QsimStore *store;
	SoupServerMessage *msg;
	gint64 last_id;
	gboolean check_gap;      /* the resume point may have been trimmed away */
	gboolean from_elsewhere; /* the resume point is past the journal's newest event */
	gboolean gone;
	gboolean ended;
	gboolean watching;
	gulong changed_id;
	gulong deleted_id;
	gulong elsewhere_id;
	guint keepalive_id;
	guint idle_id;
	guint keepalive_ms;
	guint poll_ms;
	guint64 appended;
	guint64 written;
	gsize buffer_max;
	gboolean backlogged;
};

G_DEFINE_TYPE(QsimApiEventStream, qsim_api_event_stream, G_TYPE_OBJECT)

static void
clear_source(guint *id)
{
	if (*id != 0) {
		g_source_remove(*id);
		*id = 0;
	}
}

static void
teardown(QsimApiEventStream *self)
{
	clear_source(&self->keepalive_id);
	clear_source(&self->idle_id);
	if (self->store == NULL)
		return;
	g_clear_signal_handler(&self->changed_id, self->store);
	g_clear_signal_handler(&self->deleted_id, self->store);
	g_clear_signal_handler(&self->elsewhere_id, self->store);
	if (self->watching) {
		self->watching = FALSE;
		qsim_store_unwatch_changes(self->store);
	}
}

static gboolean keepalive_cb(gpointer user_data);

static void
arm_keepalive(QsimApiEventStream *self)
{
	clear_source(&self->keepalive_id);
	self->keepalive_id = g_timeout_add(self->keepalive_ms, keepalive_cb, self);
}

/* A client that stops reading is closed, not buffered for: it resumes with Last-Event-ID. */
static void
cut(QsimApiEventStream *self)
{
	g_info("event stream: client is not reading, closing the stream");
	self->ended = TRUE;
	teardown(self);
	if (self->server == NULL || !qsim_api_server_abort_message(self->server, self->msg)) {
		soup_message_body_complete(soup_server_message_get_response_body(self->msg));
		soup_server_message_unpause(self->msg);
	}
}

static gboolean
pending_over(QsimApiEventStream *self, gsize bound)
{
	return self->buffer_max > 0 && self->appended - self->written >= bound;
}

/* Takes @text. */
static void
write_text(QsimApiEventStream *self, GString *text)
{
	gsize len = text->len;

	if (self->gone || self->ended || len == 0) {
		g_string_free(text, TRUE);
		return;
	}
	if (pending_over(self, self->buffer_max)) {
		g_string_free(text, TRUE);
		cut(self);
		return;
	}
	self->appended += len;
	soup_message_body_append(soup_server_message_get_response_body(self->msg), SOUP_MEMORY_TAKE,
	                         g_string_free(text, FALSE), len);
	soup_server_message_unpause(self->msg);
	arm_keepalive(self);
}

static void schedule_pump(QsimApiEventStream *self);

static void
on_wrote_body_data(SoupServerMessage *msg, guint chunk_size, gpointer user_data)
{
	QsimApiEventStream *self = user_data;

	self->written += chunk_size;
	if (self->backlogged && !pending_over(self, self->buffer_max / 2)) {
		self->backlogged = FALSE;
		schedule_pump(self);
	}
}

static void
append_event(GString *out, const QsimRequestEvent *e)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonNode) node = NULL;
	g_autofree gchar *json = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "uuid");
	json_builder_add_string_value(b, e->uuid);
	json_builder_set_member_name(b, "status");
	if (e->status != NULL)
		json_builder_add_string_value(b, e->status);
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "at");
	json_builder_add_int_value(b, e->at_ms);
	json_builder_end_object(b);
	node = json_builder_get_root(b);
	json = qsim_api_json_to_string(node, NULL);
	/* kinds come from a CHECK constraint: never client text */
	g_string_append_printf(out, "id: %" G_GINT64_FORMAT "\nevent: request-%s\ndata: %s\n\n",
	                       e->id, g_str_equal(e->kind, "status") ? "status" : e->kind, json);
}

static void
pump(QsimApiEventStream *self)
{
	GString *out;

	if (self->gone || self->ended || self->backlogged)
		return;
	out = g_string_new(NULL);
	for (guint batch = 0; batch < PUMP_MAX_BATCHES; batch++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) events =
		    qsim_store_list_request_events(self->store, self->last_id, PUMP_BATCH, &error);

		if (events == NULL) {
			/* a busy database now is not a reason to drop the client */
			g_warning("event stream: %s", error->message);
			break;
		}
		if (self->check_gap && events->len > 0) {
			const QsimRequestEvent *first = events->pdata[0];

			/* trimmed past the resume point: the client must list afresh */
			if (first->id > self->last_id + 1)
				g_string_append_printf(out, "event: reset\ndata: {}\n\n");
			self->check_gap = FALSE;
		}
		for (guint i = 0; i < events->len; i++) {
			const QsimRequestEvent *e = events->pdata[i];

			append_event(out, e);
			self->last_id = e->id;
			if (self->buffer_max > 0 && out->len >= self->buffer_max) {
				self->backlogged = TRUE;
				write_text(self, out);
				return;
			}
		}
		if (events->len < PUMP_BATCH)
			break;
	}
	write_text(self, out);
}

static gboolean
idle_pump_cb(gpointer user_data)
{
	QsimApiEventStream *self = user_data;
	g_autoptr(QsimApiEventStream) keep = g_object_ref(self);

	self->idle_id = 0;
	pump(self);
	return G_SOURCE_REMOVE;
}

/* Bursts of signals make one read, outside the emitter's own call. */
static void
schedule_pump(QsimApiEventStream *self)
{
	if (self->idle_id == 0 && !self->gone && !self->ended)
		self->idle_id = g_idle_add(idle_pump_cb, self);
}

static gboolean
keepalive_cb(gpointer user_data)
{
	QsimApiEventStream *self = user_data;

	self->keepalive_id = 0;
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
	schedule_pump(user_data);
}

static void
on_request_deleted(QsimStore *store, const gchar *uuid, gpointer user_data)
{
	schedule_pump(user_data);
}

static void
on_changed_elsewhere(QsimStore *store, gpointer user_data)
{
	schedule_pump(user_data);
}

static void
on_msg_done(SoupServerMessage *msg, gpointer user_data)
{
	QsimApiEventStream *self = user_data;
	g_autoptr(QsimApiEventStream) keep = g_object_ref(self);

	self->gone = TRUE;
	teardown(self);
	if (self->server != NULL) {
		QsimApiServer *server = g_steal_pointer(&self->server);
		qsim_api_server_untrack_stream(server, G_OBJECT(self));
	}
}

static void
qsim_api_event_stream_dispose(GObject *object)
{
	QsimApiEventStream *self = QSIM_API_EVENT_STREAM(object);

	teardown(self);
	if (self->msg != NULL)
		g_signal_handlers_disconnect_by_data(self->msg, self);
	g_clear_object(&self->msg);
	g_clear_object(&self->store);
	G_OBJECT_CLASS(qsim_api_event_stream_parent_class)->dispose(object);
}

static void
qsim_api_event_stream_class_init(QsimApiEventStreamClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = qsim_api_event_stream_dispose;
}

static void
qsim_api_event_stream_init(QsimApiEventStream *self)
{
}

/**
 * qsim_api_event_stream_new:
 * @after_id: send events with a greater id; -1 = only events from now on
 *
 * Returns: (transfer full): a stream; call qsim_api_event_stream_start()
 */
QsimApiEventStream *
qsim_api_event_stream_new(QsimApiServer *server, SoupServerMessage *msg, gint64 after_id)
{
	QsimApiEventStream *self = g_object_new(QSIM_TYPE_API_EVENT_STREAM, NULL);

	self->server = server;
	self->store = g_object_ref(qsim_api_server_get_store(server));
	self->msg = g_object_ref(msg);
	self->last_id = after_id;
	self->check_gap = after_id > 0;
	qsim_api_server_get_stream_intervals(server, &self->keepalive_ms, &self->poll_ms);
	return self;
}

static void
close_tracked(GObject *stream)
{
	qsim_api_event_stream_close(QSIM_API_EVENT_STREAM(stream));
}

/**
 * qsim_api_event_stream_start:
 *
 * Answers 503 past the server's stream cap; else sends the headers and what
 * the journal holds after the resume point, and stays open.
 */
void
qsim_api_event_stream_start(QsimApiEventStream *self)
{
	SoupMessageHeaders *h = soup_server_message_get_response_headers(self->msg);
	guint max_streams = qsim_api_server_get_max_streams(self->server);
	g_autoptr(GError) error = NULL;

	if (max_streams > 0 && qsim_api_server_get_stream_count(self->server) >= max_streams) {
		qsim_api_error_respond(self->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
		                       "too_many_streams",
		                       "Too many event streams are open, try again later.");
		self->ended = TRUE;
		self->server = NULL;
		return;
	}
	if (self->last_id < 0) {
		/* read before the signals are connected: nothing after it is missed */
		self->last_id = qsim_store_get_last_request_event_id(self->store, &error);
		if (self->last_id < 0) {
			qsim_api_error_respond_gerror(self->msg, error);
			self->ended = TRUE;
			self->server = NULL;
			return;
		}
	} else if (self->check_gap) {
		/* an id the journal never reached comes from another database (replaced
		 * by `qsimd migrate-store`, or restored): waiting for ids above it would
		 * skip everything up to it, so the client lists afresh */
		gint64 newest = qsim_store_get_last_request_event_id(self->store, &error);

		if (newest >= 0 && self->last_id > newest) {
			self->last_id = newest;
			self->check_gap = FALSE;
			self->from_elsewhere = TRUE;
		}
		g_clear_error(&error);
	}
	self->buffer_max = qsim_api_server_get_stream_buffer_limit(self->server);
	soup_server_message_set_status(self->msg, SOUP_STATUS_OK, NULL);
	soup_message_headers_set_content_type(h, "text/event-stream", NULL);
	soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
	soup_message_headers_replace(h, "Cache-Control", "no-cache");
	soup_message_headers_replace(h, "X-Accel-Buffering", "no");
	g_signal_connect_object(self->msg, "disconnected", G_CALLBACK(on_msg_done), self, 0);
	g_signal_connect_object(self->msg, "finished", G_CALLBACK(on_msg_done), self, 0);
	g_signal_connect_object(self->msg, "wrote-body-data", G_CALLBACK(on_wrote_body_data), self,
	                        0);
	self->changed_id =
	    g_signal_connect(self->store, "request-changed", G_CALLBACK(on_request_changed), self);
	self->deleted_id =
	    g_signal_connect(self->store, "request-deleted", G_CALLBACK(on_request_deleted), self);
	self->elsewhere_id = g_signal_connect(self->store, "changed-elsewhere",
	                                      G_CALLBACK(on_changed_elsewhere), self);
	qsim_store_watch_changes(self->store, MAX(self->poll_ms, 1));
	self->watching = TRUE;
	qsim_api_server_track_stream(self->server, G_OBJECT(self), close_tracked);
	/* the client learns at once that the stream is open, even with no events */
	write_text(self, g_string_new(": ready\n\n"));
	if (self->from_elsewhere)
		write_text(self, g_string_new("event: reset\ndata: {}\n\n"));
	pump(self);
}

/**
 * qsim_api_event_stream_close:
 *
 * Ends the stream (the server is stopping); the client resumes with Last-Event-ID.
 */
void
qsim_api_event_stream_close(QsimApiEventStream *self)
{
	g_return_if_fail(QSIM_IS_API_EVENT_STREAM(self));
	teardown(self);
	if (!self->gone && !self->ended) {
		self->ended = TRUE;
		soup_message_body_complete(soup_server_message_get_response_body(self->msg));
		soup_server_message_unpause(self->msg);
	}
	self->server = NULL;
}

/* GET /events: Last-Event-ID (what a reconnecting client sends) wins over ?after= */
void
qsim_api_events_get(QsimApiContext *ctx)
{
	const gchar *last_id = soup_message_headers_get_one(
	    soup_server_message_get_request_headers(ctx->msg), "Last-Event-ID");
	guint64 after = 0;
	gint64 resume = -1;
	g_autoptr(QsimApiEventStream) s = NULL;

	if (last_id != NULL) {
		if (!g_ascii_string_to_unsigned(last_id, 10, 0, G_MAXINT64, &after, NULL)) {
			qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			                       "Header 'Last-Event-ID' must be an event id.");
			return;
		}
		resume = (gint64)after;
	} else if (qsim_api_context_get_query(ctx, "after") != NULL) {
		if (!qsim_api_context_query_uint(ctx, "after", 0, G_MAXINT64, 0, &after))
			return;
		resume = (gint64)after;
	}
	s = qsim_api_event_stream_new(ctx->server, ctx->msg, resume);
	qsim_api_event_stream_start(s);
}
