#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <string.h>

#include "agent/qsim-log-batcher.h"
#include "common/qsim-error.h"
#include "store/qsim-store-worker.h"

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
	GPtrArray *pending;  /* (element-type Pending) in arrival order */
	gsize buffered;      /* pending and in flight */
	gsize pending_bytes; /* pending only */
	/* with a worker: the batch being written there (NULL: none), and the
	 * qsim_log_batcher_flush_async() callers waiting for an empty buffer */
	QsimStoreWorker *worker;
	GPtrArray *inflight; /* (element-type Pending) */
	gsize inflight_bytes;
	GPtrArray *waiters; /* (element-type GTask) */
	gboolean failing;   /* the last write failed: retried on a timer */
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

static void qsim_log_batcher_write(QsimLogBatcher *self);

/* Memory stays within max_bytes (plus the producer's own chunk): past it, while a
 * batch is being written or the writes fail, the producer waits */
static void
qsim_log_batcher_update_congestion(QsimLogBatcher *self)
{
	qsim_log_batcher_set_congested(self, self->buffered >= self->max_bytes &&
	                                         (self->inflight != NULL || self->failing));
}

static gboolean
qsim_log_batcher_timer_cb(gpointer user_data)
{
	QsimLogBatcher *self = QSIM_LOG_BATCHER(user_data);

	self->timer_id = 0;
	qsim_log_batcher_write(self);
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
	self->pending_bytes += len;
	self->max_buffered = MAX(self->max_buffered, self->buffered);

	if (self->pending_bytes >= self->max_bytes) {
		qsim_log_batcher_write(self);
		qsim_log_batcher_update_congestion(self);
		return;
	}
	qsim_log_batcher_update_congestion(self);
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

/* The entries of @batch for qsim_store_append_logs(); each holds its buffer */
static GPtrArray *
qsim_log_batcher_entries(GPtrArray *batch)
{
	GPtrArray *chunks = g_ptr_array_new_full(batch->len, (GDestroyNotify)qsim_log_entry_free);

	for (guint i = 0; i < batch->len; i++) {
		Pending *p = g_ptr_array_index(batch, i);
		g_autoptr(GBytes) bytes = g_bytes_new_with_free_func(
		    p->data->data, p->data->len, (GDestroyNotify)g_byte_array_unref,
		    g_byte_array_ref(p->data));

		g_ptr_array_add(chunks,
		                qsim_log_entry_new_bytes(p->log_type, p->timestamp_ms, bytes));
	}
	return chunks;
}

/* Everything is written (@error NULL) or a write failed: tell the waiters */
static void
qsim_log_batcher_complete_waiters(QsimLogBatcher *self, const GError *error)
{
	g_autoptr(GPtrArray) waiters = NULL;

	if (self->waiters->len == 0)
		return;
	waiters = g_steal_pointer(&self->waiters);
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; i < waiters->len; i++) {
		GTask *task = g_ptr_array_index(waiters, i);

		if (error == NULL)
			g_task_return_boolean(task, TRUE);
		else
			g_task_return_error(task, g_error_copy(error));
	}
}

static void
qsim_log_batcher_written(QsimLogBatcher *self)
{
	self->n_flushes++;
	self->last_flush_us = g_get_monotonic_time();
}

/* Without a worker: the batch is written here, on the main loop */
static gboolean
qsim_log_batcher_flush_inline(QsimLogBatcher *self, GError **error)
{
	g_autoptr(GPtrArray) chunks = NULL;

	g_clear_handle_id(&self->timer_id, g_source_remove);
	if (self->pending->len == 0)
		return TRUE;
	chunks = qsim_log_batcher_entries(self->pending);
	if (qsim_store_append_logs(self->store, self->uuid, chunks, error) < 0) {
		/* keep everything, in order; hold the producer back once the bound is hit */
		self->failing = TRUE;
		qsim_log_batcher_update_congestion(self);
		qsim_log_batcher_arm(self, QSIM_LOG_BATCHER_RETRY_MS);
		g_prefix_error(error, "request %s: ", self->uuid);
		return FALSE;
	}
	g_ptr_array_set_size(self->pending, 0);
	self->buffered -= self->pending_bytes;
	self->pending_bytes = 0;
	qsim_log_batcher_written(self);
	self->failing = FALSE;
	qsim_log_batcher_update_congestion(self);
	return TRUE;
}

/* One batch for the store worker: what its thread reads, its own copies */
typedef struct {
	gchar *uuid;
	GPtrArray *entries; /* (element-type QsimLogEntry) each holding its buffer */
} WriteCall;

static void
write_call_free(WriteCall *call)
{
	g_free(call->uuid);
	g_ptr_array_unref(call->entries);
	g_free(call);
}

static gboolean
qsim_log_batcher_write_run(QsimStore *store, gpointer data, GError **error)
{
	WriteCall *call = data;

	return qsim_store_append_logs(store, call->uuid, call->entries, error) >= 0;
}

static void
qsim_log_batcher_write_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(QsimLogBatcher) self = user_data;
	g_autoptr(GPtrArray) batch = g_steal_pointer(&self->inflight);
	g_autoptr(GError) error = NULL;

	if (!qsim_store_worker_run_finish(self->worker, result, &error)) {
		/* back in front of what came meanwhile: nothing lost, order kept */
		for (guint i = batch->len; i > 0; i--)
			g_ptr_array_insert(self->pending, 0, g_ptr_array_steal_index(batch, i - 1));
		self->pending_bytes += self->inflight_bytes;
		self->inflight_bytes = 0;
		self->failing = TRUE;
		qsim_log_batcher_update_congestion(self);
		g_prefix_error(&error, "request %s: ", self->uuid);
		g_warning("%s: cannot store logs (will retry): %s", self->uuid, error->message);
		qsim_log_batcher_arm(self, QSIM_LOG_BATCHER_RETRY_MS);
		qsim_log_batcher_complete_waiters(self, error);
		return;
	}
	self->buffered -= self->inflight_bytes;
	self->inflight_bytes = 0;
	qsim_log_batcher_written(self);
	self->failing = FALSE;
	qsim_log_batcher_update_congestion(self);
	if (self->pending->len == 0) {
		qsim_log_batcher_complete_waiters(self, NULL);
		return;
	}
	/* what came while the batch was written: at once if someone waits or it is
	 * big, else on its own schedule */
	if (self->waiters->len > 0 || self->pending_bytes >= self->max_bytes)
		qsim_log_batcher_write(self);
	else
		qsim_log_batcher_arm(self, qsim_log_batcher_delay_ms(self));
}

/* Starts writing what is pending, unless a batch is in flight already (its end
 * starts the next one) */
static void
qsim_log_batcher_write(QsimLogBatcher *self)
{
	WriteCall *call;

	if (self->worker == NULL) {
		g_autoptr(GError) error = NULL;

		if (!qsim_log_batcher_flush_inline(self, &error)) {
			g_warning("%s: cannot store logs (will retry): %s", self->uuid,
			          error->message);
			qsim_log_batcher_complete_waiters(self, error);
			return;
		}
		qsim_log_batcher_complete_waiters(self, NULL);
		return;
	}
	if (self->inflight != NULL)
		return;
	g_clear_handle_id(&self->timer_id, g_source_remove);
	if (self->pending->len == 0) {
		qsim_log_batcher_complete_waiters(self, NULL);
		return;
	}
	self->inflight = g_steal_pointer(&self->pending);
	self->inflight_bytes = self->pending_bytes;
	self->pending = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
	self->pending_bytes = 0;
	call = g_new0(WriteCall, 1);
	call->uuid = g_strdup(self->uuid);
	call->entries = qsim_log_batcher_entries(self->inflight);
	qsim_store_worker_run_async(self->worker, qsim_log_batcher_write_run, call,
	                            (GDestroyNotify)write_call_free, qsim_log_batcher_write_done_cb,
	                            g_object_ref(self));
	qsim_log_batcher_update_congestion(self);
}

gboolean
qsim_log_batcher_flush(QsimLogBatcher *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_LOG_BATCHER(self), FALSE);
	if (self->inflight != NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY,
		            "request %s: a log batch is being written", self->uuid);
		return FALSE;
	}
	return qsim_log_batcher_flush_inline(self, error);
}

/**
 * qsim_log_batcher_kick:
 *
 * Starts writing what is buffered now, without waiting for it (failures are
 * retried as any write's).
 */
void
qsim_log_batcher_kick(QsimLogBatcher *self)
{
	g_return_if_fail(QSIM_IS_LOG_BATCHER(self));
	qsim_log_batcher_write(self);
}

/**
 * qsim_log_batcher_flush_async:
 * @callback: called once everything buffered (in flight included) is written,
 *   or a write of it failed (the data stays buffered and is retried)
 */
void
qsim_log_batcher_flush_async(QsimLogBatcher *self, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task;

	g_return_if_fail(QSIM_IS_LOG_BATCHER(self));
	task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(task, qsim_log_batcher_flush_async);
	g_ptr_array_add(self->waiters, task);
	qsim_log_batcher_write(self);
}

gboolean
qsim_log_batcher_flush_finish(QsimLogBatcher *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * qsim_log_batcher_set_store_worker:
 * @worker: (nullable): where batches are written from now on, off the main
 *   loop; %NULL: on the main loop, on the batcher's store
 */
void
qsim_log_batcher_set_store_worker(QsimLogBatcher *self, QsimStoreWorker *worker)
{
	g_return_if_fail(QSIM_IS_LOG_BATCHER(self));
	g_return_if_fail(self->inflight == NULL);
	g_set_object(&self->worker, worker);
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
	self->pending_bytes = 0;
	g_clear_object(&self->worker);
	G_OBJECT_CLASS(qsim_log_batcher_parent_class)->dispose(object);
}

static void
qsim_log_batcher_finalize(GObject *object)
{
	QsimLogBatcher *self = QSIM_LOG_BATCHER(object);

	g_clear_object(&self->store);
	g_free(self->uuid);
	g_ptr_array_unref(self->pending);
	g_ptr_array_unref(self->waiters);
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
	self->waiters = g_ptr_array_new_with_free_func(g_object_unref);
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
