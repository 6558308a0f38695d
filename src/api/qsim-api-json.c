#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-submit.h"

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
 * (400, strict RFC 8259 through qsim_json_gate_check()) and that the root is
 * an object (422). On failure @msg is answered.
 *
 * Returns: (transfer full) (nullable): the root object, or %NULL when @msg
 * has been answered with an error
 */
JsonObject *
qsim_api_json_read_object(SoupServerMessage *msg)
{
	SoupMessageBody *body = soup_server_message_get_request_body(msg);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	QsimApiBodyFault fault = QSIM_API_BODY_FAULT_SYNTAX;
	JsonObject *obj;
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
	obj = qsim_api_body_parse_object(data, len, &fault, &error);
	if (obj == NULL) {
		if (fault == QSIM_API_BODY_FAULT_SYNTAX)
			qsim_api_error_respond(msg, SOUP_STATUS_BAD_REQUEST, "bad_request", "%s",
			                       error->message);
		else
			qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
			                       "validation_error", "%s", error->message);
	}
	return obj;
}

/**
 * qsim_api_json_get_string:
 * @out: (out) (transfer none): the string, or %NULL when absent and optional
 *
 * Like qsim_api_body_get_string(), answering 422 naming @field.
 *
 * Returns: %FALSE when @msg has been answered with an error
 */
gboolean
qsim_api_json_get_string(SoupServerMessage *msg, JsonObject *obj, const gchar *field,
                         gboolean required, const gchar **out)
{
	g_autoptr(GError) error = NULL;

	if (qsim_api_body_get_string(obj, field, required, out, &error))
		return TRUE;
	qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error", "%s",
	                       error->message);
	return FALSE;
}

/**
 * qsim_api_json_get_int:
 * @present: (out): whether @field was given (a JSON null counts as absent)
 * @out: (out): its value
 *
 * Like qsim_api_body_get_int(), answering 422 naming @field.
 *
 * Returns: %FALSE when @msg has been answered with an error
 */
gboolean
qsim_api_json_get_int(SoupServerMessage *msg, JsonObject *obj, const gchar *field,
                      gboolean *present, gint64 *out)
{
	g_autoptr(GError) error = NULL;

	if (qsim_api_body_get_int(obj, field, present, out, &error))
		return TRUE;
	qsim_api_error_respond(msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "validation_error", "%s",
	                       error->message);
	return FALSE;
}

/* 9999-12-31T23:59:59Z: GDateTime's (and ISO-8601's four-digit) limit */
#define QSIM_API_MAX_UNIX_S G_GINT64_CONSTANT(253402300799)

static void
put_digits(gchar *out, guint value, guint width)
{
	for (guint i = width; i > 0; i--) {
		out[i - 1] = (gchar)('0' + value % 10);
		value /= 10;
	}
}

/* Howard Hinnant's civil_from_days: days since 1970-01-01 to y/m/d (proleptic Gregorian) */
static void
civil_from_days(gint64 days, guint *year, guint *month, guint *day)
{
	gint64 z = days + 719468;
	gint64 era = (z >= 0 ? z : z - 146096) / 146097;
	guint doe = (guint)(z - era * 146097);
	guint yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	guint doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	guint mp = (5 * doy + 2) / 153;

	*day = doy - (153 * mp + 2) / 5 + 1;
	*month = mp < 10 ? mp + 3 : mp - 9;
	*year = (guint)(yoe + era * 400 + (*month <= 2 ? 1 : 0));
}

/*
 * Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into @out (QSIM_API_TIMESTAMP_LEN + 1
 * bytes). By hand rather than g_date_time_format() + printf: this runs twice
 * per request object, and profiling GET /requests/{uuid} showed that pair as
 * a third of the handler's instructions.
 */
static gboolean
format_timestamp(gint64 unix_ms, gchar *out)
{
	gint64 secs = unix_ms / 1000;
	gint64 days = secs / 86400;
	guint sod = (guint)(secs % 86400);
	guint year, month, day;

	if (unix_ms <= 0 || secs > QSIM_API_MAX_UNIX_S)
		return FALSE;
	civil_from_days(days, &year, &month, &day);
	put_digits(out, year, 4);
	out[4] = '-';
	put_digits(out + 5, month, 2);
	out[7] = '-';
	put_digits(out + 8, day, 2);
	out[10] = 'T';
	put_digits(out + 11, sod / 3600, 2);
	out[13] = ':';
	put_digits(out + 14, sod / 60 % 60, 2);
	out[16] = ':';
	put_digits(out + 17, sod % 60, 2);
	out[19] = '.';
	put_digits(out + 20, (guint)(unix_ms % 1000), 3);
	out[23] = 'Z';
	out[24] = '\0';
	return TRUE;
}

/**
 * qsim_api_json_timestamp:
 * @unix_ms: milliseconds since the epoch, or <= 0 for unset
 *
 * Returns: (transfer full) (nullable): ISO-8601 UTC with milliseconds and a
 * `Z`, or %NULL when unset or past year 9999
 */
gchar *
qsim_api_json_timestamp(gint64 unix_ms)
{
	gchar buf[QSIM_API_TIMESTAMP_LEN + 1];

	if (!format_timestamp(unix_ms, buf))
		return NULL;
	return g_strndup(buf, QSIM_API_TIMESTAMP_LEN);
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
	const gchar *run;
	const gchar *p;

	if (value == NULL) {
		g_string_append(out, "null");
		return;
	}
	/* never emit invalid JSON, whatever a row holds */
	if (!g_utf8_validate(value, -1, NULL))
		value = valid = g_utf8_make_valid(value, -1);
	g_string_append_c(out, '"');
	/* copy runs of plain characters at once; only escapes go one by one */
	for (run = p = value; *p != '\0'; p++) {
		guchar c = (guchar)*p;
		const gchar *esc;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		g_string_append_len(out, run, p - run);
		run = p + 1;
		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		default:
			g_string_append_printf(out, "\\u%04x", c);
			continue;
		}
		g_string_append(out, esc);
	}
	g_string_append_len(out, run, p - run);
	g_string_append_c(out, '"');
}

/**
 * qsim_api_json_append_int:
 *
 * Appends @value in decimal (what printf's %lld would write, without printf's cost).
 */
void
qsim_api_json_append_int(GString *out, gint64 value)
{
	gchar buf[24];
	gchar *end = buf + sizeof buf;
	gchar *p = end;
	/* through the unsigned magnitude: -G_MININT64 does not fit a gint64 */
	guint64 mag = value < 0 ? (guint64)0 - (guint64)value : (guint64)value;

	do {
		*--p = (gchar)('0' + mag % 10);
		mag /= 10;
	} while (mag != 0);
	if (value < 0)
		*--p = '-';
	g_string_append_len(out, p, end - p);
}

/**
 * qsim_api_json_append_timestamp:
 *
 * Appends a timestamp string, or null when unset.
 */
void
qsim_api_json_append_timestamp(GString *out, gint64 unix_ms)
{
	gchar buf[QSIM_API_TIMESTAMP_LEN + 3];

	/* the format has nothing to escape: write the quotes around it directly */
	if (!format_timestamp(unix_ms, buf + 1)) {
		g_string_append(out, "null");
		return;
	}
	buf[0] = '"';
	buf[QSIM_API_TIMESTAMP_LEN + 1] = '"';
	g_string_append_len(out, buf, QSIM_API_TIMESTAMP_LEN + 2);
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
