#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

gboolean qsim_api_cors_apply(SoupServerMessage *msg, const gchar *const *origins);

gboolean qsim_api_cors_is_preflight(SoupServerMessage *msg);

G_END_DECLS
