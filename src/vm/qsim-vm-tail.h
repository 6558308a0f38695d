#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimVmTail:
 *
 * A bounded byte buffer that keeps only the last @capacity bytes appended to
 * it, used for QEMU's stderr so that error messages can quote its end without
 * the daemon's memory growing with a chatty QEMU.
 */
typedef struct _QsimVmTail QsimVmTail;

QsimVmTail *qsim_vm_tail_new(gsize capacity);
void qsim_vm_tail_free(QsimVmTail *self);
void qsim_vm_tail_append(QsimVmTail *self, const guint8 *data, gsize len);
gchar *qsim_vm_tail_to_string(const QsimVmTail *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimVmTail, qsim_vm_tail_free)

G_END_DECLS
