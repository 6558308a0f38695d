#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the lowest fd a namespace is kept on: spawns renumber 0..4 before their child setup */
#define QSIM_NETNS_MIN_FD 10

gint qsim_netns_new(GError **error);
gboolean qsim_netns_enter(gint netns_fd);

G_END_DECLS
