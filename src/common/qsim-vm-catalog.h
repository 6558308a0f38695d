#pragma once

#include <glib.h>

#include "common/qsim-vm-catalog-entry.h"

G_BEGIN_DECLS

GPtrArray *qsim_vm_catalog_list(const gchar *images_dir, const gchar *config_dir, GError **error);
QsimVmCatalogEntry *qsim_vm_catalog_lookup(const gchar *images_dir, const gchar *config_dir,
                                           const gchar *name, GError **error);

G_END_DECLS
