#define G_LOG_DOMAIN "qsim-qmp"

#include "config.h"

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands-private.h"
#include "qmp/qsim-qmp-json.h"
#include "qmp/qsim-qmp-migrate.h"

typedef struct {
	gchar *status;
	gchar *error_desc;
} MigrateResult;

static void
migrate_result_free(MigrateResult *r)
{
	g_free(r->status);
	g_free(r->error_desc);
	g_free(r);
}

/**
 * qsim_qmp_client_migrate_set_capability_async:
 * @self: a ready #QsimQmpClient
 * @capability: a MigrationCapability, e.g. "x-ignore-shared"
 * @state: whether to turn it on
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Sets one migration capability (QMP `migrate-set-capabilities`); both ends of a
 * migration need it before the stream starts.
 */
void
qsim_qmp_client_migrate_set_capability_async(QsimQmpClient *self, const gchar *capability,
                                             gboolean state, guint timeout_ms,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonObject) cap = json_object_new();
	g_autoptr(JsonArray) caps = json_array_new();

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	g_return_if_fail(capability != NULL);
	json_object_set_string_member(cap, "capability", capability);
	json_object_set_boolean_member(cap, "state", state);
	json_array_add_object_element(caps, g_steal_pointer(&cap));
	json_object_set_array_member(args, "capabilities", g_steal_pointer(&caps));
	qsim_qmp_commands_run_empty(self, "migrate-set-capabilities", args, -1, timeout_ms,
	                            cancellable, qsim_qmp_client_migrate_set_capability_async,
	                            callback, user_data);
}

gboolean
qsim_qmp_client_migrate_set_capability_finish(QsimQmpClient *self, GAsyncResult *result,
                                              GError **error)
{
	return qsim_qmp_commands_finish_boolean(
	    self, result, qsim_qmp_client_migrate_set_capability_async, error);
}

/**
 * qsim_qmp_client_getfd_async:
 * @self: a ready #QsimQmpClient over a unix socket
 * @fdname: the name QEMU keeps @fd under, for `fd:<fdname>` URIs
 * @fd: passed with the command; the caller keeps its own and may close it once done
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Hands QEMU an open file (QMP `getfd`): no path and no shell ever reach it.
 */
void
qsim_qmp_client_getfd_async(QsimQmpClient *self, const gchar *fdname, gint fd, guint timeout_ms,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
	g_autoptr(JsonObject) args = json_object_new();

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	g_return_if_fail(fdname != NULL);
	g_return_if_fail(fd >= 0);
	json_object_set_string_member(args, "fdname", fdname);
	qsim_qmp_commands_run_empty(self, "getfd", args, fd, timeout_ms, cancellable,
	                            qsim_qmp_client_getfd_async, callback, user_data);
}

gboolean
qsim_qmp_client_getfd_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result, qsim_qmp_client_getfd_async, error);
}

/**
 * qsim_qmp_client_migrate_async:
 * @self: a ready #QsimQmpClient
 * @uri: where to, e.g. "fd:<name from getfd>"
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once QEMU accepted the migration (not when it is done)
 * @user_data: data for @callback
 *
 * Starts an outgoing migration (QMP `migrate`); follow it with query-migrate.
 */
void
qsim_qmp_client_migrate_async(QsimQmpClient *self, const gchar *uri, guint timeout_ms,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
	g_autoptr(JsonObject) args = json_object_new();

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	g_return_if_fail(uri != NULL);
	json_object_set_string_member(args, "uri", uri);
	qsim_qmp_commands_run_empty(self, "migrate", args, -1, timeout_ms, cancellable,
	                            qsim_qmp_client_migrate_async, callback, user_data);
}

gboolean
qsim_qmp_client_migrate_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result, qsim_qmp_client_migrate_async, error);
}

/**
 * qsim_qmp_client_migrate_incoming_async:
 * @self: a ready #QsimQmpClient of a QEMU started with `-incoming defer`
 * @uri: where from, e.g. "fd:<inherited fd number>"
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once QEMU accepted it (the load goes on; query-status says when
 *   it left "inmigrate")
 * @user_data: data for @callback
 *
 * Starts an incoming migration (QMP `migrate-incoming`).
 */
void
qsim_qmp_client_migrate_incoming_async(QsimQmpClient *self, const gchar *uri, guint timeout_ms,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
	g_autoptr(JsonObject) args = json_object_new();

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	g_return_if_fail(uri != NULL);
	json_object_set_string_member(args, "uri", uri);
	qsim_qmp_commands_run_empty(self, "migrate-incoming", args, -1, timeout_ms, cancellable,
	                            qsim_qmp_client_migrate_incoming_async, callback, user_data);
}

gboolean
qsim_qmp_client_migrate_incoming_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result,
	                                        qsim_qmp_client_migrate_incoming_async, error);
}

static void
query_migrate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	MigrateResult *result;
	JsonObject *obj;
	JsonNode *status;
	JsonNode *desc;

	ret = qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (JSON_NODE_TYPE(ret) != JSON_NODE_OBJECT) {
		g_task_return_error(task, qsim_qmp_commands_unexpected_reply(
		                              "query-migrate", "return is not an object"));
		return;
	}
	obj = json_node_get_object(ret);
	/* QEMU leaves "status" out until a migration was started (recorded: {"return": {}}) */
	status = json_object_get_member(obj, "status");
	if (status != NULL &&
	    (!qsim_qmp_json_is_string(status) || json_node_get_string(status)[0] == '\0')) {
		g_task_return_error(task, qsim_qmp_commands_unexpected_reply(
		                              "query-migrate", "'status' is not a string"));
		return;
	}
	desc = json_object_get_member(obj, "error-desc");
	if (desc != NULL && !qsim_qmp_json_is_string(desc)) {
		g_task_return_error(task, qsim_qmp_commands_unexpected_reply(
		                              "query-migrate", "'error-desc' is not a string"));
		return;
	}
	result = g_new0(MigrateResult, 1);
	result->status = g_strdup(status != NULL ? json_node_get_string(status) : "none");
	result->error_desc = g_strdup(desc != NULL ? json_node_get_string(desc) : NULL);
	g_task_return_pointer(task, result, (GDestroyNotify)migrate_result_free);
}

/**
 * qsim_qmp_client_query_migrate_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Asks QEMU how its outgoing migration is doing (QMP `query-migrate`).
 */
void
qsim_qmp_client_query_migrate_async(QsimQmpClient *self, guint timeout_ms,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	task = g_task_new(self, cancellable, callback, user_data);
	/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_source_tag(task, qsim_qmp_client_query_migrate_async);
	qsim_qmp_client_execute_async(self, "query-migrate", NULL, timeout_ms, cancellable,
	                              query_migrate_cb, g_steal_pointer(&task));
}

/**
 * qsim_qmp_client_query_migrate_finish:
 * @self: a #QsimQmpClient
 * @result: the result passed to the callback
 * @status: (out) (optional) (transfer full): QEMU's MigrationStatus, "none" before any
 * @error_desc: (out) (optional) (transfer full) (nullable): why it failed, if QEMU said
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: %TRUE on success, else %FALSE with @error set and the out values untouched.
 */
gboolean
qsim_qmp_client_query_migrate_finish(QsimQmpClient *self, GAsyncResult *result, gchar **status,
                                     gchar **error_desc, GError **error)
{
	MigrateResult *r;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_async_result_is_tagged(result, qsim_qmp_client_query_migrate_async),
	                     FALSE);
	r = g_task_propagate_pointer(G_TASK(result), error);
	if (r == NULL)
		return FALSE;
	if (status != NULL)
		*status = g_steal_pointer(&r->status);
	if (error_desc != NULL)
		*error_desc = g_steal_pointer(&r->error_desc);
	migrate_result_free(r);
	return TRUE;
}
