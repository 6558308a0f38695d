#pragma once

#include <gio/gio.h>

#include "common/qsim-vm-config.h"
#include "qsim-template-manifest.h"
#include "qsim-vm.h"

G_BEGIN_DECLS

/**
 * QsimTemplateState:
 *
 * none: never built (or removed); building: a build runs now; ready: usable, every
 * input unchanged; stale: an input changed or a restore failed, never used.
 */
typedef enum {
	QSIM_TEMPLATE_STATE_NONE,
	QSIM_TEMPLATE_STATE_BUILDING,
	QSIM_TEMPLATE_STATE_READY,
	QSIM_TEMPLATE_STATE_STALE,
} QsimTemplateState;

/* File names inside STATE_DIR/templates/<vm_name>/, a symlink to the current version,
 * STATE_DIR/templates/.<vm_name>.versions/<N>/. */
#define QSIM_TEMPLATE_DIR "templates"
#define QSIM_TEMPLATE_STATE_FILE "state"
#define QSIM_TEMPLATE_RAM_FILE "ram"
#define QSIM_TEMPLATE_DISK_FILE "disk.qcow2"
/* an empty overlay of disk.qcow2 that each restore copies instead of running qemu-img */
#define QSIM_TEMPLATE_OVERLAY_FILE "overlay.qcow2"
#define QSIM_TEMPLATE_MANIFEST_FILE "manifest"
#define QSIM_TEMPLATE_STALE_FILE "stale"

/* A restored guest answers SSH within about a second; past this, fall back to a boot. */
#define QSIM_TEMPLATE_READY_TIMEOUT_S 10

#define QSIM_TYPE_TEMPLATE (qsim_template_get_type())
G_DECLARE_FINAL_TYPE(QsimTemplate, qsim_template, QSIM, TEMPLATE, GObject)

/*
 * QsimTemplate: one VM's fast-start template in STATE_DIR/templates/<vm_name>/: the
 * guest RAM (`ram`, a sparse file of MEMORY bytes), the device state (`state`), the disk
 * as it was at save time (`disk.qcow2`, an overlay of the base image) and a `manifest`
 * of the inputs. Restores never write them: the RAM is mapped private (copy-on-write)
 * and every restore runs on its own overlay of `disk.qcow2`, so any number of restores
 * may share one template. A build writes a new version directory and switches the
 * `<vm_name>` symlink to it with rename(); a restore resolves the symlink once, so it
 * never pairs files of two versions.
 */

QsimTemplate *qsim_template_new(const gchar *state_dir, const gchar *vm_name);
void qsim_template_set_qemu_binary(QsimTemplate *self, const gchar *qemu_binary);
void qsim_template_set_qemu_img_binary(QsimTemplate *self, const gchar *qemu_img_binary);

const gchar *qsim_template_get_dir(QsimTemplate *self);
const gchar *qsim_template_get_state_path(QsimTemplate *self);
const gchar *qsim_template_get_disk_path(QsimTemplate *self);
const gchar *qsim_template_state_to_string(QsimTemplateState state);

QsimTemplateState qsim_template_check(QsimTemplate *self, const QsimVmConfig *config,
                                      gchar **reason);
gboolean qsim_template_is_building(QsimTemplate *self);
QsimTemplateManifest *qsim_template_load_manifest(QsimTemplate *self, GError **error);
guint64 qsim_template_get_size_bytes(QsimTemplate *self);
gboolean qsim_template_mark_stale(QsimTemplate *self, const gchar *reason, GError **error);
gboolean qsim_template_remove(QsimTemplate *self, GError **error);
void qsim_template_set_accel(QsimTemplate *self, gboolean use_kvm, const gchar *why,
                             guint kvm_console_timeout_ms);
gboolean qsim_template_apply(QsimTemplate *self, QsimVm *vm, GError **error);
gboolean qsim_template_is_current(QsimTemplate *self);
gchar *qsim_template_fixup_command(gint64 unix_time, const gchar *hostname);
gchar *qsim_template_new_hostname(const gchar *vm_name);

void qsim_template_build_async(QsimTemplate *self, QsimVmConfig *config, const gchar *run_root,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
gboolean qsim_template_build_finish(QsimTemplate *self, GAsyncResult *result, GError **error);

G_END_DECLS
