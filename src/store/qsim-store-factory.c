#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-sqlite-schema.h"
#include "store/qsim-sqlite-store.h"
#include "store/qsim-store-factory.h"

QsimStore *
qsim_store_open(const gchar *path, GError **error)
{
	return qsim_sqlite_store_new(path, error);
}

guint
qsim_store_get_current_schema_version(void)
{
	return QSIM_SQLITE_SCHEMA_VERSION;
}
