#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A job's dead man's switch for its lease. The job's renewals run on the main loop,
 * and a failing database can block that loop for seconds per call (SQLite's busy
 * timeout, a TCP connection to a server that vanished): a check on the main loop
 * could come after the lease ended, when another host may already run the request.
 * This thread needs nothing but the clock: if the lease is not renewed before its
 * end (less a margin), it SIGKILLs the VM's QEMU by itself.
 */
typedef struct _QsimLeaseWatchdog QsimLeaseWatchdog;

/**
 * qsim_lease_watchdog_new:
 * @name: for the log (the request's UUID)
 * @left_ms: how long the lease still runs
 * @margin_ms: fire this long before the lease ends
 *
 * Returns: (transfer full): a running watchdog; free with qsim_lease_watchdog_free()
 */
QsimLeaseWatchdog *qsim_lease_watchdog_new(const gchar *name, gint64 left_ms, gint64 margin_ms);

/* The lease was renewed: it now runs @left_ms more; @pid is the QEMU to kill (0 = none yet) */
void qsim_lease_watchdog_renewed(QsimLeaseWatchdog *self, gint64 left_ms, GPid pid);

/* The QEMU to kill changed (started, or exited: 0), without a renewal */
void qsim_lease_watchdog_set_pid(QsimLeaseWatchdog *self, GPid pid);

/* Returns: TRUE once the lease ran out unrenewed and the QEMU was killed */
gboolean qsim_lease_watchdog_fired(QsimLeaseWatchdog *self);

/* Stops the thread and frees */
void qsim_lease_watchdog_free(QsimLeaseWatchdog *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimLeaseWatchdog, qsim_lease_watchdog_free)

G_END_DECLS
