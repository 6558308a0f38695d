#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-job-starter.h"
#include "common/qsim-error.h"
#include "store/qsim-end-reason.h"
#include "qmp/qsim-qmp-client.h"
#include "vm/qsim-template.h"

struct _QsimJobStarter {
	GObject parent_instance;
	QsimConfig *config;
	QsimRequest *request;
	gchar *agent_id; /* the job's: a warm VM's slot becomes the request's */
	gchar *run_root;
	QsimLogBatcher *batcher;
	QsimTemplateService *template_service;
	QsimWarmPool *warm_pool; /* nullable */

	GTask *task;               /* while starting: NULL once the outcome is out */
	GCancellable *cancellable; /* the job's: start, readiness, connect, fix-up */
	QsimVm *vm;
	QsimGuest *guest;
	guint boot_timeout_s;
	gint64 boot_deadline_us;
	gboolean booting; /* QEMU runs; the guest is not ready yet */

	/* fast start: the template this start restores, kept to say how it started */
	QsimTemplate *fast_template;
	gchar *fast_hostname;
	gboolean warm;
	/* metrics: when the VM in use started (boot, restore or resume) */
	gint64 vm_started_us;
};

G_DEFINE_TYPE(QsimJobStarter, qsim_job_starter, G_TYPE_OBJECT)

static gboolean qsim_job_starter_fallback(QsimJobStarter *self, const gchar *why);
static void qsim_job_starter_fixup(QsimJobStarter *self);

static void qsim_job_starter_system(QsimJobStarter *self, const gchar *format, ...)
    G_GNUC_PRINTF(2, 3);

/* a short milestone line in the request's `system` log */
static void
qsim_job_starter_system(QsimJobStarter *self, const gchar *format, ...)
{
	g_autofree gchar *line = NULL;
	va_list args;

	va_start(args, format);
	line = g_strdup_vprintf(format, args);
	va_end(args);
	g_debug("%s: %s", self->request->uuid, line);
	qsim_log_batcher_append_line(self->batcher, QSIM_LOG_SYSTEM, line);
}

/* Still starting: no outcome reported yet and not stopped by the job. */
static gboolean
qsim_job_starter_active(QsimJobStarter *self)
{
	return self->task != NULL;
}

static void
qsim_job_starter_return(QsimJobStarter *self, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->task);

	if (task == NULL) {
		g_clear_error(&error);
		return;
	}
	if (error != NULL)
		g_task_return_error(task, error);
	else
		g_task_return_boolean(task, TRUE);
}

/* The start failed for good; @reason becomes the request's error. */
static void
qsim_job_starter_fail(QsimJobStarter *self, const gchar *reason)
{
	qsim_job_starter_return(self, g_error_new_literal(QSIM_ERROR, QSIM_ERROR_VM, reason));
}

/* ---- the VM ----------------------------------------------------------------- */

static void
qsim_job_starter_console_cb(QsimVm *vm, GBytes *chunk, gpointer user_data)
{
	QsimJobStarter *self = QSIM_JOB_STARTER(user_data);

	qsim_log_batcher_append_bytes(self->batcher, QSIM_LOG_BOOT, chunk);
}

static void
qsim_job_starter_vm_exited_cb(QsimVm *vm, guint reason, const gchar *message, gpointer user_data)
{
	QsimJobStarter *self = QSIM_JOB_STARTER(user_data);
	g_autofree gchar *text = NULL;

	if (!qsim_job_starter_active(self))
		return;
	if (qsim_job_starter_fallback(self, message))
		return;
	if (!self->booting)
		text = g_strdup_printf(QSIM_END_TEXT_QEMU_START ": %s", message);
	else
		text = g_strdup_printf(QSIM_END_TEXT_QEMU_EXIT ": %s", message);
	qsim_job_starter_fail(self, text);
}

/* Every VM a start runs (cold, restored, warm, a fallback) is wired the same way. */
static void
qsim_job_starter_attach_vm(QsimJobStarter *self)
{
	g_signal_connect_object(self->vm, "console-output", G_CALLBACK(qsim_job_starter_console_cb),
	                        self, 0);
	g_signal_connect_object(self->vm, "exited", G_CALLBACK(qsim_job_starter_vm_exited_cb), self,
	                        0);
	qsim_vm_set_console_paused(self->vm, qsim_log_batcher_get_congested(self->batcher));
}

/* Every start says in the request's system log which accelerator runs it, and why. */
static void
qsim_job_starter_apply_accel(QsimJobStarter *self)
{
	g_autofree gchar *why = NULL;

	qsim_accel_apply_vm(self->vm, &why);
	qsim_job_starter_system(self, "accelerator: %s", why);
}

static void
qsim_job_starter_new_vm(QsimJobStarter *self, QsimVmConfig *vmc)
{
	self->vm = qsim_vm_new(vmc, self->run_root);
	qsim_vm_set_qemu_binary(self->vm, qsim_config_get_qemu(self->config));
	qsim_vm_set_qemu_img_binary(self->vm, qsim_config_get_qemu_img(self->config));
	qsim_vm_set_request_id(self->vm, self->request->uuid);
	qsim_job_starter_apply_accel(self);
	qsim_job_starter_attach_vm(self);
}

/* ---- boot: start, readiness, SSH -------------------------------------------- */

static void
qsim_job_starter_boot_failed(QsimJobStarter *self, GError *error)
{
	g_autofree gchar *reason = NULL;

	if (!qsim_job_starter_active(self))
		return;
	if (qsim_job_starter_fallback(self, error->message))
		return;
	if (qsim_vm_get_state(self->vm) == QSIM_VM_STATE_EXITED)
		reason = g_strdup_printf(QSIM_END_TEXT_QEMU_EXIT ": %s",
		                         qsim_vm_get_exit_message(self->vm));
	else if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT))
		reason = g_strdup_printf(QSIM_END_TEXT_BOOT_TIMEOUT " %u s", self->boot_timeout_s);
	else
		reason = g_strdup_printf(QSIM_END_TEXT_BOOT_FAILED ": %s", error->message);
	g_debug("%s: boot failed: %s", self->request->uuid, error->message);
	qsim_job_starter_fail(self, reason);
}

static void
qsim_job_starter_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJobStarter) self = QSIM_JOB_STARTER(user_data);
	g_autoptr(GError) error = NULL;

	if (QSIM_GUEST(source) != self->guest)
		return; /* a restore given up for a cold boot */
	if (!qsim_guest_connect_finish(QSIM_GUEST(source), res, &error)) {
		qsim_job_starter_boot_failed(self, error);
		return;
	}
	if (!qsim_job_starter_active(self))
		return;
	qsim_job_starter_system(self, "SSH ready, host key %s",
	                        qsim_guest_get_host_key_fingerprint(self->guest));
	if (self->fast_template != NULL) {
		qsim_job_starter_fixup(self);
		return;
	}
	qsim_job_starter_return(self, NULL);
}

static void
qsim_job_starter_ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJobStarter) self = QSIM_JOB_STARTER(user_data);
	g_autoptr(GError) error = NULL;
	const QsimVmConfig *vmc = qsim_vm_get_config(self->vm);

	if (QSIM_VM(source) != self->vm)
		return; /* a restore given up for a cold boot */
	if (!qsim_vm_wait_ready_finish(self->vm, res, &error)) {
		qsim_job_starter_boot_failed(self, error);
		return;
	}
	if (!qsim_job_starter_active(self))
		return;
	self->guest = qsim_guest_new(qsim_vm_get_ssh_host(self->vm), qsim_vm_get_ssh_port(self->vm),
	                             vmc->ssh_user, vmc->ssh_key_path, vmc->ssh_password);
	qsim_guest_connect_async(self->guest, self->boot_deadline_us, self->cancellable,
	                         qsim_job_starter_connect_cb, g_object_ref(self));
}

static void
qsim_job_starter_start_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJobStarter) self = QSIM_JOB_STARTER(user_data);
	g_autoptr(GError) error = NULL;
	QsimQmpClient *qmp;

	if (QSIM_VM(source) != self->vm)
		return; /* a restore given up for a cold boot */
	if (!qsim_vm_start_finish(self->vm, res, &error)) {
		g_autofree gchar *reason = NULL;

		if (!qsim_job_starter_active(self))
			return;
		if (qsim_job_starter_fallback(self, error->message))
			return;
		reason = g_strdup_printf(QSIM_END_TEXT_QEMU_START ": %s", error->message);
		qsim_job_starter_fail(self, reason);
		return;
	}
	if (!qsim_job_starter_active(self))
		return;
	qmp = qsim_vm_get_qmp(self->vm);
	qsim_job_starter_system(self, "VM started: QEMU pid %d", (gint)qsim_vm_get_pid(self->vm));
	qsim_job_starter_system(self, "QMP up: QEMU %s",
	                        qmp != NULL ? qsim_qmp_client_get_version(qmp)
	                                    : "(unknown version)");
	self->booting = TRUE;
	if (self->fast_template != NULL) {
		qsim_job_starter_system(self, "restored from snapshot");
		/* a restored guest answers at once or not at all: fall back soon */
		self->boot_deadline_us =
		    MIN(self->boot_deadline_us,
		        g_get_monotonic_time() + QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC);
	}
	qsim_vm_wait_ready_async(self->vm, self->boot_deadline_us, self->cancellable,
	                         qsim_job_starter_ready_cb, g_object_ref(self));
}

static void
qsim_job_starter_start_vm(QsimJobStarter *self)
{
	self->vm_started_us = g_get_monotonic_time();
	qsim_vm_start_async(self->vm, self->cancellable, qsim_job_starter_start_cb,
	                    g_object_ref(self));
}

/* ---- snapshot (docs/fast-start.md; the parts in vm/qsim-template.c) ---------- */

/* Chooses how this start boots: the template service knows whether a ready template
 * exists (else cold, and with FAST_START=snapshot a background build for the next
 * requests). */
static void
qsim_job_starter_prepare(QsimJobStarter *self)
{
	const QsimVmConfig *vmc = qsim_vm_get_config(self->vm);
	g_autofree gchar *reason = NULL;
	gboolean building = FALSE;

	self->fast_template =
	    qsim_template_service_choose(self->template_service, self->vm, &reason, &building);
	if (self->fast_template != NULL) {
		qsim_job_starter_system(self, "fast start: restoring from snapshot %s",
		                        qsim_template_get_dir(self->fast_template));
		return;
	}
	qsim_job_starter_system(self, "cold boot (fast start: %s)", reason);
	if (building)
		qsim_job_starter_system(
		    self, "fast start: building the template of %s in the background", vmc->name);
}

/* A restore failed before the commands ran: mark the template stale and boot this
 * request cold instead. Returns FALSE when there is nothing to fall back from. */
static gboolean
qsim_job_starter_fallback(QsimJobStarter *self, const gchar *why)
{
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(QsimVm) old = NULL;
	g_autoptr(QsimVmConfig) vmc = NULL;
	g_autoptr(GError) error = NULL;
	gboolean was_warm = self->warm;

	if (self->fast_template == NULL || !qsim_job_starter_active(self))
		return FALSE;
	vmc = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
	                          qsim_config_get_vm_config_dir(self->config),
	                          self->request->vm_name, &error);
	if (vmc == NULL)
		return FALSE;
	tpl = g_steal_pointer(&self->fast_template);
	if (was_warm) {
		/* a warm VM failing says nothing about its template */
		qsim_job_starter_system(self, "warm VM failed: %s; starting the VM the normal way",
		                        why);
	} else {
		qsim_job_starter_system(self, "fast start failed: %s; falling back to a cold boot",
		                        why);
		qsim_template_service_mark_stale(self->template_service, tpl, why);
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

	qsim_job_starter_new_vm(self, g_steal_pointer(&vmc));
	self->booting = FALSE;
	self->boot_deadline_us =
	    g_get_monotonic_time() + (gint64)self->boot_timeout_s * G_USEC_PER_SEC;
	if (was_warm)
		qsim_job_starter_prepare(self);
	else
		qsim_job_starter_system(self, "cold boot");
	qsim_job_starter_start_vm(self);
	return TRUE;
}

static void
qsim_job_starter_fixup_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJobStarter) self = QSIM_JOB_STARTER(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *why = NULL;
	g_autoptr(GDateTime) when = NULL;
	g_autofree gchar *when_text = NULL;

	if (QSIM_GUEST(source) != self->guest || !qsim_job_starter_active(self))
		return;
	if (!qsim_guest_run_simple_finish(self->guest, res, &out, NULL, &error)) {
		why = g_strdup_printf("the restored guest could not be set up: %s", error->message);
		if (!qsim_job_starter_fallback(self, why))
			qsim_job_starter_fail(self, why);
		return;
	}
	when = g_date_time_new_from_unix_utc(g_ascii_strtoll(out, NULL, 10));
	when_text = when != NULL ? g_date_time_format_iso8601(when) : g_strdup(g_strstrip(out));
	qsim_job_starter_system(self, "guest clock set from the host: %s", when_text);
	qsim_job_starter_system(self, "guest RNG reseeded with 64 bytes from the host");
	qsim_job_starter_system(self, "guest hostname set to %s", self->fast_hostname);
	qsim_job_starter_return(self, NULL);
}

/* Makes the restored guest correct and unique before the user's commands: every
 * restore of a template starts with the same clock, RNG pool and hostname. */
static void
qsim_job_starter_fixup(QsimJobStarter *self)
{
	g_autofree gchar *command = NULL;

	g_free(self->fast_hostname);
	self->fast_hostname = qsim_template_new_hostname(self->request->vm_name);
	command =
	    qsim_template_fixup_command(g_get_real_time() / G_USEC_PER_SEC, self->fast_hostname);
	qsim_guest_run_simple_async(self->guest, command, QSIM_TEMPLATE_READY_TIMEOUT_S * 1000,
	                            self->cancellable, qsim_job_starter_fixup_cb,
	                            g_object_ref(self));
}

/* ---- warm (docs/fast-start.md, "Warm pool") ---------------------------------- */

static void
qsim_job_starter_warm_cont_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimJobStarter) self = QSIM_JOB_STARTER(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *why = NULL;

	if (QSIM_VM(source) != self->vm || !qsim_job_starter_active(self))
		return;
	if (!qsim_vm_resume_finish(self->vm, res, &error)) {
		why = g_strdup_printf("cannot resume it: %s", error->message);
		if (!qsim_job_starter_fallback(self, why))
			qsim_job_starter_fail(self, why);
		return;
	}
	/* the clock stood still while parked: the fix-up sets it from the host */
	qsim_job_starter_fixup(self);
}

/* Takes a parked VM of this request's VM from the warm pool, resumes it and goes on
 * with the fix-up over its open SSH session. Returns FALSE when the pool has none. */
static gboolean
qsim_job_starter_take_warm(QsimJobStarter *self, const QsimVmConfig *vmc)
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
	qsim_job_starter_attach_vm(self);
	/* recovery looks for a request's QEMU under RUN_DIR/<uuid>; the warm VM's run dir
	 * stays where its QEMU's argv names it, so a link points there */
	base = g_path_get_basename(qsim_vm_get_run_dir(self->vm));
	link = g_build_filename(self->run_root, base, NULL);
	if (symlink(qsim_vm_get_run_dir(self->vm), link) != 0)
		g_warning("%s: cannot link %s: %s", self->request->uuid, link, g_strerror(errno));
	qsim_job_starter_system(self, "started from the warm pool (restored from snapshot %s)",
	                        qsim_template_get_dir(self->fast_template));
	qsim_job_starter_system(self, "accelerator: %s (the warm VM's, as its template was made)",
	                        qsim_vm_get_use_kvm(self->vm) ? "kvm" : "tcg");
	qsim_job_starter_system(self, "resuming the parked VM (QMP cont): QEMU pid %d",
	                        (gint)qsim_vm_get_pid(self->vm));
	self->booting = TRUE;
	self->boot_deadline_us =
	    g_get_monotonic_time() + QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC;
	self->vm_started_us = g_get_monotonic_time();
	qsim_vm_resume_async(self->vm, self->cancellable, qsim_job_starter_warm_cont_cb,
	                     g_object_ref(self));
	return TRUE;
}

/* ---- public ------------------------------------------------------------------ */

/**
 * qsim_job_starter_run_async:
 * @self: a #QsimJobStarter, not yet run
 * @vm_config: (transfer full): the request's VM, as loaded now
 * @cancellable: the job's: cancelling it aborts whatever the start waits for
 * @callback: called once the guest answers on its SSH session, or the start failed
 * @user_data: data for @callback
 *
 * Warm if the pool has a parked VM of @vm_config, else snapshot or cold as the template
 * service decides. A request's QEMU that is not warm needs a slot: warm VMs of other
 * images give theirs up first.
 */
void
qsim_job_starter_run_async(QsimJobStarter *self, QsimVmConfig *vm_config, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_autoptr(QsimVmConfig) vmc = vm_config;

	g_task_set_source_tag(task, qsim_job_starter_run_async);
	g_return_if_fail(self->task == NULL && self->vm == NULL);
	self->task = g_steal_pointer(&task);
	g_set_object(&self->cancellable, cancellable);
	self->boot_timeout_s = vmc->boot_timeout;
	if (qsim_job_starter_take_warm(self, vmc))
		return;
	if (self->warm_pool != NULL)
		qsim_warm_pool_trim(self->warm_pool);
	qsim_job_starter_new_vm(self, g_steal_pointer(&vmc));
	qsim_job_starter_prepare(self);
	qsim_job_starter_system(self, "starting VM %s", self->request->vm_name);
	self->boot_deadline_us =
	    g_get_monotonic_time() + (gint64)self->boot_timeout_s * G_USEC_PER_SEC;
	qsim_job_starter_start_vm(self);
}

/**
 * qsim_job_starter_run_finish:
 * @self: a #QsimJobStarter
 * @result: the #GAsyncResult
 * @vm: (out) (transfer full): on success, the running VM, no longer watched by @self
 * @guest: (out) (transfer full): on success, its connected guest session
 * @error: return location for a #GError; its message is the request's error
 *
 * On failure the VM (if any) stays with @self: qsim_job_starter_get_vm() gives it, to
 * shut it down.
 *
 * Returns: %TRUE when the guest is ready for the commands
 */
gboolean
qsim_job_starter_run_finish(QsimJobStarter *self, GAsyncResult *result, QsimVm **vm,
                            QsimGuest **guest, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	if (!g_task_propagate_boolean(G_TASK(result), error))
		return FALSE;
	g_signal_handlers_disconnect_by_data(self->vm, self);
	*vm = g_steal_pointer(&self->vm);
	*guest = g_steal_pointer(&self->guest);
	return TRUE;
}

/**
 * qsim_job_starter_stop:
 * @self: a #QsimJobStarter
 *
 * The job is finishing (cancel, deadline, abort): no fallback and no next step any
 * more; a start still running reports %QSIM_ERROR_CANCELLED. The VM stays with @self,
 * still logging its console, for the job to shut down.
 */
void
qsim_job_starter_stop(QsimJobStarter *self)
{
	g_return_if_fail(QSIM_IS_JOB_STARTER(self));
	if (self->task != NULL)
		qsim_job_starter_return(self, g_error_new(QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                                          "the start of request %s was stopped",
		                                          self->request->uuid));
}

/* Returns: (transfer none) (nullable): the VM being started */
QsimVm *
qsim_job_starter_get_vm(QsimJobStarter *self)
{
	return self->vm;
}

/* Returns: (transfer none) (nullable): the guest session being set up */
QsimGuest *
qsim_job_starter_get_guest(QsimJobStarter *self)
{
	return self->guest;
}

/* Returns: whether QEMU runs and the start waits for the guest */
gboolean
qsim_job_starter_get_booting(QsimJobStarter *self)
{
	return self->booting;
}

/* Returns: how the VM started (so far): "warm", "snapshot" or "cold" */
const gchar *
qsim_job_starter_get_mode(QsimJobStarter *self)
{
	return self->warm ? "warm" : self->fast_template != NULL ? "snapshot" : "cold";
}

/**
 * qsim_job_starter_get_vm_started_us:
 *
 * Returns: the monotonic time the VM in use was started, restored or resumed (after a
 *   fallback, the cold boot's)
 */
gint64
qsim_job_starter_get_vm_started_us(QsimJobStarter *self)
{
	g_return_val_if_fail(QSIM_IS_JOB_STARTER(self), 0);
	return self->vm_started_us;
}

static void
qsim_job_starter_dispose(GObject *object)
{
	QsimJobStarter *self = QSIM_JOB_STARTER(object);

	if (self->guest != NULL)
		qsim_guest_close(self->guest);
	g_clear_object(&self->guest);
	if (self->vm != NULL)
		g_signal_handlers_disconnect_by_data(self->vm, self);
	g_clear_object(&self->vm);
	G_OBJECT_CLASS(qsim_job_starter_parent_class)->dispose(object);
}

static void
qsim_job_starter_finalize(GObject *object)
{
	QsimJobStarter *self = QSIM_JOB_STARTER(object);

	g_clear_object(&self->config);
	qsim_request_free(self->request);
	g_free(self->agent_id);
	g_free(self->run_root);
	g_clear_object(&self->batcher);
	g_clear_object(&self->template_service);
	g_clear_object(&self->warm_pool);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->fast_template);
	g_free(self->fast_hostname);
	G_OBJECT_CLASS(qsim_job_starter_parent_class)->finalize(object);
}

static void
qsim_job_starter_class_init(QsimJobStarterClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_job_starter_dispose;
	object_class->finalize = qsim_job_starter_finalize;
}

static void
qsim_job_starter_init(QsimJobStarter *self)
{
}

/**
 * qsim_job_starter_new:
 * @config: (transfer none): referenced
 * @request: (transfer none): the claimed request; copied
 * @agent_id: the agent that holds the request's lease
 * @run_root: RUN_DIR/<uuid>, existing: the VM makes its run directory in it
 * @batcher: (transfer none): the request's logs; referenced
 * @template_service: (transfer none): chooses a snapshot start and is told of a bad
 *   template; referenced
 * @warm_pool: (transfer none) (nullable): where a parked VM may come from; referenced
 *
 * Returns: (transfer full): a starter, not yet run
 */
QsimJobStarter *
qsim_job_starter_new(QsimConfig *config, const QsimRequest *request, const gchar *agent_id,
                     const gchar *run_root, QsimLogBatcher *batcher,
                     QsimTemplateService *template_service, QsimWarmPool *warm_pool)
{
	QsimJobStarter *self;

	g_return_val_if_fail(QSIM_IS_TEMPLATE_SERVICE(template_service), NULL);
	self = g_object_new(QSIM_TYPE_JOB_STARTER, NULL);
	self->config = g_object_ref(config);
	self->request = qsim_request_copy(request);
	self->agent_id = g_strdup(agent_id);
	self->run_root = g_strdup(run_root);
	self->batcher = g_object_ref(batcher);
	self->template_service = g_object_ref(template_service);
	self->warm_pool = warm_pool != NULL ? g_object_ref(warm_pool) : NULL;
	return self;
}
