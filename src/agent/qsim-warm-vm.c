#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <glib/gstdio.h>

#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-warm-vm.h"
#include "common/qsim-error.h"

struct _QsimWarmVm {
	GObject parent_instance;
	QsimTemplate *tpl;
	QsimVm *vm;
	QsimGuest *guest;
	gchar *vm_name;
	gchar *stamp; /* the template's state file identity at restore time */
	QsimWarmVmState state;
	GTask *task; /* the start, until parked or failed */
	GCancellable *cancellable;
	gint64 ready_deadline_us;
};

G_DEFINE_TYPE(QsimWarmVm, qsim_warm_vm, G_TYPE_OBJECT)

enum { SIGNAL_DIED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

/* A rebuild renames a new directory into place: a new inode, so a new stamp. */
static gchar *
qsim_warm_vm_template_stamp(QsimTemplate *tpl)
{
	GStatBuf st;

	if (g_stat(qsim_template_get_state_path(tpl), &st) != 0)
		return NULL;
	return g_strdup_printf(
	    "%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT,
	    (guint64)st.st_dev, (guint64)st.st_ino, (gint64)st.st_mtime, (gint64)st.st_size);
}

static void
qsim_warm_vm_fail(QsimWarmVm *self, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->task);

	self->state = QSIM_WARM_VM_GONE;
	if (task != NULL)
		g_task_return_error(task, g_error_copy(error));
}

static void
qsim_warm_vm_exited_cb(QsimVm *vm, guint reason, const gchar *message, gpointer user_data)
{
	QsimWarmVm *self = QSIM_WARM_VM(user_data);
	QsimWarmVmState was = self->state;
	g_autoptr(GError) error = NULL;

	if (was == QSIM_WARM_VM_GONE)
		return;
	error = g_error_new(QSIM_ERROR, QSIM_ERROR_VM, "qemu exited: %s", message);
	g_cancellable_cancel(self->cancellable);
	qsim_warm_vm_fail(self, error);
	if (was == QSIM_WARM_VM_PARKED) {
		g_warning("warm pool: a parked VM of %s died: %s", self->vm_name, message);
		g_signal_emit(self, signals[SIGNAL_DIED], 0);
	}
}

static void
qsim_warm_vm_paused_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmVm) self = QSIM_WARM_VM(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GTask) task = NULL;

	if (!qsim_vm_pause_finish(QSIM_VM(source), res, &error)) {
		g_prefix_error(&error, "cannot pause: ");
		qsim_warm_vm_fail(self, error);
		return;
	}
	if (self->state != QSIM_WARM_VM_STARTING)
		return;
	self->state = QSIM_WARM_VM_PARKED;
	task = g_steal_pointer(&self->task);
	if (task != NULL)
		g_task_return_boolean(task, TRUE);
}

static void
qsim_warm_vm_warmed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmVm) self = QSIM_WARM_VM(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_guest_run_simple_finish(QSIM_GUEST(source), res, NULL, NULL, &error)) {
		g_prefix_error(&error, "warm-up command failed: ");
		qsim_warm_vm_fail(self, error);
		return;
	}
	if (self->state != QSIM_WARM_VM_STARTING)
		return;
	qsim_vm_pause_async(self->vm, self->cancellable, qsim_warm_vm_paused_cb,
	                    g_object_ref(self));
}

static void
qsim_warm_vm_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmVm) self = QSIM_WARM_VM(user_data);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *hostname = NULL;
	g_autofree gchar *command = NULL;

	if (!qsim_guest_connect_finish(QSIM_GUEST(source), res, &error)) {
		g_prefix_error(&error, "SSH: ");
		qsim_warm_vm_fail(self, error);
		return;
	}
	if (self->state != QSIM_WARM_VM_STARTING)
		return;
	/* the hand-off runs this same fix-up again: warm exactly the code it runs (the
	 * values set here are replaced then) */
	hostname = qsim_template_new_hostname(self->vm_name);
	command = qsim_template_fixup_command(g_get_real_time() / G_USEC_PER_SEC, hostname);
	qsim_guest_run_simple_async(self->guest, command, QSIM_TEMPLATE_READY_TIMEOUT_S * 1000,
	                            self->cancellable, qsim_warm_vm_warmed_cb, g_object_ref(self));
}

static void
qsim_warm_vm_ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmVm) self = QSIM_WARM_VM(user_data);
	g_autoptr(GError) error = NULL;
	const QsimVmConfig *vmc;

	if (!qsim_vm_wait_ready_finish(QSIM_VM(source), res, &error)) {
		g_prefix_error(&error, "restored guest not ready: ");
		qsim_warm_vm_fail(self, error);
		return;
	}
	if (self->state != QSIM_WARM_VM_STARTING)
		return;
	vmc = qsim_vm_get_config(self->vm);
	self->guest = qsim_guest_new(qsim_vm_get_ssh_host(self->vm), qsim_vm_get_ssh_port(self->vm),
	                             vmc->ssh_user, vmc->ssh_key_path, vmc->ssh_password);
	qsim_guest_connect_async(self->guest, self->ready_deadline_us, self->cancellable,
	                         qsim_warm_vm_connect_cb, g_object_ref(self));
}

static void
qsim_warm_vm_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmVm) self = QSIM_WARM_VM(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_start_finish(QSIM_VM(source), res, &error)) {
		g_prefix_error(&error, "restore failed: ");
		qsim_warm_vm_fail(self, error);
		return;
	}
	if (self->state != QSIM_WARM_VM_STARTING)
		return;
	self->ready_deadline_us =
	    g_get_monotonic_time() + QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC;
	qsim_vm_wait_ready_async(self->vm, self->ready_deadline_us, self->cancellable,
	                         qsim_warm_vm_ready_cb, g_object_ref(self));
}

void
qsim_warm_vm_start_async(QsimWarmVm *self, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_autoptr(GError) error = NULL;

	g_task_set_source_tag(task, qsim_warm_vm_start_async);
	g_return_if_fail(self->task == NULL && self->state == QSIM_WARM_VM_STARTING);
	self->task = g_steal_pointer(&task);
	self->stamp = qsim_warm_vm_template_stamp(self->tpl);
	if (self->stamp == NULL) {
		g_set_error(&error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "template %s is gone",
		            qsim_template_get_dir(self->tpl));
		qsim_warm_vm_fail(self, error);
		return;
	}
	if (!qsim_template_apply(self->tpl, self->vm, &error)) {
		qsim_warm_vm_fail(self, error);
		return;
	}
	qsim_vm_start_async(self->vm, self->cancellable, qsim_warm_vm_started_cb,
	                    g_object_ref(self));
}

gboolean
qsim_warm_vm_start_finish(QsimWarmVm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

gboolean
qsim_warm_vm_is_current(QsimWarmVm *self, const QsimVmConfig *config)
{
	g_autofree gchar *reason = NULL;
	g_autofree gchar *stamp = NULL;

	qsim_accel_apply_template(self->tpl, config);
	if (qsim_template_check(self->tpl, config, &reason) != QSIM_TEMPLATE_STATE_READY)
		return FALSE;
	stamp = qsim_warm_vm_template_stamp(self->tpl);
	return g_strcmp0(stamp, self->stamp) == 0;
}

gboolean
qsim_warm_vm_hand_over(QsimWarmVm *self, QsimVm **vm, QsimGuest **guest, QsimTemplate **tpl)
{
	if (self->state != QSIM_WARM_VM_PARKED)
		return FALSE;
	self->state = QSIM_WARM_VM_GONE;
	g_signal_handlers_disconnect_by_data(self->vm, self);
	*vm = g_steal_pointer(&self->vm);
	*guest = g_steal_pointer(&self->guest);
	*tpl = g_object_ref(self->tpl);
	return TRUE;
}

static void
qsim_warm_vm_shutdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_shutdown_finish(QSIM_VM(source), res, &error))
		g_warning("warm pool: %s", error->message);
	g_task_return_boolean(task, TRUE);
}

void
qsim_warm_vm_destroy_async(QsimWarmVm *self, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	g_autoptr(GError) error =
	    g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED, "warm VM destroyed");
	QsimVmState vm_state;

	g_task_set_source_tag(task, qsim_warm_vm_destroy_async);
	g_cancellable_cancel(self->cancellable);
	qsim_warm_vm_fail(self, error);
	if (self->guest != NULL)
		qsim_guest_close(self->guest);
	vm_state = self->vm != NULL ? qsim_vm_get_state(self->vm) : QSIM_VM_STATE_EXITED;
	if (vm_state == QSIM_VM_STATE_EXITED || vm_state == QSIM_VM_STATE_CREATED) {
		g_task_return_boolean(task, TRUE);
		return;
	}
	/* the overlay is thrown away: no ACPI grace */
	qsim_vm_shutdown_async(self->vm, 0, NULL, qsim_warm_vm_shutdown_cb, g_steal_pointer(&task));
}

void
qsim_warm_vm_destroy_finish(QsimWarmVm *self, GAsyncResult *result)
{
	g_return_if_fail(g_task_is_valid(result, self));
	g_task_propagate_boolean(G_TASK(result), NULL);
}

QsimWarmVmState
qsim_warm_vm_get_state(QsimWarmVm *self)
{
	return self->state;
}

const gchar *
qsim_warm_vm_get_vm_name(QsimWarmVm *self)
{
	return self->vm_name;
}

GPid
qsim_warm_vm_get_pid(QsimWarmVm *self)
{
	return self->vm != NULL ? qsim_vm_get_pid(self->vm) : 0;
}

static void
qsim_warm_vm_dispose(GObject *object)
{
	QsimWarmVm *self = QSIM_WARM_VM(object);

	g_cancellable_cancel(self->cancellable);
	if (self->guest != NULL)
		qsim_guest_close(self->guest);
	g_clear_object(&self->guest);
	if (self->vm != NULL)
		g_signal_handlers_disconnect_by_data(self->vm, self);
	/* the VM's own dispose kills a QEMU still running and removes its run dir */
	g_clear_object(&self->vm);
	G_OBJECT_CLASS(qsim_warm_vm_parent_class)->dispose(object);
}

static void
qsim_warm_vm_finalize(GObject *object)
{
	QsimWarmVm *self = QSIM_WARM_VM(object);

	g_clear_object(&self->tpl);
	g_clear_object(&self->cancellable);
	g_free(self->vm_name);
	g_free(self->stamp);
	G_OBJECT_CLASS(qsim_warm_vm_parent_class)->finalize(object);
}

static void
qsim_warm_vm_class_init(QsimWarmVmClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_warm_vm_dispose;
	object_class->finalize = qsim_warm_vm_finalize;
	signals[SIGNAL_DIED] = g_signal_new("died", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
	                                    NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qsim_warm_vm_init(QsimWarmVm *self)
{
	self->cancellable = g_cancellable_new();
	self->state = QSIM_WARM_VM_STARTING;
}

QsimWarmVm *
qsim_warm_vm_new(QsimVmConfig *config, QsimTemplate *tpl, const gchar *run_root,
                 const gchar *qemu_binary, const gchar *qemu_img_binary)
{
	QsimWarmVm *self = g_object_new(QSIM_TYPE_WARM_VM, NULL);

	self->vm_name = g_strdup(config->name);
	self->tpl = g_object_ref(tpl);
	self->vm = qsim_vm_new(config, run_root);
	qsim_vm_set_qemu_binary(self->vm, qemu_binary);
	qsim_vm_set_qemu_img_binary(self->vm, qemu_img_binary);
	qsim_accel_apply_vm(self->vm, NULL);
	g_signal_connect_object(self->vm, "exited", G_CALLBACK(qsim_warm_vm_exited_cb), self, 0);
	return self;
}
