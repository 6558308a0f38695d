#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

gboolean qsim_api_early_has_body(SoupServerMessage *msg);

void qsim_api_early_answer(SoupServerMessage *msg);

void qsim_api_early_limit_chunks(SoupServerMessage *msg, gsize max_body,
                                 const gchar *const *origins);

G_END_DECLS
