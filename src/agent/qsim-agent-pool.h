#pragma once

#include <gio/gio.h>

#include "agent/qsim-agent.h"
#include "agent/qsim-job.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-config.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/* How often any agent process looks for expired leases (at most; less with short leases). */
#define QSIM_AGENT_POOL_RECOVERY_INTERVAL_MS 5000
/* The error of a request still running when the shutdown grace ran out. */
#define QSIM_AGENT_POOL_SHUTDOWN_REASON QSIM_END_TEXT_SHUTDOWN
/* How soon an agent process notices another process's commit (a submit in `qsimd api`):
 * one PRAGMA data_version per tick, microseconds */
#define QSIM_AGENT_POOL_WATCH_INTERVAL_MS 50

#define QSIM_TYPE_AGENT_POOL (qsim_agent_pool_get_type())
G_DECLARE_FINAL_TYPE(QsimAgentPool, qsim_agent_pool, QSIM, AGENT_POOL, GObject)

/*
 * QsimAgentPool: the AGENT_COUNT agents of one process, on its main loop.
 * An idle agent claims as soon as the store (this process's connection)
 * announces a pending request, when a job ends, and otherwise every
 * AGENT_POLL_INTERVAL seconds (changes made by other processes). The
 * MAX_CONCURRENT_VMS cap is enforced by the store's claim transaction over
 * the whole database. Recovery runs at start and periodically.
 *
 * Signals:
 *   "job-started"  (QsimJob *job)
 *   "job-finished" (const gchar *uuid, gint status): status -1 when none was
 *       written (lease lost)
 */

/**
 * qsim_agent_pool_new:
 * @config: (transfer none): referenced
 * @store: (transfer none): referenced; in `qsimd all` the API's store, so
 *   a submit wakes an agent with no poll delay
 *
 * Returns: (transfer full): a pool, not started
 */
QsimAgentPool *qsim_agent_pool_new(QsimConfig *config, QsimStore *store);

void qsim_agent_pool_set_store_worker(QsimAgentPool *self, QsimStoreWorker *worker);

/**
 * qsim_agent_pool_start:
 *
 * Recovers this host's stale claims and expired leases at once, removes
 * leftover run directories, then starts claiming.
 *
 * Returns: %FALSE with @error when the store cannot be read
 */
gboolean qsim_agent_pool_start(QsimAgentPool *self, GError **error);

/**
 * qsim_agent_pool_publish_now:
 *
 * Publishes this host (heartbeat, agents, VM catalogue, warm counts, template
 * states) to the store at once; the started pool repeats it on a timer. The
 * daemon calls it before its API answers, so a submit finds the catalogue.
 *
 * Returns: FALSE (with a warning logged) when the store refused it
 */
gboolean qsim_agent_pool_publish_now(QsimAgentPool *self);

/* The template rows of this host brought in line with its files at once (what
 * GET /vms asks of the agents of `qsimd all`); a write only when one changed */
gboolean qsim_agent_pool_refresh_templates(QsimAgentPool *self);

/**
 * qsim_agent_pool_stop_async:
 * @grace_ms: how long running jobs may still finish; then they are stopped
 *   and failed with "agent shut down"
 *
 * Stops claiming at once. @callback runs when no job runs any more (every VM
 * is gone and every final status written).
 */
void qsim_agent_pool_stop_async(QsimAgentPool *self, guint grace_ms, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);

gboolean qsim_agent_pool_stop_finish(QsimAgentPool *self, GAsyncResult *result, GError **error);

/* Ends the shutdown grace now: running jobs are stopped ("agent shut down"). */
void qsim_agent_pool_abort_jobs(QsimAgentPool *self);

/* Claims now for every idle agent (normally driven by signals and the poll). */
void qsim_agent_pool_claim_now(QsimAgentPool *self);

/* Runs one recovery pass now. Returns: the number of requests recovered */
guint qsim_agent_pool_recover_now(QsimAgentPool *self);

/* Returns: (transfer none): the process's fast-start templates (choice, builds, record) */
QsimTemplateService *qsim_agent_pool_get_template_service(QsimAgentPool *self);

/* Returns: the number of agents running a job */
guint qsim_agent_pool_get_n_busy(QsimAgentPool *self);

guint qsim_agent_pool_get_n_agents(QsimAgentPool *self);

/* Returns: (transfer none): the pool's warm VMs (counts for status and /stats) */
QsimWarmPool *qsim_agent_pool_get_warm_pool(QsimAgentPool *self);

/* Returns: (transfer none) (nullable): the job running @uuid in this process */
QsimJob *qsim_agent_pool_lookup_job(QsimAgentPool *self, const gchar *uuid);

G_END_DECLS
