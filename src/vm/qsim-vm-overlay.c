#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include "common/qsim-error.h"
#include "qsim-vm-overlay.h"

/* qemu-img finishes in well under a second; this only bounds a wedged filesystem. */
#define QSIM_VM_OVERLAY_TIMEOUT_S 30

typedef struct {
	GSubprocess *proc;
	guint timeout_id;
	gchar *overlay;
} OverlayData;

static void
overlay_data_free(OverlayData *d)
{
	g_clear_object(&d->proc);
	g_clear_handle_id(&d->timeout_id, g_source_remove);
	g_free(d->overlay);
	g_free(d);
}

static gboolean
overlay_timeout_cb(gpointer user_data)
{
	OverlayData *d = user_data;

	d->timeout_id = 0;
	g_subprocess_force_exit(d->proc);
	return G_SOURCE_REMOVE;
}

static void
overlay_communicate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	OverlayData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;

	if (!g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &out, NULL, &error)) {
		qsim_error_convert(&error);
		g_prefix_error(&error, "qemu-img failed: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	if (d->timeout_id == 0) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
		                        "qemu-img did not finish within %d s",
		                        QSIM_VM_OVERLAY_TIMEOUT_S);
		return;
	}
	if (!g_subprocess_get_if_exited(d->proc) || g_subprocess_get_exit_status(d->proc) != 0) {
		g_autofree gchar *msg = g_strdup(g_strstrip(out != NULL ? out : (gchar *)""));

		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM,
		                        "cannot create overlay %s: %s", d->overlay,
		                        msg[0] != '\0' ? msg : "qemu-img failed");
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/**
 * qsim_vm_overlay_create_async:
 * @qemu_img: the qemu-img binary (name looked up in PATH, or a path)
 * @base: absolute path of the base image, never written
 * @base_format: its format, e.g. "qcow2" or "raw"
 * @overlay: path of the qcow2 overlay to create
 * @cancellable: (nullable): a #GCancellable
 * @callback: called on the thread-default main context when done
 * @user_data: data for @callback
 *
 * Creates a throwaway qcow2 overlay backed by @base with an argv vector (no shell).
 */
void
qsim_vm_overlay_create_async(const gchar *qemu_img, const gchar *base, const gchar *base_format,
                             const gchar *overlay, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GError) error = NULL;
	OverlayData *d;
	const gchar *argv[] = {qemu_img, "create", "-q",        "-f",    "qcow2", "-b",
	                       base,     "-F",     base_format, overlay, NULL};

	g_task_set_source_tag(task, qsim_vm_overlay_create_async);
	if (!g_path_is_absolute(base)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "base image path must be absolute: %s", base);
		return;
	}
	if (!g_file_test(base, G_FILE_TEST_IS_REGULAR)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
		                        "base image not found: %s", base);
		return;
	}
	d = g_new0(OverlayData, 1);
	d->overlay = g_strdup(overlay);
	g_task_set_task_data(task, d, (GDestroyNotify)overlay_data_free);
	/* stderr merged into stdout so the error message quotes qemu-img's reason */
	d->proc = g_subprocess_newv(
	    argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error);
	if (d->proc == NULL) {
		qsim_error_convert(&error);
		g_prefix_error(&error, "cannot run %s: ", qemu_img);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	d->timeout_id = g_timeout_add_seconds(QSIM_VM_OVERLAY_TIMEOUT_S, overlay_timeout_cb, d);
	g_subprocess_communicate_utf8_async(d->proc, NULL, cancellable, overlay_communicate_cb,
	                                    g_steal_pointer(&task));
}

/**
 * qsim_vm_overlay_create_finish:
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the overlay exists
 */
gboolean
qsim_vm_overlay_create_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
overlay_copy_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;

	if (!g_file_copy_finish(G_FILE(source), res, &error)) {
		qsim_error_convert(&error);
		g_prefix_error(&error, "cannot copy the prepared overlay: ");
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/**
 * qsim_vm_overlay_copy_async:
 * @prepared: an empty qcow2 overlay made by qsim_vm_overlay_create_async() (read-only)
 * @overlay: path of the copy, which must not exist yet
 * @cancellable: (nullable): a #GCancellable
 * @callback: called on the thread-default main context when done; finish with
 *   qsim_vm_overlay_create_finish()
 * @user_data: data for @callback
 *
 * Makes a throwaway overlay by copying @prepared: it is backed by the same image, and
 * copying a few hundred KiB costs far less than running qemu-img.
 */
void
qsim_vm_overlay_copy_async(const gchar *prepared, const gchar *overlay, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	g_autoptr(GFile) from = g_file_new_for_path(prepared);
	g_autoptr(GFile) to = g_file_new_for_path(overlay);

	g_task_set_source_tag(task, qsim_vm_overlay_create_async);
	/* default permissions: the prepared file is read-only, the copy is written by QEMU */
	g_file_copy_async(from, to, G_FILE_COPY_TARGET_DEFAULT_PERMS, G_PRIORITY_DEFAULT,
	                  cancellable, NULL, NULL, overlay_copy_cb, g_steal_pointer(&task));
}
