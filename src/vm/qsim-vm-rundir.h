#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* File names inside a VM's run directory. */
#define QSIM_VM_RUNDIR_OVERLAY "overlay.qcow2"
#define QSIM_VM_RUNDIR_QMP "qmp.sock"
#define QSIM_VM_RUNDIR_QEMU_PID "qemu.pid"
#define QSIM_VM_RUNDIR_STATE "qsim.json"

gchar *qsim_vm_rundir_create(const gchar *run_root, const gchar *vm_name, GError **error);
gboolean qsim_vm_rundir_remove(const gchar *run_dir, GError **error);
gboolean qsim_vm_rundir_write_state(const gchar *run_dir, GPid pid, const gchar *request_id,
                                    GError **error);
guint64 qsim_vm_proc_start_time(GPid pid, GError **error);
gboolean qsim_vm_kill_orphan(const gchar *run_dir, GError **error);
GPtrArray *qsim_vm_rundir_list(const gchar *run_root, GError **error);

G_END_DECLS
