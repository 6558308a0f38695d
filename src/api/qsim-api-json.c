#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"

/**
 * qsim_api_json_to_string:
 * @node: a JSON tree
 * @length: (out) (optional): the length of the text
 *
 * Returns: (transfer full): compact JSON text
 */
gchar *
qsim_api_json_to_string(JsonNode *node, gsize *length)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();

	json_generator_set_root(gen, node);
	return json_generator_to_data(gen, length);
}

/**
 * qsim_api_json_respond:
 * @msg: the message to answer
 * @status: the HTTP status
 * @node: (transfer none): the body
 *
 * Sets the status first: a response body without a status makes libsoup
 * send 500.
 */
void
qsim_api_json_respond(SoupServerMessage *msg, guint status, JsonNode *node)
{
	gsize len = 0;
	gchar *body = qsim_api_json_to_string(node, &len);

	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "application/json; charset=utf-8", SOUP_MEMORY_TAKE,
	                                 body, len);
}

static gboolean
content_type_is_json(SoupServerMessage *msg)
{
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	const gchar *ct = soup_message_headers_get_content_type(h, NULL);

	return ct != NULL && g_ascii_strcasecmp(ct, "application/json") == 0;
}

/**
 * qsim_api_json_read_object:
 * @msg: a POST or PUT message whose body has been read
 *
 * Checks, in this order, the media type (415), the size (413), the syntax
 * (400) and that the root is an object (422). On failure @msg is answered.
 *
 * Returns: (transfer full) (nullable): the root object, or %NULL when @msg
 * has been answered with an error
 */
JsonObject *
qsim_api_json_read_object(SoupServerMessage *msg)
{
	SoupMessageBody *body = soup_server_message_get_request_body(msg);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) error = NULL;
	JsonNode *root;
	gconstpointer data;
	gsize len = 0;

	if (!content_type_is_json(msg)) {
		qsim_api_error_respond(msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
		                       "unsupported_media_type",
		                       "The request body must be sent as application/json.");
		return NULL;
	}
	/* a chunked upload has no Content-Length for the early check to see */
	if (body->length > QSIM_API_MAX_BODY) {
		qsim_api_error_respond(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
		                       "payload_too_large",
		                       "The request body is larger than 1 MiB.");
		return NULL;
	}
	bytes = soup_message_body_flatten(body);
	data = g_bytes_get_data(bytes, &len);
	/* the body is not NUL-terminated: always pass its length */
	if (len == 0 || !json_parser_load_from_data(parser, data, (gssize)len, &error)) {
		qsim_api_error_respond(msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "The request body is not valid JSON.");
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		                       "The request body must be a JSON object.");
		return NULL;
	}
	return json_object_ref(json_node_get_object(root));
}

/**
 * qsim_api_json_get_string:
 * @out: (out) (transfer none): the string, or %NULL when absent and optional
 *
 * Reads @field only after checking that it holds a string: json-glib would
 * otherwise log a critical on a mismatch. Answers 422 naming @field.
 *
 * Returns: %FALSE when @msg has been answered with an error
 */
gboolean
qsim_api_json_get_string(SoupServerMessage *msg, JsonObject *obj, const gchar *field,
                         gboolean required, const gchar **out)
{
	JsonNode *node = json_object_get_member(obj, field);

	*out = NULL;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node)) {
		if (!required)
			return TRUE;
		qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		                       "Field '%s' is required.", field);
		return FALSE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		                       "Field '%s' must be a string.", field);
		return FALSE;
	}
	*out = json_node_get_string(node);
	return TRUE;
}

/**
 * qsim_api_json_get_int:
 * @present: (out): whether @field was given (a JSON null counts as absent)
 * @out: (out): its value
 *
 * Accepts only JSON integers: `json_object_get_int_member` would turn a
 * string or a float into a silent 0. Answers 422 naming @field.
 *
 * Returns: %FALSE when @msg has been answered with an error
 */
gboolean
qsim_api_json_get_int(SoupServerMessage *msg, JsonObject *obj, const gchar *field,
                      gboolean *present, gint64 *out)
{
	JsonNode *node = json_object_get_member(obj, field);

	*present = FALSE;
	*out = 0;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return TRUE;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
		qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error",
		                       "Field '%s' must be an integer.", field);
		return FALSE;
	}
	*present = TRUE;
	*out = json_node_get_int(node);
	return TRUE;
}

/**
 * qsim_api_json_timestamp:
 * @unix_ms: milliseconds since the epoch, or <= 0 for unset
 *
 * Returns: (transfer full) (nullable): ISO-8601 UTC with milliseconds and a
 * `Z`, or %NULL when unset
 */
gchar *
qsim_api_json_timestamp(gint64 unix_ms)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autofree gchar *base = NULL;

	if (unix_ms <= 0)
		return NULL;
	dt = g_date_time_new_from_unix_utc(unix_ms / 1000);
	if (dt == NULL)
		return NULL;
	base = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
	return g_strdup_printf("%s.%03dZ", base, (gint)(unix_ms % 1000));
}

/**
 * qsim_api_json_add_timestamp:
 *
 * Adds member @name as a timestamp string, or JSON null when unset.
 */
void
qsim_api_json_add_timestamp(JsonBuilder *b, const gchar *name, gint64 unix_ms)
{
	g_autofree gchar *ts = qsim_api_json_timestamp(unix_ms);

	json_builder_set_member_name(b, name);
	if (ts != NULL)
		json_builder_add_string_value(b, ts);
	else
		json_builder_add_null_value(b);
}

/**
 * qsim_api_json_append_string:
 * @out: the text being built
 * @value: (nullable): UTF-8 text, or %NULL for JSON null
 *
 * Appends @value as a JSON string literal. The hot paths (GET of a request,
 * lists) write JSON text directly: building a JsonNode tree costs a hash table
 * per object for a document that is serialised once.
 */
void
qsim_api_json_append_string(GString *out, const gchar *value)
{
	g_autofree gchar *valid = NULL;

	if (value == NULL) {
		g_string_append(out, "null");
		return;
	}
	/* never emit invalid JSON, whatever a row holds */
	if (!g_utf8_validate(value, -1, NULL))
		value = valid = g_utf8_make_valid(value, -1);
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)value; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		case '\r':
			g_string_append(out, "\\r");
			break;
		case '\t':
			g_string_append(out, "\\t");
			break;
		default:
			if (*p < 0x20)
				g_string_append_printf(out, "\\u%04x", *p);
			else
				g_string_append_c(out, (gchar)*p);
		}
	}
	g_string_append_c(out, '"');
}

/**
 * qsim_api_json_append_timestamp:
 *
 * Appends a timestamp string, or null when unset.
 */
void
qsim_api_json_append_timestamp(GString *out, gint64 unix_ms)
{
	g_autofree gchar *ts = qsim_api_json_timestamp(unix_ms);

	qsim_api_json_append_string(out, ts);
}

/**
 * qsim_api_json_respond_text:
 * @text: (transfer full): JSON text
 *
 * Like qsim_api_json_respond() for text built with the append helpers.
 */
void
qsim_api_json_respond_text(SoupServerMessage *msg, guint status, GString *text)
{
	gsize len = text->len;

	soup_server_message_set_status(msg, status, NULL);
	soup_server_message_set_response(msg, "application/json; charset=utf-8", SOUP_MEMORY_TAKE,
	                                 g_string_free(text, FALSE), len);
}
