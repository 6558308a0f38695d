#pragma once

#include <gio/gio.h>

#include "common/qsim-accel-verdict.h"
#include "common/qsim-config.h"
#include "common/qsim-vm-config.h"
#include "store/qsim-store.h"
#include "vm/qsim-template.h"
#include "vm/qsim-vm.h"

G_BEGIN_DECLS

#define QSIM_TYPE_ACCEL_RESOLVER (qsim_accel_resolver_get_type())
G_DECLARE_FINAL_TYPE(QsimAccelResolver, qsim_accel_resolver, QSIM, ACCEL_RESOLVER, GObject)

/*
 * QsimAccelResolver: decides, for this host, which accelerator each VM runs under.
 *
 * ACCEL=kvm and ACCEL=tcg are taken as said. ACCEL=auto means KVM only where the KVM
 * probe (qsim-kvm-probe.c) booted a test kernel: the verdict is looked up in the store
 * under this host and a cache key, so it is probed once per key and reused across
 * restarts and by every process; processes on one host take a lock file in STATE_DIR so
 * that only one of them probes. Once prepared, choosing is synchronous and cheap.
 */

QsimAccelResolver *qsim_accel_resolver_new(QsimConfig *config, QsimStore *store);
void qsim_accel_resolver_prepare_async(QsimAccelResolver *self, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
gboolean qsim_accel_resolver_prepare_finish(QsimAccelResolver *self, GAsyncResult *result,
                                            GError **error);
gboolean qsim_accel_resolver_prepare_sync(QsimAccelResolver *self, GError **error);
const QsimAccelVerdict *qsim_accel_resolver_get_verdict(QsimAccelResolver *self);
gboolean qsim_accel_resolver_choose(QsimAccelResolver *self, const QsimVmConfig *vm,
                                    gchar **out_why);
gchar *qsim_accel_resolver_describe(QsimAccelResolver *self);

void qsim_accel_resolver_set_default(QsimAccelResolver *resolver);
QsimAccelResolver *qsim_accel_resolver_get_default(void);
gboolean qsim_accel_choose(const QsimVmConfig *vm, gchar **out_why);
guint qsim_accel_console_timeout_ms(const QsimVmConfig *vm);
gboolean qsim_accel_apply_vm(QsimVm *vm, gchar **out_why);
void qsim_accel_apply_template(QsimTemplate *tpl, const QsimVmConfig *vm);

G_END_DECLS
