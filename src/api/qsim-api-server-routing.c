#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "api/qsim-api-auth.h"
#include "api/qsim-api-context.h"
#include "api/qsim-api-cors.h"
#include "api/qsim-api-early.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-routes.h"
#include "api/qsim-api-upload.h"
#include "api/qsim-api-server-private.h"
#include "common/qsim-metrics.h"
#include "common/qsim-text.h"

static const gchar *const start_key = "qsim-api-start";

/* "/requests/" is "/requests": clients and proxies disagree on trailing slashes */
static gchar *
normalize_path(const gchar *path)
{
	gsize len = path != NULL ? strlen(path) : 0;

	if (len == 0)
		return g_strdup("/");
	while (len > 1 && path[len - 1] == '/')
		len--;
	return g_strndup(path, len);
}

static void
respond_misdirected(SoupServerMessage *msg)
{
	qsim_api_error_respond(msg, SOUP_STATUS_MISDIRECTED_REQUEST, "invalid_host",
	                       "The Host header does not name this server; use localhost, a "
	                       "loopback address or API_HOST.");
}

/* Splits "name", "name:port", "[v6]" and "[v6]:port"; NULL when malformed. */
static gchar *
host_name_of(const gchar *host)
{
	const gchar *end;
	const gchar *port = NULL;
	g_autofree gchar *name = NULL;
	gsize len;

	if (host[0] == '[') {
		end = strchr(host, ']');
		if (end == NULL)
			return NULL;
		name = g_strndup(host + 1, (gsize)(end - host - 1));
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return NULL;
	} else {
		end = strrchr(host, ':');
		/* two colons is a bare IPv6 literal, which HTTP does not allow */
		if (end != NULL && strchr(host, ':') != end)
			return NULL;
		name = end != NULL ? g_strndup(host, (gsize)(end - host)) : g_strdup(host);
		if (end != NULL)
			port = end + 1;
	}
	for (const gchar *p = port; p != NULL && *p != '\0'; p++) {
		if (!g_ascii_isdigit(*p))
			return NULL;
	}
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		name[len - 1] = '\0';
	return name[0] != '\0' ? g_ascii_strdown(name, -1) : NULL;
}

static gboolean
remote_is_loopback(SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	return remote != NULL && G_IS_INET_SOCKET_ADDRESS(remote) &&
	       g_inet_address_get_is_loopback(
	           g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)));
}

/*
 * DNS rebinding: a page from evil.example re-points its own name at
 * 127.0.0.1 and then calls this API as same-origin, so the browser sends
 * `Host: evil.example`. Only a name can be rebound, never an address literal,
 * so literals pass (a wildcard API_HOST is reached by the machine's
 * address); names must be loopback ones or API_HOST itself.
 */
static gboolean
host_allowed(QsimApiServer *self, SoupServerMessage *msg)
{
	const gchar *host =
	    soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Host");
	const gchar *api_host = self->host_override != NULL
	                            ? self->host_override
	                            : qsim_config_get_api_host(self->config);
	g_autofree gchar *name = NULL;

	if (host == NULL || host[0] == '\0') {
		/* HTTP/1.0 may omit it; then only a local client can be trusted */
		return remote_is_loopback(msg);
	}
	name = host_name_of(host);
	if (name == NULL)
		return FALSE;
	if (g_str_equal(name, "localhost") || g_str_has_suffix(name, ".localhost") ||
	    g_hostname_is_ip_address(name))
		return TRUE;
	return api_host != NULL && api_host[0] != '\0' && g_ascii_strcasecmp(name, api_host) == 0;
}

static void
respond_unauthorized(SoupServerMessage *msg)
{
	soup_message_headers_replace(soup_server_message_get_response_headers(msg),
	                             "WWW-Authenticate", "Bearer realm=\"qsim\"");
	qsim_api_error_respond(msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized",
	                       "A valid bearer token is required.");
}

/* Only what monitors probe: any other method on /health is answered like an
 * unknown path, so a 405 cannot tell a stranger that the path exists. With
 * METRICS_LOOPBACK_NO_AUTH, a scraper on this machine needs no token for
 * /metrics; a remote one still does (and a proxy on this machine makes every
 * client look local: see docs/metrics.md). The dashboard's static files are
 * public too: they hold no data, and the login form must load before there is
 * a token (the page's API calls then carry one). */
static gboolean
is_public(QsimApiServer *self, SoupServerMessage *msg, const gchar *npath)
{
	const gchar *method = soup_server_message_get_method(msg);

	if (g_strcmp0(method, "GET") != 0 && g_strcmp0(method, "HEAD") != 0)
		return FALSE;
	if (g_strcmp0(npath, "/health") == 0)
		return TRUE;
	if (g_strcmp0(npath, "/") == 0 || g_strcmp0(npath, "/ui") == 0 ||
	    g_str_has_prefix(npath, "/ui/"))
		return TRUE;
	return self->metrics_loopback && g_strcmp0(npath, "/metrics") == 0 &&
	       remote_is_loopback(msg);
}

/* Runs once the headers are in and before the body is read: refusing here
 * means an unauthenticated or oversized upload is never buffered. */
void
qsim_api_server_early_handler(SoupServer *soup, SoupServerMessage *msg, const char *path,
                              GHashTable *query, gpointer user_data)
{
	QsimApiServer *self = user_data;
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	g_autofree gchar *npath = normalize_path(path);

	if (self->tokens == NULL && !host_allowed(self, msg)) {
		/* with tokens a rebound page still lacks the token: no check needed */
		respond_misdirected(msg);
	} else if (self->tokens != NULL && qsim_api_cors_is_preflight(msg)) {
		/* A preflight never carries a token but must succeed for the real
		 * request to follow. Answered here, the same for every path and
		 * without `Allow`, it tells a stranger nothing about the routes. */
		soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, NULL);
	} else if (self->tokens != NULL && !is_public(self, msg, npath) &&
	           !qsim_api_auth_check((const gchar *const *)self->tokens,
	                                soup_message_headers_get_one(h, "Authorization"))) {
		respond_unauthorized(msg);
	} else if (g_strcmp0(npath, "/requests") == 0 && qsim_api_upload_is_multipart(msg)) {
		/* files: streamed into the store, up to MAX_UPLOAD_BYTES, answered there on error
		 */
		qsim_api_upload_attach(msg, self->store,
		                       qsim_config_get_max_upload_bytes(self->config),
		                       (const gchar *const *)self->origins);
		return;
	} else if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH &&
	           soup_message_headers_get_content_length(h) > QSIM_API_MAX_BODY) {
		/* after auth: a stranger learns nothing, not even the size limit */
		qsim_api_error_respond(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
		                       "payload_too_large",
		                       "The request body is larger than 1 MiB.");
	} else {
		qsim_api_early_limit_chunks(msg, QSIM_API_MAX_BODY,
		                            (const gchar *const *)self->origins);
		return;
	}
	/* browsers can only read an error when it carries the CORS headers */
	if (self->origins != NULL)
		qsim_api_cors_apply(msg, (const gchar *const *)self->origins);
	/* libsoup would read the whole body before sending this: answer now instead */
	qsim_api_early_answer(msg);
}

void
qsim_api_server_handler(SoupServer *soup, SoupServerMessage *msg, const char *path,
                        GHashTable *query, gpointer user_data)
{
	QsimApiServer *self = user_data;
	const gchar *method = soup_server_message_get_method(msg);
	g_autofree gchar *npath = normalize_path(path);
	g_autofree gchar *param = NULL;
	g_autofree gchar *allow = NULL;
	g_autoptr(QsimApiContext) ctx = NULL;
	const QsimApiRoute *route;

	if (self->origins != NULL)
		qsim_api_cors_apply(msg, (const gchar *const *)self->origins);
	if (self->metrics_only && g_strcmp0(npath, "/metrics") != 0) {
		qsim_api_error_respond(msg, SOUP_STATUS_NOT_FOUND, "not_found",
		                       "There is no resource at this path.");
		return;
	}
	route = qsim_api_routes_match(method, npath, &param, &allow);
	if (g_strcmp0(method, "OPTIONS") == 0 && allow != NULL) {
		soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
		                             allow);
		soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, NULL);
		return;
	}
	if (route == NULL && allow != NULL) {
		soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow",
		                             allow);
		qsim_api_error_respond(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed",
		                       "Method %s is not allowed on %s.", method, npath);
		return;
	}
	if (route == NULL) {
		qsim_api_error_respond(msg, SOUP_STATUS_NOT_FOUND, "not_found",
		                       "There is no resource at this path.");
		return;
	}
	ctx =
	    qsim_api_context_new(self, msg, npath, query != NULL ? g_hash_table_ref(query) : NULL);
	ctx->param = g_steal_pointer(&param);
	route->handler(ctx);
}

void
qsim_api_server_log_started(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	gint64 *start = g_new(gint64, 1);

	*start = g_get_monotonic_time();
	g_object_set_data_full(G_OBJECT(msg), start_key, start, g_free);
}

/* Label values from a fixed set: a client's method or path is never one */
static const gchar *
method_label(const gchar *method)
{
	static const gchar *const known[] = {"GET",    "HEAD",  "POST",   "PUT",
	                                     "DELETE", "PATCH", "OPTIONS"};

	for (guint i = 0; i < G_N_ELEMENTS(known); i++) {
		if (g_strcmp0(method, known[i]) == 0)
			return known[i];
	}
	return "other";
}

static const gchar *
code_label(guint status, gboolean aborted)
{
	static const gchar *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

	if (aborted || status < 100 || status >= 600)
		return "aborted";
	return classes[status / 100 - 1];
}

/* The route template of the path, whatever the method (a 405 or an OPTIONS
 * still names a real route), or "unmatched": never the path itself */
static const gchar *
route_label(SoupServerMessage *msg)
{
	GUri *uri = soup_server_message_get_uri(msg);
	g_autofree gchar *npath = normalize_path(uri != NULL ? g_uri_get_path(uri) : "/");
	const gchar *pattern = qsim_api_routes_template(npath);

	return pattern != NULL ? pattern : "unmatched";
}

static void
observe_request(SoupServerMessage *msg, gboolean aborted)
{
	const gint64 *start = g_object_get_data(G_OBJECT(msg), start_key);
	const gchar *route = route_label(msg);

	qsim_metrics_observe(QSIM_METRIC_HTTP_REQUESTS, 1, route,
	                     method_label(soup_server_message_get_method(msg)),
	                     code_label(soup_server_message_get_status(msg), aborted));
	if (start != NULL)
		qsim_metrics_observe(QSIM_METRIC_HTTP_DURATION,
		                     (g_get_monotonic_time() - *start) / (gdouble)G_USEC_PER_SEC,
		                     route, NULL, NULL);
}

static void
log_access(SoupServerMessage *msg, const gchar *outcome)
{
	const gint64 *start = g_object_get_data(G_OBJECT(msg), start_key);
	GUri *uri = soup_server_message_get_uri(msg);
	gdouble ms = start != NULL ? (g_get_monotonic_time() - *start) / 1000.0 : 0.0;

	const gchar *path = uri != NULL ? g_uri_get_path(uri) : "-";
	/* a client's path may hold any bytes, escape codes included: never raw into a log */
	g_autofree gchar *safe_path = qsim_utf8_safe_dup(path, -1, 256);

	/* no query string: it may carry filter values but never needs to be in a log */
	g_info("%s %s %u %.1fms%s", soup_server_message_get_method(msg), safe_path,
	       soup_server_message_get_status(msg), ms, outcome);
}

void
qsim_api_server_log_finished(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	QsimApiServer *self = user_data;

	observe_request(msg, FALSE);
	if (self->access_log)
		log_access(msg, "");
}

void
qsim_api_server_log_aborted(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	QsimApiServer *self = user_data;

	observe_request(msg, TRUE);
	if (self->access_log)
		log_access(msg, " (aborted)");
}
