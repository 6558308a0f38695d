#pragma once

#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * The one place that knows the concrete backends: QsimStore itself is
 * abstract and never constructs one, so a second backend (PostgreSQL) is
 * added here and nowhere else.
 */

/**
 * qsim_store_open:
 * @path: a SQLite database file; created, and migrated to the current schema
 *
 * Opens the SQLite backend in WAL mode (synchronous=NORMAL, foreign keys,
 * 5 s busy timeout). A database with a schema newer than this binary is
 * refused; a failed migration is rolled back and reported, never deleted.
 *
 * Returns: (transfer full): a new store, or NULL with @error set
 */
QsimStore *qsim_store_open(const gchar *path, GError **error);

/* The schema version (PRAGMA user_version) the binary writes */
guint qsim_store_get_current_schema_version(void);

G_END_DECLS
