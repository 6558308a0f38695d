#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "api/qsim-api-auth.h"
#include "api/qsim-api-context.h"
#include "api/qsim-api-cors.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-log-stream.h"
#include "api/qsim-api-routes.h"
#include "api/qsim-api-server.h"
#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"
#include "common/qsim-log.h"

#define QSIM_API_KEEPALIVE_MS 15000
#define QSIM_API_POLL_MS 250
/* pending connections the kernel queues for us; it caps this at somaxconn */
#define QSIM_API_LISTEN_BACKLOG 1024

struct _QsimApiServer {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store;
	SoupServer *soup;
	gchar **tokens;  /* non-empty tokens only; NULL when auth is off */
	gchar **origins; /* NULL when CORS is off */
	gboolean insecure_no_auth;
	guint agents;
	/* the warm pool lives in the agents: known only when they share this process */
	QsimApiWarmPoolFunc warm_pool_func;
	gpointer warm_pool_data;
	guint keepalive_ms;
	guint poll_ms;
	guint16 port;
	gint port_override;    /* -1: use API_PORT */
	GPtrArray *streams;    /* (element-type QsimApiLogStream) live SSE streams */
	QsimApiWriter *writer; /* nullable: POST /requests inserts on the main loop without it */
};

G_DEFINE_TYPE(QsimApiServer, qsim_api_server, G_TYPE_OBJECT)

static const gchar *const start_key = "qsim-api-start";

static gchar **
copy_non_empty(const gchar *const *list)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	guint n = 0;

	for (guint i = 0; list != NULL && list[i] != NULL; i++) {
		g_autofree gchar *s = g_strstrip(g_strdup(list[i]));
		if (s[0] == '\0')
			continue;
		g_strv_builder_add(b, s);
		n++;
	}
	return n > 0 ? g_strv_builder_end(b) : NULL;
}

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
respond_unauthorized(SoupServerMessage *msg)
{
	soup_message_headers_replace(soup_server_message_get_response_headers(msg),
	                             "WWW-Authenticate", "Bearer realm=\"qsim\"");
	qsim_api_error_respond(msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized",
	                       "A valid bearer token is required.");
}

/* Runs once the headers are in and before the body is read: refusing here
 * means an unauthenticated or oversized upload is never buffered. */
static void
early_handler(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
              gpointer user_data)
{
	QsimApiServer *self = user_data;
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	g_autofree gchar *npath = normalize_path(path);

	if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH &&
	    soup_message_headers_get_content_length(h) > QSIM_API_MAX_BODY) {
		qsim_api_error_respond(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
		                       "payload_too_large",
		                       "The request body is larger than 1 MiB.");
		/* the unread body is still on the wire: the connection cannot be reused */
		soup_message_headers_replace(soup_server_message_get_response_headers(msg),
		                             "Connection", "close");
	} else if (self->tokens != NULL && !qsim_api_cors_is_preflight(msg) &&
	           g_strcmp0(npath, "/health") != 0 &&
	           !qsim_api_auth_check((const gchar *const *)self->tokens,
	                                soup_message_headers_get_one(h, "Authorization"))) {
		respond_unauthorized(msg);
	} else {
		return;
	}
	/* browsers can only read an error when it carries the CORS headers */
	if (self->origins != NULL)
		qsim_api_cors_apply(msg, (const gchar *const *)self->origins);
}

static void
server_handler(SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
               gpointer user_data)
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

static void
on_request_started(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	gint64 *start = g_new(gint64, 1);

	*start = g_get_monotonic_time();
	g_object_set_data_full(G_OBJECT(msg), start_key, start, g_free);
}

static void
log_access(SoupServerMessage *msg, const gchar *outcome)
{
	const gint64 *start = g_object_get_data(G_OBJECT(msg), start_key);
	GUri *uri = soup_server_message_get_uri(msg);
	gdouble ms = start != NULL ? (g_get_monotonic_time() - *start) / 1000.0 : 0.0;

	/* no query string: it may carry filter values but never needs to be in a log */
	g_info("%s %s %u %.1fms%s", soup_server_message_get_method(msg),
	       uri != NULL ? g_uri_get_path(uri) : "-", soup_server_message_get_status(msg), ms,
	       outcome);
}

static void
on_request_finished(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	log_access(msg, "");
}

static void
on_request_aborted(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	log_access(msg, " (aborted)");
}

static void
qsim_api_server_dispose(GObject *object)
{
	QsimApiServer *self = QSIM_API_SERVER(object);

	qsim_api_server_stop(self);
	g_clear_object(&self->writer);
	g_clear_object(&self->soup);
	g_clear_object(&self->store);
	g_clear_object(&self->config);
	G_OBJECT_CLASS(qsim_api_server_parent_class)->dispose(object);
}

static void
qsim_api_server_finalize(GObject *object)
{
	QsimApiServer *self = QSIM_API_SERVER(object);

	g_strfreev(self->tokens);
	g_strfreev(self->origins);
	g_ptr_array_unref(self->streams);
	G_OBJECT_CLASS(qsim_api_server_parent_class)->finalize(object);
}

static void
qsim_api_server_class_init(QsimApiServerClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_api_server_dispose;
	object_class->finalize = qsim_api_server_finalize;
}

static void
qsim_api_server_init(QsimApiServer *self)
{
	self->keepalive_ms = QSIM_API_KEEPALIVE_MS;
	self->poll_ms = QSIM_API_POLL_MS;
	self->port_override = -1;
	self->streams = g_ptr_array_new_with_free_func(g_object_unref);
}

/**
 * qsim_api_server_new:
 * @config: the effective configuration; tokens, CORS and limits are read
 *   from it now
 * @store: the store to serve, used on the main loop only
 *
 * Returns: (transfer full): a server that is not listening yet
 */
QsimApiServer *
qsim_api_server_new(QsimConfig *config, QsimStore *store)
{
	QsimApiServer *self = g_object_new(QSIM_TYPE_API_SERVER, NULL);
	g_autofree gchar *server_header = g_strdup_printf("qsimd/%s ", PACKAGE_VERSION);

	self->config = g_object_ref(config);
	self->store = g_object_ref(store);
	self->tokens = copy_non_empty(qsim_config_get_api_tokens(config));
	if (qsim_config_get_enable_cors(config)) {
		self->origins = copy_non_empty(qsim_config_get_allowed_origins(config));
		if (self->origins == NULL)
			self->origins = g_new0(gchar *, 1);
	}
	self->insecure_no_auth = qsim_config_get_insecure_no_auth(config);
	/* a trailing space makes libsoup append its own product token */
	self->soup = soup_server_new("server-header", server_header, NULL);
	soup_server_add_early_handler(self->soup, NULL, early_handler, self, NULL);
	soup_server_add_handler(self->soup, NULL, server_handler, self, NULL);
	/* the access log costs a timestamp and a formatted line per request: only
	 * pay for it when LOG_LEVEL lets it through */
	if (qsim_log_level_enabled(qsim_config_get_log_level(config), G_LOG_LEVEL_INFO)) {
		g_signal_connect(self->soup, "request-started", G_CALLBACK(on_request_started),
		                 self);
		g_signal_connect(self->soup, "request-finished", G_CALLBACK(on_request_finished),
		                 self);
		g_signal_connect(self->soup, "request-aborted", G_CALLBACK(on_request_aborted),
		                 self);
	}
	return self;
}

/*
 * Binds and listens ourselves rather than through soup_server_listen(): that
 * keeps GSocket's default backlog of 10, and a burst of new connections (32
 * clients connecting at once) then overflows the accept queue; the kernel
 * drops SYNs or resets connections and the clients see seconds-long stalls.
 * An IPv6 GSocket is dual-stack, so "::" still serves IPv4 too.
 */
static gboolean
listen_socket(QsimApiServer *self, GInetAddress *addr, guint16 port, GError **error)
{
	g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, port);
	g_autoptr(GSocket) sock = g_socket_new(g_inet_address_get_family(addr),
	                                       G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);

	if (sock == NULL)
		return FALSE;
	g_socket_set_listen_backlog(sock, QSIM_API_LISTEN_BACKLOG);
	if (!g_socket_bind(sock, sa, TRUE, error) || !g_socket_listen(sock, error) ||
	    !soup_server_listen_socket(self->soup, sock, 0, error)) {
		qsim_error_convert(error);
		return FALSE;
	}
	return TRUE;
}

static gboolean
listen_on(QsimApiServer *self, const gchar *host, guint16 port, GError **error)
{
	g_autoptr(GInetAddress) addr = NULL;

	if (g_ascii_strcasecmp(host, "localhost") == 0)
		addr = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	else
		addr = g_inet_address_new_from_string(host);
	if (addr == NULL) {
		g_autoptr(GResolver) resolver = g_resolver_get_default();
		g_autolist(GInetAddress) addrs =
		    g_resolver_lookup_by_name(resolver, host, NULL, error);
		if (addrs == NULL) {
			qsim_error_convert(error);
			g_prefix_error(error, "cannot resolve API_HOST '%s': ", host);
			return FALSE;
		}
		addr = g_object_ref(addrs->data);
	}
	/* one socket for the one address asked for: 127.0.0.1 never also binds ::1 */
	return listen_socket(self, addr, port, error);
}

/**
 * qsim_api_server_listen:
 *
 * Binds API_HOST:API_PORT (port 0 picks a free port, see
 * qsim_api_server_get_port()). Refuses a non-loopback address without API
 * tokens unless INSECURE_NO_AUTH is set, which only logs a warning.
 *
 * Returns: %FALSE with @error set when the address is refused or busy
 */
gboolean
qsim_api_server_listen(QsimApiServer *self, GError **error)
{
	const gchar *host = qsim_config_get_api_host(self->config);
	guint16 port = self->port_override >= 0 ? (guint16)self->port_override
	                                        : qsim_config_get_api_port(self->config);
	GSList *listeners;

	g_return_val_if_fail(QSIM_IS_API_SERVER(self), FALSE);
	if (host == NULL || host[0] == '\0')
		host = "127.0.0.1";
	if (!qsim_api_auth_host_is_loopback(host) && self->tokens == NULL) {
		if (!self->insecure_no_auth) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "refusing to listen on non-loopback address %s without API "
			            "tokens: set API_TOKENS, or pass --insecure-no-auth",
			            host);
			return FALSE;
		}
		g_warning("listening on %s without API tokens: anyone who can reach this "
		          "port can run commands in your VMs",
		          host);
	}
	if (!listen_on(self, host, port, error)) {
		g_prefix_error(error, "cannot listen on %s:%u: ", host, port);
		return FALSE;
	}
	/* from the socket itself: soup_server_get_uris() leaks an address in libsoup 3.2 */
	listeners = soup_server_get_listeners(self->soup);
	if (listeners != NULL) {
		g_autoptr(GSocketAddress) local = g_socket_get_local_address(listeners->data, NULL);
		if (local != NULL)
			self->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
	}
	g_slist_free(listeners);
	g_info("listening on http://%s:%u", host, self->port);
	return TRUE;
}

/**
 * qsim_api_server_set_port:
 * @port: the port to bind instead of API_PORT; 0 picks a free one (tests)
 */
void
qsim_api_server_set_port(QsimApiServer *self, guint16 port)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->port_override = port;
}

/**
 * qsim_api_server_get_stream_count:
 *
 * Returns: the number of live log streams (SSE responses still open)
 */
guint
qsim_api_server_get_stream_count(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), 0);
	return self->streams->len;
}

/**
 * qsim_api_server_get_port:
 *
 * Returns: the bound TCP port, 0 before qsim_api_server_listen()
 */
guint16
qsim_api_server_get_port(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), 0);
	return self->port;
}

/**
 * qsim_api_server_stop:
 *
 * Ends every live log stream and closes the listening sockets and client
 * connections. Safe to call more than once.
 */
void
qsim_api_server_stop(QsimApiServer *self)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	/* closing a stream untracks it: work on a copy */
	while (self->streams->len > 0) {
		g_autoptr(QsimApiLogStream) stream = g_object_ref(self->streams->pdata[0]);
		qsim_api_log_stream_close(stream);
		g_ptr_array_remove(self->streams, stream);
	}
	if (self->soup != NULL)
		soup_server_disconnect(self->soup);
	if (self->writer != NULL)
		qsim_api_writer_stop(self->writer);
	self->port = 0;
}

/**
 * qsim_api_server_enable_writer:
 *
 * Moves the inserts of `POST /requests` to a writer thread with its own
 * connection to DB_PATH, so that commits never stall the main loop. Without
 * it, inserts run on the main loop through the server's store.
 *
 * Returns: %FALSE with @error set when the second connection cannot be opened
 */
gboolean
qsim_api_server_enable_writer(QsimApiServer *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), FALSE);
	if (self->writer != NULL)
		return TRUE;
	self->writer = qsim_api_writer_new(qsim_config_get_db_path(self->config), error);
	return self->writer != NULL;
}

/**
 * qsim_api_server_get_writer:
 *
 * Returns: (transfer none) (nullable) (type QsimApiWriter): the writer, if enabled
 */
gpointer
qsim_api_server_get_writer(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), NULL);
	return self->writer;
}

/**
 * qsim_api_server_set_agent_count:
 *
 * Sets the number of agents this process runs, reported by `GET /stats`
 * when the store sees fewer (idle agents hold no lease).
 */
void
qsim_api_server_set_agent_count(QsimApiServer *self, guint n_agents)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->agents = n_agents;
}

/**
 * qsim_api_server_set_warm_pool_func:
 * @func: (nullable): reports the warm pool of the agents of this process
 * @user_data: (nullable): data for @func; must outlive the server or the next call
 *
 * Set by `qsimd all`; without it `GET /vms` and `GET /stats` report no warm pool counts.
 */
void
qsim_api_server_set_warm_pool_func(QsimApiServer *self, QsimApiWarmPoolFunc func,
                                   gpointer user_data)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->warm_pool_func = func;
	self->warm_pool_data = user_data;
}

/**
 * qsim_api_server_get_warm_pool_counts:
 * @vm_name: (nullable): one VM, or %NULL for all
 * @n_parked: (out): warm VMs ready to hand out
 * @n_starting: (out): warm VMs being restored
 *
 * Returns: %FALSE (and zeros) when this process runs no agents
 */
gboolean
qsim_api_server_get_warm_pool_counts(QsimApiServer *self, const gchar *vm_name, guint *n_parked,
                                     guint *n_starting)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), FALSE);
	*n_parked = 0;
	*n_starting = 0;
	if (self->warm_pool_func == NULL)
		return FALSE;
	self->warm_pool_func(vm_name, n_parked, n_starting, self->warm_pool_data);
	return TRUE;
}

/**
 * qsim_api_server_get_agent_count:
 *
 * Returns: the number set with qsim_api_server_set_agent_count(), 0 by default
 */
guint
qsim_api_server_get_agent_count(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), 0);
	return self->agents;
}

/**
 * qsim_api_server_set_insecure_no_auth:
 *
 * The `--insecure-no-auth` flag: allow a non-loopback address without tokens.
 */
void
qsim_api_server_set_insecure_no_auth(QsimApiServer *self, gboolean insecure)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->insecure_no_auth = insecure;
}

/**
 * qsim_api_server_set_stream_intervals:
 * @keepalive_ms: idle time before an SSE `: keep-alive` comment (15 s by default)
 * @poll_ms: how often streams look for changes made by other processes
 *
 * Tests shorten these; streams opened afterwards use the new values.
 */
void
qsim_api_server_set_stream_intervals(QsimApiServer *self, guint keepalive_ms, guint poll_ms)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->keepalive_ms = MAX(keepalive_ms, 10);
	self->poll_ms = MAX(poll_ms, 10);
}

/**
 * qsim_api_server_get_stream_intervals:
 * @keepalive_ms: (out): the keep-alive interval for new streams
 * @poll_ms: (out): the poll interval for new streams
 */
void
qsim_api_server_get_stream_intervals(QsimApiServer *self, guint *keepalive_ms, guint *poll_ms)
{
	*keepalive_ms = self->keepalive_ms;
	*poll_ms = self->poll_ms;
}

/**
 * qsim_api_server_get_config:
 *
 * Returns: (transfer none): the configuration
 */
QsimConfig *
qsim_api_server_get_config(QsimApiServer *self)
{
	return self->config;
}

/**
 * qsim_api_server_get_store:
 *
 * Returns: (transfer none): the store
 */
QsimStore *
qsim_api_server_get_store(QsimApiServer *self)
{
	return self->store;
}

/**
 * qsim_api_server_track_stream:
 * @stream: a live QsimApiLogStream; the server takes a reference
 *
 * The server keeps each live stream so that qsim_api_server_stop() can end it.
 */
void
qsim_api_server_track_stream(QsimApiServer *self, GObject *stream)
{
	g_ptr_array_add(self->streams, g_object_ref(stream));
}

/**
 * qsim_api_server_untrack_stream:
 * @stream: a stream that ended; the server drops its reference
 */
void
qsim_api_server_untrack_stream(QsimApiServer *self, GObject *stream)
{
	g_ptr_array_remove(self->streams, stream);
}
