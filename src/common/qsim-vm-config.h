#pragma once

#include <glib.h>

#include "common/qsim-accel-mode.h"

G_BEGIN_DECLS

typedef enum {
	QSIM_VM_FAST_START_NONE,
	QSIM_VM_FAST_START_SNAPSHOT,
} QsimVmFastStart;

/* NETWORK: what the guest may reach besides its own SSH forward (docs/network.md) */
typedef enum {
	QSIM_VM_NETWORK_NONE,     /* slirp with restrict=on: nothing outside the guest */
	QSIM_VM_NETWORK_OUTBOUND, /* the internet but not the host: slirp in a namespace of its own
	                           */
} QsimVmNetwork;

/**
 * QsimVmConfig:
 *
 * One VM's resolved configuration: `VM_CONFIG_DIR/<name>.conf` (optional)
 * merged over the defaults, with every path made absolute and checked to
 * exist. Fields are public and read-only for users; all strings are owned.
 * Optional strings are %NULL when unset (never empty).
 */
typedef struct {
	gchar *name;
	gchar *config_path;      /* (nullable) absolute path of the .conf, NULL if none */
	gchar *images_dir;       /* absolute */
	gchar *image_path;       /* absolute path of the disk image */
	gchar *format;           /* "qcow2" or "raw" */
	guint64 memory_mib;      /* MEMORY */
	guint cpus;              /* CPU */
	gchar **additional_args; /* ADDITIONAL_ARGS split like a shell would, never NULL */
	gchar *machine;          /* MACHINE, e.g. "q35" */
	gchar *cpu_model;        /* (nullable) CPU_MODEL, e.g. "qemu64,+rdrand"; NULL: per accel */
	gchar *kernel_path;      /* (nullable) absolute */
	gchar *initrd_path;      /* (nullable) absolute */
	gchar *data_disk_path;   /* (nullable) absolute: DATA_DISK, attached read-only, raw */
	gchar *append;           /* (nullable) kernel command line */
	gchar *ssh_user;         /* SSH_USER */
	gchar *ssh_key_path;     /* (nullable) absolute, relative to the images dir in the file */
	gchar *ssh_password;     /* (nullable) */
	guint ssh_port;          /* SSH_PORT inside the guest */
	guint boot_timeout;      /* BOOT_TIMEOUT, seconds */
	guint tb_size_mib;       /* TB_SIZE, 0 = QEMU default */
	gchar *ready_marker;     /* (nullable) serial console text meaning sshd is up */
	QsimVmFastStart fast_start;
	guint warm_pool_size;  /* WARM_POOL_SIZE: paused restored VMs to keep, 0 = none */
	QsimAccelMode accel;   /* ACCEL; %QSIM_ACCEL_MODE_INHERIT when the .conf does not set it */
	QsimVmNetwork network; /* NETWORK, default none */
	gint64 output_limit;   /* OUTPUT_LIMIT in bytes; -1 unset (the global one), 0 none */
	gchar *hash; /* sha256 hex of the .conf content minus WARM_POOL_SIZE ("" if none) */
} QsimVmConfig;

QsimVmConfig *qsim_vm_config_load(const gchar *images_dir, const gchar *config_dir,
                                  const gchar *vm_name, GError **error);
QsimVmConfig *qsim_vm_config_parse(const gchar *images_dir, const gchar *config_path,
                                   const gchar *vm_name, GError **error);
const gchar *qsim_vm_config_hash(QsimVmConfig *self);
const gchar *qsim_vm_network_to_string(QsimVmNetwork network);
void qsim_vm_config_free(QsimVmConfig *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimVmConfig, qsim_vm_config_free)

G_END_DECLS
