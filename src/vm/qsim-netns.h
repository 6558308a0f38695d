#pragma once

#include <glib.h>

G_BEGIN_DECLS

gint qsim_netns_new(GError **error);
gboolean qsim_netns_enter(gint netns_fd);

G_END_DECLS
