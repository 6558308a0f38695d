#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-request-draft.h"

/**
 * qsim_request_draft_new:
 * @vm_name: (nullable): copied; validated later by the store
 * @commands: (nullable): copied; validated later by the store
 *
 * Returns: (transfer full): a new draft; free with qsim_request_draft_free()
 */
QsimRequestDraft *
qsim_request_draft_new(const gchar *vm_name, const gchar *commands, gint64 timeout_s)
{
	QsimRequestDraft *self = g_new0(QsimRequestDraft, 1);

	self->vm_name = g_strdup(vm_name);
	self->commands = g_strdup(commands);
	self->timeout_s = timeout_s;
	return self;
}

void
qsim_request_draft_free(QsimRequestDraft *self)
{
	if (self == NULL)
		return;
	g_free(self->vm_name);
	g_free(self->commands);
	g_strfreev(self->artifact_paths);
	g_free(self->upload_id);
	if (self->request != NULL)
		qsim_request_free(self->request);
	g_clear_error(&self->error);
	g_free(self);
}
