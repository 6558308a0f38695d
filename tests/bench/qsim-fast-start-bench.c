#define G_LOG_DOMAIN "qsim-bench"

#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

#include "guest/qsim-guest.h"
#include "vm/qsim-template.h"
#include "vm/qsim-vm.h"

/*
 * Fast start at the VM level: the median over N runs (default 10) of start → first
 * stdout byte of `echo hi`, cold (overlay of the base image, boot, wait for SSH) against
 * snapshot (overlay of the template disk, restore, wait for SSH, the clock/RNG/hostname
 * fix-up, then the command), alternating, in one run. The template is built first in
 * a private STATE_DIR. Prints figures; asserts nothing.
 * Usage: qsim-fast-start-bench [--runs N] [--images DIR] [--config FILE]
 */

typedef struct {
	GAsyncResult *res;
} Wait;

static void
wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	((Wait *)user_data)->res = g_object_ref(res);
}

/* every step is bounded by the VM's and guest's own deadlines */
static GAsyncResult *
wait_run(Wait *w)
{
	while (w->res == NULL)
		g_main_context_iteration(NULL, TRUE);
	return w->res;
}

static gint64 first_byte_us;

static void
output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	if (stream == QSIM_GUEST_STREAM_STDOUT && first_byte_us == 0)
		first_byte_us = g_get_monotonic_time();
}

static void
console_cb(QsimVm *vm, GBytes *chunk, gpointer user_data)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(chunk, &len);

	fwrite(data, 1, len, stderr);
}

static gboolean
one_run(QsimVmConfig *config, const gchar *run_root, QsimTemplate *tpl, gdouble *seconds,
        GError **error)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GAsyncResult) r1 = NULL, r2 = NULL, r3 = NULL, r4 = NULL, r5 = NULL, r6 = NULL;
	Wait w1 = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0}, w6 = {0};
	gint64 t0 = g_get_monotonic_time();
	gint64 deadline;
	gint status = -1;
	gboolean ok;

	vm = qsim_vm_new(config, run_root);
	qsim_vm_set_accel(vm, g_strcmp0(g_getenv("QSIM_BENCH_ACCEL"), "kvm") == 0, NULL);
	if (g_getenv("QSIM_BENCH_CONSOLE") != NULL)
		g_signal_connect(vm, "console-output", G_CALLBACK(console_cb), NULL);
	if (tpl != NULL && !qsim_template_apply(tpl, vm, error))
		return FALSE;
	qsim_vm_start_async(vm, NULL, wait_cb, &w1);
	if (!qsim_vm_start_finish(vm, (r1 = wait_run(&w1)), error))
		return FALSE;
	deadline = tpl != NULL
	               ? g_get_monotonic_time() + QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC
	               : 0;
	qsim_vm_wait_ready_async(vm, deadline, NULL, wait_cb, &w2);
	ok = qsim_vm_wait_ready_finish(vm, (r2 = wait_run(&w2)), error);
	if (ok) {
		config = (QsimVmConfig *)qsim_vm_get_config(vm);
		guest =
		    qsim_guest_new(qsim_vm_get_ssh_host(vm), qsim_vm_get_ssh_port(vm),
		                   config->ssh_user, config->ssh_key_path, config->ssh_password);
		qsim_guest_connect_async(guest, g_get_monotonic_time() + 30 * G_USEC_PER_SEC, NULL,
		                         wait_cb, &w3);
		ok = qsim_guest_connect_finish(guest, (r3 = wait_run(&w3)), error);
	}
	if (ok && tpl != NULL) {
		g_autofree gchar *host = qsim_template_new_hostname(config->name);
		g_autofree gchar *fix =
		    qsim_template_fixup_command(g_get_real_time() / G_USEC_PER_SEC, host);

		qsim_guest_run_simple_async(guest, fix, 10000, NULL, wait_cb, &w4);
		ok = qsim_guest_run_simple_finish(guest, (r4 = wait_run(&w4)), NULL, NULL, error);
	}
	if (ok) {
		first_byte_us = 0;
		qsim_guest_exec_async(guest, "echo hi", output_cb, NULL, NULL, wait_cb, &w5);
		ok = qsim_guest_exec_finish(guest, (r5 = wait_run(&w5)), &status, NULL, error);
		if (ok && (status != 0 || first_byte_us == 0)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "echo hi: status %d",
			            status);
			ok = FALSE;
		}
		*seconds = (first_byte_us - t0) / 1e6;
	}
	if (guest != NULL)
		qsim_guest_close(guest);
	qsim_vm_shutdown_async(vm, 0, NULL, wait_cb, &w6);
	qsim_vm_shutdown_finish(vm, (r6 = wait_run(&w6)), NULL);
	return ok;
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;
	return x < y ? -1 : x > y;
}

static gdouble
median(GArray *a)
{
	g_array_sort(a, cmp_double);
	if (a->len == 0)
		return 0;
	if (a->len % 2 == 1)
		return g_array_index(a, gdouble, a->len / 2);
	return (g_array_index(a, gdouble, a->len / 2 - 1) + g_array_index(a, gdouble, a->len / 2)) /
	       2;
}

static QsimVmConfig *
load(const gchar *images, const gchar *conf)
{
	g_autoptr(GError) error = NULL;
	QsimVmConfig *c = qsim_vm_config_parse(images, conf, "tiny", &error);

	if (c == NULL) {
		g_printerr("qsim-fast-start-bench: %s\n", error->message);
		exit(1);
	}
	return c;
}

int
main(int argc, char **argv)
{
	gint runs = 10;
	g_autofree gchar *images = NULL;
	g_autofree gchar *conf = NULL;
	GOptionEntry entries[] = {
	    {"runs", 'n', 0, G_OPTION_ARG_INT, &runs, "Requests per mode (10)", "N"},
	    {"images", 0, 0, G_OPTION_ARG_FILENAME, &images, "Images dir", "DIR"},
	    {"config", 0, 0, G_OPTION_ARG_FILENAME, &conf, "VM config", "FILE"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmp = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *run_root = NULL;
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autoptr(GArray) cold = g_array_new(FALSE, FALSE, sizeof(gdouble));
	g_autoptr(GArray) snap = g_array_new(FALSE, FALSE, sizeof(gdouble));
	Wait w = {0};
	g_autoptr(GAsyncResult) res = NULL;
	gint64 t0;
	gint failures = 0;
	gdouble mc, ms;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error) || runs < 1) {
		g_printerr("qsim-fast-start-bench: %s\n",
		           error != NULL ? error->message : "bad --runs");
		return 2;
	}
	if (images == NULL)
		images = g_build_filename(SOURCE_ROOT, "vm_images", NULL);
	if (conf == NULL)
		conf = g_build_filename(SOURCE_ROOT, "vm_configs", "tiny.conf", NULL);
	tmp = g_dir_make_tmp("qsim-fast-bench-XXXXXX", &error);
	if (tmp == NULL) {
		g_printerr("qsim-fast-start-bench: %s\n", error->message);
		return 1;
	}
	state = g_build_filename(tmp, "state", NULL);
	run_root = g_build_filename(tmp, "run", NULL);
	g_mkdir(run_root, 0700);
	tpl = qsim_template_new(state, "tiny");
	qsim_template_set_accel(tpl, g_strcmp0(g_getenv("QSIM_BENCH_ACCEL"), "kvm") == 0, NULL, 0);
	t0 = g_get_monotonic_time();
	qsim_template_build_async(tpl, load(images, conf), run_root, NULL, wait_cb, &w);
	if (!qsim_template_build_finish(tpl, (res = wait_run(&w)), &error)) {
		g_printerr("qsim-fast-start-bench: %s\n", error->message);
		return 1;
	}
	printf("template build: %.2f s, %.1f MiB\n", (g_get_monotonic_time() - t0) / 1e6,
	       qsim_template_get_size_bytes(tpl) / 1048576.0);
	for (gint i = 0; i < runs; i++) {
		for (gint mode = 0; mode < 2; mode++) {
			g_autoptr(GError) e = NULL;
			gdouble s = 0;

			if (one_run(load(images, conf), run_root, mode == 1 ? tpl : NULL, &s, &e)) {
				g_array_append_val(mode == 1 ? snap : cold, s);
				printf("run %2d %-8s %.3f s\n", i + 1,
				       mode == 1 ? "snapshot" : "cold", s);
			} else {
				failures++;
				printf("run %2d %-8s FAILED: %s\n", i + 1,
				       mode == 1 ? "snapshot" : "cold", e->message);
			}
			fflush(stdout);
		}
	}
	mc = median(cold);
	ms = median(snap);
	printf("median start -> first stdout byte over %d runs: cold %.3f s, snapshot %.3f s, "
	       "speedup %.2fx, failures %d\n",
	       runs, mc, ms, ms > 0 ? mc / ms : 0.0, failures);
	qsim_template_remove(tpl, NULL);
	g_rmdir(run_root);
	g_rmdir(state);
	{
		g_autofree gchar *troot = g_build_filename(state, "templates", NULL);
		g_rmdir(troot);
		g_rmdir(state);
	}
	g_rmdir(tmp);
	return failures == 0 ? 0 : 1;
}
