#define G_LOG_DOMAIN "qsim-bench"

#include "config.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

#include "guest/qsim-guest.h"
#include "vm/qsim-vm.h"

/*
 * Boot-to-exec through qsim's VM layer: QsimVm start (overlay included) → wait_ready →
 * QsimGuest connect → the first stdout byte of `echo hi`. Prints figures, asserts
 * nothing; tests/bench/boot-to-exec puts them next to the raw QEMU + OpenSSH baseline.
 */

typedef struct {
	GMainLoop *loop;
	QsimVm *vm;
	QsimGuest *guest;
	gint64 t0, t_qmp, t_ready, t_conn, t_first;
	gboolean failed;
	gchar *why;
} Run;

static void
run_fail(Run *r, const gchar *step, const GError *error)
{
	r->failed = TRUE;
	r->why = g_strdup_printf("%s: %s", step, error->message);
	g_main_loop_quit(r->loop);
}

static void
output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	Run *r = user_data;

	if (stream == QSIM_GUEST_STREAM_STDOUT && r->t_first == 0)
		r->t_first = g_get_monotonic_time();
}

static void
exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Run *r = user_data;
	g_autoptr(GError) error = NULL;
	gint status = -1;

	if (!qsim_guest_exec_finish(QSIM_GUEST(source), res, &status, NULL, &error)) {
		run_fail(r, "exec", error);
		return;
	}
	if (r->t_first == 0 || status != 0) {
		g_autoptr(GError) e =
		    g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "no output or status %d", status);
		run_fail(r, "exec", e);
		return;
	}
	g_main_loop_quit(r->loop);
}

static void
connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Run *r = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_guest_connect_finish(QSIM_GUEST(source), res, &error)) {
		run_fail(r, "connect", error);
		return;
	}
	r->t_conn = g_get_monotonic_time();
	qsim_guest_exec_async(r->guest, "echo hi", output_cb, r, NULL, exec_cb, r);
}

static void
ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Run *r = user_data;
	g_autoptr(GError) error = NULL;
	const QsimVmConfig *c = qsim_vm_get_config(r->vm);

	if (!qsim_vm_wait_ready_finish(r->vm, res, &error)) {
		run_fail(r, "wait_ready", error);
		return;
	}
	r->t_ready = g_get_monotonic_time();
	r->guest = qsim_guest_new(qsim_vm_get_ssh_host(r->vm), qsim_vm_get_ssh_port(r->vm),
	                          c->ssh_user, c->ssh_key_path, c->ssh_password);
	qsim_guest_connect_async(r->guest, g_get_monotonic_time() + 30 * G_USEC_PER_SEC, NULL,
	                         connect_cb, r);
}

static void
start_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Run *r = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_start_finish(r->vm, res, &error)) {
		run_fail(r, "start", error);
		return;
	}
	r->t_qmp = g_get_monotonic_time();
	qsim_vm_wait_ready_async(r->vm, 0, NULL, ready_cb, r);
}

static void
shutdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_main_loop_quit(user_data);
}

static gboolean interrupted;

static gboolean
interrupt_cb(gpointer user_data)
{
	/* stop the current run; its VM is then shut down and the run dir removed */
	interrupted = TRUE;
	g_main_loop_quit(*(GMainLoop **)user_data);
	return G_SOURCE_CONTINUE;
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;
	return x < y ? -1 : x > y;
}

static gdouble
median(GArray *v)
{
	g_array_sort(v, cmp_double);
	if (v->len % 2 == 1)
		return g_array_index(v, gdouble, v->len / 2);
	return (g_array_index(v, gdouble, v->len / 2 - 1) + g_array_index(v, gdouble, v->len / 2)) /
	       2;
}

int
main(int argc, char **argv)
{
	gint runs = 5;
	gboolean median_only = FALSE;
	g_autofree gchar *images = NULL;
	g_autofree gchar *config_dir = NULL;
	g_autofree gchar *vm_name = NULL;
	const GOptionEntry entries[] = {
	    {"runs", 'n', 0, G_OPTION_ARG_INT, &runs, "Number of runs (default 5)", "N"},
	    {"images", 0, 0, G_OPTION_ARG_FILENAME, &images, "VM images dir", "DIR"},
	    {"configs", 0, 0, G_OPTION_ARG_FILENAME, &config_dir, "VM configs dir", "DIR"},
	    {"vm", 0, 0, G_OPTION_ARG_STRING, &vm_name, "VM name (default tiny)", "NAME"},
	    {"median-only", 0, 0, G_OPTION_ARG_NONE, &median_only, "Print only the median", NULL},
	    {NULL},
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("- qsim boot-to-exec benchmark");
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) totals = g_array_new(FALSE, FALSE, sizeof(gdouble));
	g_autoptr(GArray) readies = g_array_new(FALSE, FALSE, sizeof(gdouble));
	g_autofree gchar *run_root = NULL;
	GMainLoop *current = NULL;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error) || runs < 1 || runs > 99) {
		g_printerr("qsim-boot-bench: %s\n", error != NULL ? error->message : "bad --runs");
		return 2;
	}
	if (images == NULL)
		images = g_build_filename(SOURCE_ROOT, "vm_images", NULL);
	if (config_dir == NULL)
		config_dir = g_build_filename(SOURCE_ROOT, "vm_configs", NULL);
	if (vm_name == NULL)
		vm_name = g_strdup("tiny");
	run_root = g_dir_make_tmp("qsim-bench-XXXXXX", &error);
	if (run_root == NULL) {
		g_printerr("qsim-boot-bench: %s\n", error->message);
		return 1;
	}

	g_unix_signal_add(SIGINT, interrupt_cb, &current);
	g_unix_signal_add(SIGTERM, interrupt_cb, &current);
	for (gint i = 1; i <= runs && !interrupted; i++) {
		g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
		QsimVmConfig *config = qsim_vm_config_load(images, config_dir, vm_name, &error);
		Run r = {loop};
		gdouble total, ready;

		if (config == NULL) {
			g_printerr("qsim-boot-bench: %s\n", error->message);
			g_rmdir(run_root);
			return 1;
		}
		current = loop;
		r.vm = qsim_vm_new(config, run_root);
		/* the script decides from qsimd's own verdict (qsimd status) */
		qsim_vm_set_accel(r.vm, g_strcmp0(g_getenv("QSIM_BENCH_ACCEL"), "kvm") == 0, NULL);
		r.t0 = g_get_monotonic_time();
		qsim_vm_start_async(r.vm, NULL, start_cb, &r);
		g_main_loop_run(loop);
		if (r.guest != NULL)
			qsim_guest_close(r.guest);
		qsim_vm_shutdown_async(r.vm, 0, NULL, shutdown_cb, loop);
		g_main_loop_run(loop);
		g_clear_object(&r.guest);
		g_clear_object(&r.vm);
		if (interrupted) {
			g_rmdir(run_root);
			return 130;
		}
		if (r.failed) {
			g_printerr("qsim-boot-bench: run %d failed: %s\n", i, r.why);
			g_free(r.why);
			g_rmdir(run_root);
			return 1;
		}
		total = (gdouble)(r.t_first - r.t0) / G_USEC_PER_SEC;
		ready = (gdouble)(r.t_ready - r.t0) / G_USEC_PER_SEC;
		g_array_append_val(totals, total);
		g_array_append_val(readies, ready);
		if (!median_only)
			g_print("qsim run %d: %.3f s (QMP up %.3f, ready %.3f, SSH session %.3f, "
			        "first byte %.3f)\n",
			        i, total, (gdouble)(r.t_qmp - r.t0) / G_USEC_PER_SEC, ready,
			        (gdouble)(r.t_conn - r.t0) / G_USEC_PER_SEC, total);
	}
	g_rmdir(run_root);
	if (median_only)
		g_print("%.3f\n", median(totals));
	else
		g_print("qsim median of %d: %.3f s (start incl. overlay to first stdout byte of "
		        "'echo hi'; median ready %.3f s)\n",
		        runs, median(totals), median(readies));
	return 0;
}
