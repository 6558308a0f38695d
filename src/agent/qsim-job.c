#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "store/qsim-file-artifact-store.h"
#include "agent/qsim-agent-recovery.h"
#include "agent/qsim-job-artifacts.h"
#include "agent/qsim-job-uploads.h"
#include "agent/qsim-job-starter.h"
#include "agent/qsim-job-private.h"
#include "agent/qsim-lease-watchdog.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-metrics.h"
#include "common/qsim-vm-config.h"
#include "store/qsim-end-reason.h"
#include "guest/qsim-guest.h"

/* the final flush and status write may meet a locked database: retry this often */
#define QSIM_JOB_FINAL_RETRY_MS 200
#define QSIM_JOB_FINAL_MAX_RETRIES 50
#define QSIM_JOB_MARK_RETRY_MS 500
/* the final status itself is retried until it is recorded, backing off to this */
#define QSIM_JOB_FINISH_RETRY_MAX_MS 5000

G_DEFINE_TYPE(QsimJob, qsim_job, G_TYPE_OBJECT)

static void qsim_job_run_commands(QsimJob *self);
static void qsim_job_vm_exited_cb(QsimVm *vm, guint reason, const gchar *message,
                                  gpointer user_data);

/* The VM and guest session of now: the starter's while it starts, then the job's. */
QsimVm *
qsim_job_current_vm(QsimJob *self)
{
	if (self->vm == NULL && self->starter != NULL)
		return qsim_job_starter_get_vm(self->starter);
	return self->vm;
}

static QsimGuest *
qsim_job_current_guest(QsimJob *self)
{
	if (self->guest == NULL && self->starter != NULL)
		return qsim_job_starter_get_guest(self->starter);
	return self->guest;
}

/* a short milestone line in the request's `system` log */
void
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
	g_autofree gchar *reason = g_strdup_printf(QSIM_END_TEXT_TIMEOUT " %" G_GINT64_FORMAT " s",
	                                           self->request->timeout_s);

	self->deadline_id = 0;
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
	return G_SOURCE_REMOVE;
}

void
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

	if (stream == QSIM_GUEST_STREAM_STDOUT && !self->first_byte_seen &&
	    g_bytes_get_size(chunk) > 0) {
		self->first_byte_seen = TRUE;
		qsim_metrics_observe(QSIM_METRIC_FIRST_BYTE,
		                     (qsim_store_now_ms(self->store) - self->request->created_at) /
		                         1000.0,
		                     qsim_job_starter_get_mode(self->starter), NULL, NULL);
	}
	qsim_log_batcher_append_bytes(
	    self->batcher, stream == QSIM_GUEST_STREAM_STDOUT ? QSIM_LOG_STDOUT : QSIM_LOG_STDERR,
	    chunk);
}

static void
qsim_job_congested_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	gboolean congested = qsim_log_batcher_get_congested(self->batcher);
	QsimGuest *guest = qsim_job_current_guest(self);
	QsimVm *vm = qsim_job_current_vm(self);

	/* backpressure: the guest's writes block on the SSH window, and the serial console
	 * on QEMU's stdout pipe: nothing piles up here */
	if (guest != NULL)
		qsim_guest_set_flow_paused(guest, congested);
	if (vm != NULL)
		qsim_vm_set_console_paused(vm, congested);
}

static gboolean
qsim_job_output_fail_cb(gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autofree gchar *limit = qsim_config_format_size((gint64)self->output_limit);
	g_autofree gchar *reason =
	    g_strdup_printf(QSIM_END_TEXT_OUTPUT_LIMIT "=%s (OUTPUT_LIMIT_ACTION=fail)", limit);

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

/* The VM the starter handed over: from now on its console and its exit are the job's. */
static void
qsim_job_attach_vm(QsimJob *self)
{
	g_signal_connect_object(self->vm, "console-output", G_CALLBACK(qsim_job_console_cb), self,
	                        0);
	g_signal_connect_object(self->vm, "exited", G_CALLBACK(qsim_job_vm_exited_cb), self, 0);
	qsim_lease_watchdog_set_pid(self->watchdog, qsim_vm_get_pid(self->vm));
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

static void qsim_job_complete_flushed(QsimJob *self, const GError *flush_error);

static void
qsim_job_complete_flushed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(QsimJob) self = user_data;
	g_autoptr(GError) error = NULL;

	qsim_log_batcher_flush_finish(QSIM_LOG_BATCHER(source), result, &error);
	qsim_job_complete_flushed(self, error);
}

/* Flush, write the final status, clean up, report. Retried while the store is busy. */
static void
qsim_job_complete(QsimJob *self)
{
	/* the last logs first: a reader that sees the final status has all the output */
	qsim_log_batcher_flush_async(self->batcher, qsim_job_complete_flushed_cb,
	                             g_object_ref(self));
}

static void
qsim_job_complete_flushed(QsimJob *self, const GError *flush_error)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GTask) task = NULL;
	QsimStatus stored = self->final_status;

	if (flush_error != NULL) {
		/* a database that is down (a PostgreSQL restart, a network cut: BUSY)
		 * comes back: the last logs wait for it, with the lease renewed meanwhile,
		 * as the final status does. Only a lasting refusal is given up on. */
		if (g_error_matches(flush_error, QSIM_ERROR, QSIM_ERROR_BUSY)) {
			qsim_job_retry_finish(self, flush_error);
			return;
		}
		if (++self->final_retries < QSIM_JOB_FINAL_MAX_RETRIES) {
			g_timeout_add_full(G_PRIORITY_DEFAULT, QSIM_JOB_FINAL_RETRY_MS,
			                   qsim_job_complete_cb, g_object_ref(self),
			                   g_object_unref);
			return;
		}
		g_warning("%s: giving up on storing the last logs: %s", self->request->uuid,
		          flush_error->message);
	}
	if (self->truncation_unrecorded &&
	    !qsim_store_set_output_truncated(self->store, self->request->uuid, &error)) {
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY)) {
			qsim_job_retry_finish(self, error);
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
	if (error == NULL && !self->lease_lost)
		qsim_metrics_observe(QSIM_METRIC_REQUEST_DURATION,
		                     (qsim_store_now_ms(self->store) - self->request->created_at) /
		                         1000.0,
		                     qsim_status_to_string(stored), NULL, NULL);
	g_clear_handle_id(&self->renew_id, g_source_remove);
	g_clear_pointer(&self->watchdog, qsim_lease_watchdog_free);
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

	QsimVm *vm = QSIM_VM(source);

	if (!qsim_vm_shutdown_finish(vm, res, &error))
		g_warning("%s: %s", self->request->uuid, error->message);
	qsim_job_system(self, "VM shut down: %s",
	                qsim_vm_get_exit_message(vm) != NULL
	                    ? qsim_vm_get_exit_message(vm)
	                    : qsim_vm_state_to_string(qsim_vm_get_state(vm)));
	qsim_job_complete(self);
}

/* Decides the outcome (first caller wins), then stops everything that runs. */
void
qsim_job_finalize_run(QsimJob *self, QsimStatus status, gboolean has_exit_code, gint exit_code,
                      const gchar *reason)
{
	QsimGuest *guest;
	QsimVm *vm;

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
	/* readers see the last output now, not after the VM is down (waited for at the end) */
	qsim_log_batcher_kick(self->batcher);
	g_clear_handle_id(&self->deadline_id, g_source_remove);
	g_clear_handle_id(&self->exit_wait_id, g_source_remove);
	g_clear_handle_id(&self->output_fail_id, g_source_remove);
	g_cancellable_cancel(self->cancellable);
	if (self->starter != NULL)
		qsim_job_starter_stop(self->starter);
	guest = qsim_job_current_guest(self);
	vm = qsim_job_current_vm(self);
	if (guest != NULL)
		qsim_guest_close(guest);
	if (vm == NULL || qsim_vm_get_state(vm) == QSIM_VM_STATE_EXITED ||
	    qsim_vm_get_state(vm) == QSIM_VM_STATE_CREATED) {
		qsim_job_complete(self);
		return;
	}
	qsim_job_system(self, "shutting down VM");
	/* the overlay is thrown away: no ACPI grace, QMP quit then signals */
	qsim_vm_shutdown_async(vm, 0, NULL, qsim_job_shutdown_cb, g_object_ref(self));
}

/* ---- QEMU died ------------------------------------------------------------- */

static void
qsim_job_vm_exited_cb(QsimVm *vm, guint reason, const gchar *message, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autofree gchar *text = NULL;

	qsim_lease_watchdog_set_pid(self->watchdog, 0);
	/* while it starts, the starter watches it (and may fall back) */
	if (self->finishing)
		return;
	if (qsim_lease_watchdog_fired(self->watchdog)) {
		g_warning("%s: lease lost: not renewed in time; the watchdog stopped the VM",
		          self->request->uuid);
		qsim_job_fence(self);
		return;
	}
	text = g_strdup_printf(QSIM_END_TEXT_QEMU_EXIT ": %s", message);
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
		g_autofree gchar *text = g_strdup_printf(QSIM_END_TEXT_QEMU_EXIT ": %s",
		                                         qsim_vm_get_exit_message(self->vm));
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, text);
		return;
	}
	self->exit_wait_reason = g_strdup(reason);
	self->exit_wait_id =
	    g_timeout_add(QSIM_JOB_EXIT_REASON_WAIT_MS, qsim_job_exit_wait_cb, self);
}

/* ---- the run ---------------------------------------------------------------- */

static void
qsim_job_collected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = g_steal_pointer(&self->done_reason);

	if (!qsim_job_artifacts_collect_finish(res, &error))
		g_debug("%s: artifact collection stopped: %s", self->request->uuid, error->message);
	if (self->finishing)
		return;
	qsim_job_finalize_run(self, self->done_status, self->done_has_exit_code,
	                      self->done_exit_code, reason);
}

/* The commands ended: collect the outputs they named (the VM is still up), then finish. */
static void
qsim_job_commands_done(QsimJob *self, QsimStatus status, gboolean has_exit_code, gint exit_code,
                       const gchar *reason)
{
	if (self->request->artifact_paths == NULL || self->request->artifact_paths[0] == NULL) {
		qsim_job_finalize_run(self, status, has_exit_code, exit_code, reason);
		return;
	}
	self->done_status = status;
	self->done_has_exit_code = has_exit_code;
	self->done_exit_code = exit_code;
	self->done_reason = g_strdup(reason);
	if (self->artifacts == NULL)
		self->artifacts = qsim_artifact_store_new_for_config(self->config);
	qsim_job_artifacts_collect_async(self->guest, self->config, self->store, self->artifacts,
	                                 self->request, self->batcher, self->cancellable,
	                                 qsim_job_collected_cb, g_object_ref(self));
}

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
		reason = g_strdup_printf(QSIM_END_TEXT_GUEST_LOST ": %s", error->message);
		qsim_job_fail_soon(self, reason);
		return;
	}
	if (self->finishing)
		return;
	if (sig != NULL) {
		g_autofree gchar *reason = g_strdup_printf(QSIM_END_TEXT_SIGNAL "%s", sig);
		qsim_job_commands_done(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
		return;
	}
	qsim_job_system(self, "exit code %d", status);
	if (status == 0) {
		qsim_job_commands_done(self, QSIM_STATUS_DONE, TRUE, 0, NULL);
	} else {
		g_autofree gchar *reason = g_strdup_printf("exit code %d", status);
		qsim_job_commands_done(self, QSIM_STATUS_FAILED, TRUE, status, reason);
	}
}

static void qsim_job_exec_commands(QsimJob *self);

static void
qsim_job_uploaded_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;

	if (qsim_job_uploads_finish(res, &error)) {
		if (!self->finishing)
			qsim_job_exec_commands(self);
		return;
	}
	if (self->finishing)
		return;
	reason = g_strdup_printf("inputs not uploaded: %s", error->message);
	if (!qsim_guest_is_connected(self->guest))
		qsim_job_fail_soon(self, reason);
	else
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
}

static void
qsim_job_start_commands(QsimJob *self)
{
	g_autoptr(GError) error = NULL;
	const gchar *mode = qsim_job_starter_get_mode(self->starter);

	qsim_metrics_observe(
	    QSIM_METRIC_READY,
	    (g_get_monotonic_time() - qsim_job_starter_get_vm_started_us(self->starter)) /
	        (gdouble)G_USEC_PER_SEC,
	    mode, NULL, NULL);

	/* only now: a failed restore fell back to a cold boot before this point */
	if (!qsim_store_set_start_mode(self->store, self->request->uuid, mode, &error)) {
		g_warning("%s: cannot record the start mode: %s", self->request->uuid,
		          error->message);
		g_clear_error(&error);
	}
	qsim_job_run_commands(self);
}

static gboolean
qsim_job_run_commands_cb(gpointer user_data)
{
	qsim_job_run_commands(QSIM_JOB(user_data));
	return G_SOURCE_REMOVE;
}

/* running, then the commands; the database may be away for a moment (a restart) */
static void
qsim_job_run_commands(QsimJob *self)
{
	g_autoptr(GError) error = NULL;

	if (self->finishing)
		return;
	if (!qsim_store_mark_running(self->store, self->request->uuid, self->agent_id, &error)) {
		g_autoptr(QsimRequest) now = qsim_store_get_request(
		    self->store, self->request->uuid, QSIM_STORE_MIN_PREFIX_API, NULL);

		if (now != NULL && now->status == QSIM_STATUS_CANCELLED) {
			qsim_job_handle_status(self, QSIM_STATUS_CANCELLED);
			return;
		}
		/* a lost reply: the server may have applied it before the connection broke */
		if (now != NULL && now->status == QSIM_STATUS_RUNNING &&
		    g_strcmp0(now->agent_id, self->agent_id) == 0) {
			g_clear_error(&error);
		} else if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY)) {
			/* the lease renewals (and the watchdog) decide when to give up */
			g_debug("%s: cannot mark running yet: %s", self->request->uuid,
			        error->message);
			g_timeout_add_full(G_PRIORITY_DEFAULT, QSIM_JOB_MARK_RETRY_MS,
			                   qsim_job_run_commands_cb, g_object_ref(self),
			                   g_object_unref);
			return;
		} else {
			g_prefix_error(&error, "cannot mark the request running: ");
			qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, error->message);
			return;
		}
	}
	self->phase = QSIM_JOB_PHASE_RUNNING;
	/* inputs first, into a VM that is ready however it started (cold, restored, warm) */
	qsim_job_uploads_async(self->guest, self->config, self->store, self->worker, self->request,
	                       self->batcher, self->cancellable, qsim_job_uploaded_cb,
	                       g_object_ref(self));
}

static void
qsim_job_exec_commands(QsimJob *self)
{
	qsim_log_batcher_append_line(self->batcher, QSIM_LOG_COMMAND, self->request->commands);
	/* the store may already be behind (console output): start held back then */
	qsim_guest_set_flow_paused(self->guest, qsim_log_batcher_get_congested(self->batcher));
	qsim_guest_exec_async(self->guest, self->request->commands, qsim_job_output_cb, self,
	                      self->cancellable, qsim_job_exec_cb, g_object_ref(self));
}

static void
qsim_job_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJob) self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;

	if (!qsim_job_starter_run_finish(self->starter, res, &vm, &guest, &error)) {
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, error->message);
		return;
	}
	self->vm = g_steal_pointer(&vm);
	self->guest = g_steal_pointer(&guest);
	qsim_job_attach_vm(self);
	if (self->finishing)
		return;
	qsim_job_start_commands(self);
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
	g_return_if_fail(QSIM_IS_JOB(self) && self->phase == QSIM_JOB_PHASE_CREATED);
	g_return_if_fail(QSIM_IS_TEMPLATE_SERVICE(service));
	g_set_object(&self->template_service, service);
}

/**
 * qsim_job_set_store_worker:
 * @worker: where the job's log batches and lease renewals run, off the main loop
 */
void
qsim_job_set_store_worker(QsimJob *self, QsimStoreWorker *worker)
{
	g_return_if_fail(QSIM_IS_JOB(self) && self->phase == QSIM_JOB_PHASE_CREATED);
	g_set_object(&self->worker, worker);
	qsim_log_batcher_set_store_worker(self->batcher, worker);
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
	/* explicit, so that every build and stale mark is counted and recorded in one place */
	g_return_if_fail(self->template_service != NULL);
	self->task = g_steal_pointer(&task);
	self->phase = QSIM_JOB_PHASE_STARTING;
	self->store_handler = g_signal_connect(self->store, "request-changed",
	                                       G_CALLBACK(qsim_job_request_changed_cb), self);
	self->lease_until = self->request->lease_expires_at;
	self->watchdog = qsim_lease_watchdog_new(self->request->uuid,
	                                         self->lease_until - qsim_store_now_ms(self->store),
	                                         QSIM_JOB_RENEW_INTERVAL_MS);
	self->renew_id = g_timeout_add(QSIM_JOB_RENEW_INTERVAL_MS, qsim_job_renew_cb, self);
	qsim_job_system(self, "claimed by agent %s (attempt %u)", self->agent_id,
	                self->request->attempts);

	/* checked at submit time too, but the image or config may have gone since */
	vmc = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
	                          qsim_config_get_vm_config_dir(self->config),
	                          self->request->vm_name, &error);
	if (vmc == NULL) {
		g_autofree gchar *reason = g_strdup_printf("VM %s" QSIM_END_TEXT_VM_UNUSABLE "%s",
		                                           self->request->vm_name, error->message);
		qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, reason);
		return;
	}
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
	self->starter =
	    qsim_job_starter_new(self->config, self->request, self->agent_id, self->run_root,
	                         self->batcher, self->template_service, self->warm_pool);
	/* the request timeout runs from the VM's start (the boot's clock is the starter's) */
	qsim_job_deadline_arm(self, self->request->timeout_s * G_USEC_PER_SEC);
	qsim_job_starter_run_async(self->starter, g_steal_pointer(&vmc), self->cancellable,
	                           qsim_job_started_cb, g_object_ref(self));
}

gboolean
qsim_job_run_finish(QsimJob *self, GAsyncResult *result, QsimStatus *out_status, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
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
	if (self->phase == QSIM_JOB_PHASE_STARTING && self->starter != NULL &&
	    qsim_job_starter_get_booting(self->starter))
		return QSIM_JOB_PHASE_BOOTING;
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
	return qsim_job_current_vm(self);
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
	g_clear_pointer(&self->watchdog, qsim_lease_watchdog_free);
	g_clear_object(&self->worker);
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
	g_clear_object(&self->starter);
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
	g_free(self->done_reason);
	g_clear_object(&self->artifacts);
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
