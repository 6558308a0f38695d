#pragma once

/* Private to src/store/: the SQLite schema and its migrations. */

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* The PRAGMA user_version this binary writes and understands */
#define QSIM_SQLITE_SCHEMA_VERSION 9

/**
 * qsim_sqlite_schema_migrate:
 * @out_version: (out): the schema version after migration
 *
 * Brings @db to QSIM_SQLITE_SCHEMA_VERSION, one transaction per step. Refuses
 * a database newer than this binary. A failing step is rolled back, leaving
 * the database at the previous version with its data untouched.
 */
gboolean qsim_sqlite_schema_migrate(sqlite3 *db, guint *out_version, GError **error);

G_END_DECLS
