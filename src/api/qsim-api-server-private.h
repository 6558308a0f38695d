#pragma once

/*
 * QsimApiServer's insides, shared by its files (libsoup's *-private.h convention):
 *   qsim-api-server.c          the object, its settings and getters, stop
 *   qsim-api-server-accept.c   listening, our own accept loop, the connection cap and
 *                              per-connection deadlines
 *   qsim-api-server-routing.c  Host check, auth, body limits, routing, access log
 */

#include "api/qsim-api-server.h"
#include "api/qsim-api-writer.h"

G_BEGIN_DECLS

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
	QsimApiAgentsFunc agents_func;
	gpointer agents_data;
	/* `qsimd agents`' METRICS_LISTEN: only /metrics, on its own address */
	gboolean metrics_only;
	gchar *host_override;
	gboolean metrics_loopback; /* METRICS_LOOPBACK_NO_AUTH */
	gchar *qemu_version;       /* for qsim_build_info; NULL until probed */
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
	gboolean access_log;   /* LOG_LEVEL lets INFO through */
};

/* qsim-api-server-accept.c */
void qsim_api_server_conn_free(gpointer data);
void qsim_api_server_conn_request_started(SoupServer *soup, SoupServerMessage *msg,
                                          gpointer user_data);
void qsim_api_server_unlisten(QsimApiServer *self);

/* qsim-api-server-routing.c */
void qsim_api_server_early_handler(SoupServer *soup, SoupServerMessage *msg, const char *path,
                                   GHashTable *query, gpointer user_data);
void qsim_api_server_handler(SoupServer *soup, SoupServerMessage *msg, const char *path,
                             GHashTable *query, gpointer user_data);
void qsim_api_server_log_started(SoupServer *soup, SoupServerMessage *msg, gpointer user_data);
void qsim_api_server_log_finished(SoupServer *soup, SoupServerMessage *msg, gpointer user_data);
void qsim_api_server_log_aborted(SoupServer *soup, SoupServerMessage *msg, gpointer user_data);

G_END_DECLS
