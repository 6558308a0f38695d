#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include "common/qsim-vm-catalog-entry.h"

/* Returns: (transfer full): an empty, invalid entry for @name */
QsimVmCatalogEntry *
qsim_vm_catalog_entry_new(const gchar *name)
{
	QsimVmCatalogEntry *self = g_new0(QsimVmCatalogEntry, 1);
	self->name = g_strdup(name);
	return self;
}

void
qsim_vm_catalog_entry_free(QsimVmCatalogEntry *self)
{
	if (self == NULL)
		return;
	g_free(self->name);
	g_free(self->image_path);
	g_free(self->format);
	g_free(self->config_path);
	g_free(self->error);
	g_free(self);
}
