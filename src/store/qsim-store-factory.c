#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-pg-store.h"
#include "store/qsim-sqlite-schema.h"
#include "store/qsim-sqlite-store.h"
#include "store/qsim-store-factory.h"

static gchar *password_file;

void
qsim_store_set_password_file(const gchar *path)
{
	g_free(password_file);
	password_file = g_strdup(path);
}

gboolean
qsim_store_location_is_url(const gchar *location)
{
	return qsim_pg_store_is_url(location);
}

QsimStore *
qsim_store_open(const gchar *location, GError **error)
{
	if (qsim_pg_store_is_url(location))
		return qsim_pg_store_new(location, password_file, error);
	return qsim_sqlite_store_new(location, error);
}

guint
qsim_store_get_current_schema_version(void)
{
	return QSIM_SQLITE_SCHEMA_VERSION;
}
