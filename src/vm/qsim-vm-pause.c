#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands.h"
#include "qsim-vm-private.h"

/* ---- pause / resume ---------------------------------------------------- */

static void
qsim_vm_confirm_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	gboolean want_paused = GPOINTER_TO_INT(g_task_get_task_data(task));
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	gboolean running = FALSE;

	if (!qsim_qmp_client_query_status_finish(QSIM_QMP_CLIENT(source), res, &running, &status,
	                                         &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (want_paused ? g_strcmp0(status, "paused") != 0 : !running) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_QMP,
		                        "VM %s reports status \"%s\" after %s", self->config->name,
		                        status, want_paused ? "stop" : "cont");
		return;
	}
	if (self->state == QSIM_VM_STATE_RUNNING || self->state == QSIM_VM_STATE_PAUSED)
		qsim_vm_set_state(self, want_paused ? QSIM_VM_STATE_PAUSED : QSIM_VM_STATE_RUNNING);
	g_task_return_boolean(task, TRUE);
}

static void
qsim_vm_stop_cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	gboolean want_paused = GPOINTER_TO_INT(g_task_get_task_data(task));
	g_autoptr(GError) error = NULL;
	gboolean ok = want_paused
	                  ? qsim_qmp_client_stop_finish(QSIM_QMP_CLIENT(source), res, &error)
	                  : qsim_qmp_client_cont_finish(QSIM_QMP_CLIENT(source), res, &error);

	if (!ok) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (!qsim_vm_qmp_usable(self)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM, "VM %s went away",
		                        self->config->name);
		return;
	}
	qsim_qmp_client_query_status_async(self->qmp, QSIM_VM_QMP_COMMAND_TIMEOUT_MS,
	                                   g_task_get_cancellable(task), qsim_vm_confirm_status_cb,
	                                   g_object_ref(task));
}

static void
qsim_vm_pause_resume(QsimVm *self, gboolean pause, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	QsimVmState from = pause ? QSIM_VM_STATE_RUNNING : QSIM_VM_STATE_PAUSED;
	QsimVmState to = pause ? QSIM_VM_STATE_PAUSED : QSIM_VM_STATE_RUNNING;

	g_task_set_source_tag(task, tag);
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_task_data(task, GINT_TO_POINTER(pause), NULL);
	if (self->state != from && self->state != to) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		                        "cannot %s VM %s: it is %s", pause ? "pause" : "resume",
		                        self->config->name, qsim_vm_state_to_string(self->state));
		return;
	}
	if (!qsim_vm_qmp_usable(self)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_QMP,
		                        "no QMP connection to VM %s", self->config->name);
		return;
	}
	/* also when already in the target state: QEMU is the authority, not our cache */
	if (pause)
		qsim_qmp_client_stop_async(self->qmp, QSIM_VM_QMP_COMMAND_TIMEOUT_MS, cancellable,
		                           qsim_vm_stop_cont_cb, g_steal_pointer(&task));
	else
		qsim_qmp_client_cont_async(self->qmp, QSIM_VM_QMP_COMMAND_TIMEOUT_MS, cancellable,
		                           qsim_vm_stop_cont_cb, g_steal_pointer(&task));
}

/**
 * qsim_vm_pause_async:
 * @self: a running #QsimVm
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once QEMU confirmed the pause with query-status
 * @user_data: data for @callback
 *
 * Pauses the guest's CPUs with QMP `stop` (its clock and network stand still).
 */
void
qsim_vm_pause_async(QsimVm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
	qsim_vm_pause_resume(self, TRUE, cancellable, callback, user_data, qsim_vm_pause_async);
}

gboolean
qsim_vm_pause_finish(QsimVm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * qsim_vm_resume_async:
 * @self: a paused #QsimVm
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once QEMU confirmed it runs again
 * @user_data: data for @callback
 *
 * Resumes the guest with QMP `cont`.
 */
void
qsim_vm_resume_async(QsimVm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                     gpointer user_data)
{
	qsim_vm_pause_resume(self, FALSE, cancellable, callback, user_data, qsim_vm_resume_async);
}

gboolean
qsim_vm_resume_finish(QsimVm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}
