#include "config.h"

#include <string.h>
#include <unistd.h>

#include "common/qsim-config.h"
#include "common/qsim-error.h"
#include "test-util.h"

/* Every test gets its own directory, used as HOME, XDG dirs and .env dir. */
typedef struct {
	gchar *dir;
	gchar **envp;
	QsimConfig *config;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->dir = qsim_test_tmpdir_new();
	f->envp = g_environ_setenv(NULL, "HOME", f->dir, TRUE);
	f->envp = g_environ_setenv(f->envp, "XDG_CONFIG_HOME", f->dir, TRUE);
	f->config = qsim_config_new();
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_clear_object(&f->config);
	g_strfreev(f->envp);
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
}

static void
fixture_setenv(Fixture *f, const gchar *name, const gchar *value)
{
	f->envp = g_environ_setenv(f->envp, name, value, TRUE);
}

static void
fixture_load_ok(Fixture *f, const gchar *keyfile)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(qsim_config_load(f->config, keyfile, f->envp, f->dir, &error));
	g_assert_no_error(error);
}

static void
fixture_load_fails(Fixture *f, const gchar *keyfile, const gchar *message)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_config_load(f->config, keyfile, f->envp, f->dir, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, message);
}

static void
test_config_defaults(Fixture *f, gconstpointer data)
{
	g_autofree gchar *state = g_build_filename(f->dir, ".local", "state", "qsim", NULL);
	g_autofree gchar *run = g_strdup_printf("/tmp/qsim-%u", (guint)getuid());

	fixture_load_ok(f, NULL);
	g_assert_null(qsim_config_get_keyfile_path(f->config));
	g_assert_cmpstr(qsim_config_get_db_path(f->config), ==, "./simulation.db");
	/* no DATABASE_URL: the store is the SQLite file */
	g_assert_cmpstr(qsim_config_get_database_url(f->config), ==, "");
	g_assert_true(qsim_config_store_is_sqlite(f->config));
	g_assert_cmpstr(qsim_config_get_store_location(f->config), ==, "./simulation.db");
	g_assert_cmpstr(qsim_config_get_api_host(f->config), ==, "127.0.0.1");
	g_assert_cmpuint(qsim_config_get_api_port(f->config), ==, 8000);
	g_assert_cmpuint(qsim_config_get_api_workers(f->config), ==, 1);
	g_assert_cmpuint(qsim_config_get_agent_count(f->config), ==, 2);
	g_assert_cmpfloat(qsim_config_get_agent_poll_interval(f->config), ==, 5.0);
	g_assert_cmpstr(qsim_config_get_vm_images_dir(f->config), ==, "./vm_images");
	g_assert_cmpstr(qsim_config_get_vm_config_dir(f->config), ==, "./vm_configs");
	g_assert_cmpuint(qsim_config_get_max_concurrent_vms(f->config), ==, 10);
	g_assert_cmpuint(qsim_config_get_warm_pool_size(f->config), ==, 0);
	g_assert_cmpuint(qsim_config_get_default_timeout(f->config), ==, 300);
	g_assert_cmpuint(qsim_config_get_max_timeout(f->config), ==, 3600);
	g_assert_false(qsim_config_get_enable_cors(f->config));
	g_assert_cmpstrv(qsim_config_get_allowed_origins(f->config),
	                 ((const gchar *[]){"*", NULL}));
	g_assert_cmpint(qsim_config_get_log_level(f->config), ==, QSIM_LOG_LEVEL_INFO);
	g_assert_cmpstr(qsim_config_get_log_file(f->config), ==, "");
	g_assert_cmpstrv(qsim_config_get_api_tokens(f->config), ((const gchar *[]){NULL}));
	g_assert_cmpstr(qsim_config_get_run_dir(f->config), ==, run);
	g_assert_cmpstr(qsim_config_get_state_dir(f->config), ==, state);
	g_assert_cmpuint(qsim_config_get_lease_seconds(f->config), ==, 30);
	g_assert_cmpfloat(qsim_config_get_shutdown_grace(f->config), ==, 10.0);
	g_assert_cmpstr(qsim_config_get_qemu(f->config), ==, QSIM_QEMU_BINARY);
	g_assert_cmpstr(qsim_config_get_qemu_img(f->config), ==, QSIM_QEMU_IMG_BINARY);
	g_assert_false(qsim_config_get_insecure_no_auth(f->config));
	g_assert_cmpint(qsim_config_get_accel(f->config), ==, QSIM_ACCEL_MODE_AUTO);
	g_assert_cmpstr(qsim_config_get_string(f->config, "ACCEL"), ==, "auto");
	g_assert_cmpuint(qsim_config_get_kvm_probe_timeout_ms(f->config), ==, 5000);
	g_assert_cmpuint(qsim_config_get_kvm_console_timeout_ms(f->config), ==, 10000);
	{
		g_autofree gchar *k = qsim_config_dup_kvm_probe_kernel(f->config);
		g_autofree gchar *i = qsim_config_dup_kvm_probe_initrd(f->config);
		g_assert_cmpstr(k, ==, "./vm_images/tiny-vmlinux");
		g_assert_cmpstr(i, ==, "./vm_images/tiny-initrd.img");
	}
	g_assert_cmpint(qsim_config_get_source(f->config, "API_PORT"), ==,
	                QSIM_CONFIG_SOURCE_DEFAULT);
	g_assert_null(qsim_config_get_origin(f->config, "API_PORT"));
}

static void
test_config_xdg_dirs(Fixture *f, gconstpointer data)
{
	fixture_setenv(f, "XDG_RUNTIME_DIR", "/run/user/4242");
	fixture_setenv(f, "XDG_STATE_HOME", "/var/state");
	fixture_load_ok(f, NULL);
	g_assert_cmpstr(qsim_config_get_run_dir(f->config), ==, "/run/user/4242/qsim");
	g_assert_cmpstr(qsim_config_get_state_dir(f->config), ==, "/var/state/qsim");
}

static void
test_config_keyfile(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf = qsim_test_fixture("config", "good.conf");
	g_autofree gchar *origin = g_strdup_printf("%s:7", kf);

	fixture_load_ok(f, kf);
	g_assert_cmpstr(qsim_config_get_keyfile_path(f->config), ==, kf);
	g_assert_cmpstr(qsim_config_get_db_path(f->config), ==, "/var/lib/qsim/sim.db");
	g_assert_cmpstr(qsim_config_get_api_host(f->config), ==, "::1");
	g_assert_cmpuint(qsim_config_get_api_port(f->config), ==, 1111);
	g_assert_cmpint(qsim_config_get_source(f->config, "API_PORT"), ==,
	                QSIM_CONFIG_SOURCE_KEYFILE);
	g_assert_cmpstr(qsim_config_get_origin(f->config, "API_PORT"), ==, origin);
	g_assert_cmpuint(qsim_config_get_api_workers(f->config), ==, 2);
	g_assert_cmpstrv(qsim_config_get_api_tokens(f->config),
	                 ((const gchar *[]){"tok-a", "tok-b", NULL}));
	g_assert_cmpuint(qsim_config_get_agent_count(f->config), ==, 3);
	g_assert_cmpfloat(qsim_config_get_agent_poll_interval(f->config), ==, 0.5);
	g_assert_cmpstr(qsim_config_get_vm_images_dir(f->config), ==, "/srv/images");
	g_assert_cmpuint(qsim_config_get_max_concurrent_vms(f->config), ==, 4);
	g_assert_cmpuint(qsim_config_get_warm_pool_size(f->config), ==, 3);
	/* case-insensitive, printed normalised */
	g_assert_cmpint(qsim_config_get_log_level(f->config), ==, QSIM_LOG_LEVEL_DEBUG);
	g_assert_cmpstr(qsim_config_get_string(f->config, "LOG_LEVEL"), ==, "DEBUG");
}

static void
test_config_keyfile_search(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf = qsim_test_write(f->dir, "qsim/qsimd.conf", "[api]\nport=4321\n");

	fixture_load_ok(f, NULL);
	g_assert_cmpstr(qsim_config_get_keyfile_path(f->config), ==, kf);
	g_assert_cmpuint(qsim_config_get_api_port(f->config), ==, 4321);
}

static void
test_config_keyfile_missing(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *kf = g_build_filename(f->dir, "nope.conf", NULL);

	g_assert_false(qsim_config_load(f->config, kf, f->envp, f->dir, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_assert_true(g_str_has_prefix(error->message, "config file: "));
}

static void
test_config_precedence(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf = qsim_test_fixture("config", "good.conf");
	g_autofree gchar *envfile = NULL;
	g_autofree gchar *dotenv_src = qsim_test_fixture("config", "good.env");
	g_autofree gchar *content = NULL;
	g_autofree gchar *origin_count = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(dotenv_src, &content, NULL, NULL));
	envfile = qsim_test_write(f->dir, ".env", content);
	origin_count = g_strdup_printf("%s:6", envfile);

	/* env: QSIM_ wins over SQLITE_SIM_ whatever the order */
	fixture_setenv(f, "QSIM_API_PORT", "3334");
	fixture_setenv(f, "SQLITE_SIM_API_PORT", "3333");
	fixture_setenv(f, "SQLITE_SIM_API_WORKERS", "6");
	fixture_setenv(f, "QSIM_SOURCE_ROOT", "/unrelated/qsim/variable");
	/* flags may be set before load and keep precedence */
	g_assert_true(qsim_config_set_flag(f->config, "API_HOST", "10.0.0.1", &error));
	g_assert_no_error(error);
	fixture_load_ok(f, kf);
	g_assert_true(qsim_config_set_flag(f->config, "MAX_CONCURRENT_VMS", "7", &error));
	g_assert_no_error(error);

	/* flag > everything */
	g_assert_cmpstr(qsim_config_get_api_host(f->config), ==, "10.0.0.1");
	g_assert_cmpint(qsim_config_get_source(f->config, "API_HOST"), ==, QSIM_CONFIG_SOURCE_FLAG);
	g_assert_cmpstr(qsim_config_get_origin(f->config, "API_HOST"), ==, "--host");
	g_assert_cmpuint(qsim_config_get_max_concurrent_vms(f->config), ==, 7);
	/* environment > .env > keyfile, QSIM_ > SQLITE_SIM_ */
	g_assert_cmpuint(qsim_config_get_api_port(f->config), ==, 3334);
	g_assert_cmpint(qsim_config_get_source(f->config, "API_PORT"), ==,
	                QSIM_CONFIG_SOURCE_ENVIRONMENT);
	g_assert_cmpstr(qsim_config_get_origin(f->config, "API_PORT"), ==, "QSIM_API_PORT");
	g_assert_cmpuint(qsim_config_get_api_workers(f->config), ==, 6);
	g_assert_cmpstr(qsim_config_get_origin(f->config, "API_WORKERS"), ==,
	                "SQLITE_SIM_API_WORKERS");
	/* .env > keyfile */
	g_assert_cmpuint(qsim_config_get_agent_count(f->config), ==, 5);
	g_assert_cmpint(qsim_config_get_source(f->config, "AGENT_COUNT"), ==,
	                QSIM_CONFIG_SOURCE_DOTENV);
	g_assert_cmpstr(qsim_config_get_origin(f->config, "AGENT_COUNT"), ==, origin_count);
	g_assert_cmpstr(qsim_config_get_log_file(f->config), ==,
	                "/tmp/with \"quotes\" and\\backslash");
	g_assert_cmpstrv(qsim_config_get_allowed_origins(f->config),
	                 ((const gchar *[]){"http://a.example", "http://b.example", NULL}));
	/* keyfile > default */
	g_assert_cmpfloat(qsim_config_get_agent_poll_interval(f->config), ==, 0.5);
	g_assert_cmpint(qsim_config_get_source(f->config, "AGENT_POLL_INTERVAL"), ==,
	                QSIM_CONFIG_SOURCE_KEYFILE);
	g_assert_cmpint(qsim_config_get_source(f->config, "LEASE_SECONDS"), ==,
	                QSIM_CONFIG_SOURCE_DEFAULT);

	/* reloading keeps the flags */
	fixture_load_ok(f, NULL);
	g_assert_cmpstr(qsim_config_get_api_host(f->config), ==, "10.0.0.1");
	g_assert_cmpuint(qsim_config_get_api_port(f->config), ==, 3334);
	g_assert_cmpfloat(qsim_config_get_agent_poll_interval(f->config), ==, 5.0);
}

static void
test_config_dotenv_prefix_order(Fixture *f, gconstpointer data)
{
	g_autofree gchar *envfile = qsim_test_write(
	    f->dir, ".env", "QSIM_AGENT_COUNT=9\nSQLITE_SIM_AGENT_COUNT=8\nQSIM_API_PORT=1\n");

	fixture_setenv(f, "SQLITE_SIM_API_PORT", "2");
	fixture_load_ok(f, NULL);
	g_assert_cmpuint(qsim_config_get_agent_count(f->config), ==, 9);
	/* the environment beats .env even with the weaker prefix */
	g_assert_cmpuint(qsim_config_get_api_port(f->config), ==, 2);
}

static void
test_config_env_rejections(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *var;
		const gchar *value;
		const gchar *message;
	} cases[] = {
	    {"SQLITE_SIM_API_PORT", "80a",
	     "SQLITE_SIM_API_PORT='80a' (from environment): not a port number"},
	    {"QSIM_API_PORT", "0", "QSIM_API_PORT='0' (from environment): not a port number"},
	    {"QSIM_API_PORT", "65536",
	     "QSIM_API_PORT='65536' (from environment): not a port number"},
	    {"QSIM_API_PORT", "", "QSIM_API_PORT='' (from environment): not a port number"},
	    {"SQLITE_SIM_API_WORKERS", "1.5",
	     "SQLITE_SIM_API_WORKERS='1.5' (from environment): not an integer"},
	    {"SQLITE_SIM_API_WORKERS", "0",
	     "SQLITE_SIM_API_WORKERS='0' (from environment): must be at least 1"},
	    {"SQLITE_SIM_AGENT_COUNT", "0",
	     "SQLITE_SIM_AGENT_COUNT='0' (from environment): must be at least 1"},
	    {"SQLITE_SIM_AGENT_COUNT", "two",
	     "SQLITE_SIM_AGENT_COUNT='two' (from environment): not an integer"},
	    {"SQLITE_SIM_AGENT_COUNT", "-1",
	     "SQLITE_SIM_AGENT_COUNT='-1' (from environment): must be at least 1"},
	    {"SQLITE_SIM_AGENT_COUNT", "1000",
	     "SQLITE_SIM_AGENT_COUNT='1000' (from environment): must be at most 256"},
	    {"SQLITE_SIM_AGENT_POLL_INTERVAL", "fast",
	     "SQLITE_SIM_AGENT_POLL_INTERVAL='fast' (from environment): not a number"},
	    {"SQLITE_SIM_AGENT_POLL_INTERVAL", "0",
	     "SQLITE_SIM_AGENT_POLL_INTERVAL='0' (from environment): must be at least 0.01"},
	    {"SQLITE_SIM_AGENT_POLL_INTERVAL", "nan",
	     "SQLITE_SIM_AGENT_POLL_INTERVAL='nan' (from environment): not a number"},
	    {"SQLITE_SIM_MAX_CONCURRENT_VMS", "0",
	     "SQLITE_SIM_MAX_CONCURRENT_VMS='0' (from environment): must be at least 1"},
	    {"QSIM_WARM_POOL_SIZE", "-1",
	     "QSIM_WARM_POOL_SIZE='-1' (from environment): must be at least 0"},
	    {"QSIM_WARM_POOL_SIZE", "1025",
	     "QSIM_WARM_POOL_SIZE='1025' (from environment): must be at most 1024"},
	    {"SQLITE_SIM_WARM_POOL_SIZE", "two",
	     "SQLITE_SIM_WARM_POOL_SIZE='two' (from environment): not an integer"},
	    {"SQLITE_SIM_DEFAULT_TIMEOUT", "5000",
	     "SQLITE_SIM_DEFAULT_TIMEOUT='5000' (from environment): must not exceed MAX_TIMEOUT, "
	     "which is 3600 (from default)"},
	    {"SQLITE_SIM_MAX_TIMEOUT", "100",
	     "SQLITE_SIM_MAX_TIMEOUT='100' (from environment): must not be below DEFAULT_TIMEOUT, "
	     "which is 300 (from default)"},
	    {"SQLITE_SIM_MAX_TIMEOUT", "-5",
	     "SQLITE_SIM_MAX_TIMEOUT='-5' (from environment): must be at least 1"},
	    {"SQLITE_SIM_ENABLE_CORS", "maybe",
	     "SQLITE_SIM_ENABLE_CORS='maybe' (from environment): not a boolean (use true/false, "
	     "1/0 or yes/no)"},
	    {"QSIM_INSECURE_NO_AUTH", "on",
	     "QSIM_INSECURE_NO_AUTH='on' (from environment): not a boolean (use true/false, 1/0 or "
	     "yes/no)"},
	    {"SQLITE_SIM_LOG_LEVEL", "verbose",
	     "SQLITE_SIM_LOG_LEVEL='verbose' (from environment): not a log level (use DEBUG, INFO, "
	     "WARNING or ERROR)"},
	    {"SQLITE_SIM_API_HOST", "",
	     "SQLITE_SIM_API_HOST='' (from environment): must not be empty"},
	    {"SQLITE_SIM_DB_PATH", "a\nb",
	     "SQLITE_SIM_DB_PATH='a\\nb' (from environment): contains a control character"},
	    /* a secret is never quoted, however wrong */
	    {"QSIM_API_TOKENS", "good,bad token",
	     "QSIM_API_TOKENS=<hidden> (from environment): items must be printable ASCII "
	     "without blanks"},
	    {"QSIM_LEASE_SECONDS", "0",
	     "QSIM_LEASE_SECONDS='0' (from environment): must be at least 1"},
	    {"QSIM_SHUTDOWN_GRACE", "-1",
	     "QSIM_SHUTDOWN_GRACE='-1' (from environment): must be at least 0"},
	    {"QSIM_ACCEL", "bogus",
	     "QSIM_ACCEL='bogus' (from environment): not an accelerator (use auto, kvm or tcg)"},
	    {"SQLITE_SIM_ACCEL", "inherit",
	     "SQLITE_SIM_ACCEL='inherit' (from environment): not an accelerator (use auto, kvm or "
	     "tcg)"},
	    {"QSIM_KVM_PROBE_TIMEOUT", "0",
	     "QSIM_KVM_PROBE_TIMEOUT='0' (from environment): must be at least 0.5"},
	    {"QSIM_KVM_CONSOLE_TIMEOUT", "-1",
	     "QSIM_KVM_CONSOLE_TIMEOUT='-1' (from environment): must be at least 0"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(QsimConfig) config = qsim_config_new();
		g_autoptr(GError) error = NULL;
		g_auto(GStrv) envp =
		    g_environ_setenv(g_strdupv(f->envp), cases[i].var, cases[i].value, TRUE);

		g_assert_false(qsim_config_load(config, NULL, envp, f->dir, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_assert_cmpstr(error->message, ==, cases[i].message);
	}
}

static void
test_config_bool_forms(Fixture *f, gconstpointer data)
{
	const gchar *yes[] = {"true", "1", "yes", "TRUE", "Yes"};
	const gchar *no[] = {"false", "0", "no", "False", "NO"};

	for (guint i = 0; i < G_N_ELEMENTS(yes); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_true(qsim_config_set_flag(f->config, "ENABLE_CORS", yes[i], &error));
		g_assert_true(qsim_config_get_enable_cors(f->config));
		g_assert_true(qsim_config_set_flag(f->config, "ENABLE_CORS", no[i], &error));
		g_assert_false(qsim_config_get_enable_cors(f->config));
		g_assert_no_error(error);
	}
}

static void
test_config_file_rejections(Fixture *f, gconstpointer data)
{
	g_autofree gchar *bad_port = qsim_test_fixture("config", "bad-port.conf");
	g_autofree gchar *unknown_key = qsim_test_fixture("config", "unknown-key.conf");
	g_autofree gchar *unknown_group = qsim_test_fixture("config", "unknown-group.conf");
	g_autofree gchar *timeouts = qsim_test_fixture("config", "timeouts.conf");
	g_autofree gchar *m1 =
	    g_strdup_printf("[api] port='80a' (from keyfile %s:2): not a port number", bad_port);
	g_autofree gchar *m2 =
	    g_strdup_printf("[api] prot='8001' (from keyfile %s:3): unknown key", unknown_key);
	g_autofree gchar *m3 = g_strdup_printf(
	    "[apii] (from keyfile %s:2): unknown group (use database, api, agent, vm or log)",
	    unknown_group);
	g_autofree gchar *m4 = g_strdup_printf(
	    "[agent] default_timeout='7200' (from keyfile %s:2): must not exceed MAX_TIMEOUT, "
	    "which is 600 (from keyfile %s:3)",
	    timeouts, timeouts);

	fixture_load_fails(f, bad_port, m1);
	fixture_load_fails(f, unknown_key, m2);
	fixture_load_fails(f, unknown_group, m3);
	fixture_load_fails(f, timeouts, m4);
}

/* ACCEL from every source, and a bad value named with its source wherever it comes from */
static void
test_config_accel(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf = qsim_test_write(f->dir, "accel.conf", "[vm]\naccel=KVM\n");
	g_autofree gchar *bad_kf = qsim_test_write(f->dir, "bad-accel.conf", "[vm]\naccel=hvf\n");
	g_autofree gchar *bad_msg = g_strdup_printf(
	    "[vm] accel='hvf' (from keyfile %s:2): not an accelerator (use auto, kvm or tcg)",
	    bad_kf);
	g_autoptr(GError) error = NULL;

	/* keyfile, case-insensitive and printed normalised */
	fixture_load_ok(f, kf);
	g_assert_cmpint(qsim_config_get_accel(f->config), ==, QSIM_ACCEL_MODE_KVM);
	g_assert_cmpstr(qsim_config_get_string(f->config, "ACCEL"), ==, "kvm");
	g_assert_cmpint(qsim_config_get_source(f->config, "ACCEL"), ==, QSIM_CONFIG_SOURCE_KEYFILE);

	/* the environment beats the keyfile; the flag beats both */
	fixture_setenv(f, "SQLITE_SIM_ACCEL", "tcg");
	{
		g_autoptr(QsimConfig) config = qsim_config_new();
		g_assert_true(qsim_config_load(config, kf, f->envp, f->dir, &error));
		g_assert_no_error(error);
		g_assert_cmpint(qsim_config_get_accel(config), ==, QSIM_ACCEL_MODE_TCG);
		g_assert_true(qsim_config_set_flag(config, "ACCEL", "auto", &error));
		g_assert_no_error(error);
		g_assert_cmpint(qsim_config_get_accel(config), ==, QSIM_ACCEL_MODE_AUTO);
		g_assert_cmpstr(qsim_config_get_origin(config, "ACCEL"), ==, "--accel");
		g_assert_false(qsim_config_set_flag(config, "ACCEL", "fast", &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_assert_cmpstr(error->message, ==,
		                "--accel='fast' (from flag): not an accelerator (use auto, "
		                "kvm or tcg)");
		g_clear_error(&error);
	}
	fixture_load_fails(f, bad_kf, bad_msg);
}

/* Whatever bytes a key held, the message that quotes it is valid UTF-8 (a fuzzer found a
 * keyfile key of 0xff bytes echoed raw) */
static void
test_config_invalid_utf8_message(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf =
	    qsim_test_write(f->dir, "bad-bytes.conf", "[agent]\npoll_\xff\xfe=1\n");
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_config_load(f->config, kf, f->envp, f->dir, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_true(g_utf8_validate(error->message, -1, NULL));
	g_assert_nonnull(strstr(error->message, "unknown key"));
}

static void
test_config_dotenv_rejections(Fixture *f, gconstpointer data)
{
	const gchar *fixtures[] = {"bad-value.env", "unknown-prefixed.env", "malformed.env"};

	for (guint i = 0; i < G_N_ELEMENTS(fixtures); i++) {
		g_autofree gchar *src = qsim_test_fixture("config", fixtures[i]);
		g_autofree gchar *content = NULL;
		g_autofree gchar *path = NULL;
		g_autofree gchar *want = NULL;

		g_assert_true(g_file_get_contents(src, &content, NULL, NULL));
		path = qsim_test_write(f->dir, ".env", content);
		if (i == 0)
			want = g_strdup_printf(
			    "SQLITE_SIM_AGENT_COUNT='two' (from .env %s:2): not an integer", path);
		else if (i == 1)
			want = g_strdup_printf(
			    "QSIM_NOT_A_SETTING='1' (from .env %s:2): unknown setting", path);
		else
			want = g_strdup_printf("%s:4: expected KEY=VALUE", path);
		fixture_load_fails(f, NULL, want);
	}
}

static void
test_config_keyfile_syntax(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf1 = qsim_test_write(f->dir, "a.conf", "[api]\nport=1\n\ngarbage\n");
	g_autofree gchar *kf2 = qsim_test_write(f->dir, "b.conf", "# c\nport=1\n[api]\n");
	g_autofree gchar *kf3 = qsim_test_write(f->dir, "c.conf", "[api]\n=1\n");
	g_autofree gchar *m1 =
	    g_strdup_printf("%s:4: expected [group], key=value or # comment", kf1);
	g_autofree gchar *m2 = g_strdup_printf("%s:2: key=value before the first [group]", kf2);
	g_autofree gchar *m3 =
	    g_strdup_printf("%s:2: expected [group], key=value or # comment", kf3);

	fixture_load_fails(f, kf1, m1);
	fixture_load_fails(f, kf2, m2);
	fixture_load_fails(f, kf3, m3);
}

/* a bad value is reported even when a higher source would override it */
static void
test_config_no_silent_fallback(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kf = qsim_test_write(f->dir, "k.conf", "[agent]\ncount=zero\n");
	g_autofree gchar *want =
	    g_strdup_printf("[agent] count='zero' (from keyfile %s:2): not an integer", kf);

	fixture_setenv(f, "QSIM_AGENT_COUNT", "3");
	fixture_load_fails(f, kf, want);
}

static void
test_config_flags(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_config_set_flag(f->config, "API_PORT", "x", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, "--port='x' (from flag): not a port number");
	g_clear_error(&error);
	g_assert_false(qsim_config_set_flag(f->config, "AGENT_COUNT", "0", &error));
	g_assert_cmpstr(error->message, ==, "--agents='0' (from flag): must be at least 1");
	g_clear_error(&error);
	g_assert_false(qsim_config_set_flag(f->config, "NO_SUCH", "1", &error));
	g_assert_cmpstr(error->message, ==, "unknown setting 'NO_SUCH'");
	g_clear_error(&error);
	/* a setting without its own option is named as is */
	g_assert_false(qsim_config_set_flag(f->config, "LEASE_SECONDS", "-3", &error));
	g_assert_cmpstr(error->message, ==, "LEASE_SECONDS='-3' (from flag): must be at least 1");
	g_clear_error(&error);

	/* after load, a flag re-runs the cross checks */
	fixture_load_ok(f, NULL);
	g_assert_false(qsim_config_set_flag(f->config, "MAX_TIMEOUT", "10", &error));
	g_assert_cmpstr(error->message, ==,
	                "MAX_TIMEOUT='10' (from flag): must not be below DEFAULT_TIMEOUT, which "
	                "is 300 (from default)");
	g_assert_true(qsim_config_has_setting("QEMU"));
	g_assert_false(qsim_config_has_setting("qemu"));
}

static void
test_config_entries(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GError) error = NULL;
	gboolean seen_tokens = FALSE;
	gboolean seen_port = FALSE;

	fixture_setenv(f, "QSIM_API_TOKENS", "hunter2,swordfish");
	fixture_load_ok(f, NULL);
	g_assert_true(qsim_config_set_flag(f->config, "API_PORT", "9000", &error));
	entries = qsim_config_list_entries(f->config);
	g_assert_cmpuint(entries->len, ==, 47);
	for (guint i = 0; i < entries->len; i++) {
		const QsimConfigEntry *e = g_ptr_array_index(entries, i);

		/* a secret never leaves through the dump */
		g_assert_null(strstr(e->value, "hunter2"));
		if (g_strcmp0(e->name, "API_TOKENS") == 0) {
			seen_tokens = TRUE;
			g_assert_true(e->secret);
			g_assert_cmpstr(e->value, ==, "***");
			g_assert_cmpint(e->kind, ==, QSIM_CONFIG_KIND_LIST);
			g_assert_cmpint(e->source, ==, QSIM_CONFIG_SOURCE_ENVIRONMENT);
			g_assert_cmpstr(e->origin, ==, "QSIM_API_TOKENS");
		}
		if (g_strcmp0(e->name, "API_PORT") == 0) {
			seen_port = TRUE;
			g_assert_false(e->secret);
			g_assert_cmpstr(e->value, ==, "9000");
			g_assert_cmpint(e->kind, ==, QSIM_CONFIG_KIND_INT);
			g_assert_cmpstr(qsim_config_source_to_string(e->source), ==, "flag");
		}
	}
	g_assert_true(seen_tokens);
	g_assert_true(seen_port);
	g_assert_cmpstrv(qsim_config_get_api_tokens(f->config),
	                 ((const gchar *[]){"hunter2", "swordfish", NULL}));
	g_assert_cmpstr(qsim_config_source_to_string(QSIM_CONFIG_SOURCE_DOTENV), ==, ".env");
	g_assert_cmpstr(qsim_config_source_to_string(QSIM_CONFIG_SOURCE_KEYFILE), ==, "keyfile");
	g_assert_cmpstr(qsim_config_source_to_string(QSIM_CONFIG_SOURCE_DEFAULT), ==, "default");
	g_assert_cmpstr(qsim_config_source_to_string(QSIM_CONFIG_SOURCE_ENVIRONMENT), ==,
	                "environment");
}

/* DATABASE_URL: checked by libpq's parser, never echoed, shown without its password */
static void
test_config_database_url(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) entries = NULL;
	gboolean seen = FALSE;

	fixture_setenv(f, "QSIM_DATABASE_URL", "postgresql://qsim:pa55word@db.example:5432/qsim");
	fixture_setenv(f, "QSIM_DATABASE_PASSWORD_FILE", "/etc/qsim/db-password");
	fixture_load_ok(f, NULL);
	g_assert_false(qsim_config_store_is_sqlite(f->config));
	g_assert_cmpstr(qsim_config_get_store_location(f->config), ==,
	                "postgresql://qsim:pa55word@db.example:5432/qsim");
	g_assert_cmpstr(qsim_config_get_database_password_file(f->config), ==,
	                "/etc/qsim/db-password");
	entries = qsim_config_list_entries(f->config);
	for (guint i = 0; i < entries->len; i++) {
		const QsimConfigEntry *e = g_ptr_array_index(entries, i);

		g_assert_null(strstr(e->value, "pa55word"));
		if (g_strcmp0(e->name, "DATABASE_URL") == 0) {
			seen = TRUE;
			g_assert_cmpstr(e->value, ==, "postgresql://qsim:***@db.example:5432/qsim");
		}
	}
	g_assert_true(seen);
}

static void
test_config_database_url_invalid(Fixture *f, gconstpointer data)
{
	fixture_setenv(f, "QSIM_DATABASE_URL", "mysql://root:pa55word@db/qsim");
	fixture_load_fails(f, NULL,
	                   "QSIM_DATABASE_URL=<hidden> (from environment): not a postgresql:// or "
	                   "postgres:// URL");
}

static void
test_config_database_url_unparsable(Fixture *f, gconstpointer data)
{
	/* libpq refuses an unknown parameter; the message names it, not the password */
	fixture_setenv(f, "QSIM_DATABASE_URL", "postgres://u:pa55word@db/qsim?bogus_option=1");
	fixture_load_fails(f, NULL,
	                   "QSIM_DATABASE_URL=<hidden> (from environment): invalid PostgreSQL URL: "
	                   "invalid URI query parameter: \"bogus_option\"");
}

static void
test_config_generic_getters(Fixture *f, gconstpointer data)
{
	fixture_setenv(f, "QSIM_AGENT_POLL_INTERVAL", "0.25");
	fixture_setenv(f, "QSIM_ENABLE_CORS", "yes");
	fixture_load_ok(f, NULL);
	g_assert_cmpint(qsim_config_get_int(f->config, "API_PORT"), ==, 8000);
	g_assert_cmpfloat(qsim_config_get_double(f->config, "AGENT_POLL_INTERVAL"), ==, 0.25);
	g_assert_cmpstr(qsim_config_get_string(f->config, "AGENT_POLL_INTERVAL"), ==, "0.25");
	g_assert_true(qsim_config_get_bool(f->config, "ENABLE_CORS"));
	g_assert_cmpstr(qsim_config_get_string(f->config, "ENABLE_CORS"), ==, "true");
	g_assert_cmpstrv(qsim_config_get_list(f->config, "ALLOWED_ORIGINS"),
	                 ((const gchar *[]){"*", NULL}));
}

/* RETENTION and MIN_FREE_DISK: durations and sizes with units, and the safe defaults */
static void
test_config_retention_disk(Fixture *f, gconstpointer data)
{
	fixture_load_ok(f, NULL);
	g_assert_cmpint(qsim_config_get_retention_ms(f->config), ==, 0);
	g_assert_cmpuint(qsim_config_get_min_free_disk(f->config), ==, 512 * 1024 * 1024);
	fixture_setenv(f, "QSIM_RETENTION", "30d");
	fixture_setenv(f, "QSIM_MIN_FREE_DISK", "1GiB");
	fixture_load_ok(f, NULL);
	g_assert_cmpint(qsim_config_get_retention_ms(f->config), ==, 30LL * 24 * 3600 * 1000);
	g_assert_cmpstr(qsim_config_get_string(f->config, "RETENTION"), ==, "30d");
	g_assert_cmpuint(qsim_config_get_min_free_disk(f->config), ==, 1024 * 1024 * 1024);
	fixture_setenv(f, "QSIM_RETENTION", "12h");
	fixture_setenv(f, "QSIM_MIN_FREE_DISK", "0");
	fixture_load_ok(f, NULL);
	g_assert_cmpint(qsim_config_get_retention_ms(f->config), ==, 12LL * 3600 * 1000);
	g_assert_cmpuint(qsim_config_get_min_free_disk(f->config), ==, 0);
	/* a bare number is ambiguous (seconds? days?) and refused */
	fixture_setenv(f, "QSIM_RETENTION", "30");
	fixture_load_fails(f, NULL,
	                   "QSIM_RETENTION='30' (from environment): not a duration (use a whole "
	                   "number with s, m, h, d or w, e.g. 30d, or 0)");
	fixture_setenv(f, "QSIM_RETENTION", "0");
	fixture_setenv(f, "QSIM_MIN_FREE_DISK", "lots");
	fixture_load_fails(f, NULL,
	                   "QSIM_MIN_FREE_DISK='lots' (from environment): not a size (use bytes "
	                   "or a whole number with K, M, G or T, e.g. 512M)");
}

/* OUTPUT_LIMIT reads sizes with 1024-based suffixes and prints them back short */
static void
test_config_output_limit(Fixture *f, gconstpointer data)
{
	fixture_load_ok(f, NULL);
	g_assert_cmpuint(qsim_config_get_output_limit(f->config), ==, 64 * 1024 * 1024);
	g_assert_cmpstr(qsim_config_get_string(f->config, "OUTPUT_LIMIT"), ==, "64M");
	g_assert_cmpint(qsim_config_get_output_limit_action(f->config), ==,
	                QSIM_OUTPUT_LIMIT_ACTION_TRUNCATE);

	fixture_setenv(f, "QSIM_OUTPUT_LIMIT", "1536k");
	fixture_setenv(f, "QSIM_OUTPUT_LIMIT_ACTION", "fail");
	fixture_load_ok(f, NULL);
	g_assert_cmpuint(qsim_config_get_output_limit(f->config), ==, 1536 * 1024);
	g_assert_cmpstr(qsim_config_get_string(f->config, "OUTPUT_LIMIT"), ==, "1536K");
	g_assert_cmpint(qsim_config_get_output_limit_action(f->config), ==,
	                QSIM_OUTPUT_LIMIT_ACTION_FAIL);

	fixture_setenv(f, "QSIM_OUTPUT_LIMIT", "0");
	fixture_setenv(f, "QSIM_OUTPUT_LIMIT_ACTION", "truncate");
	fixture_load_ok(f, NULL);
	g_assert_cmpuint(qsim_config_get_output_limit(f->config), ==, 0);

	fixture_setenv(f, "QSIM_OUTPUT_LIMIT", "12Q");
	fixture_load_fails(f, NULL,
	                   "QSIM_OUTPUT_LIMIT='12Q' (from environment): not a size (use bytes or "
	                   "a whole number with K, M, G or T, e.g. 512M)");
	fixture_setenv(f, "QSIM_OUTPUT_LIMIT", "2T");
	fixture_load_fails(f, NULL,
	                   "QSIM_OUTPUT_LIMIT='2T' (from environment): must be between 0 and "
	                   "1099511627776 bytes");
	fixture_setenv(f, "QSIM_OUTPUT_LIMIT", "1M");
	fixture_setenv(f, "QSIM_OUTPUT_LIMIT_ACTION", "drop");
	fixture_load_fails(f, NULL,
	                   "QSIM_OUTPUT_LIMIT_ACTION='drop' (from environment): not an action "
	                   "(use truncate or fail)");
}

/* METRICS_LISTEN: off by default, host:port or [v6]:port, refused otherwise at load */
static void
test_config_metrics(Fixture *f, gconstpointer data)
{
	const gchar *bad[] = {"9464",     "127.0.0.1:", ":9464", "127.0.0.1:0", "127.0.0.1:70000",
	                      "::1:9464", "[::1]9464",  "a b:1"};
	g_autofree gchar *host = NULL;
	guint16 port = 0;

	fixture_load_ok(f, NULL);
	g_assert_cmpstr(qsim_config_get_metrics_listen(f->config), ==, "");
	g_assert_false(qsim_config_get_metrics_loopback_no_auth(f->config));

	fixture_setenv(f, "QSIM_METRICS_LISTEN", "[::1]:9464");
	fixture_setenv(f, "QSIM_METRICS_LOOPBACK_NO_AUTH", "yes");
	fixture_load_ok(f, NULL);
	g_assert_cmpstr(qsim_config_get_metrics_listen(f->config), ==, "[::1]:9464");
	g_assert_true(qsim_config_get_metrics_loopback_no_auth(f->config));
	g_assert_true(qsim_config_split_listen(qsim_config_get_metrics_listen(f->config), &host,
	                                       &port, NULL));
	g_assert_cmpstr(host, ==, "::1");
	g_assert_cmpuint(port, ==, 9464);

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *h = NULL;
		g_autoptr(GError) error = NULL;

		g_assert_false(qsim_config_split_listen(bad[i], &h, &port, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	}
	fixture_setenv(f, "QSIM_METRICS_LISTEN", "9464");
	fixture_load_fails(f, NULL,
	                   "QSIM_METRICS_LISTEN='9464' (from environment): must be host:port (an "
	                   "IPv6 address in brackets)");
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/common/config/defaults", test_config_defaults);
	ADD("/qsim/common/config/xdg-dirs", test_config_xdg_dirs);
	ADD("/qsim/common/config/keyfile", test_config_keyfile);
	ADD("/qsim/common/config/keyfile-search", test_config_keyfile_search);
	ADD("/qsim/common/config/keyfile-missing", test_config_keyfile_missing);
	ADD("/qsim/common/config/precedence", test_config_precedence);
	ADD("/qsim/common/config/dotenv-prefix-order", test_config_dotenv_prefix_order);
	ADD("/qsim/common/config/env-rejections", test_config_env_rejections);
	ADD("/qsim/common/config/bool-forms", test_config_bool_forms);
	ADD("/qsim/common/config/accel", test_config_accel);
	ADD("/qsim/common/config/invalid-utf8-message", test_config_invalid_utf8_message);
	ADD("/qsim/common/config/file-rejections", test_config_file_rejections);
	ADD("/qsim/common/config/keyfile-syntax", test_config_keyfile_syntax);
	ADD("/qsim/common/config/dotenv-rejections", test_config_dotenv_rejections);
	ADD("/qsim/common/config/no-silent-fallback", test_config_no_silent_fallback);
	ADD("/qsim/common/config/flags", test_config_flags);
	ADD("/qsim/common/config/entries", test_config_entries);
	ADD("/qsim/common/config/generic-getters", test_config_generic_getters);
	ADD("/qsim/common/config/retention-disk", test_config_retention_disk);
	ADD("/qsim/common/config/output-limit", test_config_output_limit);
	ADD("/qsim/common/config/metrics", test_config_metrics);
	ADD("/qsim/common/config/database-url", test_config_database_url);
	ADD("/qsim/common/config/database-url-invalid", test_config_database_url_invalid);
	ADD("/qsim/common/config/database-url-unparsable", test_config_database_url_unparsable);
	return g_test_run();
}
