#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/qsim-error.h"
#include "qsim-template-private.h"

G_DEFINE_TYPE(QsimTemplate, qsim_template, G_TYPE_OBJECT)

const gchar *
qsim_template_state_to_string(QsimTemplateState state)
{
	switch (state) {
	case QSIM_TEMPLATE_STATE_NONE:
		return "none";
	case QSIM_TEMPLATE_STATE_BUILDING:
		return "building";
	case QSIM_TEMPLATE_STATE_READY:
		return "ready";
	case QSIM_TEMPLATE_STATE_STALE:
		return "stale";
	}
	return "unknown";
}

/* Removes a template directory: it only ever holds plain files. */
gboolean
qsim_template_remove_flat_dir(const gchar *path, GError **error)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	if (dir == NULL)
		return TRUE;
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *file = g_build_filename(path, name, NULL);

		if (g_unlink(file) != 0 && errno != ENOENT) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s", file,
			            g_strerror(errno));
			return FALSE;
		}
	}
	if (g_rmdir(path) != 0 && errno != ENOENT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s", path,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* The directory of the current version, resolved once so that a caller uses the files
 * of one build even while another build switches the symlink. A real directory is a
 * template of format 1, which had no versions. */
gchar *
qsim_template_resolve_version(QsimTemplate *self)
{
	g_autofree gchar *target = g_file_read_link(self->dir, NULL);

	if (target != NULL)
		return g_path_is_absolute(target) ? g_steal_pointer(&target)
		                                  : g_build_filename(self->root, target, NULL);
	if (g_file_test(self->dir, G_FILE_TEST_IS_DIR))
		return g_strdup(self->dir);
	return NULL;
}

/* Removes every version except @keep_a and @keep_b (either may be %NULL). */
void
qsim_template_remove_versions(QsimTemplate *self, const gchar *keep_a, const gchar *keep_b)
{
	g_autoptr(GDir) dir = g_dir_open(self->versions, 0, NULL);
	const gchar *name;

	if (dir == NULL)
		return;
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(self->versions, name, NULL);
		g_autoptr(GError) error = NULL;

		if (g_strcmp0(path, keep_a) == 0 || g_strcmp0(path, keep_b) == 0)
			continue;
		if (!qsim_template_remove_flat_dir(path, &error))
			g_warning("%s: %s", self->vm_name, error->message);
	}
	g_rmdir(self->versions); /* fails, rightly, while a version is kept */
}

/**
 * qsim_template_get_dir:
 * @self: a #QsimTemplate
 *
 * Returns: (transfer none): STATE_DIR/templates/<vm_name>
 */
const gchar *
qsim_template_get_dir(QsimTemplate *self)
{
	return self->dir;
}

/**
 * qsim_template_get_state_path:
 * @self: a #QsimTemplate
 *
 * Returns: (transfer none): the saved RAM and device state
 */
const gchar *
qsim_template_get_state_path(QsimTemplate *self)
{
	return self->state_path;
}

/**
 * qsim_template_get_disk_path:
 * @self: a #QsimTemplate
 *
 * Returns: (transfer none): the disk at save time, a qcow2 overlay of the base image
 */
const gchar *
qsim_template_get_disk_path(QsimTemplate *self)
{
	return self->disk_path;
}

/**
 * qsim_template_load_manifest:
 * @self: a #QsimTemplate
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the manifest of the current template, or %NULL
 */
QsimTemplateManifest *
qsim_template_load_manifest(QsimTemplate *self, GError **error)
{
	return qsim_template_manifest_load(self->manifest_path, error);
}

/**
 * qsim_template_get_size_bytes:
 * @self: a #QsimTemplate
 *
 * Returns: the bytes the template takes on disk (state, disk and the RAM file's
 *   allocated blocks: it is sparse), 0 when none
 */
guint64
qsim_template_get_size_bytes(QsimTemplate *self)
{
	GStatBuf st;
	guint64 total = 0;

	if (g_stat(self->state_path, &st) == 0)
		total += (guint64)st.st_size;
	if (g_stat(self->disk_path, &st) == 0)
		total += (guint64)st.st_size;
	if (g_stat(self->ram_path, &st) == 0)
		total += (guint64)st.st_blocks * 512;
	return total;
}

gint64
qsim_template_read_build_pid(QsimTemplate *self)
{
	g_autofree gchar *pid_path =
	    g_build_filename(self->build, QSIM_TEMPLATE_BUILD_PID_FILE, NULL);
	g_autofree gchar *text = NULL;

	if (!g_file_get_contents(pid_path, &text, NULL, NULL))
		return 0;
	return g_ascii_strtoll(text, NULL, 10);
}

/**
 * qsim_template_is_building:
 * @self: a #QsimTemplate
 *
 * Returns: %TRUE while a process that is still alive builds this template
 */
gboolean
qsim_template_is_building(QsimTemplate *self)
{
	gint64 pid = qsim_template_read_build_pid(self);

	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/**
 * qsim_template_check:
 * @self: a #QsimTemplate
 * @config: the VM's current configuration
 * @reason: (out) (optional) (transfer full): why it is not ready, or %NULL when ready
 *
 * Decides whether the template may be used now, cheaply (stat() and a small file
 * read): every input recorded in the manifest must be unchanged, the data files
 * present with their recorded sizes, and nobody must have marked it stale. A build
 * in progress does not change the answer: a ready template stays usable meanwhile.
 *
 * Returns: %QSIM_TEMPLATE_STATE_NONE, %QSIM_TEMPLATE_STATE_READY or
 *   %QSIM_TEMPLATE_STATE_STALE
 */
QsimTemplateState
qsim_template_check(QsimTemplate *self, const QsimVmConfig *config, gchar **reason)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateManifest) recorded = NULL;
	g_autoptr(QsimTemplateManifest) current = NULL;
	g_autofree gchar *stale = NULL;
	g_autofree gchar *why = NULL;
	g_autofree gchar *version = qsim_template_resolve_version(self);
	g_autofree gchar *stale_path = NULL;
	g_autofree gchar *manifest_path = NULL;
	g_autofree gchar *state_path = NULL;
	g_autofree gchar *disk_path = NULL;
	g_autofree gchar *ram_path = NULL;
	GStatBuf st;

	if (reason != NULL)
		*reason = NULL;
	if (version == NULL || !g_file_test(version, G_FILE_TEST_IS_DIR)) {
		if (reason != NULL)
			*reason = g_strdup("no template");
		return QSIM_TEMPLATE_STATE_NONE;
	}
	stale_path = g_build_filename(version, QSIM_TEMPLATE_STALE_FILE, NULL);
	manifest_path = g_build_filename(version, QSIM_TEMPLATE_MANIFEST_FILE, NULL);
	state_path = g_build_filename(version, QSIM_TEMPLATE_STATE_FILE, NULL);
	disk_path = g_build_filename(version, QSIM_TEMPLATE_DISK_FILE, NULL);
	ram_path = g_build_filename(version, QSIM_TEMPLATE_RAM_FILE, NULL);
	if (g_file_get_contents(stale_path, &stale, NULL, NULL)) {
		if (reason != NULL)
			*reason = g_strdup(g_strstrip(stale));
		return QSIM_TEMPLATE_STATE_STALE;
	}
	recorded = qsim_template_manifest_load(manifest_path, &error);
	if (recorded == NULL)
		why = g_strdup(error->message);
	else if (recorded->format != QSIM_TEMPLATE_MANIFEST_FORMAT)
		why = g_strdup_printf("the template has format %u, this qsim uses format %d: "
		                      "rebuild it",
		                      recorded->format, QSIM_TEMPLATE_MANIFEST_FORMAT);
	else if (g_stat(state_path, &st) != 0 || (guint64)st.st_size != recorded->state_size)
		why = g_strdup("the state file is missing or its size changed");
	else if (g_stat(disk_path, &st) != 0 || (guint64)st.st_size != recorded->disk_size)
		why = g_strdup("the template disk is missing or its size changed");
	else if (g_stat(ram_path, &st) != 0 || (guint64)st.st_size != recorded->ram_size)
		why = g_strdup("the RAM file is missing or its size changed");
	else if ((current = qsim_template_manifest_new_for_config(config, self->qemu_binary,
	                                                          &error)) == NULL)
		why = g_strdup(error->message);
	else {
		if (self->accel_kvm >= 0)
			current->accel = g_strdup(self->accel_kvm ? "kvm" : "tcg");
		qsim_template_manifest_matches(recorded, current, &why);
	}
	if (why == NULL)
		return QSIM_TEMPLATE_STATE_READY;
	if (reason != NULL)
		*reason = g_steal_pointer(&why);
	return QSIM_TEMPLATE_STATE_STALE;
}

/**
 * qsim_template_mark_stale:
 * @self: a #QsimTemplate
 * @reason: why, e.g. the error of a failed restore
 * @error: return location for a #GError
 *
 * Keeps the template from being used again until it is rebuilt.
 *
 * Returns: %TRUE on success (also when there is no template)
 */
gboolean
qsim_template_mark_stale(QsimTemplate *self, const gchar *reason, GError **error)
{
	g_autofree gchar *text = g_strdup_printf("%s\n", reason);
	g_autofree gchar *applied_stale = NULL;
	const gchar *stale_path = self->stale_path;

	/* a restore that failed condemns the version it used, not one built since */
	if (self->applied != NULL && !qsim_template_is_current(self)) {
		applied_stale = g_build_filename(self->applied, QSIM_TEMPLATE_STALE_FILE, NULL);
		stale_path = applied_stale;
	} else if (!g_file_test(self->dir, G_FILE_TEST_IS_DIR)) {
		return TRUE;
	}
	g_info("%s: template %s marked stale: %s", self->vm_name, stale_path, reason);
	if (!g_file_set_contents(stale_path, text, -1, error)) {
		qsim_error_convert(error);
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_template_remove:
 * @self: a #QsimTemplate
 * @error: return location for a #GError
 *
 * Deletes the template; restores already running keep their open files.
 *
 * Returns: %TRUE on success
 */
gboolean
qsim_template_remove(QsimTemplate *self, GError **error)
{
	if (g_file_test(self->dir, G_FILE_TEST_IS_SYMLINK)) {
		if (g_unlink(self->dir) != 0 && errno != ENOENT) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s",
			            self->dir, g_strerror(errno));
			return FALSE;
		}
	} else if (!qsim_template_remove_flat_dir(self->dir, error)) {
		return FALSE;
	}
	qsim_template_remove_versions(self, NULL, NULL);
	return TRUE;
}

/**
 * qsim_template_apply:
 * @self: a #QsimTemplate, checked ready by the caller
 * @vm: a #QsimVm not yet started
 * @error: return location for a #GError
 *
 * Makes @vm restore from this template on its own overlay of the template disk, with
 * the template's RAM file mapped private. The paths are those of the current version,
 * resolved now: a build that switches versions later does not affect @vm.
 *
 * Returns: %TRUE on success, %FALSE when there is no template any more
 */
gboolean
qsim_template_apply(QsimTemplate *self, QsimVm *vm, GError **error)
{
	g_autofree gchar *version = qsim_template_resolve_version(self);
	g_autofree gchar *state = NULL;
	g_autofree gchar *disk = NULL;
	g_autofree gchar *ram = NULL;
	g_autofree gchar *overlay = NULL;

	if (version == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "the template of %s is gone",
		            self->vm_name);
		return FALSE;
	}
	state = g_build_filename(version, QSIM_TEMPLATE_STATE_FILE, NULL);
	disk = g_build_filename(version, QSIM_TEMPLATE_DISK_FILE, NULL);
	ram = g_build_filename(version, QSIM_TEMPLATE_RAM_FILE, NULL);
	overlay = g_build_filename(version, QSIM_TEMPLATE_OVERLAY_FILE, NULL);
	qsim_vm_set_restore_from(vm, disk, state);
	qsim_vm_set_ram_file(vm, ram, FALSE);
	g_free(self->applied);
	self->applied = g_steal_pointer(&version);
	if (g_file_test(overlay, G_FILE_TEST_IS_REGULAR))
		qsim_vm_set_overlay_template(vm, overlay);
	return TRUE;
}

/**
 * qsim_template_is_current:
 * @self: a #QsimTemplate
 *
 * Returns: %TRUE unless qsim_template_apply() resolved a version that a build has
 *   replaced since (or the template is gone)
 */
gboolean
qsim_template_is_current(QsimTemplate *self)
{
	g_autofree gchar *version = qsim_template_resolve_version(self);

	return self->applied == NULL || g_strcmp0(version, self->applied) == 0;
}

/**
 * qsim_template_new_hostname:
 * @vm_name: the VM's name (not used in the result: it may hold characters a hostname
 *   cannot)
 *
 * Returns: (transfer full): a fresh hostname for a restored guest, "qsim-" and 12
 *   random hex digits
 */
gchar *
qsim_template_new_hostname(const gchar *vm_name)
{
	return g_strdup_printf("qsim-%06x%06x", g_random_int_range(0, 0x1000000),
	                       g_random_int_range(0, 0x1000000));
}

/**
 * qsim_template_fixup_command:
 * @unix_time: the host's time to give the guest, in seconds
 * @hostname: from qsim_template_new_hostname()
 *
 * Builds the shell command that makes a restored guest unique and correct: its clock
 * (restored guests stay at save time), its RNG (reseeded with 64 bytes from the host;
 * writing to /dev/urandom mixes them in), its hostname and, if the image has one, its
 * machine id (and the D-Bus copy of it when that is a file of its own). Every value is
 * generated by qsim on the host; nothing comes from a user. The machine id is not read
 * from the guest's RNG: without a vmgenid driver in the guest kernel, the seed written
 * here only reaches the guest's output at its next reseed, so two clones could draw
 * the same id just after the restore.
 *
 * Returns: (transfer full): the command, for the guest's `sh -c`
 */
gchar *
qsim_template_fixup_command(gint64 unix_time, const gchar *hostname)
{
	GString *hex = g_string_new(NULL);
	g_autofree gchar *seed = NULL;
	g_autofree gchar *uuid = g_uuid_string_random();
	g_autofree gchar *machine_id = NULL;
	g_auto(GStrv) uuid_parts = NULL;

	g_return_val_if_fail(hostname != NULL, NULL);
	for (guint i = 0; i < 16; i++)
		g_string_append_printf(hex, "%08x", g_random_int());
	seed = g_string_free(hex, FALSE);
	/* a random (version 4) UUID without its dashes, like systemd-machine-id-setup */
	uuid_parts = g_strsplit(uuid, "-", -1);
	machine_id = g_strjoinv("", uuid_parts);
	return g_strdup_printf("date -u -s @%" G_GINT64_FORMAT " >/dev/null; "
	                       "echo %s > /dev/urandom; "
	                       "hostname %s; echo %s > /etc/hostname 2>/dev/null; "
	                       "if [ -s /etc/machine-id ]; then "
	                       "echo %s > /etc/machine-id; "
	                       "if [ -f /var/lib/dbus/machine-id ] && "
	                       "[ ! -L /var/lib/dbus/machine-id ]; then "
	                       "echo %s > /var/lib/dbus/machine-id; fi; fi; "
	                       "date -u +%%s",
	                       unix_time, seed, hostname, hostname, machine_id, machine_id);
}

/* ---- object ------------------------------------------------------------ */

void
qsim_template_set_qemu_binary(QsimTemplate *self, const gchar *qemu_binary)
{
	g_free(self->qemu_binary);
	self->qemu_binary = g_strdup(qemu_binary != NULL ? qemu_binary : QSIM_QEMU_BINARY);
}

void
qsim_template_set_qemu_img_binary(QsimTemplate *self, const gchar *qemu_img_binary)
{
	g_free(self->qemu_img);
	self->qemu_img = g_strdup(qemu_img_binary != NULL ? qemu_img_binary : QSIM_QEMU_IMG_BINARY);
}

static void
qsim_template_finalize(GObject *object)
{
	QsimTemplate *self = QSIM_TEMPLATE(object);

	g_free(self->accel_why);
	g_free(self->vm_name);
	g_free(self->root);
	g_free(self->dir);
	g_free(self->versions);
	g_free(self->build);
	g_free(self->state_path);
	g_free(self->ram_path);
	g_free(self->disk_path);
	g_free(self->manifest_path);
	g_free(self->stale_path);
	g_free(self->qemu_binary);
	g_free(self->qemu_img);
	g_free(self->applied);
	G_OBJECT_CLASS(qsim_template_parent_class)->finalize(object);
}

static void
qsim_template_class_init(QsimTemplateClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_template_finalize;
}

static void
qsim_template_init(QsimTemplate *self)
{
	self->qemu_binary = g_strdup(QSIM_QEMU_BINARY);
	self->qemu_img = g_strdup(QSIM_QEMU_IMG_BINARY);
}

/**
 * qsim_template_set_accel:
 * @use_kvm: the accelerator this host runs the VM under (qsim-accel-resolver.c)
 * @why: (nullable): how that was decided, for messages
 * @kvm_console_timeout_ms: the build VM's silent-console limit under KVM, 0 = none
 *
 * A build records it and runs under it; a check finds a template made under the other
 * accelerator stale. Without this call a build runs under TCG and a check accepts any.
 */
void
qsim_template_set_accel(QsimTemplate *self, gboolean use_kvm, const gchar *why,
                        guint kvm_console_timeout_ms)
{
	g_return_if_fail(QSIM_IS_TEMPLATE(self));
	self->accel_kvm = use_kvm ? 1 : 0;
	g_free(self->accel_why);
	self->accel_why = g_strdup(why);
	self->kvm_console_timeout_ms = kvm_console_timeout_ms;
}

/**
 * qsim_template_new:
 * @state_dir: STATE_DIR
 * @vm_name: a valid VM name (it becomes a directory name)
 *
 * Nothing is read or created yet.
 *
 * Returns: (transfer full): the template handle of @vm_name
 */
QsimTemplate *
qsim_template_new(const gchar *state_dir, const gchar *vm_name)
{
	QsimTemplate *self = g_object_new(QSIM_TYPE_TEMPLATE, NULL);
	g_autofree gchar *build_name = g_strdup_printf(".%s.building", vm_name);
	g_autofree gchar *versions_name = g_strdup_printf(".%s.versions", vm_name);

	self->vm_name = g_strdup(vm_name);
	self->root = g_build_filename(state_dir, QSIM_TEMPLATE_DIR, NULL);
	self->dir = g_build_filename(self->root, vm_name, NULL);
	self->versions = g_build_filename(self->root, versions_name, NULL);
	self->build = g_build_filename(self->root, build_name, NULL);
	self->state_path = g_build_filename(self->dir, QSIM_TEMPLATE_STATE_FILE, NULL);
	self->ram_path = g_build_filename(self->dir, QSIM_TEMPLATE_RAM_FILE, NULL);
	self->disk_path = g_build_filename(self->dir, QSIM_TEMPLATE_DISK_FILE, NULL);
	self->manifest_path = g_build_filename(self->dir, QSIM_TEMPLATE_MANIFEST_FILE, NULL);
	self->stale_path = g_build_filename(self->dir, QSIM_TEMPLATE_STALE_FILE, NULL);
	self->accel_kvm = -1;
	return self;
}
