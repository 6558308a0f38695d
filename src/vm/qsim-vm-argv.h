#pragma once

#include <glib.h>

#include "common/qsim-vm-config.h"

G_BEGIN_DECLS

gboolean qsim_vm_argv_kvm_usable(void);
gchar **qsim_vm_argv_build(const gchar *qemu_binary, const QsimVmConfig *config,
                           const gchar *run_dir, guint16 ssh_host_port, gboolean use_kvm,
                           GError **error);

G_END_DECLS
