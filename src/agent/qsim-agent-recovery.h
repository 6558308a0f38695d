#pragma once

#include <glib.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

/* The error stored on a request whose agent died after its commands started. */
#define QSIM_AGENT_RECOVERY_REASON QSIM_END_TEXT_AGENT_LOST

/*
 * Crash recovery, shared by every agent process (functions, no type). A
 * request is recovered when its lease expired (any agent, any host), or at
 * once when its agent id names this host and a process that is gone (a
 * restart finds its own stale claims without waiting for the lease).
 * Recovering one request: kill its QEMU by pidfile if it still is that QEMU,
 * remove RUN_DIR/<uuid>, then in the store either back to pending (the run
 * failed before the commands started, first attempt) or failed "agent lost".
 */

/**
 * qsim_agent_recovery_run:
 * @store: the store
 * @run_dir: RUN_DIR of this host
 * @skip_uuids: (element-type utf8 utf8) (nullable): requests this process
 *   is running right now; never touched
 * @n_recovered: (out) (optional): how many requests were recovered
 *
 * One pass over expired leases and stale local claims.
 *
 * Returns: %TRUE unless the store failed
 */
gboolean qsim_agent_recovery_run(QsimStore *store, const gchar *run_dir, GHashTable *skip_uuids,
                                 guint *n_recovered, GError **error);

/**
 * qsim_agent_recovery_sweep_run_dir:
 * @skip_uuids: (nullable): as for qsim_agent_recovery_run()
 *
 * Removes request run directories under @run_dir (killing their QEMU) whose
 * request is gone or holds no lease any more: leftovers of a process that
 * died between its final status and its clean-up. Also kills and removes the
 * VM dirs under RUN_DIR/warm (warm pool) and RUN_DIR/template-builds whose
 * QEMU is not the child of another live qsim process.
 *
 * Returns: the number of directories removed
 */
guint qsim_agent_recovery_sweep_run_dir(QsimStore *store, const gchar *run_dir,
                                        GHashTable *skip_uuids);

/* Kills and removes RUN_DIR/template-builds' VMs no live qsim process owns; returns
 * how many */
guint qsim_agent_recovery_sweep_build_dirs(const gchar *run_dir);

/**
 * qsim_agent_recovery_clean_request:
 *
 * Kills the QEMU processes of @uuid's run directories under @run_dir (only
 * if they still are those QEMUs) and removes `<run_dir>/<uuid>`.
 *
 * Returns: %TRUE when nothing of @uuid is left
 */
gboolean qsim_agent_recovery_clean_request(const gchar *run_dir, const gchar *uuid, GError **error);

/**
 * qsim_agent_recovery_kill_vm_dir:
 * @path: a VM run dir inside a request's run root, or a link to one (a warm VM's)
 *
 * Kills its QEMU (only if it still is that QEMU) and removes the dir (for a link: the
 * dir it names, then the link).
 *
 * Returns: %TRUE when nothing of it is left
 */
gboolean qsim_agent_recovery_kill_vm_dir(const gchar *path, GError **error);

/* Returns: whether @agent_id names a process of this host that no longer runs */
gboolean qsim_agent_recovery_agent_is_dead_local(const gchar *agent_id);

G_END_DECLS
