#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint16 qsim_vm_port_reserve(GError **error);
gboolean qsim_vm_port_reserve_exact(guint16 port);
void qsim_vm_port_release(guint16 port);

G_END_DECLS
