#pragma once

#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

/*
 * Typed QMP commands. Each is an _async/_finish pair on QsimQmpClient that checks the type
 * of QEMU's `return`; a reply of the wrong shape is QSIM_ERROR_QMP "unexpected reply".
 * timeout_ms = 0 means QSIM_QMP_DEFAULT_TIMEOUT_MS. Errors are QSIM_ERROR_QMP (QEMU's
 * class and desc in the message), QSIM_ERROR_TIMED_OUT or QSIM_ERROR_CANCELLED.
 */

/* query-status: status is QEMU's RunState string ("prelaunch", "running", "paused",
 * "shutdown", "guest-panicked", ...), transfer full; either out pointer may be NULL. */
void qsim_qmp_client_query_status_async(QsimQmpClient *self, guint timeout_ms,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data);
gboolean qsim_qmp_client_query_status_finish(QsimQmpClient *self, GAsyncResult *result,
                                             gboolean *running, gchar **status, GError **error);

/* stop, cont, system_powerdown, system_reset: `return` must be an empty object. */
void qsim_qmp_client_stop_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_qmp_client_stop_finish(QsimQmpClient *self, GAsyncResult *result, GError **error);

void qsim_qmp_client_cont_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_qmp_client_cont_finish(QsimQmpClient *self, GAsyncResult *result, GError **error);

void qsim_qmp_client_system_powerdown_async(QsimQmpClient *self, guint timeout_ms,
                                            GCancellable *cancellable, GAsyncReadyCallback callback,
                                            gpointer user_data);
gboolean qsim_qmp_client_system_powerdown_finish(QsimQmpClient *self, GAsyncResult *result,
                                                 GError **error);

void qsim_qmp_client_system_reset_async(QsimQmpClient *self, guint timeout_ms,
                                        GCancellable *cancellable, GAsyncReadyCallback callback,
                                        gpointer user_data);
gboolean qsim_qmp_client_system_reset_finish(QsimQmpClient *self, GAsyncResult *result,
                                             GError **error);

/* quit: QEMU may close the socket before or right after its reply; a connection that ends
 * while quit is pending counts as success. */
void qsim_qmp_client_quit_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_qmp_client_quit_finish(QsimQmpClient *self, GAsyncResult *result, GError **error);

/* human-monitor-command: returns HMP's output (transfer full, may be ""). */
void qsim_qmp_client_human_monitor_command_async(QsimQmpClient *self, const gchar *command_line,
                                                 guint timeout_ms, GCancellable *cancellable,
                                                 GAsyncReadyCallback callback, gpointer user_data);
gchar *qsim_qmp_client_human_monitor_command_finish(QsimQmpClient *self, GAsyncResult *result,
                                                    GError **error);

/* query-version: the running QEMU's version; out pointers may be NULL. */
void qsim_qmp_client_query_version_async(QsimQmpClient *self, guint timeout_ms,
                                         GCancellable *cancellable, GAsyncReadyCallback callback,
                                         gpointer user_data);
gboolean qsim_qmp_client_query_version_finish(QsimQmpClient *self, GAsyncResult *result,
                                              guint *major, guint *minor, guint *micro,
                                              GError **error);

G_END_DECLS
