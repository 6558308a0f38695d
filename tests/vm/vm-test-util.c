#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include "vm-test-util.h"

/* Far above any healthy step on a loaded 2-core TCG host; only stops a hang. */
#define VM_TEST_STEP_TIMEOUT_S 120

typedef struct {
	GAsyncResult *res;
	gboolean timed_out;
} Waiter;

static gboolean
waiter_timeout_cb(gpointer user_data)
{
	((Waiter *)user_data)->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static void
waiter_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	((Waiter *)user_data)->res = g_object_ref(res);
}

/* Runs the default main context until @w has a result or the step timeout passes. */
static gboolean
waiter_run(Waiter *w, GError **error)
{
	guint id = g_timeout_add_seconds(VM_TEST_STEP_TIMEOUT_S, waiter_timeout_cb, w);

	while (w->res == NULL && !w->timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (w->timed_out) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
		            "test step did not finish within %d s", VM_TEST_STEP_TIMEOUT_S);
		return FALSE;
	}
	g_source_remove(id);
	return TRUE;
}

void
vm_test_iterate_until(gboolean *flag, guint timeout_s)
{
	Waiter w = {NULL, FALSE};
	guint id = g_timeout_add_seconds(timeout_s, waiter_timeout_cb, &w);

	while (!*flag && !w.timed_out)
		g_main_context_iteration(NULL, TRUE);
	if (!w.timed_out)
		g_source_remove(id);
}

gchar *
vm_test_images_dir(void)
{
	const gchar *root = g_getenv("QSIM_SOURCE_ROOT");

	return g_build_filename(root != NULL ? root : SOURCE_ROOT, "vm_images", NULL);
}

QsimVmConfig *
vm_test_load_config(const gchar *conf_name, GError **error)
{
	g_autofree gchar *images = vm_test_images_dir();
	const gchar *root = g_getenv("QSIM_SOURCE_ROOT");
	g_autofree gchar *conf_file = g_strconcat(conf_name, ".conf", NULL);
	g_autofree gchar *conf = g_build_filename(root != NULL ? root : SOURCE_ROOT, "tests",
	                                          "data", "vm_configs", conf_file, NULL);

	return qsim_vm_config_parse(images, conf, "tiny", error);
}

gboolean
vm_test_start(QsimVm *vm, GError **error)
{
	Waiter w = {NULL, FALSE};
	g_autoptr(GAsyncResult) res = NULL;

	qsim_vm_start_async(vm, NULL, waiter_cb, &w);
	if (!waiter_run(&w, error))
		return FALSE;
	res = w.res;
	return qsim_vm_start_finish(vm, res, error);
}

gboolean
vm_test_wait_ready(QsimVm *vm, GError **error)
{
	Waiter w = {NULL, FALSE};
	g_autoptr(GAsyncResult) res = NULL;

	qsim_vm_wait_ready_async(vm, 0, NULL, waiter_cb, &w);
	if (!waiter_run(&w, error))
		return FALSE;
	res = w.res;
	return qsim_vm_wait_ready_finish(vm, res, error);
}

gboolean
vm_test_shutdown(QsimVm *vm, guint grace_ms, GError **error)
{
	Waiter w = {NULL, FALSE};
	g_autoptr(GAsyncResult) res = NULL;

	qsim_vm_shutdown_async(vm, grace_ms, NULL, waiter_cb, &w);
	if (!waiter_run(&w, error))
		return FALSE;
	res = w.res;
	return qsim_vm_shutdown_finish(vm, res, error);
}

gboolean
vm_test_pause(QsimVm *vm, gboolean pause, GError **error)
{
	Waiter w = {NULL, FALSE};
	g_autoptr(GAsyncResult) res = NULL;

	if (pause)
		qsim_vm_pause_async(vm, NULL, waiter_cb, &w);
	else
		qsim_vm_resume_async(vm, NULL, waiter_cb, &w);
	if (!waiter_run(&w, error))
		return FALSE;
	res = w.res;
	return pause ? qsim_vm_pause_finish(vm, res, error) : qsim_vm_resume_finish(vm, res, error);
}

QsimGuest *
vm_test_guest_connect(QsimVm *vm, GError **error)
{
	const QsimVmConfig *config = qsim_vm_get_config(vm);
	g_autoptr(QsimGuest) guest =
	    qsim_guest_new(qsim_vm_get_ssh_host(vm), qsim_vm_get_ssh_port(vm), config->ssh_user,
	                   config->ssh_key_path, config->ssh_password);
	Waiter w = {NULL, FALSE};
	g_autoptr(GAsyncResult) res = NULL;

	qsim_guest_connect_async(guest, g_get_monotonic_time() + 30 * G_USEC_PER_SEC, NULL,
	                         waiter_cb, &w);
	if (!waiter_run(&w, error))
		return NULL;
	res = w.res;
	if (!qsim_guest_connect_finish(guest, res, error))
		return NULL;
	return g_steal_pointer(&guest);
}

typedef struct {
	GByteArray *out;
	GByteArray *err;
} Sink;

static void
sink_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	Sink *s = user_data;
	GByteArray *dst = stream == QSIM_GUEST_STREAM_STDOUT ? s->out : s->err;
	gsize len = 0;
	const guint8 *d = g_bytes_get_data(chunk, &len);

	if (dst != NULL)
		g_byte_array_append(dst, d, len);
}

gboolean
vm_test_exec(QsimGuest *guest, const gchar *command, GByteArray *out, GByteArray *err, gint *status,
             GError **error)
{
	Sink sink = {out, err};
	Waiter w = {NULL, FALSE};
	g_autoptr(GAsyncResult) res = NULL;

	qsim_guest_exec_async(guest, command, sink_cb, &sink, NULL, waiter_cb, &w);
	if (!waiter_run(&w, error))
		return FALSE;
	res = w.res;
	return qsim_guest_exec_finish(guest, res, status, NULL, error);
}

/**
 * vm_test_skip_without_image:
 *
 * Returns: %TRUE (the test is marked skipped) when the tiny guest is not built; CI sets
 *   QSIM_REQUIRE_VM, and there a missing guest fails instead of skipping
 */
gboolean
vm_test_skip_without_image(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = vm_test_load_config("tiny", &error);

	if (config != NULL)
		return FALSE;
	if (g_getenv("QSIM_REQUIRE_VM") != NULL)
		g_error("QSIM_REQUIRE_VM is set but the tiny guest is unusable: %s",
		        error->message);
	g_test_skip("tiny guest image missing: run 'meson compile -C build guest-image'");
	return TRUE;
}
