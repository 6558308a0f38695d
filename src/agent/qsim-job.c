#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "agent/qsim-agent-recovery.h"
#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-job.h"
#include "agent/qsim-template-service.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-config.h"
#include "guest/qsim-guest.h"
#include "qmp/qsim-qmp-client.h"
#include "vm/qsim-template.h"
#include "vm/qsim-vm-rundir.h"

/* the final flush and status write may meet a locked database: retry this often */
#define QSIM_JOB_FINAL_RETRY_MS 200
#define QSIM_JOB_FINAL_MAX_RETRIES 50
/* the final status itself is retried until it is recorded, backing off to this */
#define QSIM_JOB_FINISH_RETRY_MAX_MS 5000

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
	QsimVm *vm;
	QsimGuest *guest;
	gulong store_handler;
	guint boot_timeout_s;
	gint64 boot_deadline_us;

	/* the request timeout: runs from VM start, stands still while paused */
	guint deadline_id;
	gint64 deadline_us;
	gint64 deadline_left_us;

	guint renew_id;
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
	guint final_retries;
	guint finish_retries;

	/* fast start: the template this start restores, until commands run (fallback) */
	QsimTemplate *fast_template;
	gchar *fast_hostname;

	/* warm pool: where a parked VM may come from, and whether this start took one */
	QsimWarmPool *warm_pool;

	/* fast start's choice, background builds and the database record */
	QsimTemplateService *template_service;
	gboolean warm;

	/* output cap: the store has not recorded output_truncated yet (retried at the end) */
	gboolean truncation_unrecorded;
	guint output_fail_id;
};

G_DEFINE_TYPE(QsimJob, qsim_job, G_TYPE_OBJECT)

static void qsim_job_finalize_run(QsimJob *self, QsimStatus status, gboolean has_exit_code,
                                  gint exit_code, const gchar *reason);
static void qsim_job_reconcile_pause(QsimJob *self);
static void qsim_job_vm_exited_cb(QsimVm *vm, guint reason, const gchar *message,
                                  gpointer user_data);

const gchar *
qsim_job_phase_to_string(QsimJobPhase phase)
{
	switch (phase) {
	case QSIM_JOB_PHASE_CREATED:
		return "created";
	case QSIM_JOB_PHASE_STARTING:
		return "starting";
	case QSIM_JOB_PHASE_BOOTING:
		return "booting";
	case QSIM_JOB_PHASE_RUNNING:
		return "running";
	case QSIM_JOB_PHASE_STOPPING:
		return "stopping";
	case QSIM_JOB_PHASE_FINISHED:
		return "finished";
	}
	return "unknown";
}

static void qsim_job_system(QsimJob *self, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

/* a short milestone line in the request's `system` log */
static void
qsim_job_system(QsimJob *self, const gchar *format, ...)
{
	g_autofree gchar *line = NULL;
	va_list args;

	va_start(args, format);
	line = g_strdup_vprintf(format, args);
	va_end(args);
	g_debug("%s: %s", self->request->uuid, line);
	qsim_log_batcher_append_line(self->batcher, QSIM_LOG_SYSTEM, line);
}

/* ---- deadlines ------------------------------------------------------------ */

static gboolean
qsim_job_deadline_cb(gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autofree gchar *reason =
	    g_strdup_printf("timed out after %" G_GINT64_FORMAT " s", self->request->timeout_s);

	self->deadline_id = 0;
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
	return G_SOURCE_REMOVE;
}

static void
qsim_job_deadline_arm(QsimJob *self, gint64 left_us)
{
	g_clear_handle_id(&self->deadline_id, g_source_remove);
	self->deadline_us = g_get_monotonic_time() + MAX(left_us, 0);
	self->deadline_id = g_timeout_add((guint)MIN(MAX(left_us, 0) / 1000, G_MAXUINT),
	                                  qsim_job_deadline_cb, self);
}

/* ---- output --------------------------------------------------------------- */

static void
qsim_job_console_cb(QsimVm *vm, GBytes *chunk, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);

	qsim_log_batcher_append_bytes(self->batcher, QSIM_LOG_BOOT, chunk);
}

static void
qsim_job_output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);

	qsim_log_batcher_append_bytes(
	    self->batcher, stream == QSIM_GUEST_STREAM_STDOUT ? QSIM_LOG_STDOUT : QSIM_LOG_STDERR,
	    chunk);
}

static void
qsim_job_congested_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	gboolean congested = qsim_log_batcher_get_congested(self->batcher);

	/* backpressure: the guest's writes block on the SSH window, and the serial console
	 * on QEMU's stdout pipe: nothing piles up here */
	if (self->guest != NULL)
		qsim_guest_set_flow_paused(self->guest, congested);
	if (self->vm != NULL)
		qsim_vm_set_console_paused(self->vm, congested);
}

static gboolean
qsim_job_output_fail_cb(gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autofree gchar *limit = qsim_config_format_size((gint64)self->output_limit);
	g_autofree gchar *reason =
	    g_strdup_printf("output exceeded OUTPUT_LIMIT=%s (OUTPUT_LIMIT_ACTION=fail)", limit);

	self->output_fail_id = 0;
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
	return G_SOURCE_REMOVE;
}

static void
qsim_job_output_truncated_cb(QsimLogBatcher *batcher, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;

	/* right away, so readers of a running request see it */
	if (!qsim_store_set_output_truncated(self->store, self->request->uuid, &error)) {
		g_debug("%s: output_truncated not stored yet: %s", self->request->uuid,
		        error->message);
		self->truncation_unrecorded = TRUE;
	}
	/* not from inside a producer's callback (the SSH reader, the console): from idle */
	if (self->output_action == QSIM_OUTPUT_LIMIT_ACTION_FAIL && self->output_fail_id == 0)
		self->output_fail_id = g_idle_add(qsim_job_output_fail_cb, self);
}

/* Every VM this job runs (cold, restored, warm, a fallback) is wired the same way. */
static void
qsim_job_attach_vm(QsimJob *self)
{
	g_signal_connect_object(self->vm, "console-output", G_CALLBACK(qsim_job_console_cb), self,
	                        0);
	g_signal_connect_object(self->vm, "exited", G_CALLBACK(qsim_job_vm_exited_cb), self, 0);
	qsim_vm_set_console_paused(self->vm, qsim_log_batcher_get_congested(self->batcher));
}

/* ---- the end ---------------------------------------------------------------- */

static void
qsim_job_remove_run_root(QsimJob *self)
{
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (self->run_root == NULL)
		return;
	/* the VM removes its own run dir; anything left is a QEMU that outlived it */
	dir = g_dir_open(self->run_root, 0, NULL);
	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *sub = g_build_filename(self->run_root, name, NULL);
		g_autoptr(GError) error = NULL;

		if (!qsim_agent_recovery_kill_vm_dir(sub, &error))
			g_warning("%s: %s", self->request->uuid, error->message);
	}
	if (g_rmdir(self->run_root) != 0 && errno != ENOENT)
		g_warning("%s: cannot remove %s: %s", self->request->uuid, self->run_root,
		          g_strerror(errno));
}

static gboolean qsim_job_complete_cb(gpointer user_data);

/* CONFLICT (recovered by another agent, or the table says no), NOT_FOUND (deleted)
 * and INVALID never get better; anything else (a locked, full or failing
 * database) may, and a request must never stay running because a write failed */
static gboolean
qsim_job_finish_error_is_transient(const GError *error)
{
	return !g_error_matches(error, QSIM_ERROR, QSIM_ERROR_CONFLICT) &&
	       !g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND) &&
	       !g_error_matches(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

/* Keeps the lease renewed meanwhile (renew_id stays), so no other agent recovers
 * the request while this one still knows how it ended. */
static void
qsim_job_retry_finish(QsimJob *self, const GError *error)
{
	guint delay = QSIM_JOB_FINAL_RETRY_MS << MIN(self->finish_retries, 5);

	delay = MIN(delay, QSIM_JOB_FINISH_RETRY_MAX_MS);
	/* BUSY is ordinary contention; say so only when it lasts */
	if ((!g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY) && self->finish_retries == 0) ||
	    (self->finish_retries > 0 && self->finish_retries % 60 == 0))
		g_warning("%s: cannot store the final status yet (retrying until it is "
		          "recorded): %s",
		          self->request->uuid, error->message);
	else
		g_debug("%s: final status not stored yet: %s", self->request->uuid, error->message);
	self->finish_retries++;
	g_timeout_add_full(G_PRIORITY_DEFAULT, delay, qsim_job_complete_cb, g_object_ref(self),
	                   g_object_unref);
}

/* Flush, write the final status, clean up, report. Retried while the store is busy. */
static void
qsim_job_complete(QsimJob *self)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GTask) task = NULL;
	QsimStatus stored = self->final_status;

	if (!qsim_log_batcher_flush(self->batcher, &error)) {
		if (++self->final_retries < QSIM_JOB_FINAL_MAX_RETRIES) {
			g_timeout_add_full(G_PRIORITY_DEFAULT, QSIM_JOB_FINAL_RETRY_MS,
			                   qsim_job_complete_cb, g_object_ref(self),
			                   g_object_unref);
			return;
		}
		g_warning("%s: giving up on storing the last logs: %s", self->request->uuid,
		          error->message);
		g_clear_error(&error);
	}
	if (self->truncation_unrecorded &&
	    !qsim_store_set_output_truncated(self->store, self->request->uuid, &error)) {
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY) &&
		    ++self->final_retries < QSIM_JOB_FINAL_MAX_RETRIES) {
			g_timeout_add_full(G_PRIORITY_DEFAULT, QSIM_JOB_FINAL_RETRY_MS,
			                   qsim_job_complete_cb, g_object_ref(self),
			                   g_object_unref);
			return;
		}
		g_warning("%s: cannot record the output truncation: %s", self->request->uuid,
		          error->message);
		g_clear_error(&error);
	}
	self->truncation_unrecorded = FALSE;
	if (!self->lease_lost &&
	    !qsim_store_finish_request(self->store, self->request->uuid, self->agent_id,
	                               self->final_status, self->has_exit_code, self->exit_code,
	                               self->reason, &stored, &error)) {
		if (qsim_job_finish_error_is_transient(error)) {
			qsim_job_retry_finish(self, error);
			return;
		}
		/* the request is gone, or no longer ours: nothing left to record */
		g_warning("%s: cannot store the final status: %s", self->request->uuid,
		          error->message);
	} else if (self->finish_retries > 0) {
		g_message("%s: final status recorded after %u retries", self->request->uuid,
		          self->finish_retries);
	}
	g_clear_handle_id(&self->renew_id, g_source_remove);
	qsim_job_remove_run_root(self);
	if (self->store_handler != 0) {
		g_signal_handler_disconnect(self->store, self->store_handler);
		self->store_handler = 0;
	}
	self->phase = QSIM_JOB_PHASE_FINISHED;
	g_info("%s: finished: %s%s%s", self->request->uuid, qsim_status_to_string(stored),
	       self->reason != NULL ? ", " : "", self->reason != NULL ? self->reason : "");
	task = g_steal_pointer(&self->task);
	if (task == NULL)
		return;
	if (error != NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (self->lease_lost) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		                        "request %s: the lease was lost to another agent",
		                        self->request->uuid);
		return;
	}
	g_task_set_task_data(task, GINT_TO_POINTER(stored), NULL);
	g_task_return_boolean(task, TRUE);
}

static gboolean
qsim_job_complete_cb(gpointer user_data)
{
	qsim_job_complete(QSIM_JOB(user_data));
	return G_SOURCE_REMOVE;
}

static void
qsim_job_shutdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_shutdown_finish(QSIM_VM(source), res, &error))
		g_warning("%s: %s", self->request->uuid, error->message);
	qsim_job_system(self, "VM shut down: %s",
	                qsim_vm_get_exit_message(self->vm) != NULL
	                    ? qsim_vm_get_exit_message(self->vm)
	                    : qsim_vm_state_to_string(qsim_vm_get_state(self->vm)));
	qsim_job_complete(self);
}

/* Decides the outcome (first caller wins), then stops everything that runs. */
static void
qsim_job_finalize_run(QsimJob *self, QsimStatus status, gboolean has_exit_code, gint exit_code,
                      const gchar *reason)
{
	if (self->finishing)
		return;
	self->finishing = TRUE;
	self->phase = QSIM_JOB_PHASE_STOPPING;
	self->final_status = status;
	self->has_exit_code = has_exit_code;
	self->exit_code = exit_code;
	self->reason = g_strdup(reason);
	g_info("%s: %s%s%s", self->request->uuid, qsim_status_to_string(status),
	       reason != NULL ? ": " : "", reason != NULL ? reason : "");
	if (reason != NULL && status != QSIM_STATUS_DONE && !has_exit_code)
		qsim_job_system(self, "%s", reason);
	/* readers see the last output now, not after the VM is down (retried at the end) */
	if (!qsim_log_batcher_flush(self->batcher, NULL))
		g_debug("%s: logs not stored yet, retried after the shutdown", self->request->uuid);
	g_clear_handle_id(&self->deadline_id, g_source_remove);
	g_clear_handle_id(&self->exit_wait_id, g_source_remove);
	g_clear_handle_id(&self->output_fail_id, g_source_remove);
	g_cancellable_cancel(self->cancellable);
	if (self->guest != NULL)
		qsim_guest_close(self->guest);
	if (self->vm == NULL || qsim_vm_get_state(self->vm) == QSIM_VM_STATE_EXITED ||
	    qsim_vm_get_state(self->vm) == QSIM_VM_STATE_CREATED) {
		qsim_job_complete(self);
		return;
	}
	qsim_job_system(self, "shutting down VM");
	/* the overlay is thrown away: no ACPI grace, QMP quit then signals */
	qsim_vm_shutdown_async(self->vm, 0, NULL, qsim_job_shutdown_cb, g_object_ref(self));
}

/* ---- QEMU died ------------------------------------------------------------- */

static gboolean qsim_job_fast_start_fallback(QsimJob *self, const gchar *why);
static void qsim_job_fast_start_fixup(QsimJob *self);

static void
qsim_job_vm_exited_cb(QsimVm *vm, guint reason, const gchar *message, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autofree gchar *text = NULL;

	if (self->finishing)
		return;
	if (qsim_job_fast_start_fallback(self, message))
		return;
	if (self->phase == QSIM_JOB_PHASE_STARTING)
		text = g_strdup_printf("qemu failed to start: %s", message);
	else
		text = g_strdup_printf("qemu exited: %s", message);
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, text);
}

static gboolean
qsim_job_exit_wait_cb(gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autofree gchar *reason = g_steal_pointer(&self->exit_wait_reason);

	self->exit_wait_id = 0;
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
	return G_SOURCE_REMOVE;
}

/* The session broke: QEMU's death explains it better, if it comes soon. */
static void
qsim_job_fail_soon(QsimJob *self, const gchar *reason)
{
	if (self->finishing || self->exit_wait_id != 0)
		return;
	if (qsim_vm_get_state(self->vm) == QSIM_VM_STATE_EXITED) {
		g_autofree gchar *text =
		    g_strdup_printf("qemu exited: %s", qsim_vm_get_exit_message(self->vm));
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, text);
		return;
	}
	self->exit_wait_reason = g_strdup(reason);
	self->exit_wait_id =
	    g_timeout_add(QSIM_JOB_EXIT_REASON_WAIT_MS, qsim_job_exit_wait_cb, self);
}

/* ---- the run ---------------------------------------------------------------- */

static void
qsim_job_exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sig = NULL;
	gint status = -1;

	if (!qsim_guest_exec_finish(QSIM_GUEST(source), res, &status, &sig, &error)) {
		g_autofree gchar *reason = NULL;

		if (self->finishing)
			return;
		reason = g_strdup_printf("lost the guest: %s", error->message);
		qsim_job_fail_soon(self, reason);
		return;
	}
	if (self->finishing)
		return;
	if (sig != NULL) {
		g_autofree gchar *reason = g_strdup_printf("command killed by SIG%s", sig);
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
		return;
	}
	qsim_job_system(self, "exit code %d", status);
	if (status == 0) {
		qsim_job_finalize_run(self, QSIM_STATUS_DONE, TRUE, 0, NULL);
	} else {
		g_autofree gchar *reason = g_strdup_printf("exit code %d", status);
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, TRUE, status, reason);
	}
}

static void
qsim_job_start_commands(QsimJob *self)
{
	g_autoptr(GError) error = NULL;
	const gchar *mode = self->warm ? "warm" : self->fast_template != NULL ? "snapshot" : "cold";

	/* only now: a failed restore fell back to a cold boot before this point */
	if (!qsim_store_set_start_mode(self->store, self->request->uuid, mode, &error)) {
		g_warning("%s: cannot record the start mode: %s", self->request->uuid,
		          error->message);
		g_clear_error(&error);
	}
	if (!qsim_store_mark_running(self->store, self->request->uuid, self->agent_id, &error)) {
		g_autoptr(QsimRequest) now = qsim_store_get_request(
		    self->store, self->request->uuid, QSIM_STORE_MIN_PREFIX_API, NULL);

		if (now != NULL && now->status == QSIM_STATUS_CANCELLED) {
			qsim_job_handle_status(self, QSIM_STATUS_CANCELLED);
			return;
		}
		g_prefix_error(&error, "cannot mark the request running: ");
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, error->message);
		return;
	}
	self->phase = QSIM_JOB_PHASE_RUNNING;
	qsim_log_batcher_append_line(self->batcher, QSIM_LOG_COMMAND, self->request->commands);
	/* the store may already be behind (console output): start held back then */
	qsim_guest_set_flow_paused(self->guest, qsim_log_batcher_get_congested(self->batcher));
	qsim_guest_exec_async(self->guest, self->request->commands, qsim_job_output_cb, self,
	                      self->cancellable, qsim_job_exec_cb, g_object_ref(self));
}

static void
qsim_job_boot_failed(QsimJob *self, GError *error)
{
	g_autofree gchar *reason = NULL;

	if (self->finishing)
		return;
	if (qsim_job_fast_start_fallback(self, error->message))
		return;
	if (qsim_vm_get_state(self->vm) == QSIM_VM_STATE_EXITED)
		reason = g_strdup_printf("qemu exited: %s", qsim_vm_get_exit_message(self->vm));
	else if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT))
		reason =
		    g_strdup_printf("guest did not become ready within %u s", self->boot_timeout_s);
	else
		reason = g_strdup_printf("guest did not become ready: %s", error->message);
	g_debug("%s: boot failed: %s", self->request->uuid, error->message);
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
}

static void
qsim_job_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;

	if (QSIM_GUEST(source) != self->guest)
		return; /* a restore given up for a cold boot */
	if (!qsim_guest_connect_finish(QSIM_GUEST(source), res, &error)) {
		qsim_job_boot_failed(self, error);
		return;
	}
	if (self->finishing)
		return;
	qsim_job_system(self, "SSH ready, host key %s",
	                qsim_guest_get_host_key_fingerprint(self->guest));
	if (self->fast_template != NULL) {
		qsim_job_fast_start_fixup(self);
		return;
	}
	qsim_job_start_commands(self);
}

static void
qsim_job_ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	const QsimVmConfig *vmc = qsim_vm_get_config(self->vm);

	if (QSIM_VM(source) != self->vm)
		return; /* a restore given up for a cold boot */
	if (!qsim_vm_wait_ready_finish(self->vm, res, &error)) {
		qsim_job_boot_failed(self, error);
		return;
	}
	if (self->finishing)
		return;
	self->guest = qsim_guest_new(qsim_vm_get_ssh_host(self->vm), qsim_vm_get_ssh_port(self->vm),
	                             vmc->ssh_user, vmc->ssh_key_path, vmc->ssh_password);
	qsim_guest_connect_async(self->guest, self->boot_deadline_us, self->cancellable,
	                         qsim_job_connect_cb, g_object_ref(self));
}

static void
qsim_job_start_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	QsimQmpClient *qmp;

	if (QSIM_VM(source) != self->vm)
		return; /* a restore given up for a cold boot */
	if (!qsim_vm_start_finish(self->vm, res, &error)) {
		g_autofree gchar *reason = NULL;

		if (self->finishing)
			return;
		if (qsim_job_fast_start_fallback(self, error->message))
			return;
		reason = g_strdup_printf("qemu failed to start: %s", error->message);
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
		return;
	}
	if (self->finishing)
		return;
	qmp = qsim_vm_get_qmp(self->vm);
	qsim_job_system(self, "VM started: QEMU pid %d", (gint)qsim_vm_get_pid(self->vm));
	qsim_job_system(self, "QMP up: QEMU %s",
	                qmp != NULL ? qsim_qmp_client_get_version(qmp) : "(unknown version)");
	self->phase = QSIM_JOB_PHASE_BOOTING;
	if (self->fast_template != NULL) {
		qsim_job_system(self, "restored from snapshot");
		/* a restored guest answers at once or not at all: fall back soon */
		self->boot_deadline_us =
		    MIN(self->boot_deadline_us,
		        g_get_monotonic_time() + QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC);
	}
	qsim_vm_wait_ready_async(self->vm, self->boot_deadline_us, self->cancellable,
	                         qsim_job_ready_cb, g_object_ref(self));
}

/* ---- fast start (docs/fast-start.md; the parts in vm/qsim-template.c) --------- */

/* The template service decides (a ready template, else cold, and with
 * FAST_START=snapshot a background build for the next requests). A job run
 * on its own (tests, benchmarks) gets a private service. */
static QsimTemplateService *
qsim_job_get_template_service(QsimJob *self)
{
	if (self->template_service == NULL)
		self->template_service = qsim_template_service_new(self->config, self->store);
	return self->template_service;
}

/* Chooses how this start boots, through the template service */
static void
qsim_job_fast_start_prepare(QsimJob *self)
{
	const QsimVmConfig *vmc = qsim_vm_get_config(self->vm);
	g_autofree gchar *reason = NULL;
	gboolean building = FALSE;

	self->fast_template = qsim_template_service_choose(qsim_job_get_template_service(self),
	                                                   self->vm, &reason, &building);
	if (self->fast_template != NULL) {
		qsim_job_system(self, "fast start: restoring from snapshot %s",
		                qsim_template_get_dir(self->fast_template));
		return;
	}
	qsim_job_system(self, "cold boot (fast start: %s)", reason);
	if (building)
		qsim_job_system(self, "fast start: building the template of %s in the background",
		                vmc->name);
}

/* Every start says in the request's system log which accelerator runs it, and why. */
static void
qsim_job_apply_accel(QsimJob *self)
{
	g_autofree gchar *why = NULL;

	qsim_accel_apply_vm(self->vm, &why);
	qsim_job_system(self, "accelerator: %s", why);
}

/* A restore failed before the commands ran: mark the template stale and boot this
 * request cold instead. Returns FALSE when there is nothing to fall back from. */
static gboolean
qsim_job_fast_start_fallback(QsimJob *self, const gchar *why)
{
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(QsimVm) old = NULL;
	g_autoptr(QsimVmConfig) vmc = NULL;
	g_autoptr(GError) error = NULL;
	gboolean was_warm = self->warm;

	if (self->fast_template == NULL || self->finishing || self->phase >= QSIM_JOB_PHASE_RUNNING)
		return FALSE;
	vmc = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
	                          qsim_config_get_vm_config_dir(self->config),
	                          self->request->vm_name, &error);
	if (vmc == NULL)
		return FALSE;
	tpl = g_steal_pointer(&self->fast_template);
	if (was_warm) {
		/* a warm VM failing says nothing about its template */
		qsim_job_system(self, "warm VM failed: %s; starting the VM the normal way", why);
	} else {
		qsim_job_system(self, "fast start failed: %s; falling back to a cold boot", why);
		qsim_template_service_mark_stale(qsim_job_get_template_service(self), tpl, why);
	}
	self->warm = FALSE;
	if (self->guest != NULL) {
		qsim_guest_close(self->guest);
		g_clear_object(&self->guest);
	}
	old = g_steal_pointer(&self->vm);
	g_signal_handlers_disconnect_by_data(old, self);
	/* the shutdown task keeps the old VM alive until QEMU is gone */
	qsim_vm_shutdown_async(old, 0, NULL, NULL, NULL);

	self->vm = qsim_vm_new(g_steal_pointer(&vmc), self->run_root);
	qsim_vm_set_qemu_binary(self->vm, qsim_config_get_qemu(self->config));
	qsim_vm_set_qemu_img_binary(self->vm, qsim_config_get_qemu_img(self->config));
	qsim_vm_set_request_id(self->vm, self->request->uuid);
	qsim_job_apply_accel(self);
	qsim_job_attach_vm(self);
	self->phase = QSIM_JOB_PHASE_STARTING;
	self->boot_deadline_us =
	    g_get_monotonic_time() + (gint64)self->boot_timeout_s * G_USEC_PER_SEC;
	if (was_warm)
		qsim_job_fast_start_prepare(self);
	else
		qsim_job_system(self, "cold boot");
	qsim_vm_start_async(self->vm, self->cancellable, qsim_job_start_cb, g_object_ref(self));
	return TRUE;
}

static void
qsim_job_fixup_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *why = NULL;
	g_autoptr(GDateTime) when = NULL;
	g_autofree gchar *when_text = NULL;

	if (QSIM_GUEST(source) != self->guest || self->finishing)
		return;
	if (!qsim_guest_run_simple_finish(self->guest, res, &out, NULL, &error)) {
		why = g_strdup_printf("the restored guest could not be set up: %s", error->message);
		if (!qsim_job_fast_start_fallback(self, why))
			qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, why);
		return;
	}
	when = g_date_time_new_from_unix_utc(g_ascii_strtoll(out, NULL, 10));
	when_text = when != NULL ? g_date_time_format_iso8601(when) : g_strdup(g_strstrip(out));
	qsim_job_system(self, "guest clock set from the host: %s", when_text);
	qsim_job_system(self, "guest RNG reseeded with 64 bytes from the host");
	qsim_job_system(self, "guest hostname set to %s", self->fast_hostname);
	qsim_job_start_commands(self);
}

/* Makes the restored guest correct and unique before the user's commands: every
 * restore of a template starts with the same clock, RNG pool and hostname. */
static void
qsim_job_fast_start_fixup(QsimJob *self)
{
	g_autofree gchar *command = NULL;

	g_free(self->fast_hostname);
	self->fast_hostname = qsim_template_new_hostname(self->request->vm_name);
	command =
	    qsim_template_fixup_command(g_get_real_time() / G_USEC_PER_SEC, self->fast_hostname);
	qsim_guest_run_simple_async(self->guest, command, QSIM_TEMPLATE_READY_TIMEOUT_S * 1000,
	                            self->cancellable, qsim_job_fixup_cb, g_object_ref(self));
}

/* ---- warm pool (docs/fast-start.md, "Warm pool") -------------------------- */

static void
qsim_job_warm_cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *why = NULL;

	if (QSIM_VM(source) != self->vm || self->finishing)
		return;
	if (!qsim_vm_resume_finish(self->vm, res, &error)) {
		why = g_strdup_printf("cannot resume it: %s", error->message);
		if (!qsim_job_fast_start_fallback(self, why))
			qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, why);
		return;
	}
	/* the clock stood still while parked: the fix-up sets it from the host */
	qsim_job_fast_start_fixup(self);
}

/* Takes a parked VM of this request's VM from the warm pool, resumes it and goes on
 * with the fix-up over its open SSH session. Returns FALSE when the pool has none. */
static gboolean
qsim_job_take_warm(QsimJob *self, const QsimVmConfig *vmc)
{
	g_autoptr(QsimWarmVm) w = NULL;
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autofree gchar *base = NULL;
	g_autofree gchar *link = NULL;

	if (self->warm_pool == NULL)
		return FALSE;
	w = qsim_warm_pool_take_for(self->warm_pool, vmc, self->request->uuid, self->agent_id);
	if (w == NULL || !qsim_warm_vm_hand_over(w, &self->vm, &self->guest, &tpl))
		return FALSE;
	self->fast_template = g_steal_pointer(&tpl);
	self->warm = TRUE;
	qsim_job_attach_vm(self);
	/* recovery looks for a request's QEMU under RUN_DIR/<uuid>; the warm VM's run dir
	 * stays where its QEMU's argv names it, so a link points there */
	base = g_path_get_basename(qsim_vm_get_run_dir(self->vm));
	link = g_build_filename(self->run_root, base, NULL);
	if (symlink(qsim_vm_get_run_dir(self->vm), link) != 0)
		g_warning("%s: cannot link %s: %s", self->request->uuid, link, g_strerror(errno));
	qsim_job_system(self, "started from the warm pool (restored from snapshot %s)",
	                qsim_template_get_dir(self->fast_template));
	qsim_job_system(self, "accelerator: %s (the warm VM's, as its template was made)",
	                qsim_vm_get_use_kvm(self->vm) ? "kvm" : "tcg");
	qsim_job_system(self, "resuming the parked VM (QMP cont): QEMU pid %d",
	                (gint)qsim_vm_get_pid(self->vm));
	self->phase = QSIM_JOB_PHASE_BOOTING;
	self->boot_deadline_us =
	    g_get_monotonic_time() + QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC;
	qsim_job_deadline_arm(self, self->request->timeout_s * G_USEC_PER_SEC);
	qsim_vm_resume_async(self->vm, self->cancellable, qsim_job_warm_cont_cb,
	                     g_object_ref(self));
	return TRUE;
}

void
qsim_job_set_warm_pool(QsimJob *self, QsimWarmPool *pool)
{
	g_return_if_fail(QSIM_IS_JOB(self) && self->phase == QSIM_JOB_PHASE_CREATED);
	g_set_object(&self->warm_pool, pool);
}

void
qsim_job_set_template_service(QsimJob *self, QsimTemplateService *service)
{
	g_return_if_fail(QSIM_IS_JOB(self));
	g_set_object(&self->template_service, service);
}

/* ---- hold ----------------------------------------------------------------- */

static void
qsim_job_pause_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	gboolean pausing = !self->paused;
	gboolean ok = pausing ? qsim_vm_pause_finish(QSIM_VM(source), res, &error)
	                      : qsim_vm_resume_finish(QSIM_VM(source), res, &error);

	self->pause_busy = FALSE;
	if (self->finishing)
		return;
	if (!ok) {
		/* tried again on the next renewal: the database and QEMU must agree */
		qsim_job_system(self, "could not %s the VM: %s", pausing ? "pause" : "resume",
		                error->message);
		return;
	}
	self->paused = pausing;
	if (pausing) {
		self->deadline_left_us = MAX(self->deadline_us - g_get_monotonic_time(), 0);
		g_clear_handle_id(&self->deadline_id, g_source_remove);
		qsim_job_system(
		    self,
		    "VM paused (hold, QMP stop): deadline clock stopped with %" G_GINT64_FORMAT
		    " s left",
		    self->deadline_left_us / G_USEC_PER_SEC);
	} else {
		qsim_job_deadline_arm(self, self->deadline_left_us);
		qsim_job_system(self, "VM resumed (QMP cont): %" G_GINT64_FORMAT " s left",
		                self->deadline_left_us / G_USEC_PER_SEC);
	}
	qsim_job_reconcile_pause(self);
}

static void
qsim_job_reconcile_pause(QsimJob *self)
{
	if (self->finishing || self->pause_busy || self->want_paused == self->paused ||
	    self->phase != QSIM_JOB_PHASE_RUNNING)
		return;
	self->pause_busy = TRUE;
	if (self->want_paused)
		qsim_vm_pause_async(self->vm, NULL, qsim_job_pause_cb, g_object_ref(self));
	else
		qsim_vm_resume_async(self->vm, NULL, qsim_job_pause_cb, g_object_ref(self));
}

void
qsim_job_handle_status(QsimJob *self, QsimStatus status)
{
	g_return_if_fail(QSIM_IS_JOB(self));
	if (self->finishing || self->phase == QSIM_JOB_PHASE_CREATED)
		return;
	switch (status) {
	case QSIM_STATUS_CANCELLED:
		qsim_job_finalize_run(self, QSIM_STATUS_CANCELLED, FALSE, 0, "cancelled by user");
		break;
	case QSIM_STATUS_HOLD:
		self->want_paused = TRUE;
		qsim_job_reconcile_pause(self);
		break;
	case QSIM_STATUS_RUNNING:
		self->want_paused = FALSE;
		qsim_job_reconcile_pause(self);
		break;
	default:
		break;
	}
}

static void
qsim_job_request_changed_cb(QsimStore *store, const gchar *uuid, gint status, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);

	if (g_strcmp0(uuid, self->request->uuid) == 0)
		qsim_job_handle_status(self, (QsimStatus)status);
}

static gboolean
qsim_job_renew_cb(gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	QsimStatus status = QSIM_STATUS_ACKNOWLEDGED;
	gint64 lease_ms = (gint64)qsim_config_get_lease_seconds(self->config) * 1000;

	if (self->lease_lost)
		return G_SOURCE_CONTINUE;
	if (!qsim_store_renew_lease(self->store, self->request->uuid, self->agent_id, lease_ms,
	                            &status, &error)) {
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_CONFLICT) ||
		    g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND)) {
			/* another agent recovered it: stop the VM, write nothing more */
			g_warning("%s: lease lost: %s", self->request->uuid, error->message);
			self->lease_lost = TRUE;
			qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, "lease lost");
			return G_SOURCE_CONTINUE;
		}
		g_warning("%s: cannot renew the lease (will retry): %s", self->request->uuid,
		          error->message);
		return G_SOURCE_CONTINUE;
	}
	qsim_job_handle_status(self, status);
	/* a hold whose pause failed is retried here */
	qsim_job_reconcile_pause(self);
	return G_SOURCE_CONTINUE;
}

void
qsim_job_run_async(QsimJob *self, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) vmc = NULL;
	const gchar *run_dir = qsim_config_get_run_dir(self->config);

	g_task_set_source_tag(task, qsim_job_run_async);
	g_return_if_fail(self->phase == QSIM_JOB_PHASE_CREATED);
	self->task = g_steal_pointer(&task);
	self->phase = QSIM_JOB_PHASE_STARTING;
	self->store_handler = g_signal_connect(self->store, "request-changed",
	                                       G_CALLBACK(qsim_job_request_changed_cb), self);
	self->renew_id = g_timeout_add(QSIM_JOB_RENEW_INTERVAL_MS, qsim_job_renew_cb, self);
	qsim_job_system(self, "claimed by agent %s (attempt %u)", self->agent_id,
	                self->request->attempts);

	/* checked at submit time too, but the image or config may have gone since */
	vmc = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
	                          qsim_config_get_vm_config_dir(self->config),
	                          self->request->vm_name, &error);
	if (vmc == NULL) {
		g_autofree gchar *reason = g_strdup_printf("VM %s cannot be used: %s",
		                                           self->request->vm_name, error->message);
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
		return;
	}
	self->boot_timeout_s = vmc->boot_timeout;
	self->output_limit = vmc->output_limit >= 0 ? (guint64)vmc->output_limit
	                                            : qsim_config_get_output_limit(self->config);
	self->output_action = qsim_config_get_output_limit_action(self->config);
	qsim_log_batcher_set_output_limit(self->batcher, self->output_limit);
	self->run_root = qsim_layout_dup_request_root(run_dir, self->request->uuid);
	if (g_mkdir_with_parents(self->run_root, 0700) != 0) {
		g_autofree gchar *reason = g_strdup_printf("cannot create run dir %s: %s",
		                                           self->run_root, g_strerror(errno));
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
		return;
	}
	if (qsim_job_take_warm(self, vmc))
		return;
	/* this job's QEMU needs a slot: warm VMs of other images give theirs up first */
	if (self->warm_pool != NULL)
		qsim_warm_pool_trim(self->warm_pool);
	self->vm = qsim_vm_new(g_steal_pointer(&vmc), self->run_root);
	qsim_vm_set_qemu_binary(self->vm, qsim_config_get_qemu(self->config));
	qsim_vm_set_qemu_img_binary(self->vm, qsim_config_get_qemu_img(self->config));
	qsim_vm_set_request_id(self->vm, self->request->uuid);
	qsim_job_apply_accel(self);
	qsim_job_attach_vm(self);
	qsim_job_fast_start_prepare(self);

	qsim_job_system(self, "starting VM %s", self->request->vm_name);
	/* both clocks start with the VM */
	self->boot_deadline_us =
	    g_get_monotonic_time() + (gint64)self->boot_timeout_s * G_USEC_PER_SEC;
	qsim_job_deadline_arm(self, self->request->timeout_s * G_USEC_PER_SEC);
	qsim_vm_start_async(self->vm, self->cancellable, qsim_job_start_cb, g_object_ref(self));
}

gboolean
qsim_job_run_finish(QsimJob *self, GAsyncResult *result, QsimStatus *out_status, GError **error)
{
	if (!g_task_propagate_boolean(G_TASK(result), error))
		return FALSE;
	if (out_status != NULL)
		*out_status = (QsimStatus)GPOINTER_TO_INT(g_task_get_task_data(G_TASK(result)));
	return TRUE;
}

void
qsim_job_abort(QsimJob *self, const gchar *reason)
{
	g_return_if_fail(QSIM_IS_JOB(self));
	if (self->phase == QSIM_JOB_PHASE_CREATED)
		return;
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
}

const gchar *
qsim_job_get_uuid(QsimJob *self)
{
	return self->request->uuid;
}

const gchar *
qsim_job_get_agent_id(QsimJob *self)
{
	return self->agent_id;
}

QsimJobPhase
qsim_job_get_phase(QsimJob *self)
{
	return self->phase;
}

gboolean
qsim_job_get_paused(QsimJob *self)
{
	return self->paused;
}

QsimVm *
qsim_job_get_vm(QsimJob *self)
{
	return self->vm;
}

QsimLogBatcher *
qsim_job_get_batcher(QsimJob *self)
{
	return self->batcher;
}

static void
qsim_job_dispose(GObject *object)
{
	QsimJob *self = QSIM_JOB(object);

	g_clear_handle_id(&self->deadline_id, g_source_remove);
	g_clear_handle_id(&self->renew_id, g_source_remove);
	g_clear_handle_id(&self->exit_wait_id, g_source_remove);
	g_clear_handle_id(&self->output_fail_id, g_source_remove);
	if (self->store_handler != 0) {
		g_signal_handler_disconnect(self->store, self->store_handler);
		self->store_handler = 0;
	}
	if (self->guest != NULL)
		qsim_guest_close(self->guest);
	g_clear_object(&self->guest);
	if (self->vm != NULL)
		g_signal_handlers_disconnect_by_data(self->vm, self);
	g_clear_object(&self->vm);
	G_OBJECT_CLASS(qsim_job_parent_class)->dispose(object);
}

static void
qsim_job_finalize(GObject *object)
{
	QsimJob *self = QSIM_JOB(object);

	g_clear_object(&self->batcher);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->store);
	g_clear_object(&self->config);
	g_free(self->agent_id);
	g_free(self->run_root);
	g_free(self->reason);
	g_free(self->exit_wait_reason);
	g_clear_object(&self->fast_template);
	g_free(self->fast_hostname);
	g_clear_object(&self->warm_pool);
	g_clear_object(&self->template_service);
	qsim_request_free(self->request);
	G_OBJECT_CLASS(qsim_job_parent_class)->finalize(object);
}

static void
qsim_job_class_init(QsimJobClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_job_dispose;
	object_class->finalize = qsim_job_finalize;
}

static void
qsim_job_init(QsimJob *self)
{
	self->cancellable = g_cancellable_new();
}

QsimJob *
qsim_job_new(QsimConfig *config, QsimStore *store, const gchar *agent_id,
             const QsimRequest *request)
{
	QsimJob *self = g_object_new(QSIM_TYPE_JOB, NULL);

	self->config = g_object_ref(config);
	self->store = g_object_ref(store);
	self->agent_id = g_strdup(agent_id);
	self->request = qsim_request_copy(request);
	self->batcher = qsim_log_batcher_new(store, request->uuid, 0, 0);
	/* live output: the first byte is stored within milliseconds, not a second */
	qsim_log_batcher_set_low_latency(self->batcher, QSIM_LOG_BATCHER_LINGER_MS,
	                                 QSIM_LOG_BATCHER_INTERVAL_MS);
	/* from the first console byte on, not only once the commands run */
	g_signal_connect_object(self->batcher, "notify::congested",
	                        G_CALLBACK(qsim_job_congested_cb), self, 0);
	g_signal_connect_object(self->batcher, "output-truncated",
	                        G_CALLBACK(qsim_job_output_truncated_cb), self, 0);
	return self;
}
