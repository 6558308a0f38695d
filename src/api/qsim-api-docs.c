#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-openapi.h"

/* Renders the OpenAPI document as one static HTML page: inline CSS, no
 * script, no external asset, so it works offline and behind strict proxies. */

static const gchar *const methods[] = {"get", "post", "put", "delete", "patch", NULL};

static const gchar *page_css =
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
    "color:#222}"
    "code,pre{font-family:ui-monospace,monospace;background:#f4f4f4;padding:0 .2em}"
    "h2{border-top:1px solid #ccc;padding-top:1em;margin-top:2em}"
    ".m{display:inline-block;min-width:4.5em;text-align:center;color:#fff;border-radius:3px;"
    "padding:0 .3em;margin-right:.5em;font-size:.9em}"
    ".get{background:#2a7ab0}.post{background:#2e8b57}.put{background:#b8860b}"
    ".delete{background:#b22222}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0}"
    "td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}"
    "th{background:#fafafa}";

static void
esc(GString *out, const gchar *text)
{
	g_autofree gchar *e = g_markup_escape_text(text != NULL ? text : "", -1);

	g_string_append(out, e);
}

/* `code` spans are the only markdown used in descriptions */
static void
esc_md(GString *out, const gchar *text)
{
	g_auto(GStrv) parts = g_strsplit(text != NULL ? text : "", "`", -1);

	for (guint i = 0; parts[i] != NULL; i++) {
		gboolean code = (i % 2) == 1 && parts[i + 1] != NULL;

		if (code)
			g_string_append(out, "<code>");
		else if (i % 2 == 1)
			g_string_append_c(out, '`');
		esc(out, parts[i]);
		if (code)
			g_string_append(out, "</code>");
	}
}

static const gchar *
str_member(JsonObject *o, const gchar *name)
{
	JsonNode *n = o != NULL ? json_object_get_member(o, name) : NULL;

	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

static JsonObject *
obj_member(JsonObject *o, const gchar *name)
{
	JsonNode *n = o != NULL ? json_object_get_member(o, name) : NULL;

	return n != NULL && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonArray *
arr_member(JsonObject *o, const gchar *name)
{
	JsonNode *n = o != NULL ? json_object_get_member(o, name) : NULL;

	return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

/* "#/components/schemas/Request" -> the object it names */
static JsonObject *
deref(JsonObject *doc, JsonObject *o)
{
	const gchar *ref = str_member(o, "$ref");
	g_auto(GStrv) parts = NULL;
	JsonObject *cur = doc;

	if (ref == NULL || !g_str_has_prefix(ref, "#/"))
		return o;
	parts = g_strsplit(ref + 2, "/", -1);
	for (guint i = 0; parts[i] != NULL && cur != NULL; i++)
		cur = obj_member(cur, parts[i]);
	return cur;
}

static void
schema_type(GString *out, JsonObject *schema)
{
	const gchar *ref = str_member(schema, "$ref");
	const gchar *type = str_member(schema, "type");
	JsonArray *en = arr_member(schema, "enum");

	if (ref != NULL) {
		const gchar *name = strrchr(ref, '/') != NULL ? strrchr(ref, '/') + 1 : ref;
		g_string_append_printf(out, "<a href=\"#schema-%s\">", name);
		esc(out, name);
		g_string_append(out, "</a>");
		return;
	}
	if (g_strcmp0(type, "array") == 0) {
		g_string_append(out, "array of ");
		schema_type(out, obj_member(schema, "items"));
		return;
	}
	esc(out, type != NULL ? type : "any");
	if (str_member(schema, "format") != NULL) {
		g_string_append(out, " (");
		esc(out, str_member(schema, "format"));
		g_string_append(out, ")");
	}
	if (en != NULL) {
		g_string_append(out, ": ");
		for (guint i = 0; i < json_array_get_length(en); i++) {
			JsonNode *n = json_array_get_element(en, i);
			if (i > 0)
				g_string_append(out, ", ");
			g_string_append(out, "<code>");
			if (JSON_NODE_HOLDS_VALUE(n) &&
			    json_node_get_value_type(n) == G_TYPE_STRING)
				esc(out, json_node_get_string(n));
			g_string_append(out, "</code>");
		}
	}
	if (json_object_has_member(schema, "minimum") ||
	    json_object_has_member(schema, "maximum")) {
		g_string_append(out, ", ");
		if (json_object_has_member(schema, "minimum"))
			g_string_append_printf(out, "%" G_GINT64_FORMAT " ",
			                       json_object_get_int_member(schema, "minimum"));
		g_string_append(out, "..");
		if (json_object_has_member(schema, "maximum"))
			g_string_append_printf(out, " %" G_GINT64_FORMAT,
			                       json_object_get_int_member(schema, "maximum"));
	}
	if (json_object_has_member(schema, "nullable"))
		g_string_append(out, " or null");
}

static void
render_parameters(GString *out, JsonObject *doc, JsonArray *params)
{
	if (params == NULL || json_array_get_length(params) == 0)
		return;
	g_string_append(out, "<h4>Parameters</h4><table><tr><th>name</th><th>in</th>"
	                     "<th>type</th><th>description</th></tr>");
	for (guint i = 0; i < json_array_get_length(params); i++) {
		JsonObject *p = deref(doc, json_array_get_object_element(params, i));

		g_string_append(out, "<tr><td><code>");
		esc(out, str_member(p, "name"));
		g_string_append(out, "</code></td><td>");
		esc(out, str_member(p, "in"));
		g_string_append(out, "</td><td>");
		schema_type(out, obj_member(p, "schema"));
		g_string_append(out, "</td><td>");
		esc_md(out, str_member(p, "description"));
		g_string_append(out, "</td></tr>");
	}
	g_string_append(out, "</table>");
}

static void
render_content(GString *out, JsonObject *content)
{
	g_autoptr(GList) types = content != NULL ? json_object_get_members(content) : NULL;

	for (GList *l = types; l != NULL; l = l->next) {
		g_string_append(out, "<br><code>");
		esc(out, l->data);
		g_string_append(out, "</code>: ");
		schema_type(out, obj_member(obj_member(content, l->data), "schema"));
	}
}

static void
render_operation(GString *out, JsonObject *doc, const gchar *path, const gchar *method,
                 JsonObject *op, JsonArray *path_params)
{
	g_autofree gchar *upper = g_ascii_strup(method, -1);
	JsonObject *body = obj_member(op, "requestBody");
	JsonObject *responses = obj_member(op, "responses");
	g_autoptr(GList) codes = responses != NULL ? json_object_get_members(responses) : NULL;

	g_string_append_printf(out, "<h2 id=\"op-%s\"><span class=\"m %s\">%s</span><code>",
	                       str_member(op, "operationId"), method, upper);
	esc(out, path);
	g_string_append(out, "</code></h2><p><b>");
	esc(out, str_member(op, "summary"));
	g_string_append(out, "</b></p>");
	if (str_member(op, "description") != NULL) {
		g_string_append(out, "<p>");
		esc_md(out, str_member(op, "description"));
		g_string_append(out, "</p>");
	}
	render_parameters(out, doc, path_params);
	render_parameters(out, doc, arr_member(op, "parameters"));
	if (body != NULL) {
		g_string_append(out, "<h4>Request body</h4><p>");
		render_content(out, obj_member(body, "content"));
		g_string_append(out, "</p>");
	}
	g_string_append(out, "<h4>Responses</h4><table><tr><th>status</th><th>meaning</th></tr>");
	for (GList *l = codes; l != NULL; l = l->next) {
		JsonObject *r = deref(doc, obj_member(responses, l->data));

		g_string_append(out, "<tr><td>");
		esc(out, l->data);
		g_string_append(out, "</td><td>");
		esc_md(out, str_member(r, "description"));
		render_content(out, obj_member(r, "content"));
		g_string_append(out, "</td></tr>");
	}
	g_string_append(out, "</table>");
}

static void
render_schema(GString *out, const gchar *name, JsonObject *schema)
{
	JsonObject *props = obj_member(schema, "properties");
	JsonArray *required = arr_member(schema, "required");
	g_autoptr(GList) names = props != NULL ? json_object_get_members(props) : NULL;

	g_string_append_printf(out, "<h3 id=\"schema-%s\">", name);
	esc(out, name);
	g_string_append(out, "</h3><p>");
	if (props == NULL)
		schema_type(out, schema);
	if (str_member(schema, "description") != NULL) {
		g_string_append(out, " ");
		esc_md(out, str_member(schema, "description"));
	}
	g_string_append(out, "</p>");
	if (props == NULL)
		return;
	g_string_append(out, "<table><tr><th>field</th><th>type</th><th>required</th>"
	                     "<th>description</th></tr>");
	for (GList *l = names; l != NULL; l = l->next) {
		JsonObject *p = obj_member(props, l->data);
		gboolean req = FALSE;

		for (guint i = 0; required != NULL && i < json_array_get_length(required); i++)
			req |= g_strcmp0(json_array_get_string_element(required, i), l->data) == 0;
		g_string_append(out, "<tr><td><code>");
		esc(out, l->data);
		g_string_append(out, "</code></td><td>");
		schema_type(out, p);
		g_string_append_printf(out, "</td><td>%s</td><td>", req ? "yes" : "");
		esc_md(out, str_member(p, "description"));
		g_string_append(out, "</td></tr>");
	}
	g_string_append(out, "</table>");
}

/**
 * qsim_api_openapi_render_html:
 * @document: an OpenAPI 3.0 document
 *
 * Returns: (transfer full): a self-contained HTML page describing it
 */
gchar *
qsim_api_openapi_render_html(JsonNode *document)
{
	JsonObject *doc = json_node_get_object(document);
	JsonObject *info = obj_member(doc, "info");
	JsonObject *paths = obj_member(doc, "paths");
	JsonObject *schemas = obj_member(obj_member(doc, "components"), "schemas");
	g_autoptr(GList) path_names = paths != NULL ? json_object_get_members(paths) : NULL;
	g_autoptr(GList) schema_names = schemas != NULL ? json_object_get_members(schemas) : NULL;
	GString *out =
	    g_string_new("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	                 "<meta name=\"viewport\" content=\"width=device-width\"><title>");

	esc(out, str_member(info, "title"));
	g_string_append_printf(out, "</title><style>%s</style></head><body><h1>", page_css);
	esc(out, str_member(info, "title"));
	g_string_append(out, " <small>");
	esc(out, str_member(info, "version"));
	g_string_append(out, "</small></h1><p>");
	esc_md(out, str_member(info, "description"));
	g_string_append(out, "</p><p>Machine-readable: <a href=\"openapi.json\">openapi.json</a>"
	                     "</p><h3>Endpoints</h3><ul>");
	for (GList *l = path_names; l != NULL; l = l->next) {
		JsonObject *item = obj_member(paths, l->data);
		for (guint m = 0; methods[m] != NULL; m++) {
			JsonObject *op = obj_member(item, methods[m]);
			g_autofree gchar *upper = g_ascii_strup(methods[m], -1);
			if (op == NULL)
				continue;
			g_string_append_printf(out, "<li><a href=\"#op-%s\">%s <code>",
			                       str_member(op, "operationId"), upper);
			esc(out, l->data);
			g_string_append(out, "</code></a> ");
			esc(out, str_member(op, "summary"));
			g_string_append(out, "</li>");
		}
	}
	g_string_append(out, "</ul>");
	for (GList *l = path_names; l != NULL; l = l->next) {
		JsonObject *item = obj_member(paths, l->data);
		for (guint m = 0; methods[m] != NULL; m++) {
			JsonObject *op = obj_member(item, methods[m]);
			if (op != NULL)
				render_operation(out, doc, l->data, methods[m], op,
				                 arr_member(item, "parameters"));
		}
	}
	g_string_append(out, "<h2>Schemas</h2>");
	for (GList *l = schema_names; l != NULL; l = l->next)
		render_schema(out, l->data, obj_member(schemas, l->data));
	g_string_append(out, "</body></html>\n");
	return g_string_free(out, FALSE);
}
