#pragma once

#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * Hosts, their VM catalogues and the VM slot table: what the agents of each
 * host publish so that every other process (the API, agents elsewhere) reads
 * it from the store instead of from a disk or a process's memory.
 */

/**
 * qsim_store_publish_host:
 * @host: the host row; heartbeat_at is set to now, @host->agent_ids get a
 *   heartbeat each
 * @vms: (nullable) (element-type QsimHostVm): the host's whole catalogue,
 *   replacing the one stored; NULL = heartbeat only
 *
 * One transaction: the heartbeat and the catalogue never disagree.
 */
gboolean qsim_store_publish_host(QsimStore *self, const QsimHostRecord *host, GPtrArray *vms,
                                 GError **error);

/* Returns: (transfer container) (element-type QsimHostRecord): every host, by name */
GPtrArray *qsim_store_list_hosts(QsimStore *self, GError **error);

/**
 * qsim_store_list_host_vms:
 * @vm_name: (nullable): only this VM's rows
 * @host: (nullable): only this host's rows
 *
 * Returns: (transfer container) (element-type QsimHostVm): by VM name, then host
 */
GPtrArray *qsim_store_list_host_vms(QsimStore *self, const gchar *vm_name, const gchar *host,
                                    GError **error);

/**
 * qsim_store_claim_slot:
 * @owner: the agent id (or builder id) of the process that will run the QEMU;
 *   its host part names the host the slot counts on
 * @kind: QSIM_VM_SLOT_WARM or QSIM_VM_SLOT_BUILD (requests get theirs from
 *   qsim_store_claim_next_capped())
 * @ref: the VM name
 * @out_id: (out): the slot, or 0 when a cap is reached
 *
 * In one IMMEDIATE transaction, like a request's claim: counts every slot
 * against @max_total (0 = no cap) and the host's against @max_host (0 = no
 * cap), and takes one if both allow. Release it once the QEMU is gone.
 *
 * Returns: FALSE with @error only on failure
 */
gboolean qsim_store_claim_slot(QsimStore *self, const gchar *owner, QsimVmSlotKind kind,
                               const gchar *ref, guint max_total, guint max_host, gint64 *out_id,
                               GError **error);

/**
 * qsim_store_release_slot:
 * @kind: only if the slot is still of this kind (a warm slot a request took
 *   over is the request's now); -1 = any
 * @out_released: (out) (optional): whether a slot was freed
 */
gboolean qsim_store_release_slot(QsimStore *self, gint64 id, gint kind, gboolean *out_released,
                                 GError **error);

/**
 * qsim_store_adopt_slot:
 * @warm_id: the slot of the warm VM request @uuid's job takes over
 * @out_adopted: (out): FALSE when @warm_id is no warm slot (any more); the
 *   request then keeps its own slot
 *
 * A warm VM handed to a request is one QEMU: in one transaction the request's
 * own slot is freed and the warm slot becomes the request's.
 */
gboolean qsim_store_adopt_slot(QsimStore *self, gint64 warm_id, const gchar *uuid,
                               const gchar *agent_id, gboolean *out_adopted, GError **error);

/**
 * qsim_store_release_process_slots:
 * @agent_id: any agent or builder id of the dead process ("host:pid:n")
 * @out_n: (out) (optional): how many slots were freed
 *
 * Frees the warm and build slots of a process that is gone (its QEMUs died
 * with it); its requests' slots go with their leases through recovery.
 */
gboolean qsim_store_release_process_slots(QsimStore *self, const gchar *agent_id, guint *out_n,
                                          GError **error);

/* Frees the warm and build slots of every host whose heartbeat is stale */
gboolean qsim_store_release_stale_host_slots(QsimStore *self, guint *out_n, GError **error);

/* Returns: (transfer container) (element-type QsimVmSlot): the slots, NULL = all hosts */
GPtrArray *qsim_store_list_slots(QsimStore *self, const gchar *host, GError **error);

G_END_DECLS
