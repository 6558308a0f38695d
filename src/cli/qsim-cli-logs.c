#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qsim-cli-commands.h"
#include "qsim-cli-follow.h"
#include "qsim-cli-json.h"

/* the server's page size cap for logs */
#define QSIM_CLI_LOGS_PAGE_MAX 10000

static void
qsim_cli_write_bytes(FILE *out, GBytes *bytes)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	if (len > 0)
		fwrite(data, 1, len, out);
}

/* "[timestamp] [type] output", the seed's format; output kept as is */
static gboolean
qsim_cli_print_log_entry(JsonObject *entry, GError **error)
{
	g_autoptr(GBytes) output = qsim_cli_json_log_output(entry, error);
	g_autofree gchar *timestamp = qsim_cli_json_to_text(entry, "timestamp");
	g_autofree gchar *log_type = qsim_cli_json_to_text(entry, "log_type");
	gsize len = 0;
	const guint8 *data;

	if (output == NULL)
		return FALSE;
	data = g_bytes_get_data(output, &len);
	fprintf(stdout, "[%s] [%s] ", timestamp, log_type);
	qsim_cli_write_bytes(stdout, output);
	if (len == 0 || data[len - 1] != '\n')
		fputc('\n', stdout);
	return TRUE;
}

typedef struct {
	QsimCli *cli;
	GError *error;
} QsimCliLogsFollow;

static void
qsim_cli_logs_follow_cb(const gchar *event, JsonObject *data, gpointer user_data)
{
	QsimCliLogsFollow *ctx = user_data;

	if (ctx->cli->json) {
		/* one JSON object per line, so scripts can parse each as it comes */
		g_autoptr(JsonBuilder) b = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "event");
		json_builder_add_string_value(b, event);
		json_builder_set_member_name(b, "data");
		json_builder_add_value(b, json_node_init_object(json_node_alloc(), data));
		json_builder_end_object(b);
		root = json_builder_get_root(b);
		qsim_cli_json_print(root, FALSE);
		fflush(stdout);
		return;
	}
	if (g_strcmp0(event, "log") == 0 && ctx->error == NULL) {
		g_autoptr(GBytes) output = qsim_cli_json_log_output(data, &ctx->error);
		if (output != NULL) {
			qsim_cli_write_bytes(stdout, output);
			fflush(stdout);
		}
	}
}

static gboolean
qsim_cli_show_logs_follow(QsimCli *cli, const gchar *uuid, GError **error)
{
	QsimCliLogsFollow ctx = {.cli = cli};
	g_autoptr(JsonNode) end = NULL;

	if (!qsim_cli_follow(cli, uuid, cli->opt_log_type, qsim_cli_logs_follow_cb, &ctx, NULL,
	                     &end, error)) {
		g_clear_error(&ctx.error);
		return FALSE;
	}
	if (ctx.error != NULL) {
		g_propagate_error(error, ctx.error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
qsim_cli_cmd_show_logs(QsimCli *cli, gchar **args, GError **error)
{
	guint64 limit = 0;
	g_autofree gchar *uuid = NULL;
	g_autoptr(JsonArray) all = json_array_new();
	gint64 after_seq = -1;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error))
		return FALSE;
	if (cli->opt_log_type != NULL && !qsim_cli_check_log_type(cli, cli->opt_log_type, error))
		return FALSE;
	if (cli->opt_limit != NULL &&
	    !qsim_cli_parse_positive(cli, "--limit", cli->opt_limit, G_MAXINT32, &limit, error))
		return FALSE;
	if (cli->opt_follow && cli->opt_limit != NULL)
		return qsim_cli_usage_error(cli, error,
		                            _("--limit and --follow cannot be used together"));
	uuid = qsim_cli_resolve_request(cli, args[0], NULL, error);
	if (uuid == NULL)
		return FALSE;
	if (cli->opt_follow)
		return qsim_cli_show_logs_follow(cli, uuid, error);

	/* without --limit, all of them: page until a short page without a Link (a page
	 * the server cut at its byte budget is short too, and has one) */
	for (;;) {
		g_autoptr(GString) path = g_string_new(NULL);
		g_autoptr(JsonNode) page = NULL;
		g_autofree gchar *next = NULL;
		JsonArray *array;
		guint64 want = QSIM_CLI_LOGS_PAGE_MAX;
		guint got;

		if (limit > 0)
			want = MIN(limit - json_array_get_length(all), QSIM_CLI_LOGS_PAGE_MAX);
		g_string_printf(path, "/requests/%s/logs?limit=%" G_GUINT64_FORMAT, uuid, want);
		if (cli->opt_log_type != NULL)
			g_string_append_printf(path, "&log_type=%s", cli->opt_log_type);
		if (after_seq >= 0)
			g_string_append_printf(path, "&after_seq=%" G_GINT64_FORMAT, after_seq);
		if (!qsim_cli_call(cli, "GET", path->str, NULL, &page, &next, error))
			return FALSE;
		if (page == NULL || !JSON_NODE_HOLDS_ARRAY(page)) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			                    _("the server sent an invalid reply"));
			return FALSE;
		}
		array = json_node_get_array(page);
		got = json_array_get_length(array);
		for (guint i = 0; i < got; i++) {
			JsonNode *node = json_array_get_element(array, i);
			gint64 seq = -1;
			if (!JSON_NODE_HOLDS_OBJECT(node) ||
			    !qsim_cli_json_get_int(json_node_get_object(node), "seq", &seq)) {
				g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
				                    _("the server sent an invalid reply"));
				return FALSE;
			}
			after_seq = MAX(after_seq, seq);
			json_array_add_element(all, json_node_copy(node));
		}
		if ((got < want && next == NULL) || got == 0 ||
		    (limit > 0 && json_array_get_length(all) >= limit))
			break;
	}

	if (cli->json) {
		g_autoptr(JsonNode) root = json_node_new(JSON_NODE_ARRAY);
		json_node_set_array(root, all);
		qsim_cli_json_print(root, TRUE);
		return TRUE;
	}
	for (guint i = 0; i < json_array_get_length(all); i++) {
		JsonObject *entry = json_array_get_object_element(all, i);
		if (!qsim_cli_print_log_entry(entry, error))
			return FALSE;
	}
	return TRUE;
}

/**
 * qsim_cli_logs_register:
 * @cmds: (element-type QsimCliCmd): the command table, which takes ownership
 *
 * Adds show-logs.
 */
void
qsim_cli_logs_register(GPtrArray *cmds)
{
	g_ptr_array_add(
	    cmds,
	    qsim_cli_cmd_new("show-logs,logs", _("UUID [--limit N] [--log-type TYPE] [--follow]"),
	                     /* TRANSLATORS: command description */
	                     _("Show a request's logs, or follow them live"),
	                     QSIM_CLI_OPT_LIMIT | QSIM_CLI_OPT_LOG_TYPE | QSIM_CLI_OPT_FOLLOW,
	                     qsim_cli_cmd_show_logs));
}
