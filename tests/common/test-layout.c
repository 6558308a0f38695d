/*
 * qsim-layout: HOST_ID, agent ids and the run-dir layout every process agrees
 * on, and the HOST_ID and MAX_VMS_PER_HOST settings.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "common/qsim-config.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"

static void
test_host_id_validate(void)
{
	static const gchar *const good[] = {"a", "node-1", "rack2.node_7", "H0ST", NULL};
	static const gchar *const bad[] = {"",    "-lead", ".dot",      "has:colon", "sp ace",
	                                   "a/b", "é",     "tab\there", NULL};
	g_autofree gchar *longest = g_strnfill(QSIM_HOST_ID_MAX_LEN, 'h');
	g_autofree gchar *too_long = g_strnfill(QSIM_HOST_ID_MAX_LEN + 1, 'h');

	for (guint i = 0; good[i] != NULL; i++)
		g_assert_true(qsim_host_id_validate(good[i], NULL));
	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;

		g_assert_false(qsim_host_id_validate(bad[i], &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_assert_true(g_utf8_validate(error->message, -1, NULL));
	}
	g_assert_false(qsim_host_id_validate(NULL, NULL));
	g_assert_true(qsim_host_id_validate(longest, NULL));
	g_assert_false(qsim_host_id_validate(too_long, NULL));
}

static void
test_host_id_default(void)
{
	g_autofree gchar *def = qsim_host_id_dup_default();

	/* whatever the host name holds, the default passes the strict check */
	g_assert_true(qsim_host_id_validate(def, NULL));
	qsim_host_id_set(NULL);
	g_assert_cmpstr(qsim_host_id_get(), ==, def);
	qsim_host_id_set("host-b");
	g_assert_cmpstr(qsim_host_id_get(), ==, "host-b");
	qsim_host_id_set(NULL);
}

static void
test_agent_id(void)
{
	g_autofree gchar *id = NULL;
	g_autofree gchar *builder = NULL;
	g_autofree gchar *host = NULL;
	g_autofree gchar *old_host = NULL;
	g_autofree gchar *want = g_strdup_printf("node-7:%d:3", (gint)getpid());
	GPid pid = 0;

	qsim_host_id_set("node-7");
	id = qsim_agent_id_make(3);
	g_assert_cmpstr(id, ==, want);
	g_assert_true(qsim_agent_id_parse(id, &host, &pid));
	g_assert_cmpstr(host, ==, "node-7");
	g_assert_cmpint(pid, ==, getpid());
	g_assert_true(qsim_agent_id_is_local(id));
	g_assert_false(qsim_agent_id_is_local("node-8:12:0"));
	g_assert_false(qsim_agent_id_is_local("garbage"));
	builder = qsim_layout_dup_builder_id();
	g_assert_true(g_str_has_suffix(builder, ":0"));
	g_assert_true(qsim_agent_id_is_local(builder));
	/* an id an older qsim wrote with a raw host name holding ':' still parses */
	g_assert_true(qsim_agent_id_parse("a:b:12:1", &old_host, NULL));
	g_assert_cmpstr(old_host, ==, "a:b");
	g_assert_false(qsim_agent_id_parse("nohost", NULL, NULL));
	g_assert_false(qsim_agent_id_parse("h:x:1", NULL, NULL));
	g_assert_false(qsim_agent_id_parse(":12:1", NULL, NULL));
	g_assert_false(qsim_agent_id_parse("h:0:1", NULL, NULL));
	g_assert_false(qsim_agent_id_parse(NULL, NULL, NULL));
	qsim_host_id_set(NULL);
}

static void
test_run_dir_layout(void)
{
	g_autofree gchar *req = qsim_layout_dup_request_root("/run/q", "0b6e8a4c");
	g_autofree gchar *warm = qsim_layout_dup_warm_root("/run/q");
	g_autofree gchar *build = qsim_layout_dup_build_root("/run/q");

	g_assert_cmpstr(req, ==, "/run/q/0b6e8a4c");
	g_assert_cmpstr(warm, ==, "/run/q/warm");
	g_assert_cmpstr(build, ==, "/run/q/template-builds");
}

static void
test_config_settings(void)
{
	g_autoptr(QsimConfig) config = qsim_config_new();
	g_autoptr(QsimConfig) bad = qsim_config_new();
	g_autoptr(QsimConfig) defaults = qsim_config_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("qsim-layout-XXXXXX", NULL);
	g_autofree gchar *def = qsim_host_id_dup_default();
	gchar **envp = g_environ_setenv(NULL, "HOME", dir, TRUE);

	g_assert_true(qsim_config_load(defaults, NULL, envp, dir, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(qsim_config_get_host_id(defaults), ==, def);
	g_assert_cmpuint(qsim_config_get_max_vms_per_host(defaults), ==, 0);

	envp = g_environ_setenv(envp, "QSIM_HOST_ID", "rack1-node2", TRUE);
	envp = g_environ_setenv(envp, "QSIM_MAX_VMS_PER_HOST", "3", TRUE);
	g_assert_true(qsim_config_load(config, NULL, envp, dir, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(qsim_config_get_host_id(config), ==, "rack1-node2");
	g_assert_cmpuint(qsim_config_get_max_vms_per_host(config), ==, 3);

	envp = g_environ_setenv(envp, "QSIM_HOST_ID", "a:b", TRUE);
	g_assert_false(qsim_config_load(bad, NULL, envp, dir, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "HOST_ID"));
	g_strfreev(envp);
	g_rmdir(dir);
}

int
main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/layout/host-id/validate", test_host_id_validate);
	g_test_add_func("/layout/host-id/default", test_host_id_default);
	g_test_add_func("/layout/agent-id", test_agent_id);
	g_test_add_func("/layout/run-dir", test_run_dir_layout);
	g_test_add_func("/layout/config", test_config_settings);
	return g_test_run();
}
