#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "agent-test-util.h"
#include "common/qsim-vm-config.h"
#include "qsim-pg-fixture.h"
#include "store/qsim-store-factory.h"

static const gchar *
source_root(void)
{
	const gchar *root = g_getenv("QSIM_SOURCE_ROOT");

	return root != NULL ? root : SOURCE_ROOT;
}

/* Copies @name.conf, replacing BOOT_TIMEOUT when @boot_timeout is set. */
static void
copy_vm_config(const gchar *from_dir, const gchar *to_dir, const gchar *name,
               const gchar *boot_timeout)
{
	g_autofree gchar *file = g_strconcat(name, ".conf", NULL);
	g_autofree gchar *src = g_build_filename(from_dir, file, NULL);
	g_autofree gchar *dst = g_build_filename(to_dir, file, NULL);
	g_autofree gchar *text = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	g_auto(GStrv) lines = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(src, &text, NULL, &error));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (boot_timeout != NULL && g_str_has_prefix(lines[i], "BOOT_TIMEOUT="))
			g_string_append_printf(out, "BOOT_TIMEOUT=%s\n", boot_timeout);
		else if (g_str_has_prefix(lines[i], "APPEND=\"") &&
		         strstr(lines[i], "no_timer_check") == NULL)
			/* on a loaded TCG host the guest kernel's IO-APIC timer check can
			 * panic ("IO-APIC + timer doesn't work!"); skip it */
			g_string_append_printf(out, "APPEND=\"no_timer_check %s\n", lines[i] + 8);
		else if (lines[i][0] != '\0' || lines[i + 1] != NULL)
			g_string_append_printf(out, "%s\n", lines[i]);
	}
	g_assert_true(g_file_set_contents(dst, out->str, -1, &error));
}

void
agent_fixture_init(AgentFixture *fx)
{
	g_autoptr(GError) error = NULL;
	const gchar *confs = g_getenv("QSIM_AGENT_TEST_VM_CONFIGS");
	g_autofree gchar *src_confs = NULL;

	memset(fx, 0, sizeof(*fx));
	/* short: QEMU's QMP socket path must fit a sockaddr_un */
	fx->dir = g_dir_make_tmp("qag-XXXXXX", &error);
	g_assert_no_error(error);
	fx->db_path = g_build_filename(fx->dir, "db.sqlite", NULL);
	fx->run_dir = g_build_filename(fx->dir, "run", NULL);
	fx->config_dir = g_build_filename(fx->dir, "vmconf", NULL);
	fx->images_dir = g_build_filename(source_root(), "vm_images", NULL);
	g_assert_cmpint(g_mkdir_with_parents(fx->config_dir, 0700), ==, 0);
	src_confs = confs != NULL
	                ? g_strdup(confs)
	                : g_build_filename(source_root(), "tests", "data", "vm_configs", NULL);
	copy_vm_config(src_confs, fx->config_dir, "tiny", NULL);
	/* the guest never answers: a short boot deadline keeps the test lean */
	copy_vm_config(src_confs, fx->config_dir, "tiny-nossh", "6");
	{
		/* the guest hides its sftp-server: file transfers take the exec fallback */
		g_autofree gchar *nosftp = g_build_filename(src_confs, "tiny-nosftp.conf", NULL);

		if (g_file_test(nosftp, G_FILE_TEST_EXISTS))
			copy_vm_config(src_confs, fx->config_dir, "tiny-nosftp", NULL);
	}
	if (qsim_pg_test_wanted()) {
		fx->db_url = qsim_pg_server_create_database(qsim_pg_server_get_shared(), &error);
		g_assert_no_error(error);
	}
	fx->store = qsim_store_open(fx->db_url != NULL ? fx->db_url : fx->db_path, &error);
	g_assert_no_error(error);
}

static gchar **
fixture_env(AgentFixture *fx, gchar **env, const gchar *const *overrides)
{
	env = g_environ_setenv(env, "QSIM_DB_PATH", fx->db_path, TRUE);
	if (fx->db_url != NULL)
		env = g_environ_setenv(env, "QSIM_DATABASE_URL", fx->db_url, TRUE);
	else
		env = g_environ_unsetenv(env, "QSIM_DATABASE_URL");
	env = g_environ_setenv(env, "QSIM_RUN_DIR", fx->run_dir, TRUE);
	env = g_environ_setenv(env, "QSIM_VM_IMAGES_DIR", fx->images_dir, TRUE);
	env = g_environ_setenv(env, "QSIM_VM_CONFIG_DIR", fx->config_dir, TRUE);
	env = g_environ_setenv(env, "QSIM_AGENT_POLL_INTERVAL", "0.2", TRUE);
	/* no keyfile of the user's may leak in */
	env = g_environ_setenv(env, "XDG_CONFIG_HOME", fx->dir, TRUE);
	env = g_environ_setenv(env, "HOME", fx->dir, TRUE);
	for (guint i = 0; overrides != NULL && overrides[i] != NULL; i++) {
		g_auto(GStrv) kv = g_strsplit(overrides[i], "=", 2);

		g_assert_nonnull(kv[1]);
		env = g_environ_setenv(env, kv[0], kv[1], TRUE);
	}
	return env;
}

gchar **
agent_fixture_environ(AgentFixture *fx, const gchar *const *overrides)
{
	return fixture_env(fx, g_get_environ(), overrides);
}

void
agent_fixture_config(AgentFixture *fx, ...)
{
	g_autoptr(GPtrArray) overrides = g_ptr_array_new();
	g_auto(GStrv) env = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *kv;
	va_list args;

	va_start(args, fx);
	while ((kv = va_arg(args, const gchar *)) != NULL)
		g_ptr_array_add(overrides, (gpointer)kv);
	va_end(args);
	g_ptr_array_add(overrides, NULL);
	/* only our settings: the test process's own QSIM_* must not change them */
	env = fixture_env(fx, NULL, (const gchar *const *)overrides->pdata);
	g_clear_object(&fx->config);
	fx->config = qsim_config_new();
	g_assert_true(qsim_config_load(fx->config, NULL, env, fx->dir, &error));
	g_assert_no_error(error);
}

void
agent_fixture_clear(AgentFixture *fx)
{
	/* on PostgreSQL nothing fell back to a SQLite file */
	if (fx->db_url != NULL)
		g_assert_false(g_file_test(fx->db_path, G_FILE_TEST_EXISTS));
	g_clear_object(&fx->config);
	g_clear_object(&fx->store);
	if (fx->dir != NULL)
		qsim_test_rm_rf(fx->dir);
	g_free(fx->dir);
	g_free(fx->db_path);
	g_free(fx->db_url);
	g_free(fx->run_dir);
	g_free(fx->config_dir);
	g_free(fx->images_dir);
	memset(fx, 0, sizeof(*fx));
}

gboolean
agent_test_require_vm(AgentFixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) vmc =
	    qsim_vm_config_load(fx->images_dir, fx->config_dir, "tiny", &error);

	if (vmc != NULL)
		return TRUE;
	if (g_getenv("QSIM_REQUIRE_VM") != NULL)
		g_error("the tiny guest is required (QSIM_REQUIRE_VM): %s", error->message);
	g_test_skip_printf("no tiny guest (meson compile -C build guest-image): %s",
	                   error->message);
	return FALSE;
}

typedef struct {
	gboolean timed_out;
} WaitGuard;

static gboolean
wait_guard_cb(gpointer user_data)
{
	((WaitGuard *)user_data)->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
wait_tick_cb(gpointer user_data)
{
	return G_SOURCE_CONTINUE;
}

gboolean
agent_test_wait(gboolean (*pred)(gpointer), gpointer data, guint timeout_s)
{
	WaitGuard guard = {FALSE};
	guint id = g_timeout_add_seconds(timeout_s, wait_guard_cb, &guard);
	/* the predicate may depend on other processes: wake up to look again */
	guint tick = g_timeout_add(50, wait_tick_cb, NULL);
	gboolean ok;

	while (!(ok = pred(data)) && !guard.timed_out)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(tick);
	if (!guard.timed_out)
		g_source_remove(id);
	return ok;
}

QsimRequest *
agent_test_get(AgentFixture *fx, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	QsimRequest *r = qsim_store_get_request(fx->store, uuid, 36, &error);

	g_assert_no_error(error);
	g_assert_nonnull(r);
	return r;
}

QsimStatus
agent_test_status(AgentFixture *fx, const gchar *uuid)
{
	g_autoptr(QsimRequest) r = agent_test_get(fx, uuid);

	return r->status;
}

typedef struct {
	AgentFixture *fx;
	const gchar *uuid;
} FinalWait;

static gboolean
is_final_cb(gpointer user_data)
{
	FinalWait *w = user_data;
	g_autoptr(QsimRequest) r = agent_test_get(w->fx, w->uuid);

	/* final and released: the agent wrote its status and dropped the VM slot */
	return qsim_status_is_final(r->status) && r->lease_expires_at == 0;
}

QsimRequest *
agent_test_wait_final(AgentFixture *fx, const gchar *uuid, guint timeout_s)
{
	FinalWait w = {fx, uuid};

	if (!agent_test_wait(is_final_cb, &w, timeout_s)) {
		g_autoptr(QsimRequest) r = agent_test_get(fx, uuid);
		g_error("request %s still %s after %u s", uuid, qsim_status_to_string(r->status),
		        timeout_s);
	}
	return agent_test_get(fx, uuid);
}

GPtrArray *
agent_test_logs(AgentFixture *fx, const gchar *uuid)
{
	GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	gint64 after = 0;

	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) page = qsim_store_read_logs(
		    fx->store, uuid, after, QSIM_STORE_LOGS_MAX_LIMIT, -1, &error);

		g_assert_no_error(error);
		if (page->len == 0)
			break;
		for (guint i = 0; i < page->len; i++) {
			QsimLogEntry *e = g_ptr_array_index(page, i);

			after = e->seq;
			g_ptr_array_add(all, qsim_log_entry_copy(e));
		}
	}
	return all;
}

GByteArray *
agent_test_log_bytes(AgentFixture *fx, const gchar *uuid, gint log_type)
{
	g_autoptr(GPtrArray) logs = agent_test_logs(fx, uuid);
	GByteArray *out = g_byte_array_new();

	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		gsize len = 0;
		const guint8 *d = g_bytes_get_data(e->output, &len);

		if (log_type < 0 || (gint)e->log_type == log_type)
			g_byte_array_append(out, d, (guint)len);
	}
	return out;
}

/* the logs of @log_type (or all, for -1) as one NUL-terminated string */
gchar *
agent_test_log_text(AgentFixture *fx, const gchar *uuid, gint log_type)
{
	g_autoptr(GByteArray) b = agent_test_log_bytes(fx, uuid, log_type);

	g_byte_array_append(b, (const guint8 *)"", 1);
	return g_strdup((const gchar *)b->data);
}

/* creates a pending request through the store; returns its uuid */
gchar *
agent_test_submit(AgentFixture *fx, const gchar *vm, const gchar *commands, gint64 timeout_s)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r =
	    qsim_store_create_request(fx->store, vm, commands, timeout_s, &error);

	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

guint
agent_test_count_procs(const gchar *needle)
{
	g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
	const gchar *name;
	guint n = 0;

	while (proc != NULL && (name = g_dir_read_name(proc)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *cmdline = NULL;
		gsize len = 0;

		if (!g_ascii_isdigit(name[0]))
			continue;
		path = g_build_filename("/proc", name, "cmdline", NULL);
		if (!g_file_get_contents(path, &cmdline, &len, NULL) || len == 0)
			continue;
		/* NULs between the arguments: search the joined text */
		for (gsize i = 0; i + 1 < len; i++) {
			if (cmdline[i] == '\0')
				cmdline[i] = ' ';
		}
		if (strstr(cmdline, needle) != NULL) {
			g_autofree gchar *stat_path = g_build_filename("/proc", name, "stat", NULL);
			g_autofree gchar *stat = NULL;
			const gchar *p;

			/* a zombie is gone for our purposes */
			if (g_file_get_contents(stat_path, &stat, NULL, NULL) &&
			    (p = strrchr(stat, ')')) != NULL && p[1] == ' ' && p[2] == 'Z')
				continue;
			n++;
		}
	}
	return n;
}

guint
agent_test_count_dir(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	guint n = 0;

	while (d != NULL && g_dir_read_name(d) != NULL)
		n++;
	return n;
}
