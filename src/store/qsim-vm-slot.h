#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimVmSlotKind:
 *
 * What a VM slot's QEMU is for: a request's VM, a warm VM, a template build.
 */
typedef enum {
	QSIM_VM_SLOT_REQUEST,
	QSIM_VM_SLOT_WARM,
	QSIM_VM_SLOT_BUILD,
} QsimVmSlotKind;

#define QSIM_VM_SLOT_KIND_COUNT (QSIM_VM_SLOT_BUILD + 1)

/**
 * QsimVmSlot:
 *
 * One row of the slot table: a QEMU that qsim runs, or decided to start, on
 * @host. @owner is the agent (or builder) id of the process that holds it;
 * @ref the request UUID (request) or the VM name (warm, build).
 */
typedef struct {
	gint64 id;
	gchar *host;
	gchar *owner;
	QsimVmSlotKind kind;
	gchar *ref;
	gint64 claimed_at;
} QsimVmSlot;

/* Returns: (transfer none): "request", "warm", "build"; "unknown" */
const gchar *qsim_vm_slot_kind_to_string(QsimVmSlotKind kind);

gboolean qsim_vm_slot_kind_from_string(const gchar *str, QsimVmSlotKind *out);

void qsim_vm_slot_free(QsimVmSlot *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimVmSlot, qsim_vm_slot_free)

G_END_DECLS
