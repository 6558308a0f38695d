#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include "common/qsim-error.h"
#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-commands.h"

typedef struct {
	QmpTestPeer *peer;
	GIOStream *io;
	QsimQmpClient *client;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->peer = qmp_test_peer_new(&f->io);
	qmp_test_peer_load(f->peer, "session-7.2.jsonl");
	f->client = qmp_test_connect(f->peer, f->io);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	qsim_qmp_client_close(f->client);
	g_clear_object(&f->client);
	g_clear_object(&f->io);
	qmp_test_peer_free(f->peer);
	qmp_test_iterate_idle();
}

/* Reads the client's next command, checks its name, answers with @return_json. */
static void
answer(Fixture *f, const gchar *command, const gchar *return_json)
{
	g_autoptr(JsonObject) cmd = qmp_test_peer_read_command(f->peer);
	g_assert_nonnull(cmd);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==, command);
	qmp_test_peer_reply(f->peer, cmd, return_json);
}

static void
assert_unexpected(GError *error, const gchar *command)
{
	g_autofree gchar *prefix =
	    g_strdup_printf("QMP command '%s' failed: unexpected reply", command);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_true(g_str_has_prefix(error->message, prefix));
}

static void
test_query_status_types(Fixture *f, gconstpointer data)
{
	const gchar *bad[] = {
	    "[]",
	    "\"running\"",
	    "{\"status\": 1, \"running\": true}",
	    "{\"status\": \"running\"}",
	    "{\"status\": \"running\", \"running\": \"yes\"}",
	    "{\"status\": \"\", \"running\": false}",
	    "{\"running\": false}",
	    NULL,
	};

	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *status = g_strdup("untouched");
		gboolean running = TRUE;

		qsim_qmp_client_query_status_async(f->client, 0, NULL, qmp_test_store_result, &res);
		answer(f, "query-status", bad[i]);
		res = qmp_test_wait(&res);
		g_assert_false(
		    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
		assert_unexpected(error, "query-status");
		g_assert_cmpstr(status, ==, "untouched");
		g_assert_true(running);
	}
	g_assert_true(qsim_qmp_client_is_connected(f->client));
}

static void
test_query_status_ok(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	gboolean running = FALSE;

	/* extra members (singlestep, future additions) are ignored */
	qsim_qmp_client_query_status_async(f->client, 0, NULL, qmp_test_store_result, &res);
	answer(f, "query-status",
	       "{\"status\": \"guest-panicked\", \"singlestep\": false, \"running\": true, "
	       "\"x-new\": [1]}");
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(status, ==, "guest-panicked");
	g_assert_true(running);
}

static void
test_empty_reply_types(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	qsim_qmp_client_stop_async(f->client, 0, NULL, qmp_test_store_result, &res);
	answer(f, "stop", "\"done\"");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_stop_finish(f->client, res, &error));
	assert_unexpected(error, "stop");
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_system_reset_async(f->client, 0, NULL, qmp_test_store_result, &res);
	answer(f, "system_reset", "[]");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_system_reset_finish(f->client, res, &error));
	assert_unexpected(error, "system_reset");
}

static void
test_hmp(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autofree gchar *out = NULL;
	const gchar invalid_utf8[] = {'i', 'n', (gchar)0xff, 'o', 0};

	/* the command line travels as a JSON string, quotes and all */
	qsim_qmp_client_human_monitor_command_async(f->client, "info \"x\"; quit", 0, NULL,
	                                            qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	g_assert_cmpstr(json_object_get_string_member(
	                    json_object_get_object_member(cmd, "arguments"), "command-line"),
	                ==, "info \"x\"; quit");
	qmp_test_peer_reply(f->peer, cmd, "\"\"");
	res = qmp_test_wait(&res);
	out = qsim_qmp_client_human_monitor_command_finish(f->client, res, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(out, ==, "");
	g_clear_object(&res);

	qsim_qmp_client_human_monitor_command_async(f->client, "info status", 0, NULL,
	                                            qmp_test_store_result, &res);
	answer(f, "human-monitor-command", "{}");
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_human_monitor_command_finish(f->client, res, &error));
	assert_unexpected(error, "human-monitor-command");
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_human_monitor_command_async(f->client, invalid_utf8, 0, NULL,
	                                            qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	g_assert_null(qsim_qmp_client_human_monitor_command_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

static void
test_query_version_types(Fixture *f, gconstpointer data)
{
	const gchar *bad[] = {
	    "{\"qemu\": {\"major\": 7, \"minor\": 2}}",
	    "{\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": -1}}",
	    "{\"qemu\": {\"major\": 7.5, \"minor\": 2, \"micro\": 0}}",
	    "{\"qemu\": \"7.2.0\"}",
	    "{}",
	    "7",
	    NULL,
	};

	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		guint major = 99;

		qsim_qmp_client_query_version_async(f->client, 0, NULL, qmp_test_store_result,
		                                    &res);
		answer(f, "query-version", bad[i]);
		res = qmp_test_wait(&res);
		g_assert_false(qsim_qmp_client_query_version_finish(f->client, res, &major, NULL,
		                                                    NULL, &error));
		assert_unexpected(error, "query-version");
		g_assert_cmpuint(major, ==, 99);
	}
}

/* quit: losing the connection instead of a reply is success; an error reply is not. */
static void
test_quit(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autofree gchar *reply = NULL;

	qsim_qmp_client_quit_async(f->client, 0, NULL, qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	reply = g_strdup_printf("{\"id\": \"%s\", \"error\": {\"class\": \"GenericError\", "
	                        "\"desc\": \"nope\"}}",
	                        json_object_get_string_member(cmd, "id"));
	qmp_test_peer_send_line(f->peer, reply);
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_quit_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_cmpstr(error->message, ==, "QMP command 'quit' failed: GenericError: nope");
	g_clear_error(&error);
	g_clear_object(&res);
	g_clear_pointer(&cmd, json_object_unref);

	qsim_qmp_client_quit_async(f->client, 0, NULL, qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	g_assert_nonnull(cmd);
	qmp_test_peer_close(f->peer);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_quit_finish(f->client, res, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_qmp_client_get_eof(f->client));
}

/* Typed commands keep the client's timeout and cancellation errors. */
static void
test_timeout_cancel(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	g_autoptr(JsonObject) cmd2 = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();

	qsim_qmp_client_cont_async(f->client, 200, NULL, qmp_test_store_result, &res);
	cmd = qmp_test_peer_read_command(f->peer);
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_cont_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	g_assert_cmpstr(error->message, ==, "QMP command 'cont' timed out");
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_system_powerdown_async(f->client, 0, cancellable, qmp_test_store_result,
	                                       &res);
	cmd2 = qmp_test_peer_read_command(f->peer);
	g_cancellable_cancel(cancellable);
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_system_powerdown_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	/* both late replies are dropped without harm */
	qmp_test_peer_reply(f->peer, cmd, "{}");
	qmp_test_peer_reply(f->peer, cmd2, "{}");
	qmp_test_iterate_idle();
	g_assert_true(qsim_qmp_client_is_connected(f->client));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/qmp/commands/query-status-types", Fixture, NULL, fixture_setup,
	           test_query_status_types, fixture_teardown);
	g_test_add("/qsim/qmp/commands/query-status-ok", Fixture, NULL, fixture_setup,
	           test_query_status_ok, fixture_teardown);
	g_test_add("/qsim/qmp/commands/empty-reply-types", Fixture, NULL, fixture_setup,
	           test_empty_reply_types, fixture_teardown);
	g_test_add("/qsim/qmp/commands/human-monitor-command", Fixture, NULL, fixture_setup,
	           test_hmp, fixture_teardown);
	g_test_add("/qsim/qmp/commands/query-version-types", Fixture, NULL, fixture_setup,
	           test_query_version_types, fixture_teardown);
	g_test_add("/qsim/qmp/commands/quit", Fixture, NULL, fixture_setup, test_quit,
	           fixture_teardown);
	g_test_add("/qsim/qmp/commands/timeout-cancel", Fixture, NULL, fixture_setup,
	           test_timeout_cancel, fixture_teardown);
	return g_test_run();
}
