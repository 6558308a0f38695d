#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-catalog.h"
#include "store/qsim-store-hosts.h"

/* After a hand-off the refill waits this long: the restore would compete for the CPU
 * with the job's fix-up and first command, the moment the pool exists to make fast. */
#define QSIM_WARM_POOL_REFILL_DELAY_MS 500
/* object data on a QsimWarmVm: its slot in the store (gint64 *) */
#define SLOT_KEY "qsim-warm-pool-slot"

typedef struct {
	guint wanted; /* WARM_POOL_SIZE of its .conf, as last seen */
	guint failures;
	gint64 not_before_us;
} WarmImage;

struct _QsimWarmPool {
	GObject parent_instance;
	QsimConfig *config;
	QsimWarmPoolSlotsFunc slots_in_use;
	gpointer slots_data;
	gchar *run_root;
	GPtrArray *vms;     /* (element-type QsimWarmVm): starting and parked */
	GHashTable *images; /* VM name -> WarmImage */
	guint n_dying;      /* destroyed, QEMU not gone yet: they still hold a slot */
	guint tick_id;
	guint refill_id;
	gboolean started;
	gboolean stopping;
	GTask *stop_task;
	gchar *described;
	QsimStore *store;  /* (nullable): the slot table; without it only local counts */
	gchar *owner;      /* the slots' owner: this process's builder id */
	gboolean yielding; /* a request waits for a slot: no refill takes one meanwhile */
};

G_DEFINE_TYPE(QsimWarmPool, qsim_warm_pool, G_TYPE_OBJECT)

enum { SIGNAL_SLOT_FREED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

/* Frees @w's slot in the store, if it holds one and it is still a warm VM's (a
 * request that took the VM over owns it now). Only once its QEMU is gone. */
static void
qsim_warm_pool_release_slot(QsimWarmPool *self, QsimWarmVm *w)
{
	gint64 *id = g_object_steal_data(G_OBJECT(w), SLOT_KEY);
	g_autoptr(GError) error = NULL;
	gboolean released = FALSE;

	if (id == NULL)
		return;
	if (self->store != NULL &&
	    !qsim_store_release_slot(self->store, *id, QSIM_VM_SLOT_WARM, &released, &error))
		g_warning("warm pool: cannot free the VM slot of a %s warm VM: %s",
		          qsim_warm_vm_get_vm_name(w), error->message);
	g_free(id);
	if (released)
		g_signal_emit(self, signals[SIGNAL_SLOT_FREED], 0);
}

void
qsim_warm_pool_set_store(QsimWarmPool *self, QsimStore *store, const gchar *owner)
{
	g_return_if_fail(QSIM_IS_WARM_POOL(self));
	g_set_object(&self->store, store);
	g_free(self->owner);
	self->owner = g_strdup(owner);
}

static void qsim_warm_pool_refill(QsimWarmPool *self);

static WarmImage *
qsim_warm_pool_image(QsimWarmPool *self, const gchar *vm_name)
{
	WarmImage *img = g_hash_table_lookup(self->images, vm_name);

	if (img == NULL) {
		img = g_new0(WarmImage, 1);
		g_hash_table_insert(self->images, g_strdup(vm_name), img);
	}
	return img;
}

guint
qsim_warm_pool_get_counts(QsimWarmPool *self, const gchar *vm_name, guint *n_parked,
                          guint *n_starting)
{
	guint parked = 0;
	guint starting = 0;

	for (guint i = 0; i < self->vms->len; i++) {
		QsimWarmVm *w = g_ptr_array_index(self->vms, i);

		if (vm_name != NULL && g_strcmp0(qsim_warm_vm_get_vm_name(w), vm_name) != 0)
			continue;
		if (qsim_warm_vm_get_state(w) == QSIM_WARM_VM_PARKED)
			parked++;
		else
			starting++;
	}
	if (n_parked != NULL)
		*n_parked = parked;
	if (n_starting != NULL)
		*n_starting = starting;
	return parked + starting;
}

gchar *
qsim_warm_pool_describe(QsimWarmPool *self)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GList) names =
	    g_list_sort(g_hash_table_get_keys(self->images), (GCompareFunc)g_strcmp0);

	for (GList *l = names; l != NULL; l = l->next) {
		WarmImage *img = g_hash_table_lookup(self->images, l->data);
		guint parked = 0;

		if (qsim_warm_pool_get_counts(self, l->data, &parked, NULL) == 0 &&
		    img->wanted == 0)
			continue;
		g_string_append_printf(out, "%s%s %u/%u", out->len > 0 ? ", " : "",
		                       (const gchar *)l->data, parked, img->wanted);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* logs the pool's size per VM whenever it changed */
static void
qsim_warm_pool_log(QsimWarmPool *self)
{
	g_autofree gchar *now = qsim_warm_pool_describe(self);

	if (g_strcmp0(now, self->described) == 0)
		return;
	g_info("warm pool (parked/wanted): %s", now[0] != '\0' ? now : "empty");
	g_free(self->described);
	self->described = g_steal_pointer(&now);
}

static void
qsim_warm_pool_maybe_stopped(QsimWarmPool *self)
{
	g_autoptr(GTask) task = NULL;

	if (self->stop_task == NULL || self->n_dying > 0 || self->vms->len > 0)
		return;
	task = g_steal_pointer(&self->stop_task);
	g_info("warm pool stopped: no warm VM left");
	g_task_return_boolean(task, TRUE);
}

static void
qsim_warm_pool_destroyed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmPool) self = QSIM_WARM_POOL(user_data);

	qsim_warm_vm_destroy_finish(QSIM_WARM_VM(source), res);
	qsim_warm_pool_release_slot(self, QSIM_WARM_VM(source));
	self->n_dying--;
	qsim_warm_pool_maybe_stopped(self);
	qsim_warm_pool_refill_soon(self);
}

/* Takes @w out of the pool and shuts it down; its slot is free once QEMU is gone. */
static void
qsim_warm_pool_evict(QsimWarmPool *self, QsimWarmVm *w, const gchar *why)
{
	g_autoptr(QsimWarmVm) keep = g_object_ref(w);

	g_info("warm pool: destroying a %s warm VM of %s: %s",
	       qsim_warm_vm_get_state(w) == QSIM_WARM_VM_PARKED ? "parked" : "starting",
	       qsim_warm_vm_get_vm_name(w), why);
	g_signal_handlers_disconnect_by_data(w, self);
	g_ptr_array_remove(self->vms, w);
	self->n_dying++;
	qsim_warm_vm_destroy_async(w, qsim_warm_pool_destroyed_cb, g_object_ref(self));
	qsim_warm_pool_log(self);
}

static void
qsim_warm_pool_died_cb(QsimWarmVm *w, gpointer user_data)
{
	qsim_warm_pool_evict(QSIM_WARM_POOL(user_data), w, "its QEMU died");
}

static void
qsim_warm_pool_started_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimWarmPool) self = QSIM_WARM_POOL(user_data);
	QsimWarmVm *w = QSIM_WARM_VM(source);
	g_autoptr(GError) error = NULL;
	WarmImage *img = qsim_warm_pool_image(self, qsim_warm_vm_get_vm_name(w));
	gboolean ok = qsim_warm_vm_start_finish(w, res, &error);
	guint backoff_ms;

	if (!g_ptr_array_find(self->vms, w, NULL))
		return; /* evicted meanwhile */
	if (ok) {
		img->failures = 0;
		g_info("warm pool: a VM of %s is parked (QEMU pid %d)", qsim_warm_vm_get_vm_name(w),
		       (gint)qsim_warm_vm_get_pid(w));
		qsim_warm_pool_log(self);
		qsim_warm_pool_refill_soon(self);
		return;
	}
	img->failures++;
	backoff_ms = QSIM_WARM_POOL_BACKOFF_MIN_MS << MIN(img->failures - 1, 10);
	backoff_ms = MIN(backoff_ms, QSIM_WARM_POOL_BACKOFF_MAX_MS);
	img->not_before_us = g_get_monotonic_time() + (gint64)backoff_ms * 1000;
	g_warning("warm pool: cannot warm a VM of %s (failure %u, next try in %u s): %s",
	          qsim_warm_vm_get_vm_name(w), img->failures, backoff_ms / 1000, error->message);
	qsim_warm_pool_evict(self, w, "its start failed");
}

/* slots held now: jobs and builds of this process, warm VMs, QEMUs on their way out */
static guint
qsim_warm_pool_slots_taken(QsimWarmPool *self)
{
	guint outside = self->slots_in_use != NULL ? self->slots_in_use(self->slots_data) : 0;

	return outside + self->vms->len + self->n_dying;
}

static void
qsim_warm_pool_start_one(QsimWarmPool *self, QsimVmConfig *vmc, QsimTemplate *tpl)
{
	g_autoptr(QsimWarmVm) w = NULL;
	g_autoptr(QsimVmConfig) copy = vmc;
	g_autoptr(GError) error = NULL;
	gint64 slot = 0;

	/* the slot first, in the transaction that decides: no free slot, no QEMU */
	if (self->store != NULL) {
		if (!qsim_store_claim_slot(self->store, self->owner, QSIM_VM_SLOT_WARM, vmc->name,
		                           qsim_config_get_max_concurrent_vms(self->config),
		                           qsim_config_get_max_vms_per_host(self->config), &slot,
		                           &error)) {
			g_warning("warm pool: cannot claim a VM slot: %s", error->message);
			return;
		}
		if (slot == 0)
			return; /* every slot is taken, by this or another process */
	}
	w = qsim_warm_vm_new(g_steal_pointer(&copy), tpl, self->run_root,
	                     qsim_config_get_qemu(self->config),
	                     qsim_config_get_qemu_img(self->config));
	if (slot != 0)
		g_object_set_data_full(G_OBJECT(w), SLOT_KEY, g_memdup2(&slot, sizeof(slot)),
		                       g_free);
	g_signal_connect_object(w, "died", G_CALLBACK(qsim_warm_pool_died_cb), self, 0);
	g_ptr_array_add(self->vms, g_object_ref(w));
	g_debug("warm pool: restoring a VM of %s from %s", qsim_warm_vm_get_vm_name(w),
	        qsim_template_get_dir(tpl));
	qsim_warm_vm_start_async(w, qsim_warm_pool_started_cb, g_object_ref(self));
}

/* One VM's share of a refill pass: drain what is stale, start one more if it fits. */
static void
qsim_warm_pool_refill_image(QsimWarmPool *self, QsimVmConfig *vmc_owned)
{
	g_autoptr(QsimVmConfig) vmc = vmc_owned;
	WarmImage *img = qsim_warm_pool_image(self, vmc->name);
	g_autoptr(QsimTemplate) tpl =
	    qsim_template_new(qsim_config_get_state_dir(self->config), vmc->name);
	g_autofree gchar *reason = NULL;
	guint n = 0;
	guint starting = 0;

	img->wanted = vmc->warm_pool_size;
	for (guint i = self->vms->len; i > 0; i--) {
		QsimWarmVm *w = g_ptr_array_index(self->vms, i - 1);

		if (g_strcmp0(qsim_warm_vm_get_vm_name(w), vmc->name) != 0)
			continue;
		if (img->wanted == 0)
			qsim_warm_pool_evict(self, w, "WARM_POOL_SIZE is 0");
		else if (!qsim_warm_vm_is_current(w, vmc))
			qsim_warm_pool_evict(self, w, "its template is stale or was rebuilt");
	}
	n = qsim_warm_pool_get_counts(self, vmc->name, NULL, &starting);
	/* one restore at a time per VM: they are CPU-heavy under TCG */
	if (n >= img->wanted || starting > 0 || g_get_monotonic_time() < img->not_before_us)
		return;
	if (self->vms->len >= qsim_config_get_warm_pool_size(self->config) ||
	    qsim_warm_pool_slots_taken(self) >= qsim_config_get_max_concurrent_vms(self->config))
		return;
	qsim_template_set_qemu_binary(tpl, qsim_config_get_qemu(self->config));
	qsim_template_set_qemu_img_binary(tpl, qsim_config_get_qemu_img(self->config));
	qsim_accel_apply_template(tpl, vmc);
	if (qsim_template_check(tpl, vmc, &reason) != QSIM_TEMPLATE_STATE_READY)
		return;
	qsim_warm_pool_start_one(self, g_steal_pointer(&vmc), tpl);
}

static void
qsim_warm_pool_refill(QsimWarmPool *self)
{
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GError) error = NULL;

	if (!self->started || self->stopping || qsim_config_get_warm_pool_size(self->config) == 0)
		return;
	/* a freed slot goes to the waiting request first, or the two would take turns */
	if (self->yielding)
		return;
	entries = qsim_vm_catalog_list(qsim_config_get_vm_images_dir(self->config),
	                               qsim_config_get_vm_config_dir(self->config), &error);
	if (entries == NULL) {
		g_debug("warm pool: %s", error->message);
		return;
	}
	for (guint i = 0; i < entries->len; i++) {
		const QsimVmCatalogEntry *e = g_ptr_array_index(entries, i);
		QsimVmConfig *vmc;

		if (!e->valid || e->config_path == NULL)
			continue;
		vmc =
		    qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
		                        qsim_config_get_vm_config_dir(self->config), e->name, NULL);
		if (vmc == NULL)
			continue;
		g_hash_table_add(seen, e->name);
		qsim_warm_pool_refill_image(self, vmc);
	}
	/* a VM whose config went away (or broke) keeps no warm VM */
	for (guint i = self->vms->len; i > 0; i--) {
		QsimWarmVm *w = g_ptr_array_index(self->vms, i - 1);

		if (!g_hash_table_contains(seen, qsim_warm_vm_get_vm_name(w)))
			qsim_warm_pool_evict(self, w, "its VM config is gone or invalid");
	}
	qsim_warm_pool_log(self);
}

static gboolean
qsim_warm_pool_refill_cb(gpointer user_data)
{
	QsimWarmPool *self = QSIM_WARM_POOL(user_data);

	self->refill_id = 0;
	qsim_warm_pool_refill(self);
	return G_SOURCE_REMOVE;
}

static void
qsim_warm_pool_refill_later(QsimWarmPool *self, guint delay_ms)
{
	if (self->refill_id != 0 || !self->started || self->stopping)
		return;
	self->refill_id = g_timeout_add(delay_ms, qsim_warm_pool_refill_cb, self);
}

void
qsim_warm_pool_refill_soon(QsimWarmPool *self)
{
	qsim_warm_pool_refill_later(self, 0);
}

static gboolean
qsim_warm_pool_tick_cb(gpointer user_data)
{
	qsim_warm_pool_refill(QSIM_WARM_POOL(user_data));
	return G_SOURCE_CONTINUE;
}

void
qsim_warm_pool_start(QsimWarmPool *self)
{
	g_return_if_fail(!self->started);
	self->started = TRUE;
	if (qsim_config_get_warm_pool_size(self->config) == 0)
		return;
	g_info("warm pool: up to %u VMs (WARM_POOL_SIZE), within MAX_CONCURRENT_VMS %u",
	       qsim_config_get_warm_pool_size(self->config),
	       qsim_config_get_max_concurrent_vms(self->config));
	self->tick_id = g_timeout_add(QSIM_WARM_POOL_TICK_MS, qsim_warm_pool_tick_cb, self);
	qsim_warm_pool_refill_soon(self);
}

/* A VM handed to request @uuid is that request's QEMU: its slot becomes the
 * request's (the request's own is freed), so one QEMU holds one slot. */
static void
qsim_warm_pool_hand_over_slot(QsimWarmPool *self, QsimWarmVm *w, const gchar *uuid,
                              const gchar *agent_id)
{
	g_autofree gint64 *id = NULL;
	g_autoptr(GError) error = NULL;
	gboolean adopted = FALSE;

	if (uuid == NULL || self->store == NULL)
		return; /* stays with the VM: freed when its QEMU is gone */
	id = g_object_steal_data(G_OBJECT(w), SLOT_KEY);
	if (id == NULL)
		return;
	if (!qsim_store_adopt_slot(self->store, *id, uuid, agent_id, &adopted, &error))
		g_warning("warm pool: cannot hand the VM slot over to %s: %s", uuid,
		          error->message);
	if (adopted)
		return;
	/* the request keeps its own slot; the warm one must not leak */
	g_object_set_data_full(G_OBJECT(w), SLOT_KEY, g_memdup2(id, sizeof(*id)), g_free);
	qsim_warm_pool_release_slot(self, w);
}

QsimWarmVm *
qsim_warm_pool_take(QsimWarmPool *self, const QsimVmConfig *config)
{
	return qsim_warm_pool_take_for(self, config, NULL, NULL);
}

QsimWarmVm *
qsim_warm_pool_take_for(QsimWarmPool *self, const QsimVmConfig *config, const gchar *uuid,
                        const gchar *agent_id)
{
	guint i = 0;

	while (i < self->vms->len) {
		QsimWarmVm *w = g_ptr_array_index(self->vms, i);

		if (qsim_warm_vm_get_state(w) != QSIM_WARM_VM_PARKED ||
		    g_strcmp0(qsim_warm_vm_get_vm_name(w), config->name) != 0) {
			i++;
			continue;
		}
		if (!qsim_warm_vm_is_current(w, config)) {
			/* removes it from the array: the next one is at @i now */
			qsim_warm_pool_evict(self, w, "its template is stale or was rebuilt");
			continue;
		}
		g_signal_handlers_disconnect_by_data(w, self);
		/* the array's reference goes to the caller */
		w = g_ptr_array_steal_index(self->vms, i);
		qsim_warm_pool_hand_over_slot(self, w, uuid, agent_id);
		qsim_warm_pool_log(self);
		/* a refill due now would compete with this hand-off: later instead */
		g_clear_handle_id(&self->refill_id, g_source_remove);
		qsim_warm_pool_refill_later(self, QSIM_WARM_POOL_REFILL_DELAY_MS);
		return w;
	}
	return NULL;
}

guint
qsim_warm_pool_trim(QsimWarmPool *self)
{
	guint max = qsim_config_get_max_concurrent_vms(self->config);
	guint n = 0;

	while (self->vms->len > 0 && qsim_warm_pool_slots_taken(self) - self->n_dying > max) {
		QsimWarmVm *victim = g_ptr_array_index(self->vms, self->vms->len - 1);

		/* a restore in progress is worth less than a parked VM */
		for (guint i = 0; i < self->vms->len; i++) {
			QsimWarmVm *w = g_ptr_array_index(self->vms, i);

			if (qsim_warm_vm_get_state(w) != QSIM_WARM_VM_PARKED) {
				victim = w;
				break;
			}
		}
		qsim_warm_pool_evict(self, victim, "a job needs its slot (MAX_CONCURRENT_VMS)");
		n++;
	}
	return n;
}

gboolean
qsim_warm_pool_yield(QsimWarmPool *self, const gchar *keep_vm_name)
{
	QsimWarmVm *victim = NULL;

	self->yielding = TRUE;
	/* one slot on its way back is enough: the claim retries once it is free */
	if (self->n_dying > 0)
		return TRUE;
	for (guint i = 0; i < self->vms->len; i++) {
		QsimWarmVm *w = g_ptr_array_index(self->vms, i);

		/* a restore in progress is worth less than a parked VM, and a VM the
		 * waiting request could take is worth the most */
		if (qsim_warm_vm_get_state(w) != QSIM_WARM_VM_PARKED) {
			victim = w;
			break;
		}
		if (victim == NULL ||
		    g_strcmp0(qsim_warm_vm_get_vm_name(victim), keep_vm_name) == 0)
			victim = w;
	}
	if (victim == NULL)
		return FALSE;
	qsim_warm_pool_evict(self, victim, "a request needs its slot (MAX_CONCURRENT_VMS)");
	return TRUE;
}

void
qsim_warm_pool_unyield(QsimWarmPool *self)
{
	g_return_if_fail(QSIM_IS_WARM_POOL(self));
	if (!self->yielding)
		return;
	self->yielding = FALSE;
	qsim_warm_pool_refill_soon(self);
}

void
qsim_warm_pool_stop_async(QsimWarmPool *self, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);

	g_task_set_source_tag(task, qsim_warm_pool_stop_async);
	if (self->stop_task != NULL) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "the warm pool is already stopping");
		return;
	}
	self->stopping = TRUE;
	g_clear_handle_id(&self->tick_id, g_source_remove);
	g_clear_handle_id(&self->refill_id, g_source_remove);
	self->stop_task = g_steal_pointer(&task);
	while (self->vms->len > 0)
		qsim_warm_pool_evict(self, g_ptr_array_index(self->vms, 0), "shutting down");
	qsim_warm_pool_maybe_stopped(self);
}

gboolean
qsim_warm_pool_stop_finish(QsimWarmPool *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

void
qsim_warm_pool_clear(QsimWarmPool *self)
{
	self->stopping = TRUE;
	self->slots_in_use = NULL;
	g_clear_handle_id(&self->tick_id, g_source_remove);
	g_clear_handle_id(&self->refill_id, g_source_remove);
	for (guint i = 0; i < self->vms->len; i++)
		g_signal_handlers_disconnect_by_data(g_ptr_array_index(self->vms, i), self);
	/* each warm VM's dispose kills its QEMU; then its slot is free */
	while (self->vms->len > 0) {
		g_autoptr(QsimWarmVm) w = g_ptr_array_steal_index(self->vms, self->vms->len - 1);

		g_object_run_dispose(G_OBJECT(w));
		qsim_warm_pool_release_slot(self, w);
	}
}

static void
qsim_warm_pool_dispose(GObject *object)
{
	QsimWarmPool *self = QSIM_WARM_POOL(object);

	if (self->vms != NULL) {
		qsim_warm_pool_clear(self);
		g_clear_pointer(&self->vms, g_ptr_array_unref);
	}
	G_OBJECT_CLASS(qsim_warm_pool_parent_class)->dispose(object);
}

static void
qsim_warm_pool_finalize(GObject *object)
{
	QsimWarmPool *self = QSIM_WARM_POOL(object);

	g_clear_pointer(&self->images, g_hash_table_unref);
	g_clear_object(&self->config);
	g_clear_object(&self->store);
	g_free(self->owner);
	g_free(self->run_root);
	g_free(self->described);
	G_OBJECT_CLASS(qsim_warm_pool_parent_class)->finalize(object);
}

static void
qsim_warm_pool_class_init(QsimWarmPoolClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_warm_pool_dispose;
	object_class->finalize = qsim_warm_pool_finalize;
	/* a warm VM's QEMU is gone and its slot free: a claim may succeed now */
	signals[SIGNAL_SLOT_FREED] =
	    g_signal_new("slot-freed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                 NULL, G_TYPE_NONE, 0);
}

static void
qsim_warm_pool_init(QsimWarmPool *self)
{
	self->vms = g_ptr_array_new_with_free_func(g_object_unref);
	self->images = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

QsimWarmPool *
qsim_warm_pool_new(QsimConfig *config, QsimWarmPoolSlotsFunc slots_in_use, gpointer user_data)
{
	QsimWarmPool *self = g_object_new(QSIM_TYPE_WARM_POOL, NULL);

	self->config = g_object_ref(config);
	self->slots_in_use = slots_in_use;
	self->slots_data = user_data;
	self->run_root = qsim_layout_dup_warm_root(qsim_config_get_run_dir(config));
	return self;
}
