#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <libpq-fe.h>
#include <string.h>

#include "common/qsim-db-url.h"
#include "common/qsim-error.h"

gboolean
qsim_db_url_is_postgres(const gchar *location)
{
	return location != NULL && (g_str_has_prefix(location, "postgresql://") ||
	                            g_str_has_prefix(location, "postgres://"));
}

gboolean
qsim_db_url_check(const gchar *url, GError **error)
{
	gchar *errmsg = NULL;
	PQconninfoOption *opts;

	if (!qsim_db_url_is_postgres(url)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "not a postgresql:// or postgres:// URL");
		return FALSE;
	}
	opts = PQconninfoParse(url, &errmsg);
	if (opts == NULL) {
		g_autofree gchar *msg = g_strdup(errmsg != NULL ? errmsg : "out of memory");

		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "invalid PostgreSQL URL: %s",
		            g_strstrip(g_strdelimit(msg, "\n", ' ')));
		PQfreemem(errmsg);
		return FALSE;
	}
	PQconninfoFree(opts);
	return TRUE;
}

gchar *
qsim_db_url_redact(const gchar *url)
{
	g_autoptr(GString) out = NULL;
	const gchar *scheme_end, *rest, *found;

	if (url == NULL)
		return NULL;
	out = g_string_new(NULL);
	rest = url;
	scheme_end = strstr(url, "://");
	if (scheme_end != NULL) {
		const gchar *auth = scheme_end + 3;
		const gchar *end = auth + strcspn(auth, "/?");
		const gchar *at = NULL;

		/* the last '@' before the path ends the user part */
		for (const gchar *p = auth; p < end; p++)
			if (*p == '@')
				at = p;
		if (at != NULL) {
			const gchar *colon = memchr(auth, ':', at - auth);

			if (colon != NULL) {
				g_string_append_len(out, url, colon + 1 - url);
				g_string_append(out, "***");
				rest = at;
			}
		}
	}
	/* a password=... query parameter (libpq accepts any key=value there) */
	while ((found = strstr(rest, "password=")) != NULL) {
		const gchar *value = found + strlen("password=");

		g_string_append_len(out, rest, value - rest);
		g_string_append(out, "***");
		rest = value + strcspn(value, "&");
	}
	g_string_append(out, rest);
	return g_string_free(g_steal_pointer(&out), FALSE);
}
