#pragma once

#include <glib.h>

/*
 * A real PostgreSQL server for tests (tests/pg/pg-server.sh): Debian's
 * postgresql-15 in a temporary directory, run as the `postgres` user when the
 * test runs as root, on 127.0.0.1 and a free port. A watchdog stops it and
 * removes its directory once the test process is gone, even after an abort.
 */
typedef struct _QsimPgServer QsimPgServer;

/* Returns: (transfer full): a started server with an empty database "qsim", or NULL */
QsimPgServer *qsim_pg_server_start(GError **error);

/* The server shared by every test of this process, started on first use; aborts on failure */
QsimPgServer *qsim_pg_server_get_shared(void);

/* Returns: (transfer none): postgresql://qsim@127.0.0.1:PORT/qsim */
const gchar *qsim_pg_server_get_url(QsimPgServer *self);

/* Returns: the TCP port */
guint qsim_pg_server_get_port(QsimPgServer *self);

/* Stops the server (pg_ctl stop -m fast); the data and port stay for qsim_pg_server_restart() */
gboolean qsim_pg_server_stop(QsimPgServer *self, GError **error);

/* Starts a stopped server again on the same port */
gboolean qsim_pg_server_restart(QsimPgServer *self, GError **error);

/**
 * qsim_pg_server_create_database:
 *
 * A fresh empty place for one test case: a schema qsim_tN of the database
 * "qsim", first on the search_path of the URL returned.
 *
 * Returns: (transfer full): its URL, or NULL with @error
 */
gchar *qsim_pg_server_create_database(QsimPgServer *self, GError **error);

/* Runs @sql on the database of @url; aborts the test on failure */
void qsim_pg_exec_sql(const gchar *url, const gchar *sql);

/* Returns: the first column of the first row of @sql as an integer; aborts on failure */
gint64 qsim_pg_query_int(const gchar *url, const gchar *sql);

/* Stops the server and removes its directory */
void qsim_pg_server_free(QsimPgServer *self);

/* TRUE when QSIM_TEST_DATABASE=pg asks the tests for the PostgreSQL backend */
gboolean qsim_pg_test_wanted(void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimPgServer, qsim_pg_server_free)
