#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-log-entry.h"

/**
 * qsim_log_entry_new:
 *
 * Returns: (transfer full): an entry owning a copy of @data
 */
QsimLogEntry *
qsim_log_entry_new(QsimLogType log_type, gint64 timestamp_ms, const guint8 *data, gsize len)
{
	g_autoptr(GBytes) bytes = g_bytes_new(data, len);

	return qsim_log_entry_new_bytes(log_type, timestamp_ms, bytes);
}

/**
 * qsim_log_entry_new_bytes:
 *
 * Returns: (transfer full): an entry holding a new reference on @output
 */
QsimLogEntry *
qsim_log_entry_new_bytes(QsimLogType log_type, gint64 timestamp_ms, GBytes *output)
{
	QsimLogEntry *self = g_new0(QsimLogEntry, 1);

	self->log_type = log_type;
	self->timestamp_ms = timestamp_ms;
	self->output = g_bytes_ref(output);
	return self;
}

/**
 * qsim_log_entry_copy:
 *
 * Returns: (transfer full): a copy; the immutable bytes are shared
 */
QsimLogEntry *
qsim_log_entry_copy(const QsimLogEntry *self)
{
	QsimLogEntry *copy =
	    qsim_log_entry_new_bytes(self->log_type, self->timestamp_ms, self->output);

	copy->seq = self->seq;
	return copy;
}

void
qsim_log_entry_free(QsimLogEntry *self)
{
	if (self == NULL)
		return;
	g_bytes_unref(self->output);
	g_free(self);
}
