#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimHostVm:
 *
 * One VM of one host's catalogue, as that host's agents published it: what
 * `GET /vms` shows and `POST /requests` checks, without the API reading any
 * host's disk. File names only (no host paths); strings are owned, nullable.
 */
typedef struct {
	gchar *host;
	gchar *vm_name;
	gboolean valid;
	gchar *error;        /* why the VM cannot be used there */
	gchar *image;        /* the image's file name */
	gchar *format;       /* "qcow2" or "raw" */
	guint64 size_bytes;  /* of the image */
	gchar *config;       /* the .conf's file name */
	gchar *config_hash;  /* sha256 of the .conf (see qsim_vm_config_hash()) */
	gchar *image_id;     /* "<size>:<mtime us>": changes when the image does */
	gchar *accel_mode;   /* the ACCEL in force for it there (its own or the host's) */
	gchar *accel_source; /* where that came from: "<name>.conf" or a config source */
	guint warm_size;     /* its WARM_POOL_SIZE */
	guint warm_parked;
	guint warm_starting;
	gint64 updated_at;
} QsimHostVm;

QsimHostVm *qsim_host_vm_new(const gchar *host, const gchar *vm_name);

QsimHostVm *qsim_host_vm_copy(const QsimHostVm *self);

void qsim_host_vm_free(QsimHostVm *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimHostVm, qsim_host_vm_free)

G_END_DECLS
