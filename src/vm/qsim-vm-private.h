#pragma once

/*
 * QsimVm's insides, shared by the files that implement it (libsoup's *-private.h
 * convention); nothing outside src/vm/qsim-vm*.c includes this.
 *
 *   qsim-vm.c        the object, its state, getters and setters, QMP events
 *   qsim-vm-spawn.c  start: run dir, overlay, spawn, QMP handshake, restore
 *   qsim-vm-ready.c  readiness: ready marker, then an SSH banner on the forwarded port
 *   qsim-vm-pause.c  pause and resume
 *   qsim-vm-stop.c   the stop ladder (ACPI, quit, SIGTERM, SIGKILL) and every exit
 */

#include "qsim-net-outbound.h"
#include "qsim-proc-watch.h"
#include "qsim-serial-reader.h"
#include "qsim-vm-tail.h"
#include "qsim-vm.h"

G_BEGIN_DECLS

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
	QsimProcWatch *watch; /* QEMU and its stderr, until both are done */
	gboolean proc_exited;
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

/* qsim-vm.c */
void qsim_vm_set_state(QsimVm *self, QsimVmState state);
gboolean qsim_vm_proc_alive(QsimVm *self);
gboolean qsim_vm_qmp_usable(QsimVm *self);
void qsim_vm_qmp_attach(QsimVm *self, QsimQmpClient *client);
void qsim_vm_qmp_drop(QsimVm *self);
void qsim_vm_emit_console_output(QsimVm *self, GBytes *chunk);
void qsim_vm_emit_exited(QsimVm *self, QsimVmExitReason reason, const gchar *message);

/* qsim-vm-spawn.c */
gboolean qsim_vm_spawn(QsimVm *self, GError **error);
void qsim_vm_outbound_drop(QsimVm *self);
void qsim_vm_start_abort(QsimVm *self, GError *error);

/* qsim-vm-ready.c */
void qsim_vm_ready_marker_cb(QsimSerialReader *serial, gpointer user_data);
void qsim_vm_ready_complete(QsimVm *self, GError *error);

/* qsim-vm-stop.c */
void qsim_vm_handle_exit(QsimVm *self);
void qsim_vm_finish_exit(QsimVm *self, QsimVmExitReason reason, gchar *message);
void qsim_vm_release_resources(QsimVm *self);

G_END_DECLS
