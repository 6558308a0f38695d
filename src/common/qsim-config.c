#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "common/qsim-accel-mode.h"
#include "common/qsim-config.h"
#include "common/qsim-dotenv.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-text.h"
#include "common/qsim-units.h"

/*
 * One table describes every setting: its name, keyfile group and key,
 * command-line flag, type, default and range. Adding a setting is one row
 * here, one enum value and (if others need it) a typed getter.
 */
typedef enum {
	SETTING_STRING,
	SETTING_INT,
	SETTING_PORT,
	SETTING_DOUBLE,
	SETTING_BOOL,
	SETTING_LOG_LEVEL,
	SETTING_LIST,
	SETTING_ACCEL,
	SETTING_DURATION,      /* i = milliseconds; text as written, e.g. 30d */
	SETTING_SIZE,          /* i = bytes, K, M, G or T (binary) suffix; printed short */
	SETTING_OUTPUT_ACTION, /* truncate or fail */
	SETTING_LISTEN,        /* "" (off) or host:port; i = the port */
	SETTING_HOST_ID,       /* see qsim_host_id_validate() */
} SettingType;

typedef struct {
	const gchar *name;
	const gchar *group;
	const gchar *key;
	const gchar *flag; /* how a user passes it on the command line, if at all */
	SettingType type;
	const gchar *def; /* NULL: computed from the environment */
	gdouble min;
	gdouble max;
	gboolean secret;
	gboolean allow_empty;
} SettingSpec;

enum {
	S_DB_PATH,
	S_RETENTION,
	S_MIN_FREE_DISK,
	S_API_HOST,
	S_API_PORT,
	S_API_WORKERS,
	S_API_TOKENS,
	S_INSECURE_NO_AUTH,
	S_API_MAX_CONNECTIONS,
	S_API_MAX_STREAMS,
	S_API_HEADER_TIMEOUT,
	S_API_IDLE_TIMEOUT,
	S_API_STREAM_BUFFER_MAX,
	S_ENABLE_CORS,
	S_ALLOWED_ORIGINS,
	S_METRICS_LISTEN,
	S_METRICS_LOOPBACK_NO_AUTH,
	S_AGENT_COUNT,
	S_HOST_ID,
	S_AGENT_POLL_INTERVAL,
	S_LEASE_SECONDS,
	S_SHUTDOWN_GRACE,
	S_OUTPUT_LIMIT,
	S_OUTPUT_LIMIT_ACTION,
	S_DEFAULT_TIMEOUT,
	S_MAX_TIMEOUT,
	S_VM_IMAGES_DIR,
	S_VM_CONFIG_DIR,
	S_MAX_CONCURRENT_VMS,
	S_MAX_VMS_PER_HOST,
	S_WARM_POOL_SIZE,
	S_RUN_DIR,
	S_STATE_DIR,
	S_QEMU,
	S_QEMU_IMG,
	S_ACCEL,
	S_KVM_PROBE_TIMEOUT,
	S_KVM_CONSOLE_TIMEOUT,
	S_KVM_PROBE_KERNEL,
	S_KVM_PROBE_INITRD,
	S_LOG_LEVEL,
	S_LOG_FILE,
	N_SETTINGS,
};

#define MAX_TIMEOUT_LIMIT 2592000.0      /* 30 days */
#define OUTPUT_LIMIT_MAX 1099511627776.0 /* 1 TiB: far past any disk a request may fill */

/* clang-format off */
static const SettingSpec specs[N_SETTINGS] = {
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
};
/* clang-format on */

static const gchar *const known_groups[] = {"database", "api", "metrics", "agent", "vm", "log"};
static const gchar *const env_prefixes[] = {"SQLITE_SIM_", "QSIM_"}; /* later wins */
static const gchar *const log_level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

typedef struct {
	gchar *text; /* normalised value as printed */
	QsimConfigSource source;
	gchar *origin; /* file:line, variable or flag; NULL for defaults */
	gchar *label;  /* the name as the user wrote it, for messages */
	gint64 i;
	gdouble d;
	gboolean b;
	gchar **list;
} SettingValue;

struct _QsimConfig {
	GObject parent_instance;
	SettingValue values[N_SETTINGS];
	gchar *keyfile_path;
	gboolean loaded;
};

G_DEFINE_TYPE(QsimConfig, qsim_config, G_TYPE_OBJECT)

static void
setting_value_clear(SettingValue *v)
{
	g_clear_pointer(&v->text, g_free);
	g_clear_pointer(&v->origin, g_free);
	g_clear_pointer(&v->label, g_free);
	g_clear_pointer(&v->list, g_strfreev);
	memset(v, 0, sizeof(*v));
}

static gint
setting_lookup(const gchar *name)
{
	for (gint i = 0; i < N_SETTINGS; i++) {
		if (g_strcmp0(specs[i].name, name) == 0)
			return i;
	}
	return -1;
}

static gint
setting_lookup_keyfile(const gchar *group, const gchar *key)
{
	for (gint i = 0; i < N_SETTINGS; i++) {
		if (g_strcmp0(specs[i].group, group) == 0 && g_strcmp0(specs[i].key, key) == 0)
			return i;
	}
	return -1;
}

/* keep UTF-8 readable in messages but make control characters visible */
static gchar *
config_escape(const gchar *text)
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

static gboolean
config_parse(const SettingSpec *spec, const gchar *raw, SettingValue *v, gchar **problem)
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
	}
	g_assert_not_reached();
}

static gchar *
config_describe_source(QsimConfigSource source, const gchar *origin)
{
	if (source == QSIM_CONFIG_SOURCE_KEYFILE || source == QSIM_CONFIG_SOURCE_DOTENV)
		return g_strdup_printf("%s %s", qsim_config_source_to_string(source), origin);
	return g_strdup(qsim_config_source_to_string(source));
}

static void
config_set_invalid(GError **error, const gchar *label, const gchar *raw, QsimConfigSource source,
                   const gchar *origin, const gchar *problem)
{
	g_autofree gchar *esc = config_escape(raw);
	g_autofree gchar *from = config_describe_source(source, origin);

	g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s='%s' (from %s): %s", label, esc,
	            from, problem);
}

/*
 * Parses @raw for setting @idx and, unless a flag already set it, makes it
 * the effective value. A bad value is an error even when a higher source
 * would override it: nothing is ever ignored silently.
 */
static gboolean
config_apply(QsimConfig *self, gint idx, const gchar *raw, QsimConfigSource source,
             const gchar *label, const gchar *origin, GError **error)
{
	SettingValue v = {0};
	g_autofree gchar *problem = NULL;

	if (!config_parse(&specs[idx], raw, &v, &problem)) {
		setting_value_clear(&v);
		/* a secret's value never reaches a message, however wrong it is */
		if (specs[idx].secret) {
			g_autofree gchar *from = config_describe_source(source, origin);

			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s=<hidden> (from %s): %s", label, from, problem);
		} else {
			config_set_invalid(error, label, raw, source, origin, problem);
		}
		return FALSE;
	}
	if (self->values[idx].source == QSIM_CONFIG_SOURCE_FLAG &&
	    source != QSIM_CONFIG_SOURCE_FLAG) {
		setting_value_clear(&v);
		return TRUE;
	}
	v.source = source;
	v.origin = g_strdup(origin);
	v.label = g_strdup(label);
	setting_value_clear(&self->values[idx]);
	self->values[idx] = v;
	return TRUE;
}

static const gchar *
config_getenv(gchar **envp, const gchar *name)
{
	const gchar *v = g_environ_getenv(envp, name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

static gchar *
config_home(gchar **envp)
{
	const gchar *home = config_getenv(envp, "HOME");
	return g_strdup(home != NULL ? home : g_get_home_dir());
}

static gchar *
config_default_for(gint idx, gchar **envp)
{
	const gchar *xdg;
	g_autofree gchar *home = NULL;

	if (specs[idx].def != NULL)
		return g_strdup(specs[idx].def);
	if (idx == S_HOST_ID)
		return qsim_host_id_dup_default();
	if (idx == S_RUN_DIR) {
		xdg = config_getenv(envp, "XDG_RUNTIME_DIR");
		if (xdg != NULL && g_path_is_absolute(xdg))
			return g_build_filename(xdg, "qsim", NULL);
		return g_strdup_printf("/tmp/qsim-%u", (guint)getuid());
	}
	if (idx == S_STATE_DIR) {
		xdg = config_getenv(envp, "XDG_STATE_HOME");
		if (xdg != NULL && g_path_is_absolute(xdg))
			return g_build_filename(xdg, "qsim", NULL);
		home = config_home(envp);
		return g_build_filename(home, ".local", "state", "qsim", NULL);
	}
	g_assert_not_reached();
}

static void
config_apply_defaults(QsimConfig *self, gchar **envp)
{
	for (gint i = 0; i < N_SETTINGS; i++) {
		g_autofree gchar *def = NULL;
		g_autoptr(GError) error = NULL;

		if (self->values[i].source == QSIM_CONFIG_SOURCE_FLAG)
			continue;
		self->values[i].source = QSIM_CONFIG_SOURCE_DEFAULT;
		def = config_default_for(i, envp);
		/* a default that fails its own validation is a bug in the table */
		if (!config_apply(self, i, def, QSIM_CONFIG_SOURCE_DEFAULT, specs[i].name, NULL,
		                  &error))
			g_critical("bad built-in default: %s", error->message);
	}
}

static void
qsim_config_finalize(GObject *object)
{
	QsimConfig *self = QSIM_CONFIG(object);

	for (gint i = 0; i < N_SETTINGS; i++)
		setting_value_clear(&self->values[i]);
	g_free(self->keyfile_path);
	G_OBJECT_CLASS(qsim_config_parent_class)->finalize(object);
}

static void
qsim_config_class_init(QsimConfigClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_config_finalize;
}

static void
qsim_config_init(QsimConfig *self)
{
	g_auto(GStrv) envp = g_get_environ();
	config_apply_defaults(self, envp);
}

/**
 * qsim_config_new:
 *
 * Returns: (transfer full): a configuration holding the built-in defaults
 */
QsimConfig *
qsim_config_new(void)
{
	return g_object_new(QSIM_TYPE_CONFIG, NULL);
}

/* maps "group\037key" to the line it was last set on, for messages */
static GHashTable *
config_keyfile_lines(const gchar *data, GHashTable **group_lines)
{
	g_autoptr(GHashTable) lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) glines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) split = g_strsplit(data, "\n", -1);
	g_autofree gchar *group = NULL;

	for (guint i = 0; split[i] != NULL; i++) {
		gchar *l = g_strstrip(split[i]);
		gchar *eq;

		if (l[0] == '[' && strchr(l, ']') != NULL) {
			g_free(group);
			group = g_strndup(l + 1, strchr(l, ']') - l - 1);
			if (!g_hash_table_contains(glines, group))
				g_hash_table_insert(glines, g_strdup(group),
				                    GUINT_TO_POINTER(i + 1));
			continue;
		}
		eq = strchr(l, '=');
		if (l[0] == '#' || eq == NULL || group == NULL)
			continue;
		*eq = '\0';
		g_hash_table_insert(lines, g_strdup_printf("%s\037%s", group, g_strchomp(l)),
		                    GUINT_TO_POINTER(i + 1));
	}
	*group_lines = g_steal_pointer(&glines);
	return g_steal_pointer(&lines);
}

/* GKeyFile's syntax errors carry no line number: find the bad line first */
static gboolean
config_keyfile_check_syntax(const gchar *path, const gchar *data, GError **error)
{
	g_auto(GStrv) split = g_strsplit(data, "\n", -1);
	gboolean in_group = FALSE;

	for (guint i = 0; split[i] != NULL; i++) {
		const gchar *l = g_strstrip(split[i]);

		if (l[0] == '\0' || l[0] == '#')
			continue;
		if (l[0] == '[' && l[strlen(l) - 1] == ']') {
			in_group = TRUE;
			continue;
		}
		if (strchr(l, '=') == NULL || l[0] == '=') {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s:%u: expected [group], key=value or # comment", path, i + 1);
			return FALSE;
		}
		if (!in_group) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s:%u: key=value before the first [group]", path, i + 1);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
config_load_keyfile(QsimConfig *self, const gchar *path, GError **error)
{
	g_autofree gchar *data = NULL;
	gsize len = 0;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GHashTable) lines = NULL;
	g_autoptr(GHashTable) group_lines = NULL;
	g_auto(GStrv) groups = NULL;

	if (!g_file_get_contents(path, &data, &len, error)) {
		qsim_error_convert(error);
		g_prefix_error(error, "config file: ");
		return FALSE;
	}
	if (!config_keyfile_check_syntax(path, data, error))
		return FALSE;
	if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, error)) {
		qsim_error_convert(error);
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	lines = config_keyfile_lines(data, &group_lines);
	groups = g_key_file_get_groups(kf, NULL);
	for (guint g = 0; groups[g] != NULL; g++) {
		g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);

		if (!g_strv_contains((const gchar *const *)known_groups, groups[g])) {
			guint line = GPOINTER_TO_UINT(g_hash_table_lookup(group_lines, groups[g]));
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "[%s] (from keyfile %s:%u): unknown group (use database, api, "
			            "agent, vm or log)",
			            groups[g], path, line);
			return FALSE;
		}
		for (guint k = 0; keys != NULL && keys[k] != NULL; k++) {
			g_autofree gchar *lkey = g_strdup_printf("%s\037%s", groups[g], keys[k]);
			guint line = GPOINTER_TO_UINT(g_hash_table_lookup(lines, lkey));
			g_autofree gchar *origin = g_strdup_printf("%s:%u", path, line);
			g_autofree gchar *label = g_strdup_printf("[%s] %s", groups[g], keys[k]);
			g_autofree gchar *raw = NULL;
			gint idx = setting_lookup_keyfile(groups[g], keys[k]);

			raw = g_key_file_get_string(kf, groups[g], keys[k], error);
			if (raw == NULL) {
				qsim_error_convert(error);
				g_prefix_error(error, "%s (from keyfile %s): ", label, origin);
				return FALSE;
			}
			if (idx < 0) {
				config_set_invalid(error, label, raw, QSIM_CONFIG_SOURCE_KEYFILE,
				                   origin, "unknown key");
				return FALSE;
			}
			if (!config_apply(self, idx, raw, QSIM_CONFIG_SOURCE_KEYFILE, label, origin,
			                  error))
				return FALSE;
		}
	}
	return TRUE;
}

/* both prefixes are accepted; the QSIM_ pass runs last so it wins */
static gint
config_lookup_env_name(const gchar *var, guint prefix)
{
	if (!g_str_has_prefix(var, env_prefixes[prefix]))
		return -1;
	return setting_lookup(var + strlen(env_prefixes[prefix]));
}

static gboolean
config_load_dotenv(QsimConfig *self, const gchar *path, GError **error)
{
	g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_file(path, error);

	if (env == NULL)
		return FALSE;
	for (guint p = 0; p < G_N_ELEMENTS(env_prefixes); p++) {
		for (guint i = 0; i < qsim_dotenv_get_n_entries(env); i++) {
			const gchar *key = qsim_dotenv_get_key(env, i);
			const gchar *raw = qsim_dotenv_get_value(env, i);
			g_autofree gchar *origin =
			    g_strdup_printf("%s:%u", path, qsim_dotenv_get_line(env, i));
			gint idx;

			if (!g_str_has_prefix(key, env_prefixes[p]))
				continue;
			idx = config_lookup_env_name(key, p);
			/* the file is shared with other tools, but our prefixes are ours */
			if (idx < 0) {
				config_set_invalid(error, key, raw, QSIM_CONFIG_SOURCE_DOTENV,
				                   origin, "unknown setting");
				return FALSE;
			}
			if (!config_apply(self, idx, raw, QSIM_CONFIG_SOURCE_DOTENV, key, origin,
			                  error))
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
config_load_environment(QsimConfig *self, gchar **envp, GError **error)
{
	for (guint p = 0; p < G_N_ELEMENTS(env_prefixes); p++) {
		for (guint i = 0; envp[i] != NULL; i++) {
			const gchar *eq = strchr(envp[i], '=');
			g_autofree gchar *var = NULL;
			gint idx;

			if (eq == NULL)
				continue;
			var = g_strndup(envp[i], eq - envp[i]);
			/* unknown QSIM_* variables belong to other tools (qsim-ctl, tests) */
			idx = config_lookup_env_name(var, p);
			if (idx < 0)
				continue;
			if (!config_apply(self, idx, eq + 1, QSIM_CONFIG_SOURCE_ENVIRONMENT, var,
			                  var, error))
				return FALSE;
		}
	}
	return TRUE;
}

static gchar *
config_find_keyfile(gchar **envp)
{
	const gchar *xdg = config_getenv(envp, "XDG_CONFIG_HOME");
	g_autofree gchar *home = NULL;
	g_autofree gchar *user = NULL;

	if (xdg != NULL && g_path_is_absolute(xdg)) {
		user = g_build_filename(xdg, "qsim", "qsimd.conf", NULL);
	} else {
		home = config_home(envp);
		user = g_build_filename(home, ".config", "qsim", "qsimd.conf", NULL);
	}
	if (g_file_test(user, G_FILE_TEST_EXISTS))
		return g_steal_pointer(&user);
	if (g_file_test("/etc/qsim/qsimd.conf", G_FILE_TEST_EXISTS))
		return g_strdup("/etc/qsim/qsimd.conf");
	return NULL;
}

/* A message quotes whatever the file or variable held, key names included: whatever bytes
 * they were, it goes out as valid UTF-8 (found by tests/fuzz/fuzz-config.c). Returns FALSE. */
static gboolean
config_fail_safe(GError **error)
{
	if (error != NULL && *error != NULL && !g_utf8_validate((*error)->message, -1, NULL)) {
		gchar *safe = qsim_utf8_safe_dup((*error)->message, -1, 1024);

		g_free((*error)->message);
		(*error)->message = safe;
	}
	return FALSE;
}

/**
 * qsim_config_load:
 * @keyfile_path: (nullable): `--config FILE`, which must exist; %NULL to
 *   search `$XDG_CONFIG_HOME/qsim/qsimd.conf` then `/etc/qsim/qsimd.conf`
 * @envp: (nullable): the environment to read, %NULL for the process's own
 * @dotenv_dir: (nullable): where to look for `.env`, %NULL for the working
 *   directory
 * @error: return location for a %QSIM_ERROR_INVALID error shaped
 *   `NAME='value' (from source): problem`
 *
 * Loads every source below flags; values already set with
 * qsim_config_set_flag() keep precedence. May be called again to reload.
 *
 * Returns: %TRUE if every value was valid
 */
gboolean
qsim_config_load(QsimConfig *self, const gchar *keyfile_path, gchar **envp, const gchar *dotenv_dir,
                 GError **error)
{
	g_auto(GStrv) own_env = NULL;
	g_autofree gchar *kf = NULL;
	g_autofree gchar *cwd = NULL;
	g_autofree gchar *dotenv = NULL;

	g_return_val_if_fail(QSIM_IS_CONFIG(self), FALSE);
	if (envp == NULL) {
		own_env = g_get_environ();
		envp = own_env;
	}
	config_apply_defaults(self, envp);
	kf = keyfile_path != NULL ? g_strdup(keyfile_path) : config_find_keyfile(envp);
	g_free(self->keyfile_path);
	self->keyfile_path = g_strdup(kf);
	if (kf != NULL && !config_load_keyfile(self, kf, error))
		return config_fail_safe(error);
	if (dotenv_dir == NULL) {
		cwd = g_get_current_dir();
		dotenv_dir = cwd;
	}
	dotenv = g_build_filename(dotenv_dir, ".env", NULL);
	if (g_file_test(dotenv, G_FILE_TEST_EXISTS) && !config_load_dotenv(self, dotenv, error))
		return config_fail_safe(error);
	if (!config_load_environment(self, envp, error))
		return config_fail_safe(error);
	self->loaded = TRUE;
	return qsim_config_validate(self, error) || config_fail_safe(error);
}

/**
 * qsim_config_set_flag:
 * @name: the setting name without prefix, e.g. `API_PORT`
 * @value: the value as typed on the command line
 *
 * Sets a value with the highest precedence. Errors name the option (e.g.
 * `--port`) when the setting has one. After qsim_config_load() the whole
 * configuration is validated again.
 *
 * Returns: %TRUE on success
 */
gboolean
qsim_config_set_flag(QsimConfig *self, const gchar *name, const gchar *value, GError **error)
{
	gint idx = setting_lookup(name);
	const gchar *label;

	g_return_val_if_fail(QSIM_IS_CONFIG(self), FALSE);
	g_return_val_if_fail(value != NULL, FALSE);
	if (idx < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown setting '%s'", name);
		return FALSE;
	}
	label = specs[idx].flag != NULL ? specs[idx].flag : specs[idx].name;
	if (!config_apply(self, idx, value, QSIM_CONFIG_SOURCE_FLAG, label, label, error))
		return FALSE;
	return !self->loaded || qsim_config_validate(self, error);
}

/**
 * qsim_config_validate:
 *
 * Checks rules that span settings: DEFAULT_TIMEOUT <= MAX_TIMEOUT. The
 * message blames the value from the higher-precedence source.
 *
 * Returns: %TRUE when consistent
 */
gboolean
qsim_config_validate(QsimConfig *self, GError **error)
{
	SettingValue *def = &self->values[S_DEFAULT_TIMEOUT];
	SettingValue *max = &self->values[S_MAX_TIMEOUT];
	g_autofree gchar *problem = NULL;
	g_autofree gchar *other = NULL;

	if (def->i <= max->i)
		return TRUE;
	if (def->source >= max->source) {
		other = config_describe_source(max->source, max->origin);
		problem = g_strdup_printf("must not exceed MAX_TIMEOUT, which is %s (from %s)",
		                          max->text, other);
		config_set_invalid(error, def->label, def->text, def->source, def->origin, problem);
	} else {
		other = config_describe_source(def->source, def->origin);
		problem = g_strdup_printf(
		    "must not be below DEFAULT_TIMEOUT, which is %s (from %s)", def->text, other);
		config_set_invalid(error, max->label, max->text, max->source, max->origin, problem);
	}
	return FALSE;
}

/* Returns: (transfer none) (nullable): the keyfile the last load read */
const gchar *
qsim_config_get_keyfile_path(QsimConfig *self)
{
	return self->keyfile_path;
}

/* Returns: whether @name (without prefix) is a known setting */
gboolean
qsim_config_has_setting(const gchar *name)
{
	return setting_lookup(name) >= 0;
}

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

		if (specs[i].secret && text[0] != '\0')
			text = "***";
		g_ptr_array_add(out, qsim_config_entry_new(specs[i].name, text,
		                                           config_kind(specs[i].type), v->source,
		                                           v->origin, specs[i].secret));
	}
	return out;
}

static const SettingValue *
config_value(QsimConfig *self, const gchar *name)
{
	gint idx = setting_lookup(name);

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
