#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include "qsim-serial-reader.h"
#include "qsim-vm-private.h"
#include "qsim-vm-tail.h"

G_DEFINE_TYPE(QsimVm, qsim_vm, G_TYPE_OBJECT)

enum { SIGNAL_STATE_CHANGED, SIGNAL_CONSOLE_OUTPUT, SIGNAL_EXITED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

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

void
qsim_vm_set_state(QsimVm *self, QsimVmState state)
{
	if (self->state == state)
		return;
	g_debug("%s: %s -> %s", self->config->name, qsim_vm_state_to_string(self->state),
	        qsim_vm_state_to_string(state));
	self->state = state;
	g_signal_emit(self, signals[SIGNAL_STATE_CHANGED], 0, (guint)state);
}

gboolean
qsim_vm_proc_alive(QsimVm *self)
{
	return self->proc != NULL && !self->proc_exited;
}

gboolean
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

void
qsim_vm_qmp_drop(QsimVm *self)
{
	if (self->qmp == NULL)
		return;
	g_signal_handlers_disconnect_by_data(self->qmp, self);
	qsim_qmp_client_close(self->qmp);
	g_clear_object(&self->qmp);
}

/* Takes @client as the VM's one QMP connection. */
void
qsim_vm_qmp_attach(QsimVm *self, QsimQmpClient *client)
{
	self->qmp = client;
	g_signal_connect(self->qmp, "event", G_CALLBACK(qsim_vm_qmp_event_cb), self);
	g_signal_connect(self->qmp, "closed", G_CALLBACK(qsim_vm_qmp_closed_cb), self);
}

void
qsim_vm_emit_console_output(QsimVm *self, GBytes *chunk)
{
	g_signal_emit(self, signals[SIGNAL_CONSOLE_OUTPUT], 0, chunk);
}

void
qsim_vm_emit_exited(QsimVm *self, QsimVmExitReason reason, const gchar *message)
{
	g_signal_emit(self, signals[SIGNAL_EXITED], 0, (guint)reason, message);
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

	g_clear_pointer(&self->watch, qsim_proc_watch_free);
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
