#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-mapping.h"
#include "api/qsim-api-offload.h"
#include "api/qsim-api-submit.h"
#include "api/qsim-api-upload.h"
#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"
#include "common/qsim-text.h"
#include "common/qsim-units.h"
#include "common/qsim-vm-name.h"
#include "store/qsim-store-hosts.h"

#define QSIM_API_LIST_DEFAULT 50
#define QSIM_API_LIST_MAX 1000

/**
 * qsim_api_requests_resolve:
 * @ctx: a context whose route has a `{uuid}` segment
 *
 * Looks up the request named by a full UUID or a unique prefix of at least
 * 8 characters. Answers 400 for a malformed id, 404 and 409 `ambiguous`.
 *
 * Returns: (transfer full) (nullable): the request, or %NULL when @ctx->msg
 * has been answered
 */
QsimRequest *
qsim_api_requests_resolve(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(GError) error = NULL;
	QsimRequest *r =
	    qsim_store_get_request(store, ctx->param, QSIM_STORE_MIN_PREFIX_API, &error);

	if (r != NULL)
		return r;
	if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_INVALID)) {
		/* the path segment is raw client bytes (%ff decodes to 0xff): quote it safely */
		g_autofree gchar *shown = qsim_utf8_safe_dup(ctx->param, -1, 64);
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "'%s' is not a request UUID or a prefix of at least %u "
		                       "hexadecimal characters.",
		                       shown, QSIM_STORE_MIN_PREFIX_API);
		return NULL;
	}
	qsim_api_error_respond_gerror(ctx->msg, error);
	return NULL;
}

/* Submit-time VM check against the catalogues the agents published: a request
 * for a VM no host can boot would only fail later in an agent, so refuse it
 * while the client is still listening. The API's own disk plays no part. */
static gboolean
validate_vm(QsimApiContext *ctx, const gchar *vm_name)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;

	if (!qsim_vm_name_validate(vm_name, &error)) {
		qsim_api_error_respond(
		    ctx->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		    "Field 'vm_name' must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.");
		return FALSE;
	}
	rows = qsim_store_list_host_vms(store, vm_name, NULL, &error);
	if (rows == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return FALSE;
	}
	for (guint i = 0; i < rows->len; i++) {
		if (((const QsimHostVm *)g_ptr_array_index(rows, i))->valid)
			return TRUE;
	}
	if (rows->len == 0)
		qsim_api_error_respond(
		    ctx->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		    "Field 'vm_name': no VM named '%s' (see GET /vms).", vm_name);
	else
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
		                       "validation_error",
		                       "Field 'vm_name': VM '%s' has an invalid configuration "
		                       "(see GET /vms).",
		                       vm_name);
	return FALSE;
}

/* New work is refused below MIN_FREE_DISK, so that the space left serves the
 * deletes, cancels and purges that free more (they are never refused here). */
static gboolean
check_disk_reserve(QsimApiContext *ctx)
{
	g_autofree gchar *reason = NULL;

	if (qsim_disk_reserve_check(qsim_api_server_get_disk_reserve(ctx->server), NULL, &reason))
		return TRUE;
	qsim_api_error_respond(ctx->msg, SOUP_STATUS_INSUFFICIENT_STORAGE, "insufficient_storage",
	                       "New requests are refused: %s. Free space, e.g. delete finished "
	                       "requests (DELETE /requests?before=7d, qsim-ctl purge).",
	                       reason);
	g_debug("submit refused: %s", reason);
	return FALSE;
}

static void
respond_request(SoupServerMessage *msg, const QsimRequest *r)
{
	GString *out = g_string_sized_new(512);

	qsim_api_mapping_append_request(out, r);
	qsim_api_json_respond_text(msg, SOUP_STATUS_OK, out);
}

static void
respond_created(SoupServerMessage *msg, const QsimRequest *r)
{
	g_autofree gchar *location = g_strdup_printf("/requests/%s", r->uuid);
	GString *out = g_string_sized_new(128);

	g_string_append(out, "{\"uuid\":");
	qsim_api_json_append_string(out, r->uuid);
	g_string_append_printf(out,
	                       ",\"status\":\"%s\",\"message\":\"Request created successfully\"}",
	                       qsim_status_to_string(r->status));
	soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
	                             location);
	qsim_api_json_respond_text(msg, SOUP_STATUS_CREATED, out);
}

/* A POST waiting for the writer thread: the message is paused meanwhile. */
typedef struct {
	SoupServerMessage *msg;
	QsimStore *store;
	gboolean gone;
	gchar *upload_id; /* nullable: a spool to discard if the insert fails */
} PendingCreate;

static void
on_create_client_gone(SoupServerMessage *msg, gpointer user_data)
{
	((PendingCreate *)user_data)->gone = TRUE;
}

static void
create_done(const QsimRequest *r, const GError *error, gpointer user_data)
{
	PendingCreate *p = user_data;

	/* the insert went through the writer's own connection, whose signals nobody
	 * hears; tell in-process listeners (agents of `qsimd all`, streams) here */
	if (r != NULL)
		g_signal_emit_by_name(p->store, "request-changed", r->uuid, (gint)r->status);
	/* a message whose client is gone is finished: touching it would be a bug */
	if (!p->gone) {
		if (r != NULL)
			respond_created(p->msg, r);
		else
			qsim_api_error_respond_gerror(p->msg, error);
		soup_server_message_unpause(p->msg);
	}
	if (r == NULL && p->upload_id != NULL) {
		g_autoptr(GError) local = NULL;

		if (!qsim_store_upload_discard(p->store, p->upload_id, &local))
			g_warning("cannot discard upload %s: %s", p->upload_id, local->message);
	}
	g_signal_handlers_disconnect_by_data(p->msg, p);
	g_object_unref(p->msg);
	g_object_unref(p->store);
	g_free(p->upload_id);
	g_free(p);
}

void
qsim_api_requests_create(QsimApiContext *ctx)
{
	QsimConfig *config = qsim_api_server_get_config(ctx->server);
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	QsimApiWriter *writer = qsim_api_server_get_writer(ctx->server);
	guint max_timeout = qsim_config_get_max_timeout(config);
	QsimApiUpload *upload = qsim_api_upload_get(ctx->msg);
	g_autoptr(JsonObject) body = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_auto(QsimApiSubmit) submit = {0};
	const gchar *vm_name;
	const gchar *commands;
	const gchar *upload_id = NULL;
	gint64 timeout;

	if (upload != NULL) {
		gsize len = 0;
		const gchar *json = qsim_api_upload_get_request(upload, &len);
		QsimApiBodyFault fault = QSIM_API_BODY_FAULT_SYNTAX;

		if (json == NULL) {
			qsim_api_error_respond(
			    ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			    qsim_api_upload_is_complete(upload)
			        ? "The multipart body has no 'request' part (the JSON fields)."
			        : "The multipart body ended before its closing boundary.");
			return;
		}
		body = qsim_api_body_parse_object(json, len, &fault, &error);
		if (body == NULL) {
			qsim_api_error_respond(
			    ctx->msg,
			    fault == QSIM_API_BODY_FAULT_SYNTAX ? SOUP_STATUS_BAD_REQUEST
			                                        : SOUP_STATUS_UNPROCESSABLE_ENTITY,
			    fault == QSIM_API_BODY_FAULT_SYNTAX ? "bad_request"
			                                        : "validation_error",
			    "%s", error->message);
			return;
		}
		upload_id = qsim_api_upload_get_id(upload);
	} else {
		body = qsim_api_json_read_object(ctx->msg);
	}
	if (body == NULL)
		return;
	if (!qsim_api_submit_parse(body, qsim_config_get_default_timeout(config), max_timeout,
	                           &submit, &error)) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
		                       "validation_error", "%s", error->message);
		return;
	}
	vm_name = submit.vm_name;
	commands = submit.commands;
	timeout = submit.timeout;
	if (!validate_vm(ctx, vm_name))
		return;
	if (!check_disk_reserve(ctx))
		return;
	if (writer != NULL) {
		PendingCreate *p = g_new0(PendingCreate, 1);

		p->msg = g_object_ref(ctx->msg);
		p->store = g_object_ref(store);
		g_signal_connect(p->msg, "disconnected", G_CALLBACK(on_create_client_gone), p);
		g_signal_connect(p->msg, "finished", G_CALLBACK(on_create_client_gone), p);
		soup_server_message_pause(ctx->msg);
		if (upload_id != NULL) {
			/* the writer's transaction takes it, or create_done discards it */
			p->upload_id = g_strdup(upload_id);
			qsim_api_upload_take(upload);
		}
		qsim_api_writer_create_request_full(writer, vm_name, commands, timeout,
		                                    submit.artifacts, upload_id, create_done, p);
		return;
	}
	r = qsim_store_create_request_full(store, vm_name, commands, timeout, submit.artifacts,
	                                   upload_id, &error);
	if (r != NULL && upload != NULL)
		qsim_api_upload_take(upload);
	if (r == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return;
	}
	respond_created(ctx->msg, r);
}

static void
append_query(GString *s, const gchar *key, const gchar *value)
{
	g_autofree gchar *escaped = NULL;

	if (value == NULL)
		return;
	escaped = g_uri_escape_string(value, NULL, FALSE);
	g_string_append_printf(s, "%s=%s&", key, escaped);
}

void
qsim_api_requests_list(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	const gchar *status = qsim_api_context_get_query(ctx, "status");
	const gchar *vm_name = qsim_api_context_get_query(ctx, "vm_name");
	const gchar *before = qsim_api_context_get_query(ctx, "before");
	const gchar *text = qsim_api_context_get_query(ctx, "q");
	QsimRequestFilter filter;
	QsimStatus st = QSIM_STATUS_PENDING;
	guint64 limit = 0;
	gboolean has_more = FALSE;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	GString *out;

	qsim_request_filter_init(&filter);
	if (status != NULL) {
		if (!qsim_status_from_string(status, &st)) {
			qsim_api_error_respond(
			    ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			    "Query parameter 'status' must be a request status.");
			return;
		}
		filter.status = st;
	}
	if (!qsim_api_context_query_uint(ctx, "limit", 1, QSIM_API_LIST_MAX, QSIM_API_LIST_DEFAULT,
	                                 &limit))
		return;
	filter.limit = (guint)limit;
	filter.vm_name = vm_name;
	filter.before_uuid = before;
	if (text != NULL &&
	    (strlen(text) < QSIM_REQUEST_FILTER_TEXT_MIN ||
	     strlen(text) > QSIM_REQUEST_FILTER_TEXT_MAX || !g_utf8_validate(text, -1, NULL))) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "Query parameter 'q' must be 3 to 256 bytes of UTF-8.");
		return;
	}
	filter.text = text;
	/* bounds what the store loads; the JSON is cut again below, as escaping grows it */
	filter.max_bytes = QSIM_API_RESPONSE_MAX_BYTES;
	rows = qsim_store_list_requests(store, &filter, &has_more, &error);
	if (rows == NULL) {
		if (before != NULL && (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND) ||
		                       g_error_matches(error, QSIM_ERROR, QSIM_ERROR_INVALID))) {
			qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			                       "Query parameter 'before' must be the full UUID of "
			                       "an existing request.");
			return;
		}
		qsim_api_error_respond_gerror(ctx->msg, error);
		return;
	}
	out = g_string_sized_new(512 * (rows->len + 1));
	g_string_append_c(out, '[');
	for (guint i = 0; i < rows->len; i++) {
		gsize mark = out->len;

		if (i > 0)
			g_string_append_c(out, ',');
		qsim_api_mapping_append_request(out, rows->pdata[i]);
		if (i > 0 && out->len + 1 > QSIM_API_RESPONSE_MAX_BYTES) {
			g_string_truncate(out, mark);
			g_ptr_array_set_size(rows, i);
			has_more = TRUE;
			break;
		}
	}
	g_string_append_c(out, ']');
	if (has_more && rows->len > 0) {
		const QsimRequest *last = rows->pdata[rows->len - 1];
		g_autoptr(GString) link = g_string_new("</requests?");

		append_query(link, "status", status);
		append_query(link, "vm_name", vm_name);
		append_query(link, "q", text);
		g_string_append_printf(link, "limit=%u&before=%s>; rel=\"next\"", (guint)limit,
		                       last->uuid);
		soup_message_headers_replace(soup_server_message_get_response_headers(ctx->msg),
		                             "Link", link->str);
	}
	qsim_api_json_respond_text(ctx->msg, SOUP_STATUS_OK, out);
}

void
qsim_api_requests_get(QsimApiContext *ctx)
{
	g_autoptr(QsimRequest) r = qsim_api_requests_resolve(ctx);

	if (r == NULL)
		return;
	respond_request(ctx->msg, r);
}

/* PUT .../status and DELETE: a transition, a cancel or a removal, off the main loop */
typedef struct {
	gchar *uuid;
	QsimStatus to;
	gboolean remove;     /* DELETE of a finished request */
	gboolean cancel;     /* DELETE of an unfinished one (the seed's cancel) */
	QsimRequest *result; /* the request after the transition */
} StatusJob;

static void
status_job_free(StatusJob *j)
{
	g_free(j->uuid);
	if (j->result != NULL)
		qsim_request_free(j->result);
	g_free(j);
}

static gboolean
status_write(QsimStore *store, gpointer data, GError **error)
{
	StatusJob *j = data;

	if (j->remove)
		return qsim_store_delete_request(store, j->uuid, error);
	if (j->cancel)
		j->result = qsim_store_cancel_request(store, j->uuid, error);
	else
		j->result = qsim_store_set_status(store, j->uuid, j->to, error);
	return j->result != NULL;
}

static void
status_done(SoupServerMessage *msg, QsimStore *server_store, gboolean offloaded, gpointer data,
            const GError *error)
{
	StatusJob *j = data;

	/* through another connection, nobody in this process heard it: the agents of
	 * `qsimd all` and the log streams act on these signals at once */
	if (offloaded && error == NULL) {
		if (j->remove)
			g_signal_emit_by_name(server_store, "request-deleted", j->uuid);
		else
			g_signal_emit_by_name(server_store, "request-changed", j->uuid,
			                      (gint)j->result->status);
	}
	if (msg == NULL)
		return;
	if (error != NULL)
		qsim_api_error_respond_gerror(msg, error);
	else if (j->remove)
		soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, NULL);
	else
		respond_request(msg, j->result);
}

void
qsim_api_requests_set_status(QsimApiContext *ctx)
{
	g_autoptr(JsonObject) body = qsim_api_json_read_object(ctx->msg);
	g_autoptr(QsimRequest) r = NULL;
	const gchar *status = NULL;
	QsimStatus to = QSIM_STATUS_PENDING;
	StatusJob *j;

	if (body == NULL)
		return;
	if (!qsim_api_json_get_string(ctx->msg, body, "status", TRUE, &status))
		return;
	if (!qsim_status_from_string(status, &to) ||
	    (to != QSIM_STATUS_CANCELLED && to != QSIM_STATUS_HOLD && to != QSIM_STATUS_PENDING &&
	     to != QSIM_STATUS_RUNNING)) {
		qsim_api_error_respond(
		    ctx->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		    "Field 'status' must be one of cancelled, hold, pending, running.");
		return;
	}
	r = qsim_api_requests_resolve(ctx);
	if (r == NULL)
		return;
	j = g_new0(StatusJob, 1);
	j->uuid = g_strdup(r->uuid);
	j->to = to;
	qsim_api_offload_write(ctx, status_write, status_done, j, (GDestroyNotify)status_job_free);
}

void
qsim_api_requests_delete(QsimApiContext *ctx)
{
	g_autoptr(QsimRequest) r = qsim_api_requests_resolve(ctx);
	StatusJob *j;

	if (r == NULL)
		return;
	j = g_new0(StatusJob, 1);
	j->uuid = g_strdup(r->uuid);
	/* the seed's DELETE cancelled; on a finished request there is nothing to
	 * cancel, so it removes the request and its logs instead */
	j->remove = qsim_status_is_final(r->status);
	j->cancel = !j->remove;
	qsim_api_offload_write(ctx, status_write, status_done, j, (GDestroyNotify)status_job_free);
}

/* `before` is an age (7d: finished more than 7 days ago; 0: before now) or a time */
static gboolean
parse_before(QsimStore *store, const gchar *text, gint64 *out_ms)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autoptr(GTimeZone) utc = NULL;
	gint64 age = 0;

	if (qsim_duration_parse(text, &age, NULL)) {
		*out_ms = qsim_store_now_ms(store) - age;
		return TRUE;
	}
	utc = g_time_zone_new_utc();
	dt = g_date_time_new_from_iso8601(text, utc);
	if (dt == NULL)
		return FALSE;
	*out_ms = g_date_time_to_unix(dt) * 1000 + g_date_time_get_microsecond(dt) / 1000;
	return TRUE;
}

static void
respond_purged(SoupServerMessage *msg, guint deleted, gboolean more, gint64 before_ms)
{
	GString *out = g_string_sized_new(128);

	g_string_append_printf(out, "{\"deleted\":%u,\"more\":%s,\"before\":", deleted,
	                       more ? "true" : "false");
	qsim_api_json_append_timestamp(out, before_ms);
	g_string_append_c(out, '}');
	qsim_api_json_respond_text(msg, SOUP_STATUS_OK, out);
}

typedef struct {
	gint status;
	gint64 before_ms;
	guint limit;
	guint deleted;
	gboolean more;
} PurgeJob;

static gboolean
purge_write(QsimStore *store, gpointer data, GError **error)
{
	PurgeJob *j = data;

	return qsim_store_purge_requests(store, j->status, j->before_ms, j->limit, &j->deleted,
	                                 &j->more, error);
}

static void
purge_done(SoupServerMessage *msg, QsimStore *server_store, gboolean offloaded, gpointer data,
           const GError *error)
{
	PurgeJob *j = data;

	if (msg == NULL)
		return;
	if (error != NULL)
		qsim_api_error_respond_gerror(msg, error);
	else
		respond_purged(msg, j->deleted, j->more, j->before_ms);
}

/**
 * qsim_api_requests_purge:
 *
 * `DELETE /requests?before=&status=&limit=`: deletes finished requests and
 * their logs, at most `limit` (1000) per call in one short transaction, and
 * says whether more remain. Every parameter is checked and an unknown one is
 * refused: a typo must never widen a bulk delete.
 */
void
qsim_api_requests_purge(QsimApiContext *ctx)
{
	static const gchar *const known[] = {"before", "status", "limit", NULL};
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	const gchar *status = qsim_api_context_get_query(ctx, "status");
	const gchar *before = qsim_api_context_get_query(ctx, "before");
	g_autoptr(GError) error = NULL;
	GHashTableIter iter;
	gpointer key = NULL;
	QsimStatus st = QSIM_STATUS_DONE;
	gint64 before_ms = 0;
	guint64 limit = 0;

	g_hash_table_iter_init(&iter, ctx->query);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_strv_contains(known, key)) {
			g_autofree gchar *shown = qsim_utf8_safe_dup(key, -1, 64);

			qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			                       "Unknown query parameter '%s' (use before, status "
			                       "and limit).",
			                       shown);
			return;
		}
	}
	if (before == NULL || !parse_before(store, before, &before_ms)) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "Query parameter 'before' is required: an age such as 7d, "
		                       "12h or 0 (everything finished until now), or an ISO-8601 "
		                       "time.");
		return;
	}
	if (status != NULL &&
	    (!qsim_status_from_string(status, &st) || !qsim_status_is_final(st))) {
		qsim_api_error_respond(
		    ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		    "Query parameter 'status' must be done, failed or cancelled: "
		    "only finished requests can be deleted.");
		return;
	}
	if (!qsim_api_context_query_uint(ctx, "limit", 1, QSIM_STORE_PURGE_MAX_BATCH,
	                                 QSIM_STORE_PURGE_MAX_BATCH, &limit))
		return;
	{
		/* a batch deletes up to 1000 requests and their logs: tens of ms of write
		 * transaction that must not stall every other call on the main loop */
		PurgeJob *j = g_new0(PurgeJob, 1);

		j->status = status != NULL ? (gint)st : -1;
		j->before_ms = before_ms;
		j->limit = (guint)limit;
		qsim_api_offload_write(ctx, purge_write, purge_done, j, g_free);
	}
}
