#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-vm-slot.h"

static const gchar *const kind_names[QSIM_VM_SLOT_KIND_COUNT] = {
    [QSIM_VM_SLOT_REQUEST] = "request",
    [QSIM_VM_SLOT_WARM] = "warm",
    [QSIM_VM_SLOT_BUILD] = "build",
};

const gchar *
qsim_vm_slot_kind_to_string(QsimVmSlotKind kind)
{
	if ((guint)kind >= QSIM_VM_SLOT_KIND_COUNT)
		return "unknown";
	return kind_names[kind];
}

gboolean
qsim_vm_slot_kind_from_string(const gchar *str, QsimVmSlotKind *out)
{
	for (guint i = 0; str != NULL && i < QSIM_VM_SLOT_KIND_COUNT; i++) {
		if (g_strcmp0(str, kind_names[i]) == 0) {
			if (out != NULL)
				*out = (QsimVmSlotKind)i;
			return TRUE;
		}
	}
	return FALSE;
}

void
qsim_vm_slot_free(QsimVmSlot *self)
{
	if (self == NULL)
		return;
	g_free(self->host);
	g_free(self->owner);
	g_free(self->ref);
	g_free(self);
}
