#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "api/qsim-api-auth.h"

/* Hashing first makes both sides the same length, so neither the compare
 * loop nor an early length check tells an attacker how long a token is. */
static gboolean
digest_equal(const gchar *a, const gchar *b)
{
	guint8 da[32], db[32];
	gsize la = sizeof da, lb = sizeof db;
	g_autoptr(GChecksum) ca = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GChecksum) cb = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 diff = 0;

	g_checksum_update(ca, (const guchar *)a, -1);
	g_checksum_update(cb, (const guchar *)b, -1);
	g_checksum_get_digest(ca, da, &la);
	g_checksum_get_digest(cb, db, &lb);
	for (gsize i = 0; i < sizeof da; i++)
		diff |= da[i] ^ db[i];
	return diff == 0;
}

/**
 * qsim_api_auth_check:
 * @tokens: (array zero-terminated=1): the accepted tokens, non-empty
 * @authorization: (nullable): the request's `Authorization` header
 *
 * Every configured token is compared, whatever matched earlier, so the time
 * taken does not depend on which token (if any) matched.
 *
 * Returns: %TRUE when @authorization is `Bearer <one of @tokens>`
 */
gboolean
qsim_api_auth_check(const gchar *const *tokens, const gchar *authorization)
{
	const gchar *given;
	gboolean ok = FALSE;

	if (authorization == NULL || g_ascii_strncasecmp(authorization, "Bearer ", 7) != 0)
		return FALSE;
	given = authorization + 7;
	while (*given == ' ')
		given++;
	if (*given == '\0')
		return FALSE;
	for (guint i = 0; tokens != NULL && tokens[i] != NULL; i++)
		ok |= digest_equal(tokens[i], given);
	return ok;
}

/**
 * qsim_api_auth_host_is_loopback:
 * @host: (nullable): the configured listen host
 *
 * Returns: %TRUE for `localhost` and loopback literals; a name or a
 * wildcard such as `0.0.0.0` counts as reachable from outside.
 */
gboolean
qsim_api_auth_host_is_loopback(const gchar *host)
{
	g_autoptr(GInetAddress) addr = NULL;

	if (host == NULL || g_ascii_strcasecmp(host, "localhost") == 0)
		return TRUE;
	addr = g_inet_address_new_from_string(host);
	return addr != NULL && g_inet_address_get_is_loopback(addr);
}
