#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimAccelVerdict:
 *
 * What the KVM probe found on one host: whether KVM booted a test kernel, why not, and
 * how long the probe took. @cache_key names everything that could change the answer
 * (QEMU binary, host kernel and boot, the KVM device and modules, the probe kernel);
 * a verdict whose key differs from the current one is never reused. Stored per host,
 * so every process (and `qsimd api` on another host) sees the same answer.
 */
typedef struct {
	gchar *host;
	gchar *cache_key;
	gboolean kvm;
	gchar *reason;    /* one line: "probe booted in 0.41 s" or why KVM was not used */
	gint64 probe_ms;  /* the probe's wall time, 0 when no probe ran (no device) */
	gint64 probed_at; /* unix ms */
} QsimAccelVerdict;

QsimAccelVerdict *qsim_accel_verdict_new(const gchar *host, const gchar *cache_key, gboolean kvm,
                                         const gchar *reason, gint64 probe_ms, gint64 probed_at);
QsimAccelVerdict *qsim_accel_verdict_copy(const QsimAccelVerdict *self);
void qsim_accel_verdict_free(QsimAccelVerdict *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimAccelVerdict, qsim_accel_verdict_free)

G_END_DECLS
