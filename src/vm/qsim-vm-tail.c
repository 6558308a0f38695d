#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <string.h>

#include "qsim-vm-tail.h"

struct _QsimVmTail {
	GByteArray *buf;
	gsize capacity;
};

/**
 * qsim_vm_tail_new:
 * @capacity: how many trailing bytes to keep, > 0
 *
 * Returns: (transfer full): a new empty tail, free with qsim_vm_tail_free()
 */
QsimVmTail *
qsim_vm_tail_new(gsize capacity)
{
	QsimVmTail *self;

	g_return_val_if_fail(capacity > 0, NULL);
	self = g_new0(QsimVmTail, 1);
	self->capacity = capacity;
	self->buf = g_byte_array_sized_new(capacity);
	return self;
}

void
qsim_vm_tail_free(QsimVmTail *self)
{
	if (self == NULL)
		return;
	g_byte_array_unref(self->buf);
	g_free(self);
}

/**
 * qsim_vm_tail_append:
 * @self: a #QsimVmTail
 * @data: (array length=len): bytes to add
 * @len: number of bytes
 *
 * Appends @data, dropping the oldest bytes beyond the capacity.
 */
void
qsim_vm_tail_append(QsimVmTail *self, const guint8 *data, gsize len)
{
	if (len >= self->capacity) {
		g_byte_array_set_size(self->buf, 0);
		g_byte_array_append(self->buf, data + (len - self->capacity), self->capacity);
		return;
	}
	if (self->buf->len + len > self->capacity)
		g_byte_array_remove_range(self->buf, 0, self->buf->len + len - self->capacity);
	g_byte_array_append(self->buf, data, len);
}

/**
 * qsim_vm_tail_to_string:
 * @self: a #QsimVmTail
 *
 * Returns: (transfer full): the kept bytes as valid UTF-8 (invalid sequences
 * replaced), without trailing whitespace; empty when nothing was appended
 */
gchar *
qsim_vm_tail_to_string(const QsimVmTail *self)
{
	g_autofree gchar *s =
	    g_utf8_make_valid((const gchar *)self->buf->data, (gssize)self->buf->len);

	return g_strdup(g_strstrip(s));
}
