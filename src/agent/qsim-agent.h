#pragma once

#include <glib-object.h>

#include "agent/qsim-job.h"
#include "common/qsim-config.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_AGENT (qsim_agent_get_type())
G_DECLARE_FINAL_TYPE(QsimAgent, qsim_agent, QSIM, AGENT, GObject)

/*
 * QsimAgent: one worker slot of a QsimAgentPool. It claims one request at a
 * time and runs it as a QsimJob on the main loop.
 *
 * Signal "job-finished" (const gchar *uuid, gint status): the job ended; the
 * status is the one stored, or -1 when none could be written (lease lost).
 */

/**
 * qsim_agent_new:
 * @agent_id: unique across every process sharing the database, see
 *   qsim_agent_id_make()
 *
 * Returns: (transfer full): an idle agent
 */
QsimAgent *qsim_agent_new(QsimConfig *config, QsimStore *store, const gchar *agent_id);

/* Returns: (transfer none): the agent id */
const gchar *qsim_agent_get_id(QsimAgent *self);

/* Returns: (transfer none) (nullable): the running job, %NULL when idle */
QsimJob *qsim_agent_get_job(QsimAgent *self);

gboolean qsim_agent_is_idle(QsimAgent *self);

/**
 * qsim_agent_try_claim:
 * @max_active_vms: the database-wide VM cap (MAX_CONCURRENT_VMS)
 * @max_host_vms: the cap on this host (MAX_VMS_PER_HOST), 0 = none
 *
 * Claims the oldest pending request, if there is one and a VM slot is free
 * (the slot table counts every QEMU: requests', warm VMs', builds'), and
 * starts running it.
 *
 * Returns: %TRUE when a request was claimed; %FALSE when there was nothing
 * to claim, the cap was reached, the agent is busy, or with @error on a
 * store failure
 */
gboolean qsim_agent_try_claim(QsimAgent *self, guint max_active_vms, guint max_host_vms,
                              GError **error);

/* Fails the running job with @reason (see qsim_job_abort()); no-op when idle. */
void qsim_agent_abort(QsimAgent *self, const gchar *reason);

/* @pool: (nullable): the warm pool its jobs may take a parked VM from; referenced */
void qsim_agent_set_warm_pool(QsimAgent *self, QsimWarmPool *pool);

/* The template service the agent's jobs use (the pool's); referenced */
void qsim_agent_set_template_service(QsimAgent *self, QsimTemplateService *service);

/* where its jobs' log batches and lease renewals run (see QsimStoreWorker) */
void qsim_agent_set_store_worker(QsimAgent *self, QsimStoreWorker *worker);

G_END_DECLS
