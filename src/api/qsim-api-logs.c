#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-log-stream.h"
#include "api/qsim-api-mapping.h"

#define QSIM_API_LOGS_MAX 10000

static gboolean
wants_stream(QsimApiContext *ctx, gboolean *out)
{
	const gchar *follow = qsim_api_context_get_query(ctx, "follow");
	const gchar *accept = soup_message_headers_get_list(
	    soup_server_message_get_request_headers(ctx->msg), "Accept");

	*out = FALSE;
	if (follow != NULL) {
		if (g_strcmp0(follow, "1") == 0 || g_ascii_strcasecmp(follow, "true") == 0) {
			*out = TRUE;
		} else if (g_strcmp0(follow, "0") != 0 &&
		           g_ascii_strcasecmp(follow, "false") != 0) {
			qsim_api_error_respond(
			    ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			    "Query parameter 'follow' must be 1, 0, true or false.");
			return FALSE;
		}
		return TRUE;
	}
	*out = accept != NULL && strstr(accept, "text/event-stream") != NULL;
	return TRUE;
}

/* Last-Event-ID wins over after_seq: it is what a reconnecting EventSource sends. */
static gboolean
resume_point(QsimApiContext *ctx, guint64 after_seq, gint64 *out)
{
	const gchar *last_id = soup_message_headers_get_one(
	    soup_server_message_get_request_headers(ctx->msg), "Last-Event-ID");
	guint64 n = 0;

	*out = (gint64)after_seq;
	if (last_id == NULL)
		return TRUE;
	if (!g_ascii_string_to_unsigned(last_id, 10, 0, G_MAXINT64, &n, NULL)) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "Header 'Last-Event-ID' must be a log sequence number.");
		return FALSE;
	}
	*out = (gint64)n;
	return TRUE;
}

/* Only a page cut by bytes gets a Link: a short page or a full one of @limit
 * rows continues with after_seq as before, so old clients keep working. */
static void
add_next_link(QsimApiContext *ctx, const gchar *uuid, const gchar *log_type, guint limit,
              gint64 last_seq)
{
	g_autoptr(GString) link = g_string_new(NULL);

	g_string_append_printf(link, "</requests/%s/logs?", uuid);
	if (log_type != NULL)
		g_string_append_printf(link, "log_type=%s&", log_type);
	g_string_append_printf(link, "limit=%u&after_seq=%" G_GINT64_FORMAT ">; rel=\"next\"",
	                       limit, last_seq);
	soup_message_headers_replace(soup_server_message_get_response_headers(ctx->msg), "Link",
	                             link->str);
}

void
qsim_api_logs_get(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	const gchar *log_type_s = qsim_api_context_get_query(ctx, "log_type");
	QsimLogType log_type = QSIM_LOG_STDOUT;
	gint type_filter = -1;
	guint64 limit = 0, after_seq = 0;
	gint64 resume = 0;
	gboolean stream = FALSE;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	gboolean cut = FALSE;
	GString *out;

	if (log_type_s != NULL) {
		if (!qsim_log_type_from_string(log_type_s, &log_type)) {
			qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			                       "Query parameter 'log_type' must be one of boot, "
			                       "command, stdout, stderr, system.");
			return;
		}
		type_filter = (gint)log_type;
	}
	if (!qsim_api_context_query_uint(ctx, "limit", 1, QSIM_API_LOGS_MAX,
	                                 QSIM_STORE_LOGS_DEFAULT_LIMIT, &limit) ||
	    !qsim_api_context_query_uint(ctx, "after_seq", 0, G_MAXINT64, 0, &after_seq) ||
	    !wants_stream(ctx, &stream) || !resume_point(ctx, after_seq, &resume))
		return;
	r = qsim_api_requests_resolve(ctx);
	if (r == NULL)
		return;
	if (stream) {
		g_autoptr(QsimApiLogStream) s =
		    qsim_api_log_stream_new(ctx->server, ctx->msg, r->uuid, resume, type_filter);
		qsim_api_log_stream_start(s);
		return;
	}
	/* the store stops at the budget in raw bytes; escaping and base64 can make
	 * the JSON larger, so the text is cut again below */
	logs = qsim_store_read_logs_page(store, r->uuid, resume, (guint)limit, type_filter,
	                                 QSIM_API_RESPONSE_MAX_BYTES, &cut, &error);
	if (logs == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return;
	}
	out = g_string_sized_new(4096);
	g_string_append_c(out, '[');
	for (guint i = 0; i < logs->len; i++) {
		gsize mark = out->len;

		if (i > 0)
			g_string_append_c(out, ',');
		qsim_api_mapping_append_log(out, logs->pdata[i]);
		if (i > 0 && out->len + 1 > QSIM_API_RESPONSE_MAX_BYTES) {
			g_string_truncate(out, mark);
			g_ptr_array_set_size(logs, i);
			cut = TRUE;
			break;
		}
	}
	g_string_append_c(out, ']');
	if (cut)
		add_next_link(ctx, r->uuid, log_type_s, (guint)limit,
		              ((const QsimLogEntry *)logs->pdata[logs->len - 1])->seq);
	qsim_api_json_respond_text(ctx->msg, SOUP_STATUS_OK, out);
}
