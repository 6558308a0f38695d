#pragma once

#include <gio/gio.h>

#include "common/qsim-vm-config.h"
#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

/**
 * QsimVmState:
 *
 * created → starting → running ⇄ paused → stopping → exited. Any state after
 * created may go straight to exited when QEMU dies.
 */
typedef enum {
	QSIM_VM_STATE_CREATED,
	QSIM_VM_STATE_STARTING,
	QSIM_VM_STATE_RUNNING,
	QSIM_VM_STATE_PAUSED,
	QSIM_VM_STATE_STOPPING,
	QSIM_VM_STATE_EXITED,
} QsimVmState;

/**
 * QsimVmExitReason:
 *
 * Why QEMU ended; qsim_vm_get_exit_message() has the details.
 */
typedef enum {
	QSIM_VM_EXIT_NONE,         /* still running, or never started */
	QSIM_VM_EXIT_POWEROFF,     /* the guest shut down cleanly (on its own or on ACPI) */
	QSIM_VM_EXIT_QUIT,         /* we asked QEMU to quit over QMP */
	QSIM_VM_EXIT_TERMINATED,   /* we sent SIGTERM */
	QSIM_VM_EXIT_KILLED,       /* we sent SIGKILL */
	QSIM_VM_EXIT_CRASHED,      /* QEMU died on its own; the message has its stderr tail */
	QSIM_VM_EXIT_START_FAILED, /* QEMU never came up (bad argv, kernel, image...) */
} QsimVmExitReason;

/* Default time the guest gets to power off on ACPI before QEMU is told to quit. */
#define QSIM_VM_DEFAULT_SHUTDOWN_GRACE_MS 10000

#define QSIM_TYPE_VM (qsim_vm_get_type())
G_DECLARE_FINAL_TYPE(QsimVm, qsim_vm, QSIM, VM, GObject)

/*
 * QsimVm: one QEMU instance on a throwaway overlay. Everything runs on the thread-default
 * main context of its creator; nothing blocks on QEMU. The run directory (overlay, QMP
 * socket, pidfiles) is removed whenever the VM ends, including on dispose.
 *
 * Signals:
 *   "state-changed"  (guint state):            a #QsimVmState.
 *   "console-output" (GBytes *chunk):          serial console bytes, raw, as they come.
 *   "exited"         (guint reason, const gchar *message): once, after cleanup.
 */

QsimVm *qsim_vm_new(QsimVmConfig *config, const gchar *run_root);
void qsim_vm_set_qemu_binary(QsimVm *self, const gchar *qemu_binary);
void qsim_vm_set_qemu_img_binary(QsimVm *self, const gchar *qemu_img_binary);
void qsim_vm_set_request_id(QsimVm *self, const gchar *request_id);
void qsim_vm_set_ssh_port_hint(QsimVm *self, guint16 port);
void qsim_vm_set_restore_from(QsimVm *self, const gchar *disk_path, const gchar *state_path);
void qsim_vm_set_ram_file(QsimVm *self, const gchar *ram_path, gboolean shared);
void qsim_vm_set_overlay_template(QsimVm *self, const gchar *path);
void qsim_vm_set_accel(QsimVm *self, gboolean use_kvm, const gchar *why);
gboolean qsim_vm_get_use_kvm(QsimVm *self);
void qsim_vm_set_kvm_console_timeout(QsimVm *self, guint timeout_ms);
void qsim_vm_set_console_paused(QsimVm *self, gboolean paused);
gboolean qsim_vm_get_restored(QsimVm *self);

void qsim_vm_start_async(QsimVm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);
gboolean qsim_vm_start_finish(QsimVm *self, GAsyncResult *result, GError **error);

void qsim_vm_wait_ready_async(QsimVm *self, gint64 deadline_us, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_vm_wait_ready_finish(QsimVm *self, GAsyncResult *result, GError **error);

void qsim_vm_pause_async(QsimVm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);
gboolean qsim_vm_pause_finish(QsimVm *self, GAsyncResult *result, GError **error);

void qsim_vm_resume_async(QsimVm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
gboolean qsim_vm_resume_finish(QsimVm *self, GAsyncResult *result, GError **error);

void qsim_vm_shutdown_async(QsimVm *self, guint grace_ms, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_vm_shutdown_finish(QsimVm *self, GAsyncResult *result, GError **error);

void qsim_vm_kill(QsimVm *self);

QsimVmState qsim_vm_get_state(QsimVm *self);
const gchar *qsim_vm_state_to_string(QsimVmState state);
QsimVmExitReason qsim_vm_get_exit_reason(QsimVm *self);
const gchar *qsim_vm_exit_reason_to_string(QsimVmExitReason reason);
const gchar *qsim_vm_get_exit_message(QsimVm *self);
const QsimVmConfig *qsim_vm_get_config(QsimVm *self);
const gchar *qsim_vm_get_run_dir(QsimVm *self);
GPid qsim_vm_get_pid(QsimVm *self);
const gchar *qsim_vm_get_ssh_host(QsimVm *self);
guint16 qsim_vm_get_ssh_port(QsimVm *self);
QsimQmpClient *qsim_vm_get_qmp(QsimVm *self);
gchar *qsim_vm_get_stderr_tail(QsimVm *self);
gchar *qsim_vm_get_console_tail(QsimVm *self);
const gchar *const *qsim_vm_get_argv(QsimVm *self);

G_END_DECLS
