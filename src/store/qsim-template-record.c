#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-template-record.h"

static const gchar *const state_names[QSIM_TEMPLATE_RECORD_STATE_COUNT] = {
    [QSIM_TEMPLATE_RECORD_NONE] = "none",     [QSIM_TEMPLATE_RECORD_BUILDING] = "building",
    [QSIM_TEMPLATE_RECORD_READY] = "ready",   [QSIM_TEMPLATE_RECORD_STALE] = "stale",
    [QSIM_TEMPLATE_RECORD_FAILED] = "failed",
};

/**
 * qsim_template_record_state_to_string:
 *
 * Returns: (transfer none): the stored and wire name of @state
 */
const gchar *
qsim_template_record_state_to_string(QsimTemplateRecordState state)
{
	if ((guint)state >= QSIM_TEMPLATE_RECORD_STATE_COUNT)
		return "unknown";
	return state_names[state];
}

gboolean
qsim_template_record_state_from_string(const gchar *str, QsimTemplateRecordState *out)
{
	if (str == NULL)
		return FALSE;
	for (guint i = 0; i < QSIM_TEMPLATE_RECORD_STATE_COUNT; i++) {
		if (g_strcmp0(str, state_names[i]) == 0) {
			if (out != NULL)
				*out = (QsimTemplateRecordState)i;
			return TRUE;
		}
	}
	return FALSE;
}

/**
 * qsim_template_record_new:
 *
 * Returns: (transfer full): free with qsim_template_record_free()
 */
QsimTemplateRecord *
qsim_template_record_new(const gchar *vm_name, const gchar *host)
{
	QsimTemplateRecord *self = g_new0(QsimTemplateRecord, 1);

	self->vm_name = g_strdup(vm_name);
	self->host = g_strdup(host);
	self->state = QSIM_TEMPLATE_RECORD_NONE;
	return self;
}

/**
 * qsim_template_record_copy:
 *
 * Returns: (transfer full): a deep copy of @self
 */
QsimTemplateRecord *
qsim_template_record_copy(const QsimTemplateRecord *self)
{
	QsimTemplateRecord *copy = g_new0(QsimTemplateRecord, 1);

	*copy = *self;
	copy->vm_name = g_strdup(self->vm_name);
	copy->host = g_strdup(self->host);
	copy->dir = g_strdup(self->dir);
	copy->image_sha256 = g_strdup(self->image_sha256);
	copy->config_hash = g_strdup(self->config_hash);
	copy->qemu_version = g_strdup(self->qemu_version);
	copy->machine = g_strdup(self->machine);
	copy->reason = g_strdup(self->reason);
	copy->builder = g_strdup(self->builder);
	return copy;
}

void
qsim_template_record_free(QsimTemplateRecord *self)
{
	if (self == NULL)
		return;
	g_free(self->vm_name);
	g_free(self->host);
	g_free(self->dir);
	g_free(self->image_sha256);
	g_free(self->config_hash);
	g_free(self->qemu_version);
	g_free(self->machine);
	g_free(self->reason);
	g_free(self->builder);
	g_free(self);
}
