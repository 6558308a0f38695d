#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-host-record.h"

QsimHostRecord *
qsim_host_record_new(const gchar *host)
{
	QsimHostRecord *self = g_new0(QsimHostRecord, 1);

	self->host = g_strdup(host);
	self->agent_ids = g_new0(gchar *, 1);
	return self;
}

QsimHostRecord *
qsim_host_record_copy(const QsimHostRecord *self)
{
	QsimHostRecord *copy = g_new0(QsimHostRecord, 1);

	*copy = *self;
	copy->host = g_strdup(self->host);
	copy->version = g_strdup(self->version);
	copy->accel = g_strdup(self->accel);
	copy->agent_ids = g_strdupv(self->agent_ids);
	return copy;
}

gboolean
qsim_host_record_is_stale(const QsimHostRecord *self, gint64 now_ms)
{
	return now_ms - self->heartbeat_at > self->stale_after_ms;
}

void
qsim_host_record_free(QsimHostRecord *self)
{
	if (self == NULL)
		return;
	g_free(self->host);
	g_free(self->version);
	g_free(self->accel);
	g_strfreev(self->agent_ids);
	g_free(self);
}
