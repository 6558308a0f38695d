#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "store/qsim-end-reason.h"

static const gchar *const names[QSIM_END_REASON_COUNT] = {
    [QSIM_END_REASON_SUCCESS] = "success",
    [QSIM_END_REASON_EXIT_NONZERO] = "exit_nonzero",
    [QSIM_END_REASON_SIGNAL] = "signal",
    [QSIM_END_REASON_TIMEOUT] = "timeout",
    [QSIM_END_REASON_BOOT_TIMEOUT] = "boot_timeout",
    [QSIM_END_REASON_BOOT_FAILED] = "boot_failed",
    [QSIM_END_REASON_QEMU_EXIT] = "qemu_exit",
    [QSIM_END_REASON_QEMU_START] = "qemu_start",
    [QSIM_END_REASON_GUEST_LOST] = "guest_lost",
    [QSIM_END_REASON_AGENT_LOST] = "agent_lost",
    [QSIM_END_REASON_SHUTDOWN] = "shutdown",
    [QSIM_END_REASON_OUTPUT_LIMIT] = "output_limit",
    [QSIM_END_REASON_VM_CONFIG] = "vm_config",
    [QSIM_END_REASON_CANCELLED] = "cancelled",
    [QSIM_END_REASON_OTHER] = "other",
};

/* First match wins: a longer text before the shorter one it starts with */
static const struct {
	const gchar *prefix;
	QsimEndReason reason;
} prefixes[] = {
    {QSIM_END_TEXT_TIMEOUT, QSIM_END_REASON_TIMEOUT},
    {QSIM_END_TEXT_BOOT_TIMEOUT, QSIM_END_REASON_BOOT_TIMEOUT},
    {QSIM_END_TEXT_BOOT_FAILED, QSIM_END_REASON_BOOT_FAILED},
    {QSIM_END_TEXT_QEMU_EXIT, QSIM_END_REASON_QEMU_EXIT},
    {QSIM_END_TEXT_QEMU_START, QSIM_END_REASON_QEMU_START},
    {QSIM_END_TEXT_SIGNAL, QSIM_END_REASON_SIGNAL},
    {QSIM_END_TEXT_GUEST_LOST, QSIM_END_REASON_GUEST_LOST},
    {QSIM_END_TEXT_OUTPUT_LIMIT, QSIM_END_REASON_OUTPUT_LIMIT},
    {QSIM_END_TEXT_LEASE_LOST, QSIM_END_REASON_AGENT_LOST},
    {QSIM_END_TEXT_AGENT_LOST, QSIM_END_REASON_AGENT_LOST},
    {QSIM_END_TEXT_SHUTDOWN, QSIM_END_REASON_SHUTDOWN},
};

const gchar *
qsim_end_reason_to_string(QsimEndReason reason)
{
	if ((guint)reason >= QSIM_END_REASON_COUNT)
		return "other";
	return names[reason];
}

/**
 * qsim_end_reason_classify:
 * @status: the final status
 * @has_exit_code: whether the commands ran to an exit code
 * @exit_code: that exit code
 * @error: (nullable): the request's error text as stored
 *
 * The one mapping from how a request ended to its class; the store calls it
 * whenever it writes a final status (qsim_sqlite_store's one UPDATE).
 *
 * Returns: the class; %QSIM_END_REASON_OTHER for an ending it does not know
 */
QsimEndReason
qsim_end_reason_classify(QsimStatus status, gboolean has_exit_code, gint exit_code,
                         const gchar *error)
{
	if (status == QSIM_STATUS_DONE)
		return QSIM_END_REASON_SUCCESS;
	if (status == QSIM_STATUS_CANCELLED)
		return QSIM_END_REASON_CANCELLED;
	/* an exit code (with no other error first) is the commands' own verdict */
	if (has_exit_code && exit_code != 0)
		return QSIM_END_REASON_EXIT_NONZERO;
	for (guint i = 0; error != NULL && i < G_N_ELEMENTS(prefixes); i++) {
		if (g_str_has_prefix(error, prefixes[i].prefix))
			return prefixes[i].reason;
	}
	if (error != NULL && g_str_has_prefix(error, "VM ") &&
	    strstr(error, QSIM_END_TEXT_VM_UNUSABLE) != NULL)
		return QSIM_END_REASON_VM_CONFIG;
	return QSIM_END_REASON_OTHER;
}
