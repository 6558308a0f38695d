#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>

#include "common/qsim-error.h"
#include "qsim-cli-follow.h"
#include "qsim-cli-json.h"
#include "qsim-sse-parser.h"

/* a stream that closes without an end event (server restart, proxy timeout) is
 * resumed from the last seq; give up after this many tries without progress */
#define QSIM_CLI_FOLLOW_MAX_RETRIES 10
#define QSIM_CLI_FOLLOW_RETRY_DELAY_S 1
#define QSIM_CLI_FOLLOW_READ_SIZE 8192

typedef struct {
	QsimCli *cli;
	gchar *uuid;
	gchar *log_type;
	QsimCliFollowFunc func;
	gpointer user_data;
	GCancellable *cancellable;
	GMainLoop *loop;
	QsimSseParser *parser;
	SoupMessage *msg;
	GInputStream *stream;
	GByteArray *error_body; /* the body of a non-200 reply */
	gchar *last_id;
	JsonNode *end;
	GError *error;
	guint retries;
	gboolean progressed;
} QsimCliFollowCtx;

static void qsim_cli_follow_connect(QsimCliFollowCtx *ctx);

static void
qsim_cli_follow_finish(QsimCliFollowCtx *ctx, GError *error)
{
	if (error != NULL && ctx->error == NULL)
		ctx->error = error;
	else if (error != NULL)
		g_error_free(error);
	g_main_loop_quit(ctx->loop);
}

static gboolean
qsim_cli_follow_event_cb(const gchar *event, const gchar *data, const gchar *id, gpointer user_data)
{
	QsimCliFollowCtx *ctx = user_data;
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(GError) error_local = NULL;

	if (g_strcmp0(event, "log") != 0 && g_strcmp0(event, "status") != 0 &&
	    g_strcmp0(event, "end") != 0)
		return TRUE; /* events added later by the server are not ours to judge */
	node = qsim_cli_json_parse_string(data, &error_local);
	if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
		/* TRANSLATORS: %s is the SSE event name, e.g. "log" */
		ctx->error = g_error_new(QSIM_ERROR, QSIM_ERROR_INVALID,
		                         _("the server sent an invalid “%s” event"), event);
		return FALSE;
	}
	if (id != NULL) {
		g_free(ctx->last_id);
		ctx->last_id = g_strdup(id);
	}
	ctx->progressed = TRUE;
	ctx->func(event, json_node_get_object(node), ctx->user_data);
	if (g_strcmp0(event, "end") == 0) {
		ctx->end = g_steal_pointer(&node);
		return FALSE;
	}
	return TRUE;
}

static gboolean
qsim_cli_follow_retry_cb(gpointer user_data)
{
	qsim_cli_follow_connect(user_data);
	return G_SOURCE_REMOVE;
}

/* the stream ended or broke before the end event: resume, or give up */
static void
qsim_cli_follow_lost(QsimCliFollowCtx *ctx, GError *error)
{
	g_clear_object(&ctx->stream);
	g_clear_object(&ctx->msg);
	g_clear_pointer(&ctx->parser, qsim_sse_parser_free);
	if (ctx->progressed)
		ctx->retries = 0;
	ctx->progressed = FALSE;
	if (g_cancellable_is_cancelled(ctx->cancellable) ||
	    ++ctx->retries > QSIM_CLI_FOLLOW_MAX_RETRIES) {
		if (error == NULL)
			error = g_error_new(QSIM_ERROR, QSIM_ERROR_IO,
			                    _("the server closed the log stream of %s"), ctx->uuid);
		qsim_cli_follow_finish(ctx, error);
		return;
	}
	if (error != NULL) {
		g_debug("log stream lost, retrying: %s", error->message);
		g_error_free(error);
	}
	g_timeout_add_seconds(QSIM_CLI_FOLLOW_RETRY_DELAY_S, qsim_cli_follow_retry_cb, ctx);
}

static void
qsim_cli_follow_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QsimCliFollowCtx *ctx = user_data;
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GBytes) bytes = NULL;
	gsize len = 0;
	const guint8 *data;

	bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error_local);
	if (bytes == NULL) {
		if (g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			qsim_cli_follow_finish(ctx,
			                       g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED,
			                                           error_local->message));
			return;
		}
		qsim_cli_follow_lost(ctx, g_steal_pointer(&error_local));
		return;
	}
	data = g_bytes_get_data(bytes, &len);
	if (ctx->error_body != NULL) {
		if (len > 0 && ctx->error_body->len < 1024 * 1024) {
			g_byte_array_append(ctx->error_body, data, len);
		} else {
			g_autoptr(GBytes) body = g_byte_array_free_to_bytes(ctx->error_body);
			GError *error = NULL;
			ctx->error_body = NULL;
			qsim_cli_error_from_reply(ctx->cli, ctx->msg, body, &error);
			qsim_cli_follow_finish(ctx, error);
			return;
		}
	} else if (len == 0) {
		qsim_cli_follow_lost(ctx, NULL);
		return;
	} else if (!qsim_sse_parser_feed(ctx->parser, data, len)) {
		if (ctx->end == NULL && ctx->error == NULL)
			ctx->error =
			    g_error_new_literal(QSIM_ERROR, QSIM_ERROR_INVALID,
			                        _("the server sent an invalid event stream"));
		qsim_cli_follow_finish(ctx, NULL);
		return;
	}
	g_input_stream_read_bytes_async(ctx->stream, QSIM_CLI_FOLLOW_READ_SIZE, G_PRIORITY_DEFAULT,
	                                ctx->cancellable, qsim_cli_follow_read_cb, ctx);
}

static void
qsim_cli_follow_send_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QsimCliFollowCtx *ctx = user_data;
	g_autoptr(GError) error_local = NULL;
	guint status;

	ctx->stream = soup_session_send_finish(SOUP_SESSION(source), res, &error_local);
	if (ctx->stream == NULL) {
		if (g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			qsim_cli_follow_finish(ctx,
			                       g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED,
			                                           error_local->message));
			return;
		}
		/* TRANSLATORS: %s is the server URL, the second %s the system's reason */
		qsim_cli_follow_lost(ctx, g_error_new(QSIM_ERROR, QSIM_ERROR_IO,
		                                      _("cannot connect to %s: %s"), ctx->cli->url,
		                                      error_local->message));
		return;
	}
	status = soup_message_get_status(ctx->msg);
	if (status != SOUP_STATUS_OK) {
		/* a 4xx is final, retrying would only repeat it: read the error body */
		ctx->error_body = g_byte_array_new();
	} else {
		ctx->parser = qsim_sse_parser_new(qsim_cli_follow_event_cb, ctx);
	}
	g_input_stream_read_bytes_async(ctx->stream, QSIM_CLI_FOLLOW_READ_SIZE, G_PRIORITY_DEFAULT,
	                                ctx->cancellable, qsim_cli_follow_read_cb, ctx);
}

static void
qsim_cli_follow_connect(QsimCliFollowCtx *ctx)
{
	g_autofree gchar *path = NULL;
	GError *error = NULL;
	SoupMessageHeaders *headers;

	if (ctx->log_type != NULL)
		path = g_strdup_printf("/requests/%s/logs?follow=1&log_type=%s", ctx->uuid,
		                       ctx->log_type);
	else
		path = g_strdup_printf("/requests/%s/logs?follow=1", ctx->uuid);
	ctx->msg = qsim_cli_new_message(ctx->cli, "GET", path, &error);
	if (ctx->msg == NULL) {
		qsim_cli_follow_finish(ctx, error);
		return;
	}
	headers = soup_message_get_request_headers(ctx->msg);
	soup_message_headers_replace(headers, "Accept", "text/event-stream");
	if (ctx->last_id != NULL)
		soup_message_headers_replace(headers, "Last-Event-ID", ctx->last_id);
	g_debug("GET %s (Last-Event-ID %s)", path, ctx->last_id != NULL ? ctx->last_id : "-");
	soup_session_send_async(ctx->cli->session, ctx->msg, G_PRIORITY_DEFAULT, ctx->cancellable,
	                        qsim_cli_follow_send_cb, ctx);
}

/**
 * qsim_cli_follow:
 * @cli: a client
 * @uuid: a full request UUID (the caller validated it)
 * @log_type: (nullable): a validated log type to filter on
 * @func: called for every log, status and end event as it arrives
 * @user_data: passed to @func
 * @cancellable: (nullable): cancels the stream, e.g. from a SIGINT handler
 * @end: (out) (optional) (transfer full): the data of the end event
 * @error: return location for a #GError
 *
 * Streams a request's logs over Server-Sent Events until the request is final,
 * running the default main context meanwhile. Broken streams are resumed with
 * `Last-Event-ID`, so no entry is shown twice or lost.
 *
 * Returns: %TRUE once the end event arrived; %FALSE with %QSIM_ERROR_CANCELLED
 * if @cancellable fired
 */
gboolean
qsim_cli_follow(QsimCli *cli, const gchar *uuid, const gchar *log_type, QsimCliFollowFunc func,
                gpointer user_data, GCancellable *cancellable, JsonNode **end, GError **error)
{
	QsimCliFollowCtx ctx = {
	    .cli = cli,
	    .uuid = g_strdup(uuid),
	    .log_type = g_strdup(log_type),
	    .func = func,
	    .user_data = user_data,
	    .cancellable = cancellable != NULL ? g_object_ref(cancellable) : g_cancellable_new(),
	    .loop = g_main_loop_new(NULL, FALSE),
	};
	gboolean ok;

	qsim_cli_follow_connect(&ctx);
	g_main_loop_run(ctx.loop);

	ok = ctx.end != NULL;
	if (!ok && ctx.error != NULL)
		g_propagate_error(error, g_steal_pointer(&ctx.error));
	else if (!ok)
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
		            _("the server closed the log stream of %s"), uuid);
	if (ok && end != NULL)
		*end = g_steal_pointer(&ctx.end);

	g_clear_error(&ctx.error);
	g_clear_pointer(&ctx.end, json_node_unref);
	g_clear_pointer(&ctx.parser, qsim_sse_parser_free);
	g_clear_pointer(&ctx.error_body, g_byte_array_unref);
	g_clear_object(&ctx.stream);
	g_clear_object(&ctx.msg);
	g_object_unref(ctx.cancellable);
	g_main_loop_unref(ctx.loop);
	g_free(ctx.uuid);
	g_free(ctx.log_type);
	g_free(ctx.last_id);
	return ok;
}
