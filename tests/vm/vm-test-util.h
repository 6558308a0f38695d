#pragma once

#include <gio/gio.h>

#include "guest/qsim-guest.h"
#include "vm/qsim-vm.h"

G_BEGIN_DECLS

/* Shared by the vm-suite tests and the boot benchmark: sync wrappers that run the
 * default main context until an async call reports, bounded so nothing can hang. */

gchar *vm_test_images_dir(void);
QsimVmConfig *vm_test_load_config(const gchar *conf_name, GError **error);
gboolean vm_test_start(QsimVm *vm, GError **error);
gboolean vm_test_wait_ready(QsimVm *vm, GError **error);
gboolean vm_test_shutdown(QsimVm *vm, guint grace_ms, GError **error);
gboolean vm_test_pause(QsimVm *vm, gboolean pause, GError **error);
QsimGuest *vm_test_guest_connect(QsimVm *vm, GError **error);
gboolean vm_test_exec(QsimGuest *guest, const gchar *command, GByteArray *out, GByteArray *err,
                      gint *status, GError **error);
void vm_test_iterate_until(gboolean *flag, guint timeout_s);
gboolean vm_test_skip_without_image(void);

G_END_DECLS
