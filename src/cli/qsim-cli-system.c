#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "qsim-cli-commands.h"
#include "qsim-cli-json.h"
#include "qsim-cli-table.h"

static gboolean
qsim_cli_get_object(QsimCli *cli, const gchar *path, JsonNode **reply, GError **error)
{
	if (!qsim_cli_call(cli, "GET", path, NULL, reply, NULL, error))
		return FALSE;
	if (*reply == NULL || !JSON_NODE_HOLDS_OBJECT(*reply)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	return TRUE;
}

static gchar *
qsim_cli_latency_text(JsonObject *obj, const gchar *member)
{
	JsonObject *lat = qsim_cli_json_get_object(obj, member);
	g_autofree gchar *p50 = NULL;
	g_autofree gchar *p95 = NULL;

	if (lat == NULL)
		return g_strdup("-");
	p50 = qsim_cli_json_to_text(lat, "p50");
	p95 = qsim_cli_json_to_text(lat, "p95");
	/* no finished requests yet: the server sends nulls */
	if (g_strcmp0(p50, "-") == 0 && g_strcmp0(p95, "-") == 0)
		return g_strdup("-");
	/* TRANSLATORS: latency percentiles in seconds */
	return g_strdup_printf(_("p50 %s s, p95 %s s"), p50, p95);
}

static gboolean
qsim_cli_cmd_stats(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(QsimCliTable) table = NULL;
	JsonObject *obj;
	JsonObject *counts;
	JsonObject *modes;
	g_autofree gchar *total = NULL;
	g_autofree gchar *running = NULL;
	g_autofree gchar *agents = NULL;
	g_autofree gchar *oldest = NULL;
	g_autofree gchar *queue = NULL;
	g_autofree gchar *run = NULL;

	if (!qsim_cli_check_nargs(cli, args, 0, 0, error))
		return FALSE;
	if (!qsim_cli_get_object(cli, "/stats", &reply, error))
		return FALSE;
	if (cli->json) {
		qsim_cli_json_print(reply, TRUE);
		return TRUE;
	}
	obj = json_node_get_object(reply);
	/* TRANSLATORS: headers of the stats table */
	table = qsim_cli_table_new(_("METRIC"), _("VALUE"), NULL);
	counts = qsim_cli_json_get_object(obj, "counts");
	if (counts != NULL) {
		g_autoptr(GList) members = json_object_get_members(counts);
		for (GList *l = members; l != NULL; l = l->next) {
			g_autofree gchar *value = qsim_cli_json_to_text(counts, l->data);
			/* TRANSLATORS: %s is a request status, not translated */
			g_autofree gchar *label =
			    g_strdup_printf(_("requests %s"), (const gchar *)l->data);
			qsim_cli_table_add_row(table, label, value);
		}
	}
	total = qsim_cli_json_to_text(obj, "total");
	running = qsim_cli_json_to_text(obj, "running_vms");
	agents = qsim_cli_json_to_text(obj, "agents");
	oldest = qsim_cli_json_to_text(obj, "oldest_pending_age_s");
	queue = qsim_cli_latency_text(obj, "queue_latency_s");
	run = qsim_cli_latency_text(obj, "run_latency_s");
	qsim_cli_table_add_row(table, _("requests total"), total);
	qsim_cli_table_add_row(table, _("running VMs"), running);
	qsim_cli_table_add_row(table, _("agents"), agents);
	qsim_cli_table_add_row(table, _("oldest pending (s)"), oldest);
	qsim_cli_table_add_row(table, _("queue latency"), queue);
	qsim_cli_table_add_row(table, _("run latency"), run);
	modes = qsim_cli_json_get_object(obj, "start_modes");
	if (modes != NULL) {
		g_autoptr(GList) members = json_object_get_members(modes);
		for (GList *l = members; l != NULL; l = l->next) {
			JsonObject *mode = qsim_cli_json_get_object(modes, l->data);
			g_autofree gchar *count = NULL;
			g_autofree gchar *p50 = NULL;
			g_autofree gchar *label = NULL;
			g_autofree gchar *value = NULL;

			if (mode == NULL)
				continue;
			count = qsim_cli_json_to_text(mode, "count");
			p50 = qsim_cli_json_to_text(mode, "submit_to_running_p50_s");
			/* TRANSLATORS: %s is a start mode (cold, snapshot, warm), not translated */
			label = g_strdup_printf(_("started %s"), (const gchar *)l->data);
			/* TRANSLATORS: a count of requests, then the median seconds from submit
			 * to running */
			value = g_strdup_printf(_("%s, submit to running p50 %s s"), count, p50);
			qsim_cli_table_add_row(table, label, value);
		}
	}
	qsim_cli_table_print(table);
	return TRUE;
}

static gboolean
qsim_cli_cmd_status(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(GError) error_local = NULL;
	JsonObject *obj;
	const gchar *status;

	if (!qsim_cli_check_nargs(cli, args, 0, 0, error))
		return FALSE;
	if (!qsim_cli_get_object(cli, "/health", &reply, &error_local)) {
		if (g_error_matches(error_local, QSIM_ERROR, QSIM_ERROR_IO)) {
			g_propagate_error(error, g_steal_pointer(&error_local));
			return FALSE;
		}
		/* TRANSLATORS: %s is the server URL, then the reason */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		            _("the server at %s is unhealthy: %s"), cli->url, error_local->message);
		return FALSE;
	}
	obj = json_node_get_object(reply);
	status = qsim_cli_json_get_string(obj, "status");
	if (cli->json)
		qsim_cli_json_print(reply, TRUE);
	if (g_strcmp0(status, "ok") != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		            _("the server at %s is unhealthy: %s"), cli->url,
		            status != NULL ? status : "?");
		return FALSE;
	}
	if (!cli->json) {
		g_autoptr(QsimCliTable) table = qsim_cli_table_new(_("CHECK"), _("VALUE"), NULL);
		g_autofree gchar *database = qsim_cli_json_to_text(obj, "database");
		g_autofree gchar *schema = qsim_cli_json_to_text(obj, "schema_version");
		g_autofree gchar *version = qsim_cli_json_to_text(obj, "version");
		/* TRANSLATORS: rows of the status table */
		qsim_cli_table_add_row(table, _("server"), cli->url);
		qsim_cli_table_add_row(table, _("status"), status);
		qsim_cli_table_add_row(table, _("database"), database);
		qsim_cli_table_add_row(table, _("schema version"), schema);
		qsim_cli_table_add_row(table, _("server version"), version);
		qsim_cli_table_add_row(table, _("client version"), PACKAGE_VERSION);
		qsim_cli_table_print(table);
	}
	return TRUE;
}

static gint
qsim_cli_compare_strings(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(a, b);
}

static gboolean
qsim_cli_cmd_config(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(QsimCliTable) table = NULL;
	g_autoptr(GList) keys = NULL;
	JsonObject *obj;

	if (!qsim_cli_check_nargs(cli, args, 0, 0, error))
		return FALSE;
	if (!qsim_cli_get_object(cli, "/config", &reply, error))
		return FALSE;
	if (cli->json) {
		qsim_cli_json_print(reply, TRUE);
		return TRUE;
	}
	obj = json_node_get_object(reply);
	/* TRANSLATORS: headers of the config table */
	table = qsim_cli_table_new(_("KEY"), _("VALUE"), _("SOURCE"), NULL);
	keys = g_list_sort(json_object_get_members(obj), qsim_cli_compare_strings);
	for (GList *l = keys; l != NULL; l = l->next) {
		JsonObject *entry = qsim_cli_json_get_object(obj, l->data);
		g_autofree gchar *value = NULL;
		g_autofree gchar *source = NULL;
		if (entry == NULL)
			continue;
		value = qsim_cli_json_to_text(entry, "value");
		source = qsim_cli_json_to_text(entry, "source");
		qsim_cli_table_add_row(table, l->data, value, source);
	}
	qsim_cli_table_print(table);
	return TRUE;
}

/* "3m", "2h", "5d": a template's age at a glance */
static gchar *
qsim_cli_age_text(gdouble seconds)
{
	if (seconds < 60)
		return g_strdup_printf("%.0fs", seconds);
	if (seconds < 3600)
		return g_strdup_printf("%.0fm", seconds / 60);
	if (seconds < 86400)
		return g_strdup_printf("%.0fh", seconds / 3600);
	return g_strdup_printf("%.0fd", seconds / 86400);
}

/* the TEMPLATE, TPL SIZE and TPL AGE cells of one VM */
static void
qsim_cli_template_cells(JsonObject *vm, gchar **state, gchar **size, gchar **age)
{
	JsonObject *tpl = qsim_cli_json_get_object(vm, "template");
	gint64 bytes = 0;
	JsonNode *age_node;

	*state = g_strdup(tpl != NULL && qsim_cli_json_get_string(tpl, "state") != NULL
	                      ? qsim_cli_json_get_string(tpl, "state")
	                      : "-");
	*size = tpl != NULL && qsim_cli_json_get_int(tpl, "size_bytes", &bytes) && bytes > 0
	            ? g_format_size((guint64)bytes)
	            : g_strdup("-");
	age_node = tpl != NULL ? json_object_get_member(tpl, "age_s") : NULL;
	*age = age_node != NULL && JSON_NODE_HOLDS_VALUE(age_node)
	           ? qsim_cli_age_text(json_node_get_double(age_node))
	           : g_strdup("-");
}

static gboolean
qsim_cli_cmd_vms(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(QsimCliTable) table = NULL;
	JsonArray *array;

	if (!qsim_cli_check_nargs(cli, args, 0, 0, error))
		return FALSE;
	if (!qsim_cli_call(cli, "GET", "/vms", NULL, &reply, NULL, error))
		return FALSE;
	if (reply == NULL || !JSON_NODE_HOLDS_ARRAY(reply)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	if (cli->json) {
		qsim_cli_json_print(reply, TRUE);
		return TRUE;
	}
	array = json_node_get_array(reply);
	if (json_array_get_length(array) == 0) {
		/* TRANSLATORS: the server has no VM images */
		g_print("%s\n", _("No VMs."));
		return TRUE;
	}
	/* TRANSLATORS: headers of the vms table; TEMPLATE is the fast-start template's
	 * state, TPL SIZE and TPL AGE its size and age */
	table = qsim_cli_table_new(_("NAME"), _("FORMAT"), _("SIZE"), _("VALID"), _("TEMPLATE"),
	                           _("TPL SIZE"), _("TPL AGE"), _("IMAGE"), _("ERROR"), NULL);
	for (guint i = 0; i < json_array_get_length(array); i++) {
		JsonNode *node = json_array_get_element(array, i);
		JsonObject *vm;
		gint64 size = 0;
		g_autofree gchar *name = NULL;
		g_autofree gchar *format = NULL;
		g_autofree gchar *size_text = NULL;
		g_autofree gchar *valid = NULL;
		g_autofree gchar *image = NULL;
		g_autofree gchar *err = NULL;
		g_autofree gchar *tpl_state = NULL;
		g_autofree gchar *tpl_size = NULL;
		g_autofree gchar *tpl_age = NULL;

		if (!JSON_NODE_HOLDS_OBJECT(node))
			continue;
		vm = json_node_get_object(node);
		name = qsim_cli_json_to_text(vm, "name");
		format = qsim_cli_json_to_text(vm, "format");
		size_text = qsim_cli_json_get_int(vm, "size_bytes", &size) && size >= 0
		                ? g_format_size((guint64)size)
		                : g_strdup("-");
		valid = qsim_cli_json_to_text(vm, "valid");
		image = qsim_cli_json_to_text(vm, "image");
		err = qsim_cli_json_to_text(vm, "error");
		qsim_cli_template_cells(vm, &tpl_state, &tpl_size, &tpl_age);
		qsim_cli_table_add_row(table, name, format, size_text, valid, tpl_state, tpl_size,
		                       tpl_age, image, err);
	}
	qsim_cli_table_print(table);
	return TRUE;
}

/* How long `prepare --wait` sleeps between two looks at the template */
#define QSIM_CLI_PREPARE_POLL_US (500 * 1000)
/* `prepare --wait` without --timeout: far above a real build (seconds to minutes) */
#define QSIM_CLI_PREPARE_DEFAULT_TIMEOUT_S 900

/* TRUE when the prepare request was taken and no build runs any more */
static gboolean
qsim_cli_template_settled(JsonObject *tpl)
{
	const gchar *state = qsim_cli_json_get_string(tpl, "state");
	JsonNode *requested = json_object_get_member(tpl, "prepare_requested");

	if (requested != NULL && JSON_NODE_HOLDS_VALUE(requested) &&
	    json_node_get_boolean(requested))
		return FALSE;
	return g_strcmp0(state, "building") != 0;
}

/* The template to wait for: the VM's, or with --host that host's row of it */
static JsonObject *
prepare_template(QsimCli *cli, JsonNode *reply)
{
	JsonObject *vm = json_node_get_object(reply);
	JsonNode *hosts;

	if (cli->opt_host == NULL)
		return qsim_cli_json_get_object(vm, "template");
	hosts = json_object_get_member(vm, "hosts");
	if (hosts == NULL || !JSON_NODE_HOLDS_ARRAY(hosts))
		return NULL;
	for (guint i = 0; i < json_array_get_length(json_node_get_array(hosts)); i++) {
		JsonNode *row = json_array_get_element(json_node_get_array(hosts), i);

		if (JSON_NODE_HOLDS_OBJECT(row) &&
		    g_strcmp0(qsim_cli_json_get_string(json_node_get_object(row), "host"),
		              cli->opt_host) == 0)
			return qsim_cli_json_get_object(json_node_get_object(row), "template");
	}
	return NULL;
}

static gboolean
qsim_cli_cmd_prepare(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) reply = NULL;
	g_autofree gchar *escaped = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *vm_path = NULL;
	JsonObject *tpl;
	const gchar *state;
	const gchar *reason;
	guint64 timeout_s = QSIM_CLI_PREPARE_DEFAULT_TIMEOUT_S;
	gint64 deadline;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error) ||
	    !qsim_cli_check_vm_name(cli, args[0], error))
		return FALSE;
	if (cli->opt_host != NULL && !qsim_host_id_validate(cli->opt_host, NULL))
		return qsim_cli_usage_error(cli, error, _("%s: not a host id"), "--host");
	if (cli->opt_timeout != NULL && !cli->opt_wait)
		return qsim_cli_usage_error(cli, error, _("%s needs %s"), "--timeout", "--wait");
	if (cli->opt_timeout != NULL && !qsim_cli_parse_positive(cli, "--timeout", cli->opt_timeout,
	                                                         G_MAXINT32, &timeout_s, error))
		return FALSE;
	deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	escaped = g_uri_escape_string(args[0], NULL, FALSE);
	path = g_strdup_printf(
	    "/vms/%s/prepare?force=%s%s%s", escaped, cli->opt_force ? "true" : "false",
	    cli->opt_host != NULL ? "&host=" : "", cli->opt_host != NULL ? cli->opt_host : "");
	if (!qsim_cli_call(cli, "POST", path, NULL, &reply, NULL, error))
		return FALSE;
	if (reply == NULL || !JSON_NODE_HOLDS_OBJECT(reply)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	vm_path = g_strdup_printf("/vms/%s", escaped);
	tpl = prepare_template(cli, reply);
	while (cli->opt_wait && (tpl == NULL || !qsim_cli_template_settled(tpl))) {
		gint64 left = deadline - g_get_monotonic_time();

		if (left <= 0) {
			qsim_cli_set_exit_code(cli, QSIM_CLI_EXIT_TIMEOUT);
			/* TRANSLATORS: %s is a VM name, then the number of seconds waited */
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
			            _("template of %s not ready after %u s; the build goes on"),
			            args[0], (guint)timeout_s);
			return FALSE;
		}
		g_usleep(MIN(QSIM_CLI_PREPARE_POLL_US, left));
		g_clear_pointer(&reply, json_node_unref);
		if (!qsim_cli_get_object(cli, vm_path, &reply, error))
			return FALSE;
		tpl = prepare_template(cli, reply);
	}
	if (cli->json)
		qsim_cli_json_print(reply, TRUE);
	state = tpl != NULL ? qsim_cli_json_get_string(tpl, "state") : NULL;
	reason = tpl != NULL ? qsim_cli_json_get_string(tpl, "reason") : NULL;
	if (!cli->opt_wait) {
		if (!cli->json)
			/* TRANSLATORS: %s is a VM name, then the template state (not translated) */
			g_print(_("Template of %s: prepare requested (now %s).\n"), args[0],
			        state != NULL ? state : "?");
		return TRUE;
	}
	if (g_strcmp0(state, "ready") != 0) {
		/* TRANSLATORS: %s is a VM name, then the template state (not translated),
		 * then why */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_VM, _("template of %s is %s: %s"),
		            args[0], state != NULL ? state : "?",
		            reason != NULL ? reason : _("no reason given"));
		return FALSE;
	}
	if (!cli->json) {
		g_autofree gchar *size = NULL;
		g_autofree gchar *age = NULL;
		g_autofree gchar *cells_state = NULL;

		qsim_cli_template_cells(json_node_get_object(reply), &cells_state, &size, &age);
		/* TRANSLATORS: %s is a VM name, then the template's size */
		g_print(_("Template of %s: ready, %s.\n"), args[0], size);
	}
	return TRUE;
}

/**
 * qsim_cli_system_register:
 * @cmds: (element-type QsimCliCmd): the command table, which takes ownership
 *
 * Adds stats, status, config, vms and prepare.
 */
void
qsim_cli_system_register(GPtrArray *cmds)
{
	g_ptr_array_add(cmds, qsim_cli_cmd_new("stats", NULL,
	                                       /* TRANSLATORS: command description */
	                                       _("Show request counts, running VMs and latencies"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_stats));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("status,health", NULL,
	                                       /* TRANSLATORS: command description */
	                                       _("Check the server's health; fails when unhealthy"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_status));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("config", NULL,
	                                       /* TRANSLATORS: command description */
	                                       _("Show the server's effective configuration"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_config));
	g_ptr_array_add(cmds, qsim_cli_cmd_new("vms", NULL,
	                                       /* TRANSLATORS: command description */
	                                       _("List the VMs the server can run"),
	                                       QSIM_CLI_OPT_NONE, qsim_cli_cmd_vms));
	g_ptr_array_add(
	    cmds,
	    qsim_cli_cmd_new("prepare", _("VM [--force] [--host HOST] [--wait [--timeout S]]"),
	                     /* TRANSLATORS: command description */
	                     _("Build the VM's fast-start template (restored instead of booted)"),
	                     QSIM_CLI_OPT_FORCE | QSIM_CLI_OPT_WAIT | QSIM_CLI_OPT_TIMEOUT,
	                     qsim_cli_cmd_prepare));
}
