#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <gio/gunixfdmessage.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-stream.h"

typedef struct {
	QmpTestPeer *peer;
	GIOStream *io;
	QsimQmpStream *stream;
	GPtrArray *messages; /* compact JSON text of each "message" */
	guint n_closed;
	GError *closed_error;
	gint close_after; /* close the stream from the handler after this many messages */
} Fixture;

static void
on_message(QsimQmpStream *stream, JsonObject *msg, Fixture *f)
{
	g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
	json_node_set_object(node, msg);
	g_ptr_array_add(f->messages, json_to_string(node, FALSE));
	if (f->close_after > 0 && (gint)f->messages->len == f->close_after)
		qsim_qmp_stream_close(stream);
}

static void
on_closed(QsimQmpStream *stream, GError *error, Fixture *f)
{
	f->n_closed++;
	if (error != NULL)
		f->closed_error = g_error_copy(error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->peer = qmp_test_peer_new(&f->io);
	f->stream = qsim_qmp_stream_new(f->io);
	f->messages = g_ptr_array_new_with_free_func(g_free);
	g_signal_connect(f->stream, "message", G_CALLBACK(on_message), f);
	g_signal_connect(f->stream, "closed", G_CALLBACK(on_closed), f);
	qsim_qmp_stream_start(f->stream);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	if (f->stream != NULL)
		g_signal_handlers_disconnect_by_data(f->stream, f);
	g_clear_object(&f->stream);
	g_clear_object(&f->io);
	qmp_test_peer_free(f->peer);
	qmp_test_iterate_idle();
	g_ptr_array_unref(f->messages);
	g_clear_error(&f->closed_error);
}

static void
wait_messages(Fixture *f, guint n)
{
	while (f->messages->len < n && f->n_closed == 0)
		g_main_context_iteration(NULL, TRUE);
}

static void
wait_closed(Fixture *f)
{
	while (f->n_closed == 0)
		g_main_context_iteration(NULL, TRUE);
}

/* Several messages in one write, CR LF and bare LF, blank lines skipped. */
static void
test_framing(Fixture *f, gconstpointer data)
{
	const gchar *chunk = "{\"a\": 1}\r\n\r\n{\"b\": [1, 2]}\n{\"c\": \"x\\ny\"}\r\n{\"d\":";

	qmp_test_peer_send_bytes(f->peer, chunk, strlen(chunk));
	wait_messages(f, 3);
	qmp_test_iterate_idle();
	g_assert_cmpuint(f->messages->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(f->messages, 0), ==, "{\"a\":1}");
	g_assert_cmpstr(g_ptr_array_index(f->messages, 1), ==, "{\"b\":[1,2]}");
	g_assert_cmpstr(g_ptr_array_index(f->messages, 2), ==, "{\"c\":\"x\\ny\"}");
	qmp_test_peer_send_bytes(f->peer, " null}\r\n", 8);
	wait_messages(f, 4);
	g_assert_cmpstr(g_ptr_array_index(f->messages, 3), ==, "{\"d\":null}");
	g_assert_cmpuint(f->n_closed, ==, 0);
	g_assert_true(qsim_qmp_stream_is_open(f->stream));
}

/* Writes leave in call order, each on its own CR LF terminated line. */
static void
test_write_order(Fixture *f, gconstpointer data)
{
	for (gint i = 0; i < 200; i++) {
		g_autoptr(JsonObject) msg = json_object_new();
		json_object_set_int_member(msg, "n", i);
		qsim_qmp_stream_send(f->stream, msg);
	}
	for (gint i = 0; i < 200; i++) {
		g_autoptr(JsonObject) got = qmp_test_peer_read_command(f->peer);
		g_assert_nonnull(got);
		g_assert_cmpint(json_object_get_int_member(got, "n"), ==, i);
	}
}

/* An unfinished line over the cap closes the stream with an error. */
static void
test_cap_partial(Fixture *f, gconstpointer data)
{
	g_autofree gchar *big = g_strnfill(100, 'x');

	qsim_qmp_stream_set_max_buffer(f->stream, 64);
	qmp_test_peer_send_bytes(f->peer, "{\"ok\": 1}\r\n", 11);
	qmp_test_peer_send_bytes(f->peer, big, 100);
	wait_closed(f);
	g_assert_cmpuint(f->messages->len, ==, 1);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(f->closed_error->message, "exceeds 64 bytes"));
	g_assert_false(qsim_qmp_stream_is_open(f->stream));
	g_assert_false(qsim_qmp_stream_get_eof(f->stream));
	/* our end is closed: the peer reads EOF */
	g_assert_null(qmp_test_peer_read_command(f->peer));
}

/* A complete line over the cap is refused too, even if it arrives in one read. */
static void
test_cap_complete(Fixture *f, gconstpointer data)
{
	g_autofree gchar *pad = g_strnfill(80, 'y');
	g_autofree gchar *line = g_strdup_printf("{\"s\": \"%s\"}\r\n", pad);

	qsim_qmp_stream_set_max_buffer(f->stream, 64);
	qmp_test_peer_send_bytes(f->peer, line, strlen(line));
	wait_closed(f);
	g_assert_cmpuint(f->messages->len, ==, 0);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
}

static void
test_not_object(Fixture *f, gconstpointer data)
{
	qmp_test_peer_send_line(f->peer, "{\"fine\": true}");
	qmp_test_peer_send_line(f->peer, "\"a string\"");
	qmp_test_peer_send_line(f->peer, "{\"never\": true}");
	wait_closed(f);
	g_assert_cmpuint(f->messages->len, ==, 1);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(f->closed_error->message, "not an object"));
}

static void
test_eof(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) msg = json_object_new();

	qmp_test_peer_send_line(f->peer, "{\"last\": 1}");
	/* an unfinished line at EOF is dropped */
	qmp_test_peer_send_bytes(f->peer, "{\"partial\"", 10);
	qmp_test_peer_close(f->peer);
	wait_closed(f);
	g_assert_cmpuint(f->messages->len, ==, 1);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_true(qsim_qmp_stream_get_eof(f->stream));
	/* sending after the end is a logged no-op, and "closed" is not repeated */
	json_object_set_int_member(msg, "late", 1);
	qsim_qmp_stream_send(f->stream, msg);
	qsim_qmp_stream_close(f->stream);
	qmp_test_iterate_idle();
	g_assert_cmpuint(f->n_closed, ==, 1);
}

/* A peer that closes with our data unread makes the kernel report ECONNRESET, as QEMU does
 * when it exits after quit: that is an end of stream, not a socket fault. */
static void
test_reset_is_eof(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) msg = json_object_new();

	json_object_set_string_member(msg, "execute", "quit");
	qsim_qmp_stream_send(f->stream, msg);
	while (!g_pollable_input_stream_is_readable(
	    G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(G_IO_STREAM(f->peer->conn)))))
		g_main_context_iteration(NULL, TRUE);
	qmp_test_peer_close(f->peer);
	wait_closed(f);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(f->closed_error->message, "closed by peer"));
	g_assert_true(qsim_qmp_stream_get_eof(f->stream));
}

/* close() from inside a "message" handler stops delivery of the rest of the batch. */
static void
test_close_in_handler(Fixture *f, gconstpointer data)
{
	const gchar *chunk = "{\"n\": 1}\r\n{\"n\": 2}\r\n{\"n\": 3}\r\n";

	f->close_after = 2;
	qmp_test_peer_send_bytes(f->peer, chunk, strlen(chunk));
	wait_closed(f);
	qmp_test_iterate_idle();
	g_assert_cmpuint(f->messages->len, ==, 2);
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_null(f->closed_error);
	qsim_qmp_stream_close(f->stream);
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_null(qmp_test_peer_read_command(f->peer));
}

/* Dropping the last reference while a read is pending must neither leak nor crash. */
static void
test_unref_while_reading(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonObject) msg = json_object_new();

	json_object_set_boolean_member(msg, "bye", TRUE);
	qsim_qmp_stream_send(f->stream, msg);
	g_signal_handlers_disconnect_by_data(f->stream, f);
	g_clear_object(&f->stream);
	qmp_test_iterate_idle();
	g_assert_cmpuint(f->n_closed, ==, 0);
}

/* A line sent with an fd carries it (SCM_RIGHTS) on its first byte, as QEMU's `getfd`
 * expects; the peer gets a working descriptor and the whole line. */
static void
test_send_with_fd(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) ours = NULL;
	g_autoptr(GSocket) theirs = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(QsimQmpStream) stream = NULL;
	g_autoptr(JsonObject) msg = json_object_new();
	GSocketControlMessage **cmsgs = NULL;
	gint n_cmsgs = 0;
	gchar buf[256] = {0};
	GInputVector vec = {buf, sizeof(buf) - 1};
	gsize got = 0;
	gint sv[2];
	gint pipe_fds[2];
	gint passed;
	gchar byte = 0;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	g_assert_cmpint(pipe(pipe_fds), ==, 0);
	ours = g_socket_new_from_fd(sv[0], &error);
	g_assert_no_error(error);
	theirs = g_socket_new_from_fd(sv[1], &error);
	g_assert_no_error(error);
	conn = g_socket_connection_factory_create_connection(ours);
	stream = qsim_qmp_stream_new(G_IO_STREAM(conn));
	g_assert_true(qsim_qmp_stream_can_pass_fds(stream));

	json_object_set_string_member(msg, "execute", "getfd");
	qsim_qmp_stream_send_with_fd(stream, msg, pipe_fds[1]);
	/* the stream keeps its own copy until it is sent */
	g_assert_cmpint(close(pipe_fds[1]), ==, 0);
	qmp_test_iterate_idle();
	while (got < 2 || buf[got - 1] != '\n') {
		gssize n;

		vec.buffer = buf + got;
		vec.size = sizeof(buf) - 1 - got;
		n = g_socket_receive_message(theirs, NULL, &vec, 1, n_cmsgs == 0 ? &cmsgs : NULL,
		                             n_cmsgs == 0 ? &n_cmsgs : NULL, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(n, >, 0);
		got += (gsize)n;
	}
	g_assert_cmpstr(buf, ==, "{\"execute\":\"getfd\"}\r\n");
	g_assert_cmpint(n_cmsgs, ==, 1);
	g_assert_true(G_IS_UNIX_FD_MESSAGE(cmsgs[0]));
	passed = g_unix_fd_list_get(g_unix_fd_message_get_fd_list(G_UNIX_FD_MESSAGE(cmsgs[0])), 0,
	                            &error);
	g_assert_no_error(error);
	g_assert_cmpint(write(passed, "x", 1), ==, 1);
	g_assert_cmpint(close(passed), ==, 0);
	g_assert_cmpint(read(pipe_fds[0], &byte, 1), ==, 1);
	g_assert_cmpint(byte, ==, 'x');
	g_object_unref(cmsgs[0]);
	g_free(cmsgs);
	/* every writer is closed now: the stream did not leak its copy */
	g_assert_cmpint(read(pipe_fds[0], &byte, 1), ==, 0);
	g_assert_cmpint(close(pipe_fds[0]), ==, 0);
	qsim_qmp_stream_close(stream);
}

/* The socket's buffer is full when the fd line is due: it waits for G_IO_OUT, then goes. */
static void
test_send_with_fd_when_full(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) ours = NULL;
	g_autoptr(GSocket) theirs = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(QsimQmpStream) stream = NULL;
	g_autoptr(JsonObject) msg = json_object_new();
	g_autoptr(GByteArray) got = g_byte_array_new();
	GSocketControlMessage **cmsgs = NULL;
	gint n_cmsgs = 0;
	gchar junk[4096];
	gsize filled = 0;
	gint sv[2];
	gint pipe_fds[2];
	const gchar *line = "{\"execute\":\"getfd\"}\r\n";

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
	g_assert_cmpint(pipe(pipe_fds), ==, 0);
	ours = g_socket_new_from_fd(sv[0], &error);
	g_assert_no_error(error);
	theirs = g_socket_new_from_fd(sv[1], &error);
	g_assert_no_error(error);
	g_socket_set_blocking(theirs, FALSE);
	conn = g_socket_connection_factory_create_connection(ours);
	stream = qsim_qmp_stream_new(G_IO_STREAM(conn));
	memset(junk, ' ', sizeof(junk));
	for (;;) {
		gssize n = g_socket_send_with_blocking(ours, junk, sizeof(junk), FALSE, NULL, NULL);

		if (n <= 0)
			break;
		filled += (gsize)n;
	}
	g_assert_cmpuint(filled, >, 0);

	json_object_set_string_member(msg, "execute", "getfd");
	qsim_qmp_stream_send_with_fd(stream, msg, pipe_fds[1]);
	g_assert_cmpint(close(pipe_fds[1]), ==, 0);
	/* drain until the line and its fd are in */
	for (guint i = 0; i < 10000 && (got->len < filled + strlen(line)); i++) {
		gchar buf[8192];
		GInputVector vec = {buf, sizeof(buf)};
		gssize n;

		g_main_context_iteration(NULL, FALSE);
		n = g_socket_receive_message(theirs, NULL, &vec, 1, n_cmsgs == 0 ? &cmsgs : NULL,
		                             n_cmsgs == 0 ? &n_cmsgs : NULL, NULL, NULL, NULL);
		if (n > 0)
			g_byte_array_append(got, (const guint8 *)buf, (guint)n);
		else
			g_usleep(1000);
	}
	g_assert_cmpuint(got->len, ==, filled + strlen(line));
	g_assert_cmpmem(got->data + filled, strlen(line), line, strlen(line));
	g_assert_cmpint(n_cmsgs, ==, 1);
	g_assert_true(G_IS_UNIX_FD_MESSAGE(cmsgs[0]));
	g_object_unref(cmsgs[0]);
	g_free(cmsgs);
	g_assert_cmpint(close(pipe_fds[0]), ==, 0);
	qsim_qmp_stream_close(stream);
}

static void
test_no_fds_without_socket(void)
{
	g_autoptr(GInputStream) in = g_memory_input_stream_new();
	g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
	g_autoptr(GIOStream) io = g_simple_io_stream_new(in, out);
	g_autoptr(QsimQmpStream) stream = qsim_qmp_stream_new(io);

	g_assert_false(qsim_qmp_stream_can_pass_fds(stream));
	qsim_qmp_stream_close(stream);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/qmp/stream/send-with-fd", test_send_with_fd);
	g_test_add_func("/qsim/qmp/stream/send-with-fd-when-full", test_send_with_fd_when_full);
	g_test_add_func("/qsim/qmp/stream/no-fds-without-socket", test_no_fds_without_socket);
	g_test_add("/qsim/qmp/stream/framing", Fixture, NULL, fixture_setup, test_framing,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/write-order", Fixture, NULL, fixture_setup, test_write_order,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/cap-partial", Fixture, NULL, fixture_setup, test_cap_partial,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/cap-complete", Fixture, NULL, fixture_setup, test_cap_complete,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/not-object", Fixture, NULL, fixture_setup, test_not_object,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/eof", Fixture, NULL, fixture_setup, test_eof,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/reset-is-eof", Fixture, NULL, fixture_setup, test_reset_is_eof,
	           fixture_teardown);
	g_test_add("/qsim/qmp/stream/close-in-handler", Fixture, NULL, fixture_setup,
	           test_close_in_handler, fixture_teardown);
	g_test_add("/qsim/qmp/stream/unref-while-reading", Fixture, NULL, fixture_setup,
	           test_unref_while_reading, fixture_teardown);
	return g_test_run();
}
