#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-request-event.h"

/**
 * qsim_request_event_new:
 *
 * Returns: (transfer full): an event owning copies of the strings
 */
QsimRequestEvent *
qsim_request_event_new(gint64 id, const gchar *uuid, const gchar *kind, const gchar *status,
                       gint64 at_ms)
{
	QsimRequestEvent *self = g_new0(QsimRequestEvent, 1);

	self->id = id;
	self->uuid = g_strdup(uuid);
	self->kind = g_strdup(kind);
	self->status = g_strdup(status);
	self->at_ms = at_ms;
	return self;
}

void
qsim_request_event_free(QsimRequestEvent *self)
{
	if (self == NULL)
		return;
	g_free(self->uuid);
	g_free(self->kind);
	g_free(self->status);
	g_free(self);
}
