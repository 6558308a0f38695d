#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

JsonNode *qsim_cli_json_parse_bytes(GBytes *bytes, GError **error);
JsonNode *qsim_cli_json_parse_string(const gchar *text, GError **error);
const gchar *qsim_cli_json_get_string(JsonObject *obj, const gchar *member);
JsonObject *qsim_cli_json_get_object(JsonObject *obj, const gchar *member);
gboolean qsim_cli_json_get_int(JsonObject *obj, const gchar *member, gint64 *value);
gchar *qsim_cli_json_to_text(JsonObject *obj, const gchar *member);
void qsim_cli_json_print(JsonNode *node, gboolean pretty);
GBytes *qsim_cli_json_log_output(JsonObject *entry, GError **error);

G_END_DECLS
