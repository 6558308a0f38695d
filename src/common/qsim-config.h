#pragma once

#include <glib-object.h>

#include "common/qsim-accel-mode.h"
#include "common/qsim-config-entry.h"

G_BEGIN_DECLS

#define QSIM_TYPE_CONFIG (qsim_config_get_type())
G_DECLARE_FINAL_TYPE(QsimConfig, qsim_config, QSIM, CONFIG, GObject)

/* LOG_LEVEL values, lowest threshold first. */
typedef enum {
	QSIM_LOG_LEVEL_DEBUG,
	QSIM_LOG_LEVEL_INFO,
	QSIM_LOG_LEVEL_WARNING,
	QSIM_LOG_LEVEL_ERROR,
} QsimLogLevel;

/* OUTPUT_LIMIT_ACTION: what happens to a request whose output reaches OUTPUT_LIMIT */
typedef enum {
	QSIM_OUTPUT_LIMIT_ACTION_TRUNCATE, /* keep running, drain the rest unstored */
	QSIM_OUTPUT_LIMIT_ACTION_FAIL,     /* stop it as failed */
} QsimOutputLimitAction;

QsimConfig *qsim_config_new(void);
gboolean qsim_config_load(QsimConfig *self, const gchar *keyfile_path, gchar **envp,
                          const gchar *dotenv_dir, GError **error);
gboolean qsim_config_set_flag(QsimConfig *self, const gchar *name, const gchar *value,
                              GError **error);
gboolean qsim_config_validate(QsimConfig *self, GError **error);

const gchar *qsim_config_get_keyfile_path(QsimConfig *self);
GPtrArray *qsim_config_list_entries(QsimConfig *self);
gboolean qsim_config_has_setting(const gchar *name);

/* generic access by setting name (e.g. "API_PORT"); typed getters below */
QsimConfigSource qsim_config_get_source(QsimConfig *self, const gchar *name);
const gchar *qsim_config_get_origin(QsimConfig *self, const gchar *name);
const gchar *qsim_config_get_string(QsimConfig *self, const gchar *name);
gint64 qsim_config_get_int(QsimConfig *self, const gchar *name);
gdouble qsim_config_get_double(QsimConfig *self, const gchar *name);
gboolean qsim_config_get_bool(QsimConfig *self, const gchar *name);
const gchar *const *qsim_config_get_list(QsimConfig *self, const gchar *name);

const gchar *qsim_config_get_db_path(QsimConfig *self);
/* DATABASE_URL, "" when unset (then the store is SQLite at DB_PATH) */
const gchar *qsim_config_get_database_url(QsimConfig *self);
const gchar *qsim_config_get_database_password_file(QsimConfig *self);
/* What qsim_store_open() takes: DATABASE_URL when set, else DB_PATH */
const gchar *qsim_config_get_store_location(QsimConfig *self);
/* TRUE when the store is a SQLite file (no DATABASE_URL): file checks apply */
gboolean qsim_config_store_is_sqlite(QsimConfig *self);
const gchar *qsim_config_get_api_host(QsimConfig *self);
gint64 qsim_config_get_retention_ms(QsimConfig *self);
guint64 qsim_config_get_min_free_disk(QsimConfig *self);
guint16 qsim_config_get_api_port(QsimConfig *self);
guint qsim_config_get_api_workers(QsimConfig *self);
guint qsim_config_get_agent_count(QsimConfig *self);
gdouble qsim_config_get_agent_poll_interval(QsimConfig *self);
const gchar *qsim_config_get_vm_images_dir(QsimConfig *self);
const gchar *qsim_config_get_vm_config_dir(QsimConfig *self);
guint qsim_config_get_max_concurrent_vms(QsimConfig *self);
/* MAX_VMS_PER_HOST: QEMUs at once on one HOST_ID, over all its processes; 0 = no cap */
guint qsim_config_get_max_vms_per_host(QsimConfig *self);
/* HOST_ID: this host's name in the shared database; default the host name */
const gchar *qsim_config_get_host_id(QsimConfig *self);
/* WARM_POOL_SIZE: paused restored VMs kept by this process over all VMs, 0 = none */
guint qsim_config_get_warm_pool_size(QsimConfig *self);
guint qsim_config_get_default_timeout(QsimConfig *self);
guint qsim_config_get_max_timeout(QsimConfig *self);
gboolean qsim_config_get_enable_cors(QsimConfig *self);
const gchar *const *qsim_config_get_allowed_origins(QsimConfig *self);
QsimLogLevel qsim_config_get_log_level(QsimConfig *self);
const gchar *qsim_config_get_log_file(QsimConfig *self);
const gchar *const *qsim_config_get_api_tokens(QsimConfig *self);
const gchar *qsim_config_get_run_dir(QsimConfig *self);
const gchar *qsim_config_get_state_dir(QsimConfig *self);
guint qsim_config_get_lease_seconds(QsimConfig *self);
gdouble qsim_config_get_shutdown_grace(QsimConfig *self);
const gchar *qsim_config_get_qemu(QsimConfig *self);
const gchar *qsim_config_get_qemu_img(QsimConfig *self);
gboolean qsim_config_get_insecure_no_auth(QsimConfig *self);
const gchar *qsim_config_get_metrics_listen(QsimConfig *self);
gboolean qsim_config_get_metrics_loopback_no_auth(QsimConfig *self);
gboolean qsim_config_split_listen(const gchar *text, gchar **host, guint16 *port, GError **error);
QsimAccelMode qsim_config_get_accel(QsimConfig *self);
guint qsim_config_get_api_max_connections(QsimConfig *self);
guint qsim_config_get_api_max_streams(QsimConfig *self);
guint qsim_config_get_api_header_timeout(QsimConfig *self);
guint qsim_config_get_api_idle_timeout(QsimConfig *self);
gsize qsim_config_get_api_stream_buffer_max(QsimConfig *self);
guint qsim_config_get_kvm_probe_timeout_ms(QsimConfig *self);
guint qsim_config_get_kvm_console_timeout_ms(QsimConfig *self);
gchar *qsim_config_dup_kvm_probe_kernel(QsimConfig *self);
gchar *qsim_config_dup_kvm_probe_initrd(QsimConfig *self);
guint64 qsim_config_get_output_limit(QsimConfig *self);
QsimOutputLimitAction qsim_config_get_output_limit_action(QsimConfig *self);
guint64 qsim_config_get_max_upload_bytes(QsimConfig *self);
guint64 qsim_config_get_max_artifact_bytes(QsimConfig *self);
guint qsim_config_get_max_artifact_files(QsimConfig *self);

gboolean qsim_config_parse_size(const gchar *text, gint64 *out);
gchar *qsim_config_format_size(gint64 bytes);

G_END_DECLS
