#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-request.h"

/**
 * qsim_request_new:
 *
 * Returns: (transfer full): an empty pending request; free with qsim_request_free()
 */
QsimRequest *
qsim_request_new(void)
{
	QsimRequest *self = g_new0(QsimRequest, 1);

	self->status = QSIM_STATUS_PENDING;
	self->held_from = QSIM_STATUS_PENDING;
	return self;
}

/**
 * qsim_request_copy:
 *
 * Returns: (transfer full): a deep copy of @self
 */
QsimRequest *
qsim_request_copy(const QsimRequest *self)
{
	QsimRequest *copy = g_new0(QsimRequest, 1);

	*copy = *self;
	copy->uuid = g_strdup(self->uuid);
	copy->vm_name = g_strdup(self->vm_name);
	copy->commands = g_strdup(self->commands);
	copy->error = g_strdup(self->error);
	copy->agent_id = g_strdup(self->agent_id);
	copy->artifact_paths = g_strdupv(self->artifact_paths);
	copy->upload_id = g_strdup(self->upload_id);
	return copy;
}

void
qsim_request_free(QsimRequest *self)
{
	if (self == NULL)
		return;
	g_free(self->uuid);
	g_free(self->vm_name);
	g_free(self->commands);
	g_free(self->error);
	g_free(self->agent_id);
	g_strfreev(self->artifact_paths);
	g_free(self->upload_id);
	g_free(self);
}
