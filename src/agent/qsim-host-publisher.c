#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <glib/gstdio.h>

#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-host-publisher.h"
#include "common/qsim-accel-mode.h"
#include "common/qsim-config-entry.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-catalog.h"
#include "store/qsim-store-hosts.h"

struct _QsimHostPublisher {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store;
	QsimTemplateService *templates;
	QsimWarmPool *warm_pool;
	gchar **agent_ids;
	guint timer_id;
	gboolean warned;
};

G_DEFINE_TYPE(QsimHostPublisher, qsim_host_publisher, G_TYPE_OBJECT)

guint
qsim_host_publisher_interval_ms(QsimConfig *config)
{
	guint lease_ms = qsim_config_get_lease_seconds(config) * 1000;

	return CLAMP(lease_ms / 3, 200, QSIM_HOST_PUBLISHER_INTERVAL_MS);
}

/* "kvm" or "tcg" for VMs that follow the host's ACCEL; NULL before the probe */
static const gchar *
host_accel(QsimHostPublisher *self)
{
	QsimAccelResolver *resolver = qsim_accel_resolver_get_default();
	const QsimAccelVerdict *v =
	    resolver != NULL ? qsim_accel_resolver_get_verdict(resolver) : NULL;

	switch (qsim_config_get_accel(self->config)) {
	case QSIM_ACCEL_MODE_KVM:
		return "kvm";
	case QSIM_ACCEL_MODE_TCG:
		return "tcg";
	default:
		return v != NULL ? (v->kvm ? "kvm" : "tcg") : NULL;
	}
}

static gchar *
basename_or_null(const gchar *path)
{
	return path != NULL ? g_path_get_basename(path) : NULL;
}

/* what GET /vms used to derive from the files itself: the row says it now */
static void
refresh_template(QsimHostPublisher *self, const QsimVmCatalogEntry *e, QsimVmConfig *vmc)
{
	g_autoptr(QsimTemplate) tpl =
	    qsim_template_new(qsim_config_get_state_dir(self->config), e->name);
	g_autoptr(QsimTemplateRecord) row =
	    qsim_store_get_template(self->store, e->name, qsim_host_id_get(), NULL);
	g_autofree gchar *reason = NULL;
	g_autoptr(GError) error = NULL;
	QsimTemplateState live = QSIM_TEMPLATE_STATE_NONE;
	QsimTemplateRecordState want;
	gboolean row_building;

	qsim_template_set_qemu_binary(tpl, qsim_config_get_qemu(self->config));
	qsim_template_set_qemu_img_binary(tpl, qsim_config_get_qemu_img(self->config));
	if (vmc != NULL) {
		qsim_accel_apply_template(tpl, vmc);
		live = qsim_template_check(tpl, vmc, &reason);
	} else if (g_file_test(qsim_template_get_dir(tpl), G_FILE_TEST_IS_DIR)) {
		/* the VM's config broke: whatever was built from it cannot be used */
		live = QSIM_TEMPLATE_STATE_STALE;
		reason = g_strdup(e->error);
	}
	row_building = row != NULL && row->state == QSIM_TEMPLATE_RECORD_BUILDING &&
	               row->build_started_at >
	                   qsim_store_now_ms(self->store) - QSIM_STORE_TEMPLATE_BUILD_STALE_MS;
	/* a build (ours, or its recovery's business) owns the row meanwhile */
	if (row_building || qsim_template_is_building(tpl))
		return;
	if (live == QSIM_TEMPLATE_STATE_READY) {
		want = QSIM_TEMPLATE_RECORD_READY;
		g_clear_pointer(&reason, g_free);
	} else if (row != NULL && row->state == QSIM_TEMPLATE_RECORD_FAILED) {
		return; /* the last build failed: its reason stays until a build or ready files */
	} else if (live == QSIM_TEMPLATE_STATE_STALE) {
		want = QSIM_TEMPLATE_RECORD_STALE;
	} else {
		want = QSIM_TEMPLATE_RECORD_NONE;
		g_clear_pointer(&reason, g_free);
	}
	if (row == NULL && want == QSIM_TEMPLATE_RECORD_NONE)
		return; /* nothing to say: no row is "none" */
	if (row != NULL && row->state == want && g_strcmp0(row->reason, reason) == 0)
		return;
	if (!qsim_template_service_record_state(self->templates, tpl, want, reason, &error))
		g_warning("fast start: cannot record the template of %s: %s", e->name,
		          error->message);
}

static QsimHostVm *
describe_vm(QsimHostPublisher *self, const QsimVmCatalogEntry *e)
{
	QsimHostVm *v = qsim_host_vm_new(qsim_host_id_get(), e->name);
	g_autoptr(QsimVmConfig) vmc = NULL;
	GStatBuf st;

	v->valid = e->valid;
	v->error = g_strdup(e->error);
	v->image = basename_or_null(e->image_path);
	v->format = g_strdup(e->format);
	v->size_bytes = e->size_bytes;
	v->config = basename_or_null(e->config_path);
	if (e->image_path != NULL && g_stat(e->image_path, &st) == 0)
		v->image_id = g_strdup_printf(
		    "%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, (gint64)st.st_size,
		    (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000);
	if (e->valid)
		vmc =
		    qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
		                        qsim_config_get_vm_config_dir(self->config), e->name, NULL);
	if (vmc != NULL) {
		QsimAccelMode mode = vmc->accel;

		v->config_hash = g_strdup(qsim_vm_config_hash(vmc));
		v->warm_size = vmc->warm_pool_size;
		if (mode != QSIM_ACCEL_MODE_INHERIT) {
			v->accel_source = g_strdup_printf("%s.conf", e->name);
		} else {
			mode = qsim_config_get_accel(self->config);
			v->accel_source = g_strdup(qsim_config_source_to_string(
			    qsim_config_get_source(self->config, "ACCEL")));
		}
		v->accel_mode = g_strdup(qsim_accel_mode_to_string(mode));
	}
	if (self->warm_pool != NULL)
		qsim_warm_pool_get_counts(self->warm_pool, e->name, &v->warm_parked,
		                          &v->warm_starting);
	refresh_template(self, e, vmc);
	return v;
}

gboolean
qsim_host_publisher_publish(QsimHostPublisher *self, GError **error)
{
	g_autoptr(QsimHostRecord) host = qsim_host_record_new(qsim_host_id_get());
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GPtrArray) vms = NULL;
	g_autoptr(GError) local = NULL;
	guint interval = qsim_host_publisher_interval_ms(self->config);

	g_return_val_if_fail(QSIM_IS_HOST_PUBLISHER(self), FALSE);
	host->version = g_strdup(PACKAGE_VERSION);
	host->accel = g_strdup(host_accel(self));
	host->max_vms = qsim_config_get_max_vms_per_host(self->config);
	host->max_total = qsim_config_get_max_concurrent_vms(self->config);
	/* a host is stale once a lease could have expired and a few beats were missed */
	host->stale_after_ms =
	    MAX((gint64)qsim_config_get_lease_seconds(self->config) * 1000, 3 * (gint64)interval);
	g_strfreev(host->agent_ids);
	host->agent_ids = g_strdupv(self->agent_ids);
	entries = qsim_vm_catalog_list(qsim_config_get_vm_images_dir(self->config),
	                               qsim_config_get_vm_config_dir(self->config), &local);
	if (entries != NULL) {
		vms = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
		for (guint i = 0; i < entries->len; i++)
			g_ptr_array_add(vms, describe_vm(self, g_ptr_array_index(entries, i)));
	} else if (!self->warned) {
		/* no images here: this host runs nothing, and says so with an empty list */
		g_warning("cannot list this host's VMs: %s", local->message);
		self->warned = TRUE;
		vms = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	}
	return qsim_store_publish_host(self->store, host, vms, error);
}

void
qsim_host_publisher_refresh_templates(QsimHostPublisher *self)
{
	g_autoptr(GPtrArray) entries = NULL;

	g_return_if_fail(QSIM_IS_HOST_PUBLISHER(self));
	entries = qsim_vm_catalog_list(qsim_config_get_vm_images_dir(self->config),
	                               qsim_config_get_vm_config_dir(self->config), NULL);
	for (guint i = 0; entries != NULL && i < entries->len; i++) {
		const QsimVmCatalogEntry *e = g_ptr_array_index(entries, i);
		g_autoptr(QsimVmConfig) vmc = NULL;

		if (e->valid)
			vmc = qsim_vm_config_load(qsim_config_get_vm_images_dir(self->config),
			                          qsim_config_get_vm_config_dir(self->config),
			                          e->name, NULL);
		refresh_template(self, e, vmc);
	}
}

static gboolean
qsim_host_publisher_tick_cb(gpointer user_data)
{
	QsimHostPublisher *self = QSIM_HOST_PUBLISHER(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_host_publisher_publish(self, &error))
		g_warning("cannot publish this host: %s", error->message);
	return G_SOURCE_CONTINUE;
}

void
qsim_host_publisher_start(QsimHostPublisher *self)
{
	g_return_if_fail(QSIM_IS_HOST_PUBLISHER(self));
	if (self->timer_id != 0)
		return;
	self->timer_id = g_timeout_add(qsim_host_publisher_interval_ms(self->config),
	                               qsim_host_publisher_tick_cb, self);
}

void
qsim_host_publisher_stop(QsimHostPublisher *self)
{
	g_return_if_fail(QSIM_IS_HOST_PUBLISHER(self));
	g_clear_handle_id(&self->timer_id, g_source_remove);
}

static void
qsim_host_publisher_finalize(GObject *object)
{
	QsimHostPublisher *self = QSIM_HOST_PUBLISHER(object);

	g_clear_handle_id(&self->timer_id, g_source_remove);
	g_clear_object(&self->config);
	g_clear_object(&self->store);
	g_clear_object(&self->templates);
	g_clear_object(&self->warm_pool);
	g_strfreev(self->agent_ids);
	G_OBJECT_CLASS(qsim_host_publisher_parent_class)->finalize(object);
}

static void
qsim_host_publisher_class_init(QsimHostPublisherClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_host_publisher_finalize;
}

static void
qsim_host_publisher_init(QsimHostPublisher *self)
{
}

QsimHostPublisher *
qsim_host_publisher_new(QsimConfig *config, QsimStore *store, QsimTemplateService *templates,
                        QsimWarmPool *warm_pool, const gchar *const *agent_ids)
{
	QsimHostPublisher *self = g_object_new(QSIM_TYPE_HOST_PUBLISHER, NULL);

	self->config = g_object_ref(config);
	self->store = g_object_ref(store);
	self->templates = g_object_ref(templates);
	self->warm_pool = warm_pool != NULL ? g_object_ref(warm_pool) : NULL;
	self->agent_ids = g_strdupv((gchar **)agent_ids);
	return self;
}
