#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

JsonNode *qsim_api_openapi_load(GError **error);

gchar *qsim_api_openapi_render_html(JsonNode *document);

G_END_DECLS
