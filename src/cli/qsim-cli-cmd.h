#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _QsimCli QsimCli;

/**
 * QsimCliCmdFunc:
 * @cli: the client state, with parsed global options
 * @args: (array zero-terminated=1): the positional arguments after the command name
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success; a command that needs a specific exit status sets it
 * with qsim_cli_set_exit_code().
 */
typedef gboolean (*QsimCliCmdFunc)(QsimCli *cli, gchar **args, GError **error);

/* which per-command options a command accepts; anything else is a usage error */
typedef enum {
	QSIM_CLI_OPT_NONE = 0,
	QSIM_CLI_OPT_STATUS = 1 << 0,
	QSIM_CLI_OPT_LIMIT = 1 << 1,
	QSIM_CLI_OPT_LOG_TYPE = 1 << 2,
	QSIM_CLI_OPT_FOLLOW = 1 << 3,
	QSIM_CLI_OPT_TIMEOUT = 1 << 4,
	QSIM_CLI_OPT_FORCE = 1 << 5,
	QSIM_CLI_OPT_WAIT = 1 << 6,
	QSIM_CLI_OPT_BEFORE = 1 << 7,
	QSIM_CLI_OPT_ARTIFACT = 1 << 8,
	QSIM_CLI_OPT_OUTPUT_DIR = 1 << 9,
	QSIM_CLI_OPT_GET = 1 << 10,
	QSIM_CLI_OPT_UPLOAD = 1 << 11,
} QsimCliOpt;

/**
 * QsimCliCmd:
 *
 * One entry of the command table: a name (the first of a comma separated list, the
 * rest are aliases), a short argument synopsis, a translated description and a callback.
 */
typedef struct {
	gchar **names;
	gchar *arguments;
	gchar *description;
	QsimCliOpt options;
	QsimCliCmdFunc callback;
} QsimCliCmd;

QsimCliCmd *qsim_cli_cmd_new(const gchar *names, const gchar *arguments, const gchar *description,
                             QsimCliOpt options, QsimCliCmdFunc callback);
void qsim_cli_cmd_free(QsimCliCmd *cmd);
const gchar *qsim_cli_cmd_get_name(const QsimCliCmd *cmd);
gboolean qsim_cli_cmd_has_name(const QsimCliCmd *cmd, const gchar *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimCliCmd, qsim_cli_cmd_free)

G_END_DECLS
