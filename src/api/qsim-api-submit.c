#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "common/qsim-json-gate.h"
#include "common/qsim-vm-name.h"
#include "qsim-api-submit.h"

/* What a request body must be, with no HTTP in sight: the handlers answer with the
 * status the fault names, and the fuzzer (tests/fuzz/fuzz-request-body.c) drives these
 * with any bytes. */

/**
 * qsim_api_submit_clear:
 * @submit: a #QsimApiSubmit
 */
void
qsim_api_submit_clear(QsimApiSubmit *submit)
{
	g_clear_pointer(&submit->vm_name, g_free);
	g_clear_pointer(&submit->commands, g_free);
	submit->timeout = 0;
	g_clear_pointer(&submit->artifacts, g_strfreev);
}

/**
 * qsim_api_body_parse_object:
 * @data: the body, not NUL-terminated
 * @len: its length
 * @fault: (out): on failure, whether it was the syntax or the shape
 * @error: return location for a #GError
 *
 * The syntax must pass the strict gate (RFC 8259, depth, no NUL, UTF-8) before
 * json-glib sees it, and the root must be an object.
 *
 * Returns: (transfer full) (nullable): the root object
 */
JsonObject *
qsim_api_body_parse_object(const gchar *data, gsize len, QsimApiBodyFault *fault, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	g_autoptr(GError) local = NULL;
	JsonNode *root;

	*fault = QSIM_API_BODY_FAULT_SYNTAX;
	/* json-glib recurses per nesting level and accepts (and rewrites) non-JSON: only a
	 * document that passed the strict gate reaches it */
	if (!qsim_json_gate_check(data, len, &local)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "The request body is not valid JSON: %s.", local->message);
		return NULL;
	}
	/* the body is not NUL-terminated: always pass its length */
	if (!json_parser_load_from_data(parser, data, (gssize)len, &local)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "The request body is not valid JSON.");
		return NULL;
	}
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		*fault = QSIM_API_BODY_FAULT_INVALID;
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "The request body must be a JSON object.");
		return NULL;
	}
	return json_object_ref(json_node_get_object(root));
}

/**
 * qsim_api_body_get_string:
 * @out: (out) (transfer none): the string, or %NULL when absent and optional
 *
 * Reads @field only after checking that it holds a string: json-glib would otherwise
 * log a critical on a mismatch.
 *
 * Returns: %FALSE with @error naming @field
 */
gboolean
qsim_api_body_get_string(JsonObject *obj, const gchar *field, gboolean required, const gchar **out,
                         GError **error)
{
	JsonNode *node = json_object_get_member(obj, field);

	*out = NULL;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node)) {
		if (!required)
			return TRUE;
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "Field '%s' is required.",
		            field);
		return FALSE;
	}
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "Field '%s' must be a string.",
		            field);
		return FALSE;
	}
	*out = json_node_get_string(node);
	return TRUE;
}

/**
 * qsim_api_body_get_int:
 * @present: (out): whether @field was given (a JSON null counts as absent)
 * @out: (out): its value
 *
 * Accepts only JSON integers: `json_object_get_int_member` would turn a string or a
 * float into a silent 0.
 *
 * Returns: %FALSE with @error naming @field
 */
gboolean
qsim_api_body_get_int(JsonObject *obj, const gchar *field, gboolean *present, gint64 *out,
                      GError **error)
{
	JsonNode *node = json_object_get_member(obj, field);

	*present = FALSE;
	*out = 0;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return TRUE;
	if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "Field '%s' must be an integer.",
		            field);
		return FALSE;
	}
	*present = TRUE;
	*out = json_node_get_int(node);
	return TRUE;
}

/* `artifacts`: absent, null or an array of at most 64 clean absolute guest paths */
static gboolean
parse_artifacts(JsonObject *obj, gchar ***out, GError **error)
{
	JsonNode *node = json_object_get_member(obj, "artifacts");
	g_autoptr(GStrvBuilder) b = NULL;
	g_autoptr(GError) local = NULL;
	g_auto(GStrv) paths = NULL;
	JsonArray *array;

	*out = NULL;
	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return TRUE;
	if (!JSON_NODE_HOLDS_ARRAY(node)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "Field 'artifacts' must be an array of guest paths.");
		return FALSE;
	}
	array = json_node_get_array(node);
	if (json_array_get_length(array) > QSIM_GUEST_PATH_MAX_PATTERNS) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "Field 'artifacts' has at most %d paths.",
		            QSIM_GUEST_PATH_MAX_PATTERNS);
		return FALSE;
	}
	b = g_strv_builder_new();
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *item = json_array_get_element(array, i);

		if (!JSON_NODE_HOLDS_VALUE(item) ||
		    json_node_get_value_type(item) != G_TYPE_STRING) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			                    "Field 'artifacts' must be an array of strings.");
			return FALSE;
		}
		g_strv_builder_add(b, json_node_get_string(item));
	}
	paths = g_strv_builder_end(b);
	if (!qsim_guest_path_validate_list((const gchar *const *)paths, &local)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "Field 'artifacts': %s (absolute guest paths or globs, no '.' or '..' "
		            "components).",
		            local->message);
		return FALSE;
	}
	if (paths[0] != NULL)
		*out = g_steal_pointer(&paths);
	return TRUE;
}

/**
 * qsim_api_submit_parse:
 * @obj: a `POST /requests` body
 * @default_timeout: seconds, when the body has none
 * @max_timeout: the largest timeout allowed
 * @out: (out caller-allocates): the fields, to clear with qsim_api_submit_clear()
 * @error: return location for a #GError (a 422 message)
 *
 * Returns: %TRUE if @obj is a valid submission
 */
gboolean
qsim_api_submit_parse(JsonObject *obj, gint64 default_timeout, gint64 max_timeout,
                      QsimApiSubmit *out, GError **error)
{
	const gchar *vm_name = NULL;
	const gchar *commands = NULL;
	gboolean has_timeout = FALSE;
	gint64 timeout = 0;

	memset(out, 0, sizeof(*out));
	if (!qsim_api_body_get_string(obj, "vm_name", TRUE, &vm_name, error) ||
	    !qsim_api_body_get_string(obj, "commands", TRUE, &commands, error) ||
	    !qsim_api_body_get_int(obj, "timeout", &has_timeout, &timeout, error))
		return FALSE;
	/* the gate refused \u0000 already; strlen keeps this true whatever the parser does */
	if (commands[0] == '\0' || strlen(commands) > QSIM_API_MAX_COMMANDS ||
	    !g_utf8_validate(commands, -1, NULL)) {
		g_set_error_literal(
		    error, QSIM_ERROR, QSIM_ERROR_INVALID,
		    "Field 'commands' must be a non-empty string of at most 256 KiB.");
		return FALSE;
	}
	if (!has_timeout)
		timeout = default_timeout;
	if (timeout < 1 || timeout > max_timeout) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "Field 'timeout' must be from 1 to %" G_GINT64_FORMAT " seconds.",
		            max_timeout);
		return FALSE;
	}
	if (!qsim_vm_name_validate(vm_name, NULL)) {
		g_set_error_literal(
		    error, QSIM_ERROR, QSIM_ERROR_INVALID,
		    "Field 'vm_name' must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.");
		return FALSE;
	}
	if (!parse_artifacts(obj, &out->artifacts, error))
		return FALSE;
	out->vm_name = g_strdup(vm_name);
	out->commands = g_strdup(commands);
	out->timeout = timeout;
	return TRUE;
}
