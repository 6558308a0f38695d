#include "config.h"

#include <glib/gstdio.h>

#include "qsim-pg-fixture.h"

/* The fixture the PostgreSQL store tests stand on: a real server that answers, stops,
 * comes back on the same port with its data, and is gone with its directory at the end */
static void
test_start_stop_restart(void)
{
	g_autoptr(GError) error = NULL;
	QsimPgServer *server = qsim_pg_server_start(&error);
	g_autofree gchar *url = NULL;

	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(qsim_pg_server_get_url(server), "postgresql://"));
	g_assert_cmpuint(qsim_pg_server_get_port(server), >, 0);
	g_assert_cmpint(qsim_pg_query_int(qsim_pg_server_get_url(server), "SELECT 41 + 1"), ==, 42);
	url = qsim_pg_server_create_database(server, &error);
	g_assert_no_error(error);
	qsim_pg_exec_sql(url, "CREATE TABLE t (x integer); INSERT INTO t VALUES (7)");

	g_assert_true(qsim_pg_server_stop(server, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_pg_server_restart(server, &error));
	g_assert_no_error(error);
	g_assert_cmpint(qsim_pg_query_int(url, "SELECT x FROM t"), ==, 7);
	qsim_pg_server_free(server);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	if (!g_file_test("/usr/lib/postgresql/15/bin/initdb", G_FILE_TEST_IS_EXECUTABLE)) {
		/* install-deps.sh installs it in CI; say so rather than pass silently */
		g_printerr("postgresql-15 is not installed (data/install-deps.sh)\n");
		return 1;
	}
	g_test_add_func("/pg-fixture/start-stop-restart", test_start_stop_restart);
	return g_test_run();
}
