#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qsim-template-migrate.h"
#include "qsim-template-private.h"
#include "qsim-vm-overlay.h"
#include "qsim-vm-rundir.h"

/* saving ~100 MB of guest RAM through a pipe takes about a second; bound a wedged host */
#define QSIM_TEMPLATE_SAVE_TIMEOUT_MS 120000
/* a build whose test restore fails is redone once from a fresh boot */
#define QSIM_TEMPLATE_BUILD_ATTEMPTS 2

static void build_boot(GTask *task);
static void build_verify(GTask *task);

/* ---- build ------------------------------------------------------------- */

typedef struct {
	QsimTemplateManifest *manifest;
	gchar *image_path;
	gchar *images_dir;
	gchar *config_path; /* (nullable) */
	gchar *run_root;
	QsimVm *vm;
	GError *failure; /* reported once the VM is gone */
	gboolean owns_build_dir;
	gboolean verifying; /* vm is the test restore of the new template */
	guint attempt;
	gchar *version; /* the new version directory, once the build dir became it */
} BuildData;

static void
build_data_free(BuildData *d)
{
	qsim_template_manifest_free(d->manifest);
	g_free(d->image_path);
	g_free(d->images_dir);
	g_free(d->config_path);
	g_free(d->run_root);
	g_free(d->version);
	g_clear_object(&d->vm);
	g_clear_error(&d->failure);
	g_free(d);
}

static void
build_fail(GTask *task, GError *error)
{
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) cleanup_error = NULL;

	if (d->owns_build_dir && !qsim_template_remove_flat_dir(self->build, &cleanup_error))
		g_warning("%s: %s", self->vm_name, cleanup_error->message);
	d->owns_build_dir = FALSE;
	g_prefix_error(&error, "cannot build the template of %s: ", self->vm_name);
	g_task_return_error(task, error);
}

/* Read-only data files, and a RAM file only its owner can open: QEMU 7.2 opens it
 * read-write even for a private mapping, so 0444 would refuse every non-root user; the
 * mapping is private, so no restore writes it (tests/vm/test-template.c checks). */
static gboolean
build_protect_files(QsimTemplate *self, GError **error)
{
	g_autofree gchar *state = g_build_filename(self->build, QSIM_TEMPLATE_STATE_FILE, NULL);
	g_autofree gchar *disk = g_build_filename(self->build, QSIM_TEMPLATE_DISK_FILE, NULL);
	g_autofree gchar *ram = g_build_filename(self->build, QSIM_TEMPLATE_RAM_FILE, NULL);

	if (g_chmod(state, 0444) != 0 || g_chmod(disk, 0444) != 0 || g_chmod(ram, 0600) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
		            "cannot set the template files' modes: %s", g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean
build_record_size(const gchar *dir, const gchar *name, guint64 *size, GError **error)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	GStatBuf st;

	if (g_stat(path, &st) != 0 || st.st_size == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_VM, "QEMU wrote no %s file", name);
		return FALSE;
	}
	*size = (guint64)st.st_size;
	return TRUE;
}

/* Turns the build directory into a new version directory (not yet the current one). */
static gboolean
build_make_version(QsimTemplate *self, BuildData *d, GError **error)
{
	g_autofree gchar *manifest =
	    g_build_filename(self->build, QSIM_TEMPLATE_MANIFEST_FILE, NULL);
	g_autofree gchar *pid = g_build_filename(self->build, QSIM_TEMPLATE_BUILD_PID_FILE, NULL);
	g_autofree gchar *name = g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time());
	g_autofree gchar *version = g_build_filename(self->versions, name, NULL);

	if (!build_record_size(self->build, QSIM_TEMPLATE_STATE_FILE, &d->manifest->state_size,
	                       error) ||
	    !build_record_size(self->build, QSIM_TEMPLATE_DISK_FILE, &d->manifest->disk_size,
	                       error) ||
	    !build_record_size(self->build, QSIM_TEMPLATE_RAM_FILE, &d->manifest->ram_size, error))
		return FALSE;
	d->manifest->created_unix = g_get_real_time() / G_USEC_PER_SEC;
	if (!build_protect_files(self, error) ||
	    !qsim_template_manifest_save(d->manifest, manifest, error))
		return FALSE;
	g_unlink(pid);
	if (g_mkdir_with_parents(self->versions, 0700) != 0 ||
	    g_rename(self->build, version) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot install %s: %s", version,
		            g_strerror(errno));
		return FALSE;
	}
	d->owns_build_dir = FALSE;
	d->version = g_steal_pointer(&version);
	return TRUE;
}

/* Makes d->version the current version: the symlink is replaced with rename(), which
 * is atomic, so a restore sees either the old or the new version, never a mix. */
static gboolean
build_switch(QsimTemplate *self, BuildData *d, GError **error)
{
	g_autofree gchar *name = g_path_get_basename(d->version);
	g_autofree gchar *target = NULL;
	g_autofree gchar *link_tmp = NULL;
	g_autofree gchar *previous = qsim_template_resolve_version(self);
	g_autofree gchar *legacy = NULL;

	/* a template of format 1 is a real directory, which rename() cannot replace with a
	 * symlink: move it aside first (restores of it are refused anyway: stale) */
	if (g_file_test(self->dir, G_FILE_TEST_IS_DIR) &&
	    !g_file_test(self->dir, G_FILE_TEST_IS_SYMLINK)) {
		legacy =
		    g_strdup_printf("%s/.%s.old-%d", self->root, self->vm_name, (gint)getpid());
		g_clear_pointer(&previous, g_free);
		if (g_rename(self->dir, legacy) != 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot replace %s: %s",
			            self->dir, g_strerror(errno));
			return FALSE;
		}
	}
	target = g_strdup_printf(".%s.versions/%s", self->vm_name, name);
	link_tmp = g_strdup_printf("%s/.%s.link-%d", self->root, self->vm_name, (gint)getpid());
	g_unlink(link_tmp);
	if (symlink(target, link_tmp) != 0 || g_rename(link_tmp, self->dir) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot switch %s to %s: %s",
		            self->dir, target, g_strerror(errno));
		g_unlink(link_tmp);
		return FALSE;
	}
	if (legacy != NULL) {
		g_autoptr(GError) local = NULL;

		if (!qsim_template_remove_flat_dir(legacy, &local))
			g_warning("%s: %s", self->vm_name, local->message);
	}
	/* the version just replaced stays: a restore may have resolved it a moment ago and
	 * not yet opened its files; older ones were replaced at least one build ago */
	qsim_template_remove_versions(self, d->version, previous);
	return TRUE;
}

static void
build_finish_install(GTask *task)
{
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!build_switch(self, d, &error)) {
		g_autoptr(GError) cleanup_error = NULL;

		if (!qsim_template_remove_flat_dir(d->version, &cleanup_error))
			g_warning("%s: %s", self->vm_name, cleanup_error->message);
		build_fail(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	g_info("%s: template ready in %s (%" G_GUINT64_FORMAT " bytes)", self->vm_name, d->version,
	       d->manifest->state_size + d->manifest->disk_size);
	g_task_return_boolean(task, TRUE);
	g_object_unref(task);
}

static void
build_overlay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *overlay = g_build_filename(d->version, QSIM_TEMPLATE_OVERLAY_FILE, NULL);

	/* without it restores just run qemu-img themselves */
	if (!qsim_vm_overlay_create_finish(res, &error) || g_chmod(overlay, 0444) != 0) {
		g_warning("%s: no prepared overlay for restores: %s", self->vm_name,
		          error != NULL ? error->message : g_strerror(errno));
		g_unlink(overlay);
	}
	build_finish_install(task);
}

/* Runs in a worker thread: fsync() of a RAM file of ~100 MB blocks for as long as the
 * disk takes, which the main loop (and the API in `qsimd all`) must not wait for. */
static void
build_sync_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
	const gchar *dir = task_data;
	const gchar *const names[] = {QSIM_TEMPLATE_STATE_FILE, QSIM_TEMPLATE_DISK_FILE,
	                              QSIM_TEMPLATE_RAM_FILE};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree gchar *path = g_build_filename(dir, names[i], NULL);
		gint fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);

		if (fd < 0 || fsync(fd) != 0) {
			gint saved = errno;

			if (fd >= 0)
				close(fd);
			g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_IO,
			                        "cannot write %s to disk: %s", path,
			                        g_strerror(saved));
			return;
		}
		close(fd);
	}
	g_task_return_boolean(task, TRUE);
}

/* The empty overlay of the template disk that each restore copies: a copy costs
 * a fraction of a millisecond, running qemu-img about 50 ms. It names the version's
 * disk, so it is made in the version directory, before the switch. */
static void
build_synced_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *disk = NULL;
	g_autofree gchar *overlay = NULL;

	if (!g_task_propagate_boolean(G_TASK(res), &error) ||
	    !build_make_version(self, d, &error)) {
		build_fail(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	disk = g_build_filename(d->version, QSIM_TEMPLATE_DISK_FILE, NULL);
	overlay = g_build_filename(d->version, QSIM_TEMPLATE_OVERLAY_FILE, NULL);
	qsim_vm_overlay_create_async(self->qemu_img, disk, "qcow2", overlay, NULL, build_overlay_cb,
	                             task);
}

/* The data files reach the disk before the manifest that vouches for them is written:
 * after a host crash a template is either complete or stale, never torn but "ready". */
static void
build_install(GTask *task)
{
	QsimTemplate *self = g_task_get_source_object(task);
	g_autoptr(GTask) sync = g_task_new(self, NULL, build_synced_cb, task);

	g_task_set_task_data(sync, g_strdup(self->build), g_free);
	g_task_run_in_thread(sync, build_sync_thread);
}

static void
build_shutdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_shutdown_finish(QSIM_VM(source), res, &error))
		g_warning("%s: template VM shutdown: %s", self->vm_name, error->message);
	g_clear_error(&error);
	/* a cancelled build (the agent shuts down) ends now: no second attempt */
	if (d->failure != NULL && d->attempt < QSIM_TEMPLATE_BUILD_ATTEMPTS &&
	    !g_cancellable_is_cancelled(g_task_get_cancellable(task))) {
		g_warning("%s: template build attempt %u failed, retrying: %s", self->vm_name,
		          d->attempt, d->failure->message);
		g_clear_error(&d->failure);
		build_boot(g_steal_pointer(&task));
		return;
	}
	if (d->failure != NULL) {
		build_fail(task, g_steal_pointer(&d->failure));
		return;
	}
	if (!d->verifying) {
		build_verify(g_steal_pointer(&task));
		return;
	}
	build_install(g_steal_pointer(&task));
}

/* Stops the build VM; a @failure is reported once it is gone. */
static void
build_stop_vm(GTask *task, GError *failure)
{
	BuildData *d = g_task_get_task_data(task);

	if (failure != NULL && d->failure == NULL)
		d->failure = failure;
	else if (failure != NULL)
		g_error_free(failure);
	/* no ACPI grace: the guest's state is saved (or useless), nothing to flush */
	qsim_vm_shutdown_async(d->vm, 0, NULL, build_shutdown_cb, task);
}

static void
build_save_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *overlay = NULL;
	g_autofree gchar *disk = NULL;
	g_autoptr(GFile) from = NULL;
	g_autoptr(GFile) to = NULL;
	QsimQmpClient *qmp;

	if (!qsim_template_migrate_save_finish(res, &error)) {
		build_stop_vm(task, g_steal_pointer(&error));
		return;
	}
	/* QEMU flushed and released the overlay at the end of the migration (it now sits
	 * in postmigrate), so the file is exactly the disk the saved RAM expects */
	overlay = g_build_filename(qsim_vm_get_run_dir(d->vm), QSIM_VM_RUNDIR_OVERLAY, NULL);
	disk = g_build_filename(self->build, QSIM_TEMPLATE_DISK_FILE, NULL);
	from = g_file_new_for_path(overlay);
	to = g_file_new_for_path(disk);
	if (!g_file_copy(from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, &error)) {
		qsim_error_convert(&error);
		g_prefix_error(&error, "cannot copy the disk: ");
		build_stop_vm(task, g_steal_pointer(&error));
		return;
	}
	qmp = qsim_vm_get_qmp(d->vm);
	if (qmp != NULL)
		d->manifest->qemu_version = g_strdup(qsim_qmp_client_get_version(qmp));
	build_stop_vm(task, NULL);
}

/* A paused guest is saved in one pass at one instant; a live save of a guest that is
 * still settling after boot gave a state that panicked on restore now and then. */
static void
build_paused_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = g_build_filename(self->build, QSIM_TEMPLATE_STATE_FILE, NULL);
	QsimQmpClient *qmp = qsim_vm_get_qmp(d->vm);
	gint fd;

	if (!qsim_vm_pause_finish(d->vm, res, &error) || qmp == NULL) {
		build_stop_vm(task, error != NULL ? g_steal_pointer(&error)
		                                  : g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
		                                                "no QMP connection"));
		return;
	}
	fd = g_open(state, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		build_stop_vm(task, g_error_new(QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s",
		                                state, g_strerror(errno)));
		return;
	}
	/* QEMU gets its own copy of the fd: ours can go at once */
	qsim_template_migrate_save_async(qmp, fd, QSIM_TEMPLATE_SAVE_TIMEOUT_MS,
	                                 g_task_get_cancellable(task), build_save_cb, task);
	close(fd);
}

static void
build_ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = NULL;
	QsimQmpClient *qmp;

	if (!qsim_vm_wait_ready_finish(d->vm, res, &error)) {
		if (d->verifying)
			g_prefix_error(&error, "the test restore of the new template failed: ");
		build_stop_vm(task, g_steal_pointer(&error));
		return;
	}
	qmp = qsim_vm_get_qmp(d->vm);
	if (qmp == NULL) {
		build_stop_vm(task, g_error_new(QSIM_ERROR, QSIM_ERROR_QMP, "no QMP connection"));
		return;
	}
	if (d->verifying) {
		g_info("%s: the test restore of the new template answers", self->vm_name);
		build_stop_vm(task, NULL);
		return;
	}
	state = g_build_filename(self->build, QSIM_TEMPLATE_STATE_FILE, NULL);
	g_info("%s: guest ready, saving its state to %s", self->vm_name, state);
	qsim_vm_pause_async(d->vm, g_task_get_cancellable(task), build_paused_cb, task);
}

static void
build_start_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_start_finish(d->vm, res, &error)) {
		if (d->verifying)
			g_prefix_error(&error, "the test restore of the new template failed: ");
		build_stop_vm(task, g_steal_pointer(&error));
		return;
	}
	qsim_vm_wait_ready_async(d->vm,
	                         d->verifying ? g_get_monotonic_time() +
	                                            QSIM_TEMPLATE_READY_TIMEOUT_S * G_USEC_PER_SEC
	                                      : 0,
	                         g_task_get_cancellable(task), build_ready_cb, task);
}

static QsimVm *
build_new_vm(QsimTemplate *self, BuildData *d, GError **error)
{
	QsimVmConfig *config =
	    qsim_vm_config_parse(d->images_dir, d->config_path, self->vm_name, error);
	QsimVm *vm;

	if (config == NULL)
		return NULL;
	vm = qsim_vm_new(config, d->run_root);
	qsim_vm_set_qemu_binary(vm, self->qemu_binary);
	qsim_vm_set_qemu_img_binary(vm, self->qemu_img);
	qsim_vm_set_accel(vm, self->accel_kvm > 0, self->accel_why);
	qsim_vm_set_kvm_console_timeout(vm, self->kvm_console_timeout_ms);
	return vm;
}

/* Boots the guest that gets saved; each attempt starts from an empty build dir. */
static void
build_boot(GTask *task)
{
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	const gchar *files[] = {QSIM_TEMPLATE_STATE_FILE, QSIM_TEMPLATE_DISK_FILE,
	                        QSIM_TEMPLATE_RAM_FILE, NULL};
	g_autofree gchar *ram = g_build_filename(self->build, QSIM_TEMPLATE_RAM_FILE, NULL);

	for (guint i = 0; files[i] != NULL; i++) {
		g_autofree gchar *path = g_build_filename(self->build, files[i], NULL);
		g_unlink(path);
	}
	d->attempt++;
	d->verifying = FALSE;
	g_clear_object(&d->vm);
	d->vm = build_new_vm(self, d, &error);
	if (d->vm == NULL) {
		build_fail(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	/* the guest's RAM goes straight into the template's RAM file */
	qsim_vm_set_ram_file(d->vm, ram, TRUE);
	g_info("%s: booting the guest to build its template (attempt %u)", self->vm_name,
	       d->attempt);
	qsim_vm_start_async(d->vm, g_task_get_cancellable(task), build_start_cb, task);
}

/* Restores the new template once before anyone may use it. */
static void
build_verify(GTask *task)
{
	QsimTemplate *self = g_task_get_source_object(task);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = g_build_filename(self->build, QSIM_TEMPLATE_STATE_FILE, NULL);
	g_autofree gchar *disk = g_build_filename(self->build, QSIM_TEMPLATE_DISK_FILE, NULL);
	g_autofree gchar *ram = g_build_filename(self->build, QSIM_TEMPLATE_RAM_FILE, NULL);

	/* final modes from now on: the test restore runs exactly like a later one */
	if (!build_protect_files(self, &error)) {
		build_fail(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	g_clear_object(&d->vm);
	d->vm = build_new_vm(self, d, &error);
	if (d->vm == NULL) {
		build_fail(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	d->verifying = TRUE;
	qsim_vm_set_restore_from(d->vm, disk, state);
	qsim_vm_set_ram_file(d->vm, ram, FALSE);
	g_info("%s: test restore of the new template", self->vm_name);
	qsim_vm_start_async(d->vm, g_task_get_cancellable(task), build_start_cb, task);
}

static void
build_checksum_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
	BuildData *d = task_data;
	GError *error = NULL;
	gchar *sum = qsim_template_manifest_file_sha256(d->image_path, &error);

	if (sum == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, sum, g_free);
}

static void
build_checksum_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	/* the reference taken for the thread becomes the build chain's */
	GTask *task = G_TASK(user_data);
	BuildData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gchar *sum = g_task_propagate_pointer(G_TASK(res), &error);

	if (sum == NULL) {
		build_fail(task, g_steal_pointer(&error));
		g_object_unref(task);
		return;
	}
	d->manifest->image_sha256 = sum;
	build_boot(task);
}

/* Takes the build directory, or says who holds it. */
static gboolean
build_claim_dir(QsimTemplate *self, GError **error)
{
	g_autofree gchar *pid_path =
	    g_build_filename(self->build, QSIM_TEMPLATE_BUILD_PID_FILE, NULL);
	g_autofree gchar *pid_text = g_strdup_printf("%d\n", (gint)getpid());

	if (g_mkdir_with_parents(self->root, 0700) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s", self->root,
		            g_strerror(errno));
		return FALSE;
	}
	if (g_mkdir(self->build, 0700) != 0) {
		if (errno != EEXIST) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s",
			            self->build, g_strerror(errno));
			return FALSE;
		}
		if (qsim_template_is_building(self)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_BUSY,
			            "the template of %s is being built by pid %" G_GINT64_FORMAT,
			            self->vm_name, qsim_template_read_build_pid(self));
			return FALSE;
		}
		/* left over by a builder that died: take it over */
		if (!qsim_template_remove_flat_dir(self->build, error) ||
		    g_mkdir(self->build, 0700) != 0) {
			if (error != NULL && *error == NULL)
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
				            "cannot create %s: %s", self->build, g_strerror(errno));
			return FALSE;
		}
	}
	if (!g_file_set_contents(pid_path, pid_text, -1, error)) {
		qsim_error_convert(error);
		qsim_template_remove_flat_dir(self->build, NULL);
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_template_build_async:
 * @self: a #QsimTemplate
 * @config: (transfer full): the VM's configuration
 * @run_root: RUN_DIR, for the build VM's run directory
 * @cancellable: (nullable): aborts the build (the VM is stopped)
 * @callback: called once the template is installed, or the build failed
 * @user_data: data for @callback
 *
 * Boots the VM once from its base image, waits until its SSH answers, saves its RAM
 * and device state with QMP migrate, keeps the disk as it was at that moment, shuts
 * the VM down, and installs the result in place of any previous template (which also
 * clears a stale mark). One build per template at a time, across processes: a second
 * one fails with %QSIM_ERROR_BUSY.
 */
void
qsim_template_build_async(QsimTemplate *self, QsimVmConfig *config, const gchar *run_root,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	g_autoptr(QsimVmConfig) owned = config;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = g_build_filename(self->build, QSIM_TEMPLATE_STATE_FILE, NULL);
	BuildData *d;

	g_task_set_source_tag(task, qsim_template_build_async);
	g_task_set_check_cancellable(task, FALSE);
	if (g_strcmp0(config->name, self->vm_name) != 0) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "config of %s given for the template of %s", config->name,
		                        self->vm_name);
		return;
	}
	d = g_new0(BuildData, 1);
	g_task_set_task_data(task, d, (GDestroyNotify)build_data_free);
	d->run_root = g_strdup(run_root);
	d->image_path = g_strdup(config->image_path);
	/* each VM of the build (the saved one, the test restore) gets its own copy */
	d->images_dir = g_strdup(config->images_dir);
	d->config_path = g_strdup(config->config_path);
	/* the inputs as they are before the boot: a change during the build makes it stale */
	d->manifest = qsim_template_manifest_new_for_config(config, self->qemu_binary, &error);
	if (d->manifest != NULL)
		d->manifest->accel = g_strdup(self->accel_kvm > 0 ? "kvm" : "tcg");
	if (d->manifest == NULL) {
		build_fail(task, g_steal_pointer(&error));
		return;
	}
	if (!build_claim_dir(self, &error)) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	d->owns_build_dir = TRUE;
	/* the image checksum reads the whole image: keep the main loop free */
	{
		g_autoptr(GTask) sum =
		    g_task_new(self, cancellable, build_checksum_cb, g_object_ref(task));

		g_task_set_task_data(sum, d, NULL);
		g_task_run_in_thread(sum, build_checksum_thread);
	}
}

/**
 * qsim_template_build_finish:
 * @self: a #QsimTemplate
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the new template is installed and ready
 */
gboolean
qsim_template_build_finish(QsimTemplate *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}
