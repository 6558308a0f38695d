#pragma once

#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * The one place that knows the concrete backends: QsimStore itself is
 * abstract and never constructs one.
 */

/**
 * qsim_store_open:
 * @location: a postgresql:// or postgres:// URL (DATABASE_URL), or a SQLite
 *   database file (created, and migrated to the current schema)
 *
 * A URL opens the PostgreSQL backend (qsim_pg_store_new(), with the password
 * file set by qsim_store_set_password_file()); anything else the SQLite
 * backend in WAL mode (synchronous=NORMAL, foreign keys, 5 s busy timeout). A
 * database with a schema newer than this binary is refused; a failed
 * migration is rolled back and reported, never deleted.
 *
 * Returns: (transfer full): a new store, or NULL with @error set
 */
QsimStore *qsim_store_open(const gchar *location, GError **error);

/**
 * qsim_store_set_password_file:
 * @path: (nullable): DATABASE_PASSWORD_FILE; NULL = none
 *
 * The password file every later qsim_store_open() of a PostgreSQL URL reads.
 * Set once at start-up, before any thread opens a store.
 */
void qsim_store_set_password_file(const gchar *path);

/* TRUE when @location names a PostgreSQL database rather than a SQLite file */
gboolean qsim_store_location_is_url(const gchar *location);

/* The schema version (PRAGMA user_version) the binary writes */
guint qsim_store_get_current_schema_version(void);

G_END_DECLS
