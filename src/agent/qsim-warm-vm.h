#pragma once

#include <gio/gio.h>

#include "guest/qsim-guest.h"
#include "vm/qsim-template.h"
#include "vm/qsim-vm.h"

G_BEGIN_DECLS

/**
 * QsimWarmVmState:
 *
 * starting: restoring, connecting SSH, warming up; parked: paused (QMP stop) with its
 * SSH session open, ready to hand over; gone: handed over, failed, dead or destroyed.
 */
typedef enum {
	QSIM_WARM_VM_STARTING,
	QSIM_WARM_VM_PARKED,
	QSIM_WARM_VM_GONE,
} QsimWarmVmState;

#define QSIM_TYPE_WARM_VM (qsim_warm_vm_get_type())
G_DECLARE_FINAL_TYPE(QsimWarmVm, qsim_warm_vm, QSIM, WARM_VM, GObject)

/*
 * QsimWarmVm: one VM of the warm pool. It is restored from a ready template on its own
 * overlay, connected over SSH, runs one warm-up command (the TCG code cache of a fresh
 * restore is cold: the first exec costs about 0.3 s) and is then paused. A job takes
 * its QsimVm, QsimGuest and template with qsim_warm_vm_hand_over() and resumes it.
 *
 * Signals:
 *   "died" (): QEMU exited while parked; the pool drops it.
 */

/**
 * qsim_warm_vm_new:
 * @config: (transfer full): the VM's config, as the template was checked against
 * @tpl: (transfer none): a ready template of that VM; referenced
 * @run_root: where the VM makes its run directory (RUN_DIR/warm)
 */
QsimWarmVm *qsim_warm_vm_new(QsimVmConfig *config, QsimTemplate *tpl, const gchar *run_root,
                             const gchar *qemu_binary, const gchar *qemu_img_binary);

/* Restores, connects, warms up and pauses; @callback runs once parked or failed. */
void qsim_warm_vm_start_async(QsimWarmVm *self, GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_warm_vm_start_finish(QsimWarmVm *self, GAsyncResult *result, GError **error);

/**
 * qsim_warm_vm_is_current:
 * @config: the VM's config as it is now
 *
 * Returns: whether the template it was restored from is still ready and still the
 *   same files (not rebuilt since); a warm VM of an older template is never handed out
 */
gboolean qsim_warm_vm_is_current(QsimWarmVm *self, const QsimVmConfig *config);

/**
 * qsim_warm_vm_hand_over:
 * @vm: (out) (transfer full): the paused VM
 * @guest: (out) (transfer full): its connected SSH session
 * @tpl: (out) (transfer full): the template it was restored from
 *
 * Gives a parked VM away; the warm VM is gone afterwards.
 *
 * Returns: %FALSE when it is not parked
 */
gboolean qsim_warm_vm_hand_over(QsimWarmVm *self, QsimVm **vm, QsimGuest **guest,
                                QsimTemplate **tpl);

/* Stops whatever runs and shuts QEMU down; @callback runs once QEMU is gone. */
void qsim_warm_vm_destroy_async(QsimWarmVm *self, GAsyncReadyCallback callback, gpointer user_data);
void qsim_warm_vm_destroy_finish(QsimWarmVm *self, GAsyncResult *result);

QsimWarmVmState qsim_warm_vm_get_state(QsimWarmVm *self);
const gchar *qsim_warm_vm_get_vm_name(QsimWarmVm *self);
/* Returns: (nullable): QEMU's pid, 0 before start and once handed over */
GPid qsim_warm_vm_get_pid(QsimWarmVm *self);

G_END_DECLS
