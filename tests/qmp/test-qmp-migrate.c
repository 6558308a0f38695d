#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-migrate.h"
#include "vm/qsim-template-migrate.h"

/*
 * The typed migration commands and the template save/load built on them, against a fake
 * QEMU. The replies are QEMU 7.2's (Debian 1:7.2+dfsg-7+deb12u18+b3), recorded from a
 * real `-S` QEMU migrating to `exec:` URIs; the wrong-shaped ones are what a changed
 * schema or a broken peer could send, and must fail at once, not at the deadline.
 */

#define REPLY_NONE "{}"
#define REPLY_SETUP "{\"status\": \"setup\"}"
#define REPLY_ACTIVE                                                                               \
	"{\"expected-downtime\": 300, \"status\": \"active\", \"setup-time\": 0, "                 \
	"\"total-time\": 54, \"ram\": {\"total\": 67641344, \"postcopy-requests\": 0, "            \
	"\"dirty-sync-count\": 1, \"multifd-bytes\": 0, \"pages-per-second\": 0, "                 \
	"\"downtime-bytes\": 65518, \"page-size\": 4096, \"remaining\": 37822464, "                \
	"\"postcopy-bytes\": 0, \"mbps\": 0, \"transferred\": 65518, "                             \
	"\"dirty-sync-missed-zero-copy\": 0, \"precopy-bytes\": 0, \"duplicate\": 7279, "          \
	"\"dirty-pages-rate\": 0, \"skipped\": 0, \"normal-bytes\": 0, \"normal\": 0}}"
#define REPLY_COMPLETED                                                                            \
	"{\"status\": \"completed\", \"setup-time\": 1, \"downtime\": 1, \"total-time\": 53, "     \
	"\"ram\": {\"total\": 67641344, \"postcopy-requests\": 0, \"dirty-sync-count\": 2, "       \
	"\"multifd-bytes\": 0, \"pages-per-second\": 0, \"downtime-bytes\": 357563, "              \
	"\"page-size\": 4096, \"remaining\": 0, \"postcopy-bytes\": 0, "                           \
	"\"mbps\": 66.752307692307681, \"transferred\": 357563, "                                  \
	"\"dirty-sync-missed-zero-copy\": 0, \"precopy-bytes\": 0, \"duplicate\": 16463, "         \
	"\"dirty-pages-rate\": 0, \"skipped\": 0, \"normal-bytes\": 208896, \"normal\": 51}}"
#define REPLY_FAILED                                                                               \
	"{\"status\": \"failed\", \"error-desc\": \"Unable to write to command: Broken pipe\"}"

/* a deadline far beyond the test's timeout: a wrong shape that waited for it would hang */
#define LONG_TIMEOUT_MS 600000

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

/* Reads the client's next command, checks its name, and returns it for a reply. */
static JsonObject *
expect(Fixture *f, const gchar *command)
{
	JsonObject *cmd = qmp_test_peer_read_command(f->peer);

	g_assert_nonnull(cmd);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==, command);
	return cmd;
}

static void
answer(Fixture *f, const gchar *command, const gchar *return_json)
{
	g_autoptr(JsonObject) cmd = expect(f, command);

	qmp_test_peer_reply(f->peer, cmd, return_json);
}

static void
answer_error(Fixture *f, const gchar *command, const gchar *desc)
{
	g_autoptr(JsonObject) cmd = expect(f, command);
	g_autofree gchar *line = g_strdup_printf(
	    "{\"id\": \"%s\", \"error\": {\"class\": \"GenericError\", \"desc\": \"%s\"}}",
	    json_object_get_string_member(cmd, "id"), desc);

	qmp_test_peer_send_line(f->peer, line);
}

static void
assert_unexpected(GError *error, const gchar *command)
{
	g_autofree gchar *needle =
	    g_strdup_printf("QMP command '%s' failed: unexpected reply", command);

	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, needle));
}

static void
test_set_capability(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	JsonObject *cap;

	qsim_qmp_client_migrate_set_capability_async(f->client, "x-ignore-shared", TRUE, 0, NULL,
	                                             qmp_test_store_result, &res);
	cmd = expect(f, "migrate-set-capabilities");
	cap = json_array_get_object_element(
	    json_object_get_array_member(json_object_get_object_member(cmd, "arguments"),
	                                 "capabilities"),
	    0);
	g_assert_cmpstr(json_object_get_string_member(cap, "capability"), ==, "x-ignore-shared");
	g_assert_true(json_object_get_boolean_member(cap, "state"));
	qmp_test_peer_reply(f->peer, cmd, "{}");
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_migrate_set_capability_finish(f->client, res, &error));
	g_assert_no_error(error);
	g_clear_object(&res);

	qsim_qmp_client_migrate_set_capability_async(f->client, "no-such-cap", TRUE, 0, NULL,
	                                             qmp_test_store_result, &res);
	answer_error(f, "migrate-set-capabilities",
	             "Parameter 'capability' does not accept value 'no-such-cap'");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_migrate_set_capability_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, "does not accept value 'no-such-cap'"));
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_migrate_set_capability_async(f->client, "x-ignore-shared", TRUE, 0, NULL,
	                                             qmp_test_store_result, &res);
	answer(f, "migrate-set-capabilities", "true");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_migrate_set_capability_finish(f->client, res, &error));
	assert_unexpected(error, "migrate-set-capabilities");
}

static void
test_getfd(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;
	gint fd = g_open("/dev/null", O_RDONLY | O_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	qsim_qmp_client_getfd_async(f->client, "qsim-state", fd, 0, NULL, qmp_test_store_result,
	                            &res);
	cmd = expect(f, "getfd");
	g_assert_cmpstr(json_object_get_string_member(
	                    json_object_get_object_member(cmd, "arguments"), "fdname"),
	                ==, "qsim-state");
	qmp_test_peer_reply(f->peer, cmd, "{}");
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_getfd_finish(f->client, res, &error));
	g_assert_no_error(error);
	g_clear_object(&res);

	qsim_qmp_client_getfd_async(f->client, "qsim-state", fd, 0, NULL, qmp_test_store_result,
	                            &res);
	answer(f, "getfd", "\"qsim-state\"");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_getfd_finish(f->client, res, &error));
	assert_unexpected(error, "getfd");
	close(fd);
}

static void
test_migrate(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;

	qsim_qmp_client_migrate_async(f->client, "fd:qsim-state", 0, NULL, qmp_test_store_result,
	                              &res);
	cmd = expect(f, "migrate");
	g_assert_cmpstr(
	    json_object_get_string_member(json_object_get_object_member(cmd, "arguments"), "uri"),
	    ==, "fd:qsim-state");
	qmp_test_peer_reply(f->peer, cmd, "{}");
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_migrate_finish(f->client, res, &error));
	g_clear_object(&res);

	qsim_qmp_client_migrate_async(f->client, "fd:qsim-state", 0, NULL, qmp_test_store_result,
	                              &res);
	answer_error(f, "migrate",
	             "Can't migrate the vm that was paused due to previous migration");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_migrate_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_nonnull(strstr(error->message, "paused due to previous migration"));
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_migrate_incoming_async(f->client, "fd:3", 0, NULL, qmp_test_store_result,
	                                       &res);
	answer(f, "migrate-incoming", "[]");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_migrate_incoming_finish(f->client, res, &error));
	assert_unexpected(error, "migrate-incoming");
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_migrate_incoming_async(f->client, "fd:3", 0, NULL, qmp_test_store_result,
	                                       &res);
	answer_error(f, "migrate-incoming", "'-incoming' was not specified on the command line");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_qmp_client_migrate_incoming_finish(f->client, res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
}

static void
test_query_migrate_ok(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *reply;
		const gchar *status;
		const gchar *error_desc;
	} cases[] = {
	    {REPLY_NONE, "none", NULL},
	    {REPLY_SETUP, "setup", NULL},
	    {REPLY_ACTIVE, "active", NULL},
	    {REPLY_COMPLETED, "completed", NULL},
	    {REPLY_FAILED, "failed", "Unable to write to command: Broken pipe"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *status = NULL;
		g_autofree gchar *error_desc = NULL;

		qsim_qmp_client_query_migrate_async(f->client, 0, NULL, qmp_test_store_result,
		                                    &res);
		answer(f, "query-migrate", cases[i].reply);
		res = qmp_test_wait(&res);
		g_assert_true(qsim_qmp_client_query_migrate_finish(f->client, res, &status,
		                                                   &error_desc, &error));
		g_assert_no_error(error);
		g_assert_cmpstr(status, ==, cases[i].status);
		g_assert_cmpstr(error_desc, ==, cases[i].error_desc);
	}
}

static void
test_query_migrate_types(Fixture *f, gconstpointer data)
{
	const gchar *bad[] = {
	    "[]",
	    "\"completed\"",
	    "null",
	    "{\"status\": 1}",
	    "{\"status\": \"\"}",
	    "{\"status\": {\"name\": \"completed\"}}",
	    "{\"status\": \"failed\", \"error-desc\": 5}",
	    NULL,
	};

	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GError) error = NULL;
		g_autofree gchar *status = g_strdup("untouched");

		qsim_qmp_client_query_migrate_async(f->client, 0, NULL, qmp_test_store_result,
		                                    &res);
		answer(f, "query-migrate", bad[i]);
		res = qmp_test_wait(&res);
		g_assert_false(
		    qsim_qmp_client_query_migrate_finish(f->client, res, &status, NULL, &error));
		assert_unexpected(error, "query-migrate");
		g_assert_cmpstr(status, ==, "untouched");
	}
	g_assert_true(qsim_qmp_client_is_connected(f->client));
}

/* A template save as QEMU runs it: capabilities, getfd, migrate, then query-migrate
 * until completed. */
static gint
open_state_file(gchar **path)
{
	g_autoptr(GError) error = NULL;
	gint fd = g_file_open_tmp("qsim-migrate-XXXXXX", path, &error);

	g_assert_no_error(error);
	return fd;
}

static void
start_save(Fixture *f, GAsyncResult **res, gchar **path)
{
	gint fd = open_state_file(path);

	qsim_template_migrate_save_async(f->client, fd, LONG_TIMEOUT_MS, NULL,
	                                 qmp_test_store_result, res);
	close(fd); /* the save has its own copy */
	answer(f, "migrate-set-capabilities", "{}");
	answer(f, "getfd", "{}");
	answer(f, "migrate", "{}");
}

static void
test_save_ok(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;

	start_save(f, &res, &path);
	answer(f, "query-migrate", REPLY_SETUP);
	answer(f, "query-migrate", REPLY_ACTIVE);
	answer(f, "query-migrate", REPLY_COMPLETED);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_template_migrate_save_finish(res, &error));
	g_assert_no_error(error);
	g_unlink(path);
}

static void
test_save_failed(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;

	start_save(f, &res, &path);
	answer(f, "query-migrate", REPLY_ACTIVE);
	answer(f, "query-migrate", REPLY_FAILED);
	res = qmp_test_wait(&res);
	g_assert_false(qsim_template_migrate_save_finish(res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_VM);
	g_assert_nonnull(strstr(error->message, "Broken pipe"));
	g_unlink(path);
}

/* the bug this layer fixes: a wrong shape was read as "" and polled until the deadline */
static void
test_save_wrong_shape(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;
	gint64 start = g_get_monotonic_time();

	start_save(f, &res, &path);
	answer(f, "query-migrate", REPLY_SETUP);
	answer(f, "query-migrate", "[\"completed\"]");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_template_migrate_save_finish(res, &error));
	assert_unexpected(error, "query-migrate");
	g_assert_true(g_str_has_prefix(error->message, "saving the state file failed: "));
	g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
	g_unlink(path);
}

static void
test_save_wrong_shape_step(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = NULL;
	gint fd = open_state_file(&path);

	qsim_template_migrate_save_async(f->client, fd, LONG_TIMEOUT_MS, NULL,
	                                 qmp_test_store_result, &res);
	close(fd);
	answer(f, "migrate-set-capabilities", "{}");
	answer(f, "getfd", "{}");
	answer(f, "migrate", "\"started\"");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_template_migrate_save_finish(res, &error));
	assert_unexpected(error, "migrate");
	g_assert_true(g_str_has_prefix(error->message, "cannot save the state file: "));
	g_unlink(path);
}

static void
test_load(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonObject) cmd = NULL;

	qsim_template_migrate_load_async(f->client, 7, LONG_TIMEOUT_MS, NULL, qmp_test_store_result,
	                                 &res);
	answer(f, "migrate-set-capabilities", "{}");
	cmd = expect(f, "migrate-incoming");
	g_assert_cmpstr(
	    json_object_get_string_member(json_object_get_object_member(cmd, "arguments"), "uri"),
	    ==, "fd:7");
	qmp_test_peer_reply(f->peer, cmd, "{}");
	answer(f, "query-status",
	       "{\"status\": \"inmigrate\", \"singlestep\": false, "
	       "\"running\": false}");
	answer(f, "query-status",
	       "{\"status\": \"paused\", \"singlestep\": false, "
	       "\"running\": false}");
	answer(f, "cont", "{}");
	res = qmp_test_wait(&res);
	g_assert_true(qsim_template_migrate_load_finish(res, &error));
	g_assert_no_error(error);
	g_clear_object(&res);

	qsim_template_migrate_load_async(f->client, 7, LONG_TIMEOUT_MS, NULL, qmp_test_store_result,
	                                 &res);
	answer(f, "migrate-set-capabilities", "{}");
	answer(f, "migrate-incoming", "{}");
	answer(f, "query-status", "{\"status\": \"inmigrate\"}");
	res = qmp_test_wait(&res);
	g_assert_false(qsim_template_migrate_load_finish(res, &error));
	assert_unexpected(error, "query-status");
	g_assert_true(g_str_has_prefix(error->message, "restore from the state file failed: "));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/qmp/migrate/set-capability", Fixture, NULL, fixture_setup,
	           test_set_capability, fixture_teardown);
	g_test_add("/qsim/qmp/migrate/getfd", Fixture, NULL, fixture_setup, test_getfd,
	           fixture_teardown);
	g_test_add("/qsim/qmp/migrate/migrate", Fixture, NULL, fixture_setup, test_migrate,
	           fixture_teardown);
	g_test_add("/qsim/qmp/migrate/query-migrate-ok", Fixture, NULL, fixture_setup,
	           test_query_migrate_ok, fixture_teardown);
	g_test_add("/qsim/qmp/migrate/query-migrate-types", Fixture, NULL, fixture_setup,
	           test_query_migrate_types, fixture_teardown);
	g_test_add("/qsim/qmp/migrate/save-ok", Fixture, NULL, fixture_setup, test_save_ok,
	           fixture_teardown);
	g_test_add("/qsim/qmp/migrate/save-failed", Fixture, NULL, fixture_setup, test_save_failed,
	           fixture_teardown);
	g_test_add("/qsim/qmp/migrate/save-wrong-shape", Fixture, NULL, fixture_setup,
	           test_save_wrong_shape, fixture_teardown);
	g_test_add("/qsim/qmp/migrate/save-wrong-shape-step", Fixture, NULL, fixture_setup,
	           test_save_wrong_shape_step, fixture_teardown);
	g_test_add("/qsim/qmp/migrate/load", Fixture, NULL, fixture_setup, test_load,
	           fixture_teardown);
	return g_test_run();
}
