#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-json-gate.h"
#include "qsim-cli-json.h"

/* Small, type-checked accessors: json-glib's own getters log criticals or return 0
 * on a type mismatch, and a client must not trust the server's types blindly. */

/**
 * qsim_cli_json_parse_bytes:
 * @bytes: a JSON document, not necessarily NUL-terminated
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the root node
 */
JsonNode *
qsim_cli_json_parse_bytes(GBytes *bytes, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new_immutable();
	gsize len = 0;
	const gchar *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GError) error_local = NULL;

	/* a hostile or broken server must not crash the CLI through json-glib's recursion */
	if (!qsim_json_gate_check(data, len, error)) {
		g_prefix_error(error, "invalid JSON from the server: ");
		return NULL;
	}
	if (!json_parser_load_from_data(parser, data != NULL ? data : "", len, &error_local)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, error_local->message);
		return NULL;
	}
	if (json_parser_get_root(parser) == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "empty document");
		return NULL;
	}
	return json_node_ref(json_parser_get_root(parser));
}

/**
 * qsim_cli_json_parse_string:
 * @text: a NUL-terminated JSON document
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the root node
 */
JsonNode *
qsim_cli_json_parse_string(const gchar *text, GError **error)
{
	g_autoptr(GBytes) bytes = g_bytes_new_static(text, strlen(text));
	return qsim_cli_json_parse_bytes(bytes, error);
}

/**
 * qsim_cli_json_get_string:
 * @obj: an object
 * @member: a member name
 *
 * Returns: (transfer none) (nullable): the member if it is a string
 */
const gchar *
qsim_cli_json_get_string(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

/**
 * qsim_cli_json_get_object:
 * @obj: an object
 * @member: a member name
 *
 * Returns: (transfer none) (nullable): the member if it is an object
 */
JsonObject *
qsim_cli_json_get_object(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);

	if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
		return NULL;
	return json_node_get_object(node);
}

/**
 * qsim_cli_json_get_int:
 * @obj: an object
 * @member: a member name
 * @value: (out): the integer
 *
 * Returns: %TRUE if the member exists and is an integer (not null)
 */
gboolean
qsim_cli_json_get_int(JsonObject *obj, const gchar *member, gint64 *value)
{
	JsonNode *node = json_object_get_member(obj, member);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_INT64)
		return FALSE;
	*value = json_node_get_int(node);
	return TRUE;
}

/**
 * qsim_cli_json_to_text:
 * @obj: an object
 * @member: a member name
 *
 * Returns: (transfer full): the member as display text: strings as they are,
 * numbers and booleans printed, arrays of strings comma separated, "-" for null
 * or missing, compact JSON otherwise
 */
gchar *
qsim_cli_json_to_text(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);

	if (node == NULL || JSON_NODE_HOLDS_NULL(node))
		return g_strdup("-");
	if (JSON_NODE_HOLDS_VALUE(node)) {
		GType type = json_node_get_value_type(node);
		if (type == G_TYPE_STRING)
			return g_strdup(json_node_get_string(node));
		if (type == G_TYPE_INT64)
			return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
		if (type == G_TYPE_DOUBLE) {
			gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
			/* "%g" keeps 5 as "5" and 0.25 as "0.25", locale-independent */
			return g_strdup(
			    g_ascii_formatd(buf, sizeof(buf), "%.6g", json_node_get_double(node)));
		}
		if (type == G_TYPE_BOOLEAN)
			return g_strdup(json_node_get_boolean(node) ? "true" : "false");
	}
	if (JSON_NODE_HOLDS_ARRAY(node)) {
		/* lists of words (origins, tokens) read better without JSON punctuation */
		JsonArray *array = json_node_get_array(node);
		g_autoptr(GString) out = g_string_new(NULL);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *item = json_array_get_element(array, i);
			if (!JSON_NODE_HOLDS_VALUE(item) ||
			    json_node_get_value_type(item) != G_TYPE_STRING)
				return json_to_string(node, FALSE);
			if (i > 0)
				g_string_append(out, ",");
			g_string_append(out, json_node_get_string(item));
		}
		return g_strdup(out->str);
	}
	return json_to_string(node, FALSE);
}

/**
 * qsim_cli_json_print:
 * @node: a JSON node
 * @pretty: indent it for humans, else one line
 *
 * Writes @node and a newline to stdout.
 */
void
qsim_cli_json_print(JsonNode *node, gboolean pretty)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autofree gchar *text = NULL;

	json_generator_set_root(gen, node);
	json_generator_set_pretty(gen, pretty);
	json_generator_set_indent(gen, 2);
	text = json_generator_to_data(gen, NULL);
	fputs(text, stdout);
	fputc('\n', stdout);
}

/**
 * qsim_cli_json_log_output:
 * @entry: a log entry object from the API
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the entry's exact bytes, base64 decoded when
 * its `encoding` says so
 */
GBytes *
qsim_cli_json_log_output(JsonObject *entry, GError **error)
{
	const gchar *output = qsim_cli_json_get_string(entry, "output");
	const gchar *encoding = qsim_cli_json_get_string(entry, "encoding");

	if (output == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent a log entry without output"));
		return NULL;
	}
	if (g_strcmp0(encoding, "base64") == 0) {
		gsize len = 0;
		guchar *raw = g_base64_decode(output, &len);
		return g_bytes_new_take(raw, len);
	}
	return g_bytes_new(output, strlen(output));
}
