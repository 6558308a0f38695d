#pragma once

#include <gio/gio.h>

#include "common/qsim-accel-verdict.h"

G_BEGIN_DECLS

/* The line the tiny guest's initramfs prints for qsim.probe=1 (data/guest/initramfs/init). */
#define QSIM_KVM_PROBE_MARKER "QSIM-PROBE-OK"
#define QSIM_KVM_DEFAULT_DEVICE "/dev/kvm"

/**
 * QsimKvmProbeParams:
 * @qemu: the QEMU binary the VMs use
 * @device: the KVM device, normally /dev/kvm (the QSIM_KVM_DEVICE test hook changes it)
 * @kernel: a 64-bit Linux kernel whose initramfs answers qsim.probe=1
 * @initrd: that initramfs
 * @timeout_ms: the probe's deadline: how long the kernel gets to reach the marker
 */
typedef struct {
	const gchar *qemu;
	const gchar *device;
	const gchar *kernel;
	const gchar *initrd;
	guint timeout_ms;
} QsimKvmProbeParams;

gchar *qsim_kvm_probe_cache_key(const QsimKvmProbeParams *params);
gboolean qsim_kvm_probe_check_device(const gchar *device, GError **error);
gchar **qsim_kvm_probe_argv(const QsimKvmProbeParams *params);
void qsim_kvm_probe_run_async(const QsimKvmProbeParams *params, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
void qsim_kvm_probe_boot_async(const QsimKvmProbeParams *params, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
QsimAccelVerdict *qsim_kvm_probe_run_finish(GAsyncResult *result, GError **error);

G_END_DECLS
