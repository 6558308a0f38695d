#pragma once

/* Private to src/store/: a transaction that rolls back unless committed. */

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

typedef struct _QsimSqliteTransaction QsimSqliteTransaction;

/**
 * qsim_sqlite_transaction_begin:
 * @immediate: BEGIN IMMEDIATE (take the write lock now, waiting up to the busy
 *   timeout) rather than a deferred read transaction
 *
 * Returns: (transfer full): the open transaction; freeing it without a commit
 * rolls back
 */
QsimSqliteTransaction *qsim_sqlite_transaction_begin(sqlite3 *db, gboolean immediate,
                                                     GError **error);

gboolean qsim_sqlite_transaction_commit(QsimSqliteTransaction *self, GError **error);

void qsim_sqlite_transaction_free(QsimSqliteTransaction *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimSqliteTransaction, qsim_sqlite_transaction_free)

G_END_DECLS
