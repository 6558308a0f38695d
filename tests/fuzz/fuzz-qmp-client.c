#include "config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp/qsim-qmp-client.h"

/* A hostile QEMU: whatever it sends as its greeting, replies and events, QMP framing,
 * the handshake and reply parsing must end in a client or an error, never a crash. The
 * input is everything the peer says before it hangs up. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
	gboolean done;
	QsimQmpClient *client;
	JsonNode *reply;
} State;

static void
connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	State *s = user_data;

	s->client = qsim_qmp_client_new_for_stream_finish(res, NULL);
	s->done = TRUE;
}

static void
executed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	State *s = user_data;

	s->reply = qsim_qmp_client_execute_finish(QSIM_QMP_CLIENT(source), res, NULL);
	s->done = TRUE;
}

static void
iterate_until(gboolean *flag)
{
	gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

	while (!*flag && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, FALSE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gint fds[2];
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	State s = {FALSE};
	size_t off = 0;

	if (size > 65536)
		return 0; /* beyond one socket buffer the peer would block: not a framing case */
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	while (off < size) {
		ssize_t n = write(fds[1], data + off, size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(fds[1], SHUT_WR);
	sock = g_socket_new_from_fd(fds[0], NULL);
	g_assert_nonnull(sock);
	conn = g_socket_connection_factory_create_connection(sock);
	qsim_qmp_client_new_for_stream_async(G_IO_STREAM(conn), 1000, NULL, connected_cb, &s);
	iterate_until(&s.done);
	if (s.client != NULL) {
		s.done = FALSE;
		qsim_qmp_client_execute_async(s.client, "query-status", NULL, 1000, NULL,
		                              executed_cb, &s);
		iterate_until(&s.done);
		g_clear_pointer(&s.reply, json_node_unref);
		qsim_qmp_client_close(s.client);
		g_clear_object(&s.client);
	}
	g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
	close(fds[1]);
	/* let closed-stream callbacks run before the next input */
	while (g_main_context_iteration(NULL, FALSE))
		;
	return 0;
}
