#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include "common/qsim-accel-verdict.h"

/* Returns: (transfer full): a verdict owning copies of the strings */
QsimAccelVerdict *
qsim_accel_verdict_new(const gchar *host, const gchar *cache_key, gboolean kvm, const gchar *reason,
                       gint64 probe_ms, gint64 probed_at)
{
	QsimAccelVerdict *self = g_new0(QsimAccelVerdict, 1);

	self->host = g_strdup(host);
	self->cache_key = g_strdup(cache_key);
	self->kvm = kvm;
	self->reason = g_strdup(reason);
	self->probe_ms = probe_ms;
	self->probed_at = probed_at;
	return self;
}

QsimAccelVerdict *
qsim_accel_verdict_copy(const QsimAccelVerdict *self)
{
	g_return_val_if_fail(self != NULL, NULL);
	return qsim_accel_verdict_new(self->host, self->cache_key, self->kvm, self->reason,
	                              self->probe_ms, self->probed_at);
}

void
qsim_accel_verdict_free(QsimAccelVerdict *self)
{
	if (self == NULL)
		return;
	g_free(self->host);
	g_free(self->cache_key);
	g_free(self->reason);
	g_free(self);
}
