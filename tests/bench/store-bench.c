/*
 * store-bench: throughput of the SQLite store on this machine. Prints figures,
 * asserts nothing about speed. Usage: store-bench [N] (default 5000 requests).
 */
#include "config.h"

#include <sys/resource.h>

#include <glib/gstdio.h>

#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

/* CPU seconds of this process: the machine is shared, so wall time alone misleads */
static gdouble
cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static gdouble cpu_t0;

static gdouble
seconds_since(gint64 t0)
{
	return (g_get_monotonic_time() - t0) / 1e6;
}

static void
report(const gchar *what, guint n, gdouble s)
{
	gdouble cpu = cpu_now() - cpu_t0;

	g_print("%-34s %7u ops %7.3f s %9.0f ops/s | cpu %7.3f s %9.0f ops/cpu-s\n", what, n, s,
	        n / s, cpu, n / cpu);
}

#define START() (cpu_t0 = cpu_now(), g_get_monotonic_time())

static void
rm_rf(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, name, NULL);

		g_unlink(path);
	}
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("qsim-store-bench-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "bench.db", NULL);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	guint n = argc > 1 ? (guint)g_ascii_strtoull(argv[1], NULL, 10) : 5000;
	gint64 t0;
	guint8 chunk[4096];

	if (n == 0)
		n = 5000;
	store = qsim_store_open(path, &error);
	if (store == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	g_print("store-bench: %u requests, database %s (WAL, synchronous=NORMAL)\n", n, path);

	t0 = START();
	for (guint i = 0; i < n; i++) {
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(store, "tiny", "echo hi", 60, &error);

		g_assert_no_error(error);
		g_ptr_array_add(uuids, g_strdup(r->uuid));
	}
	report("create_request (1 tx each)", n, seconds_since(t0));

	t0 = START();
	for (guint i = 0; i < 4 * n; i++) {
		g_autoptr(QsimRequest) r = qsim_store_get_request(
		    store, g_ptr_array_index(uuids, (i * 7919) % n), 36, &error);

		g_assert_no_error(error);
	}
	report("get_request (full uuid)", 4 * n, seconds_since(t0));

	t0 = START();
	for (guint i = 0; i < 4 * n; i++) {
		g_autofree gchar *prefix = g_strndup(g_ptr_array_index(uuids, (i * 7919) % n), 13);
		g_autoptr(QsimRequest) r = qsim_store_get_request(store, prefix, 8, &error);

		g_assert_no_error(error);
	}
	report("get_request (13-char prefix)", 4 * n, seconds_since(t0));

	t0 = START();
	for (guint i = 0; i < n / 10; i++) {
		g_autoptr(GPtrArray) rows = qsim_store_list_requests(store, NULL, NULL, &error);

		g_assert_no_error(error);
	}
	report("list_requests (newest 50)", n / 10, seconds_since(t0));

	t0 = START();
	for (guint i = 0; i < n; i++) {
		g_autoptr(QsimRequest) r = qsim_store_claim_next(store, "bench", 60000, 0, &error);

		g_assert_no_error(error);
		g_assert_nonnull(r);
	}
	report("claim_next (uncontended)", n, seconds_since(t0));

	t0 = START();
	for (guint i = 0; i < n; i++) {
		const gchar *uuid = g_ptr_array_index(uuids, i);

		qsim_store_mark_running(store, uuid, "bench", &error);
		g_assert_no_error(error);
		qsim_store_finish_request(store, uuid, "bench", QSIM_STATUS_DONE, TRUE, 0, NULL,
		                          NULL, &error);
		g_assert_no_error(error);
	}
	report("mark_running + finish (2 tx)", n, seconds_since(t0));

	for (gsize i = 0; i < sizeof(chunk); i++)
		chunk[i] = (guint8)(i * 31);
	{
		const gchar *uuid = g_ptr_array_index(uuids, 0);
		guint batches = 1000, per_batch = 16;
		gdouble s, mb = batches * per_batch * sizeof(chunk) / 1048576.0;

		t0 = START();
		for (guint b = 0; b < batches; b++) {
			g_autoptr(GPtrArray) chunks =
			    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

			for (guint c = 0; c < per_batch; c++)
				g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0,
				                                           chunk, sizeof(chunk)));
			g_assert_cmpint(qsim_store_append_logs(store, uuid, chunks, &error), >, 0);
		}
		s = seconds_since(t0);
		report("append_logs (batch 16 x 4 KiB)", batches, s);
		g_print("%-34s %8.1f MB/s\n", "  = log write throughput", mb / s);

		t0 = START();
		for (gint64 after = 0;;) {
			g_autoptr(GPtrArray) got =
			    qsim_store_read_logs(store, uuid, after, 1000, -1, &error);

			g_assert_no_error(error);
			if (got->len == 0)
				break;
			after = ((QsimLogEntry *)g_ptr_array_index(got, got->len - 1))->seq;
		}
		s = seconds_since(t0);
		g_print("%-34s %8.1f MB/s\n", "read_logs (pages of 1000)", mb / s);
	}

	t0 = START();
	for (guint i = 0; i < 200; i++) {
		g_autoptr(QsimStats) stats = qsim_store_get_stats(store, &error);

		g_assert_no_error(error);
	}
	report("get_stats", 200, seconds_since(t0));

	g_clear_object(&store);
	rm_rf(dir);
	return 0;
}
