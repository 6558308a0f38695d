#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-openapi.h"
#include "api/qsim-api-resources.h"

#define OPENAPI_RESOURCE "/org/qsim/api/openapi.json"

/**
 * qsim_api_openapi_load:
 *
 * Parses the compiled-in OpenAPI document and stamps it with the build's
 * version. The document is a resource, not C code, so that it can be read,
 * diffed and linted as the JSON it is.
 *
 * Returns: (transfer full): the document's root node
 */
JsonNode *
qsim_api_openapi_load(GError **error)
{
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *info;
	gconstpointer data;
	gsize len = 0;

	/* looked up in our own resource: that reference also keeps the generated
	 * object file from being dropped when linking the static library */
	bytes = g_resource_lookup_data(qsim_api_get_resource(), OPENAPI_RESOURCE,
	                               G_RESOURCE_LOOKUP_FLAGS_NONE, error);
	if (bytes == NULL)
		return NULL;
	data = g_bytes_get_data(bytes, &len);
	if (!json_parser_load_from_data(parser, data, (gssize)len, error))
		return NULL;
	info = json_object_get_object_member(json_node_get_object(json_parser_get_root(parser)),
	                                     "info");
	json_object_set_string_member(info, "version", PACKAGE_VERSION);
	return json_parser_steal_root(parser);
}

/* Both renderings are fixed for the life of the process: build them once. */
static GBytes *
cached_document(gboolean html)
{
	static GBytes *json_doc = NULL;
	static GBytes *html_doc = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) root = NULL;
	gsize len = 0;
	gchar *text;

	if (json_doc == NULL) {
		root = qsim_api_openapi_load(&error);
		if (root == NULL) {
			g_warning("OpenAPI document: %s", error->message);
			return NULL;
		}
		text = qsim_api_json_to_string(root, &len);
		json_doc = g_bytes_new_take(text, len);
		text = qsim_api_openapi_render_html(root);
		html_doc = g_bytes_new_take(text, strlen(text));
	}
	return g_bytes_ref(html ? html_doc : json_doc);
}

static void
respond_document(SoupServerMessage *msg, gboolean html)
{
	g_autoptr(GBytes) doc = cached_document(html);
	gsize len = 0;
	gconstpointer data;

	if (doc == NULL) {
		qsim_api_error_respond(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal_error",
		                       "The API description is unavailable.");
		return;
	}
	data = g_bytes_get_data(doc, &len);
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(
	    msg, html ? "text/html; charset=utf-8" : "application/json; charset=utf-8",
	    SOUP_MEMORY_COPY, data, len);
}

void
qsim_api_openapi_get(QsimApiContext *ctx)
{
	respond_document(ctx->msg, FALSE);
}

void
qsim_api_docs_get(QsimApiContext *ctx)
{
	respond_document(ctx->msg, TRUE);
}
