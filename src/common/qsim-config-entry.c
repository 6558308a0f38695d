#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include "common/qsim-config-entry.h"

/**
 * qsim_config_entry_new:
 *
 * Returns: (transfer full): a new entry holding copies of the strings
 */
QsimConfigEntry *
qsim_config_entry_new(const gchar *name, const gchar *value, QsimConfigKind kind,
                      QsimConfigSource source, const gchar *origin, gboolean secret)
{
	QsimConfigEntry *self = g_new0(QsimConfigEntry, 1);

	self->name = g_strdup(name);
	self->value = g_strdup(value);
	self->kind = kind;
	self->source = source;
	self->origin = g_strdup(origin);
	self->secret = secret;
	return self;
}

void
qsim_config_entry_free(QsimConfigEntry *self)
{
	if (self == NULL)
		return;
	g_free(self->name);
	g_free(self->value);
	g_free(self->origin);
	g_free(self);
}

/* Returns: (transfer none): the name shown to users: default, keyfile, .env, environment, flag */
const gchar *
qsim_config_source_to_string(QsimConfigSource source)
{
	switch (source) {
	case QSIM_CONFIG_SOURCE_DEFAULT:
		return "default";
	case QSIM_CONFIG_SOURCE_KEYFILE:
		return "keyfile";
	case QSIM_CONFIG_SOURCE_DOTENV:
		return ".env";
	case QSIM_CONFIG_SOURCE_ENVIRONMENT:
		return "environment";
	case QSIM_CONFIG_SOURCE_FLAG:
		return "flag";
	}
	return "default";
}
