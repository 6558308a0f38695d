#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "common/qsim-config-entry.h"

/* Typed values so scripts need not parse "8000" or "true"; a value that does
 * not parse as its kind stays a string rather than being guessed. */
static void
add_value(JsonBuilder *b, const QsimConfigEntry *e)
{
	const gchar *v = e->value != NULL ? e->value : "";
	gint64 n = 0;
	gdouble d = 0;
	gchar *end = NULL;

	if (e->secret) {
		json_builder_add_string_value(b, v[0] != '\0' ? "***" : "");
		return;
	}
	switch (e->kind) {
	case QSIM_CONFIG_KIND_INT:
		if (g_ascii_string_to_signed(v, 10, G_MININT64, G_MAXINT64, &n, NULL)) {
			json_builder_add_int_value(b, n);
			return;
		}
		break;
	case QSIM_CONFIG_KIND_DOUBLE:
		d = g_ascii_strtod(v, &end);
		if (end != v && *end == '\0') {
			json_builder_add_double_value(b, d);
			return;
		}
		break;
	case QSIM_CONFIG_KIND_BOOL:
		if (g_ascii_strcasecmp(v, "true") == 0 || g_strcmp0(v, "1") == 0 ||
		    g_ascii_strcasecmp(v, "yes") == 0) {
			json_builder_add_boolean_value(b, TRUE);
			return;
		}
		if (g_ascii_strcasecmp(v, "false") == 0 || g_strcmp0(v, "0") == 0 ||
		    g_ascii_strcasecmp(v, "no") == 0 || v[0] == '\0') {
			json_builder_add_boolean_value(b, FALSE);
			return;
		}
		break;
	case QSIM_CONFIG_KIND_LIST: {
		g_auto(GStrv) items = g_strsplit(v, ",", -1);
		json_builder_begin_array(b);
		for (guint i = 0; items[i] != NULL; i++) {
			g_strstrip(items[i]);
			if (items[i][0] != '\0')
				json_builder_add_string_value(b, items[i]);
		}
		json_builder_end_array(b);
		return;
	}
	case QSIM_CONFIG_KIND_STRING:
		break;
	}
	json_builder_add_string_value(b, v);
}

void
qsim_api_config_get(QsimApiContext *ctx)
{
	QsimConfig *config = qsim_api_server_get_config(ctx->server);
	g_autoptr(GPtrArray) entries = qsim_config_list_entries(config);
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	for (guint i = 0; entries != NULL && i < entries->len; i++) {
		const QsimConfigEntry *e = entries->pdata[i];

		json_builder_set_member_name(b, e->name);
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "value");
		add_value(b, e);
		json_builder_set_member_name(b, "source");
		json_builder_add_string_value(b, qsim_config_source_to_string(e->source));
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}
