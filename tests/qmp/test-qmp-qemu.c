#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "qmp-test-peer.h"
#include "qmp/qsim-qmp-commands.h"

/* Generous: QEMU under TCG on a loaded 2-core machine can be slow to start. */
#define QMP_TIMEOUT_MS 30000

typedef struct {
	gchar *tmpdir;
	gchar *sock_path;
	GSubprocess *qemu;
	QsimQmpClient *client;
	GPtrArray *events;
	guint n_closed;
	gboolean closed_eof;
} Fixture;

static const gchar *
qemu_binary(void)
{
	const gchar *env = g_getenv("QSIM_QEMU");
	return env != NULL && env[0] != '\0' ? env : QSIM_QEMU_BINARY;
}

static void
on_event(QsimQmpClient *client, const gchar *name, JsonObject *data, gint64 ts, Fixture *f)
{
	/* QEMU's timestamps are wall-clock microseconds: sanity-check they are after 2020 */
	g_assert_cmpint(ts, >, G_GINT64_CONSTANT(1577836800000000));
	g_ptr_array_add(f->events, g_strdup(name));
}

static void
on_closed(QsimQmpClient *client, GError *error, Fixture *f)
{
	f->n_closed++;
	f->closed_eof = qsim_qmp_client_get_eof(client);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *qmp_arg = NULL;
	g_autoptr(GAsyncResult) res = NULL;

	f->tmpdir = g_dir_make_tmp("qsim-qmp-qemu-XXXXXX", &error);
	g_assert_no_error(error);
	f->sock_path = g_build_filename(f->tmpdir, "qmp.sock", NULL);
	f->events = g_ptr_array_new_with_free_func(g_free);
	qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", f->sock_path);
	f->qemu =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT, &error, qemu_binary(), "-machine",
	                     "q35", "-accel", "tcg", "-nodefaults", "-no-user-config", "-display",
	                     "none", "-m", "64", "-S", "-qmp", qmp_arg, NULL);
	g_assert_no_error(error);

	/* straight after spawning: the socket usually does not exist yet, so this also
	 * exercises the connect retries */
	qsim_qmp_client_connect_async(f->sock_path, QMP_TIMEOUT_MS, NULL, qmp_test_store_result,
	                              &res);
	res = qmp_test_wait(&res);
	f->client = qsim_qmp_client_connect_finish(res, &error);
	g_assert_no_error(error);
	g_signal_connect(f->client, "event", G_CALLBACK(on_event), f);
	g_signal_connect(f->client, "closed", G_CALLBACK(on_closed), f);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	if (f->client != NULL) {
		g_signal_handlers_disconnect_by_data(f->client, f);
		qsim_qmp_client_close(f->client);
		g_clear_object(&f->client);
	}
	/* never leave a QEMU behind, even when an assertion failed half-way */
	if (f->qemu != NULL) {
		if (g_subprocess_get_identifier(f->qemu) != NULL)
			g_subprocess_force_exit(f->qemu);
		g_subprocess_wait(f->qemu, NULL, NULL);
		g_clear_object(&f->qemu);
	}
	qmp_test_iterate_idle();
	g_unlink(f->sock_path);
	g_assert_cmpint(g_rmdir(f->tmpdir), ==, 0);
	g_free(f->sock_path);
	g_free(f->tmpdir);
	g_ptr_array_unref(f->events);
}

static void
assert_status(Fixture *f, const gchar *want_status, gboolean want_running)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *status = NULL;
	gboolean running = !want_running;

	qsim_qmp_client_query_status_async(f->client, QMP_TIMEOUT_MS, NULL, qmp_test_store_result,
	                                   &res);
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_status_finish(f->client, res, &running, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(status, ==, want_status);
	g_assert_cmpint(running, ==, want_running);
}

static gboolean
has_event(Fixture *f, const gchar *name)
{
	for (guint i = 0; i < f->events->len; i++) {
		if (g_str_equal(g_ptr_array_index(f->events, i), name))
			return TRUE;
	}
	return FALSE;
}

static void
wait_event(Fixture *f, const gchar *name)
{
	while (!has_event(f, name))
		g_main_context_iteration(NULL, TRUE);
}

/* "QEMU emulator version 7.2.22 (Debian ...)" -> 7, 2, 22 */
static void
version_from_binary(guint *major, guint *minor, guint *micro)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *out = NULL;
	const gchar *p;

	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, qemu_binary(), "--version",
	                        NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	p = strstr(out, "version ");
	g_assert_nonnull(p);
	g_assert_cmpint(sscanf(p, "version %u.%u.%u", major, minor, micro), ==, 3);
}

static void
test_lifecycle(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;
	g_autofree gchar *hmp = NULL;
	guint major = 0, minor = 0, micro = 0;
	guint bmajor = 1, bminor = 1, bmicro = 1;
	g_autofree gchar *bversion = NULL;

	version_from_binary(&bmajor, &bminor, &bmicro);
	bversion = g_strdup_printf("%u.%u.%u", bmajor, bminor, bmicro);
	g_assert_cmpstr(qsim_qmp_client_get_version(f->client), ==, bversion);

	/* -S: created but not started */
	assert_status(f, "prelaunch", FALSE);

	qsim_qmp_client_cont_async(f->client, QMP_TIMEOUT_MS, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_cont_finish(f->client, res, &error));
	g_assert_no_error(error);
	g_clear_object(&res);
	wait_event(f, "RESUME");
	assert_status(f, "running", TRUE);

	qsim_qmp_client_stop_async(f->client, QMP_TIMEOUT_MS, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_stop_finish(f->client, res, &error));
	g_clear_object(&res);
	wait_event(f, "STOP");
	assert_status(f, "paused", FALSE);

	qsim_qmp_client_query_version_async(f->client, QMP_TIMEOUT_MS, NULL, qmp_test_store_result,
	                                    &res);
	res = qmp_test_wait(&res);
	g_assert_true(
	    qsim_qmp_client_query_version_finish(f->client, res, &major, &minor, &micro, &error));
	g_assert_cmpuint(major, ==, bmajor);
	g_assert_cmpuint(minor, ==, bminor);
	g_assert_cmpuint(micro, ==, bmicro);
	g_clear_object(&res);

	qsim_qmp_client_human_monitor_command_async(f->client, "info status", QMP_TIMEOUT_MS, NULL,
	                                            qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	hmp = qsim_qmp_client_human_monitor_command_finish(f->client, res, &error);
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(hmp, "VM status: paused"));
	g_clear_object(&res);

	qsim_qmp_client_execute_async(f->client, "no-such-command", NULL, QMP_TIMEOUT_MS, NULL,
	                              qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	ret = qsim_qmp_client_execute_finish(f->client, res, &error);
	g_assert_null(ret);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_QMP);
	g_assert_true(g_str_has_prefix(error->message,
	                               "QMP command 'no-such-command' failed: CommandNotFound: "));
	g_clear_error(&error);
	g_clear_object(&res);

	qsim_qmp_client_quit_async(f->client, QMP_TIMEOUT_MS, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	g_assert_true(qsim_qmp_client_quit_finish(f->client, res, &error));
	g_assert_no_error(error);
	wait_event(f, "SHUTDOWN");
	while (f->n_closed == 0)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(f->n_closed, ==, 1);
	g_assert_true(f->closed_eof);
	g_assert_false(qsim_qmp_client_is_connected(f->client));
	g_subprocess_wait(f->qemu, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(f->qemu));
	g_assert_cmpint(g_subprocess_get_exit_status(f->qemu), ==, 0);
}

/* QEMU serves one monitor client at a time: a second one connects but gets no greeting,
 * and must fail with a timeout instead of hanging. */
static void
test_second_client(Fixture *f, gconstpointer data)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimQmpClient) second = NULL;

	qsim_qmp_client_connect_async(f->sock_path, 1000, NULL, qmp_test_store_result, &res);
	res = qmp_test_wait(&res);
	second = qsim_qmp_client_connect_finish(res, &error);
	g_assert_null(second);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	/* the first connection is unaffected */
	assert_status(f, "prelaunch", FALSE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/qmp/qemu/lifecycle", Fixture, NULL, fixture_setup, test_lifecycle,
	           fixture_teardown);
	g_test_add("/qsim/qmp/qemu/second-client", Fixture, NULL, fixture_setup, test_second_client,
	           fixture_teardown);
	return g_test_run();
}
