#define G_LOG_DOMAIN "qsim-bench"

#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-commands.h"

/*
 * Prints QMP round-trip figures against a real QEMU (-S, TCG): the connect+handshake time,
 * the latency of sequential query-status calls (median, p99) and the throughput of N calls
 * issued at once. Figures only, no assertions on time.
 *   bench-qmp-roundtrip [N]
 */

typedef struct {
	guint done;
	guint failed;
} Pipeline;

static void
pipelined_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Pipeline *p = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_qmp_client_query_status_finish(QSIM_QMP_CLIENT(source), res, NULL, NULL, &error))
		p->failed++;
	p->done++;
}

static gint
cmp_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	guint n = argc > 1 ? (guint)atoi(argv[1]) : 2000;
	const gchar *qemu =
	    g_getenv("QSIM_QEMU") != NULL ? g_getenv("QSIM_QEMU") : QSIM_QEMU_BINARY;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmpdir = g_dir_make_tmp("qsim-qmp-bench-XXXXXX", &error);
	g_autofree gchar *sock = NULL;
	g_autofree gchar *qmp_arg = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(QsimQmpClient) client = NULL;
	g_autoptr(GArray) lat = g_array_new(FALSE, FALSE, sizeof(gint64));
	Pipeline p = {0};
	gint64 t0, t_connect, t_pipe;

	if (tmpdir == NULL || n == 0) {
		g_printerr("usage: bench-qmp-roundtrip [N>0]\n");
		return 2;
	}
	sock = g_build_filename(tmpdir, "qmp.sock", NULL);
	qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", sock);
	t0 = g_get_monotonic_time();
	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error, qemu, "-machine", "q35", "-accel",
	                        "tcg", "-nodefaults", "-no-user-config", "-display", "none", "-m",
	                        "64", "-S", "-qmp", qmp_arg, NULL);
	if (proc == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	qsim_qmp_client_connect_async(sock, 30000, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_connect_finish(res, &error);
	if (client == NULL) {
		g_printerr("%s\n", error->message);
		g_subprocess_force_exit(proc);
		g_subprocess_wait(proc, NULL, NULL);
		return 1;
	}
	t_connect = g_get_monotonic_time() - t0;

	for (guint i = 0; i < n; i++) {
		gint64 t = g_get_monotonic_time();
		g_clear_object(&res);
		qsim_qmp_client_query_status_async(client, 0, NULL, qmp_test_store_result, &res);
		res = qmp_test_wait(&res);
		if (!qsim_qmp_client_query_status_finish(client, res, NULL, NULL, &error)) {
			g_printerr("%s\n", error->message);
			return 1;
		}
		t = g_get_monotonic_time() - t;
		g_array_append_val(lat, t);
	}
	g_array_sort(lat, cmp_int64);

	t_pipe = g_get_monotonic_time();
	for (guint i = 0; i < n; i++)
		qsim_qmp_client_query_status_async(client, 0, NULL, pipelined_cb, &p);
	while (p.done < n)
		g_main_context_iteration(NULL, TRUE);
	t_pipe = g_get_monotonic_time() - t_pipe;

	g_print("qemu spawn + QMP connect + handshake: %.1f ms\n", t_connect / 1000.0);
	g_print("sequential query-status x%u: median %" G_GINT64_FORMAT " us, p99 %" G_GINT64_FORMAT
	        " us\n",
	        n, g_array_index(lat, gint64, n / 2), g_array_index(lat, gint64, (n * 99) / 100));
	g_print("pipelined query-status x%u: %.1f ms total, %.0f commands/s, %u failed\n", n,
	        t_pipe / 1000.0, n / (t_pipe / 1e6), p.failed);

	g_clear_object(&res);
	qsim_qmp_client_quit_async(client, 0, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	qsim_qmp_client_quit_finish(client, res, NULL);
	g_subprocess_wait(proc, NULL, NULL);
	g_unlink(sock);
	g_rmdir(tmpdir);
	return p.failed == 0 ? 0 : 1;
}
