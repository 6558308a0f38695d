#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <string.h>

#include "qsim-serial-reader.h"
#include "qsim-vm-tail.h"

#define QSIM_SERIAL_READ_SIZE 4096
/* enough of the console to say what the guest printed last when it never got ready */
#define QSIM_SERIAL_TAIL_SIZE 512

struct _QsimSerialReader {
	GObject parent_instance;
	GInputStream *stream;
	GCancellable *cancellable;
	gchar *marker;
	GByteArray *window; /* last strlen(marker)-1 bytes, to find a marker split by a read */
	QsimVmTail *tail;
	guint64 n_bytes;
	gboolean marker_seen;
	gboolean eof;
	gboolean started;
	gboolean paused;
	gboolean reading; /* a read is in flight: never start a second one */
};

G_DEFINE_TYPE(QsimSerialReader, qsim_serial_reader, G_TYPE_OBJECT)

enum { SIGNAL_DATA, SIGNAL_MARKER, SIGNAL_EOF, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

/* the console may carry NUL bytes, so no str* function can search it */
static gboolean
qsim_serial_reader_find(const guint8 *hay, gsize hay_len, const gchar *needle, gsize len)
{
	for (gsize i = 0; i + len <= hay_len; i++) {
		if (memcmp(hay + i, needle, len) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
qsim_serial_reader_scan_marker(QsimSerialReader *self, const guint8 *data, gsize len)
{
	gsize mlen;

	if (self->marker == NULL || self->marker_seen)
		return;
	mlen = strlen(self->marker);
	g_byte_array_append(self->window, data, len);
	if (qsim_serial_reader_find(self->window->data, self->window->len, self->marker, mlen)) {
		self->marker_seen = TRUE;
		g_byte_array_set_size(self->window, 0);
		g_signal_emit(self, signals[SIGNAL_MARKER], 0);
		return;
	}
	if (self->window->len >= mlen)
		g_byte_array_remove_range(self->window, 0, self->window->len - (mlen - 1));
}

static void qsim_serial_reader_read_next(QsimSerialReader *self);

static void
qsim_serial_reader_set_eof(QsimSerialReader *self)
{
	if (self->eof)
		return;
	self->eof = TRUE;
	g_signal_emit(self, signals[SIGNAL_EOF], 0);
}

static void
qsim_serial_reader_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimSerialReader) self = QSIM_SERIAL_READER(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	gsize len = 0;
	const guint8 *data;

	self->reading = FALSE;
	bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);
	if (bytes == NULL) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			g_debug("serial console read failed: %s", error->message);
		qsim_serial_reader_set_eof(self);
		return;
	}
	data = g_bytes_get_data(bytes, &len);
	if (len == 0) {
		qsim_serial_reader_set_eof(self);
		return;
	}
	self->n_bytes += len;
	qsim_vm_tail_append(self->tail, data, len);
	g_signal_emit(self, signals[SIGNAL_DATA], 0, bytes);
	qsim_serial_reader_scan_marker(self, data, len);
	/* paused: the bytes stay in the pipe and QEMU's chardev waits for room */
	if (!g_cancellable_is_cancelled(self->cancellable) && !self->paused)
		qsim_serial_reader_read_next(self);
}

static void
qsim_serial_reader_read_next(QsimSerialReader *self)
{
	self->reading = TRUE;
	g_input_stream_read_bytes_async(self->stream, QSIM_SERIAL_READ_SIZE, G_PRIORITY_DEFAULT,
	                                self->cancellable, qsim_serial_reader_read_cb,
	                                g_object_ref(self));
}

/**
 * qsim_serial_reader_start:
 * @self: a #QsimSerialReader
 *
 * Starts reading on the thread-default main context. Reading holds a reference to
 * @self until the stream ends or qsim_serial_reader_stop() is called.
 */
void
qsim_serial_reader_start(QsimSerialReader *self)
{
	g_return_if_fail(!self->started);
	self->started = TRUE;
	if (!self->paused)
		qsim_serial_reader_read_next(self);
}

/**
 * qsim_serial_reader_stop:
 * @self: a #QsimSerialReader
 *
 * Cancels the pending read; no "data" is emitted afterwards.
 */
void
qsim_serial_reader_stop(QsimSerialReader *self)
{
	g_cancellable_cancel(self->cancellable);
}

/**
 * qsim_serial_reader_set_paused:
 * @self: a #QsimSerialReader
 * @paused: whether to stop reading
 *
 * Backpressure: while paused no new read starts, so at most the one read already in
 * flight (QSIM_SERIAL_READ_SIZE bytes) still arrives as "data"; the rest waits in the
 * stream. Unpausing reads on where it stopped.
 */
void
qsim_serial_reader_set_paused(QsimSerialReader *self, gboolean paused)
{
	g_return_if_fail(QSIM_IS_SERIAL_READER(self));
	if (self->paused == paused)
		return;
	self->paused = paused;
	if (!paused && self->started && !self->reading && !self->eof &&
	    !g_cancellable_is_cancelled(self->cancellable))
		qsim_serial_reader_read_next(self);
}

gboolean
qsim_serial_reader_get_paused(QsimSerialReader *self)
{
	return self->paused;
}

gboolean
qsim_serial_reader_get_marker_seen(QsimSerialReader *self)
{
	return self->marker_seen;
}

gboolean
qsim_serial_reader_get_eof(QsimSerialReader *self)
{
	return self->eof;
}

guint64
qsim_serial_reader_get_n_bytes(QsimSerialReader *self)
{
	return self->n_bytes;
}

/**
 * qsim_serial_reader_get_tail:
 * @self: a #QsimSerialReader
 *
 * Returns: (transfer full): the last few hundred bytes of console output as valid
 * UTF-8, for error messages
 */
gchar *
qsim_serial_reader_get_tail(QsimSerialReader *self)
{
	return qsim_vm_tail_to_string(self->tail);
}

static void
qsim_serial_reader_finalize(GObject *object)
{
	QsimSerialReader *self = QSIM_SERIAL_READER(object);

	g_cancellable_cancel(self->cancellable);
	g_clear_object(&self->cancellable);
	g_clear_object(&self->stream);
	g_free(self->marker);
	g_byte_array_unref(self->window);
	qsim_vm_tail_free(self->tail);
	G_OBJECT_CLASS(qsim_serial_reader_parent_class)->finalize(object);
}

static void
qsim_serial_reader_class_init(QsimSerialReaderClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->finalize = qsim_serial_reader_finalize;
	signals[SIGNAL_DATA] = g_signal_new("data", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
	                                    NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_BYTES);
	signals[SIGNAL_MARKER] = g_signal_new("marker", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
	                                      0, NULL, NULL, NULL, G_TYPE_NONE, 0);
	signals[SIGNAL_EOF] = g_signal_new("eof", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
	                                   NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qsim_serial_reader_init(QsimSerialReader *self)
{
	self->cancellable = g_cancellable_new();
	self->window = g_byte_array_new();
	self->tail = qsim_vm_tail_new(QSIM_SERIAL_TAIL_SIZE);
}

/**
 * qsim_serial_reader_new:
 * @stream: the console stream, e.g. QEMU's stdout pipe
 * @marker: (nullable): a byte string that means "ready" when seen, e.g. "QSIM-READY"
 *
 * Returns: (transfer full): a new reader; call qsim_serial_reader_start()
 */
QsimSerialReader *
qsim_serial_reader_new(GInputStream *stream, const gchar *marker)
{
	QsimSerialReader *self = g_object_new(QSIM_TYPE_SERIAL_READER, NULL);

	self->stream = g_object_ref(stream);
	if (marker != NULL && marker[0] != '\0')
		self->marker = g_strdup(marker);
	return self;
}
