#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Where a setting's effective value came from, lowest precedence first. */
typedef enum {
	QSIM_CONFIG_SOURCE_DEFAULT,
	QSIM_CONFIG_SOURCE_KEYFILE,
	QSIM_CONFIG_SOURCE_DOTENV,
	QSIM_CONFIG_SOURCE_ENVIRONMENT,
	QSIM_CONFIG_SOURCE_FLAG,
} QsimConfigSource;

/* The JSON shape of a value, so `qsimd config --json` and `GET /config` agree. */
typedef enum {
	QSIM_CONFIG_KIND_STRING,
	QSIM_CONFIG_KIND_INT,
	QSIM_CONFIG_KIND_DOUBLE,
	QSIM_CONFIG_KIND_BOOL,
	QSIM_CONFIG_KIND_LIST, /* comma separated in @value */
} QsimConfigKind;

/**
 * QsimConfigEntry:
 * @name: the setting name without prefix, e.g. `API_PORT`
 * @value: the effective value as text; for secrets `***` (or empty when unset),
 *   never the secret itself
 * @kind: how to render @value as JSON
 * @source: where the value came from
 * @origin: (nullable): `file:line` for keyfile and .env, the variable name for
 *   the environment, the option for flags, %NULL for defaults
 * @secret: %TRUE when the real value is masked
 *
 * One line of the effective configuration, for printing.
 */
typedef struct {
	gchar *name;
	gchar *value;
	QsimConfigKind kind;
	QsimConfigSource source;
	gchar *origin;
	gboolean secret;
} QsimConfigEntry;

QsimConfigEntry *qsim_config_entry_new(const gchar *name, const gchar *value, QsimConfigKind kind,
                                       QsimConfigSource source, const gchar *origin,
                                       gboolean secret);
void qsim_config_entry_free(QsimConfigEntry *self);
const gchar *qsim_config_source_to_string(QsimConfigSource source);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimConfigEntry, qsim_config_entry_free)

G_END_DECLS
