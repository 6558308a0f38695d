#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define QSIM_API_MAX_BODY (1024 * 1024)
/* strlen("2026-11-26T10:30:00.000Z") */
#define QSIM_API_TIMESTAMP_LEN 24

void qsim_api_json_respond(SoupServerMessage *msg, guint status, JsonNode *node);

JsonObject *qsim_api_json_read_object(SoupServerMessage *msg);

gboolean qsim_api_json_get_string(SoupServerMessage *msg, JsonObject *obj, const gchar *field,
                                  gboolean required, const gchar **out);

gboolean qsim_api_json_get_int(SoupServerMessage *msg, JsonObject *obj, const gchar *field,
                               gboolean *present, gint64 *out);

gchar *qsim_api_json_timestamp(gint64 unix_ms);

void qsim_api_json_add_timestamp(JsonBuilder *b, const gchar *name, gint64 unix_ms);

gchar *qsim_api_json_to_string(JsonNode *node, gsize *length);

void qsim_api_json_append_string(GString *out, const gchar *value);

void qsim_api_json_append_int(GString *out, gint64 value);

void qsim_api_json_append_timestamp(GString *out, gint64 unix_ms);

void qsim_api_json_respond_text(SoupServerMessage *msg, guint status, GString *text);

G_END_DECLS
