/*
 * A real qsimd against hostile local users and ordinary signals, with no VM: RUN_DIR,
 * STATE_DIR and the database's directory are checked at start (another user's, writable
 * by others, a symbolic link: refused with one line naming the directory), and SIGHUP
 * stops `qsimd api`, `agents` and `all` as gracefully as SIGTERM (exit 0, "stopped").
 */
#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "daemon-test-util.h"

/* hang guards only: a healthy start, refusal or stop takes well under a second */
#define START_TIMEOUT_S 60
#define REFUSE_TIMEOUT_S 20
#define STOP_TIMEOUT_S 60
#define OTHER_UID (geteuid() == 65534 ? 65533 : 65534)

typedef struct {
	gchar *dir;
	gchar *db;
	gchar *run;
	gchar *state;
	gchar *log;
	GStrv extra_env;
	GSubprocess *daemon;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autofree gchar *confs = NULL;

	f->dir = qsim_test_tmpdir_new();
	f->db = g_build_filename(f->dir, "qsim.db", NULL);
	f->run = g_build_filename(f->dir, "run", NULL);
	f->state = g_build_filename(f->dir, "state", NULL);
	f->log = g_build_filename(f->dir, "qsimd.log", NULL);
	confs = g_build_filename(f->dir, "vmconf", NULL);
	g_assert_cmpint(g_mkdir(confs, 0700), ==, 0);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	if (f->daemon != NULL) {
		g_subprocess_force_exit(f->daemon);
		g_subprocess_wait(f->daemon, NULL, NULL);
		g_clear_object(&f->daemon);
	}
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->db);
	g_free(f->run);
	g_free(f->state);
	g_free(f->log);
	g_strfreev(f->extra_env);
}

/* Starts `qsimd CMD` with the fixture's private settings; its output goes to f->log */
static void
daemon_spawnv(Fixture *f, const gchar *const *args)
{
	g_autofree gchar *confs = g_build_filename(f->dir, "vmconf", NULL);
	g_autoptr(GSubprocessLauncher) l = daemon_test_launcher_new(
	    G_SUBPROCESS_FLAGS_NONE, f->dir, f->db, f->run, f->state, f->dir, confs);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *port = g_strdup_printf("%u", qsim_test_free_port());
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_subprocess_launcher_setenv(l, "QSIM_API_HOST", "127.0.0.1", TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_API_PORT", port, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_AGENT_COUNT", "1", TRUE);
	/* no KVM probe: nothing here boots a guest */
	g_subprocess_launcher_setenv(l, "QSIM_ACCEL", "tcg", TRUE);
	g_subprocess_launcher_set_stdout_file_path(l, f->log);
	g_subprocess_launcher_set_stderr_file_path(l, f->log);
	for (guint i = 0; f->extra_env != NULL && f->extra_env[i] != NULL; i++) {
		g_auto(GStrv) kv = g_strsplit(f->extra_env[i], "=", 2);

		g_subprocess_launcher_setenv(l, kv[0], kv[1], TRUE);
	}
	g_ptr_array_add(argv, (gpointer)qsim_test_qsimd_path());
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	f->daemon = g_subprocess_launcher_spawnv(l, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
}

static void
daemon_spawn(Fixture *f, const gchar *cmd)
{
	const gchar *args[] = {cmd, NULL};

	daemon_spawnv(f, args);
}

static gchar *
read_log(Fixture *f)
{
	gchar *text = NULL;

	if (!g_file_get_contents(f->log, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

static void
wait_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	*(gboolean *)user_data = TRUE;
}

/* Waits (bounded) for the daemon to end. Returns: FALSE when it was still running */
static gboolean
daemon_wait(Fixture *f, guint timeout_s)
{
	gboolean done = FALSE;
	g_autoptr(GCancellable) cancel = g_cancellable_new();
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

	g_subprocess_wait_async(f->daemon, cancel, wait_done_cb, &done);
	while (!done && g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(20 * 1000);
	}
	if (!done) {
		/* still running: let the cancelled wait finish before anyone reuses the context */
		g_cancellable_cancel(cancel);
		while (!done)
			g_main_context_iteration(NULL, TRUE);
		return FALSE;
	}
	return TRUE;
}

/* Waits (bounded) for @needle in the log; FALSE when the daemon ended or time ran out */
static gboolean
wait_log(Fixture *f, const gchar *needle, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		g_autofree gchar *log = read_log(f);

		if (strstr(log, needle) != NULL)
			return TRUE;
		g_usleep(50 * 1000);
	}
	return FALSE;
}

/* Returns: TRUE when @pid has a handler for @sig (SigCgt in /proc/PID/status) */
static gboolean
catches_signal(const gchar *pid, gint sig)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%s/status", pid);
	g_autofree gchar *text = NULL;
	const gchar *line;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return FALSE;
	line = strstr(text, "\nSigCgt:");
	if (line == NULL)
		return FALSE;
	return (g_ascii_strtoull(line + strlen("\nSigCgt:"), NULL, 16) >> (sig - 1) & 1) != 0;
}

/* `qsimd CMD` must refuse to start: exit 1 and exactly one line naming @what */
static void
assert_refused(Fixture *f, const gchar *cmd, const gchar *what)
{
	g_autofree gchar *log = NULL;
	g_auto(GStrv) lines = NULL;

	daemon_spawn(f, cmd);
	if (!daemon_wait(f, REFUSE_TIMEOUT_S)) {
		/* the bug: it started anyway */
		log = read_log(f);
		g_test_message("qsimd %s still running; log:\n%s", cmd, log);
		g_subprocess_force_exit(f->daemon);
		g_subprocess_wait(f->daemon, NULL, NULL);
		g_clear_object(&f->daemon);
		g_test_fail();
		return;
	}
	log = read_log(f);
	g_test_message("qsimd %s: %s", cmd, log);
	g_assert_true(g_subprocess_get_if_exited(f->daemon));
	g_assert_cmpint(g_subprocess_get_exit_status(f->daemon), ==, 1);
	lines = g_strsplit(g_strchomp(log), "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 1);
	g_assert_true(g_str_has_prefix(lines[0], "qsimd: "));
	g_assert_nonnull(strstr(lines[0], what));
	g_clear_object(&f->daemon);
}

/* /tmp/qsim-<uid> made first by another user; RUN_DIR points at a private stand-in */
static void
test_run_dir_other_owner(Fixture *f, gconstpointer data)
{
	g_autofree gchar *what = NULL;

	if (geteuid() != 0) {
		g_test_skip("needs root to give a directory to another user");
		return;
	}
	g_assert_cmpint(g_mkdir(f->run, 0700), ==, 0);
	g_assert_cmpint(chown(f->run, OTHER_UID, OTHER_UID), ==, 0);
	what =
	    g_strdup_printf("RUN_DIR: %s is owned by uid %u, not by us", f->run, (guint)OTHER_UID);
	assert_refused(f, "agents", what);
	assert_refused(f, "all", what);
}

static void
test_run_dir_symlink(Fixture *f, gconstpointer data)
{
	g_autofree gchar *elsewhere = g_build_filename(f->dir, "elsewhere", NULL);
	g_autofree gchar *what = g_strdup_printf("RUN_DIR: %s is a symbolic link", f->run);

	g_assert_cmpint(symlink(elsewhere, f->run), ==, 0);
	assert_refused(f, "agents", what);
	/* caught, not followed */
	g_assert_false(g_file_test(elsewhere, G_FILE_TEST_EXISTS));
}

static void
test_state_dir_writable(Fixture *f, gconstpointer data)
{
	g_autofree gchar *what =
	    g_strdup_printf("STATE_DIR: %s is writable by all users (mode 0777)", f->state);

	g_assert_cmpint(g_mkdir(f->state, 0700), ==, 0);
	g_assert_cmpint(chmod(f->state, 0777), ==, 0);
	assert_refused(f, "all", what);
	assert_refused(f, "api", what);
}

static void
test_db_dir_writable(Fixture *f, gconstpointer data)
{
	g_autofree gchar *shared = g_build_filename(f->dir, "shared", NULL);
	g_autofree gchar *what = NULL;

	/* like /tmp: sticky, but another user could still make the journal or WAL first */
	g_assert_cmpint(g_mkdir(shared, 0700), ==, 0);
	g_assert_cmpint(chmod(shared, 01777), ==, 0);
	g_free(f->db);
	f->db = g_build_filename(shared, "qsim.db", NULL);
	what = g_strdup_printf("DB_PATH: %s is writable by all users (mode 1777)", shared);
	assert_refused(f, "api", what);
	assert_refused(f, "agents", what);
	g_assert_false(g_file_test(f->db, G_FILE_TEST_EXISTS));
}

/* SIGHUP: the same graceful stop as SIGTERM, exit 0 */
static void
test_sighup(Fixture *f, gconstpointer data)
{
	const gchar *cmd = data;
	const gchar *ready = g_strcmp0(cmd, "api") == 0 ? "listening on" : "agents started";
	const gchar *stopped = g_strcmp0(cmd, "api") == 0   ? "API server stopped"
	                       : g_strcmp0(cmd, "all") == 0 ? "qsimd all stopped"
	                                                    : "agents stopped";
	g_autofree gchar *log = NULL;
	struct stat st;
	gint64 deadline;

	daemon_spawn(f, cmd);
	if (!wait_log(f, ready, START_TIMEOUT_S)) {
		log = read_log(f);
		g_error("qsimd %s did not start; log:\n%s", cmd, log);
	}
	/* the handlers go in just after the ready line: do not race them (without a
	 * SIGHUP handler this only waits a few seconds and the signal kills qsimd) */
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (!catches_signal(g_subprocess_get_identifier(f->daemon), SIGHUP) &&
	       g_get_monotonic_time() < deadline)
		g_usleep(20 * 1000);
	g_subprocess_send_signal(f->daemon, SIGHUP);
	g_assert_true(daemon_wait(f, STOP_TIMEOUT_S));
	log = read_log(f);
	g_test_message("qsimd %s log:\n%s", cmd, log);
	g_assert_false(g_subprocess_get_if_signaled(f->daemon));
	g_assert_true(g_subprocess_get_if_exited(f->daemon));
	g_assert_cmpint(g_subprocess_get_exit_status(f->daemon), ==, 0);
	g_assert_nonnull(strstr(log, stopped));
	if (g_strcmp0(cmd, "api") != 0) {
		/* the agents made RUN_DIR and STATE_DIR at start, private */
		g_assert_cmpint(lstat(f->run, &st), ==, 0);
		g_assert_cmpuint(st.st_mode & 07777, ==, 0700);
		g_assert_cmpint(lstat(f->state, &st), ==, 0);
		g_assert_cmpuint(st.st_mode & 07777, ==, 0700);
	}
	g_clear_object(&f->daemon);
}

/* run-vm: SIGHUP while the VM starts stops it and exits 128+1, leaving no run dir */
static void
test_sighup_run_vm(Fixture *f, gconstpointer data)
{
	g_autofree gchar *qemu = qsim_test_write(
	    f->dir, "fake-qemu", "#!/bin/sh\n# never answers QMP\nexec sleep 600\n");
	g_autofree gchar *qemu_img =
	    qsim_test_write(f->dir, "fake-qemu-img",
	                    "#!/bin/sh\n# the overlay is the last argument\n"
	                    "for a; do last=$a; done\n: > \"$last\"\n");
	g_autofree gchar *image = qsim_test_write(f->dir, "fake.qcow2", "QFI\xfb");
	g_autofree gchar *log = NULL;
	g_autoptr(GDir) run = NULL;
	const gchar *args[] = {"run-vm", "--no-console", "fake", "true", NULL};
	gint64 deadline;

	g_assert_cmpint(chmod(qemu, 0700), ==, 0);
	g_assert_cmpint(chmod(qemu_img, 0700), ==, 0);
	f->extra_env = g_new0(gchar *, 3);
	f->extra_env[0] = g_strconcat("QSIM_QEMU=", qemu, NULL);
	f->extra_env[1] = g_strconcat("QSIM_QEMU_IMG=", qemu_img, NULL);
	daemon_spawnv(f, args);
	if (!wait_log(f, "QEMU pid", START_TIMEOUT_S)) {
		log = read_log(f);
		g_error("qsimd run-vm did not start QEMU; log:\n%s", log);
	}
	deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	while (!catches_signal(g_subprocess_get_identifier(f->daemon), SIGHUP) &&
	       g_get_monotonic_time() < deadline)
		g_usleep(20 * 1000);
	g_subprocess_send_signal(f->daemon, SIGHUP);
	g_assert_true(daemon_wait(f, STOP_TIMEOUT_S));
	log = read_log(f);
	g_test_message("qsimd run-vm log:\n%s", log);
	g_assert_false(g_subprocess_get_if_signaled(f->daemon));
	g_assert_true(g_subprocess_get_if_exited(f->daemon));
	g_assert_cmpint(g_subprocess_get_exit_status(f->daemon), ==, 128 + SIGHUP);
	g_assert_nonnull(strstr(log, "qsimd: hung up"));
	/* the VM's run dir (overlay, sockets) is gone */
	run = g_dir_open(f->run, 0, NULL);
	g_assert_nonnull(run);
	g_assert_null(g_dir_read_name(run));
	g_clear_object(&f->daemon);
}

#define ADD(path, data, fn) g_test_add(path, Fixture, data, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsimd/local/run-dir-other-owner", NULL, test_run_dir_other_owner);
	ADD("/qsimd/local/run-dir-symlink", NULL, test_run_dir_symlink);
	ADD("/qsimd/local/state-dir-writable", NULL, test_state_dir_writable);
	ADD("/qsimd/local/db-dir-writable", NULL, test_db_dir_writable);
	ADD("/qsimd/sighup/api", "api", test_sighup);
	ADD("/qsimd/sighup/agents", "agents", test_sighup);
	ADD("/qsimd/sighup/all", "all", test_sighup);
	ADD("/qsimd/sighup/run-vm", NULL, test_sighup_run_vm);
	return g_test_run();
}
