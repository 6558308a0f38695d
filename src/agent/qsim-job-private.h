#pragma once

/* QsimJob's fields, shared by qsim-job.c (the run) and qsim-job-control.c (what the
 * store says while it runs: hold, cancel, the lease); no other file includes this */

#include "agent/qsim-job-artifacts.h"
#include "agent/qsim-job-starter.h"
#include "agent/qsim-job.h"
#include "agent/qsim-lease-watchdog.h"
#include "guest/qsim-guest.h"

G_BEGIN_DECLS

struct _QsimJob {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store;
	gchar *agent_id;
	QsimRequest *request;
	gchar *run_root;

	QsimJobPhase phase;
	GTask *task;
	GCancellable *cancellable; /* start, readiness, connect, exec */
	QsimLogBatcher *batcher;
	guint64 output_limit; /* bytes, 0: none */
	QsimOutputLimitAction output_action;
	/* the start (warm, snapshot or cold, with its fallback) until the guest answers */
	QsimJobStarter *starter;
	/* then the VM and its guest session, the job's own */
	QsimVm *vm;
	QsimGuest *guest;
	gulong store_handler;

	/* the request timeout: runs from VM start, stands still while paused */
	guint deadline_id;
	gint64 deadline_us;
	gint64 deadline_left_us;

	guint renew_id;
	/* where renewals and log batches go off the main loop (NULL: inline), and
	 * whether a renewal is there now */
	QsimStoreWorker *worker;
	gboolean renew_busy;
	guint exit_wait_id;
	gchar *exit_wait_reason;

	/* hold: what the database wants, what QEMU confirmed, an op in flight */
	gboolean want_paused;
	gboolean paused;
	gboolean pause_busy;

	/* the outcome, decided once */
	gboolean finishing;
	QsimStatus final_status;
	gboolean has_exit_code;
	gint exit_code;
	gchar *reason;
	gboolean lease_lost;
	/* the lease as last written by this job (store clock, ms): while renewals fail
	 * (the database unreachable, a host cut off) this is how long it is still ours */
	gint64 lease_until;
	QsimLeaseWatchdog *watchdog;
	guint final_retries;
	guint finish_retries;

	/* what the starter needs: where a parked VM may come from (optional), and the
	 * template service (required) for fast start's choice, background builds and the
	 * database record */
	QsimWarmPool *warm_pool;
	QsimTemplateService *template_service;

	/* output cap: the store has not recorded output_truncated yet (retried at the end) */
	gboolean truncation_unrecorded;
	guint output_fail_id;

	/* metrics: the first stdout byte was seen */
	gboolean first_byte_seen;

	/* outputs: where they go, and how the commands ended while they are collected */
	QsimArtifactStore *artifacts;
	QsimStatus done_status;
	gboolean done_has_exit_code;
	gint done_exit_code;
	gchar *done_reason;
};

QsimVm *qsim_job_current_vm(QsimJob *self);
void qsim_job_system(QsimJob *self, const gchar *format, ...) G_GNUC_PRINTF(2, 3);
void qsim_job_deadline_arm(QsimJob *self, gint64 left_us);
void qsim_job_finalize_run(QsimJob *self, QsimStatus status, gboolean has_exit_code, gint exit_code,
                           const gchar *reason);

/* qsim-job-control.c */
void qsim_job_reconcile_pause(QsimJob *self);
void qsim_job_fence(QsimJob *self);
gboolean qsim_job_renew_cb(gpointer user_data);
void qsim_job_request_changed_cb(QsimStore *store, const gchar *uuid, gint status,
                                 gpointer user_data);

G_END_DECLS
