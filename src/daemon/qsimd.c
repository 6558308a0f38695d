#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>

#include "common/qsim-config.h"
#include "common/qsim-error.h"
#include "store/qsim-store-factory.h"
#include "common/qsim-layout.h"
#include "common/qsim-log.h"
#include "common/qsim-rlimit.h"
#include "daemon/qsimd-commands.h"

/* The command table: one row per command, the handler in qsimd-cmd-<name>.c. */
static const struct {
	const gchar *name;
	const gchar *args;
	const gchar *description;
	QsimdCommandFunc handler;
} commands[] = {
    {"agents", "", "Run the agents that execute requests (several processes may share a database)",
     qsimd_cmd_agents},
    {"all", "", "Serve the REST API and run the agents in one process", qsimd_cmd_all},
    {"api", "", "Serve the REST API (agents run in `qsimd agents`)", qsimd_cmd_api},
    {"config", "[--json]", "Print the effective configuration and where each value comes from",
     qsimd_cmd_config},
    {"migrate-store", "--from A --to B",
     "Copy a database (sqlite:PATH or postgresql://…) to another; check the row counts",
     qsimd_cmd_migrate_store},
    {"prepare", "[--force] [--check] VM…", "Build fast-start templates (boot once, save the guest)",
     qsimd_cmd_prepare},
    {"run-vm", "[--timeout S] VM [--] CMD…", "Boot a VM on an overlay and run one command in it",
     qsimd_cmd_run_vm},
    {"status", "", "Check the database, QEMU and the VMs; exit non-zero naming any problem",
     qsimd_cmd_status},
    {"vacuum", "", "Rewrite the database once so purged space goes back to the disk",
     qsimd_cmd_vacuum},
};

/* global flags: strings, so values are validated by QsimConfig with its messages */
static gchar *opt_config;
static gchar *opt_db;
static gchar *opt_host;
static gchar *opt_port;
static gchar *opt_agents;
static gchar *opt_images_dir;
static gchar *opt_configs_dir;
static gchar *opt_max_vms;
static gchar *opt_log_level;
static gchar *opt_accel;
static gboolean opt_insecure_no_auth;

static const GOptionEntry global_entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "Read this keyfile", "FILE"},
    {"db", 0, 0, G_OPTION_ARG_FILENAME, &opt_db, "SQLite database (DB_PATH)", "PATH"},
    {"host", 0, 0, G_OPTION_ARG_STRING, &opt_host, "Listen address (API_HOST)", "HOST"},
    {"port", 0, 0, G_OPTION_ARG_STRING, &opt_port, "Listen port (API_PORT)", "PORT"},
    {"agents", 0, 0, G_OPTION_ARG_STRING, &opt_agents, "Number of agents (AGENT_COUNT)", "N"},
    {"images-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_images_dir, "VM images (VM_IMAGES_DIR)",
     "DIR"},
    {"configs-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_configs_dir, "VM configs (VM_CONFIG_DIR)",
     "DIR"},
    {"max-vms", 0, 0, G_OPTION_ARG_STRING, &opt_max_vms, "Concurrent VM limit (MAX_CONCURRENT_VMS)",
     "N"},
    {"accel", 0, 0, G_OPTION_ARG_STRING, &opt_accel, "auto, kvm or tcg (ACCEL)", "ACCEL"},
    {"log-level", 0, 0, G_OPTION_ARG_STRING, &opt_log_level,
     "DEBUG, INFO, WARNING or ERROR (LOG_LEVEL)", "LEVEL"},
    {"insecure-no-auth", 0, 0, G_OPTION_ARG_NONE, &opt_insecure_no_auth,
     "Serve the API without tokens (INSECURE_NO_AUTH)", NULL},
    {NULL},
};

static gchar *
qsimd_commands_help(void)
{
	g_autoptr(GString) s = g_string_new("Commands:\n");

	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		g_autofree gchar *usage =
		    g_strdup_printf("%s %s", commands[i].name, commands[i].args);
		g_string_append_printf(s, "  %-24s %s\n", usage, commands[i].description);
	}
	g_string_append(s, "\nSee docs/configuration.md for every setting and its sources.");
	return g_string_free(g_steal_pointer(&s), FALSE);
}

static gboolean
qsimd_apply_flags(QsimConfig *config, GError **error)
{
	const struct {
		const gchar *name;
		const gchar *value;
	} flags[] = {
	    {"DB_PATH", opt_db},
	    {"API_HOST", opt_host},
	    {"API_PORT", opt_port},
	    {"AGENT_COUNT", opt_agents},
	    {"VM_IMAGES_DIR", opt_images_dir},
	    {"VM_CONFIG_DIR", opt_configs_dir},
	    {"MAX_CONCURRENT_VMS", opt_max_vms},
	    {"LOG_LEVEL", opt_log_level},
	    {"ACCEL", opt_accel},
	    {"INSECURE_NO_AUTH", opt_insecure_no_auth ? "true" : NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(flags); i++) {
		if (flags[i].value != NULL &&
		    !qsim_config_set_flag(config, flags[i].name, flags[i].value, error))
			return FALSE;
	}
	return TRUE;
}

static gint
qsimd_fail(gint status, const GError *error)
{
	g_printerr("qsimd: %s\n", error->message);
	return status;
}

static gint
qsimd_find_command(const gchar *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (g_strcmp0(commands[i].name, name) == 0)
			return (gint)i;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	g_autoptr(GOptionContext) octx = g_option_context_new("COMMAND [ARGS…]");
	g_autoptr(QsimConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *help = qsimd_commands_help();
	g_auto(GStrv) args = NULL;
	QsimdContext ctx = {0};
	gint idx;
	gint status;

	/* every API client costs a descriptor: do not run out at the soft default */
	qsim_rlimit_raise_nofile(NULL);
	setlocale(LC_ALL, "");
	bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	g_set_prgname("qsimd");

	args = g_strdupv(argv);
	g_option_context_set_summary(octx, "QMP-driven QEMU VM orchestrator.");
	g_option_context_set_description(octx, help);
	g_option_context_add_main_entries(octx, global_entries, NULL);
	/* command options (e.g. `config --json`) are left for the command to parse */
	g_option_context_set_ignore_unknown_options(octx, TRUE);
	if (!g_option_context_parse_strv(octx, &args, &error))
		return qsimd_fail(QSIMD_EXIT_USAGE, error);
	if (args[1] == NULL) {
		g_printerr("qsimd: no command given (see qsimd --help)\n");
		return QSIMD_EXIT_USAGE;
	}
	if (args[1][0] == '-') {
		g_printerr("qsimd: unknown option '%s' (see qsimd --help)\n", args[1]);
		return QSIMD_EXIT_USAGE;
	}
	idx = qsimd_find_command(args[1]);
	if (idx < 0) {
		g_printerr("qsimd: unknown command '%s' (see qsimd --help)\n", args[1]);
		return QSIMD_EXIT_USAGE;
	}

	config = qsim_config_new();
	if (!qsimd_apply_flags(config, &error) ||
	    !qsim_config_load(config, opt_config, NULL, NULL, &error))
		return qsimd_fail(1, error);
	if (!qsim_log_setup(qsim_config_get_log_level(config), qsim_config_get_log_file(config),
	                    &error))
		return qsimd_fail(1, error);
	/* every store this process opens on PostgreSQL reads its password from it */
	qsim_store_set_password_file(qsim_config_get_database_password_file(config));
	/* every row this process writes for its host, and every agent id, names it */
	qsim_host_id_set(qsim_config_get_host_id(config));

	ctx.config = config;
	status = commands[idx].handler(&ctx, (gint)g_strv_length(args) - 1, args + 1, &error);
	if (status != 0 && error != NULL)
		return qsimd_fail(status, error);
	return status;
}
