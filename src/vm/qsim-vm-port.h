#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint16
qsim_vm_port_reserve(GError **error);
void
qsim_vm_port_release(guint16 port);

G_END_DECLS
