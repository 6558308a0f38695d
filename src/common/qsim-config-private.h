#pragma once

/*
 * The insides of QsimConfig, shared by the files it is split into (issue 13's size
 * limit); nothing else includes this.
 */

#include "common/qsim-config.h"

G_BEGIN_DECLS

/*
 * One table describes every setting: its name, keyfile group and key,
 * command-line flag, type, default and range. Adding a setting is one row
 * in qsim-config-specs.c, one enum value here and (if others need it) a
 * typed getter in qsim-config-getters.c.
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
	SETTING_DATABASE_URL,  /* "" or a postgresql:// URL libpq parses; shown redacted */
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
	S_MAX_UPLOAD_BYTES,
	S_MAX_ARTIFACT_BYTES,
	S_MAX_ARTIFACT_FILES,
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
	/* last, so the lines of `qsimd config` before them keep their places */
	S_DATABASE_URL,
	S_DATABASE_PASSWORD_FILE,
	N_SETTINGS,
};

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

extern const SettingSpec qsim_config_specs[N_SETTINGS];

void qsim_config_value_clear(SettingValue *v);
gint qsim_config_lookup(const gchar *name);
gint qsim_config_lookup_keyfile(const gchar *group, const gchar *key);
gchar *qsim_config_escape(const gchar *text);
gboolean qsim_config_parse_value(const SettingSpec *spec, const gchar *raw, SettingValue *v,
                                 gchar **problem);

G_END_DECLS
