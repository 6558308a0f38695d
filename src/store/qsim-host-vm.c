#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-host-vm.h"

QsimHostVm *
qsim_host_vm_new(const gchar *host, const gchar *vm_name)
{
	QsimHostVm *self = g_new0(QsimHostVm, 1);

	self->host = g_strdup(host);
	self->vm_name = g_strdup(vm_name);
	return self;
}

QsimHostVm *
qsim_host_vm_copy(const QsimHostVm *self)
{
	QsimHostVm *copy = g_new0(QsimHostVm, 1);

	*copy = *self;
	copy->host = g_strdup(self->host);
	copy->vm_name = g_strdup(self->vm_name);
	copy->error = g_strdup(self->error);
	copy->image = g_strdup(self->image);
	copy->format = g_strdup(self->format);
	copy->config = g_strdup(self->config);
	copy->config_hash = g_strdup(self->config_hash);
	copy->image_id = g_strdup(self->image_id);
	copy->accel_mode = g_strdup(self->accel_mode);
	copy->accel_source = g_strdup(self->accel_source);
	return copy;
}

void
qsim_host_vm_free(QsimHostVm *self)
{
	if (self == NULL)
		return;
	g_free(self->host);
	g_free(self->vm_name);
	g_free(self->error);
	g_free(self->image);
	g_free(self->format);
	g_free(self->config);
	g_free(self->config_hash);
	g_free(self->image_id);
	g_free(self->accel_mode);
	g_free(self->accel_source);
	g_free(self);
}
