/*
 * qsim_dir_check_private() and qsim_dir_check_db_path(): the start-up checks that keep
 * RUN_DIR, STATE_DIR and the database's directory out of other local users' hands.
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "common/qsim-dir-check.h"
#include "common/qsim-error.h"
#include "test-util.h"

/* an account that is not us: nobody (65534) unless we are nobody */
#define OTHER_UID (geteuid() == 65534 ? 65533 : 65534)

typedef struct {
	gchar *dir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->dir = qsim_test_tmpdir_new();
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
}

static guint
mode_of(const gchar *path)
{
	struct stat st;

	g_assert_cmpint(lstat(path, &st), ==, 0);
	return st.st_mode & 07777;
}

static void
assert_refused(const gchar *path, gboolean create, const gchar *what)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_dir_check_private(path, create, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_test_message("%s", error->message);
	/* one line that names the directory and the problem */
	g_assert_true(g_str_has_prefix(error->message, path));
	g_assert_nonnull(strstr(error->message, what));
	g_assert_null(strchr(error->message, '\n'));
}

static void
test_create(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *run = g_build_filename(f->dir, "a", "b", "run", NULL);
	g_autofree gchar *parent = g_path_get_dirname(run);
	g_autofree gchar *slash = g_strconcat(run, "/", NULL);
	mode_t old = umask(0);

	/* even with no umask: mode 0700, parents included */
	g_assert_true(qsim_dir_check_private(run, TRUE, &error));
	umask(old);
	g_assert_no_error(error);
	g_assert_true(g_file_test(run, G_FILE_TEST_IS_DIR));
	g_assert_cmpuint(mode_of(run), ==, 0700);
	g_assert_cmpuint(mode_of(parent), ==, 0700);
	/* again: it exists and is ours */
	g_assert_true(qsim_dir_check_private(run, TRUE, &error));
	g_assert_true(qsim_dir_check_private(slash, FALSE, &error));
	g_assert_no_error(error);
}

static void
test_missing_no_create(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = g_build_filename(f->dir, "state", NULL);

	g_assert_true(qsim_dir_check_private(state, FALSE, &error));
	g_assert_no_error(error);
	g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS));
}

static void
test_writable(Fixture *f, gconstpointer data)
{
	g_autofree gchar *world = g_build_filename(f->dir, "world", NULL);
	g_autofree gchar *group = g_build_filename(f->dir, "group", NULL);
	g_autofree gchar *sticky = g_build_filename(f->dir, "sticky", NULL);

	g_assert_cmpint(g_mkdir(world, 0700), ==, 0);
	g_assert_cmpint(chmod(world, 0777), ==, 0);
	g_assert_cmpint(g_mkdir(group, 0700), ==, 0);
	g_assert_cmpint(chmod(group, 0770), ==, 0);
	g_assert_cmpint(g_mkdir(sticky, 0700), ==, 0);
	g_assert_cmpint(chmod(sticky, 01777), ==, 0);
	assert_refused(world, TRUE, "writable by all users (mode 0777)");
	assert_refused(group, FALSE, "writable by its group (mode 0770)");
	assert_refused(sticky, TRUE, "writable by all users (mode 1777)");
}

static void
test_symlink(Fixture *f, gconstpointer data)
{
	g_autofree gchar *real = g_build_filename(f->dir, "real", NULL);
	g_autofree gchar *link = g_build_filename(f->dir, "link", NULL);
	g_autofree gchar *dangling = g_build_filename(f->dir, "dangling", NULL);
	g_autofree gchar *target = g_build_filename(f->dir, "target", NULL);

	/* even to a good directory of ours: the link can be changed later */
	g_assert_cmpint(g_mkdir(real, 0700), ==, 0);
	g_assert_cmpint(symlink(real, link), ==, 0);
	assert_refused(link, TRUE, "is a symbolic link");
	/* planted before we create the directory: caught, not followed */
	g_assert_cmpint(symlink(target, dangling), ==, 0);
	assert_refused(dangling, TRUE, "is a symbolic link");
	g_assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
}

static void
test_not_dir(Fixture *f, gconstpointer data)
{
	g_autofree gchar *file = qsim_test_write(f->dir, "file", "x");

	assert_refused(file, TRUE, "is not a directory");
}

/* /tmp/qsim-<uid> created first by another user */
static void
test_other_owner(Fixture *f, gconstpointer data)
{
	g_autofree gchar *run = g_build_filename(f->dir, "qsim-run", NULL);
	g_autofree gchar *what = NULL;

	if (geteuid() != 0) {
		g_test_skip("needs root to give a directory to another user");
		return;
	}
	g_assert_cmpint(g_mkdir(run, 0700), ==, 0);
	g_assert_cmpint(chown(run, OTHER_UID, OTHER_UID), ==, 0);
	what = g_strdup_printf("is owned by uid %u, not by us (uid %u)", (guint)OTHER_UID,
	                       (guint)geteuid());
	assert_refused(run, TRUE, what);
}

static void
test_db_path(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *ok = g_build_filename(f->dir, "qsim.db", NULL);
	g_autofree gchar *world = g_build_filename(f->dir, "world", NULL);
	g_autofree gchar *world_db = g_build_filename(world, "qsim.db", NULL);
	g_autofree gchar *link = g_build_filename(f->dir, "link", NULL);
	g_autofree gchar *link_db = g_build_filename(link, "qsim.db", NULL);
	g_autofree gchar *missing_db = g_build_filename(f->dir, "nope", "qsim.db", NULL);
	g_autofree gchar *want = NULL;

	g_assert_true(qsim_dir_check_db_path(":memory:", &error));
	g_assert_true(qsim_dir_check_db_path(ok, &error));
	g_assert_true(qsim_dir_check_db_path(missing_db, &error));
	g_assert_no_error(error);

	/* a sticky /tmp is refused too: another user could create the journal first */
	g_assert_cmpint(g_mkdir(world, 0700), ==, 0);
	g_assert_cmpint(chmod(world, 01777), ==, 0);
	g_assert_false(qsim_dir_check_db_path(world_db, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	want = g_strdup_printf("%s is writable by all users (mode 1777): chmod go-w it or "
	                       "choose another directory",
	                       world);
	g_assert_cmpstr(error->message, ==, want);
	g_clear_error(&error);

	g_assert_cmpint(symlink(f->dir, link), ==, 0);
	g_assert_false(qsim_dir_check_db_path(link_db, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "is a symbolic link"));
	g_clear_error(&error);

	if (geteuid() != 0) {
		/* unprivileged: a root-owned, non-writable directory is fine (e.g. /) */
		g_assert_true(qsim_dir_check_db_path("/qsim.db", &error));
		g_assert_no_error(error);
		return;
	}
	/* root: a directory another user owns is refused */
	g_assert_cmpint(chmod(world, 0755), ==, 0);
	g_assert_cmpint(chown(world, OTHER_UID, OTHER_UID), ==, 0);
	g_assert_false(qsim_dir_check_db_path(world_db, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "is owned by uid"));
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/common/dir-check/create", test_create);
	ADD("/qsim/common/dir-check/missing-no-create", test_missing_no_create);
	ADD("/qsim/common/dir-check/writable", test_writable);
	ADD("/qsim/common/dir-check/symlink", test_symlink);
	ADD("/qsim/common/dir-check/not-dir", test_not_dir);
	ADD("/qsim/common/dir-check/other-owner", test_other_owner);
	ADD("/qsim/common/dir-check/db-path", test_db_path);
	return g_test_run();
}
