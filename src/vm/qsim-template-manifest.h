#pragma once

#include <glib.h>

#include "common/qsim-vm-config.h"

G_BEGIN_DECLS

/**
 * QsimTemplateManifest:
 *
 * What a template was made from. A template is only used while every input still
 * matches: the VM config's hash, the base image (size and mtime; its sha256 is recorded
 * too), the kernel and initrd files, and the QEMU binary. Strings are owned; file ids
 * are "size:mtime_us", "" when the file is not used. @format says how the template is
 * laid out; one of another format is stale, never restored.
 */
typedef struct {
	guint format; /* QSIM_TEMPLATE_MANIFEST_FORMAT when built by this qsim */
	gchar *vm_name;
	gchar *config_hash;
	gchar *image_path;
	gchar *image_sha256; /* (nullable) until computed */
	guint64 image_size;
	gint64 image_mtime_us;
	gchar *kernel_id;
	gchar *initrd_id;
	gchar *data_disk_id;   /* DATA_DISK's "size:mtime_us": the guest may have cached its
	                        * content; "" (or NULL when loaded from before the key) if none */
	gchar *qemu_binary_id; /* "path:size:mtime_us" of the resolved binary */
	gchar *qemu_version;   /* (nullable) as QMP reported it */
	gchar *machine;        /* MACHINE, "" when QEMU's default */
	gchar *accel;          /* (nullable) "kvm" or "tcg": a state saved under one cannot be
	                        * restored under the other; NULL in a current manifest: any */
	gchar *network;        /* the effective NETWORK ("none"): a warm or restored VM keeps
	                        * the network it was saved with, so another mode is stale;
	                        * NULL when not recorded (format 2), stale too */
	gint64 created_unix;
	guint64 state_size;
	guint64 disk_size;
	guint64 ram_size; /* the RAM file's size (format 2) */
} QsimTemplateManifest;

/* 1: RAM inside the state file (no format key); 2: RAM in its own file, a state of
 * devices only, saved without run state, in a versioned directory; 3: the saved machine
 * has a vmgenid device (a restore gets a new generation ID) and the manifest records
 * the network mode */
#define QSIM_TEMPLATE_MANIFEST_FORMAT 3

QsimTemplateManifest *qsim_template_manifest_new_for_config(const QsimVmConfig *config,
                                                            const gchar *qemu_binary,
                                                            GError **error);
QsimTemplateManifest *qsim_template_manifest_load(const gchar *path, GError **error);
gboolean qsim_template_manifest_save(const QsimTemplateManifest *self, const gchar *path,
                                     GError **error);
gboolean qsim_template_manifest_matches(const QsimTemplateManifest *recorded,
                                        const QsimTemplateManifest *current, gchar **reason);
gchar *qsim_template_manifest_file_sha256(const gchar *path, GError **error);
void qsim_template_manifest_free(QsimTemplateManifest *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimTemplateManifest, qsim_template_manifest_free)

G_END_DECLS
