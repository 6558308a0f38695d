#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <libsoup/soup.h>

#include "api/qsim-api-server-private.h"
#include "common/qsim-log.h"

G_DEFINE_TYPE(QsimApiServer, qsim_api_server, G_TYPE_OBJECT)

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
	g_free(self->host_override);
	g_free(self->qemu_version);
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
	self->conns =
	    g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, qsim_api_server_conn_free);
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
	/* the reserve guards the SQLite file's file system; a PostgreSQL server's disk is
	 * not on this host */
	self->disk = qsim_disk_reserve_new(
	    qsim_config_get_db_path(config),
	    qsim_config_store_is_sqlite(config) ? qsim_config_get_min_free_disk(config) : 0);
	/* a trailing space makes libsoup append its own product token */
	self->soup = soup_server_new("server-header", server_header, NULL);
	soup_server_add_early_handler(self->soup, NULL, qsim_api_server_early_handler, self, NULL);
	soup_server_add_handler(self->soup, NULL, qsim_api_server_handler, self, NULL);
	g_signal_connect(self->soup, "request-started",
	                 G_CALLBACK(qsim_api_server_conn_request_started), self);
	/* the access log's formatted line is only paid for when LOG_LEVEL lets it
	 * through; the timestamp and route lookup serve the HTTP metrics too */
	self->access_log =
	    qsim_log_level_enabled(qsim_config_get_log_level(config), G_LOG_LEVEL_INFO);
	self->metrics_loopback = qsim_config_get_metrics_loopback_no_auth(config);
	g_signal_connect(self->soup, "request-started", G_CALLBACK(qsim_api_server_log_started),
	                 self);
	g_signal_connect(self->soup, "request-finished", G_CALLBACK(qsim_api_server_log_finished),
	                 self);
	g_signal_connect(self->soup, "request-aborted", G_CALLBACK(qsim_api_server_log_aborted),
	                 self);
	qsim_api_server_set_limits(self, qsim_config_get_api_max_connections(config),
	                           qsim_config_get_api_max_streams(config),
	                           qsim_config_get_api_header_timeout(config),
	                           qsim_config_get_api_idle_timeout(config));
	qsim_api_server_set_stream_buffer_limit(self,
	                                        qsim_config_get_api_stream_buffer_max(config));
	return self;
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

/* where a tracked stream keeps its close function */
static GQuark
stream_close_quark(void)
{
	return g_quark_from_static_string("qsim-api-server-stream-close");
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
		g_autoptr(GObject) stream = g_object_ref(self->streams->pdata[0]);
		QsimApiStreamCloseFunc close_func =
		    g_object_get_qdata(stream, stream_close_quark());

		close_func(stream);
		g_ptr_array_remove(self->streams, stream);
	}
	qsim_api_server_unlisten(self);
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
	self->writer = qsim_api_writer_new(qsim_config_get_store_location(self->config), error);
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
 * qsim_api_server_set_agents_func:
 * @func: (nullable): reports the agents of this process
 * @user_data: (nullable): data for @func; must outlive the server or the next call
 *
 * Set where agents share the process (`qsimd all`, `qsimd agents`): /metrics then
 * exports their number, how many are busy and the VMs this process runs.
 */
void
qsim_api_server_set_agents_func(QsimApiServer *self, QsimApiAgentsFunc func, gpointer user_data)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->agents_func = func;
	self->agents_data = user_data;
}

/**
 * qsim_api_server_get_agents:
 * @n_agents: (out): agents of this process
 * @n_busy: (out): of which running a request
 *
 * Returns: %FALSE (and zeros) when this process runs no agents
 */
gboolean
qsim_api_server_get_agents(QsimApiServer *self, guint *n_agents, guint *n_busy)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), FALSE);
	*n_agents = 0;
	*n_busy = 0;
	if (self->agents_func == NULL)
		return FALSE;
	self->agents_func(n_agents, n_busy, self->agents_data);
	return TRUE;
}

/**
 * qsim_api_server_set_metrics_only:
 * @host: the address to listen on instead of API_HOST
 * @port: the port instead of API_PORT
 *
 * Makes this server `qsimd agents`' METRICS_LISTEN endpoint: it answers
 * /metrics only (every other path is a 404) with this process's own metrics,
 * under the same auth rules as the API. Call before qsim_api_server_listen().
 */
void
qsim_api_server_set_metrics_only(QsimApiServer *self, const gchar *host, guint16 port)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	self->metrics_only = TRUE;
	g_free(self->host_override);
	self->host_override = g_strdup(host);
	self->port_override = port;
}

/* Returns: whether this is a METRICS_LISTEN endpoint */
gboolean
qsim_api_server_get_metrics_only(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), FALSE);
	return self->metrics_only;
}

/**
 * qsim_api_server_set_qemu_version:
 * @version: (nullable): QEMU's version for qsim_build_info, e.g. "7.2.0"
 */
void
qsim_api_server_set_qemu_version(QsimApiServer *self, const gchar *version)
{
	g_return_if_fail(QSIM_IS_API_SERVER(self));
	g_free(self->qemu_version);
	self->qemu_version = g_strdup(version);
}

/* Returns: (nullable): the version set by qsim_api_server_set_qemu_version() */
const gchar *
qsim_api_server_get_qemu_version(QsimApiServer *self)
{
	g_return_val_if_fail(QSIM_IS_API_SERVER(self), NULL);
	return self->qemu_version;
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
 * @close_func: how qsim_api_server_stop() ends @stream
 *
 * The server keeps each live stream so that qsim_api_server_stop() can end it.
 */
void
qsim_api_server_track_stream(QsimApiServer *self, GObject *stream,
                             QsimApiStreamCloseFunc close_func)
{
	g_object_set_qdata(stream, stream_close_quark(), (gpointer)close_func);
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
