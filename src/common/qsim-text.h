#pragma once

#include <glib.h>

G_BEGIN_DECLS

gchar *qsim_utf8_safe_dup(const gchar *bytes, gssize len, gsize max_chars);

G_END_DECLS
