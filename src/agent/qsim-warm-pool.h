#pragma once

#include <gio/gio.h>

#include "agent/qsim-warm-vm.h"
#include "common/qsim-config.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/* How often the pool looks at the VM configs and templates (refill, drain). */
#define QSIM_WARM_POOL_TICK_MS 2000
/* Back-off after a failed warm start of one VM: doubles from this, up to the max. */
#define QSIM_WARM_POOL_BACKOFF_MIN_MS 2000
#define QSIM_WARM_POOL_BACKOFF_MAX_MS 120000

#define QSIM_TYPE_WARM_POOL (qsim_warm_pool_get_type())
G_DECLARE_FINAL_TYPE(QsimWarmPool, qsim_warm_pool, QSIM, WARM_POOL, GObject)

/*
 * QsimWarmPool: the paused, restored VMs of one process (docs/fast-start.md, "Warm
 * pool"). For every VM whose .conf sets WARM_POOL_SIZE and whose template is ready it
 * keeps that many QsimWarmVm, at most WARM_POOL_SIZE (QsimConfig) over all VMs, and
 * never more than the free slots of MAX_CONCURRENT_VMS: warm VMs plus the slots the
 * owner reports in use (running jobs, template builds) stay within the cap. Refills one
 * VM at a time per image in the background, with a back-off after failures; drains
 * warm VMs whose template went stale or was rebuilt; replaces warm VMs that die.
 */

/* Returns: the VM slots of this process in use outside the pool (jobs, builds) */
typedef guint (*QsimWarmPoolSlotsFunc)(gpointer user_data);

QsimWarmPool *qsim_warm_pool_new(QsimConfig *config, QsimWarmPoolSlotsFunc slots_in_use,
                                 gpointer user_data);

/**
 * qsim_warm_pool_set_store:
 * @owner: the slots' owner id (this process's builder id)
 *
 * Every warm VM then claims a slot in the store's slot table before its QEMU
 * starts (against MAX_CONCURRENT_VMS and MAX_VMS_PER_HOST across processes)
 * and frees it once that QEMU is gone; "slot-freed" is emitted then.
 */
void qsim_warm_pool_set_store(QsimWarmPool *self, QsimStore *store, const gchar *owner);

/* Starts refilling (a tick every QSIM_WARM_POOL_TICK_MS, and on demand). */
void qsim_warm_pool_start(QsimWarmPool *self);

/**
 * qsim_warm_pool_take:
 * @config: the VM's config as the job loaded it
 *
 * Returns: (transfer full) (nullable): a parked warm VM of @config's VM whose template
 *   is still current, removed from the pool (a refill is scheduled); %NULL if none
 */
QsimWarmVm *qsim_warm_pool_take(QsimWarmPool *self, const QsimVmConfig *config);

/**
 * qsim_warm_pool_take_for:
 * @uuid: (nullable): the request that takes the VM: the VM's slot becomes its slot
 * @agent_id: (nullable): the agent running @uuid
 *
 * qsim_warm_pool_take() for a request, handing the VM's slot over with it.
 */
QsimWarmVm *qsim_warm_pool_take_for(QsimWarmPool *self, const QsimVmConfig *config,
                                    const gchar *uuid, const gchar *agent_id);

/**
 * qsim_warm_pool_yield:
 * @keep_vm_name: (nullable): the VM a waiting request wants: its warm VMs go last
 *
 * Destroys one warm VM (a starting one first) because a request is waiting for
 * a slot; the slot is free once its QEMU is gone ("slot-freed"). Nothing more
 * while an earlier one is still on its way out.
 *
 * Until qsim_warm_pool_unyield() the pool starts no VM: the freed slot is for
 * the waiting request.
 *
 * Returns: FALSE when the pool holds no VM and none is dying
 */
gboolean qsim_warm_pool_yield(QsimWarmPool *self, const gchar *keep_vm_name);

/* The waiting request got its slot, or none waits any more: refill again */
void qsim_warm_pool_unyield(QsimWarmPool *self);

/* Destroys warm VMs (starting ones first) until they fit in the free slots; called by
 * a job about to start its own QEMU. Returns: how many were evicted */
guint qsim_warm_pool_trim(QsimWarmPool *self);

/* Schedules a refill pass on the main loop (a slot was freed). */
void qsim_warm_pool_refill_soon(QsimWarmPool *self);

/* Stops refilling and destroys every warm VM; @callback runs once their QEMUs are gone. */
void qsim_warm_pool_stop_async(QsimWarmPool *self, GAsyncReadyCallback callback,
                               gpointer user_data);
gboolean qsim_warm_pool_stop_finish(QsimWarmPool *self, GAsyncResult *result, GError **error);

/* Stops at once, without waiting: warm VMs are killed, the slots callback is dropped
 * (the owner is going away). */
void qsim_warm_pool_clear(QsimWarmPool *self);

/**
 * qsim_warm_pool_get_counts:
 * @vm_name: (nullable): one VM, or %NULL for all
 * @n_parked: (out) (optional): ready to hand out
 * @n_starting: (out) (optional): being restored or warmed up
 *
 * Returns: parked + starting (the slots the pool holds)
 */
guint qsim_warm_pool_get_counts(QsimWarmPool *self, const gchar *vm_name, guint *n_parked,
                                guint *n_starting);

/* Returns: (transfer full): "tiny 2/2, other 0/1" (parked/wanted), or "" when off */
gchar *qsim_warm_pool_describe(QsimWarmPool *self);

G_END_DECLS
