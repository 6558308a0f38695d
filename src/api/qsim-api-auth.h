#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean qsim_api_auth_check(const gchar *const *tokens, const gchar *authorization);

gboolean qsim_api_auth_host_is_loopback(const gchar *host);

G_END_DECLS
