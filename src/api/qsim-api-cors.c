#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-cors.h"

static const gchar *
origin_allowed(const gchar *origin, const gchar *const *origins)
{
	for (guint i = 0; origins != NULL && origins[i] != NULL; i++) {
		if (g_strcmp0(origins[i], "*") == 0)
			return "*";
		if (g_ascii_strcasecmp(origins[i], origin) == 0)
			return origin;
	}
	return NULL;
}

/**
 * qsim_api_cors_is_preflight:
 *
 * Returns: %TRUE for a CORS preflight: OPTIONS with `Origin` and
 * `Access-Control-Request-Method`. A bare OPTIONS is not one.
 */
gboolean
qsim_api_cors_is_preflight(SoupServerMessage *msg)
{
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);

	return g_strcmp0(soup_server_message_get_method(msg), "OPTIONS") == 0 &&
	       soup_message_headers_get_one(h, "Origin") != NULL &&
	       soup_message_headers_get_one(h, "Access-Control-Request-Method") != NULL;
}

/**
 * qsim_api_cors_apply:
 * @msg: the message
 * @origins: (array zero-terminated=1): allowed origins; `*` allows any
 *
 * Adds the CORS response headers when the request's `Origin` is allowed; for
 * a preflight it also adds the allowed methods and headers.
 *
 * Returns: %TRUE when the origin was allowed
 */
gboolean
qsim_api_cors_apply(SoupServerMessage *msg, const gchar *const *origins)
{
	SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
	SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
	const gchar *origin = soup_message_headers_get_one(req, "Origin");
	const gchar *allowed;

	if (origin == NULL)
		return FALSE;
	allowed = origin_allowed(origin, origins);
	if (allowed == NULL)
		return FALSE;
	soup_message_headers_replace(resp, "Access-Control-Allow-Origin", allowed);
	/* caches must not hand one origin's answer to another */
	if (g_strcmp0(allowed, "*") != 0)
		soup_message_headers_append(resp, "Vary", "Origin");
	soup_message_headers_replace(resp, "Access-Control-Expose-Headers", "Location, Link");
	if (qsim_api_cors_is_preflight(msg)) {
		soup_message_headers_replace(resp, "Access-Control-Allow-Methods",
		                             "GET, POST, PUT, DELETE, OPTIONS");
		soup_message_headers_replace(resp, "Access-Control-Allow-Headers",
		                             "Authorization, Content-Type, Last-Event-ID");
		soup_message_headers_replace(resp, "Access-Control-Max-Age", "600");
	}
	return TRUE;
}
