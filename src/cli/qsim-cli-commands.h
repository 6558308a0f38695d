#pragma once

#include "qsim-cli.h"

G_BEGIN_DECLS

/* each area adds its commands (QsimCliCmd, owned by @cmds) to the table */
void qsim_cli_requests_register(GPtrArray *cmds);
void qsim_cli_logs_register(GPtrArray *cmds);
void qsim_cli_run_register(GPtrArray *cmds);
void qsim_cli_system_register(GPtrArray *cmds);
void qsim_cli_artifacts_register(GPtrArray *cmds);

JsonNode *qsim_cli_submit_multipart(QsimCli *cli, JsonNode *request, gchar **uploads,
                                    GError **error);
gboolean qsim_cli_artifacts_download(QsimCli *cli, const gchar *uuid, const gchar *dir,
                                     const gchar *only, guint *count, GError **error);

gchar *qsim_cli_submit(QsimCli *cli, gchar **args, JsonNode **reply, GError **error);

G_END_DECLS
