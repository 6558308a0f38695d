#pragma once

#include <glib.h>

#include "common/qsim-config.h"

G_BEGIN_DECLS

gboolean qsim_log_setup(QsimLogLevel level, const gchar *log_file, GError **error);
GLogWriterOutput qsim_log_writer(GLogLevelFlags log_level, const GLogField *fields, gsize n_fields,
                                 gpointer user_data);
gboolean qsim_log_level_enabled(QsimLogLevel threshold, GLogLevelFlags log_level);

G_END_DECLS
