#pragma once

#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

/*
 * Typed QMP migration commands, with the conventions of qsim-qmp-commands.h: each checks
 * the shape of QEMU's `return`, and a reply of the wrong shape fails at once with
 * QSIM_ERROR_QMP "unexpected reply" instead of reading as an empty value.
 */

/* migrate-set-capabilities with one capability; `return` must be an empty object. */
void qsim_qmp_client_migrate_set_capability_async(QsimQmpClient *self, const gchar *capability,
                                                  gboolean state, guint timeout_ms,
                                                  GCancellable *cancellable,
                                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_qmp_client_migrate_set_capability_finish(QsimQmpClient *self, GAsyncResult *result,
                                                       GError **error);

/* getfd: hands QEMU @fd under @fdname (SCM_RIGHTS; the caller keeps its own fd). */
void qsim_qmp_client_getfd_async(QsimQmpClient *self, const gchar *fdname, gint fd,
                                 guint timeout_ms, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_qmp_client_getfd_finish(QsimQmpClient *self, GAsyncResult *result, GError **error);

/* migrate: starts an outgoing migration to @uri; query-migrate follows it. */
void qsim_qmp_client_migrate_async(QsimQmpClient *self, const gchar *uri, guint timeout_ms,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
gboolean qsim_qmp_client_migrate_finish(QsimQmpClient *self, GAsyncResult *result, GError **error);

/* migrate-incoming: loads from @uri in a QEMU started with `-incoming defer`. */
void qsim_qmp_client_migrate_incoming_async(QsimQmpClient *self, const gchar *uri, guint timeout_ms,
                                            GCancellable *cancellable, GAsyncReadyCallback callback,
                                            gpointer user_data);
gboolean qsim_qmp_client_migrate_incoming_finish(QsimQmpClient *self, GAsyncResult *result,
                                                 GError **error);

/* query-migrate: status is QEMU's MigrationStatus ("setup", "active", "completed",
 * "failed", ...; "none" when QEMU has not migrated yet and omits it), transfer full;
 * error_desc is QEMU's reason for a failure or NULL. Either out pointer may be NULL. */
void qsim_qmp_client_query_migrate_async(QsimQmpClient *self, guint timeout_ms,
                                         GCancellable *cancellable, GAsyncReadyCallback callback,
                                         gpointer user_data);
gboolean qsim_qmp_client_query_migrate_finish(QsimQmpClient *self, GAsyncResult *result,
                                              gchar **status, gchar **error_desc, GError **error);

G_END_DECLS
