#include "config.h"

#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <string.h>
#include <unistd.h>

#include "qsim-pg-fixture.h"

struct _QsimPgServer {
	gchar *dir;
	gchar *url;
	guint port;
	guint n_databases;
};

static const gchar *
script_path(void)
{
	static gchar *path;

	if (path == NULL) {
		const gchar *root = g_getenv("QSIM_SOURCE_ROOT");

		path = g_build_filename(root != NULL ? root : SOURCE_ROOT, "tests", "pg",
		                        "pg-server.sh", NULL);
	}
	return path;
}

static gboolean
run_script(const gchar *cmd, const gchar *dir, gboolean watch, gchar **out_stdout, GError **error)
{
	g_autofree gchar *pid = g_strdup_printf("%d", (gint)getpid());
	const gchar *argv[] = {"bash", script_path(), cmd, dir, watch ? pid : NULL, NULL};
	g_autofree gchar *err_text = NULL;
	gint status = 0;

	if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out_stdout,
	                  &err_text, &status, error))
		return FALSE;
	if (!g_spawn_check_wait_status(status, error)) {
		g_prefix_error(error, "pg-server.sh %s: %s: ", cmd,
		               err_text != NULL ? err_text : "");
		return FALSE;
	}
	return TRUE;
}

QsimPgServer *
qsim_pg_server_start(GError **error)
{
	g_autoptr(QsimPgServer) self = g_new0(QsimPgServer, 1);
	g_autofree gchar *parent = NULL;
	g_autofree gchar *out = NULL;

	/* g_dir_make_tmp() makes a 0700 directory the postgres user cannot enter: the
	 * server's own directory is created by the script, by name, in /tmp */
	parent = g_dir_make_tmp("qsim-pg-XXXXXX", error);
	if (parent == NULL)
		return NULL;
	g_rmdir(parent);
	self->dir = g_steal_pointer(&parent);
	if (!run_script("start", self->dir, TRUE, &out, error))
		return NULL;
	self->url = g_strdup(g_strstrip(out));
	{
		const gchar *colon = strrchr(self->url, ':');

		self->port = colon != NULL ? (guint)g_ascii_strtoull(colon + 1, NULL, 10) : 0;
	}
	return g_steal_pointer(&self);
}

QsimPgServer *
qsim_pg_server_get_shared(void)
{
	static QsimPgServer *shared;

	if (shared == NULL) {
		g_autoptr(GError) error = NULL;

		shared = qsim_pg_server_start(&error);
		if (shared == NULL)
			g_error("cannot start the test PostgreSQL server: %s", error->message);
	}
	return shared;
}

const gchar *
qsim_pg_server_get_url(QsimPgServer *self)
{
	return self->url;
}

guint
qsim_pg_server_get_port(QsimPgServer *self)
{
	return self->port;
}

gboolean
qsim_pg_server_stop(QsimPgServer *self, GError **error)
{
	return run_script("stop", self->dir, FALSE, NULL, error);
}

gboolean
qsim_pg_server_restart(QsimPgServer *self, GError **error)
{
	g_autofree gchar *out = NULL;

	return run_script("start", self->dir, FALSE, &out, error);
}

static PGconn *
connect_or_abort(const gchar *url)
{
	PGconn *conn = PQconnectdb(url);

	if (PQstatus(conn) != CONNECTION_OK)
		g_error("cannot connect to %s: %s", url, PQerrorMessage(conn));
	return conn;
}

/*
 * A fresh schema rather than a database: CREATE DATABASE checkpoints and took
 * about a second per test case under load, a schema a few milliseconds. The
 * URL's options put it first on the search_path, so the store creates and
 * finds its tables there, as in an empty database of its own.
 */
gchar *
qsim_pg_server_create_database(QsimPgServer *self, GError **error)
{
	g_autofree gchar *name = g_strdup_printf("qsim_t%u", ++self->n_databases);
	g_autofree gchar *sql = NULL;
	PGconn *conn = PQconnectdb(self->url);
	PGresult *res;
	gboolean ok;

	if (PQstatus(conn) != CONNECTION_OK) {
		g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "cannot connect: %s",
		            PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	sql = g_strdup_printf("CREATE SCHEMA %s", name);
	res = PQexec(conn, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		g_set_error(error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "%s: %s", sql,
		            PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
	if (!ok)
		return NULL;
	return g_strdup_printf("%s?options=-c%%20search_path%%3D%s", self->url, name);
}

void
qsim_pg_exec_sql(const gchar *url, const gchar *sql)
{
	PGconn *conn = connect_or_abort(url);
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		g_error("%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
}

gint64
qsim_pg_query_int(const gchar *url, const gchar *sql)
{
	PGconn *conn = connect_or_abort(url);
	PGresult *res = PQexec(conn, sql);
	gint64 v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
		g_error("%s: %s", sql, PQresultErrorMessage(res));
	v = g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	PQfinish(conn);
	return v;
}

void
qsim_pg_server_free(QsimPgServer *self)
{
	if (self == NULL)
		return;
	if (self->dir != NULL) {
		g_autoptr(GError) error = NULL;

		if (!run_script("destroy", self->dir, FALSE, NULL, &error))
			g_warning("%s", error->message);
	}
	g_free(self->dir);
	g_free(self->url);
	g_free(self);
}

gboolean
qsim_pg_test_wanted(void)
{
	return g_strcmp0(g_getenv("QSIM_TEST_DATABASE"), "pg") == 0;
}
