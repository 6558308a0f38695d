#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <signal.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands.h"
#include "qsim-vm-port.h"
#include "qsim-vm-private.h"
#include "qsim-vm-rundir.h"

static void qsim_vm_stop_quit(QsimVm *self);
static void qsim_vm_stop_term(QsimVm *self);
static void qsim_vm_stop_kill(QsimVm *self);

/* ---- exit handling ----------------------------------------------------- */

static gchar *
qsim_vm_describe_status(QsimVm *self)
{
	if (self->proc == NULL)
		return g_strdup("QEMU did not run");
	if (g_subprocess_get_if_signaled(self->proc)) {
		gint sig = g_subprocess_get_term_sig(self->proc);
		return g_strdup_printf("QEMU died from signal %d (%s)", sig, g_strsignal(sig));
	}
	return g_strdup_printf("QEMU exited with status %d",
	                       g_subprocess_get_exit_status(self->proc));
}

static void
qsim_vm_decide_exit(QsimVm *self, QsimVmExitReason *reason, gchar **message)
{
	g_autofree gchar *status = qsim_vm_describe_status(self);
	g_autofree gchar *tail = qsim_vm_tail_to_string(self->stderr_tail);
	gboolean clean =
	    g_subprocess_get_if_exited(self->proc) && g_subprocess_get_exit_status(self->proc) == 0;

	switch (self->stop_step) {
	case STOP_POWERDOWN:
		if (clean) {
			*reason = QSIM_VM_EXIT_POWEROFF;
			*message =
			    g_strdup("the guest powered off cleanly on the ACPI power button");
			return;
		}
		break;
	case STOP_QUIT:
		*reason = QSIM_VM_EXIT_QUIT;
		if (self->stop_from_paused)
			*message = g_strdup("QEMU quit on our QMP request (the VM was paused)");
		else if (self->grace_ms == 0)
			*message = g_strdup("QEMU quit on our QMP request (no ACPI grace period)");
		else
			*message = g_strdup_printf("QEMU quit on our QMP request after the guest "
			                           "ignored the ACPI power button for %u ms",
			                           self->grace_ms);
		return;
	case STOP_TERM:
		*reason = QSIM_VM_EXIT_TERMINATED;
		*message = g_strdup_printf("QEMU was terminated with SIGTERM after it ignored "
		                           "QMP quit (%s)",
		                           status);
		return;
	case STOP_KILL:
		*reason = QSIM_VM_EXIT_KILLED;
		*message = g_strdup_printf("QEMU was killed with SIGKILL by qsim (%s)", status);
		return;
	case STOP_NONE:
		break;
	}
	if (clean && self->guest_shutdown_event) {
		*reason = QSIM_VM_EXIT_POWEROFF;
		*message = g_strdup("the guest shut itself down cleanly");
		return;
	}
	*reason = QSIM_VM_EXIT_CRASHED;
	*message =
	    g_strdup_printf("%s unexpectedly%s%s", status, tail[0] != '\0' ? ": " : "", tail);
}

static void
qsim_vm_clear_timers(QsimVm *self)
{
	g_clear_handle_id(&self->kvm_watch_id, g_source_remove);
	g_clear_handle_id(&self->qmp_fail_id, g_source_remove);
	g_clear_handle_id(&self->stop_timer_id, g_source_remove);
	g_clear_handle_id(&self->ready_timeout_id, g_source_remove);
	g_clear_handle_id(&self->ready_retry_id, g_source_remove);
}

/* Everything that must go whichever way the VM ends: the process's pipes, the QMP
 * connection, the network helper, the port reservation and the run directory. */
void
qsim_vm_release_resources(QsimVm *self)
{
	g_autoptr(GError) error = NULL;

	qsim_vm_clear_timers(self);
	if (self->serial != NULL) {
		g_signal_handlers_disconnect_by_data(self->serial, self);
		qsim_serial_reader_stop(self->serial);
	}
	qsim_vm_qmp_drop(self);
	qsim_vm_outbound_drop(self);
	qsim_vm_port_release(self->port);
	self->port = 0;
	if (self->run_dir != NULL && !qsim_vm_rundir_remove(self->run_dir, &error))
		g_warning("%s: %s", self->config->name, error->message);
}

void
qsim_vm_finish_exit(QsimVm *self, QsimVmExitReason reason, gchar *message)
{
	g_autoptr(QsimVm) keep = g_object_ref(self); /* task callbacks may drop the last ref */
	g_autoptr(GPtrArray) shutdown_tasks = g_steal_pointer(&self->shutdown_tasks);

	self->shutdown_tasks = g_ptr_array_new_with_free_func(g_object_unref);
	qsim_vm_release_resources(self);
	self->exit_reason = reason;
	g_free(self->exit_message);
	self->exit_message = message;
	g_info("%s: exited (%s): %s", self->config->name, qsim_vm_exit_reason_to_string(reason),
	       message);
	qsim_vm_set_state(self, QSIM_VM_STATE_EXITED);
	if (self->start_task != NULL) {
		g_autoptr(GTask) task = g_steal_pointer(&self->start_task);
		GError *error = g_steal_pointer(&self->start_error);

		if (error == NULL)
			error = g_error_new(QSIM_ERROR, QSIM_ERROR_VM, "QEMU failed to start: %s",
			                    message);
		g_task_return_error(task, error);
	}
	if (self->ready_task != NULL)
		qsim_vm_ready_complete(self,
		                       g_error_new(QSIM_ERROR, QSIM_ERROR_VM,
		                                   "VM exited before it was ready: %s", message));
	qsim_vm_emit_exited(self, reason, message);
	for (guint i = 0; i < shutdown_tasks->len; i++)
		g_task_return_boolean(g_ptr_array_index(shutdown_tasks, i), TRUE);
}

void
qsim_vm_handle_exit(QsimVm *self)
{
	g_autoptr(QsimVm) keep = g_object_ref(self); /* completing tasks may drop the last ref */
	g_autofree gchar *tail = qsim_vm_tail_to_string(self->stderr_tail);
	g_autofree gchar *status = qsim_vm_describe_status(self);
	QsimVmExitReason reason = QSIM_VM_EXIT_NONE;
	gchar *message = NULL;

	g_debug("%s: %s", self->config->name, status);
	if (self->start_task != NULL && self->start_error == NULL) {
		g_autoptr(GError) error = NULL;

		/* QEMU's forward, or pasta's for NETWORK=outbound, found the port taken by
		 * another process after qsim picked it */
		gboolean port_taken =
		    strstr(tail, "Could not set up host forwarding rule") != NULL ||
		    (self->net_failure != NULL &&
		     strstr(self->net_failure, "Failed to bind any port") != NULL);

		if (port_taken && self->start_attempts < QSIM_VM_MAX_PORT_ATTEMPTS) {
			g_info("%s: host port %u was taken, retrying with another",
			       self->config->name, (guint)self->port);
			qsim_vm_port_release(self->port);
			self->port = 0;
			if (qsim_vm_spawn(self, &error))
				return;
			self->start_error = g_steal_pointer(&error);
		}
	}
	if (self->kvm_failure != NULL || self->net_failure != NULL) {
		reason = self->start_task != NULL ? QSIM_VM_EXIT_START_FAILED : QSIM_VM_EXIT_KILLED;
		message =
		    g_strdup(self->kvm_failure != NULL ? self->kvm_failure : self->net_failure);
	} else if (self->start_task != NULL) {
		reason = QSIM_VM_EXIT_START_FAILED;
		message = g_strdup_printf("%s during start-up%s%s", status,
		                          tail[0] != '\0' ? ": " : "", tail);
	} else {
		qsim_vm_decide_exit(self, &reason, &message);
	}
	/* QEMU that dies under KVM before the guest printed a byte (e.g. "failed to set MSR")
	 * is KVM's failure far more often than the image's: say so */
	if (self->use_kvm && !self->console_seen && self->kvm_failure == NULL &&
	    (reason == QSIM_VM_EXIT_START_FAILED || reason == QSIM_VM_EXIT_CRASHED)) {
		/* first: callers may keep only the first line of QEMU's multi-line stderr */
		gchar *kvm =
		    g_strdup_printf("QEMU ran under %s and the guest printed nothing, so KVM "
		                    "may not work on this host (try ACCEL=tcg): %s",
		                    self->accel_why, message);
		g_free(message);
		message = kvm;
	}
	qsim_vm_finish_exit(self, reason, message);
}

/* ---- shutdown escalation ----------------------------------------------- */

static void
qsim_vm_quit_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimVm) self = QSIM_VM(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_qmp_client_quit_finish(QSIM_QMP_CLIENT(source), res, &error))
		g_debug("%s: quit: %s", self->config->name, error->message);
}

static void
qsim_vm_powerdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimVm) self = QSIM_VM(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_qmp_client_system_powerdown_finish(QSIM_QMP_CLIENT(source), res, &error))
		g_debug("%s: system_powerdown: %s", self->config->name, error->message);
}

static gboolean
qsim_vm_stop_timer_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->stop_timer_id = 0;
	switch (self->stop_step) {
	case STOP_POWERDOWN:
		qsim_vm_stop_quit(self);
		break;
	case STOP_QUIT:
		qsim_vm_stop_term(self);
		break;
	case STOP_TERM:
		qsim_vm_stop_kill(self);
		break;
	case STOP_KILL: {
		g_autoptr(GPtrArray) tasks = g_steal_pointer(&self->shutdown_tasks);

		self->shutdown_tasks = g_ptr_array_new_with_free_func(g_object_unref);
		for (guint i = 0; i < tasks->len; i++)
			g_task_return_new_error(
			    g_ptr_array_index(tasks, i), QSIM_ERROR, QSIM_ERROR_VM,
			    "QEMU pid %d did not exit after SIGKILL", (gint)self->pid);
		break;
	}
	case STOP_NONE:
		break;
	}
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_stop_arm(QsimVm *self, StopStep step, guint wait_ms)
{
	self->stop_step = step;
	g_clear_handle_id(&self->stop_timer_id, g_source_remove);
	self->stop_timer_id = g_timeout_add(wait_ms, qsim_vm_stop_timer_cb, self);
}

static void
qsim_vm_stop_kill(QsimVm *self)
{
	g_info("%s: killing QEMU pid %d", self->config->name, (gint)self->pid);
	qsim_vm_stop_arm(self, STOP_KILL, QSIM_VM_KILL_WAIT_MS);
	if (qsim_vm_proc_alive(self))
		g_subprocess_force_exit(self->proc);
}

static void
qsim_vm_stop_term(QsimVm *self)
{
	g_info("%s: sending SIGTERM to QEMU pid %d", self->config->name, (gint)self->pid);
	qsim_vm_stop_arm(self, STOP_TERM, QSIM_VM_TERM_WAIT_MS);
	if (qsim_vm_proc_alive(self))
		g_subprocess_send_signal(self->proc, SIGTERM);
}

static void
qsim_vm_stop_quit(QsimVm *self)
{
	if (!qsim_vm_qmp_usable(self)) {
		qsim_vm_stop_term(self);
		return;
	}
	g_info("%s: asking QEMU to quit", self->config->name);
	qsim_vm_stop_arm(self, STOP_QUIT, QSIM_VM_QUIT_WAIT_MS);
	qsim_qmp_client_quit_async(self->qmp, QSIM_VM_QUIT_WAIT_MS, NULL, qsim_vm_quit_cb,
	                           g_object_ref(self));
}

static void
qsim_vm_stop_powerdown(QsimVm *self)
{
	if (!qsim_vm_qmp_usable(self) || self->stop_from_paused || self->grace_ms == 0) {
		qsim_vm_stop_quit(self);
		return;
	}
	g_info("%s: pressing the ACPI power button (grace %u ms)", self->config->name,
	       self->grace_ms);
	qsim_vm_stop_arm(self, STOP_POWERDOWN, self->grace_ms);
	qsim_qmp_client_system_powerdown_async(self->qmp, QSIM_VM_QMP_COMMAND_TIMEOUT_MS, NULL,
	                                       qsim_vm_powerdown_cb, g_object_ref(self));
}

/**
 * qsim_vm_shutdown_async:
 * @self: a #QsimVm
 * @grace_ms: how long the guest may take to power off on ACPI; 0 skips ACPI
 * @cancellable: (nullable): a #GCancellable (cancels the wait, not the shutdown)
 * @callback: called once QEMU is gone and the run directory removed
 * @user_data: data for @callback
 *
 * Stops the VM, escalating: QMP system_powerdown and @grace_ms for the guest, then QMP
 * quit, then SIGTERM, then SIGKILL, each step bounded. A paused VM skips ACPI (its
 * CPUs cannot react). A VM still starting is killed. Succeeds at once for a VM that
 * already exited or never started.
 */
void
qsim_vm_shutdown_async(QsimVm *self, guint grace_ms, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, qsim_vm_shutdown_async);
	/* our errors are QSIM_ERROR, also when the caller's cancellable fired */
	g_task_set_check_cancellable(task, FALSE);
	if (self->state == QSIM_VM_STATE_EXITED || self->state == QSIM_VM_STATE_CREATED) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	g_ptr_array_add(self->shutdown_tasks, g_steal_pointer(&task));
	if (self->state == QSIM_VM_STATE_STOPPING)
		return;
	if (self->state == QSIM_VM_STATE_STARTING) {
		qsim_vm_kill(self);
		return;
	}
	self->grace_ms = grace_ms;
	self->stop_from_paused = self->state == QSIM_VM_STATE_PAUSED;
	qsim_vm_set_state(self, QSIM_VM_STATE_STOPPING);
	qsim_vm_stop_powerdown(self);
}

/**
 * qsim_vm_shutdown_finish:
 * @self: a #QsimVm
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE when QEMU has exited; see qsim_vm_get_exit_reason()
 */
gboolean
qsim_vm_shutdown_finish(QsimVm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * qsim_vm_kill:
 * @self: a #QsimVm
 *
 * Sends SIGKILL to QEMU now (or aborts a start). Does not wait: "exited" follows.
 */
void
qsim_vm_kill(QsimVm *self)
{
	if (self->state == QSIM_VM_STATE_EXITED || self->state == QSIM_VM_STATE_CREATED)
		return;
	if (self->state == QSIM_VM_STATE_STARTING) {
		self->stop_step = STOP_KILL;
		qsim_vm_start_abort(self, g_error_new(QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                                      "start of VM %s was cancelled",
		                                      self->config->name));
		return;
	}
	if (self->state != QSIM_VM_STATE_STOPPING)
		qsim_vm_set_state(self, QSIM_VM_STATE_STOPPING);
	qsim_vm_stop_kill(self);
}
