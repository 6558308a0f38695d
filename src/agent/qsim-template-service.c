#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "agent/qsim-agent-recovery.h"
#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-template-service.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-config.h"
#include "store/qsim-store-hosts.h"

struct _QsimTemplateService {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store;
	gchar *host;
	GHashTable *building; /* vm_name -> GINT_TO_POINTER(1 if it holds a VM slot) */
	guint n_slot_builds;
	gulong store_handler;
	gulong elsewhere_handler;
	guint poll_idle_id;
	GCancellable *cancellable; /* every build's: cancelled by the stop */
	gboolean stopping;
	GTask *stop_task; /* (nullable): returned once the last build ended */
};

G_DEFINE_TYPE(QsimTemplateService, qsim_template_service, G_TYPE_OBJECT)

enum { SIGNAL_BUILD_FINISHED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

typedef enum {
	BUILD_STARTED,
	BUILD_NOT_NEEDED, /* fresh already, and not forced */
	BUILD_ELSEWHERE,  /* another process (or this one) builds it now */
	BUILD_FAILED,
} BuildStart;

typedef struct {
	QsimTemplateService *self; /* owned */
	QsimTemplate *tpl;         /* owned */
	gchar *vm_name;
	gint64 started_ms;
	gint64 slot;            /* its VM slot in the store; 0 for `qsimd prepare` */
	GTask *waiter;          /* (nullable) owned: qsimd prepare */
	gboolean was_requested; /* the claim took a prepare request */
	gboolean force;
} Build;

static void
build_free(Build *b)
{
	g_clear_object(&b->self);
	g_clear_object(&b->tpl);
	g_free(b->vm_name);
	g_clear_object(&b->waiter);
	g_free(b);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Build, build_free)

static QsimTemplate *
qsim_template_service_new_template(QsimTemplateService *self, const gchar *vm_name)
{
	QsimTemplate *tpl = qsim_template_new(qsim_config_get_state_dir(self->config), vm_name);

	qsim_template_set_qemu_binary(tpl, qsim_config_get_qemu(self->config));
	qsim_template_set_qemu_img_binary(tpl, qsim_config_get_qemu_img(self->config));
	return tpl;
}

/* Writes the row of @vm_name: @state with @reason, the manifest's facts when ready.
 * @started_ms/@finished_ms (0 = keep the recorded ones) describe a build. */
static gboolean
qsim_template_service_record(QsimTemplateService *self, const gchar *vm_name, QsimTemplate *tpl,
                             QsimTemplateRecordState state, const gchar *reason, gint64 started_ms,
                             gint64 finished_ms, GError **error)
{
	g_autoptr(QsimTemplateRecord) r =
	    qsim_store_get_template(self->store, vm_name, self->host, NULL);

	if (r == NULL)
		r = qsim_template_record_new(vm_name, self->host);
	r->state = state;
	g_free(r->reason);
	r->reason = g_strdup(reason);
	g_free(r->dir);
	r->dir = g_strdup(qsim_template_get_dir(tpl));
	if (started_ms != 0) {
		r->build_started_at = started_ms;
		r->build_finished_at = finished_ms;
		r->build_ms = finished_ms != 0 ? MAX(finished_ms - started_ms, 0) : 0;
	}
	if (state == QSIM_TEMPLATE_RECORD_READY) {
		g_autoptr(QsimTemplateManifest) m = qsim_template_load_manifest(tpl, NULL);

		r->size_bytes = qsim_template_get_size_bytes(tpl);
		if (m != NULL) {
			g_free(r->image_sha256);
			r->image_sha256 = g_strdup(m->image_sha256);
			r->image_size = m->image_size;
			r->image_mtime_us = m->image_mtime_us;
			g_free(r->config_hash);
			r->config_hash = g_strdup(m->config_hash);
			g_free(r->qemu_version);
			r->qemu_version = g_strdup(m->qemu_version);
			g_free(r->machine);
			r->machine = g_strdup(m->machine);
			/* a template found on disk (built by an older qsim) has no build row */
			if (r->build_finished_at == 0 && m->created_unix > 0)
				r->build_finished_at = m->created_unix * 1000;
		}
	}
	return qsim_store_upsert_template(self->store, r, error);
}

gboolean
qsim_template_service_record_state(QsimTemplateService *self, QsimTemplate *tpl,
                                   QsimTemplateRecordState state, const gchar *reason,
                                   GError **error)
{
	g_autofree gchar *vm_name = g_path_get_basename(qsim_template_get_dir(tpl));

	g_return_val_if_fail(QSIM_IS_TEMPLATE_SERVICE(self), FALSE);
	return qsim_template_service_record(self, vm_name, tpl, state, reason, 0, 0, error);
}

static void
qsim_template_service_warn_record(QsimTemplateService *self, const gchar *vm_name,
                                  QsimTemplate *tpl, QsimTemplateRecordState state,
                                  const gchar *reason, gint64 started_ms, gint64 finished_ms)
{
	g_autoptr(GError) error = NULL;

	if (!qsim_template_service_record(self, vm_name, tpl, state, reason, started_ms,
	                                  finished_ms, &error))
		g_warning("fast start: cannot record the template of %s as %s: %s", vm_name,
		          qsim_template_record_state_to_string(state), error->message);
}

/* A VM slot for a background build, claimed in the store against MAX_CONCURRENT_VMS
 * and MAX_VMS_PER_HOST like every QEMU's. Returns: its id, 0 when none is free */
static gint64
qsim_template_service_claim_slot(QsimTemplateService *self, const gchar *vm_name)
{
	g_autofree gchar *owner = qsim_layout_dup_builder_id();
	g_autoptr(GError) error = NULL;
	gint64 slot = 0;

	if (!qsim_store_claim_slot(self->store, owner, QSIM_VM_SLOT_BUILD, vm_name,
	                           qsim_config_get_max_concurrent_vms(self->config),
	                           qsim_config_get_max_vms_per_host(self->config), &slot, &error)) {
		g_warning("fast start: cannot claim a VM slot: %s", error->message);
		return 0;
	}
	return slot;
}

/* Frees a build's slot: its QEMU is gone, or never started */
static void
qsim_template_service_release_slot(QsimTemplateService *self, gint64 slot)
{
	g_autoptr(GError) error = NULL;

	if (slot != 0 &&
	    !qsim_store_release_slot(self->store, slot, QSIM_VM_SLOT_BUILD, NULL, &error))
		g_warning("fast start: cannot free a build's VM slot: %s", error->message);
}

static void qsim_template_service_schedule_poll(QsimTemplateService *self);

/* what the files say (an older template may still be ready), else failed; and the
 * prepare request the build took goes back, so the next start builds it */
static void
qsim_template_service_record_cancelled(QsimTemplateService *self, Build *b)
{
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	gboolean ready;

	config = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
	                             qsim_config_get_vm_config_dir(self->config), b->vm_name, NULL);
	if (config != NULL)
		qsim_accel_apply_template(b->tpl, config);
	ready = config != NULL &&
	        qsim_template_check(b->tpl, config, NULL) == QSIM_TEMPLATE_STATE_READY;
	g_info("fast start: build of the template of %s cancelled: the agent shuts down",
	       b->vm_name);
	qsim_template_service_warn_record(
	    self, b->vm_name, b->tpl,
	    ready ? QSIM_TEMPLATE_RECORD_READY : QSIM_TEMPLATE_RECORD_FAILED,
	    ready ? NULL : QSIM_TEMPLATE_SERVICE_SHUTDOWN_REASON, 0, 0);
	if (b->was_requested) {
		g_autoptr(QsimTemplateRecord) row = qsim_store_request_prepare(
		    self->store, b->vm_name, self->host, b->force, &error);

		if (row == NULL)
			g_warning("fast start: cannot keep the prepare request of %s: %s",
			          b->vm_name, error->message);
	}
}

static void
qsim_template_service_maybe_stopped(QsimTemplateService *self)
{
	g_autoptr(GTask) task = NULL;

	if (self->stop_task == NULL || g_hash_table_size(self->building) > 0)
		return;
	task = g_steal_pointer(&self->stop_task);
	g_task_return_boolean(task, TRUE);
}

static void
qsim_template_service_build_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(Build) b = user_data;
	QsimTemplateService *self = b->self;
	g_autoptr(GError) error = NULL;
	gboolean ok = qsim_template_build_finish(QSIM_TEMPLATE(source), res, &error);
	gint64 now = qsim_store_now_ms(self->store);

	g_hash_table_remove(self->building, b->vm_name);
	if (b->slot != 0)
		self->n_slot_builds--;
	/* the build's QEMU is gone by now */
	qsim_template_service_release_slot(self, b->slot);
	if (!ok && g_cancellable_is_cancelled(self->cancellable)) {
		qsim_template_service_record_cancelled(self, b);
	} else if (ok) {
		g_info("fast start: template of %s ready in %.1f s", b->vm_name,
		       (now - b->started_ms) / 1000.0);
		qsim_template_service_warn_record(
		    self, b->vm_name, b->tpl, QSIM_TEMPLATE_RECORD_READY, NULL, b->started_ms, now);
	} else {
		g_warning("fast start: building the template of %s failed: %s", b->vm_name,
		          error->message);
		qsim_template_service_warn_record(self, b->vm_name, b->tpl,
		                                  QSIM_TEMPLATE_RECORD_FAILED, error->message,
		                                  b->started_ms, now);
	}
	g_signal_emit(self, signals[SIGNAL_BUILD_FINISHED], 0, b->vm_name, ok);
	if (b->waiter != NULL) {
		if (ok)
			g_task_return_boolean(b->waiter, TRUE);
		else
			g_task_return_error(b->waiter, g_steal_pointer(&error));
	}
	/* a slot is free again, and a request may have come meanwhile */
	qsim_template_service_schedule_poll(self);
	qsim_template_service_maybe_stopped(self);
}

/*
 * Claims the build of @vm_name in the database and starts it. @slot: the VM slot
 * of a background build, which the build frees when its QEMU is gone; on any
 * other result than BUILD_STARTED the caller frees it. @waiter (nullable) gets
 * the result when BUILD_STARTED is returned.
 */
static BuildStart
qsim_template_service_start_build(QsimTemplateService *self, const gchar *vm_name, gboolean force,
                                  gint64 slot, GTask *waiter, GError **error)
{
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree gchar *build_root = NULL;
	gboolean claimed = FALSE;
	gboolean asked_force = FALSE;
	gboolean was_requested = FALSE;
	Build *b;

	if (self->stopping) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED, "%s",
		            QSIM_TEMPLATE_SERVICE_SHUTDOWN_REASON);
		return BUILD_FAILED;
	}
	if (g_hash_table_contains(self->building, vm_name))
		return BUILD_ELSEWHERE;
	{
		g_autoptr(QsimTemplateRecord) before =
		    qsim_store_get_template(self->store, vm_name, self->host, NULL);

		/* a cancelled build gives its prepare request back */
		was_requested = before != NULL && before->prepare_requested_at != 0;
	}
	if (!qsim_store_claim_prepare(self->store, vm_name, self->host, &claimed, &asked_force,
	                              error))
		return BUILD_FAILED;
	if (!claimed)
		return BUILD_ELSEWHERE;
	tpl = qsim_template_service_new_template(self, vm_name);
	config = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
	                             qsim_config_get_vm_config_dir(self->config), vm_name, &local);
	if (config == NULL) {
		/* the row must leave building, or nobody would claim it for 30 minutes */
		qsim_template_service_warn_record(self, vm_name, tpl, QSIM_TEMPLATE_RECORD_FAILED,
		                                  local->message, 0, 0);
		g_propagate_error(error, g_steal_pointer(&local));
		return BUILD_FAILED;
	}
	/* checked and built under the accelerator this host runs the VM under */
	qsim_accel_apply_template(tpl, config);
	if (qsim_template_is_building(tpl)) {
		/* a qsim without the database claim builds it: its files are locked. The row
		 * must not stay building under our pid, or recovery would take us for dead. */
		qsim_template_service_warn_record(self, vm_name, tpl, QSIM_TEMPLATE_RECORD_FAILED,
		                                  "its files are being built by another process", 0,
		                                  0);
		return BUILD_ELSEWHERE;
	}
	if (!force && !asked_force &&
	    qsim_template_check(tpl, config, NULL) == QSIM_TEMPLATE_STATE_READY) {
		qsim_template_service_warn_record(self, vm_name, tpl, QSIM_TEMPLATE_RECORD_READY,
		                                  NULL, 0, 0);
		return BUILD_NOT_NEEDED;
	}
	build_root = qsim_layout_dup_build_root(qsim_config_get_run_dir(self->config));
	if (g_mkdir_with_parents(build_root, 0700) != 0) {
		g_set_error(&local, QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s", build_root,
		            g_strerror(errno));
		qsim_template_service_warn_record(self, vm_name, tpl, QSIM_TEMPLATE_RECORD_FAILED,
		                                  local->message, 0, 0);
		g_propagate_error(error, g_steal_pointer(&local));
		return BUILD_FAILED;
	}
	b = g_new0(Build, 1);
	b->self = g_object_ref(self);
	b->tpl = g_object_ref(tpl);
	b->vm_name = g_strdup(vm_name);
	b->started_ms = qsim_store_now_ms(self->store);
	b->slot = slot;
	b->waiter = waiter != NULL ? g_object_ref(waiter) : NULL;
	b->was_requested = was_requested;
	b->force = force || asked_force;
	g_hash_table_insert(self->building, g_strdup(vm_name), GINT_TO_POINTER(slot != 0));
	if (slot != 0)
		self->n_slot_builds++;
	g_info("fast start: building the template of %s%s", vm_name,
	       force || asked_force ? " (forced)" : "");
	qsim_template_build_async(tpl, g_steal_pointer(&config), build_root, self->cancellable,
	                          qsim_template_service_build_cb, b);
	return BUILD_STARTED;
}

/**
 * qsim_template_service_choose:
 *
 * Returns: (transfer full) (nullable): the applied template, or NULL for a cold boot
 */
QsimTemplate *
qsim_template_service_choose(QsimTemplateService *self, QsimVm *vm, gchar **out_reason,
                             gboolean *out_building)
{
	const QsimVmConfig *vmc = qsim_vm_get_config(vm);
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;
	QsimTemplateState state;
	BuildStart started;
	gint64 slot;

	g_return_val_if_fail(QSIM_IS_TEMPLATE_SERVICE(self), NULL);
	*out_reason = NULL;
	*out_building = FALSE;
	tpl = qsim_template_service_new_template(self, vmc->name);
	qsim_accel_apply_template(tpl, vmc);
	state = qsim_template_check(tpl, vmc, &reason);
	if (state == QSIM_TEMPLATE_STATE_READY) {
		if (qsim_template_apply(tpl, vm, &error))
			return g_steal_pointer(&tpl);
		g_free(reason);
		reason = g_strdup(error->message);
	} else if (state == QSIM_TEMPLATE_STATE_STALE) {
		g_autoptr(QsimTemplateRecord) row =
		    qsim_store_get_template(self->store, vmc->name, self->host, NULL);

		/* an input changed since the row said ready: record it once */
		if (row != NULL && row->state == QSIM_TEMPLATE_RECORD_READY)
			qsim_template_service_warn_record(self, vmc->name, tpl,
			                                  QSIM_TEMPLATE_RECORD_STALE, reason, 0, 0);
	}
	*out_reason = g_steal_pointer(&reason);
	if (vmc->fast_start != QSIM_VM_FAST_START_SNAPSHOT || state == QSIM_TEMPLATE_STATE_READY ||
	    self->stopping || qsim_template_is_building(tpl))
		return NULL;
	slot = qsim_template_service_claim_slot(self, vmc->name);
	if (slot == 0) {
		g_autoptr(QsimTemplateRecord) row =
		    qsim_store_request_prepare(self->store, vmc->name, self->host, FALSE, &error);

		/* built by the poll once a slot is free */
		if (row == NULL)
			g_warning("fast start: cannot queue the build of %s: %s", vmc->name,
			          error->message);
		*out_building = row != NULL;
		return NULL;
	}
	started = qsim_template_service_start_build(self, vmc->name, FALSE, slot, NULL, &error);
	if (started != BUILD_STARTED)
		qsim_template_service_release_slot(self, slot);
	switch (started) {
	case BUILD_STARTED:
		*out_building = TRUE;
		break;
	case BUILD_FAILED:
		g_warning("fast start: cannot build the template of %s: %s", vmc->name,
		          error->message);
		break;
	case BUILD_NOT_NEEDED:
	case BUILD_ELSEWHERE:
		break;
	}
	return NULL;
}

void
qsim_template_service_mark_stale(QsimTemplateService *self, QsimTemplate *tpl, const gchar *reason)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *vm_name = NULL;

	g_return_if_fail(QSIM_IS_TEMPLATE_SERVICE(self));
	vm_name = g_path_get_basename(qsim_template_get_dir(tpl));
	if (!qsim_template_mark_stale(tpl, reason, &error))
		g_warning("fast start: %s: %s", vm_name, error->message);
	/* the row describes the current version; a rebuild since replaced the failed one */
	if (!qsim_template_is_current(tpl))
		return;
	qsim_template_service_warn_record(self, vm_name, tpl, QSIM_TEMPLATE_RECORD_STALE, reason, 0,
	                                  0);
}

void
qsim_template_service_poll(QsimTemplateService *self)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;

	g_return_if_fail(QSIM_IS_TEMPLATE_SERVICE(self));
	if (self->stopping)
		return;
	rows = qsim_store_list_templates(self->store, self->host, TRUE, &error);
	if (rows == NULL) {
		g_warning("fast start: cannot read prepare requests: %s", error->message);
		return;
	}
	for (guint i = 0; i < rows->len; i++) {
		const QsimTemplateRecord *r = g_ptr_array_index(rows, i);
		g_autoptr(GError) local = NULL;
		BuildStart started;
		gint64 slot;

		if (g_hash_table_contains(self->building, r->vm_name))
			continue; /* picked up when our build ends */
		slot = qsim_template_service_claim_slot(self, r->vm_name);
		if (slot == 0)
			return; /* a freed slot or a new request polls again */
		started =
		    qsim_template_service_start_build(self, r->vm_name, FALSE, slot, NULL, &local);
		if (started != BUILD_STARTED)
			qsim_template_service_release_slot(self, slot);
		if (started == BUILD_FAILED)
			g_warning("fast start: cannot build the template of %s: %s", r->vm_name,
			          local->message);
	}
}

static gboolean
qsim_template_service_poll_idle_cb(gpointer user_data)
{
	QsimTemplateService *self = QSIM_TEMPLATE_SERVICE(user_data);

	self->poll_idle_id = 0;
	qsim_template_service_poll(self);
	return G_SOURCE_REMOVE;
}

/* coalesced, and never from inside a store signal emission */
static void
qsim_template_service_schedule_poll(QsimTemplateService *self)
{
	if (self->poll_idle_id != 0 || self->store_handler == 0 || self->stopping)
		return;
	self->poll_idle_id = g_idle_add(qsim_template_service_poll_idle_cb, self);
}

static void
qsim_template_service_template_changed_cb(QsimStore *store, const gchar *vm_name, const gchar *host,
                                          gpointer user_data)
{
	QsimTemplateService *self = QSIM_TEMPLATE_SERVICE(user_data);

	if (g_strcmp0(host, self->host) == 0)
		qsim_template_service_schedule_poll(self);
}

void
qsim_template_service_start(QsimTemplateService *self)
{
	g_return_if_fail(QSIM_IS_TEMPLATE_SERVICE(self));
	if (self->store_handler != 0)
		return;
	self->store_handler =
	    g_signal_connect(self->store, "template-changed",
	                     G_CALLBACK(qsim_template_service_template_changed_cb), self);
	/* a prepare request of another process (`qsimd api`), with the store's watch on */
	self->elsewhere_handler =
	    g_signal_connect_swapped(self->store, "changed-elsewhere",
	                             G_CALLBACK(qsim_template_service_schedule_poll), self);
	qsim_template_service_schedule_poll(self);
}

static void
qsim_template_service_disconnect(QsimTemplateService *self)
{
	g_clear_handle_id(&self->poll_idle_id, g_source_remove);
	if (self->store_handler != 0) {
		g_signal_handler_disconnect(self->store, self->store_handler);
		self->store_handler = 0;
	}
	if (self->elsewhere_handler != 0) {
		g_signal_handler_disconnect(self->store, self->elsewhere_handler);
		self->elsewhere_handler = 0;
	}
}

void
qsim_template_service_stop_async(QsimTemplateService *self, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);

	g_return_if_fail(QSIM_IS_TEMPLATE_SERVICE(self));
	g_task_set_source_tag(task, qsim_template_service_stop_async);
	if (self->stop_task != NULL) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "the template service is already stopping");
		return;
	}
	self->stopping = TRUE;
	qsim_template_service_disconnect(self);
	self->stop_task = g_steal_pointer(&task);
	if (g_hash_table_size(self->building) > 0)
		g_info("fast start: cancelling %u template builds",
		       g_hash_table_size(self->building));
	/* each build stops its VM, removes its build dir and then calls back */
	g_cancellable_cancel(self->cancellable);
	qsim_template_service_maybe_stopped(self);
}

gboolean
qsim_template_service_stop_finish(QsimTemplateService *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

guint
qsim_template_service_recover(QsimTemplateService *self)
{
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	guint n = 0;

	g_return_val_if_fail(QSIM_IS_TEMPLATE_SERVICE(self), 0);
	rows = qsim_store_list_templates(self->store, self->host, FALSE, &error);
	if (rows == NULL) {
		g_warning("fast start: recovery cannot read templates: %s", error->message);
		return 0;
	}
	for (guint i = 0; i < rows->len; i++) {
		g_autoptr(QsimTemplateRecord) r =
		    qsim_template_record_copy(g_ptr_array_index(rows, i));
		g_autoptr(QsimTemplateRecord) queued = NULL;
		g_autoptr(GError) local = NULL;
		g_autofree gchar *reason = NULL;

		/* our own builds have our pid: only those of dead processes are reset */
		if (r->state != QSIM_TEMPLATE_RECORD_BUILDING ||
		    g_hash_table_contains(self->building, r->vm_name) ||
		    !qsim_agent_recovery_agent_is_dead_local(r->builder))
			continue;
		reason = g_strdup_printf("its builder %s is gone", r->builder);
		g_clear_pointer(&r->builder, g_free);
		r->state = QSIM_TEMPLATE_RECORD_FAILED;
		g_free(r->reason);
		r->reason = g_strdup(reason);
		r->build_finished_at = qsim_store_now_ms(self->store);
		r->build_ms = 0;
		/* whoever started it still wants the template: build it again */
		if (!qsim_store_upsert_template(self->store, r, &local) ||
		    (queued = qsim_store_request_prepare(self->store, r->vm_name, self->host, FALSE,
		                                         &local)) == NULL) {
			g_warning("fast start: cannot reset the build of %s: %s", r->vm_name,
			          local->message);
			continue;
		}
		g_info("fast start: the build of the template of %s stopped (%s): queued again",
		       r->vm_name, reason);
		n++;
	}
	/* the dead builder's QEMU and build dir (the VMs of live processes stay) */
	if (n > 0)
		qsim_agent_recovery_sweep_build_dirs(qsim_config_get_run_dir(self->config));
	return n;
}

void
qsim_template_service_prepare_async(QsimTemplateService *self, const gchar *vm_name, gboolean force,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;

	g_task_set_source_tag(task, qsim_template_service_prepare_async);
	switch (qsim_template_service_start_build(self, vm_name, force, 0, task, &error)) {
	case BUILD_STARTED:
		g_task_set_task_data(task, GINT_TO_POINTER(TRUE), NULL);
		return; /* the build returns the task */
	case BUILD_NOT_NEEDED:
		g_task_return_boolean(task, TRUE);
		return;
	case BUILD_ELSEWHERE:
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "the template of %s is being built by another process; "
		                        "try again when it is done",
		                        vm_name);
		return;
	case BUILD_FAILED:
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
}

gboolean
qsim_template_service_prepare_finish(QsimTemplateService *self, GAsyncResult *result,
                                     gboolean *out_built, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	if (out_built != NULL)
		*out_built = g_task_get_task_data(G_TASK(result)) != NULL;
	return g_task_propagate_boolean(G_TASK(result), error);
}

guint
qsim_template_service_get_n_builds(QsimTemplateService *self)
{
	g_return_val_if_fail(QSIM_IS_TEMPLATE_SERVICE(self), 0);
	return self->n_slot_builds;
}

static void
qsim_template_service_dispose(GObject *object)
{
	QsimTemplateService *self = QSIM_TEMPLATE_SERVICE(object);

	qsim_template_service_disconnect(self);
	G_OBJECT_CLASS(qsim_template_service_parent_class)->dispose(object);
}

static void
qsim_template_service_finalize(GObject *object)
{
	QsimTemplateService *self = QSIM_TEMPLATE_SERVICE(object);

	g_clear_object(&self->store);
	g_clear_object(&self->config);
	g_clear_pointer(&self->building, g_hash_table_unref);
	g_clear_object(&self->cancellable);
	g_free(self->host);
	G_OBJECT_CLASS(qsim_template_service_parent_class)->finalize(object);
}

static void
qsim_template_service_class_init(QsimTemplateServiceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_template_service_dispose;
	object_class->finalize = qsim_template_service_finalize;
	signals[SIGNAL_BUILD_FINISHED] =
	    g_signal_new("build-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
}

static void
qsim_template_service_init(QsimTemplateService *self)
{
	self->building = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->cancellable = g_cancellable_new();
}

QsimTemplateService *
qsim_template_service_new(QsimConfig *config, QsimStore *store)
{
	QsimTemplateService *self = g_object_new(QSIM_TYPE_TEMPLATE_SERVICE, NULL);

	self->config = g_object_ref(config);
	self->store = g_object_ref(store);
	self->host = g_strdup(qsim_host_id_get());
	return self;
}
