#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* DATABASE_URL: the PostgreSQL URLs qsim accepts, checked and shown without secrets */

/* TRUE when @location starts with postgresql:// or postgres:// */
gboolean qsim_db_url_is_postgres(const gchar *location);

/**
 * qsim_db_url_check:
 *
 * Parses @url as libpq does (PQconninfoParse), without connecting.
 *
 * Returns: TRUE when valid; INVALID with libpq's reason otherwise (a reason
 * never quotes the password)
 */
gboolean qsim_db_url_check(const gchar *url, GError **error);

/* Returns: (transfer full): @url with the password of its user part and any
 * password= parameter replaced by "***"; NULL for NULL */
gchar *qsim_db_url_redact(const gchar *url);

G_END_DECLS
