#pragma once

/* Shared by the files that implement typed QMP commands (qsim-qmp-commands.c,
 * qsim-qmp-migrate.c); not for use outside src/qmp/. */

#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

GError *qsim_qmp_commands_unexpected_reply(const gchar *command, const gchar *why);
void qsim_qmp_commands_run_empty(QsimQmpClient *self, const gchar *command, JsonObject *arguments,
                                 gint fd, guint timeout_ms, GCancellable *cancellable,
                                 gpointer source_tag, GAsyncReadyCallback callback,
                                 gpointer user_data);
gboolean qsim_qmp_commands_finish_boolean(QsimQmpClient *self, GAsyncResult *result,
                                          gpointer source_tag, GError **error);

G_END_DECLS
