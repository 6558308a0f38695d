#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

void qsim_api_error_respond(SoupServerMessage *msg, guint status, const gchar *code,
                            const gchar *format, ...) G_GNUC_PRINTF(4, 5);

void qsim_api_error_respond_gerror(SoupServerMessage *msg, const GError *error);

guint qsim_api_error_status_for(const GError *error);

G_END_DECLS
