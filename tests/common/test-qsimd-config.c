#include "config.h"

#include <gio/gio.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "test-util.h"

/* Runs the built qsimd in a private directory with a controlled environment. */
typedef struct {
	gchar *dir;
	gchar **envp;
	gint status;
	gchar *out;
	gchar *err;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	gchar **env = g_get_environ();

	f->dir = qsim_test_tmpdir_new();
	/* drop inherited settings so the host environment cannot change results */
	for (guint i = 0; env[i] != NULL; i++) {
		if (g_str_has_prefix(env[i], "QSIM_") || g_str_has_prefix(env[i], "SQLITE_SIM_")) {
			g_autofree gchar *name = g_strndup(env[i], strcspn(env[i], "="));
			env = g_environ_unsetenv(env, name);
			i = (guint)-1;
		}
	}
	env = g_environ_setenv(env, "HOME", f->dir, TRUE);
	env = g_environ_setenv(env, "XDG_CONFIG_HOME", f->dir, TRUE);
	f->envp = env;
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
	g_strfreev(f->envp);
	g_free(f->out);
	g_free(f->err);
}

static void
fixture_run(Fixture *f, const gchar *const *args)
{
	g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) p = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree gchar *qsimd = g_build_filename(BUILD_ROOT, "src", "daemon", "qsimd", NULL);

	g_ptr_array_add(argv, qsimd);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_environ(l, f->envp);
	g_subprocess_launcher_set_cwd(l, f->dir);
	p = g_subprocess_launcher_spawnv(l, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_clear_pointer(&f->out, g_free);
	g_clear_pointer(&f->err, g_free);
	g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &f->out, &f->err, &error));
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(p));
	f->status = g_subprocess_get_exit_status(p);
}

static void
test_qsimd_bad_env(Fixture *f, gconstpointer data)
{
	f->envp = g_environ_setenv(f->envp, "SQLITE_SIM_API_PORT", "80a", TRUE);
	fixture_run(f, (const gchar *[]){"config", NULL});
	g_assert_cmpint(f->status, ==, 1);
	g_assert_cmpstr(f->err, ==,
	                "qsimd: SQLITE_SIM_API_PORT='80a' (from environment): not a port number\n");
	g_assert_cmpstr(f->out, ==, "");
}

static void
test_qsimd_bad_dotenv(Fixture *f, gconstpointer data)
{
	g_autofree gchar *env = qsim_test_write(f->dir, ".env", "# agents\nQSIM_AGENT_COUNT=0\n");
	g_autofree gchar *want = g_strdup_printf(
	    "qsimd: QSIM_AGENT_COUNT='0' (from .env %s:2): must be at least 1\n", env);

	fixture_run(f, (const gchar *[]){"config", NULL});
	g_assert_cmpint(f->status, ==, 1);
	g_assert_cmpstr(f->err, ==, want);
}

static void
test_qsimd_bad_flag(Fixture *f, gconstpointer data)
{
	fixture_run(f, (const gchar *[]){"--port", "99999", "config", NULL});
	g_assert_cmpint(f->status, ==, 1);
	g_assert_cmpstr(f->err, ==, "qsimd: --port='99999' (from flag): not a port number\n");
}

static void
test_qsimd_usage(Fixture *f, gconstpointer data)
{
	fixture_run(f, (const gchar *[]){"frobnicate", NULL});
	g_assert_cmpint(f->status, ==, 2);
	g_assert_cmpstr(f->err, ==, "qsimd: unknown command 'frobnicate' (see qsimd --help)\n");
	fixture_run(f, (const gchar *[]){NULL});
	g_assert_cmpint(f->status, ==, 2);
	g_assert_cmpstr(f->err, ==, "qsimd: no command given (see qsimd --help)\n");
	fixture_run(f, (const gchar *[]){"--help", NULL});
	g_assert_cmpint(f->status, ==, 0);
	g_assert_nonnull(
	    strstr(f->out, "\n  config [--json]          Print the effective configuration"));
	fixture_run(f, (const gchar *[]){"config", "extra", NULL});
	g_assert_cmpint(f->status, ==, 2);
	g_assert_cmpstr(f->err, ==, "qsimd: config: unexpected argument 'extra'\n");
}

static void
test_qsimd_table(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf = qsim_test_write(f->dir, "k.conf", "[agent]\ncount=4\n");
	g_autofree gchar *kf_line = NULL;
	g_autofree gchar *agent_line = NULL;
	g_autofree gchar *escaped = NULL;
	g_auto(GStrv) lines = NULL;

	f->envp = g_environ_setenv(f->envp, "QSIM_API_TOKENS", "topsecret", TRUE);
	f->envp = g_environ_setenv(f->envp, "QSIM_DATABASE_URL",
	                           "postgresql://qsim:dbsecret@db.example/qsim", TRUE);
	fixture_run(f, (const gchar *[]){"--config", kf, "config", "--port", "9001", NULL});
	g_assert_cmpint(f->status, ==, 0);
	g_assert_cmpstr(f->err, ==, "");
	g_assert_null(strstr(f->out, "topsecret"));
	/* the database URL is shown, its password is not */
	g_assert_null(strstr(f->out, "dbsecret"));
	g_assert_nonnull(strstr(f->out, "'postgresql://qsim:***@db.example/qsim'"));
	lines = g_strsplit(f->out, "\n", -1);
	kf_line = g_strdup_printf("# keyfile: %s", kf);
	g_assert_cmpstr(lines[0], ==, kf_line);
	/* 47 settings, a header and the final newline */
	g_assert_cmpuint(g_strv_length(lines), ==, 49);
	/* aligned columns: name, quoted value, source (origin) */
	g_assert_true(
	    g_regex_match_simple("^API_PORT +'9001' +flag \\(--port\\)$", lines[5], 0, 0));
	g_assert_true(g_regex_match_simple(
	    "^API_TOKENS +'\\*\\*\\*' +environment \\(QSIM_API_TOKENS\\)$", lines[7], 0, 0));
	g_assert_true(
	    g_regex_match_simple("^DB_PATH +'./simulation.db' +default$", lines[1], 0, 0));
	escaped = g_regex_escape_string(kf, -1);
	agent_line = g_strdup_printf("^AGENT_COUNT +'4' +keyfile \\(%s:2\\)$", escaped);
	g_assert_true(g_regex_match_simple(agent_line, lines[18], 0, 0));
	/* the source column starts at the same offset on every line */
	g_assert_cmpint(strstr(lines[1], "default") - lines[1], ==,
	                strstr(lines[5], "flag") - lines[5]);
}

static void
test_qsimd_json(Fixture *f, gconstpointer data)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonObject *root;
	JsonObject *port;
	JsonObject *tokens;
	JsonArray *origins;

	f->envp = g_environ_setenv(f->envp, "QSIM_API_TOKENS", "topsecret", TRUE);
	f->envp = g_environ_setenv(f->envp, "SQLITE_SIM_AGENT_POLL_INTERVAL", "0.5", TRUE);
	fixture_run(
	    f, (const gchar *[]){"--port", "9002", "--insecure-no-auth", "config", "--json", NULL});
	g_assert_cmpint(f->status, ==, 0);
	g_assert_null(strstr(f->out, "topsecret"));
	g_assert_true(json_parser_load_from_data(parser, f->out, -1, &error));
	g_assert_no_error(error);
	root = json_node_get_object(json_parser_get_root(parser));
	port = json_object_get_object_member(root, "API_PORT");
	g_assert_cmpint(json_object_get_int_member(port, "value"), ==, 9002);
	g_assert_cmpstr(json_object_get_string_member(port, "source"), ==, "flag");
	tokens = json_object_get_object_member(root, "API_TOKENS");
	g_assert_cmpstr(json_object_get_string_member(tokens, "value"), ==, "***");
	g_assert_cmpfloat(json_object_get_double_member(
	                      json_object_get_object_member(root, "AGENT_POLL_INTERVAL"), "value"),
	                  ==, 0.5);
	g_assert_true(json_object_get_boolean_member(
	    json_object_get_object_member(root, "INSECURE_NO_AUTH"), "value"));
	origins = json_object_get_array_member(
	    json_object_get_object_member(root, "ALLOWED_ORIGINS"), "value");
	g_assert_cmpuint(json_array_get_length(origins), ==, 1);
	g_assert_cmpstr(json_array_get_string_element(origins, 0), ==, "*");
	g_assert_true(json_node_is_null(
	    json_object_get_member(json_object_get_object_member(root, "DB_PATH"), "origin")));
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/daemon/config/bad-env", test_qsimd_bad_env);
	ADD("/qsim/daemon/config/bad-dotenv", test_qsimd_bad_dotenv);
	ADD("/qsim/daemon/config/bad-flag", test_qsimd_bad_flag);
	ADD("/qsim/daemon/config/usage", test_qsimd_usage);
	ADD("/qsim/daemon/config/table", test_qsimd_table);
	ADD("/qsim/daemon/config/json", test_qsimd_json);
	return g_test_run();
}
