#define G_LOG_DOMAIN "qsim-qmp"

#include "config.h"

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands-private.h"
#include "qmp/qsim-qmp-commands.h"
#include "qmp/qsim-qmp-json.h"

/*
 * Each typed command wraps qsim_qmp_client_execute_async() in its own GTask, so that its
 * _finish can check the source tag, and validates the type of `return` in the callback:
 * QEMU's schema can change between versions and a wrong shape must be an error, never a
 * crash or a silently wrong value.
 */

typedef struct {
	gboolean running;
	gchar *status;
} StatusResult;

static void
status_result_free(StatusResult *r)
{
	g_free(r->status);
	g_free(r);
}

typedef struct {
	guint major, minor, micro;
} VersionResult;

GError *
qsim_qmp_commands_unexpected_reply(const gchar *command, const gchar *why)
{
	return g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
	                   "QMP command '%s' failed: unexpected reply: %s", command, why);
}

/* Starts @command; @done validates the reply and completes the outer task. */
static void
run_command(QsimQmpClient *self, const gchar *command, JsonObject *arguments, guint timeout_ms,
            GCancellable *cancellable, gpointer source_tag, GAsyncReadyCallback done,
            GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
	g_task_set_check_cancellable(task, FALSE);

	g_task_set_source_tag(task, source_tag);
	qsim_qmp_client_execute_async(self, command, arguments, timeout_ms, cancellable, done,
	                              g_steal_pointer(&task));
}

/* stop, cont, system_powerdown, system_reset: QEMU answers {"return": {}} */
static void
empty_reply_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (JSON_NODE_TYPE(ret) != JSON_NODE_OBJECT) {
		g_task_return_error(task,
		                    qsim_qmp_commands_unexpected_reply(g_task_get_task_data(task),
		                                                       "return is not an object"));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* Runs @command (with @fd passed along unless it is -1) and expects an empty object. */
void
qsim_qmp_commands_run_empty(QsimQmpClient *self, const gchar *command, JsonObject *arguments,
                            gint fd, guint timeout_ms, GCancellable *cancellable,
                            gpointer source_tag, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	task = g_task_new(self, cancellable, callback, user_data);
	/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_source_tag(task, source_tag);
	/* the command name names the command in "unexpected reply" errors */
	g_task_set_task_data(task, g_strdup(command), g_free);
	if (fd >= 0)
		qsim_qmp_client_execute_with_fd_async(self, command, arguments, fd, timeout_ms,
		                                      cancellable, empty_reply_cb,
		                                      g_steal_pointer(&task));
	else
		qsim_qmp_client_execute_async(self, command, arguments, timeout_ms, cancellable,
		                              empty_reply_cb, g_steal_pointer(&task));
}

static void
run_empty_command(QsimQmpClient *self, const gchar *command, guint timeout_ms,
                  GCancellable *cancellable, gpointer source_tag, GAsyncReadyCallback callback,
                  gpointer user_data)
{
	qsim_qmp_commands_run_empty(self, command, NULL, -1, timeout_ms, cancellable, source_tag,
	                            callback, user_data);
}

gboolean
qsim_qmp_commands_finish_boolean(QsimQmpClient *self, GAsyncResult *result, gpointer source_tag,
                                 GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_async_result_is_tagged(result, source_tag), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * qsim_qmp_client_stop_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Pauses the guest's vCPUs (QMP `stop`); QEMU emits STOP.
 */
void
qsim_qmp_client_stop_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
	run_empty_command(self, "stop", timeout_ms, cancellable, qsim_qmp_client_stop_async,
	                  callback, user_data);
}

/**
 * qsim_qmp_client_stop_finish:
 * Returns: %TRUE on success, else %FALSE with @error set.
 */
gboolean
qsim_qmp_client_stop_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result, qsim_qmp_client_stop_async, error);
}

/**
 * qsim_qmp_client_cont_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Starts or resumes the guest (QMP `cont`); QEMU emits RESUME.
 */
void
qsim_qmp_client_cont_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
	run_empty_command(self, "cont", timeout_ms, cancellable, qsim_qmp_client_cont_async,
	                  callback, user_data);
}

/**
 * qsim_qmp_client_cont_finish:
 * Returns: %TRUE on success, else %FALSE with @error set.
 */
gboolean
qsim_qmp_client_cont_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result, qsim_qmp_client_cont_async, error);
}

/**
 * qsim_qmp_client_system_powerdown_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Presses the ACPI power button; QEMU emits POWERDOWN, and SHUTDOWN if the guest obeys.
 */
void
qsim_qmp_client_system_powerdown_async(QsimQmpClient *self, guint timeout_ms,
                                       GCancellable *cancellable, GAsyncReadyCallback callback,
                                       gpointer user_data)
{
	run_empty_command(self, "system_powerdown", timeout_ms, cancellable,
	                  qsim_qmp_client_system_powerdown_async, callback, user_data);
}

/**
 * qsim_qmp_client_system_powerdown_finish:
 * Returns: %TRUE on success, else %FALSE with @error set.
 */
gboolean
qsim_qmp_client_system_powerdown_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result,
	                                        qsim_qmp_client_system_powerdown_async, error);
}

/**
 * qsim_qmp_client_system_reset_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Resets the machine; QEMU emits RESET.
 */
void
qsim_qmp_client_system_reset_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
	run_empty_command(self, "system_reset", timeout_ms, cancellable,
	                  qsim_qmp_client_system_reset_async, callback, user_data);
}

/**
 * qsim_qmp_client_system_reset_finish:
 * Returns: %TRUE on success, else %FALSE with @error set.
 */
gboolean
qsim_qmp_client_system_reset_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result, qsim_qmp_client_system_reset_async,
	                                        error);
}

static void
quit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QsimQmpClient *client = QSIM_QMP_CLIENT(source);
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = qsim_qmp_client_execute_finish(client, res, &error);
	if (ret != NULL) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	/* QEMU exits right after quit; losing the connection first is the expected outcome,
	 * not a failure. An error reply, a timeout or a cancellation still fail. */
	if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_QMP) && qsim_qmp_client_get_eof(client)) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_task_return_error(task, g_steal_pointer(&error));
}

/**
 * qsim_qmp_client_quit_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Asks QEMU to exit at once (QMP `quit`); QEMU emits SHUTDOWN and closes the socket.
 */
void
qsim_qmp_client_quit_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	run_command(self, "quit", NULL, timeout_ms, cancellable, qsim_qmp_client_quit_async,
	            quit_cb, callback, user_data);
}

/**
 * qsim_qmp_client_quit_finish:
 * Returns: %TRUE if QEMU accepted quit or closed the connection, else %FALSE with @error.
 */
gboolean
qsim_qmp_client_quit_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	return qsim_qmp_commands_finish_boolean(self, result, qsim_qmp_client_quit_async, error);
}

static void
query_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	StatusResult *result;
	JsonObject *obj;
	JsonNode *running;
	const gchar *status;

	ret = qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (JSON_NODE_TYPE(ret) != JSON_NODE_OBJECT) {
		g_task_return_error(task, qsim_qmp_commands_unexpected_reply(
		                              "query-status", "return is not an object"));
		return;
	}
	obj = json_node_get_object(ret);
	status = qsim_qmp_json_get_string(obj, "status");
	running = json_object_get_member(obj, "running");
	if (status == NULL || status[0] == '\0') {
		g_task_return_error(
		    task, qsim_qmp_commands_unexpected_reply("query-status", "no string 'status'"));
		return;
	}
	if (!qsim_qmp_json_is_bool(running)) {
		g_task_return_error(task, qsim_qmp_commands_unexpected_reply(
		                              "query-status", "no boolean 'running'"));
		return;
	}
	result = g_new0(StatusResult, 1);
	result->running = json_node_get_boolean(running);
	result->status = g_strdup(status);
	g_task_return_pointer(task, result, (GDestroyNotify)status_result_free);
}

/**
 * qsim_qmp_client_query_status_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Asks QEMU for its run state (QMP `query-status`).
 */
void
qsim_qmp_client_query_status_async(QsimQmpClient *self, guint timeout_ms, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	run_command(self, "query-status", NULL, timeout_ms, cancellable,
	            qsim_qmp_client_query_status_async, query_status_cb, callback, user_data);
}

/**
 * qsim_qmp_client_query_status_finish:
 * @self: a #QsimQmpClient
 * @result: the result passed to the callback
 * @running: (out) (optional): whether the vCPUs run
 * @status: (out) (optional) (transfer full): QEMU's RunState, e.g. "running", "paused"
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: %TRUE on success, else %FALSE with @error set and the out values untouched.
 */
gboolean
qsim_qmp_client_query_status_finish(QsimQmpClient *self, GAsyncResult *result, gboolean *running,
                                    gchar **status, GError **error)
{
	StatusResult *r;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_async_result_is_tagged(result, qsim_qmp_client_query_status_async),
	                     FALSE);
	r = g_task_propagate_pointer(G_TASK(result), error);
	if (r == NULL)
		return FALSE;
	if (running != NULL)
		*running = r->running;
	if (status != NULL)
		*status = g_steal_pointer(&r->status);
	status_result_free(r);
	return TRUE;
}

static void
human_monitor_command_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!qsim_qmp_json_is_string(ret)) {
		g_task_return_error(task, qsim_qmp_commands_unexpected_reply(
		                              "human-monitor-command", "return is not a string"));
		return;
	}
	g_task_return_pointer(task, g_strdup(json_node_get_string(ret)), g_free);
}

/**
 * qsim_qmp_client_human_monitor_command_async:
 * @self: a ready #QsimQmpClient
 * @command_line: the HMP command, e.g. "info registers"; sent as a JSON string, never
 * through a shell
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Runs a human monitor command through QMP.
 */
void
qsim_qmp_client_human_monitor_command_async(QsimQmpClient *self, const gchar *command_line,
                                            guint timeout_ms, GCancellable *cancellable,
                                            GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(JsonObject) args = NULL;

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	if (command_line == NULL || !g_utf8_validate(command_line, -1, NULL)) {
		g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
		/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
		g_task_set_check_cancellable(task, FALSE);
		g_task_set_source_tag(task, qsim_qmp_client_human_monitor_command_async);
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "invalid human monitor command line");
		return;
	}
	args = json_object_new();
	json_object_set_string_member(args, "command-line", command_line);
	run_command(self, "human-monitor-command", args, timeout_ms, cancellable,
	            qsim_qmp_client_human_monitor_command_async, human_monitor_command_cb, callback,
	            user_data);
}

/**
 * qsim_qmp_client_human_monitor_command_finish:
 * @self: a #QsimQmpClient
 * @result: the result passed to the callback
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: (transfer full) (nullable): HMP's output (possibly ""), or %NULL with @error.
 */
gchar *
qsim_qmp_client_human_monitor_command_finish(QsimQmpClient *self, GAsyncResult *result,
                                             GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(
	    g_async_result_is_tagged(result, qsim_qmp_client_human_monitor_command_async), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

static gboolean
version_member(JsonObject *qemu, const gchar *name, guint *out)
{
	JsonNode *node = json_object_get_member(qemu, name);

	if (!qsim_qmp_json_is_int(node) || json_node_get_int(node) < 0 ||
	    json_node_get_int(node) > G_MAXINT)
		return FALSE;
	*out = (guint)json_node_get_int(node);
	return TRUE;
}

static void
query_version_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autofree VersionResult *v = g_new0(VersionResult, 1);
	JsonObject *qemu = NULL;

	ret = qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);
	if (ret == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (JSON_NODE_TYPE(ret) == JSON_NODE_OBJECT)
		qemu = qsim_qmp_json_get_object(json_node_get_object(ret), "qemu");
	if (qemu == NULL || !version_member(qemu, "major", &v->major) ||
	    !version_member(qemu, "minor", &v->minor) ||
	    !version_member(qemu, "micro", &v->micro)) {
		g_task_return_error(
		    task, qsim_qmp_commands_unexpected_reply("query-version",
		                                             "no integer qemu.major/minor/micro"));
		return;
	}
	g_task_return_pointer(task, g_steal_pointer(&v), g_free);
}

/**
 * qsim_qmp_client_query_version_async:
 * @self: a ready #QsimQmpClient
 * @timeout_ms: reply deadline, 0 for the default
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the result
 * @user_data: data for @callback
 *
 * Asks QEMU for its version (QMP `query-version`).
 */
void
qsim_qmp_client_query_version_async(QsimQmpClient *self, guint timeout_ms,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	run_command(self, "query-version", NULL, timeout_ms, cancellable,
	            qsim_qmp_client_query_version_async, query_version_cb, callback, user_data);
}

/**
 * qsim_qmp_client_query_version_finish:
 * @self: a #QsimQmpClient
 * @result: the result passed to the callback
 * @major: (out) (optional): QEMU's major version
 * @minor: (out) (optional): minor version
 * @micro: (out) (optional): micro version
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: %TRUE on success, else %FALSE with @error set.
 */
gboolean
qsim_qmp_client_query_version_finish(QsimQmpClient *self, GAsyncResult *result, guint *major,
                                     guint *minor, guint *micro, GError **error)
{
	g_autofree VersionResult *v = NULL;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_async_result_is_tagged(result, qsim_qmp_client_query_version_async),
	                     FALSE);
	v = g_task_propagate_pointer(G_TASK(result), error);
	if (v == NULL)
		return FALSE;
	if (major != NULL)
		*major = v->major;
	if (minor != NULL)
		*minor = v->minor;
	if (micro != NULL)
		*micro = v->micro;
	return TRUE;
}
