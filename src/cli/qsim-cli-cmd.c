#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include "qsim-cli-cmd.h"

/**
 * qsim_cli_cmd_new:
 * @names: comma separated names, the first one canonical
 * @arguments: (nullable): argument synopsis shown in --help
 * @description: the already translated description
 * @options: the per-command options this command accepts
 * @callback: the function that runs the command
 *
 * Returns: (transfer full): a new command, free with qsim_cli_cmd_free()
 */
QsimCliCmd *
qsim_cli_cmd_new(const gchar *names, const gchar *arguments, const gchar *description,
                 QsimCliOpt options, QsimCliCmdFunc callback)
{
	QsimCliCmd *cmd;

	g_return_val_if_fail(names != NULL && names[0] != '\0', NULL);
	cmd = g_new0(QsimCliCmd, 1);
	cmd->names = g_strsplit(names, ",", -1);
	cmd->arguments = g_strdup(arguments);
	cmd->description = g_strdup(description);
	cmd->options = options;
	cmd->callback = callback;
	return cmd;
}

/**
 * qsim_cli_cmd_free:
 * @cmd: (nullable): a command
 */
void
qsim_cli_cmd_free(QsimCliCmd *cmd)
{
	if (cmd == NULL)
		return;
	g_strfreev(cmd->names);
	g_free(cmd->arguments);
	g_free(cmd->description);
	g_free(cmd);
}

/**
 * qsim_cli_cmd_get_name:
 * @cmd: a command
 *
 * Returns: (transfer none): the canonical name
 */
const gchar *
qsim_cli_cmd_get_name(const QsimCliCmd *cmd)
{
	return cmd->names[0];
}

/**
 * qsim_cli_cmd_has_name:
 * @cmd: a command
 * @name: a name typed by the user
 *
 * Returns: %TRUE if @name is the command's name or one of its aliases
 */
gboolean
qsim_cli_cmd_has_name(const QsimCliCmd *cmd, const gchar *name)
{
	return g_strv_contains((const gchar *const *)cmd->names, name);
}
