#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>

#include "test-util.h"

/* Returns: (transfer full): a fresh private directory for one test */
gchar *
qsim_test_tmpdir_new(void)
{
	g_autoptr(GError) error = NULL;
	gchar *dir = g_dir_make_tmp("qsim-test-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

/* removes @path and everything below it; symlinks are not followed */
void
qsim_test_rm_rf(const gchar *path)
{
	g_autoptr(GDir) d = NULL;
	const gchar *fn;

	if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		d = g_dir_open(path, 0, NULL);
		while (d != NULL && (fn = g_dir_read_name(d)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, fn, NULL);
			qsim_test_rm_rf(child);
		}
		g_rmdir(path);
		return;
	}
	g_unlink(path);
}

/* Returns: (transfer full): the path of @dir/@name after writing @content, creating parents */
gchar *
qsim_test_write(const gchar *dir, const gchar *name, const gchar *content)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	g_autofree gchar *parent = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	g_file_set_contents(path, content, -1, &error);
	g_assert_no_error(error);
	return g_steal_pointer(&path);
}

/* Returns: (transfer full): the absolute path of tests/data/@subdir/@name */
gchar *
qsim_test_fixture(const gchar *subdir, const gchar *name)
{
	g_autofree gchar *p = g_test_build_filename(G_TEST_DIST, "data", subdir, name, NULL);
	return g_canonicalize_filename(p, NULL);
}

/* Returns: a TCP port on 127.0.0.1 that was free a moment ago */
guint16
qsim_test_free_port(void)
{
	g_autoptr(GSocketListener) listener = g_socket_listener_new();
	g_autoptr(GError) error = NULL;
	guint16 port = g_socket_listener_add_any_inet_port(listener, NULL, &error);

	g_assert_no_error(error);
	g_socket_listener_close(listener);
	return port;
}

/* Returns: (transfer none): the qsimd of this build ($QSIM_BUILD_ROOT, else BUILD_ROOT) */
const gchar *
qsim_test_qsimd_path(void)
{
	static gchar *path;

	if (path == NULL) {
		const gchar *root = g_getenv("QSIM_BUILD_ROOT");

		path = g_build_filename(root != NULL ? root : BUILD_ROOT, "src", "daemon", "qsimd",
		                        NULL);
	}
	return path;
}

/* A GSpawnChildSetupFunc: a failed assertion aborts without teardown, so a daemon the
 * test started must not outlive it */
void
qsim_test_die_with_parent(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}
