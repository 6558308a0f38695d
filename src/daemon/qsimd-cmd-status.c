#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "agent/qsim-accel-resolver.h"
#include "common/qsim-db-url.h"
#include "common/qsim-error.h"
#include "common/qsim-vm-catalog.h"
#include "daemon/qsimd-commands.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

/* `qemu-system-x86_64 --version` answers at once; this only bounds a broken binary */
#define STATUS_QEMU_TIMEOUT_S 10

typedef struct {
	GMainLoop *loop;
	gboolean timed_out;
	gboolean done;
} StatusWait;

static void
status_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StatusWait *w = user_data;

	w->done = TRUE;
	g_main_loop_quit(w->loop);
}

static gboolean
status_timeout_cb(gpointer user_data)
{
	StatusWait *w = user_data;

	w->timed_out = TRUE;
	g_main_loop_quit(w->loop);
	return G_SOURCE_REMOVE;
}

/* Returns: (transfer full): the first line of `@qemu --version`, or NULL with @error */
static gchar *
status_qemu_version(const gchar *qemu, GError **error)
{
	const gchar *argv[] = {qemu, "--version", NULL};
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GBytes) out = NULL;
	g_autofree gchar *text = NULL;
	StatusWait w = {loop, FALSE, FALSE};
	guint timeout_id;
	gchar *nl;

	proc = g_subprocess_newv(
	    argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, error);
	if (proc == NULL) {
		qsim_error_convert(error);
		return NULL;
	}
	timeout_id = g_timeout_add_seconds(STATUS_QEMU_TIMEOUT_S, status_timeout_cb, &w);
	g_subprocess_wait_async(proc, NULL, status_wait_cb, &w);
	g_main_loop_run(loop);
	if (w.timed_out) {
		g_subprocess_force_exit(proc);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
		            "%s --version did not answer within %d s", qemu, STATUS_QEMU_TIMEOUT_S);
		return NULL;
	}
	g_source_remove(timeout_id);
	if (!g_subprocess_get_successful(proc)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_VM, "%s --version failed", qemu);
		return NULL;
	}
	out = g_input_stream_read_bytes(g_subprocess_get_stdout_pipe(proc), 4096, NULL, error);
	if (out == NULL) {
		qsim_error_convert(error);
		return NULL;
	}
	text = g_strndup(g_bytes_get_data(out, NULL), g_bytes_get_size(out));
	nl = strchr(text, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (!g_utf8_validate(text, -1, NULL) || text[0] == '\0') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_VM, "%s --version printed no version",
		            qemu);
		return NULL;
	}
	return g_steal_pointer(&text);
}

static void status_problem(GPtrArray *problems, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static void
status_problem(GPtrArray *problems, const gchar *format, ...)
{
	va_list args;
	gchar *text;

	va_start(args, format);
	text = g_strdup_vprintf(format, args);
	va_end(args);
	printf("  PROBLEM: %s\n", text);
	g_ptr_array_add(problems, text);
}

static void
status_database(QsimdContext *ctx, GPtrArray *problems)
{
	const gchar *path = qsim_config_get_store_location(ctx->config);
	g_autofree gchar *shown = qsim_db_url_redact(path);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimStats) stats = NULL;
	g_autoptr(GError) error = NULL;
	guint version;

	printf("database: %s\n", shown);
	/* opening would create it: a missing file is the problem to report */
	if (qsim_config_store_is_sqlite(ctx->config) &&
	    !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		status_problem(problems, "database %s does not exist (qsimd creates it on start)",
		               path);
		return;
	}
	store = qsim_store_open(path, &error);
	if (store == NULL) {
		status_problem(problems, "database %s cannot be opened: %s", shown, error->message);
		return;
	}
	version = qsim_store_get_schema_version(store);
	printf("  schema version %u (this qsimd writes %u)\n", version,
	       qsim_store_get_current_schema_version());
	if (version != qsim_store_get_current_schema_version())
		status_problem(problems, "database schema version %u, expected %u", version,
		               qsim_store_get_current_schema_version());
	stats = qsim_store_get_stats(store, &error);
	if (stats == NULL) {
		status_problem(problems, "cannot read the request counts: %s", error->message);
		return;
	}
	printf("  requests: %" G_GUINT64_FORMAT " total", stats->total);
	for (guint s = 0; s < QSIM_STATUS_COUNT; s++)
		printf(", %s %" G_GUINT64_FORMAT, qsim_status_to_string((QsimStatus)s),
		       stats->counts[s]);
	printf("\n  VMs running now: %u (limit %u), agents holding leases: %u\n", stats->active_vms,
	       qsim_config_get_max_concurrent_vms(ctx->config), stats->active_agents);
}

static void
status_qemu(QsimdContext *ctx, GPtrArray *problems)
{
	const gchar *qemu = qsim_config_get_qemu(ctx->config);
	g_autofree gchar *path = g_find_program_in_path(qemu);
	g_autofree gchar *version = NULL;
	g_autoptr(GError) error = NULL;

	printf("qemu: %s\n", qemu);
	if (path == NULL) {
		status_problem(problems, "QEMU binary %s not found", qemu);
		return;
	}
	version = status_qemu_version(path, &error);
	if (version == NULL) {
		status_problem(problems, "QEMU at %s does not work: %s", path, error->message);
		return;
	}
	printf("  %s (%s)\n", version, path);
}

/* The accelerator the agents would use here, and why: the cached verdict, or a probe. */
static void
status_accel(QsimdContext *ctx, GPtrArray *problems)
{
	const gchar *db = qsim_config_get_store_location(ctx->config);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimAccelResolver) accel = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *why = NULL;
	const QsimAccelVerdict *v;

	if (!qsim_config_store_is_sqlite(ctx->config) || g_file_test(db, G_FILE_TEST_IS_REGULAR))
		store = qsim_store_open(db, NULL);
	accel = qsim_accel_resolver_new(ctx->config, store);
	if (!qsim_accel_resolver_prepare_sync(accel, &error)) {
		status_problem(problems, "cannot decide the accelerator: %s", error->message);
		return;
	}
	why = qsim_accel_resolver_describe(accel);
	printf("accelerator: %s\n", why);
	v = qsim_accel_resolver_get_verdict(accel);
	if (v != NULL && v->probe_ms > 0)
		printf("  KVM probe: %s, took %.2f s\n", v->kvm ? "passed" : "failed",
		       v->probe_ms / 1000.0);
}

static void
status_vms(QsimdContext *ctx, GPtrArray *problems)
{
	const gchar *images = qsim_config_get_vm_images_dir(ctx->config);
	const gchar *configs = qsim_config_get_vm_config_dir(ctx->config);
	g_autoptr(GPtrArray) vms = NULL;
	g_autoptr(GError) error = NULL;
	guint valid = 0;

	printf("VMs: images in %s, configs in %s\n", images, configs);
	vms = qsim_vm_catalog_list(images, configs, &error);
	if (vms == NULL) {
		status_problem(problems, "cannot list the VMs: %s", error->message);
		return;
	}
	for (guint i = 0; i < vms->len; i++) {
		const QsimVmCatalogEntry *e = g_ptr_array_index(vms, i);

		if (e->valid) {
			valid++;
			printf("  %s: ok (%s, %" G_GUINT64_FORMAT " bytes)\n", e->name,
			       e->format != NULL ? e->format : "?", e->size_bytes);
		} else {
			status_problem(problems, "VM %s is not usable: %s", e->name,
			               e->error != NULL ? e->error : "invalid");
		}
	}
	if (valid == 0)
		status_problem(problems, "no usable VM: every request would be rejected");
}

/**
 * qsimd_cmd_status:
 *
 * `qsimd status`: checks the database (opens, schema version, counts by
 * status), QEMU (present, its version) and the VM catalog. Prints one
 * section each and exits 1 naming every problem found.
 *
 * Returns: the exit status
 */
gint
qsimd_cmd_status(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *joined = NULL;

	if (argc > 1) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "status takes no arguments (got '%s')", argv[1]);
		return QSIMD_EXIT_USAGE;
	}
	printf("qsimd %s\n", PACKAGE_VERSION);
	status_database(ctx, problems);
	status_qemu(ctx, problems);
	status_accel(ctx, problems);
	status_vms(ctx, problems);
	fflush(stdout);
	if (problems->len == 0) {
		printf("status: ok\n");
		return 0;
	}
	g_ptr_array_add(problems, NULL);
	joined = g_strjoinv("; ", (gchar **)problems->pdata);
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "status: %u problem%s: %s",
	            problems->len - 1, problems->len - 1 == 1 ? "" : "s", joined);
	return 1;
}
