#define G_LOG_DOMAIN "qsim-qmp"

#include "config.h"

#include <errno.h>
#include <gio/gunixfdmessage.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-stream.h"

/* Big enough that a typical reply arrives in one read, small enough to stay cheap. */
#define READ_CHUNK 65536
/* Raw traffic goes to g_debug; a 10 MiB reply should not flood the log. */
#define LOG_MAX 4096

struct _QsimQmpStream {
	GObject parent_instance;
	GIOStream *io;
	GCancellable *cancellable;
	GByteArray *buf;
	gsize max_buffer;
	/* bytes of buf already known to hold no '\n', so each byte is scanned once */
	gsize scanned;
	GQueue *write_queue; /* of WriteItem, oldest first */
	GBytes *write_current;
	GSource *write_fd_source; /* waits until the socket takes a line carrying an fd */
	gint write_fd;            /* that fd, owned, while write_fd_source waits */
	JsonParser *parser;
	gboolean started;
	gboolean reading;
	gboolean closed;
	gboolean io_closed;
	gboolean eof;
};

/* One line to write, and the fd to pass with its first byte (SCM_RIGHTS), or -1. */
typedef struct {
	GBytes *line;
	gint fd;
} WriteItem;

static void
write_item_free(WriteItem *item)
{
	g_bytes_unref(item->line);
	if (item->fd >= 0)
		close(item->fd);
	g_free(item);
}

G_DEFINE_TYPE(QsimQmpStream, qsim_qmp_stream, G_TYPE_OBJECT)

enum { SIGNAL_MESSAGE, SIGNAL_CLOSED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

static void qsim_qmp_stream_read_next(QsimQmpStream *self);
static void qsim_qmp_stream_write_next(QsimQmpStream *self);

/* The GIOStream is closed only once no read or write is in flight: closing under a pending
 * operation fails with G_IO_ERROR_PENDING on some stream types and leaves the fd open. */
static void
qsim_qmp_stream_maybe_close_io(QsimQmpStream *self)
{
	g_autoptr(GError) error = NULL;

	if (!self->closed || self->io_closed || self->reading || self->write_current != NULL)
		return;
	self->io_closed = TRUE;
	/* closing a local socket never blocks: nothing to flush, no SO_LINGER */
	if (!g_io_stream_close(self->io, NULL, &error))
		g_debug("closing QMP stream: %s", error->message);
}

static void
qsim_qmp_stream_shutdown(QsimQmpStream *self, const GError *error)
{
	if (self->closed)
		return;
	self->closed = TRUE;
	g_cancellable_cancel(self->cancellable);
	g_queue_clear_full(self->write_queue, (GDestroyNotify)write_item_free);
	if (self->write_fd_source != NULL) {
		/* the line waiting for the socket is dropped, with the ref its source held */
		g_source_destroy(self->write_fd_source);
		g_clear_pointer(&self->write_fd_source, g_source_unref);
		g_clear_pointer(&self->write_current, g_bytes_unref);
		close(self->write_fd);
		self->write_fd = -1;
		g_object_unref(self);
	}
	g_byte_array_set_size(self->buf, 0);
	qsim_qmp_stream_maybe_close_io(self);
	if (error != NULL)
		g_debug("QMP stream closed: %s", error->message);
	g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
}

static void
qsim_qmp_stream_fail(QsimQmpStream *self, GError *error)
{
	g_autoptr(GError) owned = error;
	qsim_error_convert(&owned);
	qsim_qmp_stream_shutdown(self, owned);
}

/* Returns FALSE when the line was not a JSON object and the stream has been failed. */
static gboolean
qsim_qmp_stream_handle_line(QsimQmpStream *self, const gchar *line, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) root = NULL;

	/* QEMU ends lines with "\r\n"; be lenient with bare "\n" */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return TRUE;
	g_debug("<- %.*s%s", (int)MIN(len, LOG_MAX), line, len > LOG_MAX ? "..." : "");
	if (!json_parser_load_from_data(self->parser, line, (gssize)len, &error)) {
		qsim_qmp_stream_fail(self,
		                     g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
		                                 "malformed QMP message: %s", error->message));
		return FALSE;
	}
	root = json_parser_steal_root(self->parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
		qsim_qmp_stream_fail(self,
		                     g_error_new_literal(QSIM_ERROR, QSIM_ERROR_QMP,
		                                         "malformed QMP message: not an object"));
		return FALSE;
	}
	g_signal_emit(self, signals[SIGNAL_MESSAGE], 0, json_node_get_object(root));
	return !self->closed;
}

static void
qsim_qmp_stream_process(QsimQmpStream *self)
{
	gsize start = 0;

	while (!self->closed) {
		const guint8 *nl;
		gsize len;

		nl = memchr(self->buf->data + self->scanned, '\n', self->buf->len - self->scanned);
		if (nl == NULL)
			break;
		len = (gsize)(nl - (self->buf->data + start));
		if (len > self->max_buffer) {
			qsim_qmp_stream_fail(
			    self, g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
			                      "QMP message exceeds %" G_GSIZE_FORMAT " bytes",
			                      self->max_buffer));
			return;
		}
		self->scanned = (gsize)(nl - self->buf->data) + 1;
		if (!qsim_qmp_stream_handle_line(self, (const gchar *)self->buf->data + start, len))
			return;
		start = self->scanned;
	}
	if (self->closed)
		return;
	/* one memmove per read, not per line */
	if (start > 0)
		g_byte_array_remove_range(self->buf, 0, (guint)start);
	self->scanned = self->buf->len;
	if (self->buf->len > self->max_buffer) {
		qsim_qmp_stream_fail(self,
		                     g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
		                                 "QMP message exceeds %" G_GSIZE_FORMAT " bytes",
		                                 self->max_buffer));
	}
}

/* ECONNRESET and EPIPE mean the peer went away, which for QMP is an EOF, not a fault */
static gboolean
qsim_qmp_stream_peer_gone(const GError *error)
{
	return g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
	       g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
}

static void
qsim_qmp_stream_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimQmpStream) self = QSIM_QMP_STREAM(user_data);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	gsize size = 0;
	const guint8 *data;

	self->reading = FALSE;
	bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);
	if (self->closed) {
		qsim_qmp_stream_maybe_close_io(self);
		return;
	}
	if (bytes == NULL && qsim_qmp_stream_peer_gone(error)) {
		/* QEMU exiting after quit often resets the socket instead of a clean EOF */
		self->eof = TRUE;
		qsim_qmp_stream_fail(self, g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
		                                       "QMP connection closed by peer (%s)",
		                                       error->message));
		return;
	}
	if (bytes == NULL) {
		g_prefix_error(&error, "reading QMP socket: ");
		qsim_qmp_stream_fail(self, g_steal_pointer(&error));
		return;
	}
	data = g_bytes_get_data(bytes, &size);
	if (size == 0) {
		self->eof = TRUE;
		qsim_qmp_stream_fail(self, g_error_new_literal(QSIM_ERROR, QSIM_ERROR_QMP,
		                                               "QMP connection closed by peer"));
		return;
	}
	g_byte_array_append(self->buf, data, (guint)size);
	qsim_qmp_stream_process(self);
	if (!self->closed)
		qsim_qmp_stream_read_next(self);
}

static void
qsim_qmp_stream_read_next(QsimQmpStream *self)
{
	self->reading = TRUE;
	g_input_stream_read_bytes_async(g_io_stream_get_input_stream(self->io), READ_CHUNK,
	                                G_PRIORITY_DEFAULT, self->cancellable,
	                                qsim_qmp_stream_read_cb, g_object_ref(self));
}

static void
qsim_qmp_stream_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimQmpStream) self = QSIM_QMP_STREAM(user_data);
	g_autoptr(GError) error = NULL;
	gboolean ok;

	ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, &error);
	g_clear_pointer(&self->write_current, g_bytes_unref);
	if (self->closed) {
		qsim_qmp_stream_maybe_close_io(self);
		return;
	}
	if (!ok && qsim_qmp_stream_peer_gone(error)) {
		self->eof = TRUE;
		qsim_qmp_stream_fail(self, g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
		                                       "QMP connection closed by peer (%s)",
		                                       error->message));
		return;
	}
	if (!ok) {
		g_prefix_error(&error, "writing QMP socket: ");
		qsim_qmp_stream_fail(self, g_steal_pointer(&error));
		return;
	}
	qsim_qmp_stream_write_next(self);
}

static void
qsim_qmp_stream_write_async(QsimQmpStream *self, GBytes *bytes)
{
	gsize size = 0;
	const guint8 *data = g_bytes_get_data(bytes, &size);

	g_output_stream_write_all_async(g_io_stream_get_output_stream(self->io), data, size,
	                                G_PRIORITY_DEFAULT, self->cancellable,
	                                qsim_qmp_stream_write_cb, g_object_ref(self));
}

static gboolean qsim_qmp_stream_write_fd_ready_cb(GSocket *socket, GIOCondition condition,
                                                  gpointer user_data);

/* Sends the start of write_current with @fd attached; the rest goes the normal way. The
 * socket is non-blocking, so a full socket buffer means waiting for G_IO_OUT. */
static void
qsim_qmp_stream_write_with_fd(QsimQmpStream *self, gint fd)
{
	GSocket *socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(self->io));
	g_autoptr(GSocketControlMessage) fd_msg = g_unix_fd_message_new();
	g_autoptr(GError) error = NULL;
	GOutputVector vec;
	gsize size = 0;
	gsize written = 0;
	GPollableReturn ret;

	vec.buffer = g_bytes_get_data(self->write_current, &size);
	vec.size = size;
	if (!g_unix_fd_message_append_fd(G_UNIX_FD_MESSAGE(fd_msg), fd, &error)) {
		close(fd);
		g_clear_pointer(&self->write_current, g_bytes_unref);
		g_prefix_error(&error, "cannot pass an fd over QMP: ");
		qsim_qmp_stream_fail(self, g_steal_pointer(&error));
		return;
	}
	ret = g_socket_send_message_with_timeout(socket, NULL, &vec, 1, &fd_msg, 1, 0, 0, &written,
	                                         self->cancellable, &error);
	if (ret == G_POLLABLE_RETURN_WOULD_BLOCK) {
		/* fd_msg holds a dup: keep ours for the retry; the source holds a ref */
		self->write_fd = fd;
		self->write_fd_source = g_socket_create_source(socket, G_IO_OUT, NULL);
		g_source_set_callback(self->write_fd_source,
		                      G_SOURCE_FUNC(qsim_qmp_stream_write_fd_ready_cb),
		                      g_object_ref(self), NULL);
		g_source_attach(self->write_fd_source, g_main_context_get_thread_default());
		return;
	}
	close(fd);
	if (ret != G_POLLABLE_RETURN_OK) {
		g_clear_pointer(&self->write_current, g_bytes_unref);
		g_prefix_error(&error, "passing an fd over QMP: ");
		qsim_qmp_stream_fail(self, g_steal_pointer(&error));
		return;
	}
	if (written < size) {
		g_autoptr(GBytes) rest =
		    g_bytes_new_from_bytes(self->write_current, written, size - written);

		g_bytes_unref(self->write_current);
		self->write_current = g_bytes_ref(rest);
		qsim_qmp_stream_write_async(self, rest);
		return;
	}
	g_clear_pointer(&self->write_current, g_bytes_unref);
	qsim_qmp_stream_write_next(self);
}

static gboolean
qsim_qmp_stream_write_fd_ready_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
	g_autoptr(QsimQmpStream) self = QSIM_QMP_STREAM(user_data);
	gint fd = self->write_fd;

	self->write_fd = -1;
	g_clear_pointer(&self->write_fd_source, g_source_unref);
	qsim_qmp_stream_write_with_fd(self, fd);
	return G_SOURCE_REMOVE;
}

static void
qsim_qmp_stream_write_next(QsimQmpStream *self)
{
	WriteItem *item;
	gint fd;

	if (self->write_current != NULL || self->closed)
		return;
	item = g_queue_pop_head(self->write_queue);
	if (item == NULL)
		return;
	self->write_current = g_steal_pointer(&item->line);
	fd = item->fd;
	item->fd = -1;
	write_item_free(item);
	if (fd >= 0) {
		qsim_qmp_stream_write_with_fd(self, fd);
		return;
	}
	qsim_qmp_stream_write_async(self, self->write_current);
}

/**
 * qsim_qmp_stream_send_with_fd:
 * @self: a #QsimQmpStream
 * @msg: (transfer none): the object to send; serialized at once
 * @fd: a file descriptor to pass along (SCM_RIGHTS, for QMP `getfd`), or -1; duplicated,
 *   the caller keeps its own
 *
 * Queues @msg as one line. Writes go out in call order; a write error closes the stream
 * and is reported through "closed". Sending on a closed stream is ignored (logged). An
 * fd needs a stream on a unix socket (qsim_qmp_stream_can_pass_fds()).
 */
void
qsim_qmp_stream_send_with_fd(QsimQmpStream *self, JsonObject *msg, gint fd)
{
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	g_autofree gchar *text = NULL;
	gsize len = 0;
	GString *line;
	WriteItem *item;

	g_return_if_fail(QSIM_IS_QMP_STREAM(self));
	g_return_if_fail(msg != NULL);
	g_return_if_fail(fd < 0 || qsim_qmp_stream_can_pass_fds(self));

	json_node_set_object(node, msg);
	json_generator_set_root(gen, node);
	text = json_generator_to_data(gen, &len);
	if (self->closed) {
		g_debug("dropping message on closed QMP stream: %s", text);
		return;
	}
	g_debug("-> %s%s", text, fd >= 0 ? " (with an fd)" : "");
	line = g_string_new_len(text, (gssize)len);
	g_string_append(line, "\r\n");
	item = g_new0(WriteItem, 1);
	item->line = g_string_free_to_bytes(line);
	item->fd = fd >= 0 ? dup(fd) : -1;
	if (fd >= 0 && item->fd < 0) {
		write_item_free(item);
		qsim_qmp_stream_fail(self, g_error_new(QSIM_ERROR, QSIM_ERROR_IO,
		                                       "cannot duplicate an fd for QMP: %s",
		                                       g_strerror(errno)));
		return;
	}
	g_queue_push_tail(self->write_queue, item);
	qsim_qmp_stream_write_next(self);
}

/**
 * qsim_qmp_stream_send:
 * @self: a #QsimQmpStream
 * @msg: (transfer none): the object to send; serialized at once, so the caller may change
 * or free it afterwards
 *
 * Queues @msg as one line; qsim_qmp_stream_send_with_fd() without an fd.
 */
void
qsim_qmp_stream_send(QsimQmpStream *self, JsonObject *msg)
{
	qsim_qmp_stream_send_with_fd(self, msg, -1);
}

/**
 * qsim_qmp_stream_can_pass_fds:
 * @self: a #QsimQmpStream
 *
 * Returns: %TRUE when the stream runs over a unix socket, which can carry fds
 */
gboolean
qsim_qmp_stream_can_pass_fds(QsimQmpStream *self)
{
	GSocket *socket;

	if (!G_IS_SOCKET_CONNECTION(self->io))
		return FALSE;
	socket = g_socket_connection_get_socket(G_SOCKET_CONNECTION(self->io));
	return g_socket_get_family(socket) == G_SOCKET_FAMILY_UNIX;
}

/**
 * qsim_qmp_stream_start:
 * @self: a #QsimQmpStream
 *
 * Starts reading. Call it once, after connecting to the signals, so that no message is
 * missed.
 */
void
qsim_qmp_stream_start(QsimQmpStream *self)
{
	g_return_if_fail(QSIM_IS_QMP_STREAM(self));
	if (self->started || self->closed)
		return;
	self->started = TRUE;
	qsim_qmp_stream_read_next(self);
}

/**
 * qsim_qmp_stream_set_max_buffer:
 * @self: a #QsimQmpStream
 * @max_buffer: the most bytes one message (or an unfinished line) may take
 *
 * Changes the cap on buffered input (default %QSIM_QMP_STREAM_MAX_BUFFER).
 */
void
qsim_qmp_stream_set_max_buffer(QsimQmpStream *self, gsize max_buffer)
{
	g_return_if_fail(QSIM_IS_QMP_STREAM(self));
	g_return_if_fail(max_buffer > 0);
	self->max_buffer = max_buffer;
}

/**
 * qsim_qmp_stream_is_open:
 * @self: a #QsimQmpStream
 *
 * Returns: %TRUE until the stream has been closed or has failed.
 */
gboolean
qsim_qmp_stream_is_open(QsimQmpStream *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_STREAM(self), FALSE);
	return !self->closed;
}

/**
 * qsim_qmp_stream_get_eof:
 * @self: a #QsimQmpStream
 *
 * Returns: %TRUE if the stream ended because the peer closed it, as QEMU does after `quit`.
 */
gboolean
qsim_qmp_stream_get_eof(QsimQmpStream *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_STREAM(self), FALSE);
	return self->eof;
}

/**
 * qsim_qmp_stream_close:
 * @self: a #QsimQmpStream
 *
 * Closes the stream, drops queued writes and emits "closed" with a %NULL error, unless the
 * stream was already closed. Safe to call from a signal handler.
 */
void
qsim_qmp_stream_close(QsimQmpStream *self)
{
	g_return_if_fail(QSIM_IS_QMP_STREAM(self));
	qsim_qmp_stream_shutdown(self, NULL);
}

/**
 * qsim_qmp_stream_new:
 * @stream: (transfer none): a connected stream, e.g. a #GSocketConnection; the new object
 * takes its own reference and closes it when done
 *
 * Returns: (transfer full): a new #QsimQmpStream; call qsim_qmp_stream_start() to read.
 */
QsimQmpStream *
qsim_qmp_stream_new(GIOStream *stream)
{
	QsimQmpStream *self;

	g_return_val_if_fail(G_IS_IO_STREAM(stream), NULL);
	self = g_object_new(QSIM_TYPE_QMP_STREAM, NULL);
	self->io = g_object_ref(stream);
	return self;
}

static void
qsim_qmp_stream_dispose(GObject *object)
{
	QsimQmpStream *self = QSIM_QMP_STREAM(object);

	/* no operation can be in flight here: each one holds a reference */
	if (self->io != NULL && !self->io_closed) {
		g_autoptr(GError) error = NULL;
		self->closed = TRUE;
		self->io_closed = TRUE;
		if (!g_io_stream_close(self->io, NULL, &error))
			g_debug("closing QMP stream: %s", error->message);
	}
	g_clear_object(&self->io);
	G_OBJECT_CLASS(qsim_qmp_stream_parent_class)->dispose(object);
}

static void
qsim_qmp_stream_finalize(GObject *object)
{
	QsimQmpStream *self = QSIM_QMP_STREAM(object);

	g_object_unref(self->cancellable);
	g_byte_array_unref(self->buf);
	g_queue_free_full(self->write_queue, (GDestroyNotify)write_item_free);
	g_clear_pointer(&self->write_current, g_bytes_unref);
	g_object_unref(self->parser);
	G_OBJECT_CLASS(qsim_qmp_stream_parent_class)->finalize(object);
}

static void
qsim_qmp_stream_class_init(QsimQmpStreamClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_qmp_stream_dispose;
	object_class->finalize = qsim_qmp_stream_finalize;

	signals[SIGNAL_MESSAGE] =
	    g_signal_new("message", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                 NULL, G_TYPE_NONE, 1, JSON_TYPE_OBJECT);
	signals[SIGNAL_CLOSED] = g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
	                                      0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
qsim_qmp_stream_init(QsimQmpStream *self)
{
	self->cancellable = g_cancellable_new();
	self->buf = g_byte_array_new();
	self->max_buffer = QSIM_QMP_STREAM_MAX_BUFFER;
	self->write_queue = g_queue_new();
	self->write_fd = -1;
	self->parser = json_parser_new_immutable();
}
