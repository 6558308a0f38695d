#pragma once

#include <gio/gio.h>

#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

/* QMP migration to and from a template's state file (QEMU 7.2 has no file: URI, so
 * exec: with `cat`; the path goes through QEMU's /bin/sh and is therefore checked). */

gboolean qsim_template_migrate_path_is_safe(const gchar *path);
gchar **qsim_template_migrate_incoming_argv(const gchar *const *argv);

void qsim_template_migrate_save_async(QsimQmpClient *qmp, const gchar *state_path, guint timeout_ms,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean qsim_template_migrate_save_finish(GAsyncResult *result, GError **error);

void qsim_template_migrate_load_async(QsimQmpClient *qmp, const gchar *state_path, guint timeout_ms,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean qsim_template_migrate_load_finish(GAsyncResult *result, GError **error);

G_END_DECLS
