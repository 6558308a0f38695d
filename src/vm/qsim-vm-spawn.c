#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qsim-template-migrate.h"
#include "qsim-netns.h"
#include "qsim-vm-argv.h"
#include "qsim-vm-overlay.h"
#include "qsim-vm-port.h"
#include "qsim-vm-private.h"
#include "qsim-vm-rundir.h"

static void qsim_vm_qmp_handshake(QsimVm *self, GSocket *socket);

/* ---- start ------------------------------------------------------------- */

static void
qsim_vm_serial_data_cb(QsimSerialReader *serial, GBytes *chunk, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	if (g_bytes_get_size(chunk) > 0) {
		self->console_seen = TRUE;
		g_clear_handle_id(&self->kvm_watch_id, g_source_remove);
	}
	qsim_vm_emit_console_output(self, chunk);
}

static gboolean
qsim_vm_kvm_watch_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->kvm_watch_id = 0;
	if (self->console_seen || !qsim_vm_proc_alive(self))
		return G_SOURCE_REMOVE;
	g_free(self->kvm_failure);
	self->kvm_failure = g_strdup_printf(
	    "KVM did not run the guest: no byte on its serial console within %.1f s under %s; "
	    "KVM on this host cannot run it: set ACCEL=tcg, or ACCEL=auto to let the probe "
	    "decide (KVM_CONSOLE_TIMEOUT sets this limit)",
	    self->kvm_console_timeout_ms / 1000.0, self->accel_why);
	g_warning("%s: %s", self->config->name, self->kvm_failure);
	g_subprocess_force_exit(self->proc);
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_stderr_cb(const guint8 *data, gsize len, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	g_debug("%s: QEMU stderr: %.*s", self->config->name, (gint)len, (const gchar *)data);
	qsim_vm_tail_append(self->stderr_tail, data, len);
}

static void
qsim_vm_proc_exited_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->proc_exited = TRUE;
}

/* QEMU was reaped and its stderr read to the end: the exit message can quote it */
static void
qsim_vm_proc_done_cb(gpointer user_data)
{
	qsim_vm_handle_exit(QSIM_VM(user_data));
}

/* Our end of QMP: a connected socket pair, so the greeting comes as soon as QEMU's
 * monitor is up (no socket path to poll for); QEMU gets the other end as an fd. */
static GSocket *
qsim_vm_qmp_socketpair(gint *qemu_end, GError **error)
{
	gint fds[2];
	GSocket *socket;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create the QMP socket: %s",
		            g_strerror(errno));
		return NULL;
	}
	socket = g_socket_new_from_fd(fds[0], error);
	if (socket == NULL) {
		qsim_error_convert(error);
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	*qemu_end = fds[1];
	return socket;
}

/* the namespace's fd must survive the renumbering a spawn does before its child setup */
G_STATIC_ASSERT(QSIM_NETNS_MIN_FD > QSIM_VM_ARGV_INCOMING_FD);

void
qsim_vm_outbound_drop(QsimVm *self)
{
	if (self->outbound == NULL)
		return;
	g_signal_handlers_disconnect_by_data(self->outbound, self);
	qsim_net_outbound_stop(self->outbound);
	g_clear_object(&self->outbound);
}

/* pasta ended under a VM that needs it: without it the guest has no network and the
 * host no SSH forward, so the VM goes, with pasta's last words as the reason. */
static void
qsim_vm_outbound_exited_cb(QsimNetOutbound *outbound, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	g_free(self->net_failure);
	self->net_failure = qsim_net_outbound_describe_exit(outbound);
	g_warning("%s: %s", self->config->name, self->net_failure);
	if (qsim_vm_proc_alive(self))
		g_subprocess_force_exit(self->proc);
}

static gboolean
qsim_vm_outbound_start(QsimVm *self, GError **error)
{
	qsim_vm_outbound_drop(self); /* a respawn gets a namespace of its own */
	g_clear_pointer(&self->net_failure, g_free);
	if (self->config->network != QSIM_VM_NETWORK_OUTBOUND)
		return TRUE;
	self->outbound = qsim_net_outbound_new(self->run_dir, self->port);
	if (!qsim_net_outbound_start(self->outbound, error)) {
		g_clear_object(&self->outbound);
		return FALSE;
	}
	g_signal_connect(self->outbound, "exited", G_CALLBACK(qsim_vm_outbound_exited_cb), self);
	g_info("%s: NETWORK=outbound, pasta pid %d", self->config->name,
	       (gint)qsim_net_outbound_get_pid(self->outbound));
	return TRUE;
}

gboolean
qsim_vm_spawn(QsimVm *self, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error_state = NULL;
	g_autoptr(GSocket) qmp_socket = NULL;
	QsimVmArgvOptions options = {.qmp_fd = QSIM_VM_ARGV_QMP_FD};
	gint qmp_qemu_end = -1;
	gint state_fd = -1;
	const gchar *ident;

	self->start_attempts++;
	/* a failed greeting of the previous QEMU (gone now) says nothing about this one */
	g_clear_handle_id(&self->qmp_fail_id, g_source_remove);
	g_clear_error(&self->qmp_fail_error);
	if (self->start_attempts == 1 && self->port_hint != 0 &&
	    qsim_vm_port_reserve_exact(self->port_hint))
		self->port = self->port_hint;
	else
		self->port = qsim_vm_port_reserve(error);
	if (self->port == 0)
		return FALSE;
	options.ram_path = self->ram_path;
	options.ram_shared = self->ram_shared;
	/* a template build saves the guest "running": its restores need no cont */
	options.save_running = self->ram_shared;
	options.incoming = self->restore_state != NULL;
	g_strfreev(self->argv);
	self->argv = qsim_vm_argv_build_with(self->qemu_binary, self->config, self->run_dir,
	                                     self->port, self->use_kvm, &options, error);
	if (self->argv == NULL)
		return FALSE;
	if (self->restore_state != NULL) {
		state_fd = g_open(self->restore_state, O_RDONLY | O_CLOEXEC, 0);
		if (state_fd < 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot open %s: %s",
			            self->restore_state, g_strerror(errno));
			return FALSE;
		}
	}
	if (!qsim_vm_outbound_start(self, error)) {
		if (state_fd >= 0)
			close(state_fd);
		return FALSE;
	}
	qmp_socket = qsim_vm_qmp_socketpair(&qmp_qemu_end, error);
	if (qmp_socket == NULL) {
		if (state_fd >= 0)
			close(state_fd);
		return FALSE;
	}
	if (self->serial != NULL) {
		g_signal_handlers_disconnect_by_data(self->serial, self);
		qsim_serial_reader_stop(self->serial);
		g_clear_object(&self->serial);
	}
	/* the previous QEMU (a port clash) is gone: nothing of it may reach this one */
	g_clear_pointer(&self->watch, qsim_proc_watch_free);
	g_clear_object(&self->proc);
	qsim_vm_tail_free(self->stderr_tail);
	self->stderr_tail = qsim_vm_tail_new(QSIM_VM_STDERR_TAIL);
	self->proc_exited = FALSE;

	/* stdin stays an open pipe nobody writes: the stdio chardev then never sees EOF */
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_subprocess_launcher_set_cwd(launcher, self->run_dir);
	/* NETWORK=outbound: QEMU runs in the namespace pasta serves */
	g_subprocess_launcher_set_child_setup(
	    launcher, qsim_proc_child_setup,
	    GINT_TO_POINTER(
	        self->outbound != NULL ? qsim_net_outbound_get_netns_fd(self->outbound) + 1 : 0),
	    NULL);
	/* the launcher owns them now, and closes its copies once QEMU has them */
	g_subprocess_launcher_take_fd(launcher, qmp_qemu_end, QSIM_VM_ARGV_QMP_FD);
	if (state_fd >= 0)
		g_subprocess_launcher_take_fd(launcher, state_fd, QSIM_VM_ARGV_INCOMING_FD);
	self->proc =
	    g_subprocess_launcher_spawnv(launcher, (const gchar *const *)self->argv, error);
	if (self->proc == NULL) {
		qsim_error_convert(error);
		g_prefix_error(error, "cannot run %s: ", self->qemu_binary);
		return FALSE;
	}
	ident = g_subprocess_get_identifier(self->proc);
	self->pid = ident != NULL ? (GPid)g_ascii_strtoll(ident, NULL, 10) : 0;
	g_info("%s: QEMU pid %d, SSH on 127.0.0.1:%u, run dir %s", self->config->name,
	       (gint)self->pid, (guint)self->port, self->run_dir);
	if (!qsim_vm_rundir_write_state(self->run_dir, self->pid, self->request_id, &error_state)) {
		/* a QEMU that exits at once (bad argv) is reported by the exit path */
		if (g_error_matches(error_state, QSIM_ERROR, QSIM_ERROR_NOT_FOUND))
			g_debug("%s: %s", self->config->name, error_state->message);
		else
			g_warning("%s: %s", self->config->name, error_state->message);
	}

	self->serial = qsim_serial_reader_new(g_subprocess_get_stdout_pipe(self->proc),
	                                      self->config->ready_marker);
	g_signal_connect(self->serial, "data", G_CALLBACK(qsim_vm_serial_data_cb), self);
	g_signal_connect(self->serial, "marker", G_CALLBACK(qsim_vm_ready_marker_cb), self);
	qsim_serial_reader_set_paused(self->serial, self->console_paused);
	qsim_serial_reader_start(self->serial);
	/* a restore prints nothing until the guest does something: only a boot is watched */
	g_clear_handle_id(&self->kvm_watch_id, g_source_remove);
	self->console_seen = FALSE;
	if (self->use_kvm && self->kvm_console_timeout_ms > 0 && self->restore_state == NULL)
		self->kvm_watch_id =
		    g_timeout_add(self->kvm_console_timeout_ms, qsim_vm_kvm_watch_cb, self);
	self->watch = qsim_proc_watch_new(self->proc, g_subprocess_get_stderr_pipe(self->proc),
	                                  QSIM_VM_STDERR_DRAIN_MS, qsim_vm_stderr_cb,
	                                  qsim_vm_proc_exited_cb, qsim_vm_proc_done_cb, self, NULL);
	qsim_vm_qmp_handshake(self, qmp_socket);
	return TRUE;
}

/* Aborts a start in progress: QEMU (if any) is killed and the start task fails with
 * @error once it is gone. */
void
qsim_vm_start_abort(QsimVm *self, GError *error)
{
	if (self->start_error == NULL)
		self->start_error = error;
	else
		g_error_free(error);
	if (qsim_vm_proc_alive(self)) {
		g_subprocess_force_exit(self->proc);
		return;
	}
	if (self->proc == NULL) {
		g_autoptr(GError) e = g_error_copy(self->start_error);
		qsim_vm_finish_exit(self, QSIM_VM_EXIT_START_FAILED, g_strdup(e->message));
	}
	/* else: QEMU already exited, qsim_vm_handle_exit() reports when stderr is drained */
}

static gboolean
qsim_vm_qmp_fail_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	/* QEMU still runs, yet its monitor failed: give up on it */
	self->qmp_fail_id = 0;
	if (self->start_task != NULL && !self->proc_exited)
		qsim_vm_start_abort(self, g_steal_pointer(&self->qmp_fail_error));
	g_clear_error(&self->qmp_fail_error);
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_restore_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;

	if (!qsim_template_migrate_load_finish(res, &error)) {
		g_autofree gchar *tail = qsim_vm_tail_to_string(self->stderr_tail);

		/* QEMU says why it rejected the state ("load of migration failed: ...") */
		if (tail[0] != '\0') {
			g_autofree gchar *msg =
			    g_strdup_printf("%s; QEMU: %s", error->message, g_strstrip(tail));
			g_free(error->message);
			error->message = g_steal_pointer(&msg);
		}
		if (self->start_task == task)
			qsim_vm_start_abort(self, g_steal_pointer(&error));
		return;
	}
	if (self->start_task != task || self->start_error != NULL)
		return;
	g_info("%s: restored from %s", self->config->name, self->restore_state);
	qsim_vm_set_state(self, QSIM_VM_STATE_RUNNING);
	g_clear_object(&self->start_task);
	g_task_return_boolean(task, TRUE);
}

typedef struct {
	GTask *start_task;
	guint attempt; /* QEMU is respawned when its port was taken: only the last one counts */
} HandshakeData;

static void
qsim_vm_qmp_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	HandshakeData *hd = user_data;
	g_autoptr(GTask) task = hd->start_task;
	QsimVm *self = g_task_get_source_object(task);
	guint attempt = hd->attempt;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = qsim_qmp_client_new_for_stream_finish(res, &error);

	g_free(hd);
	if (self->start_task != task || self->start_error != NULL ||
	    attempt != self->start_attempts) {
		if (client != NULL)
			qsim_qmp_client_close(client);
		return;
	}
	if (client == NULL) {
		if (self->proc_exited)
			return; /* qsim_vm_handle_exit() reports QEMU's own reason */
		g_debug("%s: QMP greeting failed: %s", self->config->name, error->message);
		g_prefix_error(&error, "QEMU's monitor failed: ");
		g_clear_error(&self->qmp_fail_error);
		self->qmp_fail_error = g_steal_pointer(&error);
		g_clear_handle_id(&self->qmp_fail_id, g_source_remove);
		self->qmp_fail_id =
		    g_timeout_add(QSIM_VM_QMP_EXIT_WAIT_MS, qsim_vm_qmp_fail_cb, self);
		return;
	}
	if (self->proc_exited) {
		qsim_qmp_client_close(client);
		return;
	}
	qsim_vm_qmp_attach(self, g_steal_pointer(&client));
	g_info("%s: QMP connected (QEMU %s)", self->config->name,
	       qsim_qmp_client_get_version(self->qmp));
	if (self->restore_state != NULL) {
		qsim_template_migrate_load_async(self->qmp, QSIM_VM_ARGV_INCOMING_FD,
		                                 QSIM_VM_RESTORE_TIMEOUT_MS, NULL,
		                                 qsim_vm_restore_cb, g_steal_pointer(&task));
		return;
	}
	qsim_vm_set_state(self, QSIM_VM_STATE_RUNNING);
	g_clear_object(&self->start_task);
	g_task_return_boolean(task, TRUE);
}

static void
qsim_vm_qmp_handshake(QsimVm *self, GSocket *socket)
{
	g_autoptr(GSocketConnection) conn = g_socket_connection_factory_create_connection(socket);
	HandshakeData *hd = g_new0(HandshakeData, 1);

	/* the start task keeps self alive until the greeting is in */
	hd->start_task = g_object_ref(self->start_task);
	hd->attempt = self->start_attempts;
	qsim_qmp_client_new_for_stream_async(G_IO_STREAM(conn), QSIM_VM_QMP_GREETING_TIMEOUT_MS,
	                                     NULL, qsim_vm_qmp_handshake_cb, hd);
}

static void
qsim_vm_overlay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;

	if (self->start_task != task)
		return;
	if (!qsim_vm_overlay_create_finish(res, &error)) {
		qsim_vm_start_abort(self, g_steal_pointer(&error));
		return;
	}
	if (self->start_error != NULL) {
		qsim_vm_start_abort(self, g_error_copy(self->start_error));
		return;
	}
	if (!qsim_vm_spawn(self, &error))
		qsim_vm_start_abort(self, g_steal_pointer(&error));
}

static void
qsim_vm_start_cancelled_cb(QsimVm *self, GCancellable *cancellable)
{
	/* the caller's cancellable only aborts the start, never a VM that came up */
	if (self->state == QSIM_VM_STATE_STARTING)
		qsim_vm_kill(self);
}

/**
 * qsim_vm_start_async:
 * @self: a #QsimVm in state created
 * @cancellable: (nullable): aborts the start (QEMU is killed)
 * @callback: called when QMP is connected or the start failed
 * @user_data: data for @callback
 *
 * Creates the run directory and the overlay, spawns QEMU with one end of a socket pair
 * as its QMP monitor and reads the greeting on the other (no socket path, no polling).
 * If QEMU exits early the error quotes its stderr; if the forwarded host port was taken
 * by another process, QEMU is started again on a new one.
 */
void
qsim_vm_start_async(QsimVm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autofree gchar *overlay = NULL;
	g_autoptr(GError) error = NULL;

	g_task_set_source_tag(task, qsim_vm_start_async);
	/* our errors are QSIM_ERROR, also when the caller's cancellable fired */
	g_task_set_check_cancellable(task, FALSE);
	if (self->state != QSIM_VM_STATE_CREATED) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		                        "VM %s was already started (state %s)", self->config->name,
		                        qsim_vm_state_to_string(self->state));
		return;
	}
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                        "start of VM %s was cancelled", self->config->name);
		return;
	}
	qsim_vm_set_state(self, QSIM_VM_STATE_STARTING);
	self->start_task = g_object_ref(task);
	self->started_us = g_get_monotonic_time();
	self->run_dir = qsim_vm_rundir_create(self->run_root, self->config->name, &error);
	if (self->run_dir == NULL) {
		qsim_vm_start_abort(self, g_steal_pointer(&error));
		return;
	}
	if (cancellable != NULL)
		g_signal_connect_object(cancellable, "cancelled",
		                        G_CALLBACK(qsim_vm_start_cancelled_cb), self,
		                        G_CONNECT_SWAPPED);
	overlay = g_build_filename(self->run_dir, QSIM_VM_RUNDIR_OVERLAY, NULL);
	if (self->overlay_template != NULL) {
		qsim_vm_overlay_copy_async(self->overlay_template, overlay, NULL,
		                           qsim_vm_overlay_cb, g_object_ref(task));
		return;
	}
	/* a restore boots from the template's disk, itself an overlay of the base image */
	qsim_vm_overlay_create_async(self->qemu_img,
	                             self->restore_disk != NULL ? self->restore_disk
	                                                        : self->config->image_path,
	                             self->restore_disk != NULL ? "qcow2" : self->config->format,
	                             overlay, NULL, qsim_vm_overlay_cb, g_object_ref(task));
}

/**
 * qsim_vm_start_finish:
 * @self: a #QsimVm
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE when QEMU runs and QMP is connected (state running)
 */
gboolean
qsim_vm_start_finish(QsimVm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}
