#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-json.h"
#include "api/qsim-api-mapping.h"

static void
add_nullable_string(JsonBuilder *b, const gchar *name, const gchar *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

static void
add_exit_code(JsonBuilder *b, const QsimRequest *r)
{
	json_builder_set_member_name(b, "exit_code");
	if (r->has_exit_code)
		json_builder_add_int_value(b, r->exit_code);
	else
		json_builder_add_null_value(b);
}

/**
 * qsim_api_mapping_add_request:
 * @b: a builder positioned where a value may be added
 *
 * Adds the request object of docs/api.md: the seed's fields first, then
 * qsim's additions. Internal fields (lease, held_from) stay private.
 */
void
qsim_api_mapping_add_request(JsonBuilder *b, const QsimRequest *r)
{
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "uuid");
	json_builder_add_string_value(b, r->uuid);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, r->vm_name);
	json_builder_set_member_name(b, "commands");
	json_builder_add_string_value(b, r->commands);
	json_builder_set_member_name(b, "timeout");
	json_builder_add_int_value(b, r->timeout_s);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, qsim_status_to_string(r->status));
	qsim_api_json_add_timestamp(b, "created_at", r->created_at);
	qsim_api_json_add_timestamp(b, "updated_at", r->updated_at);
	qsim_api_json_add_timestamp(b, "started_at", r->started_at);
	qsim_api_json_add_timestamp(b, "finished_at", r->finished_at);
	add_exit_code(b, r);
	add_nullable_string(b, "error", r->error);
	json_builder_set_member_name(b, "attempts");
	json_builder_add_int_value(b, r->attempts);
	add_nullable_string(b, "agent_id", r->agent_id);
	add_nullable_string(b, "start_mode", qsim_start_mode_to_string(r->start_mode));
	json_builder_set_member_name(b, "output_truncated");
	json_builder_add_boolean_value(b, r->output_truncated);
	json_builder_set_member_name(b, "artifacts");
	json_builder_begin_array(b);
	for (guint i = 0; r->artifact_paths != NULL && r->artifact_paths[i] != NULL; i++)
		json_builder_add_string_value(b, r->artifact_paths[i]);
	json_builder_end_array(b);
	json_builder_end_object(b);
}

/**
 * qsim_api_mapping_append_request:
 * @out: JSON text being built
 *
 * Appends the same object as qsim_api_mapping_add_request(), as text.
 */
void
qsim_api_mapping_append_request(GString *out, const QsimRequest *r)
{
	g_string_append(out, "{\"uuid\":");
	qsim_api_json_append_string(out, r->uuid);
	g_string_append(out, ",\"vm_name\":");
	qsim_api_json_append_string(out, r->vm_name);
	g_string_append(out, ",\"commands\":");
	qsim_api_json_append_string(out, r->commands);
	g_string_append(out, ",\"timeout\":");
	qsim_api_json_append_int(out, r->timeout_s);
	g_string_append(out, ",\"status\":\"");
	g_string_append(out, qsim_status_to_string(r->status));
	g_string_append_c(out, '"');
	g_string_append(out, ",\"created_at\":");
	qsim_api_json_append_timestamp(out, r->created_at);
	g_string_append(out, ",\"updated_at\":");
	qsim_api_json_append_timestamp(out, r->updated_at);
	g_string_append(out, ",\"started_at\":");
	qsim_api_json_append_timestamp(out, r->started_at);
	g_string_append(out, ",\"finished_at\":");
	qsim_api_json_append_timestamp(out, r->finished_at);
	g_string_append(out, ",\"exit_code\":");
	if (r->has_exit_code)
		qsim_api_json_append_int(out, r->exit_code);
	else
		g_string_append(out, "null");
	g_string_append(out, ",\"error\":");
	qsim_api_json_append_string(out, r->error);
	g_string_append(out, ",\"attempts\":");
	qsim_api_json_append_int(out, r->attempts);
	g_string_append(out, ",\"agent_id\":");
	qsim_api_json_append_string(out, r->agent_id);
	g_string_append(out, ",\"start_mode\":");
	qsim_api_json_append_string(out, qsim_start_mode_to_string(r->start_mode));
	g_string_append(out, ",\"output_truncated\":");
	g_string_append(out, r->output_truncated ? "true" : "false");
	g_string_append(out, ",\"artifacts\":[");
	for (guint i = 0; r->artifact_paths != NULL && r->artifact_paths[i] != NULL; i++) {
		if (i > 0)
			g_string_append_c(out, ',');
		qsim_api_json_append_string(out, r->artifact_paths[i]);
	}
	g_string_append(out, "]}");
}

/**
 * qsim_api_mapping_request:
 *
 * Returns: (transfer full): the request object
 */
JsonNode *
qsim_api_mapping_request(const QsimRequest *request)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();

	qsim_api_mapping_add_request(b, request);
	return json_builder_get_root(b);
}

/**
 * qsim_api_mapping_add_log:
 *
 * Adds a log entry. JSON strings cannot carry arbitrary bytes, so output
 * that is not valid UTF-8 (or holds a NUL) goes out as base64 with
 * `"encoding":"base64"`: clients get the bytes back exactly.
 */
void
qsim_api_mapping_add_log(JsonBuilder *b, const QsimLogEntry *e)
{
	gsize len = 0;
	const gchar *data = e->output != NULL ? g_bytes_get_data(e->output, &len) : NULL;
	gboolean utf8 = data == NULL || g_utf8_validate_len(data, len, NULL);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "seq");
	json_builder_add_int_value(b, e->seq);
	qsim_api_json_add_timestamp(b, "timestamp", e->timestamp_ms);
	json_builder_set_member_name(b, "log_type");
	json_builder_add_string_value(b, qsim_log_type_to_string(e->log_type));
	json_builder_set_member_name(b, "encoding");
	json_builder_add_string_value(b, utf8 ? "utf-8" : "base64");
	json_builder_set_member_name(b, "output");
	if (utf8) {
		g_autofree gchar *text = g_strndup(data != NULL ? data : "", len);
		json_builder_add_string_value(b, text);
	} else {
		g_autofree gchar *b64 = g_base64_encode((const guchar *)data, len);
		json_builder_add_string_value(b, b64);
	}
	json_builder_end_object(b);
}

/**
 * qsim_api_mapping_append_log:
 * @out: JSON text being built
 *
 * Appends the same object as qsim_api_mapping_add_log(), as text: a page of
 * logs is large, and a JsonNode tree of it cost several times its size.
 */
void
qsim_api_mapping_append_log(GString *out, const QsimLogEntry *e)
{
	gsize len = 0;
	const gchar *data = e->output != NULL ? g_bytes_get_data(e->output, &len) : NULL;
	gboolean utf8 = data == NULL || g_utf8_validate_len(data, len, NULL);

	g_string_append(out, "{\"seq\":");
	qsim_api_json_append_int(out, e->seq);
	g_string_append(out, ",\"timestamp\":");
	qsim_api_json_append_timestamp(out, e->timestamp_ms);
	g_string_append(out, ",\"log_type\":\"");
	g_string_append(out, qsim_log_type_to_string(e->log_type));
	g_string_append(out, utf8 ? "\",\"encoding\":\"utf-8\",\"output\":"
	                          : "\",\"encoding\":\"base64\",\"output\":");
	if (utf8) {
		/* valid UTF-8 holds no NUL, so the copy is the whole text */
		g_autofree gchar *text = g_strndup(data != NULL ? data : "", len);
		qsim_api_json_append_string(out, text);
	} else {
		g_autofree gchar *b64 = g_base64_encode((const guchar *)data, len);
		qsim_api_json_append_string(out, b64);
	}
	g_string_append_c(out, '}');
}

/**
 * qsim_api_mapping_log:
 *
 * Returns: (transfer full): the log entry object
 */
JsonNode *
qsim_api_mapping_log(const QsimLogEntry *entry)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();

	qsim_api_mapping_add_log(b, entry);
	return json_builder_get_root(b);
}

/**
 * qsim_api_mapping_end:
 *
 * Returns: (transfer full): the payload of the SSE `end` event
 */
JsonNode *
qsim_api_mapping_end(const QsimRequest *r)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, qsim_status_to_string(r->status));
	add_exit_code(b, r);
	add_nullable_string(b, "error", r->error);
	json_builder_end_object(b);
	return json_builder_get_root(b);
}
