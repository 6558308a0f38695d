#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "test-util.h"
#include "vm-test-util.h"

/* `qsimd run-vm` end to end: the real binary, the real tiny guest, a temp RUN_DIR. */

typedef struct {
	gchar *run_root;
	gchar *state_dir;
	gchar *out;
	gchar *err;
	gint status;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->run_root = g_dir_make_tmp("qsim-runvm-XXXXXX", &error);
	g_assert_no_error(error);
	f->state_dir = g_dir_make_tmp("qsim-runvm-state-XXXXXX", &error);
	g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autoptr(GDir) dir = g_dir_open(f->run_root, 0, NULL);

	/* run-vm cleans up whichever way it ends */
	g_assert_nonnull(dir);
	g_assert_null(g_dir_read_name(dir));
	g_rmdir(f->run_root);
	g_free(f->run_root);
	qsim_test_rm_rf(f->state_dir);
	g_free(f->state_dir);
	g_free(f->out);
	g_free(f->err);
}

static GSubprocess *
spawn_run_vm(Fixture *f, const gchar *const *args, GError **error)
{
	g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autofree gchar *images = vm_test_images_dir();
	g_autofree gchar *configs = g_build_filename(SOURCE_ROOT, "vm_configs", NULL);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_subprocess_launcher_setenv(l, "QSIM_VM_IMAGES_DIR", images, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_VM_CONFIG_DIR", configs, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_RUN_DIR", f->run_root, TRUE);
	/* the KVM probe's lock lives there: never in the home of whoever runs the tests */
	g_subprocess_launcher_setenv(l, "QSIM_STATE_DIR", f->state_dir, TRUE);
	g_subprocess_launcher_set_cwd(l, f->run_root);
	g_ptr_array_add(argv, (gpointer)QSIMD_PATH);
	g_ptr_array_add(argv, (gpointer) "run-vm");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	return g_subprocess_launcher_spawnv(l, (const gchar *const *)argv->pdata, error);
}

typedef struct {
	gboolean done;
	gchar *out;
	gchar *err;
	GError *error;
} Comm;

static void
communicate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Comm *c = user_data;

	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &c->out, &c->err,
	                                     &c->error);
	c->done = TRUE;
}

static void
finish(Fixture *f, GSubprocess *proc, Comm *c)
{
	vm_test_iterate_until(&c->done, 180);
	g_assert_true(c->done);
	g_assert_no_error(c->error);
	g_assert_true(g_subprocess_wait(proc, NULL, NULL));
	g_assert_true(g_subprocess_get_if_exited(proc));
	f->status = g_subprocess_get_exit_status(proc);
	f->out = c->out;
	f->err = c->err;
}

static void
test_status_and_streams(Fixture *f, gconstpointer data)
{
	const gchar *args[] = {"tiny", "--", "echo out; echo err >&2; exit 3", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	Comm c = {FALSE};

	if (vm_test_skip_without_image())
		return;
	proc = spawn_run_vm(f, args, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, communicate_cb, &c);
	finish(f, proc, &c);
	g_assert_cmpint(f->status, ==, 3);
	g_assert_cmpstr(f->out, ==, "out\n");
	/* stderr carries the console too; the command's line is in there whole */
	g_assert_nonnull(strstr(f->err, "err\n"));
	g_assert_nonnull(strstr(f->err, "QSIM-READY"));
}

static void
test_sigterm_cleans_up(Fixture *f, gconstpointer data)
{
	const gchar *args[] = {"tiny", "echo", "started;", "sleep", "100", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GDataInputStream) out = NULL;
	g_autofree gchar *line = NULL;
	g_autofree gchar *rest = NULL;

	if (vm_test_skip_without_image())
		return;
	proc = spawn_run_vm(f, args, &error);
	g_assert_no_error(error);
	/* words after the VM name form the command line, like ssh(1) */
	out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(proc));
	line = g_data_input_stream_read_line(out, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(line, ==, "started");
	g_subprocess_send_signal(proc, SIGTERM);
	g_assert_true(g_subprocess_wait(proc, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 128 + SIGTERM);
}

static void
test_timeout(Fixture *f, gconstpointer data)
{
	const gchar *args[] = {"--timeout", "2", "--no-console", "tiny", "sleep 100", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	Comm c = {FALSE};

	if (vm_test_skip_without_image())
		return;
	proc = spawn_run_vm(f, args, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, communicate_cb, &c);
	finish(f, proc, &c);
	g_assert_cmpint(f->status, ==, 124);
	g_assert_nonnull(strstr(f->err, "timed out"));
	g_assert_null(strstr(f->err, "QSIM-READY"));
}

static void
test_bad_usage(Fixture *f, gconstpointer data)
{
	const gchar *no_cmd[] = {"tiny", NULL};
	const gchar *bad_name[] = {"../etc", "true", NULL};
	const gchar *unknown_vm[] = {"no-such-vm", "true", NULL};
	const gchar *const *cases[] = {no_cmd, bad_name, unknown_vm};
	const gint want[] = {2, 2, 125};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSubprocess) proc = spawn_run_vm(f, cases[i], &error);
		Comm c = {FALSE};

		g_assert_no_error(error);
		g_subprocess_communicate_utf8_async(proc, NULL, NULL, communicate_cb, &c);
		g_free(f->out);
		g_free(f->err);
		finish(f, proc, &c);
		g_assert_cmpint(f->status, ==, want[i]);
		g_assert_true(g_str_has_prefix(f->err, "qsimd: "));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/run-vm/status-and-streams", Fixture, NULL, fixture_setup,
	           test_status_and_streams, fixture_teardown);
	g_test_add("/qsim/run-vm/sigterm-cleans-up", Fixture, NULL, fixture_setup,
	           test_sigterm_cleans_up, fixture_teardown);
	g_test_add("/qsim/run-vm/timeout", Fixture, NULL, fixture_setup, test_timeout,
	           fixture_teardown);
	g_test_add("/qsim/run-vm/bad-usage", Fixture, NULL, fixture_setup, test_bad_usage,
	           fixture_teardown);
	return g_test_run();
}
