#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-stats.h"

/**
 * qsim_stats_new:
 *
 * Returns: (transfer full): zeroed stats; free with qsim_stats_free()
 */
QsimStats *
qsim_stats_new(void)
{
	return g_new0(QsimStats, 1);
}

void
qsim_stats_free(QsimStats *self)
{
	g_free(self);
}

gint64
qsim_stats_percentile(const gint64 *sorted, gsize n, guint p)
{
	gsize rank;

	g_return_val_if_fail(sorted != NULL && n > 0, 0);
	g_return_val_if_fail(p > 0 && p <= 100, 0);
	/* nearest rank: the smallest value with at least p% of the sample at or below it */
	rank = ((gsize)p * n + 99) / 100;
	if (rank == 0)
		rank = 1;
	return sorted[rank - 1];
}
