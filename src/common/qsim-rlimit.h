#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean qsim_rlimit_raise_nofile(guint64 *out_limit);

G_END_DECLS
