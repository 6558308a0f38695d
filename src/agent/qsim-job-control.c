#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include "agent/qsim-job-private.h"
#include "common/qsim-error.h"
#include "store/qsim-end-reason.h"

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

void
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

void
qsim_job_request_changed_cb(QsimStore *store, const gchar *uuid, gint status, gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);

	if (g_strcmp0(uuid, self->request->uuid) == 0)
		qsim_job_handle_status(self, (QsimStatus)status);
}

/* Lease gone: SIGKILL at once (a graceful stop needs the loop a failing database may
 * block; the overlay is thrown away), then end without a status: it is someone else's */
void
qsim_job_fence(QsimJob *self)
{
	QsimVm *vm = qsim_job_current_vm(self);

	self->lease_lost = TRUE;
	/* a VM still starting is the starter's, stopped by finalize_run */
	if (vm != NULL && qsim_vm_get_state(vm) != QSIM_VM_STATE_STARTING)
		qsim_vm_kill(vm);
	qsim_job_finalize_run(self, QSIM_STATUS_FAILED, FALSE, 0, QSIM_END_TEXT_LEASE_LOST);
}

/* The store refuses renewals from the point where a job fences on its own */
G_STATIC_ASSERT(QSIM_JOB_RENEW_INTERVAL_MS <= QSIM_STORE_LEASE_MARGIN_MS);

/* Fencing: past the lease's end another host may recover the request and run it, so
 * the VM must be gone by then even though nobody told us (the watchdog killed QEMU
 * already if this loop was blocked meanwhile). The store refuses renewals from the
 * same point on. */
static gboolean
qsim_job_lease_running_out(QsimJob *self)
{
	return !self->finishing &&
	       (qsim_lease_watchdog_fired(self->watchdog) ||
	        qsim_store_now_ms(self->store) + QSIM_STORE_LEASE_MARGIN_MS >= self->lease_until);
}

/* What a renewal that began at @renew_start (store clock) came back with */
static void
qsim_job_renewed(QsimJob *self, gboolean ok, QsimStatus status, const GError *error,
                 gint64 renew_start)
{
	gint64 lease_ms = (gint64)qsim_config_get_lease_seconds(self->config) * 1000;

	if (self->lease_lost || self->phase == QSIM_JOB_PHASE_FINISHED)
		return;
	if (!ok) {
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_CONFLICT) ||
		    g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND)) {
			/* another agent recovered it: stop the VM, write nothing more */
			g_warning("%s: lease lost: %s", self->request->uuid, error->message);
			qsim_job_fence(self);
			return;
		}
		if (qsim_job_lease_running_out(self)) {
			g_warning("%s: lease lost: not renewed in time (%s); stopping the VM",
			          self->request->uuid, error->message);
			qsim_job_fence(self);
			return;
		}
		g_warning("%s: cannot renew the lease (will retry): %s", self->request->uuid,
		          error->message);
		return;
	}
	self->lease_until = renew_start + lease_ms;
	{ /* never a pid that exited: it may be another process's by now */
		QsimVm *vm = qsim_job_current_vm(self);
		gboolean alive = vm != NULL && qsim_vm_get_state(vm) != QSIM_VM_STATE_EXITED &&
		                 qsim_vm_get_state(vm) != QSIM_VM_STATE_CREATED;

		if (self->watchdog != NULL)
			qsim_lease_watchdog_renewed(
			    self->watchdog, self->lease_until - qsim_store_now_ms(self->store),
			    alive ? qsim_vm_get_pid(vm) : 0);
	}
	qsim_job_handle_status(self, status);
	/* a hold whose pause failed is retried here */
	qsim_job_reconcile_pause(self);
}

/* A renewal on the store worker: what it needs, and what it found */
typedef struct {
	QsimJob *job;
	gchar *uuid;
	gchar *agent_id;
	gint64 lease_ms;
	gint64 renew_start;
	QsimStatus status;
} Renewal;

static void
renewal_free(Renewal *r)
{
	g_object_unref(r->job);
	g_free(r->uuid);
	g_free(r->agent_id);
	g_free(r);
}

/* in the worker's thread: only the renewal's own fields */
static gboolean
renewal_run(QsimStore *store, gpointer data, GError **error)
{
	Renewal *r = data;

	return qsim_store_renew_lease(store, r->uuid, r->agent_id, r->lease_ms, &r->status, error);
}

static void
renewal_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Renewal *r = user_data;
	QsimJob *self = r->job;
	g_autoptr(GError) error = NULL;
	gboolean ok = qsim_store_worker_run_finish(self->worker, result, &error);

	self->renew_busy = FALSE;
	qsim_job_renewed(self, ok, r->status, error, r->renew_start);
}

gboolean
qsim_job_renew_cb(gpointer user_data)
{
	QsimJob *self = QSIM_JOB(user_data);
	g_autoptr(GError) error = NULL;
	QsimStatus status = QSIM_STATUS_ACKNOWLEDGED;
	gint64 lease_ms = (gint64)qsim_config_get_lease_seconds(self->config) * 1000;
	gint64 renew_start = qsim_store_now_ms(self->store);
	gboolean ok;

	if (self->lease_lost)
		return G_SOURCE_CONTINUE;
	if (self->worker != NULL) {
		Renewal *r;

		/* one at a time: a slow database must not pile them up; but the lease runs
		 * out meanwhile all the same */
		if (self->renew_busy) {
			if (qsim_job_lease_running_out(self)) {
				g_warning(
				    "%s: lease lost: not renewed in time (the renewal is still "
				    "waiting for the database); stopping the VM",
				    self->request->uuid);
				qsim_job_fence(self);
			}
			return G_SOURCE_CONTINUE;
		}
		r = g_new0(Renewal, 1);
		r->job = g_object_ref(self);
		r->uuid = g_strdup(self->request->uuid);
		r->agent_id = g_strdup(self->agent_id);
		r->lease_ms = lease_ms;
		r->renew_start = renew_start;
		r->status = QSIM_STATUS_ACKNOWLEDGED;
		self->renew_busy = TRUE;
		/* the data outlives the callback: freed with the worker's call */
		qsim_store_worker_run_async(self->worker, renewal_run, r,
		                            (GDestroyNotify)renewal_free, renewal_done_cb, r);
		return G_SOURCE_CONTINUE;
	}
	ok = qsim_store_renew_lease(self->store, self->request->uuid, self->agent_id, lease_ms,
	                            &status, &error);
	qsim_job_renewed(self, ok, status, error, renew_start);
	return G_SOURCE_CONTINUE;
}
