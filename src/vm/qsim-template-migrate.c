#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands.h"
#include "qmp/qsim-qmp-migrate.h"
#include "qsim-template-migrate.h"

/* a load without RAM takes some tens of ms: poll it finely; a save is not on the
 * request path */
#define POLL_LOAD_MS 5
#define POLL_SAVE_MS 20
#define COMMAND_TIMEOUT_MS 5000
/* the name under which QEMU keeps the state file's fd from `getfd` */
#define STATE_FD_NAME "qsim-state"

typedef struct {
	QsimQmpClient *qmp;
	gchar *uri;
	gint fd; /* the state file for `getfd` (a save), or -1 */
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
	g_free(d->uri);
	if (d->fd >= 0)
		close(d->fd);
	g_free(d);
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
	d->poll_id =
	    g_timeout_add_full(G_PRIORITY_DEFAULT, d->incoming ? POLL_LOAD_MS : POLL_SAVE_MS,
	                       migrate_poll_cb, g_object_ref(task), g_object_unref);
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
	/* a state saved with its run state (paused) waits for cont; qsim's templates are saved
	 * without it (store-global-state=off), so they run as soon as they are loaded */
	cancellable = g_task_get_cancellable(task);
	qsim_qmp_client_cont_async(d->qmp, COMMAND_TIMEOUT_MS, cancellable, cont_cb,
	                           g_steal_pointer(&task));
}

static void
query_migrate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *error_desc = NULL;

	if (!qsim_qmp_client_query_migrate_finish(QSIM_QMP_CLIENT(source), res, &status,
	                                          &error_desc, &error)) {
		g_prefix_error(&error, "saving the state file failed: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (g_strcmp0(status, "completed") == 0) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (g_strcmp0(status, "failed") == 0 || g_strcmp0(status, "cancelled") == 0) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM,
		                        "saving the state file %s: %s", status,
		                        error_desc != NULL ? error_desc : "no reason given");
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
		qsim_qmp_client_query_migrate_async(d->qmp, COMMAND_TIMEOUT_MS,
		                                    g_task_get_cancellable(task), query_migrate_cb,
		                                    g_object_ref(task));
}

/* Ends one QMP step of the chain: on failure, @task fails with @what first. */
static gboolean
step_finish(GTask *task, gboolean ok, GError *error, const gchar *what)
{
	if (!ok) {
		g_prefix_error(&error, "%s: ", what);
		g_task_return_error(task, error);
		return FALSE;
	}
	return TRUE;
}

static void
migrate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	MigrateData *d = g_task_get_task_data(task);
	GError *error = NULL;
	gboolean ok =
	    d->incoming
	        ? qsim_qmp_client_migrate_incoming_finish(QSIM_QMP_CLIENT(source), res, &error)
	        : qsim_qmp_client_migrate_finish(QSIM_QMP_CLIENT(source), res, &error);

	if (step_finish(task, ok, error,
	                d->incoming ? "cannot load the state file" : "cannot save the state file"))
		migrate_poll(task);
}

static void
migrate_command(GTask *task)
{
	MigrateData *d = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);

	if (d->incoming)
		qsim_qmp_client_migrate_incoming_async(d->qmp, d->uri, COMMAND_TIMEOUT_MS,
		                                       cancellable, migrate_cb, task);
	else
		qsim_qmp_client_migrate_async(d->qmp, d->uri, COMMAND_TIMEOUT_MS, cancellable,
		                              migrate_cb, task);
}

static void
getfd_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	MigrateData *d = g_task_get_task_data(task);
	GError *error = NULL;
	gboolean ok = qsim_qmp_client_getfd_finish(QSIM_QMP_CLIENT(source), res, &error);

	/* QEMU has its own copy now */
	close(d->fd);
	d->fd = -1;
	if (step_finish(task, ok, error, "cannot hand the state file to QEMU"))
		migrate_command(g_steal_pointer(&task));
}

static void
capabilities_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	MigrateData *d = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);
	GError *error = NULL;
	gboolean ok =
	    qsim_qmp_client_migrate_set_capability_finish(QSIM_QMP_CLIENT(source), res, &error);

	if (!step_finish(task, ok, error, "cannot leave the RAM file out of the migration"))
		return;
	if (d->fd < 0) {
		migrate_command(g_steal_pointer(&task));
		return;
	}
	qsim_qmp_client_getfd_async(d->qmp, STATE_FD_NAME, d->fd, COMMAND_TIMEOUT_MS, cancellable,
	                            getfd_cb, g_steal_pointer(&task));
}

/* Both sides need x-ignore-shared before the stream starts: the guest RAM lives in the
 * template's RAM file (memory-backend-file), so the stream carries only device state. */
static void
migrate_start(QsimQmpClient *qmp, const gchar *uri, gint fd, gboolean incoming, guint timeout_ms,
              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data,
              gpointer tag)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	MigrateData *d = g_new0(MigrateData, 1);

	g_task_set_source_tag(task, tag);
	d->qmp = g_object_ref(qmp);
	d->uri = g_strdup(uri);
	d->fd = fd;
	d->incoming = incoming;
	d->timeout_ms = timeout_ms;
	d->deadline_us = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	g_task_set_task_data(task, d, (GDestroyNotify)migrate_data_free);
	qsim_qmp_client_migrate_set_capability_async(qmp, "x-ignore-shared", TRUE,
	                                             COMMAND_TIMEOUT_MS, cancellable,
	                                             capabilities_cb, g_steal_pointer(&task));
}

/**
 * qsim_template_migrate_save_async:
 * @qmp: the QMP client of a running VM, over a unix socket (it carries the fd)
 * @state_fd: the state file, open for writing; duplicated, the caller keeps its own
 * @timeout_ms: bound for the whole save
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once query-migrate says completed (the VM is then stopped, in
 *   QEMU's postmigrate state, with its disks flushed) or failed
 * @user_data: data for @callback
 *
 * Saves the device state: QMP `getfd` hands QEMU @state_fd, then `migrate` to
 * `fd:<name>` (no shell, no path). The guest RAM is left out (x-ignore-shared): the VM
 * keeps it in a shared RAM file, which is the template's RAM as it stands once QEMU
 * stopped.
 */
void
qsim_template_migrate_save_async(QsimQmpClient *qmp, gint state_fd, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
	gint fd = dup(state_fd);

	if (fd < 0) {
		g_task_report_new_error(
		    NULL, callback, user_data, qsim_template_migrate_save_async, QSIM_ERROR,
		    QSIM_ERROR_IO, "cannot duplicate the state file's fd: %s", g_strerror(errno));
		return;
	}
	migrate_start(qmp, "fd:" STATE_FD_NAME, fd, FALSE, timeout_ms, cancellable, callback,
	              user_data, qsim_template_migrate_save_async);
}

gboolean
qsim_template_migrate_save_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * qsim_template_migrate_load_async:
 * @qmp: the QMP client of a QEMU started with `-incoming defer` and its RAM mapped from
 *   the template's RAM file
 * @qemu_fd: the state file, open for reading, as an fd number inherited by QEMU
 * @timeout_ms: bound for the whole load
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the guest runs, or on failure (a corrupt or foreign state file
 *   makes QEMU exit: the QMP error then says the connection closed)
 * @user_data: data for @callback
 *
 * Restores with QMP `migrate-incoming` from `fd:<qemu_fd>` (no shell, no path), waits
 * until QEMU leaves the inmigrate status and sends `cont` if the guest is not running.
 */
void
qsim_template_migrate_load_async(QsimQmpClient *qmp, gint qemu_fd, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
	g_autofree gchar *uri = g_strdup_printf("fd:%d", qemu_fd);

	migrate_start(qmp, uri, -1, TRUE, timeout_ms, cancellable, callback, user_data,
	              qsim_template_migrate_load_async);
}

gboolean
qsim_template_migrate_load_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}
