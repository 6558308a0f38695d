#pragma once

#include <glib.h>

#include "common/qsim-vm-config.h"

G_BEGIN_DECLS

/* Fixed fd numbers in QEMU for what QsimVm passes at spawn (0-2 are stdio). */
#define QSIM_VM_ARGV_QMP_FD 3
#define QSIM_VM_ARGV_INCOMING_FD 4

/**
 * QsimVmArgvOptions:
 * @qmp_fd: QMP on this inherited, already connected socket (QSIM_VM_ARGV_QMP_FD) instead
 *   of listening on `<run_dir>/qmp.sock`; -1 for the socket path
 * @ram_path: (nullable): guest RAM in this file (memory-backend-file) instead of
 *   anonymous memory
 * @ram_shared: share=on: the guest's RAM writes go to @ram_path (a template build);
 *   else share=off, a private copy-on-write mapping that never writes the file
 * @save_running: the migration stream records no run state, so a restore runs the
 *   guest as soon as it is loaded, without a QMP `cont`
 * @incoming: wait for QMP migrate-incoming (`-incoming defer`) instead of booting
 * @vmgenid: (nullable): the VM generation ID (a UUID) for `-device vmgenid`; %NULL for
 *   a fresh random one, which is what every real start wants
 */
typedef struct {
	gint qmp_fd;
	const gchar *ram_path;
	gboolean ram_shared;
	gboolean save_running;
	gboolean incoming;
	const gchar *vmgenid;
} QsimVmArgvOptions;

gboolean qsim_vm_argv_host_has_rdrand(void);
gchar *qsim_vm_argv_netdev(const QsimVmConfig *config, guint16 ssh_host_port);
gchar *qsim_vm_argv_cpu_model(const QsimVmConfig *config, gboolean use_kvm,
                              gboolean host_has_rdrand);
gchar **qsim_vm_argv_build_with(const gchar *qemu_binary, const QsimVmConfig *config,
                                const gchar *run_dir, guint16 ssh_host_port, gboolean use_kvm,
                                const QsimVmArgvOptions *options, GError **error);
gchar **qsim_vm_argv_build(const gchar *qemu_binary, const QsimVmConfig *config,
                           const gchar *run_dir, guint16 ssh_host_port, gboolean use_kvm,
                           GError **error);

G_END_DECLS
