#pragma once

#include <gio/gio.h>

#include "agent/qsim-log-batcher.h"
#include "agent/qsim-template-service.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-config.h"
#include "store/qsim-store.h"
#include "vm/qsim-vm.h"

G_BEGIN_DECLS

/**
 * QsimJobPhase:
 *
 * Where one request's run is: starting (QEMU and QMP), booting (until SSH
 * answers), running (the commands), stopping (the VM goes down, logs are
 * flushed, the final status written), finished.
 */
typedef enum {
	QSIM_JOB_PHASE_CREATED,
	QSIM_JOB_PHASE_STARTING,
	QSIM_JOB_PHASE_BOOTING,
	QSIM_JOB_PHASE_RUNNING,
	QSIM_JOB_PHASE_STOPPING,
	QSIM_JOB_PHASE_FINISHED,
} QsimJobPhase;

/* How often a job renews its lease, which is also how it sees a cancel or a
 * hold made by another process. */
#define QSIM_JOB_RENEW_INTERVAL_MS 1000
/* After the SSH session broke, how long to wait for QEMU's own exit reason. */
#define QSIM_JOB_EXIT_REASON_WAIT_MS 2000

#define QSIM_TYPE_JOB (qsim_job_get_type())
G_DECLARE_FINAL_TYPE(QsimJob, qsim_job, QSIM, JOB, GObject)

/*
 * QsimJob: one claimed request run end to end on the main context. A
 * QsimJobStarter (qsim-job-starter.h) starts the VM under RUN_DIR/<uuid>/ (warm,
 * snapshot or cold, with its fallback) until its guest answers over SSH; the job
 * then marks the request `running`, runs the commands over SSH with their output
 * batched into the store, and owns the deadlines (request timeout from VM start,
 * paused while on hold), cancel and hold, lease renewal, then VM shutdown, a final
 * flush, the final status and the run directory removed. docs/agents.md has the
 * states as a diagram.
 */

/**
 * qsim_job_new:
 * @config: (transfer none): referenced
 * @store: (transfer none): referenced; used on this thread only
 * @agent_id: the claiming agent
 * @request: (transfer none): the claimed row (acknowledged, lease held); copied
 *
 * Returns: (transfer full): a job, not yet running
 */
QsimJob *qsim_job_new(QsimConfig *config, QsimStore *store, const gchar *agent_id,
                      const QsimRequest *request);

/**
 * qsim_job_set_warm_pool:
 * @pool: (transfer none) (nullable): referenced
 *
 * Lets the job start from a parked VM of @pool instead of starting QEMU. Before
 * qsim_job_run_async() only.
 */
void qsim_job_set_warm_pool(QsimJob *self, QsimWarmPool *pool);

/**
 * qsim_job_set_template_service:
 * @service: (transfer none): referenced; the pool's, so background builds are
 *   counted and recorded in one place. Required: set it before qsim_job_run_async().
 */
void qsim_job_set_template_service(QsimJob *self, QsimTemplateService *service);

void qsim_job_set_store_worker(QsimJob *self, QsimStoreWorker *worker);

/**
 * qsim_job_run_async:
 *
 * Runs the request to a final status. @callback runs once the VM is gone,
 * the logs are stored and the final status is written (or the lease was
 * lost to a recovering agent). The job keeps itself alive meanwhile.
 */
void qsim_job_run_async(QsimJob *self, GAsyncReadyCallback callback, gpointer user_data);

/**
 * qsim_job_run_finish:
 * @out_status: (out) (optional): the status stored in the end
 *
 * Returns: %TRUE when the final status was written; %FALSE with @error when
 * the store refused it (e.g. the lease was lost)
 */
gboolean qsim_job_run_finish(QsimJob *self, GAsyncResult *result, QsimStatus *out_status,
                             GError **error);

/**
 * qsim_job_abort:
 * @reason: stored as the error, e.g. "agent shut down"
 *
 * Stops the VM and fails the request with @reason (a user's cancel that came
 * first still wins). Does nothing once the job is stopping.
 */
void qsim_job_abort(QsimJob *self, const gchar *reason);

/**
 * qsim_job_handle_status:
 * @status: the request's status as the store has it now
 *
 * Acts on a change made by someone else: cancelled stops the VM, hold pauses
 * it (QMP stop) and stops the deadline clock, running resumes it. Called for
 * the store's in-process "request-changed" signal and for every lease renewal.
 */
void qsim_job_handle_status(QsimJob *self, QsimStatus status);

/* Returns: (transfer none): the request's UUID */
const gchar *qsim_job_get_uuid(QsimJob *self);

/* Returns: (transfer none): the agent that runs it */
const gchar *qsim_job_get_agent_id(QsimJob *self);

QsimJobPhase qsim_job_get_phase(QsimJob *self);

const gchar *qsim_job_phase_to_string(QsimJobPhase phase);

/* Returns: whether the VM is paused for a hold (confirmed by QEMU) */
gboolean qsim_job_get_paused(QsimJob *self);

/* Returns: (transfer none) (nullable): the job's VM, for tests and status (QMP via
 * qsim_vm_get_qmp()) */
QsimVm *qsim_job_get_vm(QsimJob *self);

/* Returns: (transfer none): the job's log writer */
QsimLogBatcher *qsim_job_get_batcher(QsimJob *self);

G_END_DECLS
