#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include "daemon-test-util.h"

#include <signal.h>
#include <unistd.h>
#include <string.h>

#include <glib/gstdio.h>

#define HEALTHY_TIMEOUT_S 60
#define POLL_US (200 * 1000)

const gchar *
daemon_test_source_root(void)
{
	const gchar *root = g_getenv("QSIM_SOURCE_ROOT");

	return root != NULL ? root : SOURCE_ROOT;
}

/* Skips the test without the tiny guest, unless QSIM_REQUIRE_VM makes that an error */
gboolean
daemon_test_have_guest(void)
{
	g_autofree gchar *image =
	    g_build_filename(daemon_test_source_root(), "vm_images", "tiny.qcow2", NULL);

	if (g_file_test(image, G_FILE_TEST_EXISTS))
		return TRUE;
	if (g_getenv("QSIM_REQUIRE_VM") != NULL)
		g_error("the tiny guest is required (QSIM_REQUIRE_VM): no %s", image);
	g_test_skip("no tiny guest (meson compile -C build guest-image)");
	return FALSE;
}

/* Links the guest's read-only files into @images; the image only with @with_image (a
 * test that touches the image copies it) */
void
daemon_test_link_guest(const gchar *images, gboolean with_image)
{
	g_autofree gchar *src_images =
	    g_build_filename(daemon_test_source_root(), "vm_images", NULL);
	const gchar *linked[] = {"tiny.qcow2", "tiny-vmlinux", "tiny-initrd.img", "tiny-key", NULL};

	for (guint i = with_image ? 0 : 1; linked[i] != NULL; i++) {
		g_autofree gchar *from = g_build_filename(src_images, linked[i], NULL);
		g_autofree gchar *to = g_build_filename(images, linked[i], NULL);

		g_assert_cmpint(symlink(from, to), ==, 0);
	}
}

/* Writes @configs/@name.conf: the tiny guest's test config followed by @extra */
void
daemon_test_write_conf(const gchar *configs, const gchar *name, const gchar *extra)
{
	g_autofree gchar *src = g_build_filename(daemon_test_source_root(), "tests", "data",
	                                         "vm_configs", "tiny.conf", NULL);
	g_autofree gchar *file = g_strconcat(name, ".conf", NULL);
	g_autofree gchar *conf = g_build_filename(configs, file, NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *all = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(src, &text, NULL, &error));
	all = g_strconcat(text, extra, NULL);
	g_assert_true(g_file_set_contents(conf, all, -1, &error));
	g_assert_no_error(error);
}

/* Returns: (transfer full): a launcher for `qsimd` with these paths, INFO logs, and
 * nothing of the developer's: no keyfile or token may leak in (HOME and XDG_CONFIG_HOME
 * are @home) */
GSubprocessLauncher *
daemon_test_launcher_new(GSubprocessFlags flags, const gchar *home, const gchar *db,
                         const gchar *run, const gchar *state, const gchar *images,
                         const gchar *configs)
{
	GSubprocessLauncher *l = g_subprocess_launcher_new(flags);

	g_subprocess_launcher_setenv(l, "QSIM_DB_PATH", db, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_RUN_DIR", run, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_STATE_DIR", state, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_VM_IMAGES_DIR", images, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_VM_CONFIG_DIR", configs, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_LOG_LEVEL", "INFO", TRUE);
	g_subprocess_launcher_setenv(l, "XDG_CONFIG_HOME", home, TRUE);
	g_subprocess_launcher_setenv(l, "HOME", home, TRUE);
	g_subprocess_launcher_unsetenv(l, "QSIM_API_TOKENS");
	g_subprocess_launcher_set_child_setup(l, qsim_test_die_with_parent, NULL, NULL);
	return l;
}

/* SIGTERM, then waits for the end; NULL is left alone */
void
daemon_test_stop(GSubprocess **proc)
{
	if (*proc == NULL)
		return;
	g_subprocess_send_signal(*proc, SIGTERM);
	g_subprocess_wait(*proc, NULL, NULL);
	g_clear_object(proc);
}

/* Runs `qsim-ctl --url @url @args` (its temporary files in @tmpdir unless NULL); returns
 * its exit status, with its output in @out/@err */
gint
daemon_test_ctl(const gchar *url, const gchar *tmpdir, const gchar *const *args, gchar **out,
                gchar **err)
{
	const gchar *root = g_getenv("QSIM_BUILD_ROOT");
	g_autofree gchar *exe =
	    g_build_filename(root != NULL ? root : BUILD_ROOT, "src", "cli", "qsim-ctl", NULL);
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(argv, exe);
	g_ptr_array_add(argv, "--url");
	g_ptr_array_add(argv, (gpointer)url);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_setenv(launcher, "LANG", "C.UTF-8", TRUE);
	if (tmpdir != NULL)
		g_subprocess_launcher_setenv(launcher, "TMPDIR", tmpdir, TRUE);
	g_subprocess_launcher_unsetenv(launcher, "QSIM_TOKEN");
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, out, err, &error));
	g_test_message("qsim-ctl %s: %s%s", args[0], *out, *err);
	g_assert_true(g_subprocess_get_if_exited(proc));
	return g_subprocess_get_exit_status(proc);
}

/* Returns: (transfer full) (nullable): the JSON reply; NULL when nothing answered or the
 * body is not JSON (@out_status is set whenever something answered) */
JsonNode *
daemon_test_http(SoupSession *session, const gchar *url, const gchar *method, const gchar *path,
                 const gchar *body, guint *out_status)
{
	g_autofree gchar *uri = g_strconcat(url, path, NULL);
	g_autoptr(SoupMessage) msg = soup_message_new(method, uri);
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();

	g_assert_nonnull(msg);
	if (body != NULL) {
		g_autoptr(GBytes) bytes = g_bytes_new(body, strlen(body));

		soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
	}
	reply = soup_session_send_and_read(session, msg, NULL, NULL);
	if (reply == NULL)
		return NULL;
	*out_status = soup_message_get_status(msg);
	if (g_bytes_get_size(reply) == 0 ||
	    !json_parser_load_from_data(parser, g_bytes_get_data(reply, NULL),
	                                (gssize)g_bytes_get_size(reply), NULL))
		return NULL;
	return json_node_copy(json_parser_get_root(parser));
}

/* Makes the private directory (named after @tmpl, short: QEMU's QMP socket path must fit
 * a sockaddr_un) with the guest linked (the image only with @link_image) and tiny.conf.
 * Returns: FALSE when the test was skipped (no tiny guest) */
gboolean
daemon_fixture_setup(DaemonFixture *f, const gchar *tmpl, gboolean link_image)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *configs = NULL;

	if (!daemon_test_have_guest())
		return FALSE;
	f->dir = g_dir_make_tmp(tmpl, &error);
	g_assert_no_error(error);
	f->images = g_build_filename(f->dir, "images", NULL);
	configs = g_build_filename(f->dir, "vmconf", NULL);
	g_assert_cmpint(g_mkdir(f->images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(configs, 0700), ==, 0);
	daemon_test_link_guest(f->images, link_image);
	daemon_test_write_conf(configs, "tiny", "");
	f->session = soup_session_new();
	return TRUE;
}

void
daemon_fixture_teardown(DaemonFixture *f)
{
	daemon_test_stop(&f->daemon);
	g_clear_object(&f->session);
	if (f->dir != NULL)
		qsim_test_rm_rf(f->dir);
	g_clear_pointer(&f->dir, g_free);
	g_clear_pointer(&f->images, g_free);
	g_clear_pointer(&f->url, g_free);
	g_clear_pointer(&f->log, g_free);
}

/* Returns: (transfer full): a launcher with the fixture's private paths */
GSubprocessLauncher *
daemon_fixture_launcher(DaemonFixture *f, GSubprocessFlags flags)
{
	g_autofree gchar *db = g_build_filename(f->dir, "db.sqlite", NULL);
	g_autofree gchar *run = g_build_filename(f->dir, "run", NULL);
	g_autofree gchar *state = g_build_filename(f->dir, "state", NULL);
	g_autofree gchar *configs = g_build_filename(f->dir, "vmconf", NULL);

	return daemon_test_launcher_new(flags, f->dir, db, run, state, f->images, configs);
}

/* Starts `qsimd all` from @launcher on a free port of 127.0.0.1 (f->url), agents polling
 * every 0.2 s, its output in f->log */
void
daemon_fixture_spawn_all(DaemonFixture *f, GSubprocessLauncher *launcher)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *port = NULL;
	const gchar *argv[] = {qsim_test_qsimd_path(), "all", NULL};
	guint16 p = qsim_test_free_port();

	port = g_strdup_printf("%u", p);
	g_free(f->url);
	f->url = g_strdup_printf("http://127.0.0.1:%u", p);
	g_subprocess_launcher_setenv(launcher, "QSIM_API_HOST", "127.0.0.1", TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_API_PORT", port, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_AGENT_POLL_INTERVAL", "0.2", TRUE);
	g_free(f->log);
	f->log = g_build_filename(f->dir, "qsimd.log", NULL);
	g_subprocess_launcher_set_stdout_file_path(launcher, f->log);
	g_subprocess_launcher_set_stderr_file_path(launcher, f->log);
	f->daemon = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
}

/* Polls GET /health until a 200 with JSON; fails the test when qsimd exits or past the
 * hang guard */
void
daemon_fixture_wait_healthy(DaemonFixture *f)
{
	gint64 deadline = g_get_monotonic_time() + HEALTHY_TIMEOUT_S * G_USEC_PER_SEC;

	for (;;) {
		guint status = 0;
		g_autoptr(JsonNode) node =
		    daemon_test_http(f->session, f->url, "GET", "/health", NULL, &status);

		if (node != NULL && status == 200)
			return;
		if (g_get_monotonic_time() > deadline ||
		    g_subprocess_get_identifier(f->daemon) == NULL)
			g_error("qsimd all did not come up; see %s", f->log);
		g_usleep(POLL_US);
	}
}
