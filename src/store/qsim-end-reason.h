#pragma once

#include <glib.h>

#include "store/qsim-status.h"

G_BEGIN_DECLS

/*
 * How a request ended, as a bounded class for metrics (never the free-text
 * error itself). The agents write their error messages starting with these
 * texts, and qsim_end_reason_classify() reads them back: the one place that
 * maps an ending to its class. A new way to fail gets a text here, a value
 * below and a row in the classifier's table.
 */
#define QSIM_END_TEXT_TIMEOUT "timed out after"
#define QSIM_END_TEXT_BOOT_TIMEOUT "guest did not become ready within"
#define QSIM_END_TEXT_BOOT_FAILED "guest did not become ready"
#define QSIM_END_TEXT_QEMU_EXIT "qemu exited"
#define QSIM_END_TEXT_QEMU_START "qemu failed to start"
#define QSIM_END_TEXT_SIGNAL "command killed by SIG"
#define QSIM_END_TEXT_GUEST_LOST "lost the guest"
#define QSIM_END_TEXT_OUTPUT_LIMIT "output exceeded OUTPUT_LIMIT"
#define QSIM_END_TEXT_LEASE_LOST "lease lost"
#define QSIM_END_TEXT_AGENT_LOST "agent lost"
#define QSIM_END_TEXT_SHUTDOWN "agent shut down"
/* "VM <name> cannot be used: <why>" */
#define QSIM_END_TEXT_VM_UNUSABLE " cannot be used: "
#define QSIM_END_TEXT_CANCELLED "cancelled by user"

/**
 * QsimEndReason:
 *
 * Stored as its name (requests.end_reason) and used as the `reason` label of
 * qsim_requests_finished_total.
 */
typedef enum {
	QSIM_END_REASON_SUCCESS,      /* done: the commands exited 0 */
	QSIM_END_REASON_EXIT_NONZERO, /* the commands exited non-zero */
	QSIM_END_REASON_SIGNAL,       /* the commands were killed by a signal */
	QSIM_END_REASON_TIMEOUT,      /* the request's timeout */
	QSIM_END_REASON_BOOT_TIMEOUT, /* the guest was not ready within BOOT_TIMEOUT */
	QSIM_END_REASON_BOOT_FAILED,  /* the guest could not be reached otherwise */
	QSIM_END_REASON_QEMU_EXIT,    /* QEMU died while the request ran */
	QSIM_END_REASON_QEMU_START,   /* QEMU did not start */
	QSIM_END_REASON_GUEST_LOST,   /* the SSH session broke */
	QSIM_END_REASON_AGENT_LOST,   /* the agent died or lost its lease */
	QSIM_END_REASON_SHUTDOWN,     /* its agent shut down before it ended */
	QSIM_END_REASON_OUTPUT_LIMIT, /* OUTPUT_LIMIT with OUTPUT_LIMIT_ACTION=fail */
	QSIM_END_REASON_VM_CONFIG,    /* the VM's configuration cannot be used */
	QSIM_END_REASON_CANCELLED,    /* cancelled by a user */
	QSIM_END_REASON_OTHER,        /* anything else (a database or run dir error) */
} QsimEndReason;

#define QSIM_END_REASON_COUNT (QSIM_END_REASON_OTHER + 1)

/* Returns: (transfer none): "success", "exit_nonzero", ... */
const gchar *qsim_end_reason_to_string(QsimEndReason reason);

QsimEndReason qsim_end_reason_classify(QsimStatus status, gboolean has_exit_code, gint exit_code,
                                       const gchar *error);

G_END_DECLS
