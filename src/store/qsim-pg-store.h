#pragma once

#include "store/qsim-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_PG_STORE (qsim_pg_store_get_type())
G_DECLARE_FINAL_TYPE(QsimPgStore, qsim_pg_store, QSIM, PG_STORE, QsimStore)

/* The schema version the PostgreSQL backend brings a database to (SQLite's numbering) */
#define QSIM_PG_SCHEMA_VERSION 9

/**
 * qsim_pg_store_new:
 * @url: a postgresql:// or postgres:// URL (libpq's syntax)
 * @password_file: (nullable): a file holding the password (not group/world readable);
 *   NULL = the URL's or libpq's own (PGPASSFILE, ~/.pgpass)
 *
 * Connects, migrates the schema (one transaction under an advisory lock, so
 * processes starting at once are safe) and returns the store. See docs/store.md
 * for the threading and the reconnects.
 *
 * Returns: (transfer full): the store, or NULL with @error
 */
QsimStore *qsim_pg_store_new(const gchar *url, const gchar *password_file, GError **error);

/* TRUE when @location is a postgresql:// or postgres:// URL */
gboolean qsim_pg_store_is_url(const gchar *location);

/**
 * qsim_pg_store_check_url:
 *
 * Parses @url as libpq does (PQconninfoParse) without connecting.
 *
 * Returns: TRUE when valid; INVALID with libpq's reason (never the password)
 */
gboolean qsim_pg_store_check_url(const gchar *url, GError **error);

/* Returns: (transfer full): @url with any password replaced by "***" */
gchar *qsim_pg_store_redact_url(const gchar *url);

/**
 * qsim_pg_store_read_password_file:
 *
 * Reads the first line of @path, refusing a file others may read or write.
 *
 * Returns: (transfer full): the password, or NULL with @error
 */
gchar *qsim_pg_store_read_password_file(const gchar *path, GError **error);

G_END_DECLS
