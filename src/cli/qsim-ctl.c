#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/qsim-error.h"
#include "qsim-cli-commands.h"
#include "qsim-cli.h"

static gchar *
qsim_ctl_commands_summary(GPtrArray *cmds)
{
	GString *out = g_string_new(NULL);

	/* TRANSLATORS: heading of the command list in --help */
	g_string_append_printf(out, "%s\n", _("Commands:"));
	for (guint i = 0; i < cmds->len; i++) {
		QsimCliCmd *cmd = g_ptr_array_index(cmds, i);
		g_string_append_printf(out, "  %s", qsim_cli_cmd_get_name(cmd));
		if (cmd->arguments != NULL)
			g_string_append_printf(out, " %s", cmd->arguments);
		g_string_append_printf(out, "\n      %s", cmd->description);
		if (cmd->names[1] != NULL) {
			g_autofree gchar *aliases = g_strjoinv(", ", cmd->names + 1);
			/* TRANSLATORS: %s is a list of other names of a command */
			g_string_append_printf(out, _(" (aliases: %s)"), aliases);
		}
		g_string_append_c(out, '\n');
	}
	g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

static const QsimCliCmd *
qsim_ctl_find_command(GPtrArray *cmds, const gchar *name)
{
	for (guint i = 0; i < cmds->len; i++) {
		QsimCliCmd *cmd = g_ptr_array_index(cmds, i);
		if (qsim_cli_cmd_has_name(cmd, name))
			return cmd;
	}
	return NULL;
}

/* fails when an option was given that the command does not use: silently ignoring
 * `stats --follow` would hide typos */
static gboolean
qsim_ctl_check_options(QsimCli *cli, GError **error)
{
	struct {
		QsimCliOpt flag;
		gboolean set;
		const gchar *name;
	} opts[] = {
	    {QSIM_CLI_OPT_STATUS, cli->opt_status != NULL, "--status"},
	    {QSIM_CLI_OPT_LIMIT, cli->opt_limit != NULL, "--limit"},
	    {QSIM_CLI_OPT_LOG_TYPE, cli->opt_log_type != NULL, "--log-type"},
	    {QSIM_CLI_OPT_FOLLOW, cli->opt_follow, "--follow"},
	    {QSIM_CLI_OPT_TIMEOUT, cli->opt_timeout != NULL, "--timeout"},
	    {QSIM_CLI_OPT_FORCE, cli->opt_force, "--force"},
	    {QSIM_CLI_OPT_WAIT, cli->opt_wait, "--wait"},
	    {QSIM_CLI_OPT_BEFORE, cli->opt_before != NULL, "--before"},
	    {QSIM_CLI_OPT_ARTIFACT, cli->opt_artifacts != NULL, "--artifact"},
	    {QSIM_CLI_OPT_OUTPUT_DIR, cli->opt_output_dir != NULL, "--output-dir"},
	    {QSIM_CLI_OPT_GET, cli->opt_get != NULL, "--get"},
	    {QSIM_CLI_OPT_UPLOAD, cli->opt_uploads != NULL, "--upload"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(opts); i++) {
		if (opts[i].set && (cli->cmd->options & opts[i].flag) == 0) {
			/* TRANSLATORS: a command, then an option such as --follow */
			return qsim_cli_usage_error(cli, error, _("%s does not take %s"),
			                            qsim_cli_cmd_get_name(cli->cmd), opts[i].name);
		}
	}
	return TRUE;
}

static gint
qsim_ctl_run(int argc, char **argv)
{
	g_autoptr(QsimCli) cli = qsim_cli_new();
	g_autoptr(GPtrArray) cmds =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_cli_cmd_free);
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	g_auto(GStrv) args = NULL;
	g_autofree gchar *url = NULL;
	g_autofree gchar *token = NULL;
	g_autofree gchar *summary = NULL;
	gboolean version = FALSE;
	gboolean seen_separator = FALSE;
	const GOptionEntry entries[] = {
	    {"url", 'u', 0, G_OPTION_ARG_STRING, &url,
	     /* TRANSLATORS: --url option; QSIM_URL is an environment variable */
	     N_("Server URL (default: $QSIM_URL, else http://127.0.0.1:8000)"), N_("URL")},
	    {"token", 't', 0, G_OPTION_ARG_STRING, &token,
	     /* TRANSLATORS: --token option */
	     N_("API token (default: $QSIM_TOKEN)"), N_("TOKEN")},
	    {"json", 'j', 0, G_OPTION_ARG_NONE, &cli->json,
	     /* TRANSLATORS: --json option */
	     N_("Print JSON instead of tables"), NULL},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &version,
	     /* TRANSLATORS: --version option */
	     N_("Print the version and exit"), NULL},
	    {"status", 's', 0, G_OPTION_ARG_STRING, &cli->opt_status,
	     /* TRANSLATORS: --status option of list-requests */
	     N_("list-requests, purge: only requests with this status"), N_("STATUS")},
	    {"limit", 'n', 0, G_OPTION_ARG_STRING, &cli->opt_limit,
	     /* TRANSLATORS: --limit option */
	     N_("list-requests, show-logs: at most N entries"), N_("N")},
	    {"log-type", 'T', 0, G_OPTION_ARG_STRING, &cli->opt_log_type,
	     /* TRANSLATORS: --log-type option; keep the type names untranslated */
	     N_("show-logs: only boot, command, stdout, stderr or system"), N_("TYPE")},
	    {"follow", 'f', 0, G_OPTION_ARG_NONE, &cli->opt_follow,
	     /* TRANSLATORS: --follow option */
	     N_("show-logs: stream new output until the request ends"), NULL},
	    {"timeout", 0, 0, G_OPTION_ARG_STRING, &cli->opt_timeout,
	     /* TRANSLATORS: --timeout option */
	     N_("submit, run: seconds before the request times out; prepare --wait: seconds to "
	        "wait (900)"),
	     N_("S")},
	    {"force", 0, 0, G_OPTION_ARG_NONE, &cli->opt_force,
	     /* TRANSLATORS: --force option */
	     N_("prepare: rebuild the template even when it is fresh"), NULL},
	    {"wait", 'w', 0, G_OPTION_ARG_NONE, &cli->opt_wait,
	     /* TRANSLATORS: --wait option */
	     N_("prepare: wait until the template is ready or its build failed"), NULL},
	    {"host", 0, 0, G_OPTION_ARG_STRING, &cli->opt_host,
	     /* TRANSLATORS: --host option of prepare; HOST_ID stays as it is */
	     N_("prepare: only on this host (its HOST_ID); default: every host that has the VM"),
	     N_("HOST")},
	    {"before", 0, 0, G_OPTION_ARG_STRING, &cli->opt_before,
	     /* TRANSLATORS: --before option; keep 7d, 12h and 0 as they are */
	     N_("purge: requests that finished longer ago than this (7d, 12h, 0 = until now) or "
	        "before this ISO-8601 time"),
	     N_("AGE")},
	    {"artifact", 'a', 0, G_OPTION_ARG_STRING_ARRAY, &cli->opt_artifacts,
	     /* TRANSLATORS: --artifact option */
	     N_("submit, run: a guest path or glob to collect after the commands (repeatable)"),
	     N_("PATH")},
	    {"output-dir", 'o', 0, G_OPTION_ARG_FILENAME, &cli->opt_output_dir,
	     /* TRANSLATORS: --output-dir option */
	     N_("run, artifacts: download the artifacts into this directory"), N_("DIR")},
	    {"upload", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &cli->opt_uploads,
	     /* TRANSLATORS: --upload option; keep LOCAL:/GUEST as it is */
	     N_("submit, run: put a local file or directory into the guest before the commands "
	        "(repeatable)"),
	     N_("LOCAL:/GUEST")},
	    {"get", 0, 0, G_OPTION_ARG_STRING, &cli->opt_get,
	     /* TRANSLATORS: --get option of artifacts */
	     N_("artifacts: download only this artifact"), N_("NAME")},
	    {NULL},
	};

	qsim_cli_requests_register(cmds);
	qsim_cli_logs_register(cmds);
	qsim_cli_run_register(cmds);
	qsim_cli_system_register(cmds);
	qsim_cli_artifacts_register(cmds);

	/* TRANSLATORS: the parameter synopsis in --help */
	context = g_option_context_new(_("COMMAND [ARGUMENTS…]"));
	g_option_context_add_main_entries(context, entries, GETTEXT_PACKAGE);
	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	summary = qsim_ctl_commands_summary(cmds);
	g_option_context_set_summary(context, summary);
	/* TRANSLATORS: the end of --help */
	g_option_context_set_description(
	    context, _("Exit status: 0 success, 1 error, 2 usage error; run exits with the "
	               "guest's status, 124 on timeout, 125 on an infrastructure failure, 130 "
	               "when interrupted. See qsim-ctl(1)."));
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		qsim_cli_printerr("%s", error->message);
		return QSIM_CLI_EXIT_USAGE;
	}
	if (version) {
		g_print("qsim-ctl %s\n", PACKAGE_VERSION);
		return QSIM_CLI_EXIT_OK;
	}
	if (url == NULL && g_getenv("QSIM_URL") != NULL && g_getenv("QSIM_URL")[0] != '\0')
		url = g_strdup(g_getenv("QSIM_URL"));
	if (token == NULL && g_getenv("QSIM_TOKEN") != NULL && g_getenv("QSIM_TOKEN")[0] != '\0')
		token = g_strdup(g_getenv("QSIM_TOKEN"));
	if ((url != NULL && !qsim_cli_set_url(cli, url, &error)) ||
	    (token != NULL && !qsim_cli_set_token(cli, token, &error))) {
		qsim_cli_printerr("%s", error->message);
		return QSIM_CLI_EXIT_USAGE;
	}

	/* GOption keeps a "--"; drop the first one, everything after it is literal */
	for (gint i = 1; i < argc; i++) {
		if (!seen_separator && g_strcmp0(argv[i], "--") == 0) {
			seen_separator = TRUE;
			continue;
		}
		g_strv_builder_add(builder, argv[i]);
	}
	args = g_strv_builder_end(builder);
	if (args[0] == NULL) {
		/* TRANSLATORS: no command on the command line */
		qsim_cli_printerr("%s", _("no command given; see qsim-ctl --help"));
		return QSIM_CLI_EXIT_USAGE;
	}
	cli->cmd = qsim_ctl_find_command(cmds, args[0]);
	if (cli->cmd == NULL) {
		/* TRANSLATORS: %s is the unknown command */
		qsim_cli_printerr(_("unknown command “%s”; see qsim-ctl --help"), args[0]);
		return QSIM_CLI_EXIT_USAGE;
	}
	if (!qsim_ctl_check_options(cli, &error) || !cli->cmd->callback(cli, args + 1, &error)) {
		if (error != NULL)
			qsim_cli_printerr("%s", error->message);
		return cli->exit_code != 0 ? cli->exit_code : QSIM_CLI_EXIT_ERROR;
	}
	return cli->exit_code;
}

int
main(int argc, char **argv)
{
	const gchar *localedir = g_getenv("QSIM_LOCALEDIR");
	gint rc;

	setlocale(LC_ALL, "");
	/* QSIM_LOCALEDIR lets the tests use the catalogs of an uninstalled build */
	bindtextdomain(GETTEXT_PACKAGE,
	               localedir != NULL && localedir[0] != '\0' ? localedir : LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);

	rc = qsim_ctl_run(argc, argv);
	if (fflush(stdout) != 0 && rc == QSIM_CLI_EXIT_OK)
		rc = QSIM_CLI_EXIT_ERROR;
	return rc;
}
