#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <errno.h>
#include <gio/gnetworking.h>
#include <libsoup/soup.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/qsim-api-auth.h"
#include "api/qsim-api-server-private.h"
#include "common/qsim-error.h"

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

void
qsim_api_server_conn_free(gpointer data)
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
void
qsim_api_server_conn_request_started(SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
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
void
qsim_api_server_unlisten(QsimApiServer *self)
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
	const gchar *host = self->host_override != NULL ? self->host_override
	                                                : qsim_config_get_api_host(self->config);
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
		qsim_api_server_unlisten(self);
		return FALSE;
	}
	local = g_socket_get_local_address(self->listener, NULL);
	if (local != NULL)
		self->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
	g_info("listening on http://%s:%u", host, self->port);
	return TRUE;
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
