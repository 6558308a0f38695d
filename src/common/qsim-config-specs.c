#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <math.h>
#include <string.h>

#include "common/qsim-accel-mode.h"
#include "common/qsim-config-private.h"
#include "common/qsim-db-url.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-units.h"

#define MAX_TIMEOUT_LIMIT 2592000.0      /* 30 days */
#define OUTPUT_LIMIT_MAX 1099511627776.0 /* 1 TiB: far past any disk a request may fill */

/* clang-format off */
const SettingSpec qsim_config_specs[N_SETTINGS] = {
    [S_DB_PATH] = {"DB_PATH", "database", "path", "--db", SETTING_STRING, "./simulation.db"},
    [S_RETENTION] = {"RETENTION", "database", "retention", NULL, SETTING_DURATION, "0"},
    [S_MIN_FREE_DISK] = {"MIN_FREE_DISK", "database", "min_free_disk", NULL, SETTING_SIZE,
			 "512M"},
    [S_API_HOST] = {"API_HOST", "api", "host", "--host", SETTING_STRING, "127.0.0.1"},
    [S_API_PORT] = {"API_PORT", "api", "port", "--port", SETTING_PORT, "8000", 1, 65535},
    [S_API_WORKERS] = {"API_WORKERS", "api", "workers", NULL, SETTING_INT, "1", 1, 64},
    [S_API_TOKENS] = {"API_TOKENS", "api", "tokens", NULL, SETTING_LIST, "", 0, 0, TRUE, TRUE},
    [S_INSECURE_NO_AUTH] = {"INSECURE_NO_AUTH", "api", "insecure_no_auth", "--insecure-no-auth",
			    SETTING_BOOL, "false"},
    [S_API_MAX_CONNECTIONS] = {"API_MAX_CONNECTIONS", "api", "max_connections", NULL, SETTING_INT,
			       "512", 1, 1000000},
    [S_API_MAX_STREAMS] = {"API_MAX_STREAMS", "api", "max_streams", NULL, SETTING_INT, "128", 1,
			   100000},
    [S_API_HEADER_TIMEOUT] = {"API_HEADER_TIMEOUT", "api", "header_timeout", NULL, SETTING_INT,
			      "30", 1, 3600},
    [S_API_IDLE_TIMEOUT] = {"API_IDLE_TIMEOUT", "api", "idle_timeout", NULL, SETTING_INT, "120", 1,
			    86400},
    [S_API_STREAM_BUFFER_MAX] = {"API_STREAM_BUFFER_MAX", "api", "stream_buffer_max", NULL,
				 SETTING_INT, "1048576", 65536, 268435456},
    [S_ENABLE_CORS] = {"ENABLE_CORS", "api", "enable_cors", NULL, SETTING_BOOL, "false"},
    [S_ALLOWED_ORIGINS] = {"ALLOWED_ORIGINS", "api", "allowed_origins", NULL, SETTING_LIST, "*",
			   0, 0, FALSE, TRUE},
    [S_METRICS_LISTEN] = {"METRICS_LISTEN", "metrics", "listen", NULL, SETTING_LISTEN, "", 0, 0,
			  FALSE, TRUE},
    [S_METRICS_LOOPBACK_NO_AUTH] = {"METRICS_LOOPBACK_NO_AUTH", "metrics", "loopback_no_auth",
				    NULL, SETTING_BOOL, "false"},
    [S_HOST_ID] = {"HOST_ID", "agent", "host_id", NULL, SETTING_HOST_ID, NULL},
    [S_AGENT_COUNT] = {"AGENT_COUNT", "agent", "count", "--agents", SETTING_INT, "2", 1, 256},
    [S_AGENT_POLL_INTERVAL] = {"AGENT_POLL_INTERVAL", "agent", "poll_interval", NULL,
			       SETTING_DOUBLE, "5", 0.01, 3600},
    [S_LEASE_SECONDS] = {"LEASE_SECONDS", "agent", "lease_seconds", NULL, SETTING_INT, "30", 1,
			 86400},
    [S_SHUTDOWN_GRACE] = {"SHUTDOWN_GRACE", "agent", "shutdown_grace", NULL, SETTING_DOUBLE, "10",
			  0, 3600},
    [S_OUTPUT_LIMIT] = {"OUTPUT_LIMIT", "agent", "output_limit", NULL, SETTING_SIZE, "64M", 0,
			OUTPUT_LIMIT_MAX},
    [S_OUTPUT_LIMIT_ACTION] = {"OUTPUT_LIMIT_ACTION", "agent", "output_limit_action", NULL,
			       SETTING_OUTPUT_ACTION, "truncate"},
    [S_MAX_UPLOAD_BYTES] = {"MAX_UPLOAD_BYTES", "api", "max_upload_bytes", NULL, SETTING_SIZE,
			    "1G", 0, OUTPUT_LIMIT_MAX},
    [S_MAX_ARTIFACT_BYTES] = {"MAX_ARTIFACT_BYTES", "agent", "max_artifact_bytes", NULL,
			      SETTING_SIZE, "1G", 0, OUTPUT_LIMIT_MAX},
    [S_MAX_ARTIFACT_FILES] = {"MAX_ARTIFACT_FILES", "agent", "max_artifact_files", NULL,
			      SETTING_INT, "1000", 1, 1000000},
    [S_DEFAULT_TIMEOUT] = {"DEFAULT_TIMEOUT", "agent", "default_timeout", NULL, SETTING_INT, "300",
			   1, MAX_TIMEOUT_LIMIT},
    [S_MAX_TIMEOUT] = {"MAX_TIMEOUT", "agent", "max_timeout", NULL, SETTING_INT, "3600", 1,
		       MAX_TIMEOUT_LIMIT},
    [S_VM_IMAGES_DIR] = {"VM_IMAGES_DIR", "vm", "images_dir", "--images-dir", SETTING_STRING,
			 "./vm_images"},
    [S_VM_CONFIG_DIR] = {"VM_CONFIG_DIR", "vm", "config_dir", "--configs-dir", SETTING_STRING,
			 "./vm_configs"},
    [S_MAX_CONCURRENT_VMS] = {"MAX_CONCURRENT_VMS", "vm", "max_concurrent", "--max-vms",
			      SETTING_INT, "10", 1, 1024},
    [S_MAX_VMS_PER_HOST] = {"MAX_VMS_PER_HOST", "vm", "max_per_host", NULL, SETTING_INT, "0", 0,
			    1024},
    [S_WARM_POOL_SIZE] = {"WARM_POOL_SIZE", "vm", "warm_pool_size", NULL, SETTING_INT, "0", 0,
			  1024},
    [S_RUN_DIR] = {"RUN_DIR", "vm", "run_dir", NULL, SETTING_STRING, NULL},
    [S_STATE_DIR] = {"STATE_DIR", "vm", "state_dir", NULL, SETTING_STRING, NULL},
    [S_QEMU] = {"QEMU", "vm", "qemu", NULL, SETTING_STRING, QSIM_QEMU_BINARY},
    [S_QEMU_IMG] = {"QEMU_IMG", "vm", "qemu_img", NULL, SETTING_STRING, QSIM_QEMU_IMG_BINARY},
    [S_ACCEL] = {"ACCEL", "vm", "accel", "--accel", SETTING_ACCEL, "auto"},
    [S_KVM_PROBE_TIMEOUT] = {"KVM_PROBE_TIMEOUT", "vm", "kvm_probe_timeout", NULL, SETTING_DOUBLE,
			     "5", 0.5, 120},
    [S_KVM_CONSOLE_TIMEOUT] = {"KVM_CONSOLE_TIMEOUT", "vm", "kvm_console_timeout", NULL,
			       SETTING_DOUBLE, "10", 0, 3600},
    [S_KVM_PROBE_KERNEL] = {"KVM_PROBE_KERNEL", "vm", "kvm_probe_kernel", NULL, SETTING_STRING, "",
			    0, 0, FALSE, TRUE},
    [S_KVM_PROBE_INITRD] = {"KVM_PROBE_INITRD", "vm", "kvm_probe_initrd", NULL, SETTING_STRING, "",
			    0, 0, FALSE, TRUE},
    [S_LOG_LEVEL] = {"LOG_LEVEL", "log", "level", "--log-level", SETTING_LOG_LEVEL, "INFO"},
    [S_LOG_FILE] = {"LOG_FILE", "log", "file", NULL, SETTING_STRING, "", 0, 0, FALSE, TRUE},
    [S_DATABASE_URL] = {"DATABASE_URL", "database", "url", NULL, SETTING_DATABASE_URL, "", 0, 0,
			FALSE, TRUE},
    [S_DATABASE_PASSWORD_FILE] = {"DATABASE_PASSWORD_FILE", "database", "password_file", NULL,
				  SETTING_STRING, "", 0, 0, FALSE, TRUE},
};
/* clang-format on */

static const gchar *const log_level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void
qsim_config_value_clear(SettingValue *v)
{
	g_clear_pointer(&v->text, g_free);
	g_clear_pointer(&v->origin, g_free);
	g_clear_pointer(&v->label, g_free);
	g_clear_pointer(&v->list, g_strfreev);
	memset(v, 0, sizeof(*v));
}

gint
qsim_config_lookup(const gchar *name)
{
	for (gint i = 0; i < N_SETTINGS; i++) {
		if (g_strcmp0(qsim_config_specs[i].name, name) == 0)
			return i;
	}
	return -1;
}

gint
qsim_config_lookup_keyfile(const gchar *group, const gchar *key)
{
	for (gint i = 0; i < N_SETTINGS; i++) {
		if (g_strcmp0(qsim_config_specs[i].group, group) == 0 &&
		    g_strcmp0(qsim_config_specs[i].key, key) == 0)
			return i;
	}
	return -1;
}

/* keep UTF-8 readable in messages but make control characters visible */
gchar *
qsim_config_escape(const gchar *text)
{
	gchar high[129];

	for (guint i = 0; i < 128; i++)
		high[i] = (gchar)(0x80 + i);
	high[128] = '\0';
	return g_strescape(text, high);
}

static gboolean
config_parse_int(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *s = g_strstrip(g_strdup(raw));
	gint64 n = 0;

	if (!g_ascii_string_to_signed(s, 10, G_MININT64, G_MAXINT64, &n, NULL)) {
		*problem =
		    g_strdup(spec->type == SETTING_PORT ? "not a port number" : "not an integer");
		return FALSE;
	}
	if (spec->type == SETTING_PORT && (n < spec->min || n > spec->max)) {
		*problem = g_strdup("not a port number");
		return FALSE;
	}
	if (n < spec->min) {
		*problem = g_strdup_printf("must be at least %.0f", spec->min);
		return FALSE;
	}
	if (n > spec->max) {
		*problem = g_strdup_printf("must be at most %.0f", spec->max);
		return FALSE;
	}
	v->i = n;
	v->text = g_strdup_printf("%" G_GINT64_FORMAT, n);
	return TRUE;
}

static gboolean
config_parse_double(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *s = g_strstrip(g_strdup(raw));
	gchar *end = NULL;
	gdouble d;
	gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

	d = g_ascii_strtod(s, &end);
	if (s[0] == '\0' || end == NULL || *end != '\0' || !isfinite(d)) {
		*problem = g_strdup("not a number");
		return FALSE;
	}
	if (d < spec->min) {
		*problem = g_strdup_printf("must be at least %g", spec->min);
		return FALSE;
	}
	if (d > spec->max) {
		*problem = g_strdup_printf("must be at most %g", spec->max);
		return FALSE;
	}
	v->d = d;
	v->text = g_strdup(g_ascii_formatd(buf, sizeof(buf), "%g", d));
	return TRUE;
}

static gboolean
config_parse_bool(const gchar *raw, SettingValue *v, gchar **problem)
{
	static const gchar *const yes[] = {"true", "1", "yes"};
	static const gchar *const no[] = {"false", "0", "no"};
	g_autofree gchar *s = g_strstrip(g_strdup(raw));

	for (guint i = 0; i < G_N_ELEMENTS(yes); i++) {
		if (g_ascii_strcasecmp(s, yes[i]) == 0 || g_ascii_strcasecmp(s, no[i]) == 0) {
			v->b = g_ascii_strcasecmp(s, yes[i]) == 0;
			v->text = g_strdup(v->b ? "true" : "false");
			return TRUE;
		}
	}
	*problem = g_strdup("not a boolean (use true/false, 1/0 or yes/no)");
	return FALSE;
}

static gboolean
config_parse_log_level(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *s = g_strstrip(g_strdup(raw));

	for (guint i = 0; i < G_N_ELEMENTS(log_level_names); i++) {
		if (g_ascii_strcasecmp(s, log_level_names[i]) == 0) {
			v->i = i;
			v->text = g_strdup(log_level_names[i]);
			return TRUE;
		}
	}
	*problem = g_strdup("not a log level (use DEBUG, INFO, WARNING or ERROR)");
	return FALSE;
}

static gboolean
config_parse_accel(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *s = g_strstrip(g_strdup(raw));
	QsimAccelMode mode;

	if (!qsim_accel_mode_from_string(s, &mode)) {
		*problem = g_strdup("not an accelerator (use auto, kvm or tcg)");
		return FALSE;
	}
	v->i = mode;
	v->text = g_strdup(qsim_accel_mode_to_string(mode));
	return TRUE;
}

static gboolean
config_parse_duration(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autoptr(GError) error = NULL;

	if (!qsim_duration_parse(raw, &v->i, &error)) {
		*problem = g_strdup(error->message);
		return FALSE;
	}
	v->text = g_strstrip(g_strdup(raw));
	return TRUE;
}

static gboolean
config_parse_size(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autoptr(GError) error = NULL;
	guint64 bytes = 0;
	/* a row without a range takes any size that fits */
	gdouble max = spec->max > 0 ? spec->max : (gdouble)G_MAXINT64;

	if (!qsim_size_parse(raw, &bytes, &error)) {
		*problem = g_strdup(error->message);
		return FALSE;
	}
	if ((gdouble)bytes < spec->min || (gdouble)bytes > max) {
		*problem = g_strdup_printf("must be between %.0f and %.0f bytes", spec->min, max);
		return FALSE;
	}
	v->i = (gint64)bytes;
	v->text = qsim_config_format_size(v->i);
	return TRUE;
}

static gboolean
config_parse_output_action(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *s = g_strstrip(g_strdup(raw));

	if (g_ascii_strcasecmp(s, "truncate") == 0) {
		v->i = QSIM_OUTPUT_LIMIT_ACTION_TRUNCATE;
	} else if (g_ascii_strcasecmp(s, "fail") == 0) {
		v->i = QSIM_OUTPUT_LIMIT_ACTION_FAIL;
	} else {
		*problem = g_strdup("not an action (use truncate or fail)");
		return FALSE;
	}
	v->text = g_ascii_strdown(s, -1);
	return TRUE;
}

static gboolean
config_parse_list(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
{
	g_auto(GStrv) parts = g_strsplit(raw, ",", -1);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	for (guint i = 0; parts[i] != NULL; i++) {
		const gchar *item = g_strstrip(parts[i]);
		if (item[0] == '\0')
			continue;
		/* items end up in HTTP headers: no blanks or control characters */
		for (const gchar *p = item; *p != '\0'; p++) {
			if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f) {
				*problem = g_strdup("items must be printable ASCII without blanks");
				return FALSE;
			}
		}
		g_strv_builder_add(b, item);
	}
	v->list = g_strv_builder_end(b);
	if (!spec->allow_empty && v->list[0] == NULL) {
		*problem = g_strdup("must not be empty");
		return FALSE;
	}
	v->text = g_strjoinv(",", v->list);
	return TRUE;
}

static gboolean
config_parse_string(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
{
	if (!spec->allow_empty && raw[0] == '\0') {
		*problem = g_strdup("must not be empty");
		return FALSE;
	}
	for (const gchar *p = raw; *p != '\0'; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f) {
			*problem = g_strdup("contains a control character");
			return FALSE;
		}
	}
	v->text = g_strdup(raw);
	return TRUE;
}

/* "" keeps SQLite (DB_PATH); a problem never quotes the URL, which may hold a password */
static gboolean
config_parse_database_url(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *s = g_strstrip(g_strdup(raw));
	g_autoptr(GError) local = NULL;

	if (s[0] != '\0' && !qsim_db_url_check(s, &local)) {
		*problem = g_strdup(local->message);
		return FALSE;
	}
	v->text = g_steal_pointer(&s);
	return TRUE;
}

static gboolean
config_parse_listen(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autofree gchar *host = NULL;
	g_autoptr(GError) local = NULL;
	guint16 port = 0;

	if (raw[0] != '\0' && !qsim_config_split_listen(raw, &host, &port, &local)) {
		*problem = g_strdup(local->message);
		return FALSE;
	}
	v->i = port;
	v->text = g_strdup(raw);
	return TRUE;
}

static gboolean
config_parse_host_id(const gchar *raw, SettingValue *v, gchar **problem)
{
	g_autoptr(GError) error = NULL;

	if (!qsim_host_id_validate(raw, &error)) {
		*problem = g_strdup(error->message);
		return FALSE;
	}
	v->text = g_strdup(raw);
	return TRUE;
}

gboolean
qsim_config_parse_value(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
{
	switch (spec->type) {
	case SETTING_INT:
	case SETTING_PORT:
		return config_parse_int(spec, raw, v, problem);
	case SETTING_DOUBLE:
		return config_parse_double(spec, raw, v, problem);
	case SETTING_BOOL:
		return config_parse_bool(raw, v, problem);
	case SETTING_LOG_LEVEL:
		return config_parse_log_level(raw, v, problem);
	case SETTING_ACCEL:
		return config_parse_accel(raw, v, problem);
	case SETTING_LIST:
		return config_parse_list(spec, raw, v, problem);
	case SETTING_SIZE:
		return config_parse_size(spec, raw, v, problem);
	case SETTING_OUTPUT_ACTION:
		return config_parse_output_action(raw, v, problem);
	case SETTING_HOST_ID:
		return config_parse_host_id(raw, v, problem);
	case SETTING_STRING:
		return config_parse_string(spec, raw, v, problem);
	case SETTING_DURATION:
		return config_parse_duration(raw, v, problem);
	case SETTING_LISTEN:
		return config_parse_listen(raw, v, problem);
	case SETTING_DATABASE_URL:
		return config_parse_database_url(raw, v, problem);
	}
	g_assert_not_reached();
}

/* Returns: whether @name (without prefix) is a known setting */
gboolean
qsim_config_has_setting(const gchar *name)
{
	return qsim_config_lookup(name) >= 0;
}

/**
 * qsim_config_split_listen:
 * @text: "host:port" or "[v6]:port"; the port is required and not 0
 * @host: (out) (transfer full): the host, without brackets
 * @port: (out): the port
 *
 * Returns: %FALSE with %QSIM_ERROR_INVALID when @text is not of that form
 */
gboolean
qsim_config_split_listen(const gchar *text, gchar **host, guint16 *port, GError **error)
{
	const gchar *colon;
	g_autofree gchar *name = NULL;
	guint64 n = 0;

	if (text[0] == '[') {
		const gchar *end = strchr(text, ']');

		if (end == NULL || end[1] != ':') {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "must be [address]:port");
			return FALSE;
		}
		name = g_strndup(text + 1, (gsize)(end - text - 1));
		colon = end + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || strchr(text, ':') != colon) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "must be host:port (an IPv6 address in brackets)");
			return FALSE;
		}
		name = g_strndup(text, (gsize)(colon - text));
	}
	if (name[0] == '\0' || strpbrk(name, " /\t") != NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "names no host");
		return FALSE;
	}
	if (!g_ascii_string_to_unsigned(colon + 1, 10, 1, 65535, &n, NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "must end in a port from 1 to 65535");
		return FALSE;
	}
	*host = g_steal_pointer(&name);
	*port = (guint16)n;
	return TRUE;
}

/**
 * qsim_config_parse_size:
 * @text: digits with an optional K, M, G or T suffix (powers of 1024), as qsim_size_parse()
 * @out: (out): the size in bytes
 *
 * Shared by OUTPUT_LIMIT here and in a VM's .conf, so both read the same.
 *
 * Returns: %TRUE when @text is such a size and fits in a gint64
 */
gboolean
qsim_config_parse_size(const gchar *text, gint64 *out)
{
	guint64 bytes = 0;

	if (!qsim_size_parse(text, &bytes, NULL) || bytes > G_MAXINT64)
		return FALSE;
	*out = (gint64)bytes;
	return TRUE;
}

/**
 * qsim_config_format_size:
 * @bytes: a size
 *
 * Returns: (transfer full): @bytes in the shortest form qsim_config_parse_size() reads
 * back exactly, e.g. "64M" or "1500"
 */
gchar *
qsim_config_format_size(gint64 bytes)
{
	static const gchar suffixes[] = "TGMK";

	for (guint i = 0; i < 4; i++) {
		gint64 unit = (gint64)1 << (10 * (4 - i));

		if (bytes > 0 && bytes % unit == 0)
			return g_strdup_printf("%" G_GINT64_FORMAT "%c", bytes / unit, suffixes[i]);
	}
	return g_strdup_printf("%" G_GINT64_FORMAT, bytes);
}
