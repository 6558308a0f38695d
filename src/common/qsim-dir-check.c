#define G_LOG_DOMAIN "qsim"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/qsim-dir-check.h"
#include "common/qsim-error.h"

/* "/a/b//" -> "/a/b": a trailing slash would make lstat() follow a symlink */
static gchar *
dir_check_strip(const gchar *path)
{
	gchar *p = g_strdup(path);
	gsize len = strlen(p);

	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	return p;
}

/* The checks on an lstat() result; @allow_root also accepts a directory root owns. */
static gboolean
dir_check_stat(const gchar *path, const struct stat *st, gboolean allow_root, GError **error)
{
	uid_t me = geteuid();

	if (S_ISLNK(st->st_mode)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s is a symbolic link (use the real directory)", path);
		return FALSE;
	}
	if (!S_ISDIR(st->st_mode)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s is not a directory", path);
		return FALSE;
	}
	if (st->st_uid != me && !(allow_root && st->st_uid == 0)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s is owned by uid %u, not by us (uid %u): remove it or choose "
		            "another directory",
		            path, (guint)st->st_uid, (guint)me);
		return FALSE;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s is writable by %s (mode %04o): chmod go-w it or choose another "
		            "directory",
		            path, (st->st_mode & S_IWOTH) != 0 ? "all users" : "its group",
		            (guint)(st->st_mode & 07777));
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_dir_check_private:
 * @path: a directory qsimd keeps private files in (RUN_DIR, STATE_DIR)
 * @create: create @path with mode 0700 when it is missing
 * @error: return location for a #GError
 *
 * Checks that @path is a real directory (not a symbolic link, by lstat()),
 * owned by the effective uid, and not writable by its group or by others: a
 * directory another local user created first, or can write into, would give
 * that user our overlays, sockets and pidfiles. Missing parents are created
 * with mode 0700; the last component is created with mkdir() and then checked,
 * so a symbolic link planted in between is caught rather than followed.
 *
 * When @create is %FALSE a missing @path passes: there is nothing to trust yet.
 *
 * Returns: %TRUE when @path is private (or missing and not to be created)
 */
gboolean
qsim_dir_check_private(const gchar *path, gboolean create, GError **error)
{
	g_autofree gchar *p = NULL;
	g_autofree gchar *parent = NULL;
	struct stat st;

	g_return_val_if_fail(path != NULL, FALSE);

	p = dir_check_strip(path);
	if (lstat(p, &st) == 0)
		return dir_check_stat(p, &st, FALSE, error);
	if (errno != ENOENT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "%s: %s", p, g_strerror(errno));
		return FALSE;
	}
	if (!create)
		return TRUE;
	parent = g_path_get_dirname(p);
	if (g_mkdir_with_parents(parent, 0700) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s", parent,
		            g_strerror(errno));
		return FALSE;
	}
	/* EEXIST: someone was faster; the lstat() below judges what they made */
	if (mkdir(p, 0700) != 0 && errno != EEXIST) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s", p,
		            g_strerror(errno));
		return FALSE;
	}
	if (lstat(p, &st) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "%s: %s", p, g_strerror(errno));
		return FALSE;
	}
	return dir_check_stat(p, &st, FALSE, error);
}

/**
 * qsim_dir_check_db_path:
 * @db_path: the DB_PATH setting
 * @error: return location for a #GError
 *
 * Checks the directory that holds the database (and SQLite's journal and WAL
 * files next to it): not a symbolic link, owned by us or by root, and not
 * writable by its group or by others. A world-writable directory such as /tmp
 * is refused even with its sticky bit: another user could create the journal
 * or WAL file first. `:memory:` has no directory and passes; a missing
 * directory passes too (opening the database then fails with its own message).
 *
 * Returns: %TRUE when the database directory is safe
 */
gboolean
qsim_dir_check_db_path(const gchar *db_path, GError **error)
{
	g_autofree gchar *dir = NULL;
	struct stat st;

	if (db_path == NULL || db_path[0] == '\0' || g_strcmp0(db_path, ":memory:") == 0)
		return TRUE;
	dir = g_path_get_dirname(db_path);
	if (lstat(dir, &st) != 0) {
		if (errno == ENOENT)
			return TRUE;
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "%s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	return dir_check_stat(dir, &st, TRUE, error);
}
