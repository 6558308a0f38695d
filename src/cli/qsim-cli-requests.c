#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qsim-cli-commands.h"
#include "qsim-cli-json.h"
#include "qsim-cli-table.h"

/* the server's page size cap; larger --limit values are fetched page by page */
#define QSIM_CLI_LIST_PAGE_MAX 1000
#define QSIM_CLI_COMMANDS_WIDTH 40

static gboolean
qsim_cli_cmd_list_requests(QsimCli *cli, gchar **args, GError **error)
{
	guint64 limit = 0;
	g_autoptr(JsonArray) all = json_array_new();
	g_autofree gchar *before = NULL;

	if (!qsim_cli_check_nargs(cli, args, 0, 0, error))
		return FALSE;
	if (cli->opt_status != NULL && !qsim_cli_check_status(cli, cli->opt_status, error))
		return FALSE;
	if (cli->opt_limit != NULL &&
	    !qsim_cli_parse_positive(cli, "--limit", cli->opt_limit, G_MAXINT32, &limit, error))
		return FALSE;

	do {
		g_autoptr(GString) path = g_string_new("/requests?");
		g_autoptr(JsonNode) page = NULL;
		g_autofree gchar *next = NULL;
		JsonArray *array;
		guint64 want =
		    limit == 0 ? 0
		               : MIN(limit - json_array_get_length(all), QSIM_CLI_LIST_PAGE_MAX);

		if (cli->opt_status != NULL)
			g_string_append_printf(path, "status=%s&", cli->opt_status);
		if (want > 0)
			g_string_append_printf(path, "limit=%" G_GUINT64_FORMAT "&", want);
		if (before != NULL) {
			g_autofree gchar *escaped = g_uri_escape_string(before, NULL, FALSE);
			g_string_append_printf(path, "before=%s&", escaped);
		}
		g_string_truncate(path, path->len - 1);
		if (!qsim_cli_call(cli, "GET", path->str, NULL, &page, &next, error))
			return FALSE;
		if (page == NULL || !JSON_NODE_HOLDS_ARRAY(page)) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			                    _("the server sent an invalid reply"));
			return FALSE;
		}
		array = json_node_get_array(page);
		for (guint i = 0; i < json_array_get_length(array); i++)
			json_array_add_element(all,
			                       json_node_copy(json_array_get_element(array, i)));
		g_free(before);
		/* without --limit one page (the server's default size) is the answer */
		before = limit > json_array_get_length(all) ? g_steal_pointer(&next) : NULL;
	} while (before != NULL);

	if (cli->json) {
		g_autoptr(JsonNode) root = json_node_new(JSON_NODE_ARRAY);
		json_node_set_array(root, all);
		qsim_cli_json_print(root, TRUE);
		return TRUE;
	}
	{
		g_autoptr(QsimCliTable) table = NULL;
		/* TRANSLATORS: column headers of list-requests */
		table = qsim_cli_table_new(_("UUID"), _("VM"), _("STATUS"), _("EXIT"), _("CREATED"),
		                           _("COMMANDS"), NULL);
		for (guint i = 0; i < json_array_get_length(all); i++) {
			JsonNode *node = json_array_get_element(all, i);
			JsonObject *obj;
			g_autofree gchar *uuid = NULL;
			g_autofree gchar *vm = NULL;
			g_autofree gchar *status = NULL;
			g_autofree gchar *exit_code = NULL;
			g_autofree gchar *created = NULL;
			g_autofree gchar *commands = NULL;

			if (!JSON_NODE_HOLDS_OBJECT(node))
				continue;
			obj = json_node_get_object(node);
			uuid = qsim_cli_json_to_text(obj, "uuid");
			vm = qsim_cli_json_to_text(obj, "vm_name");
			status = qsim_cli_json_to_text(obj, "status");
			exit_code = qsim_cli_json_to_text(obj, "exit_code");
			created = qsim_cli_json_to_text(obj, "created_at");
			commands = qsim_cli_text_sanitize(qsim_cli_json_get_string(obj, "commands"),
			                                  QSIM_CLI_COMMANDS_WIDTH);
			qsim_cli_table_add_row(table, uuid, vm, status, exit_code, created,
			                       commands);
		}
		if (json_array_get_length(all) == 0) {
			/* TRANSLATORS: list-requests found nothing */
			g_print("%s\n", _("No requests."));
			return TRUE;
		}
		qsim_cli_table_print(table);
	}
	return TRUE;
}

/* prints "Label:   value" lines; the commands go last, line by line, since they may
 * span several lines */
static void
qsim_cli_print_request(JsonObject *obj)
{
	struct {
		const gchar *label;
		const gchar *member;
	} fields[] = {
	    /* TRANSLATORS: field labels of show-request */
	    {N_("UUID"), "uuid"},
	    {N_("VM"), "vm_name"},
	    {N_("Status"), "status"},
	    {N_("Exit code"), "exit_code"},
	    {N_("Error"), "error"},
	    {N_("Timeout (s)"), "timeout"},
	    {N_("Created"), "created_at"},
	    {N_("Updated"), "updated_at"},
	    {N_("Started"), "started_at"},
	    {N_("Finished"), "finished_at"},
	    {N_("Attempts"), "attempts"},
	    {N_("Agent"), "agent_id"},
	    {N_("Start mode"), "start_mode"},
	    {N_("Output truncated"), "output_truncated"},
	};
	guint width = qsim_cli_text_width(_("Commands"));
	g_autofree gchar *commands = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree gchar *pad = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(fields); i++)
		width = MAX(width, qsim_cli_text_width(_(fields[i].label)));
	for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
		g_autofree gchar *raw = qsim_cli_json_to_text(obj, fields[i].member);
		g_autofree gchar *value = qsim_cli_text_sanitize(raw, 0);
		const gchar *label = _(fields[i].label);
		g_print("%s:%*s %s\n", label, (gint)(width - qsim_cli_text_width(label)), "",
		        value);
	}
	commands = g_strdup(qsim_cli_json_get_string(obj, "commands"));
	lines = g_strsplit(commands != NULL ? commands : "", "\n", -1);
	pad = g_strnfill(width + 2, ' ');
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree gchar *line = qsim_cli_text_sanitize(lines[i], 0);
		if (i == 0)
			g_print("%s:%*s %s\n", _("Commands"),
			        (gint)(width - qsim_cli_text_width(_("Commands"))), "", line);
		else
			g_print("%s%s\n", pad, line);
	}
}

static gboolean
qsim_cli_cmd_show_request(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) request = NULL;
	g_autofree gchar *uuid = NULL;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error))
		return FALSE;
	uuid = qsim_cli_resolve_request(cli, args[0], &request, error);
	if (uuid == NULL)
		return FALSE;
	if (cli->json) {
		qsim_cli_json_print(request, TRUE);
		return TRUE;
	}
	if (!JSON_NODE_HOLDS_OBJECT(request)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	qsim_cli_print_request(json_node_get_object(request));
	return TRUE;
}

static gboolean
qsim_cli_cmd_delete_request(QsimCli *cli, gchar **args, GError **error)
{
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *path = NULL;
	g_autoptr(JsonNode) reply = NULL;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error))
		return FALSE;
	uuid = qsim_cli_resolve_request(cli, args[0], NULL, error);
	if (uuid == NULL)
		return FALSE;
	path = g_strdup_printf("/requests/%s", uuid);
	if (!qsim_cli_call(cli, "DELETE", path, NULL, &reply, NULL, error))
		return FALSE;
	if (cli->json) {
		if (reply == NULL) {
			/* a 204 has no body; scripts still get an object to parse */
			g_autoptr(JsonBuilder) b = json_builder_new();
			g_autoptr(JsonNode) root = NULL;
			json_builder_begin_object(b);
			json_builder_set_member_name(b, "uuid");
			json_builder_add_string_value(b, uuid);
			json_builder_set_member_name(b, "deleted");
			json_builder_add_boolean_value(b, TRUE);
			json_builder_end_object(b);
			root = json_builder_get_root(b);
			qsim_cli_json_print(root, TRUE);
		} else {
			qsim_cli_json_print(reply, TRUE);
		}
		return TRUE;
	}
	if (reply == NULL)
		/* TRANSLATORS: %s is a request UUID */
		g_print(_("Request %s and its logs deleted.\n"), uuid);
	else
		/* TRANSLATORS: delete-request on an active request cancels it */
		g_print(_("Request %s was still active: cancelled.\n"), uuid);
	return TRUE;
}

/* joins everything after the VM name: `submit vm -- ls -l` runs "ls -l", as ssh does */
static gchar *
qsim_cli_join_commands(gchar **args)
{
	return g_strjoinv(" ", args);
}

/**
 * qsim_cli_submit:
 * @cli: a client
 * @args: (array zero-terminated=1): `VM COMMAND...`
 * @reply: (out) (optional) (transfer full): the server's reply
 * @error: return location for a #GError
 *
 * Validates the arguments of submit and run, then POSTs the request.
 *
 * Returns: (transfer full) (nullable): the new request's UUID
 */
gchar *
qsim_cli_submit(QsimCli *cli, gchar **args, JsonNode **reply, GError **error)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) body = NULL;
	g_autoptr(JsonNode) answer = NULL;
	g_autofree gchar *commands = NULL;
	g_autofree gchar *stripped = NULL;
	const gchar *uuid;
	guint64 timeout = 0;

	if (!qsim_cli_check_nargs(cli, args, 2, G_MAXUINT, error))
		return NULL;
	if (!qsim_cli_check_vm_name(cli, args[0], error))
		return NULL;
	if (cli->opt_timeout != NULL && !qsim_cli_parse_positive(cli, "--timeout", cli->opt_timeout,
	                                                         G_MAXINT32, &timeout, error))
		return NULL;
	commands = qsim_cli_join_commands(args + 1);
	stripped = g_strstrip(g_strdup(commands));
	if (stripped[0] == '\0') {
		qsim_cli_usage_error(cli, error, _("the commands to run are empty"));
		return NULL;
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, args[0]);
	json_builder_set_member_name(b, "commands");
	json_builder_add_string_value(b, commands);
	if (timeout > 0) {
		json_builder_set_member_name(b, "timeout");
		json_builder_add_int_value(b, (gint64)timeout);
	}
	if (cli->opt_artifacts != NULL) {
		json_builder_set_member_name(b, "artifacts");
		json_builder_begin_array(b);
		for (guint i = 0; cli->opt_artifacts[i] != NULL; i++)
			json_builder_add_string_value(b, cli->opt_artifacts[i]);
		json_builder_end_array(b);
	}
	json_builder_end_object(b);
	body = json_builder_get_root(b);
	if (cli->opt_uploads != NULL) {
		answer = qsim_cli_submit_multipart(cli, body, cli->opt_uploads, error);
		if (answer == NULL)
			return NULL;
	} else if (!qsim_cli_call(cli, "POST", "/requests", body, &answer, NULL, error)) {
		return NULL;
	}
	uuid = answer != NULL && JSON_NODE_HOLDS_OBJECT(answer)
	           ? qsim_cli_json_get_string(json_node_get_object(answer), "uuid")
	           : NULL;
	if (uuid == NULL || !g_uuid_string_is_valid(uuid)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return NULL;
	}
	{
		g_autofree gchar *copy = g_ascii_strdown(uuid, -1);
		if (reply != NULL)
			*reply = g_steal_pointer(&answer);
		return g_steal_pointer(&copy);
	}
}

static gboolean
qsim_cli_cmd_submit(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) reply = NULL;
	g_autofree gchar *uuid = qsim_cli_submit(cli, args, &reply, error);

	if (uuid == NULL)
		return FALSE;
	if (cli->json)
		qsim_cli_json_print(reply, TRUE);
	else
		g_print("%s\n", uuid);
	return TRUE;
}

static gboolean
qsim_cli_put_status(QsimCli *cli, const gchar *uuid, const gchar *status, JsonNode **reply,
                    GError **error)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) body = NULL;
	g_autofree gchar *path = g_strdup_printf("/requests/%s/status", uuid);

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, status);
	json_builder_end_object(b);
	body = json_builder_get_root(b);
	return qsim_cli_call(cli, "PUT", path, body, reply, NULL, error);
}

static gboolean
qsim_cli_report_status(QsimCli *cli, JsonNode *reply, const gchar *uuid)
{
	const gchar *status = NULL;

	if (cli->json) {
		qsim_cli_json_print(reply, TRUE);
		return TRUE;
	}
	if (reply != NULL && JSON_NODE_HOLDS_OBJECT(reply))
		status = qsim_cli_json_get_string(json_node_get_object(reply), "status");
	/* TRANSLATORS: %s is a request UUID, then its new status (not translated) */
	g_print(_("Request %s: status is now %s.\n"), uuid, status != NULL ? status : "?");
	return TRUE;
}

static gboolean
qsim_cli_set_status_cmd(QsimCli *cli, gchar **args, const gchar *status, GError **error)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(JsonNode) reply = NULL;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error))
		return FALSE;
	uuid = qsim_cli_resolve_request(cli, args[0], NULL, error);
	if (uuid == NULL)
		return FALSE;
	if (!qsim_cli_put_status(cli, uuid, status, &reply, error))
		return FALSE;
	return qsim_cli_report_status(cli, reply, uuid);
}

static gboolean
qsim_cli_cmd_cancel(QsimCli *cli, gchar **args, GError **error)
{
	return qsim_cli_set_status_cmd(cli, args, "cancelled", error);
}

static gboolean
qsim_cli_cmd_hold(QsimCli *cli, gchar **args, GError **error)
{
	return qsim_cli_set_status_cmd(cli, args, "hold", error);
}

static gboolean
qsim_cli_cmd_resume(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) request = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autofree gchar *uuid = NULL;
	JsonObject *obj;
	JsonNode *started;
	const gchar *status;
	const gchar *target;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error))
		return FALSE;
	uuid = qsim_cli_resolve_request(cli, args[0], &request, error);
	if (uuid == NULL)
		return FALSE;
	if (!JSON_NODE_HOLDS_OBJECT(request)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	obj = json_node_get_object(request);
	status = qsim_cli_json_get_string(obj, "status");
	if (g_strcmp0(status, "hold") != 0) {
		/* TRANSLATORS: %s is a request UUID, then its status (not translated) */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            _("request %s is not on hold (it is %s)"), uuid,
		            status != NULL ? status : "?");
		return FALSE;
	}
	/* a request held while running has started (its VM is paused) and goes back to
	 * running; one held while pending never started and goes back to the queue */
	started = json_object_get_member(obj, "started_at");
	target = started != NULL && !JSON_NODE_HOLDS_NULL(started) ? "running" : "pending";
	if (!qsim_cli_put_status(cli, uuid, target, &reply, error))
		return FALSE;
	return qsim_cli_report_status(cli, reply, uuid);
}

/* qsim-ctl purge: DELETE /requests in bounded calls until nothing more matches */
static gboolean
qsim_cli_cmd_purge(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(GString) query = g_string_new("/requests?before=");
	g_autofree gchar *before = NULL;
	guint64 total = 0;
	guint calls = 0;
	gboolean more = TRUE;

	if (!qsim_cli_check_nargs(cli, args, 0, 0, error))
		return FALSE;
	if (cli->opt_before == NULL)
		/* TRANSLATORS: usage error of purge */
		return qsim_cli_usage_error(cli, error, _("purge needs --before AGE, e.g. 7d"));
	if (cli->opt_status != NULL && g_strcmp0(cli->opt_status, "done") != 0 &&
	    g_strcmp0(cli->opt_status, "failed") != 0 &&
	    g_strcmp0(cli->opt_status, "cancelled") != 0)
		/* TRANSLATORS: %s is the status typed; keep the status names */
		return qsim_cli_usage_error(
		    cli, error,
		    _("purge deletes finished requests only: “%s” is not done, failed or "
		      "cancelled"),
		    cli->opt_status);
	before = g_uri_escape_string(cli->opt_before, NULL, FALSE);
	g_string_append(query, before);
	if (cli->opt_status != NULL)
		g_string_append_printf(query, "&status=%s", cli->opt_status);
	/* the server resolves an age once per call; a later call's cut-off is a little
	 * later, which only takes requests that were already old enough */
	while (more) {
		g_autoptr(JsonNode) reply = NULL;
		JsonObject *o;

		if (!qsim_cli_call(cli, "DELETE", query->str, NULL, &reply, NULL, error))
			return FALSE;
		if (reply == NULL || !JSON_NODE_HOLDS_OBJECT(reply)) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			                    _("the server sent an invalid reply"));
			return FALSE;
		}
		o = json_node_get_object(reply);
		total += (guint64)MAX(json_object_get_int_member_with_default(o, "deleted", 0), 0);
		more = json_object_get_boolean_member_with_default(o, "more", FALSE);
		calls++;
	}
	if (cli->json) {
		g_print("{\"deleted\":%" G_GUINT64_FORMAT ",\"calls\":%u}\n", total, calls);
	} else {
		g_autofree gchar *n = g_strdup_printf("%" G_GUINT64_FORMAT, total);

		/* TRANSLATORS: %s is a number of requests */
		g_print(_("deleted %s finished requests\n"), n);
	}
	return TRUE;
}

/**
 * qsim_cli_requests_register:
 * @cmds: (element-type QsimCliCmd): the command table, which takes ownership
 *
 * Adds list-requests, show-request, delete-request, submit, cancel, hold, resume and purge.
 */
void
qsim_cli_requests_register(GPtrArray *cmds)
{
	g_ptr_array_add(cmds,
	                qsim_cli_cmd_new("list-requests,list,ls", "[--status STATUS] [--limit N]",
	                                 /* TRANSLATORS: command description */
	                                 _("List requests, newest first"),
	                                 QSIM_CLI_OPT_STATUS | QSIM_CLI_OPT_LIMIT,
	                                 qsim_cli_cmd_list_requests));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("show-request,show", _("UUID"),
	                                       /* TRANSLATORS: command description */
	                                       _("Show one request (a UUID prefix is enough)"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_show_request));
	g_ptr_array_add(
	    cmds,
	    qsim_cli_cmd_new("delete-request,delete", _("UUID"),
	                     /* TRANSLATORS: command description */
	                     _("Delete a finished request and its logs, or cancel an active one"),
	                     QSIM_CLI_OPT_NONE, qsim_cli_cmd_delete_request));
	g_ptr_array_add(
	    cmds,
	    qsim_cli_cmd_new(
	        "submit",
	        _("VM [--timeout S] [--upload LOCAL:/GUEST]... [--artifact PATH]... -- COMMANDS"),
	        /* TRANSLATORS: command description */
	        _("Submit commands to run in a VM; prints the UUID"),
	        QSIM_CLI_OPT_TIMEOUT | QSIM_CLI_OPT_ARTIFACT | QSIM_CLI_OPT_UPLOAD,
	        qsim_cli_cmd_submit));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("cancel", _("UUID"),
	                                       /* TRANSLATORS: command description */
	                                       _("Cancel a pending, running or held request"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_cancel));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("hold", _("UUID"),
	                                       /* TRANSLATORS: command description */
	                                       _("Hold a request: keep it queued, or pause its VM"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_hold));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("resume", _("UUID"),
	                                       /* TRANSLATORS: command description */
	                                       _("Resume a held request"), QSIM_CLI_OPT_NONE,
	                                       qsim_cli_cmd_resume));
	g_ptr_array_add(
	    cmds, qsim_cli_cmd_new("purge", "--before AGE [--status STATUS]",
	                           /* TRANSLATORS: command description */
	                           _("Delete finished requests older than AGE, and their logs"),
	                           QSIM_CLI_OPT_BEFORE | QSIM_CLI_OPT_STATUS, qsim_cli_cmd_purge));
}
