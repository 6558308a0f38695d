#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include "common/qsim-config-private.h"
#include "common/qsim-db-url.h"

static QsimConfigKind
config_kind(SettingType type)
{
	switch (type) {
	case SETTING_INT:
	case SETTING_PORT:
		return QSIM_CONFIG_KIND_INT;
	case SETTING_DOUBLE:
		return QSIM_CONFIG_KIND_DOUBLE;
	case SETTING_BOOL:
		return QSIM_CONFIG_KIND_BOOL;
	case SETTING_LIST:
		return QSIM_CONFIG_KIND_LIST;
	case SETTING_STRING:
	case SETTING_LOG_LEVEL:
	case SETTING_ACCEL:
	case SETTING_DURATION:
	case SETTING_SIZE: /* "64M" reads better than 67108864 */
	case SETTING_OUTPUT_ACTION:
	case SETTING_LISTEN:
	case SETTING_HOST_ID:
	case SETTING_DATABASE_URL:
		return QSIM_CONFIG_KIND_STRING;
	}
	return QSIM_CONFIG_KIND_STRING;
}

/**
 * qsim_config_list_entries:
 *
 * Every setting in a stable order with its source. Secret values are
 * already replaced by `***`, so the result is safe to print or serve.
 *
 * Returns: (transfer container) (element-type QsimConfigEntry): the entries
 */
GPtrArray *
qsim_config_list_entries(QsimConfig *self)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_config_entry_free);

	for (gint i = 0; i < N_SETTINGS; i++) {
		const SettingValue *v = &self->values[i];
		const gchar *text = v->text;
		g_autofree gchar *redacted = NULL;

		if (qsim_config_specs[i].secret && text[0] != '\0')
			text = "***";
		/* the URL stays useful (host, database) without its password */
		if (qsim_config_specs[i].type == SETTING_DATABASE_URL)
			text = redacted = qsim_db_url_redact(text);
		g_ptr_array_add(out, qsim_config_entry_new(qsim_config_specs[i].name, text,
		                                           config_kind(qsim_config_specs[i].type),
		                                           v->source, v->origin,
		                                           qsim_config_specs[i].secret));
	}
	return out;
}

static const SettingValue *
config_value(QsimConfig *self, const gchar *name)
{
	gint idx = qsim_config_lookup(name);

	g_return_val_if_fail(QSIM_IS_CONFIG(self), NULL);
	if (idx < 0) {
		g_critical("unknown setting %s", name);
		return NULL;
	}
	return &self->values[idx];
}

/* Returns: where the effective value of setting @name came from */
QsimConfigSource
qsim_config_get_source(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? v->source : QSIM_CONFIG_SOURCE_DEFAULT;
}

/* Returns: (transfer none) (nullable): file:line, variable or flag the value came from */
const gchar *
qsim_config_get_origin(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? v->origin : NULL;
}

/* Returns: (transfer none): the value as text (unmasked, for any setting type) */
const gchar *
qsim_config_get_string(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? v->text : NULL;
}

/* Returns: the value of an integer setting (0 for other types) */
gint64
qsim_config_get_int(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? v->i : 0;
}

/* Returns: the value of a fractional setting such as AGENT_POLL_INTERVAL */
gdouble
qsim_config_get_double(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? v->d : 0;
}

/* Returns: the value of a boolean setting */
gboolean
qsim_config_get_bool(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? v->b : FALSE;
}

/* Returns: (transfer none): the items of a list setting, never %NULL for list settings */
const gchar *const *
qsim_config_get_list(QsimConfig *self, const gchar *name)
{
	const SettingValue *v = config_value(self, name);
	return v != NULL ? (const gchar *const *)v->list : NULL;
}

/* typed getters: strings are (transfer none) and live as long as @self */
const gchar *
qsim_config_get_db_path(QsimConfig *self)
{
	return self->values[S_DB_PATH].text;
}

/* "" when unset: SQLite at DB_PATH */
const gchar *
qsim_config_get_database_url(QsimConfig *self)
{
	return self->values[S_DATABASE_URL].text;
}

const gchar *
qsim_config_get_database_password_file(QsimConfig *self)
{
	return self->values[S_DATABASE_PASSWORD_FILE].text;
}

const gchar *
qsim_config_get_store_location(QsimConfig *self)
{
	const gchar *url = qsim_config_get_database_url(self);

	return url != NULL && url[0] != '\0' ? url : qsim_config_get_db_path(self);
}

gboolean
qsim_config_store_is_sqlite(QsimConfig *self)
{
	const gchar *url = qsim_config_get_database_url(self);

	return url == NULL || url[0] == '\0';
}

const gchar *
qsim_config_get_api_host(QsimConfig *self)
{
	return self->values[S_API_HOST].text;
}

/* Returns: RETENTION in ms: finished requests older than this are purged; 0 = never */
gint64
qsim_config_get_retention_ms(QsimConfig *self)
{
	return self->values[S_RETENTION].i;
}

/* Returns: MIN_FREE_DISK in bytes: below it, submits are refused; 0 = no reserve */
guint64
qsim_config_get_min_free_disk(QsimConfig *self)
{
	return (guint64)self->values[S_MIN_FREE_DISK].i;
}

guint16
qsim_config_get_api_port(QsimConfig *self)
{
	return (guint16)self->values[S_API_PORT].i;
}

guint
qsim_config_get_api_workers(QsimConfig *self)
{
	return (guint)self->values[S_API_WORKERS].i;
}

guint
qsim_config_get_agent_count(QsimConfig *self)
{
	return (guint)self->values[S_AGENT_COUNT].i;
}

gdouble
qsim_config_get_agent_poll_interval(QsimConfig *self)
{
	return self->values[S_AGENT_POLL_INTERVAL].d;
}

const gchar *
qsim_config_get_vm_images_dir(QsimConfig *self)
{
	return self->values[S_VM_IMAGES_DIR].text;
}

const gchar *
qsim_config_get_vm_config_dir(QsimConfig *self)
{
	return self->values[S_VM_CONFIG_DIR].text;
}

guint
qsim_config_get_max_concurrent_vms(QsimConfig *self)
{
	return (guint)self->values[S_MAX_CONCURRENT_VMS].i;
}

guint
qsim_config_get_max_vms_per_host(QsimConfig *self)
{
	return (guint)self->values[S_MAX_VMS_PER_HOST].i;
}

const gchar *
qsim_config_get_host_id(QsimConfig *self)
{
	return self->values[S_HOST_ID].text;
}

guint
qsim_config_get_warm_pool_size(QsimConfig *self)
{
	return (guint)self->values[S_WARM_POOL_SIZE].i;
}

guint
qsim_config_get_default_timeout(QsimConfig *self)
{
	return (guint)self->values[S_DEFAULT_TIMEOUT].i;
}

guint
qsim_config_get_max_timeout(QsimConfig *self)
{
	return (guint)self->values[S_MAX_TIMEOUT].i;
}

gboolean
qsim_config_get_enable_cors(QsimConfig *self)
{
	return self->values[S_ENABLE_CORS].b;
}

const gchar *const *
qsim_config_get_allowed_origins(QsimConfig *self)
{
	return (const gchar *const *)self->values[S_ALLOWED_ORIGINS].list;
}

QsimLogLevel
qsim_config_get_log_level(QsimConfig *self)
{
	return (QsimLogLevel)self->values[S_LOG_LEVEL].i;
}

/* Returns: (transfer none): the log file, "" for stderr */
const gchar *
qsim_config_get_log_file(QsimConfig *self)
{
	return self->values[S_LOG_FILE].text;
}

/* Returns: (transfer none): the API tokens, an empty vector when none are set */
const gchar *const *
qsim_config_get_api_tokens(QsimConfig *self)
{
	return (const gchar *const *)self->values[S_API_TOKENS].list;
}

const gchar *
qsim_config_get_run_dir(QsimConfig *self)
{
	return self->values[S_RUN_DIR].text;
}

const gchar *
qsim_config_get_state_dir(QsimConfig *self)
{
	return self->values[S_STATE_DIR].text;
}

guint
qsim_config_get_lease_seconds(QsimConfig *self)
{
	return (guint)self->values[S_LEASE_SECONDS].i;
}

gdouble
qsim_config_get_shutdown_grace(QsimConfig *self)
{
	return self->values[S_SHUTDOWN_GRACE].d;
}

const gchar *
qsim_config_get_qemu(QsimConfig *self)
{
	return self->values[S_QEMU].text;
}

const gchar *
qsim_config_get_qemu_img(QsimConfig *self)
{
	return self->values[S_QEMU_IMG].text;
}

/* Returns: (transfer none): METRICS_LISTEN, "" when `qsimd agents` serves no /metrics */
const gchar *
qsim_config_get_metrics_listen(QsimConfig *self)
{
	return self->values[S_METRICS_LISTEN].text;
}

/* Returns: METRICS_LOOPBACK_NO_AUTH: /metrics needs no token from a loopback peer */
gboolean
qsim_config_get_metrics_loopback_no_auth(QsimConfig *self)
{
	return self->values[S_METRICS_LOOPBACK_NO_AUTH].b;
}

gboolean
qsim_config_get_insecure_no_auth(QsimConfig *self)
{
	return self->values[S_INSECURE_NO_AUTH].b;
}

QsimAccelMode
qsim_config_get_accel(QsimConfig *self)
{
	return (QsimAccelMode)self->values[S_ACCEL].i;
}

/* Returns: the probe's deadline in milliseconds */
guint
qsim_config_get_kvm_probe_timeout_ms(QsimConfig *self)
{
	return (guint)(self->values[S_KVM_PROBE_TIMEOUT].d * 1000.0);
}

/* Returns: how long a KVM guest may stay silent on its console, in ms; 0 = no limit */
guint
qsim_config_get_kvm_console_timeout_ms(QsimConfig *self)
{
	return (guint)(self->values[S_KVM_CONSOLE_TIMEOUT].d * 1000.0);
}

/* Returns: (transfer full): the probe's kernel, by default the bundled tiny guest's */
gchar *
qsim_config_dup_kvm_probe_kernel(QsimConfig *self)
{
	const gchar *v = self->values[S_KVM_PROBE_KERNEL].text;

	if (v[0] != '\0')
		return g_strdup(v);
	return g_build_filename(qsim_config_get_vm_images_dir(self), "tiny-vmlinux", NULL);
}

/* Returns: (transfer full): the probe's initrd, by default the bundled tiny guest's */
gchar *
qsim_config_dup_kvm_probe_initrd(QsimConfig *self)
{
	const gchar *v = self->values[S_KVM_PROBE_INITRD].text;

	if (v[0] != '\0')
		return g_strdup(v);
	return g_build_filename(qsim_config_get_vm_images_dir(self), "tiny-initrd.img", NULL);
}

/* API_MAX_CONNECTIONS: open HTTP connections; past it a new one gets a 503 and is closed */
guint
qsim_config_get_api_max_connections(QsimConfig *self)
{
	return (guint)self->values[S_API_MAX_CONNECTIONS].i;
}

/* API_MAX_STREAMS: concurrent SSE log streams */
guint
qsim_config_get_api_max_streams(QsimConfig *self)
{
	return (guint)self->values[S_API_MAX_STREAMS].i;
}

/* API_HEADER_TIMEOUT: seconds a client gets to send a request's headers and body */
guint
qsim_config_get_api_header_timeout(QsimConfig *self)
{
	return (guint)self->values[S_API_HEADER_TIMEOUT].i;
}

/* API_IDLE_TIMEOUT: seconds a kept-alive connection may wait for its next request */
guint
qsim_config_get_api_idle_timeout(QsimConfig *self)
{
	return (guint)self->values[S_API_IDLE_TIMEOUT].i;
}

/* API_STREAM_BUFFER_MAX: unsent bytes an SSE stream may hold before it is cut */
gsize
qsim_config_get_api_stream_buffer_max(QsimConfig *self)
{
	return (gsize)self->values[S_API_STREAM_BUFFER_MAX].i;
}

/* Returns: OUTPUT_LIMIT in bytes, 0 = no limit */
guint64
qsim_config_get_output_limit(QsimConfig *self)
{
	return (guint64)self->values[S_OUTPUT_LIMIT].i;
}

QsimOutputLimitAction
qsim_config_get_output_limit_action(QsimConfig *self)
{
	return (QsimOutputLimitAction)self->values[S_OUTPUT_LIMIT_ACTION].i;
}

/* Returns: MAX_UPLOAD_BYTES, the most a request body with files may carry; 0 = no files */
guint64
qsim_config_get_max_upload_bytes(QsimConfig *self)
{
	return (guint64)self->values[S_MAX_UPLOAD_BYTES].i;
}

/* Returns: MAX_ARTIFACT_BYTES, the most one request's artifacts may hold together */
guint64
qsim_config_get_max_artifact_bytes(QsimConfig *self)
{
	return (guint64)self->values[S_MAX_ARTIFACT_BYTES].i;
}

/* Returns: MAX_ARTIFACT_FILES, the most artifacts (files and symlinks) per request */
guint
qsim_config_get_max_artifact_files(QsimConfig *self)
{
	return (guint)self->values[S_MAX_ARTIFACT_FILES].i;
}
