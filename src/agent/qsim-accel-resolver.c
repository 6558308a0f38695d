#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "qsim-accel-resolver.h"
#include "vm/qsim-kvm-probe.h"

/* How often a process that waits for another's probe looks for its verdict. */
#define RESOLVER_WAIT_POLL_MS 100
/* Beyond the probe's own deadline, what waiting for another process's probe may cost. */
#define RESOLVER_WAIT_SLACK_MS 3000
#define RESOLVER_LOCK_FILE "kvm-probe.lock"

struct _QsimAccelResolver {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store; /* (nullable) without one nothing is cached across processes */
	QsimAccelMode mode;
	gchar *mode_origin; /* "ACCEL=auto (from default)" */
	QsimKvmProbeParams params;
	gchar *qemu;
	gchar *device;
	gchar *kernel;
	gchar *initrd;
	gchar *lock_path;
	guint console_timeout_ms;
	QsimAccelVerdict *verdict; /* (nullable) until prepared, or when ACCEL is not auto */
	gboolean prepared;
};

G_DEFINE_TYPE(QsimAccelResolver, qsim_accel_resolver, G_TYPE_OBJECT)

static QsimAccelResolver *default_resolver;

/* ---- the verdict ----------------------------------------------------------- */

/* Returns: (transfer full) (nullable): the store's verdict for this host if its key matches */
static QsimAccelVerdict *
resolver_lookup(QsimAccelResolver *self, const gchar *key)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;

	if (self->store == NULL)
		return NULL;
	v = qsim_store_get_accel_verdict(self->store, qsim_host_id_get(), &error);
	if (v == NULL) {
		if (!g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND))
			g_warning("cannot read the KVM probe's cached verdict: %s", error->message);
		return NULL;
	}
	if (g_strcmp0(v->cache_key, key) != 0)
		return NULL;
	return g_steal_pointer(&v);
}

static void
resolver_adopt(QsimAccelResolver *self, QsimAccelVerdict *verdict, const gchar *how)
{
	qsim_accel_verdict_free(self->verdict);
	self->verdict = verdict;
	self->prepared = TRUE;
	g_info("accelerator: %s (ACCEL=auto, %s: %s)", verdict->kvm ? "kvm" : "tcg", how,
	       verdict->reason);
}

typedef struct {
	gchar *key;
	gint lock_fd;
	guint poll_id;
	gint64 wait_deadline_us;
} PrepareData;

static void
prepare_data_free(PrepareData *d)
{
	g_clear_handle_id(&d->poll_id, g_source_remove);
	if (d->lock_fd >= 0) {
		flock(d->lock_fd, LOCK_UN);
		close(d->lock_fd);
	}
	g_free(d->key);
	g_free(d);
}

/* Returns: TRUE when this process now holds the host's probe lock */
static gboolean
resolver_try_lock(QsimAccelResolver *self, PrepareData *d)
{
	if (d->lock_fd < 0) {
		g_autofree gchar *dir = g_path_get_dirname(self->lock_path);

		if (g_mkdir_with_parents(dir, 0700) != 0)
			return TRUE; /* no lock to be had: probing twice is only slower */
		d->lock_fd =
		    g_open(self->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (d->lock_fd < 0)
			return TRUE;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return TRUE;
	return errno != EWOULDBLOCK;
}

static void
prepare_probe_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimAccelResolver *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	QsimAccelVerdict *v = qsim_kvm_probe_run_finish(res, &error);

	if (v == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (self->store != NULL && !qsim_store_put_accel_verdict(self->store, v, &error))
		g_warning("cannot record the KVM probe's verdict: %s", error->message);
	resolver_adopt(self, v, v->probe_ms > 0 ? "probed" : "checked");
	g_task_return_boolean(task, TRUE);
}

static void
prepare_probe(GTask *task)
{
	QsimAccelResolver *self = g_task_get_source_object(task);

	qsim_kvm_probe_run_async(&self->params, g_task_get_cancellable(task), prepare_probe_cb,
	                         g_object_ref(task));
}

static gboolean
prepare_poll_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	QsimAccelResolver *self = g_task_get_source_object(task);
	PrepareData *d = g_task_get_task_data(task);
	QsimAccelVerdict *v = resolver_lookup(self, d->key);

	if (v != NULL) {
		d->poll_id = 0;
		resolver_adopt(self, v, "probed by another process");
		g_task_return_boolean(task, TRUE);
		return G_SOURCE_REMOVE;
	}
	if (resolver_try_lock(self, d)) {
		d->poll_id = 0;
		/* the holder may have written its verdict just before it let go */
		v = resolver_lookup(self, d->key);
		if (v != NULL) {
			resolver_adopt(self, v, "probed by another process");
			g_task_return_boolean(task, TRUE);
		} else {
			prepare_probe(task);
		}
		return G_SOURCE_REMOVE;
	}
	if (g_get_monotonic_time() > d->wait_deadline_us) {
		d->poll_id = 0;
		/* not stored: the prober is alive (it holds the lock) and will record its own */
		resolver_adopt(self,
		               qsim_accel_verdict_new(qsim_host_id_get(), d->key, FALSE,
		                                      "another process's KVM probe did not finish "
		                                      "in time",
		                                      0, g_get_real_time() / 1000),
		               "waited");
		g_task_return_boolean(task, TRUE);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/**
 * qsim_accel_resolver_prepare_async:
 *
 * Establishes this host's verdict when ACCEL is auto: from the store if its cache key
 * still matches, else by running the probe (or waiting for another process on this host
 * that runs it). Costs at most the probe's deadline plus a little. With ACCEL=kvm or tcg
 * it completes at once.
 */
void
qsim_accel_resolver_prepare_async(QsimAccelResolver *self, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	PrepareData *d = g_new0(PrepareData, 1);
	QsimAccelVerdict *v;

	g_task_set_source_tag(task, qsim_accel_resolver_prepare_async);
	d->lock_fd = -1;
	g_task_set_task_data(task, d, (GDestroyNotify)prepare_data_free);
	if (self->mode != QSIM_ACCEL_MODE_AUTO) {
		self->prepared = TRUE;
		g_info("accelerator: %s (%s)", qsim_accel_mode_to_string(self->mode),
		       self->mode_origin);
		g_task_return_boolean(task, TRUE);
		return;
	}
	d->key = qsim_kvm_probe_cache_key(&self->params);
	v = resolver_lookup(self, d->key);
	if (v != NULL) {
		resolver_adopt(self, v, "cached");
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (resolver_try_lock(self, d)) {
		prepare_probe(task);
		return;
	}
	d->wait_deadline_us = g_get_monotonic_time() +
	                      ((gint64)self->params.timeout_ms + RESOLVER_WAIT_SLACK_MS) * 1000;
	d->poll_id = g_timeout_add_full(G_PRIORITY_DEFAULT, RESOLVER_WAIT_POLL_MS, prepare_poll_cb,
	                                g_object_ref(task), g_object_unref);
}

gboolean
qsim_accel_resolver_prepare_finish(QsimAccelResolver *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
prepare_sync_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **out = user_data;
	*out = g_object_ref(res);
}

/**
 * qsim_accel_resolver_prepare_sync:
 *
 * For one-shot commands (`qsimd status`, `qsimd run-vm`): runs the thread-default main
 * context until prepared.
 */
gboolean
qsim_accel_resolver_prepare_sync(QsimAccelResolver *self, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;
	GMainContext *ctx = g_main_context_get_thread_default();

	qsim_accel_resolver_prepare_async(self, NULL, prepare_sync_cb, &res);
	while (res == NULL)
		g_main_context_iteration(ctx, TRUE);
	return qsim_accel_resolver_prepare_finish(self, res, error);
}

/* Returns: (transfer none) (nullable): this host's probe verdict, once there is one */
const QsimAccelVerdict *
qsim_accel_resolver_get_verdict(QsimAccelResolver *self)
{
	g_return_val_if_fail(QSIM_IS_ACCEL_RESOLVER(self), NULL);
	return self->verdict;
}

/**
 * qsim_accel_resolver_choose:
 * @vm: (nullable): the VM's config; its ACCEL, when set, wins over the global one
 * @out_why: (out) (optional) (transfer full): one line for logs and the request's system
 *   log, e.g. "kvm (ACCEL=auto from default: KVM at /dev/kvm booted a test kernel in 0.41 s)"
 *
 * Returns: %TRUE for KVM, %FALSE for TCG
 */
gboolean
qsim_accel_resolver_choose(QsimAccelResolver *self, const QsimVmConfig *vm, gchar **out_why)
{
	QsimAccelMode mode = self->mode;
	g_autofree gchar *origin = g_strdup(self->mode_origin);
	gboolean kvm;
	g_autofree gchar *detail = NULL;

	if (vm != NULL && vm->accel != QSIM_ACCEL_MODE_INHERIT) {
		mode = vm->accel;
		g_free(origin);
		origin = g_strdup_printf("ACCEL=%s from %s.conf", qsim_accel_mode_to_string(mode),
		                         vm->name);
	}
	switch (mode) {
	case QSIM_ACCEL_MODE_KVM:
		kvm = TRUE;
		break;
	case QSIM_ACCEL_MODE_AUTO:
		if (self->verdict != NULL) {
			kvm = self->verdict->kvm;
			detail = g_strdup(self->verdict->reason);
		} else {
			kvm = FALSE;
			detail = g_strdup("no KVM probe has run");
		}
		break;
	case QSIM_ACCEL_MODE_TCG:
	case QSIM_ACCEL_MODE_INHERIT:
	default:
		kvm = FALSE;
		break;
	}
	if (out_why != NULL)
		*out_why = detail != NULL
		               ? g_strdup_printf("%s (%s: %s)", kvm ? "kvm" : "tcg", origin, detail)
		               : g_strdup_printf("%s (%s)", kvm ? "kvm" : "tcg", origin);
	return kvm;
}

/* Returns: (transfer full): the global choice with its reason, for `qsimd status` */
gchar *
qsim_accel_resolver_describe(QsimAccelResolver *self)
{
	g_autofree gchar *why = NULL;

	qsim_accel_resolver_choose(self, NULL, &why);
	return g_steal_pointer(&why);
}

/* ---- process default --------------------------------------------------------- */

/**
 * qsim_accel_resolver_set_default:
 * @resolver: (nullable): the resolver every VM of this process asks, once prepared
 */
void
qsim_accel_resolver_set_default(QsimAccelResolver *resolver)
{
	g_clear_object(&default_resolver);
	if (resolver != NULL)
		default_resolver = g_object_ref(resolver);
}

/* Returns: (transfer none) (nullable): the process's resolver */
QsimAccelResolver *
qsim_accel_resolver_get_default(void)
{
	return default_resolver;
}

/**
 * qsim_accel_choose:
 *
 * qsim_accel_resolver_choose() with the process's resolver; TCG when there is none
 * (unit tests, tools that never start a VM).
 */
gboolean
qsim_accel_choose(const QsimVmConfig *vm, gchar **out_why)
{
	if (default_resolver == NULL) {
		if (out_why != NULL)
			*out_why = g_strdup("tcg (no accelerator resolver in this process)");
		return FALSE;
	}
	return qsim_accel_resolver_choose(default_resolver, vm, out_why);
}

/* Returns: KVM_CONSOLE_TIMEOUT in ms for @vm, 0 (no watchdog) unless KVM is forced on it:
 * where the probe proved KVM, a silent console is the guest's own business (SeaBIOS and
 * many images print nothing on ttyS0) */
guint
qsim_accel_console_timeout_ms(const QsimVmConfig *vm)
{
	QsimAccelMode mode;

	if (default_resolver == NULL)
		return 0;
	mode =
	    vm != NULL && vm->accel != QSIM_ACCEL_MODE_INHERIT ? vm->accel : default_resolver->mode;
	return mode == QSIM_ACCEL_MODE_KVM ? default_resolver->console_timeout_ms : 0;
}

/**
 * qsim_accel_apply_vm:
 * @vm: a #QsimVm not yet started
 * @out_why: (out) (optional) (transfer full): the choice and its reason, one line
 *
 * Sets the accelerator the process's resolver chooses for @vm's config, and under a forced
 * ACCEL=kvm the silent-console limit.
 *
 * Returns: %TRUE for KVM
 */
gboolean
qsim_accel_apply_vm(QsimVm *vm, gchar **out_why)
{
	g_autofree gchar *why = NULL;
	gboolean kvm = qsim_accel_choose(qsim_vm_get_config(vm), &why);

	qsim_vm_set_accel(vm, kvm, why);
	qsim_vm_set_kvm_console_timeout(vm, qsim_accel_console_timeout_ms(qsim_vm_get_config(vm)));
	if (out_why != NULL)
		*out_why = g_steal_pointer(&why);
	return kvm;
}

/**
 * qsim_accel_apply_template:
 *
 * Tells @tpl the accelerator @vm runs under here, before it is checked or built: a
 * template made under the other one is stale.
 */
void
qsim_accel_apply_template(QsimTemplate *tpl, const QsimVmConfig *vm)
{
	g_autofree gchar *why = NULL;
	gboolean kvm = qsim_accel_choose(vm, &why);

	qsim_template_set_accel(tpl, kvm, why, qsim_accel_console_timeout_ms(vm));
}

/* ---- object ------------------------------------------------------------------- */

/* Test hooks, documented in docs/configuration.md: another KVM device or probe QEMU. */
static const gchar *
resolver_hook(const gchar *name)
{
	const gchar *v = g_getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/**
 * qsim_accel_resolver_new:
 * @config: the loaded configuration (ACCEL, QEMU, the probe's settings, STATE_DIR)
 * @store: (nullable): where verdicts are cached and shared; %NULL to probe uncached
 */
QsimAccelResolver *
qsim_accel_resolver_new(QsimConfig *config, QsimStore *store)
{
	QsimAccelResolver *self = g_object_new(QSIM_TYPE_ACCEL_RESOLVER, NULL);
	g_autofree gchar *kernel = qsim_config_dup_kvm_probe_kernel(config);
	g_autofree gchar *initrd = qsim_config_dup_kvm_probe_initrd(config);
	const gchar *src = qsim_config_source_to_string(qsim_config_get_source(config, "ACCEL"));
	const gchar *origin = qsim_config_get_origin(config, "ACCEL");

	self->config = g_object_ref(config);
	self->store = store != NULL ? g_object_ref(store) : NULL;
	self->mode = qsim_config_get_accel(config);
	self->mode_origin =
	    origin != NULL
	        ? g_strdup_printf("ACCEL=%s from %s %s", qsim_accel_mode_to_string(self->mode), src,
	                          origin)
	        : g_strdup_printf("ACCEL=%s from %s", qsim_accel_mode_to_string(self->mode), src);
	self->qemu = g_strdup(resolver_hook("QSIM_KVM_PROBE_QEMU") != NULL
	                          ? resolver_hook("QSIM_KVM_PROBE_QEMU")
	                          : qsim_config_get_qemu(config));
	self->device =
	    g_strdup(resolver_hook("QSIM_KVM_DEVICE") != NULL ? resolver_hook("QSIM_KVM_DEVICE")
	                                                      : QSIM_KVM_DEFAULT_DEVICE);
	self->kernel = g_canonicalize_filename(kernel, NULL);
	self->initrd = g_canonicalize_filename(initrd, NULL);
	/* STATE_DIR, not RUN_DIR: RUN_DIR holds only what a VM leaves while it runs */
	self->lock_path =
	    g_build_filename(qsim_config_get_state_dir(config), RESOLVER_LOCK_FILE, NULL);
	self->console_timeout_ms = qsim_config_get_kvm_console_timeout_ms(config);
	self->params.qemu = self->qemu;
	self->params.device = self->device;
	self->params.kernel = self->kernel;
	self->params.initrd = self->initrd;
	self->params.timeout_ms = qsim_config_get_kvm_probe_timeout_ms(config);
	return self;
}

static void
qsim_accel_resolver_finalize(GObject *object)
{
	QsimAccelResolver *self = QSIM_ACCEL_RESOLVER(object);

	g_clear_object(&self->config);
	g_clear_object(&self->store);
	g_free(self->mode_origin);
	g_free(self->qemu);
	g_free(self->device);
	g_free(self->kernel);
	g_free(self->initrd);
	g_free(self->lock_path);
	qsim_accel_verdict_free(self->verdict);
	G_OBJECT_CLASS(qsim_accel_resolver_parent_class)->finalize(object);
}

static void
qsim_accel_resolver_class_init(QsimAccelResolverClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_accel_resolver_finalize;
}

static void
qsim_accel_resolver_init(QsimAccelResolver *self)
{
}
