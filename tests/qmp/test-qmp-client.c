#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-client.h"
#include "qmp/qsim-qmp-commands.h"

#define TRANSCRIPT "session-7.2.jsonl"

typedef struct {
	QmpTestPeer *peer;
	GIOStream *client_io;
	QsimQmpClient *client;
	GPtrArray *events;  /* "NAME" or "NAME:<data as JSON>" */
	GArray *timestamps; /* gint64 */
	guint n_closed;
	GError *closed_error;
	guint n_shutdown; /* through the detailed signal "event::SHUTDOWN" */
} Fixture;

static void
on_event(QsimQmpClient *client, const gchar *name, JsonObject *data, gint64 ts, Fixture *f)
{
	if (data != NULL) {
		g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
		g_autofree gchar *text = NULL;
		json_node_set_object(node, data);
		text = json_to_string(node, FALSE);
		g_ptr_array_add(f->events, g_strdup_printf("%s:%s", name, text));
	} else {
		g_ptr_array_add(f->events, g_strdup(name));
	}
	g_array_append_val(f->timestamps, ts);
}

static void
on_shutdown(QsimQmpClient *client, const gchar *name, JsonObject *data, gint64 ts, Fixture *f)
{
	g_assert_cmpstr(name, ==, "SHUTDOWN");
	f->n_shutdown++;
}

static void
on_closed(QsimQmpClient *client, GError *error, Fixture *f)
{
	f->n_closed++;
	g_clear_error(&f->closed_error);
	if (error != NULL)
		f->closed_error = g_error_copy(error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->peer = qmp_test_peer_new(&f->client_io);
	qmp_test_peer_load(f->peer, TRANSCRIPT);
	f->events = g_ptr_array_new_with_free_func(g_free);
	f->timestamps = g_array_new(FALSE, FALSE, sizeof(gint64));
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	if (f->client != NULL) {
		qsim_qmp_client_close(f->client);
		g_signal_handlers_disconnect_by_data(f->client, f);
		g_clear_object(&f->client);
	}
	qmp_test_peer_free(f->peer);
	g_clear_object(&f->client_io);
	/* let cancelled reads and writes complete so nothing is left for the next test */
	qmp_test_iterate_idle();
	g_ptr_array_unref(f->events);
	g_array_unref(f->timestamps);
	g_clear_error(&f->closed_error);
}

/* Greeting and qmp_capabilities from the transcript. */
static void
fixture_connect(Fixture *f)
{
	f->client = qmp_test_connect(f->peer, f->client_io);
	g_signal_connect(f->client, "event", G_CALLBACK(on_event), f);
	g_signal_connect(f->client, "closed", G_CALLBACK(on_closed), f);
	g_signal_connect(f->client, "event::SHUTDOWN", G_CALLBACK(on_shutdown), f);
}

static void
test_greeting(Fixture *f, gconstpointer data)
{
	guint major = 0, minor = 0, micro = 0;

	fixture_connect(f);
	g_assert_cmpstr(qsim_qmp_client_get_version(f->client), ==, "7.2.22");
	qsim_qmp_client_get_version_numbers(f->client, &major, &minor, &micro);
	g_assert_cmpuint(major, ==, 7);
	g_assert_cmpuint(minor, ==, 2);
	g_assert_cmpuint(micro, ==, 22);
	g_assert_cmpstr(qsim_qmp_client_get_package(f->client), ==,
	                "Debian 1:7.2+dfsg-7+deb12u18+b3");
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 0);
	g_assert_cmpuint(f->n_closed, ==, 0);
}

/* The whole recorded session, in order, through the typed commands. */
static void
test_replay_session(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *hmp = NULL;
	gboolean running = TRUE;
	guint major = 0, minor = 0, micro = 0;
	gint64 ts;

	fixture_connect(f);

	qsim_qmp_client_query_status_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(status, ==, "prelaunch");
	g_assert_false(running);
	g_clear_object(&res);
	g_clear_pointer(&status, g_free);

	/* QEMU emits RESUME before the reply to cont */
	qsim_qmp_client_cont_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_cont_finish(f->client, res, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(f->events->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(f->events, 0), ==, "RESUME");
	ts = g_array_index(f->timestamps, gint64, 0);
	g_assert_cmpint(ts, ==, G_GINT64_CONSTANT(1795672974058330));
	g_clear_object(&res);

	qsim_qmp_client_query_status_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
	g_assert_cmpstr(status, ==, "running");
	g_assert_true(running);
	g_clear_object(&res);
	g_clear_pointer(&status, g_free);

	qsim_qmp_client_stop_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_stop_finish(f->client, res, &error));
	g_assert_cmpstr(g_ptr_array_index(f->events, 1), ==, "STOP");
	g_clear_object(&res);

	qsim_qmp_client_query_status_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
	g_assert_cmpstr(status, ==, "paused");
	g_assert_false(running);
	g_clear_object(&res);

	qsim_qmp_client_cont_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_cont_finish(f->client, res, &error));
	g_clear_object(&res);

	/* an error reply keeps the command, QEMU's class and its description */
	qsim_qmp_client_execute_async(f->client, "no-such-command", NULL, 0, NULL,
	                              qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_cmpstr(error->message, ==,
	                "QMP command 'no-such-command' failed: CommandNotFound: "
	                "The command no-such-command has not been found");
	g_clear_error(&error);
	g_clear_object(&res);
	g_assert_true(qsim_qmp_client_is_connected(f->client));

	qsim_qmp_client_human_monitor_command_async(f->client, "info status", 0, NULL,
	                                            qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	hmp = qsim_qmp_client_human_monitor_command_finish(f->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hmp, ==, "VM status: running\r\n");
	g_clear_object(&res);

	qsim_qmp_client_query_version_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_version_finish(f->client, res, &major, &minor, &micro, &error));
	g_assert_cmpuint(major, ==, 7);
	g_assert_cmpuint(minor, ==, 2);
	g_assert_cmpuint(micro, ==, 22);
	g_clear_object(&res);

	/* RESET arrives before the reply and twice more after it */
	qsim_qmp_client_system_reset_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_system_reset_finish(f->client, res, &error));
	g_clear_object(&res);

	qsim_qmp_client_system_powerdown_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_system_powerdown_finish(f->client, res, &error));
	g_clear_object(&res);

	/* quit: SHUTDOWN, the reply, then EOF */
	qsim_qmp_client_quit_async(f->client, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_serve(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_quit_finish(f->client, res, &error));
	g_assert_no_error(error);
	while (f->n_closed == 0)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_true(qsim_qmp_client_get_eof(f->client));
	g_assert_false(qsim_qmp_client_is_connected(f->client));

	g_assert_cmpuint(f->events->len, ==, 8);
	g_assert_cmpstr(g_ptr_array_index(f->events, 2), ==, "RESUME");
	g_assert_cmpstr(g_ptr_array_index(f->events, 3), ==,
	                "RESET:{\"guest\":false,\"reason\":\"host-qmp-system-reset\"}");
	g_assert_cmpstr(g_ptr_array_index(f->events, 4), ==,
	                "RESET:{\"guest\":true,\"reason\":\"guest-reset\"}");
	g_assert_cmpstr(g_ptr_array_index(f->events, 6), ==, "POWERDOWN");
	g_assert_cmpstr(g_ptr_array_index(f->events, 7), ==,
	                "SHUTDOWN:{\"guest\":false,\"reason\":\"host-qmp-quit\"}");
	g_assert_cmpuint(f->n_shutdown, ==, 1);
}

/* An event before any command, and one between a command and its reply. */
static void
test_event_interleaving(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autoptr(JsonNode) ret = NULL;

	fixture_connect(f);
	qmp_test_peer_send_line(f->peer, qmp_test_peer_find_recv(f->peer, "\"STOP\"", 0));
	while (f->events->len < 1)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpstr(g_ptr_array_index(f->events, 0), ==, "STOP");
	g_assert_cmpint(g_array_index(f->timestamps, gint64, 0), ==,
	                G_GINT64_CONSTANT(1795672975063243));

	qsim_qmp_client_execute_async(f->client, "query-status", NULL, 0, NULL,
	                              qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==, "query-status");
	qmp_test_peer_send_line(f->peer, qmp_test_peer_find_recv(f->peer, "\"RESUME\"", 1));
	/* an event without timestamp or data is still delivered */
	qmp_test_peer_send_line(f->peer, "{\"event\": \"X-BARE\"}");
	qmp_test_peer_reply(f->peer, cmd, "{\"status\": \"running\", \"running\": true}");
	res = qmp_test_wait(&res);
	ret = qsim_qmp_client_execute_finish(f->client, res, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(ret));
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(ret), "status"), ==,
	                "running");
	g_assert_cmpuint(f->events->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(f->events, 1), ==, "RESUME");
	g_assert_cmpstr(g_ptr_array_index(f->events, 2), ==, "X-BARE");
	g_assert_cmpint(g_array_index(f->timestamps, gint64, 2), ==, -1);
}

/* Two commands in flight, answered in the opposite order: each gets its own reply. */
static void
test_out_of_order_replies(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res1 = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(JsonObject) cmd1 = NULL;
	g_autoptr(JsonObject) cmd2 = NULL;
	g_autoptr(JsonNode) ret1 = NULL;
	g_autoptr(JsonNode) ret2 = NULL;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "first", NULL, 0, NULL, qmp_test_store_result,
	                              &res1);
	qsim_qmp_client_execute_async(f->client, "second", NULL, 0, NULL, qmp_test_store_result,
	                              &res2);
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 2);
	cmd1 = qmp_test_peer_read_command(f->peer);
	cmd2 = qmp_test_peer_read_command(f->peer);
	/* writes go out in call order, with distinct ids */
	g_assert_cmpstr(json_object_get_string_member(cmd1, "execute"), ==, "first");
	g_assert_cmpstr(json_object_get_string_member(cmd2, "execute"), ==, "second");
	g_assert_cmpstr(json_object_get_string_member(cmd1, "id"), !=,
	                json_object_get_string_member(cmd2, "id"));
	qmp_test_peer_reply(f->peer, cmd2, "2");
	qmp_test_peer_send_line(f->peer, qmp_test_peer_find_recv(f->peer, "\"POWERDOWN\"", 0));
	qmp_test_peer_reply(f->peer, cmd1, "1");
	res2 = qmp_test_wait(&res2);
	res1 = qmp_test_wait(&res1);
	ret1 = qsim_qmp_client_execute_finish(f->client, res1, &error);
	g_assert_no_error(error);
	ret2 = qsim_qmp_client_execute_finish(f->client, res2, &error);
	g_assert_no_error(error);
	g_assert_cmpint(json_node_get_int(ret1), ==, 1);
	g_assert_cmpint(json_node_get_int(ret2), ==, 2);
	g_assert_cmpuint(f->events->len, ==, 1);
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 0);
}

/* The recorded query-status reply delivered one byte per read. */
static void
test_split_reply(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autofree gchar *status = NULL;
	g_autofree gchar *line = NULL;
	g_autofree gchar *recorded = NULL;
	g_auto(GStrv) parts = NULL;
	gboolean running = TRUE;
	gsize reply_end;

	fixture_connect(f);
	qsim_qmp_client_query_status_async(f->client, 0, NULL, qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	/* the recorded paused reply, with this call's id, then an event in the same bytes */
	recorded = g_strdup(qmp_test_peer_find_recv(f->peer, "\"paused\"", 0));
	parts = g_strsplit(recorded, "rec-6", 2);
	line =
	    g_strdup_printf("%s%s%s\r\n%s\r\n", parts[0], json_object_get_string_member(cmd, "id"),
	                    parts[1], qmp_test_peer_find_recv(f->peer, "\"STOP\"", 0));
	reply_end = (gsize)(strchr(line, '\n') - line);
	for (gsize i = 0; line[i] != '\0'; i++) {
		qmp_test_peer_send_bytes(f->peer, line + i, 1);
		qmp_test_iterate_idle();
		/* nothing completes before the reply's last byte */
		if (i < reply_end)
			g_assert_null(res);
	}
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(status, ==, "paused");
	g_assert_false(running);
	while (f->events->len < 1)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpstr(g_ptr_array_index(f->events, 0), ==, "STOP");
}

static void
big_write_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	gboolean *done = user_data;
	/* the client closes its end mid-way, so this write may fail: that is the point */
	g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, NULL);
	*done = TRUE;
}

/* A reply larger than the 10 MiB cap fails the pending call and closes the connection. */
static void
test_reply_over_cap(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autofree gchar *head = NULL;
	g_autoptr(GByteArray) big = g_byte_array_new();
	gboolean write_done = FALSE;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "query-big", NULL, 0, NULL, qmp_test_store_result,
	                              &res);
	cmd = qmp_test_peer_read_command(f->peer);
	head = g_strdup_printf("{\"id\": \"%s\", \"return\": \"",
	                       json_object_get_string_member(cmd, "id"));
	g_byte_array_append(big, (const guint8 *)head, (guint)strlen(head));
	g_byte_array_set_size(big, 10 * 1024 * 1024 + 4096);
	memset(big->data + strlen(head), 'x', big->len - strlen(head));
	g_output_stream_write_all_async(f->peer->out, big->data, big->len, G_PRIORITY_DEFAULT, NULL,
	                                big_write_cb, &write_done);
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, "query-big"));
	g_assert_nonnull(strstr(error->message, "exceeds 10485760 bytes"));
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_error(f->closed_error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_false(qsim_qmp_client_is_connected(f->client));
	g_assert_false(qsim_qmp_client_get_eof(f->client));
	qmp_test_peer_close(f->peer);
	while (!write_done)
		g_main_context_iteration(NULL, TRUE);
}

/* EOF with three calls pending: every one fails, "closed" is emitted once. */
static void
test_eof_pending(Fixture *f, gconstpointer data)
{
	const gchar *names[] = {"query-status", "stop", "query-version"};
	GAsyncResult *res[3] = {NULL, NULL, NULL};
	g_autoptr(GAsyncResult) after = NULL;
	g_autoptr(GError) error = NULL;

	fixture_connect(f);
	for (guint i = 0; i < 3; i++)
		qsim_qmp_client_execute_async(f->client, names[i], NULL, 0, NULL,
		                              qmp_test_store_result, &res[i]);
	for (guint i = 0; i < 3; i++) {
		g_autoptr(JsonObject) cmd = qmp_test_peer_read_command(f->peer);
		g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==, names[i]);
	}
	qmp_test_peer_close(f->peer);
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GAsyncResult) r = qmp_test_wait(&res[i]);
		g_autoptr(GError) e = NULL;
		g_autofree gchar *want = g_strdup_printf("QMP command '%s' failed", names[i]);
		g_assert_null(qsim_qmp_client_execute_finish(f->client, r, &e));
		g_assert_error(e, QSIM_ERROR, QSIM_ERROR_QMP);
		g_assert_true(g_str_has_prefix(e->message, want));
		g_assert_nonnull(strstr(e->message, "closed by peer"));
	}
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_true(qsim_qmp_client_get_eof(f->client));
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 0);

	/* a call after the end fails at once, and "closed" is not emitted again */
	qsim_qmp_client_execute_async(f->client, "query-status", NULL, 0, NULL,
	                              qmp_test_store_result, &after);
	after = qmp_test_wait(&after);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, after, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	qsim_qmp_client_close(f->client);
	g_assert_cmpuint(f->n_closed, ==, 1);
}

/* No reply: the call times out, a late reply is dropped, the connection stays usable. */
static void
test_timeout(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autoptr(JsonObject) cmd2 = NULL;
	g_autoptr(JsonNode) ret = NULL;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "query-status", NULL, 200, NULL,
	                              qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	g_assert_nonnull(strstr(error->message, "'query-status'"));
	g_clear_error(&error);
	g_clear_object(&res);
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 0);

	qmp_test_peer_reply(f->peer, cmd, "{\"status\": \"running\", \"running\": true}");
	qsim_qmp_client_execute_async(f->client, "query-version", NULL, 0, NULL,
	                              qmp_test_store_result, &res);
	cmd2 = qmp_test_peer_read_command(f->peer);
	qmp_test_peer_reply(f->peer, cmd2, "7");
	res = qmp_test_wait(&res);
	ret = qsim_qmp_client_execute_finish(f->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpint(json_node_get_int(ret), ==, 7);
	g_assert_true(qsim_qmp_client_is_connected(f->client));
	g_assert_cmpuint(f->n_closed, ==, 0);
}

/* Cancelling a call fails it with CANCELLED; its late reply is dropped. */
static void
test_cancel(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GCancellable) cancelled = g_cancellable_new();
	g_autoptr(JsonObject) cmd = NULL;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "stop", NULL, 0, cancellable,
	                              qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	g_cancellable_cancel(cancellable);
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_clear_error(&error);
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 0);
	qmp_test_peer_reply(f->peer, cmd, "{}");
	qmp_test_iterate_idle();

	/* already cancelled: fails without sending anything */
	g_cancellable_cancel(cancelled);
	qsim_qmp_client_execute_async(f->client, "cont", NULL, 0, cancelled, qmp_test_store_result,
	                              &res2);
	res2 = qmp_test_wait(&res2);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res2, &error));
	g_assert_true(error != NULL && error->code == QSIM_ERROR_CANCELLED);
	g_assert_true(qsim_qmp_client_is_connected(f->client));
}

/* Replies with no id, an unknown id or neither return nor error do not disturb others. */
static void
test_stray_replies(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autoptr(JsonObject) cmd2 = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autofree gchar *odd = NULL;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "query-status", NULL, 0, NULL,
	                              qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	qmp_test_peer_send_line(f->peer, "{\"return\": {}}");
	qmp_test_peer_send_line(f->peer, "{\"return\": {}, \"id\": \"qsim-999\"}");
	qmp_test_peer_send_line(f->peer, "{\"return\": {}, \"id\": 5}");
	qmp_test_peer_send_line(f->peer, "{\"something\": 1}");
	qmp_test_peer_send_line(f->peer, "{\"event\": 42}");
	qmp_test_peer_send_line(f->peer, "{\"error\": \"weird\", \"id\": \"qsim-998\"}");
	qmp_test_iterate_idle();
	g_assert_null(res);
	g_assert_cmpuint(f->events->len, ==, 0);
	qmp_test_peer_reply(f->peer, cmd, "{\"status\": \"running\", \"running\": true}");
	res = qmp_test_wait(&res);
	ret = qsim_qmp_client_execute_finish(f->client, res, &error);
	g_assert_no_error(error);

	/* a reply with neither return nor error, with the right id, fails that call */
	qsim_qmp_client_execute_async(f->client, "stop", NULL, 0, NULL, qmp_test_store_result,
	                              &res2);
	cmd2 = qmp_test_peer_read_command(f->peer);
	odd = g_strdup_printf("{\"error\": [1], \"id\": \"%s\"}",
	                      json_object_get_string_member(cmd2, "id"));
	qmp_test_peer_send_line(f->peer, odd);
	res2 = qmp_test_wait(&res2);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res2, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, "malformed error reply"));
	g_assert_true(qsim_qmp_client_is_connected(f->client));
}

/* A line that is not JSON after the handshake is a protocol error: everything fails. */
static void
test_garbage_after_handshake(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) cmd = NULL;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "query-status", NULL, 0, NULL,
	                              qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	qmp_test_peer_send_line(f->peer, "{\"return\": {");
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, "malformed QMP message"));
	g_assert_cmpuint(f->n_closed, ==, 1);
}

static void
test_invalid_command(Fixture *f, gconstpointer data)
{
	const gchar *bad[] = {"", "query status", "quit\n", "x\"y", NULL};
	g_autoptr(GError) error = NULL;

	fixture_connect(f);
	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GAsyncResult) res = NULL;
		qsim_qmp_client_execute_async(f->client, bad[i], NULL, 0, NULL,
		                              qmp_test_store_result, &res);
		res = qmp_test_wait(&res);
		g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_clear_error(&error);
	}
	g_assert_cmpuint(qsim_qmp_client_get_n_pending(f->client), ==, 0);
}

/* close() fails pending calls with CANCELLED and emits "closed" with no error. */
static void
test_close(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(JsonObject) cmd = NULL;

	fixture_connect(f);
	qsim_qmp_client_execute_async(f->client, "stop", NULL, 0, NULL, qmp_test_store_result,
	                              &res);
	cmd = qmp_test_peer_read_command(f->peer);
	qsim_qmp_client_close(f->client);
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_execute_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_null(f->closed_error);
	g_assert_false(qsim_qmp_client_get_eof(f->client));
	/* the peer sees EOF */
	g_assert_null(qmp_test_peer_read_command(f->peer));
}

static GError *
handshake_expect_failure(Fixture *f, guint timeout_ms, const gchar *const *lines)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(QsimQmpClient) client = NULL;
	GError *error = NULL;

	qsim_qmp_client_new_for_stream_async(f->client_io, timeout_ms, NULL, qmp_test_store_result,
	                                     &res);
	for (guint i = 0; lines != NULL && lines[i] != NULL; i++)
		qmp_test_peer_send_line(f->peer, lines[i]);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	g_assert_null(client);
	g_assert_nonnull(error);
	return error;
}

static void
test_bad_greeting(Fixture *f, gconstpointer data)
{
	const gchar *not_json[] = {"QEMU monitor 7.2 ready", NULL};
	const gchar *array[] = {"[1, 2]", NULL};
	const gchar *no_qmp[] = {"{\"return\": {}}", NULL};
	const gchar *bad_version[] = {
	    "{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\", \"minor\": 2, \"micro\": 0}}, "
	    "\"capabilities\": []}}",
	    NULL};
	const gchar *no_caps[] = {
	    "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}}}",
	    NULL};
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	g_autoptr(GError) e3 = NULL;
	g_autoptr(GError) e4 = NULL;
	g_autoptr(GError) e5 = NULL;

	e1 = handshake_expect_failure(f, 0, not_json);
	g_assert_error(e1, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(e1->message, "malformed QMP message"));
	for (guint i = 0; i < 4; i++) {
		const gchar *const *lines[] = {array, no_qmp, bad_version, no_caps};
		const gchar *want[] = {"not an object", "no QMP object", "bad version numbers",
		                       "no capabilities array"};
		g_autoptr(GError) e = NULL;
		qmp_test_peer_free(f->peer);
		g_clear_object(&f->client_io);
		f->peer = qmp_test_peer_new(&f->client_io);
		e = handshake_expect_failure(f, 0, lines[i]);
		g_assert_error(e, QSIM_ERROR, QSIM_ERROR_QMP);
		g_assert_nonnull(strstr(e->message, want[i]));
	}
}

static void
test_greeting_timeout(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = handshake_expect_failure(f, 200, NULL);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	g_assert_cmpstr(error->message, ==, "timed out waiting for the QMP greeting");
	/* the client closed its end */
	g_assert_null(qmp_test_peer_read_command(f->peer));
}

static void
test_greeting_eof(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;

	qsim_qmp_client_new_for_stream_async(f->client_io, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_close(f->peer);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, "closed by peer"));
}

static void
test_capabilities_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autofree gchar *reply = NULL;

	qsim_qmp_client_new_for_stream_async(f->client_io, 0, NULL, qmp_test_store_result, &res);
	qmp_test_peer_play_greeting(f->peer);
	cmd = qmp_test_peer_read_command(f->peer);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==, "qmp_capabilities");
	reply = g_strdup_printf("{\"id\": \"%s\", \"error\": {\"class\": \"GenericError\", "
	                        "\"desc\": \"Capabilities negotiation is already complete\"}}",
	                        json_object_get_string_member(cmd, "id"));
	qmp_test_peer_send_line(f->peer, reply);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_cmpstr(error->message, ==,
	                "QMP command 'qmp_capabilities' failed: GenericError: "
	                "Capabilities negotiation is already complete");
}

/* A greeting, then silence: the handshake deadline covers qmp_capabilities too. */
static void
test_capabilities_timeout(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;
	g_autoptr(JsonObject) cmd = NULL;

	qsim_qmp_client_new_for_stream_async(f->client_io, 300, NULL, qmp_test_store_result, &res);
	qmp_test_peer_play_greeting(f->peer);
	cmd = qmp_test_peer_read_command(f->peer);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==, "qmp_capabilities");
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	g_assert_cmpstr(error->message, ==, "timed out negotiating QMP capabilities");
	g_assert_null(qmp_test_peer_read_command(f->peer));
}

static void
test_handshake_cancel(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();

	qsim_qmp_client_new_for_stream_async(f->client_io, 0, cancellable, qmp_test_store_result,
	                                     &res);
	qmp_test_iterate_idle();
	g_cancellable_cancel(cancellable);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
}

/* Connecting to a socket that appears only later: the client retries until it exists. */
typedef struct {
	gchar *path;
	GSocketListener *listener;
} LateListener;

static gboolean
start_listener_cb(gpointer user_data)
{
	LateListener *l = user_data;
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(l->path);
	g_autoptr(GError) error = NULL;

	l->listener = g_socket_listener_new();
	g_socket_listener_add_address(l->listener, addr, G_SOCKET_TYPE_STREAM,
	                              G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error);
	g_assert_no_error(error);
	return G_SOURCE_REMOVE;
}

static void
accept_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GSocketConnection **slot = user_data;
	g_autoptr(GError) error = NULL;
	*slot = g_socket_listener_accept_finish(G_SOCKET_LISTENER(source), res, NULL, &error);
	g_assert_no_error(error);
}

static void
test_connect_retry(Fixture *f, gconstpointer data)
{
	g_autofree gchar *tmpdir = g_dir_make_tmp("qsim-qmp-XXXXXX", NULL);
	LateListener l = {0};
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;
	g_autoptr(GSocketConnection) server = NULL;
	g_autoptr(QmpTestPeer) peer = NULL;

	g_assert_nonnull(tmpdir);
	l.path = g_build_filename(tmpdir, "qmp.sock", NULL);
	g_timeout_add(150, start_listener_cb, &l);
	qsim_qmp_client_connect_async(l.path, 20000, NULL, qmp_test_store_result, &res);
	while (l.listener == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_socket_listener_accept_async(l.listener, NULL, accept_cb, &server);
	while (server == NULL)
		g_main_context_iteration(NULL, TRUE);
	peer = qmp_test_peer_new_for_connection(server);
	qmp_test_peer_load(peer, TRANSCRIPT);
	qmp_test_peer_play_greeting(peer);
	qmp_test_peer_serve(peer);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_connect_finish(res, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(qsim_qmp_client_get_version(client), ==, "7.2.22");
	qsim_qmp_client_close(client);
	g_assert_null(qmp_test_peer_read_command(peer));
	qmp_test_peer_close(peer);
	g_socket_listener_close(l.listener);
	g_object_unref(l.listener);
	qmp_test_iterate_idle();
	g_assert_cmpint(g_unlink(l.path), ==, 0);
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
	g_free(l.path);
}

static gboolean
cancel_cb(gpointer user_data)
{
	g_cancellable_cancel(G_CANCELLABLE(user_data));
	return G_SOURCE_REMOVE;
}

/* Cancelling while waiting for the socket to appear ends the retries. */
static void
test_connect_cancel(Fixture *f, gconstpointer data)
{
	g_autofree gchar *tmpdir = g_dir_make_tmp("qsim-qmp-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(tmpdir, "late.sock", NULL);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;

	qsim_qmp_client_connect_async(path, 60000, cancellable, qmp_test_store_result, &res);
	g_timeout_add(100, cancel_cb, cancellable);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_connect_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
}

static void
test_connect_missing(Fixture *f, gconstpointer data)
{
	g_autofree gchar *tmpdir = g_dir_make_tmp("qsim-qmp-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(tmpdir, "never.sock", NULL);
	g_autofree gchar *long_path = g_strnfill(200, 'a');
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) client = NULL;

	qsim_qmp_client_connect_async(path, 300, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_connect_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	g_assert_nonnull(strstr(error->message, path));
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_connect_async(long_path, 300, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	client = qsim_qmp_client_connect_finish(res, &error);
	g_assert_null(client);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/qmp/client/greeting", Fixture, NULL, fixture_setup, test_greeting,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/replay-session", Fixture, NULL, fixture_setup,
	           test_replay_session, fixture_teardown);
	g_test_add("/qsim/qmp/client/event-interleaving", Fixture, NULL, fixture_setup,
	           test_event_interleaving, fixture_teardown);
	g_test_add("/qsim/qmp/client/out-of-order-replies", Fixture, NULL, fixture_setup,
	           test_out_of_order_replies, fixture_teardown);
	g_test_add("/qsim/qmp/client/split-reply", Fixture, NULL, fixture_setup, test_split_reply,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/reply-over-cap", Fixture, NULL, fixture_setup,
	           test_reply_over_cap, fixture_teardown);
	g_test_add("/qsim/qmp/client/eof-pending", Fixture, NULL, fixture_setup, test_eof_pending,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/timeout", Fixture, NULL, fixture_setup, test_timeout,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/cancel", Fixture, NULL, fixture_setup, test_cancel,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/stray-replies", Fixture, NULL, fixture_setup,
	           test_stray_replies, fixture_teardown);
	g_test_add("/qsim/qmp/client/garbage-after-handshake", Fixture, NULL, fixture_setup,
	           test_garbage_after_handshake, fixture_teardown);
	g_test_add("/qsim/qmp/client/invalid-command", Fixture, NULL, fixture_setup,
	           test_invalid_command, fixture_teardown);
	g_test_add("/qsim/qmp/client/close", Fixture, NULL, fixture_setup, test_close,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/bad-greeting", Fixture, NULL, fixture_setup, test_bad_greeting,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/greeting-timeout", Fixture, NULL, fixture_setup,
	           test_greeting_timeout, fixture_teardown);
	g_test_add("/qsim/qmp/client/greeting-eof", Fixture, NULL, fixture_setup, test_greeting_eof,
	           fixture_teardown);
	g_test_add("/qsim/qmp/client/capabilities-refused", Fixture, NULL, fixture_setup,
	           test_capabilities_refused, fixture_teardown);
	g_test_add("/qsim/qmp/client/capabilities-timeout", Fixture, NULL, fixture_setup,
	           test_capabilities_timeout, fixture_teardown);
	g_test_add("/qsim/qmp/client/handshake-cancel", Fixture, NULL, fixture_setup,
	           test_handshake_cancel, fixture_teardown);
	g_test_add("/qsim/qmp/client/connect-retry", Fixture, NULL, fixture_setup,
	           test_connect_retry, fixture_teardown);
	g_test_add("/qsim/qmp/client/connect-cancel", Fixture, NULL, fixture_setup,
	           test_connect_cancel, fixture_teardown);
	g_test_add("/qsim/qmp/client/connect-missing", Fixture, NULL, fixture_setup,
	           test_connect_missing, fixture_teardown);
	return g_test_run();
}
