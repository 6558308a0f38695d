#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "common/qsim-error.h"
#include "qsim-template-manifest.h"

#define GROUP "template"

void
qsim_template_manifest_free(QsimTemplateManifest *self)
{
	if (self == NULL)
		return;
	g_free(self->vm_name);
	g_free(self->config_hash);
	g_free(self->image_path);
	g_free(self->image_sha256);
	g_free(self->kernel_id);
	g_free(self->initrd_id);
	g_free(self->data_disk_id);
	g_free(self->qemu_binary_id);
	g_free(self->qemu_version);
	g_free(self->machine);
	g_free(self->accel);
	g_free(self->network);
	g_free(self);
}

static gboolean
stat_file(const gchar *path, guint64 *size, gint64 *mtime_us, GError **error)
{
	GStatBuf st;

	if (g_stat(path, &st) != 0) {
		gint saved = errno;
		g_set_error(error, QSIM_ERROR,
		            saved == ENOENT ? QSIM_ERROR_NOT_FOUND : QSIM_ERROR_IO,
		            "cannot stat %s: %s", path, g_strerror(saved));
		return FALSE;
	}
	*size = (guint64)st.st_size;
	*mtime_us = (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000;
	return TRUE;
}

static gchar *
file_id(const gchar *path, GError **error)
{
	guint64 size = 0;
	gint64 mtime_us = 0;

	if (path == NULL)
		return g_strdup("");
	if (!stat_file(path, &size, &mtime_us, error))
		return NULL;
	return g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GINT64_FORMAT, size, mtime_us);
}

/**
 * qsim_template_manifest_new_for_config:
 * @config: the VM's configuration
 * @qemu_binary: the QEMU binary a restore would run (a name is looked up in PATH)
 * @error: return location for a #GError
 *
 * Describes the current inputs of @config's template, cheaply: stat() only, no
 * checksum (image_sha256 stays %NULL) and no QEMU run (qemu_version stays %NULL).
 *
 * Returns: (transfer full): a new manifest, or %NULL when an input file is missing
 */
QsimTemplateManifest *
qsim_template_manifest_new_for_config(const QsimVmConfig *config, const gchar *qemu_binary,
                                      GError **error)
{
	g_autoptr(QsimTemplateManifest) self = g_new0(QsimTemplateManifest, 1);
	g_autofree gchar *qemu_path = NULL;
	g_autofree gchar *qemu_id = NULL;

	self->format = QSIM_TEMPLATE_MANIFEST_FORMAT;
	self->vm_name = g_strdup(config->name);
	self->config_hash = g_strdup(config->hash != NULL ? config->hash : "");
	self->image_path = g_strdup(config->image_path);
	self->machine = g_strdup(config->machine != NULL ? config->machine : "");
	/* the effective mode, not the .conf line: a changed default changes it too */
	self->network = g_strdup(qsim_vm_network_to_string(config->network));
	if (!stat_file(config->image_path, &self->image_size, &self->image_mtime_us, error))
		return NULL;
	self->kernel_id = file_id(config->kernel_path, error);
	if (self->kernel_id == NULL)
		return NULL;
	self->initrd_id = file_id(config->initrd_path, error);
	if (self->initrd_id == NULL)
		return NULL;
	self->data_disk_id = file_id(config->data_disk_path, error);
	if (self->data_disk_id == NULL)
		return NULL;
	qemu_path = g_path_is_absolute(qemu_binary) ? g_strdup(qemu_binary)
	                                            : g_find_program_in_path(qemu_binary);
	if (qemu_path == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "QEMU binary %s not found",
		            qemu_binary);
		return NULL;
	}
	qemu_id = file_id(qemu_path, error);
	if (qemu_id == NULL)
		return NULL;
	self->qemu_binary_id = g_strdup_printf("%s:%s", qemu_path, qemu_id);
	self->created_unix = g_get_real_time() / G_USEC_PER_SEC;
	return g_steal_pointer(&self);
}

/**
 * qsim_template_manifest_file_sha256:
 * @path: a file
 * @error: return location for a #GError
 *
 * Reads the whole file: call it from a worker thread for big images.
 *
 * Returns: (transfer full): the lowercase hex sha256 of the file's bytes
 */
gchar *
qsim_template_manifest_file_sha256(const gchar *path, GError **error)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GMappedFile) map = g_mapped_file_new(path, FALSE, error);

	if (map == NULL) {
		qsim_error_convert(error);
		return NULL;
	}
	if (g_mapped_file_get_length(map) > 0)
		g_checksum_update(sum, (const guchar *)g_mapped_file_get_contents(map),
		                  (gssize)g_mapped_file_get_length(map));
	return g_strdup(g_checksum_get_string(sum));
}

static gchar *
get_string(GKeyFile *kf, const gchar *key, gboolean nullable, GError **error)
{
	g_autofree gchar *value = g_key_file_get_string(kf, GROUP, key, error);

	if (value == NULL)
		return NULL;
	if (nullable && value[0] == '\0')
		return NULL;
	return g_steal_pointer(&value);
}

/**
 * qsim_template_manifest_load:
 * @path: a manifest written by qsim_template_manifest_save()
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the manifest, or %NULL (missing file or a missing key)
 */
QsimTemplateManifest *
qsim_template_manifest_load(const gchar *path, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(QsimTemplateManifest) self = g_new0(QsimTemplateManifest, 1);
	g_autoptr(GError) local = NULL;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
		qsim_error_convert(&local);
		g_propagate_prefixed_error(error, g_steal_pointer(&local),
		                           "cannot read template manifest %s: ", path);
		return NULL;
	}
	if ((self->vm_name = get_string(kf, "vm_name", FALSE, &local)) == NULL ||
	    (self->config_hash = get_string(kf, "config_hash", FALSE, &local)) == NULL ||
	    (self->image_path = get_string(kf, "image_path", FALSE, &local)) == NULL ||
	    (self->kernel_id = get_string(kf, "kernel_id", FALSE, &local)) == NULL ||
	    (self->initrd_id = get_string(kf, "initrd_id", FALSE, &local)) == NULL ||
	    (self->qemu_binary_id = get_string(kf, "qemu_binary_id", FALSE, &local)) == NULL ||
	    (self->machine = get_string(kf, "machine", FALSE, &local)) == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "bad template manifest %s: %s",
		            path, local->message);
		return NULL;
	}
	/* a template from before qsim recorded it: unknown, so stale under either */
	self->accel = g_key_file_get_string(kf, GROUP, "accel", NULL);
	if (self->accel != NULL && g_strcmp0(self->accel, "kvm") != 0 &&
	    g_strcmp0(self->accel, "tcg") != 0)
		g_clear_pointer(&self->accel, g_free);
	/* templates of format 1 had no key: load them, so qsim_template_check() can say why
	 * they are stale */
	self->format = g_key_file_has_key(kf, GROUP, "format", NULL)
	                   ? (guint)g_key_file_get_uint64(kf, GROUP, "format", NULL)
	                   : 1;
	/* NULL when not recorded: matches no current mode */
	self->network = get_string(kf, "network", TRUE, NULL);
	/* no key: made before DATA_DISK existed, so without one */
	self->data_disk_id = g_key_file_get_string(kf, GROUP, "data_disk_id", NULL);
	self->image_sha256 = get_string(kf, "image_sha256", TRUE, NULL);
	self->qemu_version = get_string(kf, "qemu_version", TRUE, NULL);
	self->image_size = g_key_file_get_uint64(kf, GROUP, "image_size", &local);
	if (local == NULL)
		self->image_mtime_us = g_key_file_get_int64(kf, GROUP, "image_mtime_us", &local);
	if (local == NULL)
		self->created_unix = g_key_file_get_int64(kf, GROUP, "created_unix", &local);
	if (local == NULL)
		self->state_size = g_key_file_get_uint64(kf, GROUP, "state_size", &local);
	if (local == NULL)
		self->disk_size = g_key_file_get_uint64(kf, GROUP, "disk_size", &local);
	if (local == NULL && self->format >= 2)
		self->ram_size = g_key_file_get_uint64(kf, GROUP, "ram_size", &local);
	if (local != NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "bad template manifest %s: %s",
		            path, local->message);
		return NULL;
	}
	return g_steal_pointer(&self);
}

/**
 * qsim_template_manifest_save:
 * @self: a manifest
 * @path: where to write it (atomically replaced)
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
qsim_template_manifest_save(const QsimTemplateManifest *self, const gchar *path, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree gchar *data = NULL;
	gsize len = 0;

	g_key_file_set_uint64(kf, GROUP, "format", self->format);
	g_key_file_set_string(kf, GROUP, "vm_name", self->vm_name);
	g_key_file_set_string(kf, GROUP, "config_hash", self->config_hash);
	g_key_file_set_string(kf, GROUP, "image_path", self->image_path);
	g_key_file_set_string(kf, GROUP, "image_sha256",
	                      self->image_sha256 != NULL ? self->image_sha256 : "");
	g_key_file_set_uint64(kf, GROUP, "image_size", self->image_size);
	g_key_file_set_int64(kf, GROUP, "image_mtime_us", self->image_mtime_us);
	g_key_file_set_string(kf, GROUP, "kernel_id", self->kernel_id);
	g_key_file_set_string(kf, GROUP, "initrd_id", self->initrd_id);
	g_key_file_set_string(kf, GROUP, "data_disk_id",
	                      self->data_disk_id != NULL ? self->data_disk_id : "");
	g_key_file_set_string(kf, GROUP, "qemu_binary_id", self->qemu_binary_id);
	g_key_file_set_string(kf, GROUP, "qemu_version",
	                      self->qemu_version != NULL ? self->qemu_version : "");
	g_key_file_set_string(kf, GROUP, "machine", self->machine);
	if (self->accel != NULL)
		g_key_file_set_string(kf, GROUP, "accel", self->accel);
	if (self->network != NULL)
		g_key_file_set_string(kf, GROUP, "network", self->network);
	g_key_file_set_int64(kf, GROUP, "created_unix", self->created_unix);
	g_key_file_set_uint64(kf, GROUP, "state_size", self->state_size);
	g_key_file_set_uint64(kf, GROUP, "disk_size", self->disk_size);
	g_key_file_set_uint64(kf, GROUP, "ram_size", self->ram_size);
	data = g_key_file_to_data(kf, &len, NULL);
	if (!g_file_set_contents(path, data, (gssize)len, error)) {
		qsim_error_convert(error);
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_template_manifest_matches:
 * @recorded: the template's manifest
 * @current: from qsim_template_manifest_new_for_config() now
 * @reason: (out) (optional) (transfer full): which input changed, when not matching
 *
 * Returns: %TRUE when every input is unchanged
 */
gboolean
qsim_template_manifest_matches(const QsimTemplateManifest *recorded,
                               const QsimTemplateManifest *current, gchar **reason)
{
	const gchar *why = NULL;

	if (recorded->format != current->format)
		why = "the template was built by another qsim version (format changed)";
	else if (g_strcmp0(recorded->vm_name, current->vm_name) != 0)
		why = "the template belongs to another VM";
	else if (g_strcmp0(recorded->config_hash, current->config_hash) != 0)
		why = "the VM config changed";
	else if (g_strcmp0(recorded->image_path, current->image_path) != 0)
		why = "the VM uses another image";
	else if (recorded->image_size != current->image_size ||
	         recorded->image_mtime_us != current->image_mtime_us)
		why = "the base image changed (size or mtime)";
	else if (g_strcmp0(recorded->kernel_id, current->kernel_id) != 0)
		why = "the kernel changed";
	else if (g_strcmp0(recorded->initrd_id, current->initrd_id) != 0)
		why = "the initrd changed";
	else if (g_strcmp0(recorded->data_disk_id != NULL ? recorded->data_disk_id : "",
	                   current->data_disk_id != NULL ? current->data_disk_id : "") != 0)
		why = "the DATA_DISK changed";
	else if (g_strcmp0(recorded->qemu_binary_id, current->qemu_binary_id) != 0)
		why = "the QEMU binary changed";
	else if (g_strcmp0(recorded->machine, current->machine) != 0)
		why = "the machine type changed";
	if (why == NULL && g_strcmp0(recorded->network, current->network) != 0) {
		if (reason != NULL)
			*reason = g_strdup_printf(
			    "the template was made with NETWORK=%s, and the VM now uses NETWORK=%s",
			    recorded->network != NULL ? recorded->network : "(unrecorded)",
			    current->network);
		return FALSE;
	}
	if (why == NULL && current->accel != NULL &&
	    g_strcmp0(recorded->accel, current->accel) != 0) {
		if (reason != NULL)
			*reason = g_strdup_printf(
			    "the template was made under %s, and this host now runs the VM under "
			    "%s",
			    recorded->accel != NULL ? recorded->accel : "an unrecorded accelerator",
			    current->accel);
		return FALSE;
	}
	if (why != NULL && reason != NULL)
		*reason = g_strdup(why);
	return why == NULL;
}
