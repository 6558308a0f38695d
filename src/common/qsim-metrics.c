#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-metrics-text.h"
#include "common/qsim-metrics.h"

#define MAX_LABELS 3

/* Wide enough for a fast-started `echo` (tens of ms) and a long build or
 * queue (minutes); finer where most requests fall (0.1 s to 10 s). */
static const gdouble buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                  5,    10,    25,   50,  100,  250, 600};
#define N_BUCKETS G_N_ELEMENTS(buckets)

typedef struct {
	const gchar *name;
	const gchar *help;
	gboolean histogram; /* else a counter */
	const gchar *labels[MAX_LABELS];
} FamilySpec;

static const FamilySpec families[QSIM_METRIC_COUNT] = {
    [QSIM_METRIC_QUEUE_WAIT] = {"qsim_queue_wait_seconds",
                                "Time from submit to an agent's claim, for requests claimed by "
                                "this process's agents.",
                                TRUE},
    [QSIM_METRIC_FIRST_BYTE] = {"qsim_first_stdout_byte_seconds",
                                "Time from submit to the first byte of stdout, by how the VM "
                                "started (this process's agents).",
                                TRUE,
                                {"start_mode"}},
    [QSIM_METRIC_READY] = {"qsim_vm_ready_seconds",
                           "Time from starting a VM (boot, restore or warm resume) to the "
                           "guest being ready for commands, by start mode.",
                           TRUE,
                           {"start_mode"}},
    [QSIM_METRIC_REQUEST_DURATION] = {"qsim_request_duration_seconds",
                                      "Time from submit to the final status, by final status, "
                                      "for requests this process's agents finished.",
                                      TRUE,
                                      {"status"}},
    [QSIM_METRIC_STORE_TRANSACTION] = {"qsim_store_transaction_seconds",
                                       "Duration of database transactions in this process, "
                                       "from BEGIN to COMMIT or ROLLBACK, by kind.",
                                       TRUE,
                                       {"kind"}},
    [QSIM_METRIC_HTTP_DURATION] = {"qsim_http_request_duration_seconds",
                                   "HTTP request latency in this process, from the request "
                                   "line to the response sent, by route template.",
                                   TRUE,
                                   {"route"}},
    [QSIM_METRIC_HTTP_REQUESTS] = {"qsim_http_requests_total",
                                   "HTTP requests answered by this process, by route template, "
                                   "method and status class.",
                                   FALSE,
                                   {"route", "method", "code"}},
};

typedef struct {
	gchar *values[MAX_LABELS];
	guint64 counts[N_BUCKETS + 1]; /* histograms; a counter uses counts[0] */
	gdouble sum;
} Series;

/* Observations come from the main loop and from store threads (the API's
 * writer): one lock, held for a hash lookup and an add. */
static GMutex lock;
static GHashTable *series[QSIM_METRIC_COUNT]; /* key "v1\x1fv2\x1fv3" -> Series */

static void
series_free(gpointer data)
{
	Series *s = data;

	for (guint i = 0; i < MAX_LABELS; i++)
		g_free(s->values[i]);
	g_free(s);
}

static guint
family_arity(QsimMetric metric)
{
	guint n = 0;

	while (n < MAX_LABELS && families[metric].labels[n] != NULL)
		n++;
	return n;
}

/* With the lock held. */
static Series *
series_get(QsimMetric metric, const gchar *label1, const gchar *label2, const gchar *label3)
{
	const gchar *values[MAX_LABELS] = {label1, label2, label3};
	guint arity = family_arity(metric);
	g_autoptr(GString) key = g_string_new(NULL);
	Series *s;

	if (series[metric] == NULL)
		series[metric] =
		    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, series_free);
	for (guint i = 0; i < arity; i++) {
		if (i > 0)
			g_string_append_c(key, '\x1f');
		g_string_append(key, values[i] != NULL ? values[i] : "");
	}
	s = g_hash_table_lookup(series[metric], key->str);
	if (s != NULL)
		return s;
	s = g_new0(Series, 1);
	for (guint i = 0; i < arity; i++)
		s->values[i] = g_strdup(values[i] != NULL ? values[i] : "");
	g_hash_table_insert(series[metric], g_string_free(g_steal_pointer(&key), FALSE), s);
	return s;
}

/**
 * qsim_metrics_get_buckets:
 * @n_bounds: (out): how many bounds
 *
 * Returns: (transfer none) (array length=n_bounds): the upper bounds, seconds
 */
const gdouble *
qsim_metrics_get_buckets(guint *n_bounds)
{
	*n_bounds = N_BUCKETS;
	return buckets;
}

/**
 * qsim_metrics_observe:
 * @value: seconds for a histogram (negative values count as 0, a clock that
 *   stepped back); the increment for a counter
 * @label1: (nullable): the family's first label value, if it has labels
 * @label2: (nullable): the second
 * @label3: (nullable): the third
 *
 * Records one observation (histogram) or adds to a counter. Thread-safe.
 */
void
qsim_metrics_observe(QsimMetric metric, gdouble value, const gchar *label1, const gchar *label2,
                     const gchar *label3)
{
	Series *s;

	g_return_if_fail((guint)metric < QSIM_METRIC_COUNT);
	g_mutex_lock(&lock);
	s = series_get(metric, label1, label2, label3);
	if (families[metric].histogram) {
		guint i = 0;

		value = MAX(value, 0.0);
		while (i < N_BUCKETS && value > buckets[i])
			i++;
		s->counts[i]++;
		s->sum += value;
	} else {
		s->counts[0] += (guint64)MAX(value, 0.0);
	}
	g_mutex_unlock(&lock);
}

/**
 * qsim_metrics_touch:
 *
 * Creates the series at zero without observing anything, so that it is
 * exported (and a rate() over it is 0) before its first event.
 */
void
qsim_metrics_touch(QsimMetric metric, const gchar *label1, const gchar *label2, const gchar *label3)
{
	g_return_if_fail((guint)metric < QSIM_METRIC_COUNT);
	g_mutex_lock(&lock);
	series_get(metric, label1, label2, label3);
	g_mutex_unlock(&lock);
}

/**
 * qsim_metrics_get_histogram:
 * @out_count: (out): observations so far
 * @out_sum: (out): their sum
 *
 * Returns: %FALSE when the series does not exist (nothing observed or touched)
 */
gboolean
qsim_metrics_get_histogram(QsimMetric metric, const gchar *label1, const gchar *label2,
                           const gchar *label3, guint64 *out_count, gdouble *out_sum)
{
	gboolean found = FALSE;

	*out_count = 0;
	*out_sum = 0;
	g_return_val_if_fail((guint)metric < QSIM_METRIC_COUNT, FALSE);
	g_mutex_lock(&lock);
	if (series[metric] != NULL) {
		const gchar *values[MAX_LABELS] = {label1, label2, label3};
		g_autoptr(GString) key = g_string_new(NULL);
		Series *s;

		for (guint i = 0; i < family_arity(metric); i++) {
			if (i > 0)
				g_string_append_c(key, '\x1f');
			g_string_append(key, values[i] != NULL ? values[i] : "");
		}
		s = g_hash_table_lookup(series[metric], key->str);
		if (s != NULL) {
			for (guint i = 0; i <= N_BUCKETS; i++)
				*out_count += s->counts[i];
			*out_sum = s->sum;
			found = TRUE;
		}
	}
	g_mutex_unlock(&lock);
	return found;
}

static gint
compare_keys(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const gchar *const *)a, *(const gchar *const *)b);
}

static void
write_family(GString *out, QsimMetric metric)
{
	const FamilySpec *f = &families[metric];
	guint arity = family_arity(metric);
	g_autofree gpointer *keys = NULL;
	guint n = 0;

	qsim_metrics_text_family(out, f->name, f->histogram ? "histogram" : "counter", f->help);
	if (series[metric] == NULL && arity == 0)
		series_get(metric, NULL, NULL, NULL);
	if (series[metric] == NULL)
		return;
	/* sorted: the same series in the same order on every scrape */
	keys = g_hash_table_get_keys_as_array(series[metric], &n);
	qsort(keys, n, sizeof *keys, compare_keys);
	for (guint k = 0; k < n; k++) {
		Series *s = g_hash_table_lookup(series[metric], keys[k]);
		QsimMetricsLabels labels = {f->labels, (const gchar *const *)s->values, arity};

		if (f->histogram) {
			qsim_metrics_text_histogram(out, f->name, &labels, buckets, N_BUCKETS,
			                            s->counts, s->sum);
		} else {
			qsim_metrics_text_sample(out, f->name, &labels, (gdouble)s->counts[0]);
		}
	}
}

/**
 * qsim_metrics_write:
 *
 * Appends every family of this process in the text format, each with its
 * HELP and TYPE lines even before its first observation.
 */
void
qsim_metrics_write(GString *out)
{
	g_mutex_lock(&lock);
	for (guint m = 0; m < QSIM_METRIC_COUNT; m++)
		write_family(out, (QsimMetric)m);
	g_mutex_unlock(&lock);
}

/* Forgets every series (tests). */
void
qsim_metrics_reset(void)
{
	g_mutex_lock(&lock);
	for (guint m = 0; m < QSIM_METRIC_COUNT; m++)
		g_clear_pointer(&series[m], g_hash_table_unref);
	g_mutex_unlock(&lock);
}
