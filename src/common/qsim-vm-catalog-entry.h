#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimVmCatalogEntry:
 *
 * One available VM as `GET /vms` shows it. A VM with a broken config is still
 * listed, with @valid %FALSE and @error saying why.
 */
typedef struct {
	gchar *name;
	gchar *image_path;  /* (nullable) absolute, NULL when no image was found */
	gchar *format;      /* (nullable) "qcow2"/"raw", NULL when unknown */
	guint64 size_bytes; /* size of the image file, 0 when none */
	gchar *config_path; /* (nullable) absolute path of the .conf */
	gboolean valid;
	gchar *error; /* (nullable) why the VM cannot be used */
} QsimVmCatalogEntry;

QsimVmCatalogEntry *qsim_vm_catalog_entry_new(const gchar *name);
void qsim_vm_catalog_entry_free(QsimVmCatalogEntry *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimVmCatalogEntry, qsim_vm_catalog_entry_free)

G_END_DECLS
