#pragma once

#include <gio/gio.h>

#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

/* QMP migration to and from a template's state file, guest RAM left out (it lives in the
 * template's RAM file). No shell and no path reach QEMU: the save hands it the open
 * file with `getfd`, the load reads an fd QEMU inherited. */

void qsim_template_migrate_save_async(QsimQmpClient *qmp, gint state_fd, guint timeout_ms,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean qsim_template_migrate_save_finish(GAsyncResult *result, GError **error);

void qsim_template_migrate_load_async(QsimQmpClient *qmp, gint qemu_fd, guint timeout_ms,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean qsim_template_migrate_load_finish(GAsyncResult *result, GError **error);

G_END_DECLS
