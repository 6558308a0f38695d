/*
 * store-scale-claim: the claim half of tests/bench/store-scale. Claims @n
 * pending requests from an existing database through the store API, the way an
 * agent does (claim_next with a VM cap, then mark_running and finish, so the
 * cap never fills), and prints the median and p99 of claim_next alone in ms.
 * Usage: store-scale-claim DB_PATH N [MAX_VMS]
 */
#include "config.h"

#include <stdlib.h>

#include "store/qsim-stats.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

static gint
compare_int64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a;
	gint64 y = *(const gint64 *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(GArray) us = g_array_new(FALSE, FALSE, sizeof(gint64));
	guint n, max_vms;

	if (argc < 3) {
		g_printerr("usage: %s DB_PATH N [MAX_VMS]\n", argv[0]);
		return 2;
	}
	n = (guint)g_ascii_strtoull(argv[2], NULL, 10);
	max_vms = argc > 3 ? (guint)g_ascii_strtoull(argv[3], NULL, 10) : 8;
	store = qsim_store_open(argv[1], &error);
	if (store == NULL) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	for (guint i = 0; i < n; i++) {
		gint64 t0 = g_get_monotonic_time();
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(store, "scale", 60000, max_vms, &error);
		gint64 d = g_get_monotonic_time() - t0;

		if (r == NULL) {
			g_printerr("claim %u: %s\n", i,
			           error != NULL ? error->message : "nothing pending");
			return 1;
		}
		g_array_append_val(us, d);
		if (!qsim_store_mark_running(store, r->uuid, "scale", &error) ||
		    !qsim_store_finish_request(store, r->uuid, "scale", QSIM_STATUS_DONE, TRUE, 0,
		                               NULL, NULL, &error)) {
			g_printerr("%s\n", error->message);
			return 1;
		}
	}
	g_array_sort(us, compare_int64);
	g_print("claim %u %.3f %.3f\n", n,
	        qsim_stats_percentile((gint64 *)us->data, us->len, 50) / 1000.0,
	        qsim_stats_percentile((gint64 *)us->data, us->len, 99) / 1000.0);
	return 0;
}
