#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-store-metrics.h"

static void
total_free(gpointer data)
{
	QsimStoreTotal *t = data;

	g_free(t->event);
	g_free(t->label1);
	g_free(t->label2);
	g_free(t);
}

/* Returns: (transfer full): empty metrics */
QsimStoreMetrics *
qsim_store_metrics_new(void)
{
	QsimStoreMetrics *self = g_new0(QsimStoreMetrics, 1);

	self->totals = g_ptr_array_new_with_free_func(total_free);
	return self;
}

void
qsim_store_metrics_free(QsimStoreMetrics *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->totals);
	g_free(self);
}

void
qsim_store_metrics_add_total(QsimStoreMetrics *self, const gchar *event, const gchar *label1,
                             const gchar *label2, guint64 n)
{
	QsimStoreTotal *t = g_new0(QsimStoreTotal, 1);

	t->event = g_strdup(event);
	t->label1 = g_strdup(label1 != NULL ? label1 : "");
	t->label2 = g_strdup(label2 != NULL ? label2 : "");
	t->n = n;
	g_ptr_array_add(self->totals, t);
}

/* Returns: the total of that (event, label1, label2), 0 when never counted */
guint64
qsim_store_metrics_get_total(const QsimStoreMetrics *self, const gchar *event, const gchar *label1,
                             const gchar *label2)
{
	for (guint i = 0; i < self->totals->len; i++) {
		const QsimStoreTotal *t = g_ptr_array_index(self->totals, i);

		if (g_strcmp0(t->event, event) == 0 && g_strcmp0(t->label1, label1) == 0 &&
		    g_strcmp0(t->label2, label2 != NULL ? label2 : "") == 0)
			return t->n;
	}
	return 0;
}
