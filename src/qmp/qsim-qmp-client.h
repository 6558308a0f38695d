#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Used when a caller passes timeout_ms = 0 to qsim_qmp_client_execute_async(). */
#define QSIM_QMP_DEFAULT_TIMEOUT_MS 30000

#define QSIM_TYPE_QMP_CLIENT (qsim_qmp_client_get_type())
G_DECLARE_FINAL_TYPE(QsimQmpClient, qsim_qmp_client, QSIM, QMP_CLIENT, GObject)

/*
 * QsimQmpClient: one QMP connection (QEMU serves one client at a time; QsimVm owns it).
 * Everything runs on the thread-default main context at the time of the call; no threads,
 * nothing blocks.
 *
 * Signals:
 *   "event"  (const gchar *name, JsonObject *data (nullable), gint64 timestamp_us)
 *            a QMP event such as STOP, RESUME, SHUTDOWN, POWERDOWN; timestamp_us is QEMU's
 *            timestamp in microseconds since the epoch, or -1 if QEMU sent none.
 *   "closed" (GError *error): emitted exactly once when the connection ends. error is NULL
 *            after qsim_qmp_client_close(), else a QSIM_ERROR_QMP (EOF, protocol error) or
 *            QSIM_ERROR_IO. Every pending call has failed before "closed" is emitted.
 */

void qsim_qmp_client_connect_async(const gchar *socket_path, guint timeout_ms,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);

QsimQmpClient *qsim_qmp_client_connect_finish(GAsyncResult *result, GError **error);

void qsim_qmp_client_new_for_stream_async(GIOStream *stream, guint timeout_ms,
                                          GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data);

QsimQmpClient *qsim_qmp_client_new_for_stream_finish(GAsyncResult *result, GError **error);

void qsim_qmp_client_execute_async(QsimQmpClient *self, const gchar *command, JsonObject *arguments,
                                   guint timeout_ms, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);

void qsim_qmp_client_execute_with_fd_async(QsimQmpClient *self, const gchar *command,
                                           JsonObject *arguments, gint fd, guint timeout_ms,
                                           GCancellable *cancellable, GAsyncReadyCallback callback,
                                           gpointer user_data);

JsonNode *qsim_qmp_client_execute_finish(QsimQmpClient *self, GAsyncResult *result, GError **error);

const gchar *qsim_qmp_client_get_version(QsimQmpClient *self);

void qsim_qmp_client_get_version_numbers(QsimQmpClient *self, guint *major, guint *minor,
                                         guint *micro);

const gchar *qsim_qmp_client_get_package(QsimQmpClient *self);

gboolean qsim_qmp_client_is_connected(QsimQmpClient *self);

gboolean qsim_qmp_client_get_eof(QsimQmpClient *self);

guint qsim_qmp_client_get_n_pending(QsimQmpClient *self);

void qsim_qmp_client_close(QsimQmpClient *self);

G_END_DECLS
