#pragma once

#include "store/qsim-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_SQLITE_STORE (qsim_sqlite_store_get_type())
G_DECLARE_FINAL_TYPE(QsimSqliteStore, qsim_sqlite_store, QSIM, SQLITE_STORE, QsimStore)

/**
 * qsim_sqlite_store_new:
 * @path: the database file; created and migrated
 *
 * Most callers use qsim_store_open().
 *
 * Returns: (transfer full): the store, or NULL with @error set
 */
QsimStore *qsim_sqlite_store_new(const gchar *path, GError **error);

G_END_DECLS
