#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands.h"
#include "qsim-template-migrate.h"

#define POLL_MS 20
#define COMMAND_TIMEOUT_MS 5000

typedef struct {
	QsimQmpClient *qmp;
	gboolean incoming;
	gint64 deadline_us;
	guint poll_id;
	guint timeout_ms;
} MigrateData;

static void
migrate_data_free(MigrateData *d)
{
	g_clear_handle_id(&d->poll_id, g_source_remove);
	g_clear_object(&d->qmp);
	g_free(d);
}

/**
 * qsim_template_migrate_path_is_safe:
 * @path: an absolute path
 *
 * QEMU hands an exec: URI to /bin/sh, so only paths made of characters that mean
 * nothing to a shell are accepted (template paths are built by qsim, never by users).
 *
 * Returns: %TRUE when @path may go into an exec: URI unquoted
 */
gboolean
qsim_template_migrate_path_is_safe(const gchar *path)
{
	if (path == NULL || !g_path_is_absolute(path))
		return FALSE;
	for (const gchar *p = path; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '/' && *p != '.' && *p != '_' && *p != '-')
			return FALSE;
	}
	return TRUE;
}

/**
 * qsim_template_migrate_incoming_argv:
 * @argv: a QEMU argv
 *
 * Returns: (transfer full): a copy of @argv with `-incoming defer` appended, so QEMU
 * waits for QMP migrate-incoming instead of booting
 */
gchar **
qsim_template_migrate_incoming_argv(const gchar *const *argv)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	g_strv_builder_addv(b, (const gchar **)argv);
	g_strv_builder_add(b, "-incoming");
	g_strv_builder_add(b, "defer");
	return g_strv_builder_end(b);
}

static void migrate_poll(GTask *task);

static gboolean
migrate_poll_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	MigrateData *d = g_task_get_task_data(task);

	d->poll_id = 0;
	migrate_poll(task);
	return G_SOURCE_REMOVE;
}

static void
migrate_poll_later(GTask *task)
{
	MigrateData *d = g_task_get_task_data(task);

	if (g_get_monotonic_time() > d->deadline_us) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
		                        "migration %s the state file did not finish within %u ms",
		                        d->incoming ? "from" : "to", d->timeout_ms);
		return;
	}
	/* the source holds the only ref while waiting */
	d->poll_id = g_timeout_add_full(G_PRIORITY_DEFAULT, POLL_MS, migrate_poll_cb,
	                                g_object_ref(task), g_object_unref);
}

static void
cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_qmp_client_cont_finish(QSIM_QMP_CLIENT(source), res, &error)) {
		g_prefix_error(&error, "cannot resume the restored VM: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
query_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	MigrateData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	gboolean running = FALSE;
	GCancellable *cancellable;

	if (!qsim_qmp_client_query_status_finish(QSIM_QMP_CLIENT(source), res, &running, &status,
	                                         &error)) {
		g_prefix_error(&error, "restore from the state file failed: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (g_strcmp0(status, "inmigrate") == 0) {
		migrate_poll_later(task);
		return;
	}
	if (running) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (g_strcmp0(status, "paused") != 0 && g_strcmp0(status, "prelaunch") != 0) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM,
		                        "restore from the state file ended in status \"%s\"",
		                        status);
		return;
	}
	/* templates are saved paused (qsim-template.c), so the guest waits for cont */
	cancellable = g_task_get_cancellable(task);
	qsim_qmp_client_cont_async(d->qmp, COMMAND_TIMEOUT_MS, cancellable, cont_cb,
	                           g_steal_pointer(&task));
}

static void
query_migrate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);
	JsonObject *obj;
	const gchar *status;

	if (node == NULL) {
		g_prefix_error(&error, "saving the state file failed: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	obj = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
	status = obj != NULL ? json_object_get_string_member_with_default(obj, "status", "") : "";
	if (g_strcmp0(status, "completed") == 0) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (g_strcmp0(status, "failed") == 0 || g_strcmp0(status, "cancelled") == 0) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM,
		                        "saving the state file %s: %s", status,
		                        json_object_get_string_member_with_default(
		                            obj, "error-desc", "no reason given"));
		return;
	}
	migrate_poll_later(task);
}

static void
migrate_poll(GTask *task)
{
	MigrateData *d = g_task_get_task_data(task);

	if (d->incoming)
		qsim_qmp_client_query_status_async(d->qmp, COMMAND_TIMEOUT_MS,
		                                   g_task_get_cancellable(task), query_status_cb,
		                                   g_object_ref(task));
	else
		qsim_qmp_client_execute_async(d->qmp, "query-migrate", NULL, COMMAND_TIMEOUT_MS,
		                              g_task_get_cancellable(task), query_migrate_cb,
		                              g_object_ref(task));
}

static void
migrate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	MigrateData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) node =
	    qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, &error);

	if (node == NULL && error != NULL) {
		g_prefix_error(&error, "cannot %s the state file: ", d->incoming ? "load" : "save");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	migrate_poll(task);
}

static void
migrate_start(QsimQmpClient *qmp, const gchar *command, const gchar *uri, gboolean incoming,
              guint timeout_ms, GCancellable *cancellable, GAsyncReadyCallback callback,
              gpointer user_data, gpointer tag)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(JsonObject) args = json_object_new();
	MigrateData *d = g_new0(MigrateData, 1);

	g_task_set_source_tag(task, tag);
	d->qmp = g_object_ref(qmp);
	d->incoming = incoming;
	d->timeout_ms = timeout_ms;
	d->deadline_us = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	g_task_set_task_data(task, d, (GDestroyNotify)migrate_data_free);
	json_object_set_string_member(args, "uri", uri);
	qsim_qmp_client_execute_async(qmp, command, args, COMMAND_TIMEOUT_MS, cancellable,
	                              migrate_cb, g_steal_pointer(&task));
}

/**
 * qsim_template_migrate_save_async:
 * @qmp: the QMP client of a running VM
 * @state_path: absolute, shell-safe path of the state file to write
 * @timeout_ms: bound for the whole save
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once query-migrate says completed (the VM is then stopped, in
 *   QEMU's postmigrate state, with its disks flushed) or failed
 * @user_data: data for @callback
 *
 * Saves RAM and device state with QMP `migrate` to `exec:cat > <state_path>`.
 */
void
qsim_template_migrate_save_async(QsimQmpClient *qmp, const gchar *state_path, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
	g_autofree gchar *uri = NULL;

	if (!qsim_template_migrate_path_is_safe(state_path)) {
		g_task_report_new_error(NULL, callback, user_data, qsim_template_migrate_save_async,
		                        QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "template path %s has characters unsafe for QEMU's exec: "
		                        "migration (use [A-Za-z0-9/._-] in STATE_DIR)",
		                        state_path);
		return;
	}
	uri = g_strdup_printf("exec:cat > %s", state_path);
	migrate_start(qmp, "migrate", uri, FALSE, timeout_ms, cancellable, callback, user_data,
	              qsim_template_migrate_save_async);
}

gboolean
qsim_template_migrate_save_finish(GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * qsim_template_migrate_load_async:
 * @qmp: the QMP client of a QEMU started with `-incoming defer`
 * @state_path: absolute, shell-safe path of the state file to read
 * @timeout_ms: bound for the whole load
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the guest runs again, or on failure (a corrupt or foreign
 *   state file makes QEMU exit: the QMP error then says the connection closed)
 * @user_data: data for @callback
 *
 * Restores with QMP `migrate-incoming` from `exec:cat <state_path>`, waits until QEMU
 * leaves the inmigrate status and sends `cont` if the guest is not running yet.
 */
void
qsim_template_migrate_load_async(QsimQmpClient *qmp, const gchar *state_path, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
	g_autofree gchar *uri = NULL;

	if (!qsim_template_migrate_path_is_safe(state_path)) {
		g_task_report_new_error(NULL, callback, user_data, qsim_template_migrate_load_async,
		                        QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "template path %s has characters unsafe for QEMU's exec: "
		                        "migration",
		                        state_path);
		return;
	}
	uri = g_strdup_printf("exec:cat %s", state_path);
	migrate_start(qmp, "migrate-incoming", uri, TRUE, timeout_ms, cancellable, callback,
	              user_data, qsim_template_migrate_load_async);
}

gboolean
qsim_template_migrate_load_finish(GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}
