#pragma once

#include <glib-object.h>
#include <libsoup/soup.h>

#include "common/qsim-config.h"
#include "common/qsim-disk-reserve.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_API_SERVER (qsim_api_server_get_type())
G_DECLARE_FINAL_TYPE(QsimApiServer, qsim_api_server, QSIM, API_SERVER, GObject)

/* Defaults until the settings table carries them (see qsim_api_server_set_limits()). */
#define QSIM_API_DEFAULT_MAX_CONNECTIONS 512
#define QSIM_API_DEFAULT_MAX_STREAMS 128
#define QSIM_API_DEFAULT_HEADER_TIMEOUT_S 30
#define QSIM_API_DEFAULT_IDLE_TIMEOUT_S 120
#define QSIM_API_DEFAULT_STREAM_BUFFER (1024 * 1024)

QsimApiServer *qsim_api_server_new(QsimConfig *config, QsimStore *store);

gboolean qsim_api_server_listen(QsimApiServer *self, GError **error);

void qsim_api_server_set_port(QsimApiServer *self, guint16 port);

guint16 qsim_api_server_get_port(QsimApiServer *self);

guint qsim_api_server_get_stream_count(QsimApiServer *self);

void qsim_api_server_stop(QsimApiServer *self);

gboolean qsim_api_server_enable_writer(QsimApiServer *self, GError **error);

gpointer qsim_api_server_get_writer(QsimApiServer *self);

void qsim_api_server_set_agent_count(QsimApiServer *self, guint n_agents);

guint qsim_api_server_get_agent_count(QsimApiServer *self);

/**
 * QsimApiWarmPoolFunc:
 * @vm_name: (nullable): one VM, or %NULL for all
 * @n_parked: (out): warm VMs ready to hand out
 * @n_starting: (out): warm VMs being restored
 * @user_data: data given to qsim_api_server_set_warm_pool_func()
 */
typedef void (*QsimApiWarmPoolFunc)(const gchar *vm_name, guint *n_parked, guint *n_starting,
                                    gpointer user_data);

/* In-process agents bring their template rows up to date before GET /vms (`qsimd all`) */
void qsim_api_server_set_catalogue_func(QsimApiServer *self, GSourceFunc func, gpointer user_data);
void qsim_api_server_refresh_catalogue(QsimApiServer *self);

void qsim_api_server_set_warm_pool_func(QsimApiServer *self, QsimApiWarmPoolFunc func,
                                        gpointer user_data);

gboolean qsim_api_server_get_warm_pool_counts(QsimApiServer *self, const gchar *vm_name,
                                              guint *n_parked, guint *n_starting);

/**
 * QsimApiAgentsFunc:
 * @n_agents: (out): agents this process runs
 * @n_busy: (out): of which running a request
 * @user_data: data given to qsim_api_server_set_agents_func()
 */
typedef void (*QsimApiAgentsFunc)(guint *n_agents, guint *n_busy, gpointer user_data);

void qsim_api_server_set_agents_func(QsimApiServer *self, QsimApiAgentsFunc func,
                                     gpointer user_data);

gboolean qsim_api_server_get_agents(QsimApiServer *self, guint *n_agents, guint *n_busy);

void qsim_api_server_set_metrics_only(QsimApiServer *self, const gchar *host, guint16 port);

gboolean qsim_api_server_get_metrics_only(QsimApiServer *self);

void qsim_api_server_set_qemu_version(QsimApiServer *self, const gchar *version);

const gchar *qsim_api_server_get_qemu_version(QsimApiServer *self);

void qsim_api_server_set_insecure_no_auth(QsimApiServer *self, gboolean insecure);

void qsim_api_server_set_stream_intervals(QsimApiServer *self, guint keepalive_ms, guint poll_ms);

void qsim_api_server_get_stream_intervals(QsimApiServer *self, guint *keepalive_ms, guint *poll_ms);

QsimConfig *qsim_api_server_get_config(QsimApiServer *self);

QsimStore *qsim_api_server_get_store(QsimApiServer *self);

QsimDiskReserve *qsim_api_server_get_disk_reserve(QsimApiServer *self);

/* Ends a tracked stream when the server stops, so the server need not know its type */
typedef void (*QsimApiStreamCloseFunc)(GObject *stream);

void qsim_api_server_track_stream(QsimApiServer *self, GObject *stream,
                                  QsimApiStreamCloseFunc close_func);

void qsim_api_server_untrack_stream(QsimApiServer *self, GObject *stream);

void qsim_api_server_set_limits(QsimApiServer *self, guint max_connections, guint max_streams,
                                guint header_timeout_s, guint idle_timeout_s);

void qsim_api_server_set_stream_buffer_limit(QsimApiServer *self, gsize bytes);

gsize qsim_api_server_get_stream_buffer_limit(QsimApiServer *self);

guint qsim_api_server_get_max_streams(QsimApiServer *self);

guint qsim_api_server_get_connection_count(QsimApiServer *self);

gboolean qsim_api_server_abort_message(QsimApiServer *self, SoupServerMessage *msg);

G_END_DECLS
