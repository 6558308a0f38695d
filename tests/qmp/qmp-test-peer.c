#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <sys/socket.h>

#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-client.h"

static GIOStream *
connection_from_fd(int fd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) sock = g_socket_new_from_fd(fd, &error);

	g_assert_no_error(error);
	return G_IO_STREAM(g_socket_connection_factory_create_connection(sock));
}

/**
 * qmp_test_peer_new:
 * @client_side: (out) (transfer full): the end to give to the code under test
 *
 * Returns: (transfer full): the peer, holding the other end of a fresh socketpair.
 */
QmpTestPeer *
qmp_test_peer_new(GIOStream **client_side)
{
	g_autoptr(GSocketConnection) conn = NULL;
	int fds[2];

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	*client_side = connection_from_fd(fds[0]);
	conn = G_SOCKET_CONNECTION(connection_from_fd(fds[1]));
	return qmp_test_peer_new_for_connection(conn);
}

/**
 * qmp_test_peer_new_for_connection:
 * @conn: (transfer none): an accepted connection to act on
 *
 * Returns: (transfer full): a peer speaking on @conn.
 */
QmpTestPeer *
qmp_test_peer_new_for_connection(GSocketConnection *conn)
{
	QmpTestPeer *peer = g_new0(QmpTestPeer, 1);

	peer->conn = g_object_ref(conn);
	peer->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(peer->conn)));
	g_data_input_stream_set_newline_type(peer->in, G_DATA_STREAM_NEWLINE_TYPE_LF);
	peer->out = g_io_stream_get_output_stream(G_IO_STREAM(peer->conn));
	peer->script = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
	return peer;
}

void
qmp_test_peer_free(QmpTestPeer *peer)
{
	if (peer == NULL)
		return;
	qmp_test_peer_close(peer);
	g_object_unref(peer->in);
	g_object_unref(peer->conn);
	g_ptr_array_unref(peer->script);
	g_free(peer);
}

/* Loads tests/data/qmp/<name>: one JSON object per line. */
void
qmp_test_peer_load(QmpTestPeer *peer, const gchar *name)
{
	g_autofree gchar *path = g_build_filename(SRCDIR, "data", "qmp", name, NULL);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonNode) node = NULL;
		if (lines[i][0] == '\0')
			continue;
		node = json_from_string(lines[i], &error);
		g_assert_no_error(error);
		g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
		g_ptr_array_add(peer->script, json_object_ref(json_node_get_object(node)));
	}
	g_assert_cmpuint(peer->script->len, >, 0);
	peer->pos = 0;
}

void
qmp_test_peer_send_bytes(QmpTestPeer *peer, const void *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	/* small writes fit in the socket buffer, so a blocking write cannot deadlock */
	g_assert_cmpuint(len, <, 64 * 1024);
	g_output_stream_write_all(peer->out, data, len, NULL, NULL, &error);
	g_assert_no_error(error);
}

void
qmp_test_peer_send_line(QmpTestPeer *peer, const gchar *line)
{
	g_autofree gchar *text = g_strconcat(line, "\r\n", NULL);
	qmp_test_peer_send_bytes(peer, text, strlen(text));
}

static void
read_line_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	gchar **slot = user_data;
	g_autoptr(GError) error = NULL;
	gchar *line =
	    g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), res, NULL, &error);
	g_assert_no_error(error);
	/* EOF is reported as an empty marker so the waiting loop ends */
	*slot = line != NULL ? line : g_strdup("");
}

/**
 * qmp_test_peer_read_command:
 * Returns: (transfer full) (nullable): the next command the client sent, %NULL at EOF.
 */
JsonObject *
qmp_test_peer_read_command(QmpTestPeer *peer)
{
	g_autofree gchar *line = NULL;
	g_autoptr(JsonNode) node = NULL;
	g_autoptr(GError) error = NULL;

	g_data_input_stream_read_line_async(peer->in, G_PRIORITY_DEFAULT, NULL, read_line_cb,
	                                    &line);
	while (line == NULL)
		g_main_context_iteration(NULL, TRUE);
	if (line[0] == '\0') {
		peer->eof = TRUE;
		return NULL;
	}
	/* the client ends lines with CR LF */
	g_assert_true(g_str_has_suffix(line, "\r"));
	node = json_from_string(line, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
	return json_object_ref(json_node_get_object(node));
}

/* Sends {"return": <return_json>, "id": <command's id>}. */
void
qmp_test_peer_reply(QmpTestPeer *peer, JsonObject *command, const gchar *return_json)
{
	g_autofree gchar *line = g_strdup_printf("{\"return\": %s, \"id\": \"%s\"}", return_json,
	                                         json_object_get_string_member(command, "id"));
	qmp_test_peer_send_line(peer, line);
}

static JsonObject *
script_at(QmpTestPeer *peer, guint i)
{
	return i < peer->script->len ? g_ptr_array_index(peer->script, i) : NULL;
}

/* Sends transcript "recv" lines until the next "send"; a reply whose id is @recorded_id gets
 * @client_id instead. An "eof" entry closes the peer. */
static void
play_until_send(QmpTestPeer *peer, const gchar *recorded_id, const gchar *client_id)
{
	for (JsonObject *e; (e = script_at(peer, peer->pos)) != NULL; peer->pos++) {
		const gchar *dir = json_object_get_string_member(e, "dir");
		const gchar *raw;
		g_autoptr(JsonNode) node = NULL;
		JsonObject *msg;

		if (g_str_equal(dir, "send"))
			return;
		if (g_str_equal(dir, "eof")) {
			qmp_test_peer_close(peer);
			continue;
		}
		g_assert_cmpstr(dir, ==, "recv");
		raw = json_object_get_string_member(e, "raw");
		node = json_from_string(raw, NULL);
		msg = json_node_get_object(node);
		if (recorded_id != NULL && json_object_has_member(msg, "id") &&
		    g_strcmp0(json_object_get_string_member(msg, "id"), recorded_id) == 0) {
			g_autofree gchar *text = NULL;
			json_object_set_string_member(msg, "id", client_id);
			text = json_to_string(node, FALSE);
			qmp_test_peer_send_line(peer, text);
		} else {
			/* everything else goes out byte for byte as QEMU wrote it */
			qmp_test_peer_send_line(peer, raw);
		}
	}
}

void
qmp_test_peer_play_greeting(QmpTestPeer *peer)
{
	g_assert_cmpuint(peer->pos, ==, 0);
	play_until_send(peer, NULL, NULL);
}

/**
 * qmp_test_peer_serve:
 *
 * Reads the client's next command, checks it against the transcript's next "send" (same
 * command, same arguments) and answers with what QEMU answered then.
 */
void
qmp_test_peer_serve(QmpTestPeer *peer)
{
	JsonObject *expected = script_at(peer, peer->pos);
	JsonObject *expected_msg;
	g_autoptr(JsonObject) cmd = NULL;
	JsonNode *want_args;
	JsonNode *got_args;

	g_assert_nonnull(expected);
	g_assert_cmpstr(json_object_get_string_member(expected, "dir"), ==, "send");
	expected_msg = json_object_get_object_member(expected, "msg");
	cmd = qmp_test_peer_read_command(peer);
	g_assert_nonnull(cmd);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==,
	                json_object_get_string_member(expected_msg, "execute"));
	g_assert_true(g_str_has_prefix(json_object_get_string_member(cmd, "id"), "qsim-"));
	want_args = json_object_get_member(expected_msg, "arguments");
	got_args = json_object_get_member(cmd, "arguments");
	g_assert_true((want_args == NULL) == (got_args == NULL));
	if (want_args != NULL)
		g_assert_true(json_node_equal(want_args, got_args));
	peer->pos++;
	play_until_send(peer, json_object_get_string_member(expected_msg, "id"),
	                json_object_get_string_member(cmd, "id"));
}

/* Returns the @nth (from 0) raw "recv" line containing @needle, for building variations. */
const gchar *
qmp_test_peer_find_recv(QmpTestPeer *peer, const gchar *needle, guint nth)
{
	for (guint i = 0; i < peer->script->len; i++) {
		JsonObject *e = g_ptr_array_index(peer->script, i);
		const gchar *raw;
		if (!g_str_equal(json_object_get_string_member(e, "dir"), "recv"))
			continue;
		raw = json_object_get_string_member(e, "raw");
		if (strstr(raw, needle) != NULL && nth-- == 0)
			return raw;
	}
	g_assert_not_reached();
	return NULL;
}

void
qmp_test_peer_close(QmpTestPeer *peer)
{
	if (!g_io_stream_is_closed(G_IO_STREAM(peer->conn)))
		g_io_stream_close(G_IO_STREAM(peer->conn), NULL, NULL);
}

void
qmp_test_store_result(GObject *source, GAsyncResult *res, gpointer slot)
{
	*(GAsyncResult **)slot = g_object_ref(res);
}

/**
 * qmp_test_wait:
 * Returns: (transfer full): the result once the callback has run.
 */
GAsyncResult *
qmp_test_wait(GAsyncResult **slot)
{
	while (*slot == NULL)
		g_main_context_iteration(NULL, TRUE);
	return g_steal_pointer(slot);
}

/* Dispatches whatever is ready without blocking. */
void
qmp_test_iterate_idle(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
}

/**
 * qmp_test_connect:
 * Returns: (transfer full): a ready client; the peer must hold a loaded transcript.
 */
QsimQmpClient *
qmp_test_connect(QmpTestPeer *peer, GIOStream *client_io)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	QsimQmpClient *client;

	qsim_qmp_client_new_for_stream_async(client_io, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_play_greeting(peer);
	qmp_test_peer_serve(peer);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	g_assert_no_error(error);
	g_assert_nonnull(client);
	g_assert_true(qsim_qmp_client_is_connected(client));
	return client;
}
