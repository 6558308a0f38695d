#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "common/qsim-config.h"
#include "common/qsim-error.h"
#include "daemon/qsimd-commands.h"

#define VALUE_COLUMN_MAX 40

static void
config_add_json_value(JsonBuilder *b, const QsimConfigEntry *e)
{
	g_auto(GStrv) items = NULL;

	/* a masked secret is the string "***" whatever its kind */
	if (e->secret && e->value[0] != '\0') {
		json_builder_add_string_value(b, e->value);
		return;
	}
	switch (e->kind) {
	case QSIM_CONFIG_KIND_INT:
		json_builder_add_int_value(b, g_ascii_strtoll(e->value, NULL, 10));
		return;
	case QSIM_CONFIG_KIND_DOUBLE:
		json_builder_add_double_value(b, g_ascii_strtod(e->value, NULL));
		return;
	case QSIM_CONFIG_KIND_BOOL:
		json_builder_add_boolean_value(b, g_strcmp0(e->value, "true") == 0);
		return;
	case QSIM_CONFIG_KIND_LIST:
		items = g_strsplit(e->value, ",", -1);
		json_builder_begin_array(b);
		for (guint i = 0; items[i] != NULL; i++) {
			if (items[i][0] != '\0')
				json_builder_add_string_value(b, items[i]);
		}
		json_builder_end_array(b);
		return;
	case QSIM_CONFIG_KIND_STRING:
		json_builder_add_string_value(b, e->value);
		return;
	}
}

static gchar *
config_to_json(GPtrArray *entries)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	for (guint i = 0; i < entries->len; i++) {
		const QsimConfigEntry *e = g_ptr_array_index(entries, i);

		json_builder_set_member_name(b, e->name);
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "value");
		config_add_json_value(b, e);
		json_builder_set_member_name(b, "source");
		json_builder_add_string_value(b, qsim_config_source_to_string(e->source));
		json_builder_set_member_name(b, "origin");
		if (e->origin != NULL)
			json_builder_add_string_value(b, e->origin);
		else
			json_builder_add_null_value(b);
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	json_generator_set_pretty(gen, TRUE);
	return json_generator_to_data(gen, NULL);
}

static void
config_print_table(GPtrArray *entries, const gchar *keyfile)
{
	gint name_w = 0;
	gint value_w = 0;

	for (guint i = 0; i < entries->len; i++) {
		const QsimConfigEntry *e = g_ptr_array_index(entries, i);
		name_w = MAX(name_w, (gint)strlen(e->name));
		value_w = MAX(value_w, (gint)g_utf8_strlen(e->value, -1) + 2);
	}
	value_w = MIN(value_w, VALUE_COLUMN_MAX);
	g_print("# keyfile: %s\n", keyfile != NULL ? keyfile : "(none)");
	for (guint i = 0; i < entries->len; i++) {
		const QsimConfigEntry *e = g_ptr_array_index(entries, i);
		g_autofree gchar *value = g_strdup_printf("'%s'", e->value);
		gint pad = value_w - (gint)g_utf8_strlen(value, -1);

		g_print("%-*s  %s%*s  %s", name_w, e->name, value, MAX(pad, 0), "",
		        qsim_config_source_to_string(e->source));
		if (e->origin != NULL)
			g_print(" (%s)", e->origin);
		g_print("\n");
	}
}

/**
 * qsimd_cmd_config:
 *
 * `qsimd config [--json]`: prints every setting, its value (secrets masked)
 * and its source. main() has already loaded and validated the config, so a
 * bad value never gets here: it exits non-zero with the message first.
 */
gint
qsimd_cmd_config(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	gboolean opt_json = FALSE;
	const GOptionEntry entries[] = {
	    {"json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL},
	    {NULL},
	};
	g_autoptr(GOptionContext) octx =
	    g_option_context_new("- print the effective configuration");
	g_autoptr(GPtrArray) list = NULL;
	g_auto(GStrv) args = g_strdupv(argv);

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse_strv(octx, &args, error)) {
		qsim_error_convert(error);
		return QSIMD_EXIT_USAGE;
	}
	if (g_strv_length(args) > 1) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "config: unexpected argument '%s'", args[1]);
		return QSIMD_EXIT_USAGE;
	}
	list = qsim_config_list_entries(ctx->config);
	if (opt_json) {
		g_autofree gchar *json = config_to_json(list);
		g_print("%s\n", json);
	} else {
		config_print_table(list, qsim_config_get_keyfile_path(ctx->config));
	}
	return 0;
}
