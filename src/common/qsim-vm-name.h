#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QSIM_VM_NAME_MAX_LEN 64

gboolean qsim_vm_name_validate(const gchar *name, GError **error);

G_END_DECLS
