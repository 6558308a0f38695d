#pragma once

#include <glib-object.h>

#include <gio/gio.h>

#include "store/qsim-store.h"
#include "store/qsim-store-worker.h"

G_BEGIN_DECLS

/* Flush at once when this many bytes are buffered. */
#define QSIM_LOG_BATCHER_DEFAULT_MAX_BYTES (256 * 1024)
/* Flush no later than this after the first buffered byte. */
#define QSIM_LOG_BATCHER_DEFAULT_FLUSH_MS 1000
/* With qsim_log_batcher_set_low_latency(), which jobs use. */
#define QSIM_LOG_BATCHER_LINGER_MS 5
#define QSIM_LOG_BATCHER_INTERVAL_MS 100
/* After a failed flush (e.g. a locked database), try again this soon. */
#define QSIM_LOG_BATCHER_RETRY_MS 200

#define QSIM_TYPE_LOG_BATCHER (qsim_log_batcher_get_type())
G_DECLARE_FINAL_TYPE(QsimLogBatcher, qsim_log_batcher, QSIM, LOG_BATCHER, GObject)

/*
 * QsimLogBatcher: one request's log writer. Chunks are buffered in arrival
 * order and written with qsim_store_append_logs(), one transaction per
 * batch, no later than flush_ms after the first buffered byte and at once
 * when max_bytes are buffered. Consecutive chunks of a raw stream (boot,
 * stdout, stderr) are merged into one row; command and system entries stay
 * rows of their own. Lives on the main context of its creator.
 *
 * Property "congested" (gboolean, read-only, notifies): TRUE while max_bytes
 * or more are buffered and could not be written (the store failed, or the
 * previous batch is still being written by the store worker); the
 * producer must then stop reading its source (QsimGuest flow control) until
 * it is FALSE again. Memory stays bounded by max_bytes plus what the
 * producer already had in flight.
 *
 * Signal "output-truncated" (): the output limit was reached (once); see
 * qsim_log_batcher_set_output_limit().
 */

/**
 * qsim_log_batcher_new:
 * @store: (transfer none): referenced
 * @uuid: the request's full UUID
 * @max_bytes: size bound, 0 for %QSIM_LOG_BATCHER_DEFAULT_MAX_BYTES
 * @flush_ms: time bound, 0 for %QSIM_LOG_BATCHER_DEFAULT_FLUSH_MS
 *
 * Returns: (transfer full): a new batcher with an empty buffer
 */
QsimLogBatcher *qsim_log_batcher_new(QsimStore *store, const gchar *uuid, gsize max_bytes,
                                     guint flush_ms);

/* Buffers a copy of @len bytes of @data (nothing for @len 0). */
void qsim_log_batcher_append(QsimLogBatcher *self, QsimLogType log_type, const guint8 *data,
                             gsize len);

/* Buffers @bytes (a reference is taken; nothing for empty bytes). */
void qsim_log_batcher_append_bytes(QsimLogBatcher *self, QsimLogType log_type, GBytes *bytes);

/* Buffers one text line; a newline is added when @text has none. */
void qsim_log_batcher_append_line(QsimLogBatcher *self, QsimLogType log_type, const gchar *text);

/**
 * qsim_log_batcher_flush:
 *
 * Writes everything buffered now, in one transaction, on the main loop. On
 * failure the data stays buffered (nothing is lost) and a retry is scheduled.
 * With a batch in flight on the store worker it fails with %QSIM_ERROR_BUSY:
 * use qsim_log_batcher_flush_async() there.
 *
 * Returns: %TRUE when the buffer is empty afterwards
 */
gboolean qsim_log_batcher_flush(QsimLogBatcher *self, GError **error);

void qsim_log_batcher_flush_async(QsimLogBatcher *self, GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean qsim_log_batcher_flush_finish(QsimLogBatcher *self, GAsyncResult *result, GError **error);
void qsim_log_batcher_kick(QsimLogBatcher *self);

/*
 * With a worker, batches are written in its thread while the main loop goes on;
 * one batch at a time, and what comes meanwhile is the next one.
 */
void qsim_log_batcher_set_store_worker(QsimLogBatcher *self, QsimStoreWorker *worker);

void qsim_log_batcher_set_low_latency(QsimLogBatcher *self, guint linger_ms, guint interval_ms);

void qsim_log_batcher_set_output_limit(QsimLogBatcher *self, guint64 limit);

/* Returns: whether the output limit cut the stored output */
gboolean qsim_log_batcher_get_output_truncated(QsimLogBatcher *self);

/* Returns: bytes buffered and not yet written (a batch in flight included) */
gsize qsim_log_batcher_get_buffered(QsimLogBatcher *self);

/* Returns: whether the producer must hold back (see "congested") */
gboolean qsim_log_batcher_get_congested(QsimLogBatcher *self);

/* Returns: the number of successful flushes (transactions) so far */
guint qsim_log_batcher_get_n_flushes(QsimLogBatcher *self);

/* Returns: the largest buffer seen, in bytes (for tests and benchmarks) */
gsize qsim_log_batcher_get_max_buffered(QsimLogBatcher *self);

G_END_DECLS
