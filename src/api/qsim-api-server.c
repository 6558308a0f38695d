#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <errno.h>
#include <gio/gnetworking.h>
#include <libsoup/soup.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/qsim-api-auth.h"
#include "api/qsim-api-context.h"
#include "api/qsim-api-cors.h"
#include "api/qsim-api-early.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-log-stream.h"
#include "api/qsim-api-routes.h"
#include "api/qsim-api-server.h"
#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"
#include "common/qsim-log.h"
#include "common/qsim-text.h"

#define QSIM_API_KEEPALIVE_MS 15000
#define QSIM_API_POLL_MS 250
/* pending connections the kernel queues for us; it caps this at somaxconn */
#define QSIM_API_LISTEN_BACKLOG 1024
/* accepts per wakeup: drains a burst without starving the other sources */
#define QSIM_API_ACCEPT_BATCH 64
/* after a failed accept() (out of descriptors, memory): long enough for
 * closing clients to give descriptors back, short enough to go unnoticed */
#define QSIM_API_ACCEPT_BACKOFF_MS 100
#define QSIM_API_ACCEPT_WARN_INTERVAL_US (10 * G_USEC_PER_SEC)

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
	GSourceFunc catalogue_func;
	gpointer catalogue_data;
	guint keepalive_ms;
	guint poll_ms;
	guint16 port;
	gint port_override;    /* -1: use API_PORT */
	GPtrArray *streams;    /* (element-type QsimApiLogStream) live SSE streams */
	QsimApiWriter *writer; /* nullable: POST /requests inserts on the main loop without it */
	GSocket *listener;     /* ours: libsoup's own accept loop stops on the first error */
	GSource *accept_source;
	guint backoff_id;
	gint64 accept_warned_at;
	guint accept_errors_quiet; /* failures not logged since accept_warned_at */
	GSocket *anchor[2];        /* see listen_anchor() */
	GHashTable *conns; /* (GSocketAddress *remote) -> ApiConn: every open client connection */
	guint max_connections;
	guint max_streams;
	guint header_timeout_s;
	guint idle_timeout_s;
	gsize stream_buffer_max;
	QsimDiskReserve *disk; /* MIN_FREE_DISK on the database's file system */
};

/* One accepted client connection; libsoup owns the HTTP side, we own the
 * deadlines. Looked up by the remote address object that we hand to
 * soup_server_accept_iostream(): libsoup gives that same object back from
 * soup_server_message_get_remote_address(), and we hold a reference to it, so
 * the pointer is unique while the entry lives. */
typedef struct {
	QsimApiServer *server; /* not owned */
	GSocketConnection *conn;
	GSocketAddress *remote;
	guint timer_id;
	GSource *idle_watch; /* between requests, see on_msg_finished() */
	gboolean shut;       /* shut down by a deadline; libsoup closes it on EOF */
} ApiConn;

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
conn_free(gpointer data)
{
	ApiConn *c = data;

	if (c->timer_id != 0)
		g_source_remove(c->timer_id);
	if (c->idle_watch != NULL) {
		g_source_destroy(c->idle_watch);
		g_source_unref(c->idle_watch);
	}
	g_object_unref(c->conn);
	g_object_unref(c->remote);
	g_free(c);
}

static ApiConn *
conn_for(QsimApiServer *self, SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	return remote != NULL ? g_hash_table_lookup(self->conns, remote) : NULL;
}

static gboolean conn_deadline_cb(gpointer user_data);

/* @seconds 0: no deadline (a handler or a stream owns the connection now) */
static void
conn_arm(ApiConn *c, guint seconds)
{
	if (c->timer_id != 0) {
		g_source_remove(c->timer_id);
		c->timer_id = 0;
	}
	if (seconds > 0)
		c->timer_id = g_timeout_add_seconds(seconds, conn_deadline_cb, c);
}

/* shutdown() rather than close(): libsoup still polls the descriptor, and a
 * closed number could be reused by the next accept(). It reads EOF (or fails
 * its write) and closes the connection itself. */
static void
conn_shutdown(ApiConn *c)
{
	g_socket_shutdown(g_socket_connection_get_socket(c->conn), TRUE, TRUE, NULL);
	c->shut = TRUE;
}

/* Frees @c. */
static void
conn_close(ApiConn *c)
{
	g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
	g_hash_table_remove(c->server->conns, c->remote);
}

static gboolean
conn_deadline_cb(gpointer user_data)
{
	ApiConn *c = user_data;

	c->timer_id = 0;
	if (g_io_stream_is_closed(G_IO_STREAM(c->conn))) {
		g_hash_table_remove(c->server->conns, c->remote);
		return G_SOURCE_REMOVE;
	}
	if (!c->shut) {
		g_debug("closing a client connection that sent no complete request in time");
		conn_shutdown(c);
		/* libsoup normally closes it on the EOF: look again soon */
		c->timer_id = g_timeout_add_seconds(1, conn_deadline_cb, c);
		return G_SOURCE_REMOVE;
	}
	/* still open a second after the shutdown: libsoup has let go of it */
	conn_close(c);
	return G_SOURCE_REMOVE;
}

/*
 * libsoup 3.2 leaks a kept-alive connection that the client closes while
 * idle: the EOF ends a message that never started, which has no completion
 * callback, so nothing disconnects it (upstream d20c6601 "server: do not leak
 * idle connections closed by the client"). The descriptor then stays in
 * CLOSE-WAIT for good, which is how a busy API runs out of descriptors. This
 * watch runs after libsoup's own (lower priority) and closes the connection
 * once the peer's EOF is all there is to read.
 */
static gboolean
conn_idle_cb(GSocket *sock, GIOCondition condition, gpointer user_data)
{
	ApiConn *c = user_data;
	gchar byte;
	gssize n = recv(g_socket_get_fd(sock), &byte, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
		return G_SOURCE_CONTINUE;
	g_clear_pointer(&c->idle_watch, g_source_unref);
	conn_close(c);
	return G_SOURCE_REMOVE;
}

static void
conn_watch_idle(ApiConn *c, gboolean on)
{
	if (c->idle_watch != NULL) {
		g_source_destroy(c->idle_watch);
		g_clear_pointer(&c->idle_watch, g_source_unref);
	}
	if (!on)
		return;
	c->idle_watch = g_socket_create_source(g_socket_connection_get_socket(c->conn),
	                                       G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
	g_source_set_priority(c->idle_watch, G_PRIORITY_LOW);
	g_source_set_callback(c->idle_watch, G_SOURCE_FUNC(conn_idle_cb), c, NULL);
	g_source_attach(c->idle_watch, g_main_context_get_thread_default());
}

static gboolean
conn_is_closed(gpointer key, gpointer value, gpointer user_data)
{
	ApiConn *c = value;

	return g_io_stream_is_closed(G_IO_STREAM(c->conn));
}

static void
on_msg_got_headers(SoupServerMessage *msg, gpointer user_data)
{
	QsimApiServer *self = user_data;
	ApiConn *c = conn_for(self, msg);

	/* the body gets the same allowance as the headers: a trickled upload
	 * holds a connection just as long */
	if (c != NULL && !c->shut)
		conn_arm(c, self->header_timeout_s);
}

static void
on_msg_got_body(SoupServerMessage *msg, gpointer user_data)
{
	ApiConn *c = conn_for(user_data, msg);

	if (c != NULL && !c->shut)
		conn_arm(c, 0);
}

/* A kept-alive connection now waits for its next request; libsoup tells us
 * nothing until its first byte arrives (on_conn_request_started()). */
static void
on_msg_finished(SoupServerMessage *msg, gpointer user_data)
{
	QsimApiServer *self = user_data;
	ApiConn *c = conn_for(self, msg);

	if (c == NULL || g_io_stream_is_closed(G_IO_STREAM(c->conn)))
		return;
	if (!c->shut)
		conn_arm(c, self->idle_timeout_s);
	conn_watch_idle(c, TRUE);
}

static void
on_msg_disconnected(SoupServerMessage *msg, gpointer user_data)
{
	QsimApiServer *self = user_data;
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	if (remote != NULL)
		g_hash_table_remove(self->conns, remote);
}

/* For a new connection libsoup starts the first message at once; on a
 * kept-alive one only when the first byte of the next request arrives.
 * Either way the client now owes us complete headers. */
static void
on_conn_request_started(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
	QsimApiServer *self = user_data;
	ApiConn *c = conn_for(self, msg);

	if (c == NULL)
		return;
	conn_watch_idle(c, FALSE);
	if (!c->shut)
		conn_arm(c, self->header_timeout_s);
	g_signal_connect_object(msg, "got-headers", G_CALLBACK(on_msg_got_headers), self, 0);
	g_signal_connect_object(msg, "got-body", G_CALLBACK(on_msg_got_body), self, 0);
	g_signal_connect_object(msg, "finished", G_CALLBACK(on_msg_finished), self, 0);
	g_signal_connect_object(msg, "disconnected", G_CALLBACK(on_msg_disconnected), self, 0);
}

/* Past the cap there is no SoupServerMessage to answer with (handing the
 * socket to libsoup is what the cap prevents), so the 503 is written by
 * hand. It fits in an empty send buffer; the write side is shut first so the
 * client reads the answer and then EOF. */
static void
refuse_connection(GSocket *client)
{
	static const gchar body[] =
	    "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"The server has too many "
	    "open connections, try again later.\"}}";
	g_autofree gchar *resp = g_strdup_printf("HTTP/1.1 503 Service Unavailable\r\n"
	                                         "Content-Type: application/json; charset=utf-8\r\n"
	                                         "Content-Length: %zu\r\n"
	                                         "Retry-After: 1\r\n"
	                                         "Connection: close\r\n\r\n%s",
	                                         strlen(body), body);
	gchar buf[4096];

	g_socket_send_with_blocking(client, resp, strlen(resp), FALSE, NULL, NULL);
	g_socket_shutdown(client, FALSE, TRUE, NULL);
	/* unread request bytes would turn the close into a reset that can
	 * overtake the answer */
	while (g_socket_receive_with_blocking(client, buf, sizeof buf, FALSE, NULL, NULL) > 0)
		;
	g_socket_close(client, NULL);
}

static void
serve_client(QsimApiServer *self, GSocket *client)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketAddress) local = NULL;
	g_autoptr(GSocketAddress) remote = NULL;
	ApiConn *c;

	if (self->max_connections > 0 && g_hash_table_size(self->conns) >= self->max_connections)
		g_hash_table_foreach_remove(self->conns, conn_is_closed, NULL);
	if (self->max_connections > 0 && g_hash_table_size(self->conns) >= self->max_connections) {
		g_debug("refusing a client connection: %u open", g_hash_table_size(self->conns));
		refuse_connection(client);
		return;
	}
	local = g_socket_get_local_address(client, NULL);
	remote = g_socket_get_remote_address(client, NULL);
	if (local == NULL || remote == NULL) {
		/* the client already left */
		g_socket_close(client, NULL);
		return;
	}
	/* libsoup sets this only on sockets it accepts itself */
	g_socket_set_option(client, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
	c = g_new0(ApiConn, 1);
	c->server = self;
	c->conn = g_socket_connection_factory_create_connection(client);
	c->remote = g_object_ref(remote);
	/* before handing it over: libsoup starts the first message synchronously */
	g_hash_table_insert(self->conns, c->remote, c);
	if (!soup_server_accept_iostream(self->soup, G_IO_STREAM(c->conn), local, remote, &error)) {
		g_debug("cannot serve a client connection: %s", error->message);
		g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
		g_hash_table_remove(self->conns, remote);
	}
}

static void arm_accept(QsimApiServer *self);

static gboolean
accept_resume_cb(gpointer user_data)
{
	QsimApiServer *self = user_data;

	self->backoff_id = 0;
	arm_accept(self);
	return G_SOURCE_REMOVE;
}

/* Running out of descriptors or memory is transient (clients close, memory
 * is freed), so it must never end accepting for good. One line per interval:
 * a flood of failures must not also flood the log. */
static void
accept_failed(QsimApiServer *self, const GError *error)
{
	gint64 now = g_get_monotonic_time();

	if (self->accept_warned_at == 0 ||
	    now - self->accept_warned_at >= QSIM_API_ACCEPT_WARN_INTERVAL_US) {
		if (self->accept_errors_quiet > 0)
			g_warning("cannot accept API connections: %s (and %u more failures); "
			          "retrying",
			          error->message, self->accept_errors_quiet);
		else
			g_warning("cannot accept API connections: %s; retrying", error->message);
		self->accept_warned_at = now;
		self->accept_errors_quiet = 0;
	} else {
		self->accept_errors_quiet++;
	}
	if (self->backoff_id == 0)
		self->backoff_id =
		    g_timeout_add(QSIM_API_ACCEPT_BACKOFF_MS, accept_resume_cb, self);
}

static gboolean
accept_cb(GSocket *listener, GIOCondition condition, gpointer user_data)
{
	QsimApiServer *self = user_data;

	for (guint i = 0; i < QSIM_API_ACCEPT_BATCH; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSocket) client = g_socket_accept(listener, NULL, &error);

		if (client != NULL) {
			serve_client(self, client);
			continue;
		}
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			return G_SOURCE_CONTINUE;
		/* a client that reset before we got to it: only that one is lost */
		if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
		    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
			continue;
		accept_failed(self, error);
		g_clear_pointer(&self->accept_source, g_source_unref);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static void
arm_accept(QsimApiServer *self)
{
	if (self->listener == NULL || self->accept_source != NULL)
		return;
	self->accept_source = g_socket_create_source(self->listener, G_IO_IN, NULL);
	g_source_set_callback(self->accept_source, G_SOURCE_FUNC(accept_cb), self, NULL);
	g_source_attach(self->accept_source, g_main_context_get_thread_default());
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
	const gchar *api_host = qsim_config_get_api_host(self->config);
	g_autofree gchar *name = NULL;

	if (host == NULL || host[0] == '\0') {
		/* HTTP/1.0 may omit it; then only a local client can be trusted */
		GSocketAddress *remote = soup_server_message_get_remote_address(msg);

		return remote != NULL && G_IS_INET_SOCKET_ADDRESS(remote) &&
		       g_inet_address_get_is_loopback(
		           g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)));
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
 * unknown path, so a 405 cannot tell a stranger that the path exists. */
static gboolean
is_public(SoupServerMessage *msg, const gchar *npath)
{
	const gchar *method = soup_server_message_get_method(msg);

	return g_strcmp0(npath, "/health") == 0 &&
	       (g_strcmp0(method, "GET") == 0 || g_strcmp0(method, "HEAD") == 0);
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

	if (self->tokens == NULL && !host_allowed(self, msg)) {
		/* with tokens a rebound page still lacks the token: no check needed */
		respond_misdirected(msg);
	} else if (self->tokens != NULL && qsim_api_cors_is_preflight(msg)) {
		/* A preflight never carries a token but must succeed for the real
		 * request to follow. Answered here, the same for every path and
		 * without `Allow`, it tells a stranger nothing about the routes. */
		soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, NULL);
	} else if (self->tokens != NULL && !is_public(msg, npath) &&
	           !qsim_api_auth_check((const gchar *const *)self->tokens,
	                                soup_message_headers_get_one(h, "Authorization"))) {
		respond_unauthorized(msg);
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

	const gchar *path = uri != NULL ? g_uri_get_path(uri) : "-";
	/* a client's path may hold any bytes, escape codes included: never raw into a log */
	g_autofree gchar *safe_path = qsim_utf8_safe_dup(path, -1, 256);

	/* no query string: it may carry filter values but never needs to be in a log */
	g_info("%s %s %u %.1fms%s", soup_server_message_get_method(msg), safe_path,
	       soup_server_message_get_status(msg), ms, outcome);
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
	g_clear_object(&self->disk);
	G_OBJECT_CLASS(qsim_api_server_parent_class)->dispose(object);
}

static void
qsim_api_server_finalize(GObject *object)
{
	QsimApiServer *self = QSIM_API_SERVER(object);

	g_strfreev(self->tokens);
	g_strfreev(self->origins);
	g_ptr_array_unref(self->streams);
	g_hash_table_unref(self->conns);
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
	self->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, conn_free);
	self->max_connections = QSIM_API_DEFAULT_MAX_CONNECTIONS;
	self->max_streams = QSIM_API_DEFAULT_MAX_STREAMS;
	self->header_timeout_s = QSIM_API_DEFAULT_HEADER_TIMEOUT_S;
	self->idle_timeout_s = QSIM_API_DEFAULT_IDLE_TIMEOUT_S;
	self->stream_buffer_max = QSIM_API_DEFAULT_STREAM_BUFFER;
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
	self->disk = qsim_disk_reserve_new(qsim_config_get_db_path(config),
	                                   qsim_config_get_min_free_disk(config));
	/* a trailing space makes libsoup append its own product token */
	self->soup = soup_server_new("server-header", server_header, NULL);
	soup_server_add_early_handler(self->soup, NULL, early_handler, self, NULL);
	soup_server_add_handler(self->soup, NULL, server_handler, self, NULL);
	g_signal_connect(self->soup, "request-started", G_CALLBACK(on_conn_request_started), self);
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
	qsim_api_server_set_limits(self, qsim_config_get_api_max_connections(config),
	                           qsim_config_get_api_max_streams(config),
	                           qsim_config_get_api_header_timeout(config),
	                           qsim_config_get_api_idle_timeout(config));
	qsim_api_server_set_stream_buffer_limit(self,
	                                        qsim_config_get_api_stream_buffer_max(config));
	return self;
}

/*
 * libsoup 3.2 keeps a connection alive after a response only while the
 * server has a listener (request_finished() checks priv->listeners), and
 * the connections we accept ourselves do not count. The anchor is an inert
 * listener: one end of a socket pair whose other end never writes, so
 * libsoup's watch on it never fires and nothing can connect through it.
 */
static gboolean
listen_anchor(QsimApiServer *self, GError **error)
{
	gint fds[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
		gint saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "socketpair: %s",
		            g_strerror(saved));
		return FALSE;
	}
	self->anchor[0] = g_socket_new_from_fd(fds[0], error);
	if (self->anchor[0] == NULL) {
		close(fds[0]);
		close(fds[1]);
		return FALSE;
	}
	self->anchor[1] = g_socket_new_from_fd(fds[1], error);
	if (self->anchor[1] == NULL) {
		close(fds[1]);
		return FALSE;
	}
	return soup_server_listen_socket(self->soup, self->anchor[0], 0, error);
}

/*
 * Binds and listens ourselves rather than through soup_server_listen(): that
 * keeps GSocket's default backlog of 10, and a burst of new connections (32
 * clients connecting at once) then overflows the accept queue; the kernel
 * drops SYNs or resets connections and the clients see seconds-long stalls.
 * We also accept ourselves: libsoup's listener drops its watch on the first
 * failed accept() (EMFILE once the descriptors run out) and never accepts
 * again; ours backs off and retries, and enforces the connection cap.
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
	    !listen_anchor(self, error)) {
		qsim_error_convert(error);
		return FALSE;
	}
	/* accept() must report EAGAIN, not wait for the next client */
	g_socket_set_blocking(sock, FALSE);
	self->listener = g_steal_pointer(&sock);
	arm_accept(self);
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

/* Closes the listening socket and every client connection. */
static void
unlisten(QsimApiServer *self)
{
	if (self->accept_source != NULL) {
		g_source_destroy(self->accept_source);
		g_clear_pointer(&self->accept_source, g_source_unref);
	}
	g_clear_handle_id(&self->backoff_id, g_source_remove);
	if (self->listener != NULL) {
		g_socket_close(self->listener, NULL);
		g_clear_object(&self->listener);
	}
	/* disconnecting a client removes it from conns */
	if (self->soup != NULL)
		soup_server_disconnect(self->soup);
	g_hash_table_remove_all(self->conns);
	g_clear_object(&self->anchor[0]);
	g_clear_object(&self->anchor[1]);
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
	g_autoptr(GSocketAddress) local = NULL;

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
		unlisten(self);
		return FALSE;
	}
	local = g_socket_get_local_address(self->listener, NULL);
	if (local != NULL)
		self->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
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
	unlisten(self);
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
 * qsim_api_server_set_catalogue_func:
 * @func: (nullable): publishes this host's catalogue to the store now
 *
 * In `qsimd all` the host's agents share the process: GET /vms has them bring
 * their template rows in line with the files first, so a touched image shows
 * stale at once. The answer still comes from the store alone.
 */
void
qsim_api_server_set_catalogue_func(QsimApiServer *self, GSourceFunc func, gpointer user_data)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->catalogue_func = func;
	self->catalogue_data = user_data;
}

void
qsim_api_server_refresh_catalogue(QsimApiServer *self)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	if (self->catalogue_func != NULL)
		self->catalogue_func(self->catalogue_data);
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
 * qsim_api_server_get_disk_reserve:
 *
 * Returns: (transfer none): MIN_FREE_DISK on the database's file system
 */
QsimDiskReserve *
qsim_api_server_get_disk_reserve(QsimApiServer *self)
{
	return self->disk;
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

/**
 * qsim_api_server_set_limits:
 * @max_connections: open client connections; past it a new one gets a 503
 *   and is closed (0: no cap)
 * @max_streams: live log streams; past it `?follow=1` gets a 503 (0: no cap)
 * @header_timeout_s: time a new connection has to send a complete request
 *   (headers and body), and a request to send its body after its headers
 *   (0: none)
 * @idle_timeout_s: time a kept-alive connection may wait for its next
 *   request (0: none)
 *
 * Applies to connections accepted afterwards.
 */
void
qsim_api_server_set_limits(QsimApiServer *self, guint max_connections, guint max_streams,
                           guint header_timeout_s, guint idle_timeout_s)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->max_connections = max_connections;
	self->max_streams = max_streams;
	self->header_timeout_s = header_timeout_s;
	self->idle_timeout_s = idle_timeout_s;
}

/**
 * qsim_api_server_set_stream_buffer_limit:
 * @bytes: how much of a log stream may wait unsent for a client that does
 *   not read before the stream is cut (0: no bound)
 */
void
qsim_api_server_set_stream_buffer_limit(QsimApiServer *self, gsize bytes)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->stream_buffer_max = bytes;
}

/**
 * qsim_api_server_get_stream_buffer_limit:
 *
 * Returns: the bound set by qsim_api_server_set_stream_buffer_limit()
 */
gsize
qsim_api_server_get_stream_buffer_limit(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), 0);
	return self->stream_buffer_max;
}

/**
 * qsim_api_server_get_max_streams:
 *
 * Returns: the cap on live log streams, 0 for none
 */
guint
qsim_api_server_get_max_streams(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), 0);
	return self->max_streams;
}

/**
 * qsim_api_server_get_connection_count:
 *
 * Returns: the number of open client connections
 */
guint
qsim_api_server_get_connection_count(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), 0);
	g_hash_table_foreach_remove(self->conns, conn_is_closed, NULL);
	return g_hash_table_size(self->conns);
}

/**
 * qsim_api_server_abort_message:
 * @msg: a message of one of this server's connections
 *
 * Cuts the connection under @msg (a stream whose client stopped reading);
 * libsoup then ends the message as disconnected.
 *
 * Returns: %FALSE when the connection is not known (already gone)
 */
gboolean
qsim_api_server_abort_message(QsimApiServer *self, SoupServerMessage *msg)
{
	ApiConn *c;

	g_return_val_if_fail(QSIM_IS_API_SERVER(self), FALSE);
	c = conn_for(self, msg);
	if (c == NULL)
		return FALSE;
	conn_shutdown(c);
	/* keep looking until libsoup has noticed and closed it */
	conn_arm(c, 1);
	return TRUE;
}
