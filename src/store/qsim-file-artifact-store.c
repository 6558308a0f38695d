#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "store/qsim-file-artifact-store.h"

struct _QsimFileArtifactStore {
	GObject parent_instance;
	gchar *root; /* immutable: the object is shared between threads */
};

static void qsim_file_artifact_store_iface_init(QsimArtifactStoreInterface *iface);

G_DEFINE_TYPE_WITH_CODE(QsimFileArtifactStore, qsim_file_artifact_store, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(QSIM_TYPE_ARTIFACT_STORE,
                                              qsim_file_artifact_store_iface_init))

static gboolean
set_errno_error(GError **error, gint err, const gchar *what, const gchar *path)
{
	g_set_error(error, QSIM_ERROR, err == ENOENT ? QSIM_ERROR_NOT_FOUND : QSIM_ERROR_IO,
	            "cannot %s %s: %s", what, path, g_strerror(err));
	return FALSE;
}

/*
 * Opens the directory of @name's parent under root/uuid, creating it when
 * @create, one component at a time without following a symlink: nothing
 * planted in the tree can redirect a write elsewhere.
 */
static gint
open_parent(QsimFileArtifactStore *self, const gchar *uuid, const gchar *name, gboolean create,
            const gchar **out_base, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(name, "/", -1);
	guint n = g_strv_length(parts);
	g_autofree gchar *first = g_build_filename(self->root, uuid, NULL);
	gint fd;

	if (create && g_mkdir_with_parents(self->root, 0700) != 0)
		return set_errno_error(error, errno, "create", self->root), -1;
	if (create && mkdir(first, 0700) != 0 && errno != EEXIST)
		return set_errno_error(error, errno, "create", first), -1;
	fd = open(first, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return set_errno_error(error, errno, "open", first), -1;
	for (guint i = 0; i + 1 < n; i++) {
		gint next;

		if (create && mkdirat(fd, parts[i], 0700) != 0 && errno != EEXIST) {
			set_errno_error(error, errno, "create a directory for", name);
			close(fd);
			return -1;
		}
		next = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return set_errno_error(error, errno, "open the directory of", name), -1;
		fd = next;
	}
	*out_base = strrchr(name, '/') != NULL ? strrchr(name, '/') + 1 : name;
	return fd;
}

static GOutputStream *
file_create(QsimArtifactStore *store, const gchar *uuid, const gchar *name, GError **error)
{
	QsimFileArtifactStore *self = QSIM_FILE_ARTIFACT_STORE(store);
	const gchar *base = NULL;
	gint dir = open_parent(self, uuid, name, TRUE, &base, error);
	gint fd;

	if (dir < 0)
		return NULL;
	fd = openat(dir, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	close(dir);
	if (fd < 0) {
		set_errno_error(error, errno, "create artifact", name);
		return NULL;
	}
	return g_unix_output_stream_new(fd, TRUE);
}

static GInputStream *
file_open(QsimArtifactStore *store, const gchar *uuid, const gchar *name, guint64 offset,
          guint64 *out_size, GError **error)
{
	QsimFileArtifactStore *self = QSIM_FILE_ARTIFACT_STORE(store);
	const gchar *base = NULL;
	gint dir = open_parent(self, uuid, name, FALSE, &base, error);
	struct stat st;
	gint fd;

	if (dir < 0)
		return NULL;
	fd = openat(dir, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dir);
	if (fd < 0) {
		set_errno_error(error, errno, "open artifact", name);
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
		            "artifact %s has no stored bytes", name);
		return NULL;
	}
	if (offset > 0 && lseek(fd, (off_t)MIN(offset, (guint64)G_MAXINT64), SEEK_SET) < 0) {
		set_errno_error(error, errno, "seek in artifact", name);
		close(fd);
		return NULL;
	}
	*out_size = (guint64)st.st_size;
	return g_unix_input_stream_new(fd, TRUE);
}

static gboolean
file_remove(QsimArtifactStore *store, const gchar *uuid, const gchar *name, GError **error)
{
	QsimFileArtifactStore *self = QSIM_FILE_ARTIFACT_STORE(store);
	const gchar *base = NULL;
	g_autoptr(GError) local = NULL;
	gint dir = open_parent(self, uuid, name, FALSE, &base, &local);
	gint rc;

	if (dir < 0) {
		if (g_error_matches(local, QSIM_ERROR, QSIM_ERROR_NOT_FOUND))
			return TRUE;
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	rc = unlinkat(dir, base, 0);
	close(dir);
	if (rc != 0 && errno != ENOENT)
		return set_errno_error(error, errno, "remove artifact", name);
	return TRUE;
}

/* rm -r of what is under @fd, never following a symlink; closes @fd */
static gboolean
remove_tree(gint fd, const gchar *path, GError **error)
{
	DIR *d = fdopendir(fd);
	struct dirent *ent;
	gboolean ok = TRUE;

	if (d == NULL) {
		close(fd);
		return set_errno_error(error, errno, "read", path);
	}
	while (ok && (ent = readdir(d)) != NULL) {
		if (g_strcmp0(ent->d_name, ".") == 0 || g_strcmp0(ent->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), ent->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno == EISDIR || errno == EPERM) {
			gint sub = openat(dirfd(d), ent->d_name,
			                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || !remove_tree(sub, path, error) ||
			    unlinkat(dirfd(d), ent->d_name, AT_REMOVEDIR) != 0) {
				if (error != NULL && *error == NULL)
					set_errno_error(error, errno, "remove part of", path);
				ok = FALSE;
			}
			continue;
		}
		set_errno_error(error, errno, "remove part of", path);
		ok = FALSE;
	}
	closedir(d);
	return ok;
}

static gboolean
file_delete_request(QsimArtifactStore *store, const gchar *uuid, GError **error)
{
	QsimFileArtifactStore *self = QSIM_FILE_ARTIFACT_STORE(store);
	g_autofree gchar *dir = g_build_filename(self->root, uuid, NULL);
	gint fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return TRUE;
		return set_errno_error(error, errno, "open", dir);
	}
	if (!remove_tree(fd, dir, error))
		return FALSE;
	if (rmdir(dir) != 0 && errno != ENOENT)
		return set_errno_error(error, errno, "remove", dir);
	return TRUE;
}

/* Adds the names of what is not a directory under @fd (relative to @prefix) to
 * @out, at most @max in all, never following a symlink; closes @fd */
static void
list_tree(gint fd, const gchar *prefix, guint max, GPtrArray *out)
{
	DIR *d = fdopendir(fd);
	struct dirent *ent;

	if (d == NULL) {
		close(fd);
		return;
	}
	while (out->len < max && (ent = readdir(d)) != NULL) {
		g_autofree gchar *rel = NULL;
		struct stat st;

		if (g_strcmp0(ent->d_name, ".") == 0 || g_strcmp0(ent->d_name, "..") == 0 ||
		    fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		rel = prefix != NULL ? g_strconcat(prefix, "/", ent->d_name, NULL)
		                     : g_strdup(ent->d_name);
		if (S_ISDIR(st.st_mode)) {
			gint sub = openat(dirfd(d), ent->d_name,
			                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				list_tree(sub, rel, max, out);
			continue;
		}
		g_ptr_array_add(out, g_steal_pointer(&rel));
	}
	closedir(d);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

/**
 * qsim_file_artifact_store_list_requests:
 * @older_than: when not 0, only directories last changed before this Unix time (s)
 *
 * Returns: (transfer full) (element-type utf8): the UUID-named request
 *   directories under the root, sorted (symlinks and other names are not ours)
 */
GPtrArray *
qsim_file_artifact_store_list_requests(QsimFileArtifactStore *self, gint64 older_than)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	DIR *d = opendir(self->root);
	struct dirent *ent;

	while (d != NULL && (ent = readdir(d)) != NULL) {
		struct stat st;

		if (!g_uuid_string_is_valid(ent->d_name) ||
		    fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISDIR(st.st_mode) || (older_than != 0 && st.st_mtime >= older_than))
			continue;
		g_ptr_array_add(out, g_strdup(ent->d_name));
	}
	if (d != NULL)
		closedir(d);
	g_ptr_array_sort(out, compare_names);
	return out;
}

/**
 * qsim_file_artifact_store_list_files:
 * @max: list at most this many
 *
 * Returns: (transfer full) (element-type utf8): the names (as given to
 *   qsim_artifact_store_create()) of what is stored for @uuid, directories
 *   excluded; empty when there is nothing
 */
GPtrArray *
qsim_file_artifact_store_list_files(QsimFileArtifactStore *self, const gchar *uuid, guint max)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *dir = g_build_filename(self->root, uuid, NULL);
	gint fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0)
		list_tree(fd, NULL, max, out);
	return out;
}

static void
qsim_file_artifact_store_iface_init(QsimArtifactStoreInterface *iface)
{
	iface->create = file_create;
	iface->open = file_open;
	iface->remove = file_remove;
	iface->delete_request = file_delete_request;
}

static void
qsim_file_artifact_store_finalize(GObject *object)
{
	g_free(QSIM_FILE_ARTIFACT_STORE(object)->root);
	G_OBJECT_CLASS(qsim_file_artifact_store_parent_class)->finalize(object);
}

static void
qsim_file_artifact_store_class_init(QsimFileArtifactStoreClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_file_artifact_store_finalize;
}

static void
qsim_file_artifact_store_init(QsimFileArtifactStore *self)
{
}

QsimArtifactStore *
qsim_file_artifact_store_new(const gchar *root)
{
	QsimFileArtifactStore *self;

	g_return_val_if_fail(root != NULL && root[0] != '\0', NULL);
	self = g_object_new(QSIM_TYPE_FILE_ARTIFACT_STORE, NULL);
	self->root = g_strdup(root);
	return QSIM_ARTIFACT_STORE(self);
}

QsimArtifactStore *
qsim_file_artifact_store_new_for_state_dir(const gchar *state_dir)
{
	g_autofree gchar *root = g_build_filename(state_dir, "artifacts", NULL);

	return qsim_file_artifact_store_new(root);
}

QsimArtifactStore *
qsim_artifact_store_new_for_config(QsimConfig *config)
{
	return qsim_file_artifact_store_new_for_state_dir(qsim_config_get_state_dir(config));
}
