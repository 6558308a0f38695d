#pragma once

/*
 * QsimTemplate's insides, shared by its two files (libsoup's *-private.h convention):
 *   qsim-template.c        the object and the template on disk: versions, check, stale,
 *                          remove, apply
 *   qsim-template-build.c  a build: boot, pause, save, verify by a test restore, install
 */

#include "qsim-template.h"

G_BEGIN_DECLS

#define QSIM_TEMPLATE_BUILD_PID_FILE "pid"

struct _QsimTemplate {
	GObject parent_instance;
	gchar *vm_name;
	gchar *root;     /* STATE_DIR/templates */
	gchar *dir;      /* root/<vm_name>: a symlink to the current version */
	gchar *versions; /* root/.<vm_name>.versions: one directory per build */
	gchar *build;    /* root/.<vm_name>.building */
	gchar *state_path;
	gchar *ram_path;
	gchar *disk_path;
	gchar *manifest_path;
	gchar *stale_path;
	gchar *qemu_binary;
	gchar *qemu_img;
	gchar *applied; /* the version qsim_template_apply() resolved, if any */
	/* the accelerator its VMs run under: -1 until set (then any recorded one matches) */
	gint accel_kvm;
	gchar *accel_why;
	guint kvm_console_timeout_ms;
};

gboolean qsim_template_remove_flat_dir(const gchar *path, GError **error);
gchar *qsim_template_resolve_version(QsimTemplate *self);
void qsim_template_remove_versions(QsimTemplate *self, const gchar *keep_a, const gchar *keep_b);
gint64 qsim_template_read_build_pid(QsimTemplate *self);

G_END_DECLS
