#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <string.h>

#include "agent/qsim-log-batcher.h"
#include "common/qsim-error.h"

/* one future row: consecutive chunks of one raw stream grow the same buffer */
typedef struct {
	QsimLogType log_type;
	gint64 timestamp_ms;
	GByteArray *data;
} Pending;

static void
pending_free(Pending *p)
{
	g_byte_array_unref(p->data);
	g_free(p);
}

struct _QsimLogBatcher {
	GObject parent_instance;
	QsimStore *store;
	gchar *uuid;
	gsize max_bytes;
	guint flush_ms;
	GPtrArray *pending; /* (element-type Pending) in arrival order */
	gsize buffered;
	gsize max_buffered;
	guint timer_id;
	gboolean congested;
	guint n_flushes;
	/* low latency (qsim_log_batcher_set_low_latency); 0: off */
	guint linger_ms;
	guint interval_ms;
	gint64 last_flush_us;
	/* output cap (qsim_log_batcher_set_output_limit); 0: none */
	guint64 output_limit;
	guint64 output_counted;
	gboolean output_truncated;
};

G_DEFINE_TYPE(QsimLogBatcher, qsim_log_batcher, G_TYPE_OBJECT)

enum { PROP_0, PROP_CONGESTED, N_PROPS };
static GParamSpec *props[N_PROPS];

enum { SIGNAL_OUTPUT_TRUNCATED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static void
qsim_log_batcher_set_congested(QsimLogBatcher *self, gboolean congested)
{
	if (self->congested == congested)
		return;
	self->congested = congested;
	g_debug("%s: log writer %s", self->uuid, congested ? "congested" : "caught up");
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_CONGESTED]);
}

static gboolean
qsim_log_batcher_timer_cb(gpointer user_data)
{
	QsimLogBatcher *self = QSIM_LOG_BATCHER(user_data);
	g_autoptr(GError) error = NULL;

	self->timer_id = 0;
	if (!qsim_log_batcher_flush(self, &error))
		g_warning("%s: cannot store logs (will retry): %s", self->uuid, error->message);
	return G_SOURCE_REMOVE;
}

static void
qsim_log_batcher_arm(QsimLogBatcher *self, guint ms)
{
	if (self->timer_id != 0)
		return;
	self->timer_id = g_timeout_add(ms, qsim_log_batcher_timer_cb, self);
}

/* With low latency on, the first bytes after a quiet spell are written after a short
 * linger, and a steady stream at most every interval_ms: live output shows within
 * ~interval_ms instead of flush_ms, for at most 1000 / interval_ms transactions a second. */
static guint
qsim_log_batcher_delay_ms(QsimLogBatcher *self)
{
	gint64 next_us;
	gint64 now_us;
	guint delay_ms;

	if (self->linger_ms == 0)
		return self->flush_ms;
	now_us = g_get_monotonic_time();
	next_us = self->last_flush_us + (gint64)self->interval_ms * 1000;
	delay_ms = next_us > now_us ? (guint)((next_us - now_us + 999) / 1000) : 0;
	return MIN(MAX(delay_ms, self->linger_ms), self->flush_ms);
}

static gboolean
qsim_log_batcher_mergeable(QsimLogType log_type)
{
	return log_type == QSIM_LOG_BOOT || log_type == QSIM_LOG_STDOUT ||
	       log_type == QSIM_LOG_STDERR;
}

static void
qsim_log_batcher_buffer(QsimLogBatcher *self, QsimLogType log_type, const guint8 *data, gsize len)
{
	Pending *last = NULL;

	if (self->pending->len > 0)
		last = g_ptr_array_index(self->pending, self->pending->len - 1);
	if (last == NULL || last->log_type != log_type || !qsim_log_batcher_mergeable(log_type)) {
		last = g_new0(Pending, 1);
		last->log_type = log_type;
		last->timestamp_ms = qsim_store_now_ms(self->store);
		last->data = g_byte_array_sized_new(MIN(len, self->max_bytes));
		g_ptr_array_add(self->pending, last);
	}
	g_byte_array_append(last->data, data, (guint)len);
	self->buffered += len;
	self->max_buffered = MAX(self->max_buffered, self->buffered);

	if (self->buffered >= self->max_bytes) {
		g_autoptr(GError) error = NULL;

		if (!qsim_log_batcher_flush(self, &error))
			g_warning("%s: cannot store logs (will retry): %s", self->uuid,
			          error->message);
		return;
	}
	qsim_log_batcher_arm(self, qsim_log_batcher_delay_ms(self));
}

/* "64 MiB" for the system line: users set the limit in such units */
static gchar *
qsim_log_batcher_format_limit(guint64 bytes)
{
	static const gchar *const units[] = {"GiB", "MiB", "KiB"};

	for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
		guint64 unit = G_GUINT64_CONSTANT(1) << (10 * (3 - i));

		if (bytes % unit == 0)
			return g_strdup_printf("%" G_GUINT64_FORMAT " %s", bytes / unit, units[i]);
	}
	return g_strdup_printf("%" G_GUINT64_FORMAT " bytes", bytes);
}

void
qsim_log_batcher_append(QsimLogBatcher *self, QsimLogType log_type, const guint8 *data, gsize len)
{
	g_autofree gchar *limit = NULL;
	g_autofree gchar *line = NULL;
	guint64 room;

	g_return_if_fail(QSIM_IS_LOG_BATCHER(self));
	if (len == 0)
		return;
	if (self->output_limit == 0 || !qsim_log_batcher_mergeable(log_type)) {
		qsim_log_batcher_buffer(self, log_type, data, len);
		return;
	}
	/* past the cap the producer keeps reading (drained, so the guest never blocks on a
	 * full pipe) but nothing more is kept */
	if (self->output_truncated)
		return;
	room = self->output_limit - self->output_counted;
	if (len <= room) {
		self->output_counted += len;
		qsim_log_batcher_buffer(self, log_type, data, len);
		return;
	}
	if (room > 0)
		qsim_log_batcher_buffer(self, log_type, data, (gsize)room);
	self->output_counted = self->output_limit;
	self->output_truncated = TRUE;
	limit = qsim_log_batcher_format_limit(self->output_limit);
	line = g_strdup_printf("output truncated at %s\n", limit);
	qsim_log_batcher_buffer(self, QSIM_LOG_SYSTEM, (const guint8 *)line, strlen(line));
	g_signal_emit(self, signals[SIGNAL_OUTPUT_TRUNCATED], 0);
}

/**
 * qsim_log_batcher_set_output_limit:
 * @self: a #QsimLogBatcher
 * @limit: the most boot, stdout and stderr bytes to store together; 0: no limit
 *
 * The bytes that cross @limit are cut off at it; then one system line says so,
 * "output-truncated" is emitted once, and further raw output is dropped.
 */
void
qsim_log_batcher_set_output_limit(QsimLogBatcher *self, guint64 limit)
{
	g_return_if_fail(QSIM_IS_LOG_BATCHER(self));
	self->output_limit = limit;
}

gboolean
qsim_log_batcher_get_output_truncated(QsimLogBatcher *self)
{
	return self->output_truncated;
}

void
qsim_log_batcher_append_bytes(QsimLogBatcher *self, QsimLogType log_type, GBytes *bytes)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	qsim_log_batcher_append(self, log_type, data, len);
}

void
qsim_log_batcher_append_line(QsimLogBatcher *self, QsimLogType log_type, const gchar *text)
{
	gsize len = strlen(text);

	if (len > 0 && text[len - 1] == '\n') {
		qsim_log_batcher_append(self, log_type, (const guint8 *)text, len);
	} else {
		g_autofree gchar *line = g_strconcat(text, "\n", NULL);
		qsim_log_batcher_append(self, log_type, (const guint8 *)line, len + 1);
	}
}

gboolean
qsim_log_batcher_flush(QsimLogBatcher *self, GError **error)
{
	g_autoptr(GPtrArray) chunks = NULL;

	g_return_val_if_fail(QSIM_IS_LOG_BATCHER(self), FALSE);
	g_clear_handle_id(&self->timer_id, g_source_remove);
	if (self->pending->len == 0)
		return TRUE;
	chunks = g_ptr_array_new_full(self->pending->len, (GDestroyNotify)qsim_log_entry_free);
	for (guint i = 0; i < self->pending->len; i++) {
		Pending *p = g_ptr_array_index(self->pending, i);
		/* a new GBytes over the same memory: the buffer stays for a retry */
		g_autoptr(GBytes) bytes = g_bytes_new_static(p->data->data, p->data->len);

		g_ptr_array_add(chunks,
		                qsim_log_entry_new_bytes(p->log_type, p->timestamp_ms, bytes));
	}
	if (qsim_store_append_logs(self->store, self->uuid, chunks, error) < 0) {
		/* keep everything, in order; hold the producer back once the bound is hit */
		if (self->buffered >= self->max_bytes)
			qsim_log_batcher_set_congested(self, TRUE);
		qsim_log_batcher_arm(self, QSIM_LOG_BATCHER_RETRY_MS);
		g_prefix_error(error, "request %s: ", self->uuid);
		return FALSE;
	}
	/* the entries point into the buffers: drop them before the buffers */
	g_clear_pointer(&chunks, g_ptr_array_unref);
	g_ptr_array_set_size(self->pending, 0);
	self->buffered = 0;
	self->n_flushes++;
	self->last_flush_us = g_get_monotonic_time();
	qsim_log_batcher_set_congested(self, FALSE);
	return TRUE;
}

/**
 * qsim_log_batcher_set_low_latency:
 * @self: a #QsimLogBatcher
 * @linger_ms: how long the first chunk after a quiet spell waits for more (0: off)
 * @interval_ms: the shortest time between two flushes while output keeps coming
 *
 * Without it a chunk may wait flush_ms; the size bound still applies either way.
 */
void
qsim_log_batcher_set_low_latency(QsimLogBatcher *self, guint linger_ms, guint interval_ms)
{
	g_return_if_fail(QSIM_IS_LOG_BATCHER(self));
	self->linger_ms = linger_ms;
	self->interval_ms = MAX(interval_ms, linger_ms);
}

gsize
qsim_log_batcher_get_buffered(QsimLogBatcher *self)
{
	return self->buffered;
}

gboolean
qsim_log_batcher_get_congested(QsimLogBatcher *self)
{
	return self->congested;
}

guint
qsim_log_batcher_get_n_flushes(QsimLogBatcher *self)
{
	return self->n_flushes;
}

gsize
qsim_log_batcher_get_max_buffered(QsimLogBatcher *self)
{
	return self->max_buffered;
}

static void
qsim_log_batcher_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	QsimLogBatcher *self = QSIM_LOG_BATCHER(object);

	switch (prop_id) {
	case PROP_CONGESTED:
		g_value_set_boolean(value, self->congested);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
qsim_log_batcher_dispose(GObject *object)
{
	QsimLogBatcher *self = QSIM_LOG_BATCHER(object);

	g_clear_handle_id(&self->timer_id, g_source_remove);
	if (self->pending->len > 0)
		g_warning("%s: %" G_GSIZE_FORMAT " log bytes dropped: never stored", self->uuid,
		          self->buffered);
	g_ptr_array_set_size(self->pending, 0);
	self->buffered = 0;
	G_OBJECT_CLASS(qsim_log_batcher_parent_class)->dispose(object);
}

static void
qsim_log_batcher_finalize(GObject *object)
{
	QsimLogBatcher *self = QSIM_LOG_BATCHER(object);

	g_clear_object(&self->store);
	g_free(self->uuid);
	g_ptr_array_unref(self->pending);
	G_OBJECT_CLASS(qsim_log_batcher_parent_class)->finalize(object);
}

static void
qsim_log_batcher_class_init(QsimLogBatcherClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = qsim_log_batcher_get_property;
	object_class->dispose = qsim_log_batcher_dispose;
	object_class->finalize = qsim_log_batcher_finalize;
	props[PROP_CONGESTED] = g_param_spec_boolean("congested", NULL, NULL, FALSE,
	                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS |
	                                                 G_PARAM_EXPLICIT_NOTIFY);
	g_object_class_install_properties(object_class, N_PROPS, props);
	signals[SIGNAL_OUTPUT_TRUNCATED] =
	    g_signal_new("output-truncated", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 0);
}

static void
qsim_log_batcher_init(QsimLogBatcher *self)
{
	self->pending = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
}

QsimLogBatcher *
qsim_log_batcher_new(QsimStore *store, const gchar *uuid, gsize max_bytes, guint flush_ms)
{
	QsimLogBatcher *self = g_object_new(QSIM_TYPE_LOG_BATCHER, NULL);

	self->store = g_object_ref(store);
	self->uuid = g_strdup(uuid);
	self->max_bytes = max_bytes > 0 ? max_bytes : QSIM_LOG_BATCHER_DEFAULT_MAX_BYTES;
	self->flush_ms = flush_ms > 0 ? flush_ms : QSIM_LOG_BATCHER_DEFAULT_FLUSH_MS;
	return self;
}
