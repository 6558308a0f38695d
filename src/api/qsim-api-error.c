#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <json-glib/json-glib.h>

#include "api/qsim-api-error.h"
#include "common/qsim-error.h"
#include "common/qsim-text.h"

/* room for any message of ours plus a quoted input that was already cut to size */
#define QSIM_API_ERROR_MAX_CHARS 1024

/* Every error leaves the server in this one shape, so clients parse a single form.
 * Messages often quote client input (a path, a field name, a VM name): json-glib
 * copies invalid UTF-8 through, so every message is made safe here, whatever
 * its caller did. */
static void
respond_literal(SoupServerMessage *msg, guint status, const gchar *code, const gchar *raw)
{
	g_autofree gchar *message = qsim_utf8_safe_dup(raw, -1, QSIM_API_ERROR_MAX_CHARS);
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	gchar *body;
	gsize len = 0;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "error");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "code");
	json_builder_add_string_value(b, code);
	json_builder_set_member_name(b, "message");
	json_builder_add_string_value(b, message);
	json_builder_end_object(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	body = json_generator_to_data(gen, &len);
	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "application/json; charset=utf-8", SOUP_MEMORY_TAKE,
	                                 body, len);
}

/**
 * qsim_api_error_respond:
 * @msg: the message to answer
 * @status: an HTTP status
 * @code: the stable error code of docs/api.md, e.g. `not_found`
 * @format: printf format of one human sentence
 *
 * Sets @status and the JSON error body `{"error":{"code","message"}}` on @msg.
 */
void
qsim_api_error_respond(SoupServerMessage *msg, guint status, const gchar *code, const gchar *format,
                       ...)
{
	va_list args;
	g_autofree gchar *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	respond_literal(msg, status, code, message);
}

/**
 * qsim_api_error_status_for:
 * @error: a %QSIM_ERROR error
 *
 * Returns: the HTTP status that docs/api.md assigns to @error's code.
 */
guint
qsim_api_error_status_for(const GError *error)
{
	if (error->domain != QSIM_ERROR)
		return SOUP_STATUS_INTERNAL_SERVER_ERROR;
	switch ((QsimError)error->code) {
	case QSIM_ERROR_NOT_FOUND:
		return SOUP_STATUS_NOT_FOUND;
	case QSIM_ERROR_INVALID:
		return SOUP_STATUS_UNPROCESSABLE_ENTITY;
	case QSIM_ERROR_CONFLICT:
	case QSIM_ERROR_AMBIGUOUS:
		return SOUP_STATUS_CONFLICT;
	case QSIM_ERROR_UNAUTHORIZED:
		return SOUP_STATUS_UNAUTHORIZED;
	case QSIM_ERROR_BUSY:
	case QSIM_ERROR_STORE:
		return SOUP_STATUS_SERVICE_UNAVAILABLE;
	default:
		return SOUP_STATUS_INTERNAL_SERVER_ERROR;
	}
}

/**
 * qsim_api_error_respond_gerror:
 * @msg: the message to answer
 * @error: the error that ended the handler
 *
 * Maps @error to its HTTP status and code. Messages of user-facing codes
 * (not found, invalid, conflict, ambiguous) are passed through; store and
 * internal errors are logged and replaced by a generic sentence so that no
 * path, SQL or errno reaches the client.
 */
void
qsim_api_error_respond_gerror(SoupServerMessage *msg, const GError *error)
{
	guint status = qsim_api_error_status_for(error);

	switch (status) {
	case SOUP_STATUS_NOT_FOUND:
		respond_literal(msg, status, "not_found", error->message);
		return;
	case SOUP_STATUS_UNPROCESSABLE_ENTITY:
		respond_literal(msg, status, "validation_error", error->message);
		return;
	case SOUP_STATUS_CONFLICT:
		respond_literal(msg, status,
		                error->code == QSIM_ERROR_AMBIGUOUS ? "ambiguous" : "conflict",
		                error->message);
		return;
	case SOUP_STATUS_UNAUTHORIZED:
		respond_literal(msg, status, "unauthorized", error->message);
		return;
	case SOUP_STATUS_SERVICE_UNAVAILABLE:
		g_warning("database unavailable: %s", error->message);
		respond_literal(msg, status, "unavailable",
		                "The database is unavailable, try again later.");
		return;
	default:
		g_warning("internal error: %s", error->message);
		respond_literal(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal_error",
		                "The server failed to handle the request.");
		return;
	}
}
