#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean qsim_dir_check_private(const gchar *path, gboolean create, GError **error);
gboolean qsim_dir_check_db_path(const gchar *db_path, GError **error);

G_END_DECLS
