#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands.h"
#include "qsim-net-outbound.h"
#include "qsim-netns.h"
#include "qsim-serial-reader.h"
#include "qsim-template-migrate.h"
#include "qsim-vm-argv.h"
#include "qsim-vm-overlay.h"
#include "qsim-vm-port.h"
#include "qsim-vm-rundir.h"
#include "qsim-vm-tail.h"
#include "qsim-vm.h"

/* QEMU greets on its QMP socket within a second; this only bounds a wedged host. */
#define QSIM_VM_QMP_GREETING_TIMEOUT_MS 30000
/* a QMP socket that closed before the greeting means QEMU is exiting: give it this long
 * to be reaped, so the start error quotes QEMU's own words */
#define QSIM_VM_QMP_EXIT_WAIT_MS 1000
#define QSIM_VM_QMP_COMMAND_TIMEOUT_MS 5000
#define QSIM_VM_QUIT_WAIT_MS 3000
#define QSIM_VM_TERM_WAIT_MS 3000
#define QSIM_VM_KILL_WAIT_MS 5000
/* after QEMU exits, give its stderr pipe this long to deliver the last words */
#define QSIM_VM_STDERR_DRAIN_MS 1000
#define QSIM_VM_STDERR_TAIL 4096
/* another process may grab the port between our probe and QEMU's bind */
#define QSIM_VM_MAX_PORT_ATTEMPTS 5
#define QSIM_VM_PROBE_TIMEOUT_S 1
#define QSIM_VM_PROBE_RETRY_MS 50
/* loading a template's state file; ~100 MB from page cache takes about a second */
#define QSIM_VM_RESTORE_TIMEOUT_MS 60000

typedef enum {
	STOP_NONE,
	STOP_POWERDOWN,
	STOP_QUIT,
	STOP_TERM,
	STOP_KILL,
} StopStep;

struct _QsimVm {
	GObject parent_instance;
	QsimVmConfig *config;
	gchar *run_root;
	gchar *qemu_binary;
	gchar *qemu_img;
	gchar *request_id;
	GCancellable *lifetime; /* cancelled on dispose: internal I/O callbacks then bail out */

	QsimVmState state;
	QsimVmExitReason exit_reason;
	gchar *exit_message;
	gchar *run_dir;
	gchar **argv;
	guint16 port;
	guint16 port_hint;
	GSubprocess *proc;
	GPid pid;
	QsimSerialReader *serial;
	QsimVmTail *stderr_tail;
	QsimQmpClient *qmp;
	gint64 started_us;
	gboolean proc_exited;
	gboolean stderr_eof;
	guint drain_id;
	gboolean guest_shutdown_event;
	gchar *shutdown_event_reason;

	GTask *start_task;
	GError *start_error; /* why start was aborted, reported once QEMU is gone */
	guint start_attempts;
	guint qmp_fail_id;      /* the greeting failed: abort unless QEMU exits first */
	GError *qmp_fail_error; /* why, for qmp_fail_id */

	StopStep stop_step;
	gboolean stop_from_paused;
	guint stop_timer_id;
	guint grace_ms;
	GPtrArray *shutdown_tasks;

	GTask *ready_task;
	gboolean ready;
	guint ready_timeout_id;
	guint ready_retry_id;
	GCancellable *probe_cancellable;
	GSocketConnection *probe_conn;
	guint8 probe_buf[64];
	gchar *ready_last_seen;
	GCancellable *ready_cancellable; /* the caller's, watched while waiting */
	gulong ready_cancel_handler;
	guint ready_cancel_idle;

	/* fast start (qsim-template.c): restore from this state, on an overlay of this disk */
	gchar *restore_disk;
	gchar *restore_state;
	gchar *overlay_template; /* copied instead of running qemu-img */
	/* guest RAM in this file: shared for a template build, private for a restore */
	gchar *ram_path;
	gboolean ram_shared;

	/* the accelerator (qsim-accel-resolver.c decides it) and, under KVM, a watchdog on a
	 * console that stays silent: a KVM that cannot run the guest still says "running" */
	gboolean use_kvm;
	gchar *accel_why;
	guint kvm_console_timeout_ms;
	guint kvm_watch_id;
	gboolean console_seen;
	/* backpressure from the consumer of "console-output"; survives a respawn */
	gboolean console_paused;
	gchar *kvm_failure;
	/* NETWORK=outbound: pasta and the namespace QEMU runs in (docs/network.md) */
	QsimNetOutbound *outbound;
	gchar *net_failure;
};

G_DEFINE_TYPE(QsimVm, qsim_vm, G_TYPE_OBJECT)

enum { SIGNAL_STATE_CHANGED, SIGNAL_CONSOLE_OUTPUT, SIGNAL_EXITED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void qsim_vm_qmp_handshake(QsimVm *self, GSocket *socket);
static void qsim_vm_ready_probe(QsimVm *self);
static void qsim_vm_stop_quit(QsimVm *self);
static void qsim_vm_stop_term(QsimVm *self);
static void qsim_vm_stop_kill(QsimVm *self);

const gchar *
qsim_vm_state_to_string(QsimVmState state)
{
	switch (state) {
	case QSIM_VM_STATE_CREATED:
		return "created";
	case QSIM_VM_STATE_STARTING:
		return "starting";
	case QSIM_VM_STATE_RUNNING:
		return "running";
	case QSIM_VM_STATE_PAUSED:
		return "paused";
	case QSIM_VM_STATE_STOPPING:
		return "stopping";
	case QSIM_VM_STATE_EXITED:
		return "exited";
	}
	return "unknown";
}

const gchar *
qsim_vm_exit_reason_to_string(QsimVmExitReason reason)
{
	switch (reason) {
	case QSIM_VM_EXIT_NONE:
		return "none";
	case QSIM_VM_EXIT_POWEROFF:
		return "poweroff";
	case QSIM_VM_EXIT_QUIT:
		return "quit";
	case QSIM_VM_EXIT_TERMINATED:
		return "terminated";
	case QSIM_VM_EXIT_KILLED:
		return "killed";
	case QSIM_VM_EXIT_CRASHED:
		return "crashed";
	case QSIM_VM_EXIT_START_FAILED:
		return "start_failed";
	}
	return "unknown";
}

static void
qsim_vm_set_state(QsimVm *self, QsimVmState state)
{
	if (self->state == state)
		return;
	g_debug("%s: %s -> %s", self->config->name, qsim_vm_state_to_string(self->state),
	        qsim_vm_state_to_string(state));
	self->state = state;
	g_signal_emit(self, signals[SIGNAL_STATE_CHANGED], 0, (guint)state);
}

static gboolean
qsim_vm_proc_alive(QsimVm *self)
{
	return self->proc != NULL && !self->proc_exited;
}

static gboolean
qsim_vm_qmp_usable(QsimVm *self)
{
	return self->qmp != NULL && qsim_qmp_client_is_connected(self->qmp);
}

/* ---- QMP connection ---------------------------------------------------- */

static void
qsim_vm_qmp_event_cb(QsimQmpClient *client, const gchar *name, JsonObject *data,
                     gint64 timestamp_us, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	g_debug("%s: QMP event %s", self->config->name, name);
	if (g_strcmp0(name, "SHUTDOWN") == 0 && data != NULL) {
		self->guest_shutdown_event =
		    json_object_get_boolean_member_with_default(data, "guest", FALSE);
		g_free(self->shutdown_event_reason);
		self->shutdown_event_reason =
		    g_strdup(json_object_get_string_member_with_default(data, "reason", NULL));
	} else if (g_strcmp0(name, "STOP") == 0 && self->state == QSIM_VM_STATE_RUNNING) {
		qsim_vm_set_state(self, QSIM_VM_STATE_PAUSED);
	} else if (g_strcmp0(name, "RESUME") == 0 && self->state == QSIM_VM_STATE_PAUSED) {
		qsim_vm_set_state(self, QSIM_VM_STATE_RUNNING);
	}
}

static void
qsim_vm_qmp_closed_cb(QsimQmpClient *client, GError *error, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	if (error != NULL && self->stop_step == STOP_NONE)
		g_info("%s: QMP connection closed: %s", self->config->name, error->message);
}

static void
qsim_vm_qmp_drop(QsimVm *self)
{
	if (self->qmp == NULL)
		return;
	g_signal_handlers_disconnect_by_data(self->qmp, self);
	qsim_qmp_client_close(self->qmp);
	g_clear_object(&self->qmp);
}

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
	g_clear_handle_id(&self->drain_id, g_source_remove);
	g_clear_handle_id(&self->qmp_fail_id, g_source_remove);
	g_clear_handle_id(&self->stop_timer_id, g_source_remove);
	g_clear_handle_id(&self->ready_timeout_id, g_source_remove);
	g_clear_handle_id(&self->ready_retry_id, g_source_remove);
}

static void
qsim_vm_ready_clear(QsimVm *self)
{
	g_clear_handle_id(&self->ready_timeout_id, g_source_remove);
	g_clear_handle_id(&self->ready_retry_id, g_source_remove);
	g_clear_handle_id(&self->ready_cancel_idle, g_source_remove);
	if (self->ready_cancellable != NULL) {
		/* never called from the "cancelled" handler itself, where it would deadlock */
		g_cancellable_disconnect(self->ready_cancellable, self->ready_cancel_handler);
		self->ready_cancel_handler = 0;
		g_clear_object(&self->ready_cancellable);
	}
	if (self->probe_cancellable != NULL)
		g_cancellable_cancel(self->probe_cancellable);
	g_clear_object(&self->probe_cancellable);
	g_clear_object(&self->probe_conn);
}

static void
qsim_vm_ready_complete(QsimVm *self, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->ready_task);

	qsim_vm_ready_clear(self);
	if (task == NULL) {
		g_clear_error(&error);
		return;
	}
	if (error != NULL) {
		g_task_return_error(task, error);
		return;
	}
	self->ready = TRUE;
	g_task_return_boolean(task, TRUE);
}

static void
qsim_vm_outbound_drop(QsimVm *self)
{
	if (self->outbound == NULL)
		return;
	g_signal_handlers_disconnect_by_data(self->outbound, self);
	qsim_net_outbound_stop(self->outbound);
	g_clear_object(&self->outbound);
}

/* Everything that must go whichever way the VM ends: the process's pipes, the QMP
 * connection, the network helper, the port reservation and the run directory. */
static void
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

static void
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
	g_signal_emit(self, signals[SIGNAL_EXITED], 0, (guint)reason, message);
	for (guint i = 0; i < shutdown_tasks->len; i++)
		g_task_return_boolean(g_ptr_array_index(shutdown_tasks, i), TRUE);
}

static gboolean qsim_vm_spawn(QsimVm *self, GError **error);

static void
qsim_vm_handle_exit(QsimVm *self)
{
	g_autoptr(QsimVm) keep = g_object_ref(self); /* completing tasks may drop the last ref */
	g_autofree gchar *tail = qsim_vm_tail_to_string(self->stderr_tail);
	g_autofree gchar *status = qsim_vm_describe_status(self);
	QsimVmExitReason reason = QSIM_VM_EXIT_NONE;
	gchar *message = NULL;

	g_clear_handle_id(&self->drain_id, g_source_remove);
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

static void
qsim_vm_maybe_handle_exit(QsimVm *self)
{
	if (self->proc_exited && self->stderr_eof)
		qsim_vm_handle_exit(self);
}

static gboolean
qsim_vm_drain_timeout_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	/* a child of QEMU may hold stderr open; do not wait for it forever */
	self->drain_id = 0;
	self->stderr_eof = TRUE;
	qsim_vm_maybe_handle_exit(self);
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	QsimVm *self;

	/* cancelled means disposed: user_data is gone */
	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error) &&
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	self = QSIM_VM(user_data);
	if (G_SUBPROCESS(source) != self->proc)
		return;
	self->proc_exited = TRUE;
	if (!self->stderr_eof)
		self->drain_id =
		    g_timeout_add(QSIM_VM_STDERR_DRAIN_MS, qsim_vm_drain_timeout_cb, self);
	qsim_vm_maybe_handle_exit(self);
}

static void qsim_vm_read_stderr(QsimVm *self);

static void
qsim_vm_stderr_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	QsimVm *self;
	gsize len = 0;
	const guint8 *data;

	bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);
	if (bytes == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	self = QSIM_VM(user_data);
	if (self->proc == NULL ||
	    G_INPUT_STREAM(source) != g_subprocess_get_stderr_pipe(self->proc))
		return;
	data = bytes != NULL ? g_bytes_get_data(bytes, &len) : NULL;
	if (len == 0) {
		self->stderr_eof = TRUE;
		qsim_vm_maybe_handle_exit(self);
		return;
	}
	g_debug("%s: QEMU stderr: %.*s", self->config->name, (gint)len, (const gchar *)data);
	qsim_vm_tail_append(self->stderr_tail, data, len);
	qsim_vm_read_stderr(self);
}

static void
qsim_vm_read_stderr(QsimVm *self)
{
	g_input_stream_read_bytes_async(g_subprocess_get_stderr_pipe(self->proc), 4096,
	                                G_PRIORITY_DEFAULT, self->lifetime, qsim_vm_stderr_cb,
	                                self);
}

/* ---- start ------------------------------------------------------------- */

static void
qsim_vm_serial_data_cb(QsimSerialReader *serial, GBytes *chunk, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	if (g_bytes_get_size(chunk) > 0) {
		self->console_seen = TRUE;
		g_clear_handle_id(&self->kvm_watch_id, g_source_remove);
	}
	g_signal_emit(self, signals[SIGNAL_CONSOLE_OUTPUT], 0, chunk);
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

static void qsim_vm_marker_cb(QsimSerialReader *serial, gpointer user_data);

/* Runs in the child between fork and exec, so only async-signal-safe calls. Its own
 * process group keeps a terminal's Ctrl-C away from QEMU (qsim shuts it down in order),
 * and the parent-death signal stops a QEMU whose daemon was killed outright.
 * @user_data is the network namespace's fd + 1 for NETWORK=outbound, else 0: an
 * unrestricted slirp outside its namespace would hand the guest the host's loopback, so
 * QEMU never runs if it cannot enter it. */
static void
qsim_vm_child_setup(gpointer user_data)
{
	gint netns_fd = GPOINTER_TO_INT(user_data) - 1;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (netns_fd >= 0 && !qsim_netns_enter(netns_fd)) {
		static const char msg[] = "qsim: cannot enter the VM's network namespace\n";

		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing left to tell */
		}
		_exit(127);
	}
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

static gboolean
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
	g_clear_object(&self->proc);
	qsim_vm_tail_free(self->stderr_tail);
	self->stderr_tail = qsim_vm_tail_new(QSIM_VM_STDERR_TAIL);
	self->proc_exited = FALSE;
	self->stderr_eof = FALSE;

	/* stdin stays an open pipe nobody writes: the stdio chardev then never sees EOF */
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_subprocess_launcher_set_cwd(launcher, self->run_dir);
	g_subprocess_launcher_set_child_setup(
	    launcher, qsim_vm_child_setup,
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
	g_signal_connect(self->serial, "marker", G_CALLBACK(qsim_vm_marker_cb), self);
	qsim_serial_reader_set_paused(self->serial, self->console_paused);
	qsim_serial_reader_start(self->serial);
	/* a restore prints nothing until the guest does something: only a boot is watched */
	g_clear_handle_id(&self->kvm_watch_id, g_source_remove);
	self->console_seen = FALSE;
	if (self->use_kvm && self->kvm_console_timeout_ms > 0 && self->restore_state == NULL)
		self->kvm_watch_id =
		    g_timeout_add(self->kvm_console_timeout_ms, qsim_vm_kvm_watch_cb, self);
	qsim_vm_read_stderr(self);
	g_subprocess_wait_async(self->proc, self->lifetime, qsim_vm_wait_cb, self);
	qsim_vm_qmp_handshake(self, qmp_socket);
	return TRUE;
}

/* Aborts a start in progress: QEMU (if any) is killed and the start task fails with
 * @error once it is gone. */
static void
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
	self->qmp = g_steal_pointer(&client);
	g_signal_connect(self->qmp, "event", G_CALLBACK(qsim_vm_qmp_event_cb), self);
	g_signal_connect(self->qmp, "closed", G_CALLBACK(qsim_vm_qmp_closed_cb), self);
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
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- readiness --------------------------------------------------------- */

static void
qsim_vm_set_last_seen(QsimVm *self, const gchar *what)
{
	g_free(self->ready_last_seen);
	self->ready_last_seen = g_strdup(what);
}

static gboolean
qsim_vm_ready_retry_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->ready_retry_id = 0;
	qsim_vm_ready_probe(self);
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_ready_retry(QsimVm *self, const gchar *last_seen)
{
	qsim_vm_set_last_seen(self, last_seen);
	g_clear_object(&self->probe_conn);
	g_clear_object(&self->probe_cancellable);
	self->ready_retry_id = g_timeout_add(QSIM_VM_PROBE_RETRY_MS, qsim_vm_ready_retry_cb, self);
}

static void
qsim_vm_probe_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);
	g_autofree gchar *what = NULL;

	if (self->ready_task != task || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (n >= 4 && memcmp(self->probe_buf, "SSH-", 4) == 0) {
		g_debug("%s: SSH answers on port %u", self->config->name, (guint)self->port);
		qsim_vm_ready_complete(self, NULL);
		return;
	}
	if (n < 0)
		what = g_strdup_printf("SSH banner not received: %s", error->message);
	else if (n == 0)
		what = g_strdup("SSH port closed the connection before a banner");
	else
		what = g_strdup("SSH port answered something that is not an SSH banner");
	qsim_vm_ready_retry(self, what);
}

static void
qsim_vm_probe_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) conn =
	    g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), res, &error);
	g_autofree gchar *what = NULL;

	if (self->ready_task != task || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (conn == NULL) {
		what = g_strdup_printf("SSH port not reachable: %s", error->message);
		qsim_vm_ready_retry(self, what);
		return;
	}
	self->probe_conn = g_steal_pointer(&conn);
	g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(self->probe_conn)),
	                          self->probe_buf, sizeof(self->probe_buf), G_PRIORITY_DEFAULT,
	                          self->probe_cancellable, qsim_vm_probe_read_cb,
	                          g_object_ref(task));
}

/* One look at the forwarded port: QEMU's user network accepts the TCP connection itself
 * before the guest does, so only the SSH banner shows that sshd really answers. */
static void
qsim_vm_ready_probe(QsimVm *self)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();

	g_clear_object(&self->probe_cancellable);
	self->probe_cancellable = g_cancellable_new();
	g_socket_client_set_timeout(client, QSIM_VM_PROBE_TIMEOUT_S);
	g_socket_client_connect_to_host_async(client, "127.0.0.1", self->port,
	                                      self->probe_cancellable, qsim_vm_probe_connect_cb,
	                                      g_object_ref(self->ready_task));
}

static void
qsim_vm_marker_cb(QsimSerialReader *serial, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	g_debug("%s: ready marker seen on the console", self->config->name);
	if (self->ready_task != NULL && self->probe_cancellable == NULL &&
	    self->ready_retry_id == 0)
		qsim_vm_ready_probe(self);
}

static gboolean
qsim_vm_ready_timeout_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);
	g_autofree gchar *console = qsim_vm_get_console_tail(self);
	g_autofree gchar *last_line = NULL;
	const gchar *nl;

	self->ready_timeout_id = 0;
	nl = strrchr(console, '\n');
	last_line = g_strdup(nl != NULL ? nl + 1 : console);
	qsim_vm_ready_complete(
	    self, g_error_new(QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
	                      "VM %s was not ready in time: %s; last console line: \"%s\"",
	                      self->config->name,
	                      self->ready_last_seen != NULL ? self->ready_last_seen
	                                                    : "nothing checked yet",
	                      last_line));
	return G_SOURCE_REMOVE;
}

static gboolean
qsim_vm_ready_cancel_idle_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->ready_cancel_idle = 0;
	qsim_vm_ready_complete(self,
	                       g_error_new(QSIM_ERROR, QSIM_ERROR_CANCELLED,
	                                   "waiting for VM %s was cancelled", self->config->name));
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_ready_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	/* may run in another thread, and must not disconnect itself: defer to the loop */
	if (self->ready_cancel_idle == 0)
		self->ready_cancel_idle = g_idle_add(qsim_vm_ready_cancel_idle_cb, self);
}

/**
 * qsim_vm_wait_ready_async:
 * @self: a started #QsimVm
 * @deadline_us: absolute g_get_monotonic_time() deadline, or 0 for the start time plus
 *   the config's BOOT_TIMEOUT
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when ready, on timeout, or when QEMU exits
 * @user_data: data for @callback
 *
 * Waits until QMP is up and the guest's SSH answers with a banner. With READY_MARKER
 * set, the probe only starts once the marker appeared on the serial console, so no
 * attempt hangs against a guest whose network is not up. On timeout the
 * %QSIM_ERROR_TIMED_OUT message says what was last seen. A restored VM is ready as soon
 * as it runs: its sshd answered when it was saved, and the caller's SSH connect, which
 * retries until its own deadline, is the check. The caller then connects a QsimGuest to
 * qsim_vm_get_ssh_host()/qsim_vm_get_ssh_port().
 */
void
qsim_vm_wait_ready_async(QsimVm *self, gint64 deadline_us, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	gint64 now = g_get_monotonic_time();

	g_task_set_source_tag(task, qsim_vm_wait_ready_async);
	/* our errors are QSIM_ERROR, also when the caller's cancellable fired */
	g_task_set_check_cancellable(task, FALSE);
	if (self->state == QSIM_VM_STATE_EXITED) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM, "VM exited: %s",
		                        self->exit_message);
		return;
	}
	if (self->state != QSIM_VM_STATE_RUNNING && self->state != QSIM_VM_STATE_PAUSED) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		                        "VM %s is %s, not running", self->config->name,
		                        qsim_vm_state_to_string(self->state));
		return;
	}
	/* a restored guest's sshd was answering when it was saved, and the caller's SSH
	 * connect retries until its deadline: a probe here would only make the guest accept
	 * one more connection (a fork in dropbear, under TCG with a cold code cache) */
	if (self->ready || self->restore_state != NULL) {
		self->ready = TRUE;
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (self->ready_task != NULL) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "already waiting for VM %s", self->config->name);
		return;
	}
	if (deadline_us <= 0)
		deadline_us =
		    self->started_us + (gint64)self->config->boot_timeout * G_USEC_PER_SEC;
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                        "waiting for VM %s was cancelled", self->config->name);
		return;
	}
	self->ready_task = g_steal_pointer(&task);
	if (cancellable != NULL) {
		self->ready_cancellable = g_object_ref(cancellable);
		self->ready_cancel_handler = g_cancellable_connect(
		    cancellable, G_CALLBACK(qsim_vm_ready_cancelled_cb), self, NULL);
	}
	self->ready_timeout_id =
	    g_timeout_add(deadline_us > now ? (guint)((deadline_us - now) / 1000) : 0,
	                  qsim_vm_ready_timeout_cb, self);
	/* a restored guest printed its marker before it was saved */
	if (self->config->ready_marker != NULL && self->restore_state == NULL &&
	    !qsim_serial_reader_get_marker_seen(self->serial)) {
		g_autofree gchar *what = g_strdup_printf(
		    "marker \"%s\" not seen on the serial console", self->config->ready_marker);
		qsim_vm_set_last_seen(self, what);
		return;
	}
	qsim_vm_ready_probe(self);
}

/**
 * qsim_vm_wait_ready_finish:
 * @self: a #QsimVm
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the guest's SSH answers
 */
gboolean
qsim_vm_wait_ready_finish(QsimVm *self, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

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
	return g_task_propagate_boolean(G_TASK(result), error);
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

/* ---- getters ----------------------------------------------------------- */

QsimVmState
qsim_vm_get_state(QsimVm *self)
{
	return self->state;
}

QsimVmExitReason
qsim_vm_get_exit_reason(QsimVm *self)
{
	return self->exit_reason;
}

/**
 * qsim_vm_get_exit_message:
 * @self: a #QsimVm
 *
 * Returns: (transfer none) (nullable): a sentence on how QEMU ended (with its stderr tail
 * when it crashed), %NULL while it runs
 */
const gchar *
qsim_vm_get_exit_message(QsimVm *self)
{
	return self->exit_message;
}

/**
 * qsim_vm_get_config:
 * @self: a #QsimVm
 *
 * Returns: (transfer none): the VM's configuration, owned by @self
 */
const QsimVmConfig *
qsim_vm_get_config(QsimVm *self)
{
	return self->config;
}

/**
 * qsim_vm_get_run_dir:
 * @self: a #QsimVm
 *
 * Returns: (transfer none) (nullable): this start's run directory (removed on exit)
 */
const gchar *
qsim_vm_get_run_dir(QsimVm *self)
{
	return self->run_dir;
}

/**
 * qsim_vm_get_pid:
 * @self: a #QsimVm
 *
 * Returns: QEMU's pid once spawned (still set after it exited), else 0
 */
GPid
qsim_vm_get_pid(QsimVm *self)
{
	return self->pid;
}

/**
 * qsim_vm_get_ssh_host:
 * @self: a #QsimVm
 *
 * Returns: (transfer none): where the guest's SSH is forwarded to, "127.0.0.1"
 */
const gchar *
qsim_vm_get_ssh_host(QsimVm *self)
{
	return "127.0.0.1";
}

/**
 * qsim_vm_get_ssh_port:
 * @self: a #QsimVm
 *
 * Returns: the host port forwarded to the guest's SSH_PORT while QEMU runs, else 0
 */
guint16
qsim_vm_get_ssh_port(QsimVm *self)
{
	return self->port;
}

/**
 * qsim_vm_get_qmp:
 * @self: a #QsimVm
 *
 * Returns: (transfer none) (nullable): the VM's one QMP connection, for commands that
 * have no QsimVm method; %NULL when not connected
 */
QsimQmpClient *
qsim_vm_get_qmp(QsimVm *self)
{
	return self->qmp;
}

/**
 * qsim_vm_get_stderr_tail:
 * @self: a #QsimVm
 *
 * Returns: (transfer full): the last 4 KiB of QEMU's stderr as UTF-8, possibly empty
 */
gchar *
qsim_vm_get_stderr_tail(QsimVm *self)
{
	return qsim_vm_tail_to_string(self->stderr_tail);
}

/**
 * qsim_vm_get_console_tail:
 * @self: a #QsimVm
 *
 * Returns: (transfer full): the last few hundred bytes of the serial console as UTF-8
 */
gchar *
qsim_vm_get_console_tail(QsimVm *self)
{
	return self->serial != NULL ? qsim_serial_reader_get_tail(self->serial) : g_strdup("");
}

/**
 * qsim_vm_get_argv:
 * @self: a #QsimVm
 *
 * Returns: (transfer none) (nullable): QEMU's argv of the current (or last) start
 */
const gchar *const *
qsim_vm_get_argv(QsimVm *self)
{
	return (const gchar *const *)self->argv;
}

void
qsim_vm_set_qemu_binary(QsimVm *self, const gchar *qemu_binary)
{
	g_free(self->qemu_binary);
	self->qemu_binary = g_strdup(qemu_binary != NULL ? qemu_binary : QSIM_QEMU_BINARY);
}

void
qsim_vm_set_qemu_img_binary(QsimVm *self, const gchar *qemu_img_binary)
{
	g_free(self->qemu_img);
	self->qemu_img = g_strdup(qemu_img_binary != NULL ? qemu_img_binary : QSIM_QEMU_IMG_BINARY);
}

/**
 * qsim_vm_set_request_id:
 * @self: a #QsimVm not yet started
 * @request_id: (nullable): recorded in the run dir's qsim.json for orphan recovery
 */
void
qsim_vm_set_request_id(QsimVm *self, const gchar *request_id)
{
	g_free(self->request_id);
	self->request_id = g_strdup(request_id);
}

/**
 * qsim_vm_set_ssh_port_hint:
 * @self: a #QsimVm not yet started
 * @port: the host port to try first for the SSH forward, 0 to pick any
 *
 * If @port turns out to be taken, the start carries on with a free port anyway.
 */
void
qsim_vm_set_ssh_port_hint(QsimVm *self, guint16 port)
{
	self->port_hint = port;
}

/**
 * qsim_vm_set_restore_from:
 * @self: a #QsimVm not yet started
 * @disk_path: (nullable): the template's disk (qcow2); the start's overlay is backed by it
 * @state_path: (nullable): the template's state file (device state; see
 *   qsim_vm_set_ram_file() for its RAM)
 *
 * Makes the next start restore a saved guest instead of booting: QEMU runs with
 * `-incoming defer` and inherits @state_path opened read-only, and once QMP is up the
 * start loads it with migrate-incoming and lets the guest run; only then does the start
 * report success.
 * A bad state file fails the start (QEMU exits). %NULL for both boots normally.
 */
void
qsim_vm_set_restore_from(QsimVm *self, const gchar *disk_path, const gchar *state_path)
{
	g_free(self->restore_disk);
	self->restore_disk = g_strdup(disk_path);
	g_free(self->restore_state);
	self->restore_state = g_strdup(state_path);
}

/**
 * qsim_vm_set_ram_file:
 * @self: a #QsimVm not yet started
 * @ram_path: (nullable): the file that holds the guest's RAM; %NULL for anonymous memory
 * @shared: %TRUE: the guest writes its RAM into the file (a template build, whose
 *   migration then leaves RAM out of the state and records no run state); %FALSE: a
 *   private copy-on-write mapping that never writes the file (a restore)
 *
 * QEMU 7.2 opens the file read-write even for a private mapping, so it must be writable
 * by this process's user.
 */
void
qsim_vm_set_ram_file(QsimVm *self, const gchar *ram_path, gboolean shared)
{
	g_free(self->ram_path);
	self->ram_path = g_strdup(ram_path);
	self->ram_shared = shared;
}

/**
 * qsim_vm_set_accel:
 * @self: a #QsimVm not yet started
 * @use_kvm: run under KVM (`-accel kvm`, `-cpu host` unless CPU_MODEL says otherwise)
 * @why: (nullable): how that was decided, for messages, e.g. "ACCEL=kvm from the VM config"
 *
 * Without this call the VM runs under TCG.
 */
void
qsim_vm_set_accel(QsimVm *self, gboolean use_kvm, const gchar *why)
{
	g_return_if_fail(QSIM_IS_VM(self));
	self->use_kvm = use_kvm;
	g_free(self->accel_why);
	self->accel_why = g_strdup(why != NULL ? why : (use_kvm ? "ACCEL=kvm" : "ACCEL=tcg"));
}

/* Returns: whether this VM runs (or would run) under KVM */
gboolean
qsim_vm_get_use_kvm(QsimVm *self)
{
	g_return_val_if_fail(QSIM_IS_VM(self), FALSE);
	return self->use_kvm;
}

/**
 * qsim_vm_set_console_paused:
 * @self: a #QsimVm
 * @paused: whether the consumer of "console-output" wants no more for now
 *
 * While paused the serial console is not read: QEMU's chardev then waits for room in
 * its stdout pipe instead of qsim buffering what the guest prints.
 */
void
qsim_vm_set_console_paused(QsimVm *self, gboolean paused)
{
	g_return_if_fail(QSIM_IS_VM(self));
	self->console_paused = paused;
	if (self->serial != NULL)
		qsim_serial_reader_set_paused(self->serial, paused);
}

/**
 * qsim_vm_set_kvm_console_timeout:
 * @self: a #QsimVm not yet started
 * @timeout_ms: under KVM, stop a booting VM whose console stays silent this long; 0: never
 */
void
qsim_vm_set_kvm_console_timeout(QsimVm *self, guint timeout_ms)
{
	g_return_if_fail(QSIM_IS_VM(self));
	self->kvm_console_timeout_ms = timeout_ms;
}

/**
 * qsim_vm_set_overlay_template:
 * @self: a #QsimVm not yet started
 * @path: (nullable): an empty qcow2 overlay, backed by the disk this VM boots from
 *   (for a restore, the template disk); %NULL to create the overlay with qemu-img
 *
 * The start then copies @path as its overlay.
 */
void
qsim_vm_set_overlay_template(QsimVm *self, const gchar *path)
{
	g_free(self->overlay_template);
	self->overlay_template = g_strdup(path);
}

/**
 * qsim_vm_get_restored:
 * @self: a #QsimVm
 *
 * Returns: %TRUE when this VM starts (or started) from a saved state
 */
gboolean
qsim_vm_get_restored(QsimVm *self)
{
	return self->restore_state != NULL;
}

/* ---- object ------------------------------------------------------------ */

static void
qsim_vm_dispose(GObject *object)
{
	QsimVm *self = QSIM_VM(object);

	g_cancellable_cancel(self->lifetime);
	if (qsim_vm_proc_alive(self)) {
		g_info("%s: disposed while QEMU runs: killing pid %d", self->config->name,
		       (gint)self->pid);
		g_subprocess_force_exit(self->proc);
	}
	if (self->state != QSIM_VM_STATE_EXITED && self->state != QSIM_VM_STATE_CREATED)
		qsim_vm_release_resources(self);
	qsim_vm_outbound_drop(self);
	g_clear_object(&self->serial);
	g_clear_object(&self->proc);
	G_OBJECT_CLASS(qsim_vm_parent_class)->dispose(object);
}

static void
qsim_vm_finalize(GObject *object)
{
	QsimVm *self = QSIM_VM(object);

	qsim_vm_config_free(self->config);
	g_free(self->run_root);
	g_free(self->qemu_binary);
	g_free(self->qemu_img);
	g_free(self->request_id);
	g_free(self->exit_message);
	g_free(self->run_dir);
	g_strfreev(self->argv);
	qsim_vm_tail_free(self->stderr_tail);
	g_free(self->shutdown_event_reason);
	g_clear_error(&self->start_error);
	g_ptr_array_unref(self->shutdown_tasks);
	g_free(self->ready_last_seen);
	g_free(self->restore_disk);
	g_free(self->restore_state);
	g_free(self->ram_path);
	g_free(self->overlay_template);
	g_free(self->accel_why);
	g_free(self->kvm_failure);
	g_free(self->net_failure);
	g_clear_error(&self->qmp_fail_error);
	g_clear_object(&self->lifetime);
	G_OBJECT_CLASS(qsim_vm_parent_class)->finalize(object);
}

static void
qsim_vm_class_init(QsimVmClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_vm_dispose;
	object_class->finalize = qsim_vm_finalize;
	signals[SIGNAL_STATE_CHANGED] =
	    g_signal_new("state-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
	signals[SIGNAL_CONSOLE_OUTPUT] =
	    g_signal_new("console-output", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BYTES);
	signals[SIGNAL_EXITED] =
	    g_signal_new("exited", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
	                 G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
}

static void
qsim_vm_init(QsimVm *self)
{
	self->lifetime = g_cancellable_new();
	self->shutdown_tasks = g_ptr_array_new_with_free_func(g_object_unref);
	self->stderr_tail = qsim_vm_tail_new(QSIM_VM_STDERR_TAIL);
	self->qemu_binary = g_strdup(QSIM_QEMU_BINARY);
	self->qemu_img = g_strdup(QSIM_QEMU_IMG_BINARY);
	self->accel_why = g_strdup("ACCEL=tcg");
}

/**
 * qsim_vm_new:
 * @config: (transfer full): the VM's configuration, owned by the new object
 * @run_root: RUN_DIR; each start makes its own directory inside it
 *
 * Returns: (transfer full): a #QsimVm in state created
 */
QsimVm *
qsim_vm_new(QsimVmConfig *config, const gchar *run_root)
{
	QsimVm *self = g_object_new(QSIM_TYPE_VM, NULL);

	self->config = config;
	self->run_root = g_strdup(run_root);
	return self;
}
