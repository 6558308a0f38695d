#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "agent-test-util.h"
#include "agent/qsim-agent.h"
#include "agent/qsim-agent-recovery.h"
#include "common/qsim-layout.h"

/* hang guards only, far above a healthy run on a loaded 2-core TCG host */
#define RUN_TIMEOUT_S 300
#define MANY_TIMEOUT_S 1500

/* `qsimd agents` processes on one database, crashes and signals. */
typedef struct {
	AgentFixture fx;
	GPtrArray *procs; /* (element-type GSubprocess) still to reap in teardown */
	guint n_started;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	agent_fixture_init(&f->fx);
	f->procs = g_ptr_array_new_with_free_func(g_object_unref);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	/* a failed test must not leave a daemon or a QEMU behind */
	for (guint i = 0; i < f->procs->len; i++) {
		GSubprocess *p = g_ptr_array_index(f->procs, i);

		g_subprocess_force_exit(p);
		g_subprocess_wait(p, NULL, NULL);
	}
	if (f->fx.run_dir != NULL) {
		g_autoptr(GDir) dir = g_dir_open(f->fx.run_dir, 0, NULL);
		const gchar *name;

		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
			qsim_agent_recovery_clean_request(f->fx.run_dir, name, NULL);
	}
	g_ptr_array_unref(f->procs);
	agent_fixture_clear(&f->fx);
}

/* Starts `qsimd agents` with the fixture's settings plus "KEY=VALUE" overrides. */
static GSubprocess *
spawn_agents(Fixture *f, ...)
{
	g_autoptr(GPtrArray) overrides = g_ptr_array_new();
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_autofree gchar *log = NULL;
	g_auto(GStrv) env = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {qsim_test_qsimd_path(), "agents", NULL};
	GSubprocess *proc;
	const gchar *kv;
	va_list args;

	va_start(args, f);
	while ((kv = va_arg(args, const gchar *)) != NULL)
		g_ptr_array_add(overrides, (gpointer)kv);
	va_end(args);
	g_ptr_array_add(overrides, "QSIM_LOG_LEVEL=INFO");
	g_ptr_array_add(overrides, NULL);
	env = agent_fixture_environ(&f->fx, (const gchar *const *)overrides->pdata);
	g_subprocess_launcher_set_environ(launcher, env);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	log = g_strdup_printf("%s/qsimd-%u.log", f->fx.dir, f->n_started++);
	g_subprocess_launcher_set_stdout_file_path(launcher, log);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	g_ptr_array_add(f->procs, proc);
	return proc;
}

static gboolean
flag_cb(gpointer user_data)
{
	return *(gboolean *)user_data;
}

static void
wait_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	*(gboolean *)user_data = TRUE;
}

/* Waits (bounded) for @proc to end. Returns: TRUE when it exited with status 0 */
static gboolean
wait_proc(GSubprocess *proc, guint timeout_s)
{
	gboolean done = FALSE;

	g_subprocess_wait_async(proc, NULL, wait_done_cb, &done);
	g_assert_true(agent_test_wait(flag_cb, &done, timeout_s));
	return g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0;
}

typedef struct {
	Fixture *f;
	const gchar *uuid;
} Wait;

/* running, and the first line of the command's output is stored */
static gboolean
started_cb(gpointer user_data)
{
	Wait *w = user_data;
	g_autofree gchar *out = agent_test_log_text(&w->f->fx, w->uuid, QSIM_LOG_STDOUT);

	return strstr(out, "started\n") != NULL;
}

static guint
count_substr(const gchar *haystack, const gchar *needle)
{
	guint n = 0;

	for (const gchar *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

typedef struct {
	Fixture *f;
	gchar **uuids;
	guint n;
	guint max_qemus;
} Many;

static gboolean
many_final_cb(gpointer user_data)
{
	Many *m = user_data;

	m->max_qemus = MAX(m->max_qemus, agent_test_count_procs(m->f->fx.run_dir));
	for (guint i = 0; i < m->n; i++) {
		g_autoptr(QsimRequest) r = agent_test_get(&m->f->fx, m->uuids[i]);

		if (!qsim_status_is_final(r->status) || r->lease_expires_at != 0)
			return FALSE;
	}
	return TRUE;
}

static void
test_two_processes(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) agents = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GSubprocess *a, *b;
	Many m = {f, NULL, 20, 0};

	if (!agent_test_require_vm(&f->fx))
		return;
	for (guint i = 0; i < m.n; i++) {
		g_autofree gchar *cmd = g_strdup_printf("echo request-%u", i);
		g_ptr_array_add(uuids, agent_test_submit(&f->fx, "tiny", cmd, 300));
	}
	m.uuids = (gchar **)uuids->pdata;
	/* the cap is for the whole database: 2 VMs, though 4 agents could claim */
	a = spawn_agents(f, "QSIM_AGENT_COUNT=2", "QSIM_MAX_CONCURRENT_VMS=2", NULL);
	b = spawn_agents(f, "QSIM_AGENT_COUNT=2", "QSIM_MAX_CONCURRENT_VMS=2", NULL);
	g_assert_true(agent_test_wait(many_final_cb, &m, MANY_TIMEOUT_S));
	g_test_message("at most %u QEMUs at once", m.max_qemus);
	g_assert_cmpuint(m.max_qemus, <=, 2);
	for (guint i = 0; i < m.n; i++) {
		g_autoptr(QsimRequest) r = agent_test_get(&f->fx, m.uuids[i]);
		g_autofree gchar *want = g_strdup_printf("request-%u\n", i);
		g_autofree gchar *out = agent_test_log_text(&f->fx, m.uuids[i], QSIM_LOG_STDOUT);
		g_autofree gchar *system = agent_test_log_text(&f->fx, m.uuids[i], QSIM_LOG_SYSTEM);
		g_autofree gchar *host = NULL;
		GPid pid = 0;

		/* exactly once: one claim, one run, one output */
		g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
		g_assert_cmpuint(r->attempts, ==, 1);
		g_assert_true(qsim_agent_id_parse(r->agent_id, &host, &pid));
		g_assert_true(pid == atoi(g_subprocess_get_identifier(a)) ||
		              pid == atoi(g_subprocess_get_identifier(b)));
		g_assert_cmpuint(count_substr(system, "claimed by agent"), ==, 1);
		/* the start names its accelerator and why (ACCEL from the agents' resolver) */
		g_assert_cmpuint(count_substr(system, "accelerator: "), ==, 1);
		g_assert_true(strstr(system, "accelerator: tcg (ACCEL=") != NULL ||
		              strstr(system, "accelerator: kvm (ACCEL=") != NULL);
		g_assert_cmpstr(out, ==, want);
		g_hash_table_add(agents, g_strdup(r->agent_id));
	}
	g_test_message("%u distinct agents ran the 20 requests", g_hash_table_size(agents));
	g_subprocess_send_signal(a, SIGTERM);
	g_subprocess_send_signal(b, SIGTERM);
	g_assert_true(wait_proc(a, RUN_TIMEOUT_S));
	g_assert_true(wait_proc(b, RUN_TIMEOUT_S));
	g_assert_cmpuint(agent_test_count_dir(f->fx.run_dir), ==, 0);
}

static void
test_kill9_restart(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autofree gchar *root = NULL;
	GSubprocess *first, *second;
	Wait w = {f, NULL};

	if (!agent_test_require_vm(&f->fx))
		return;
	uuid = agent_test_submit(&f->fx, "tiny", "echo started; sleep 600", 300);
	w.uuid = uuid;
	root = g_build_filename(f->fx.run_dir, uuid, NULL);
	/* a long lease: only the restart's own recovery can end it in time */
	first = spawn_agents(f, "QSIM_AGENT_COUNT=1", "QSIM_LEASE_SECONDS=600", NULL);
	g_assert_true(agent_test_wait(started_cb, &w, RUN_TIMEOUT_S));
	g_assert_cmpint(agent_test_status(&f->fx, uuid), ==, QSIM_STATUS_RUNNING);
	g_subprocess_force_exit(first);
	g_assert_false(wait_proc(first, RUN_TIMEOUT_S));
	/* QsimVm asks the kernel to kill QEMU with its parent (PR_SET_PDEATHSIG); if one
	 * survived anyway, recovery must kill it by its pidfile */
	g_test_message("%u QEMU left after kill -9 of its daemon", agent_test_count_procs(root));
	g_assert_cmpint(agent_test_status(&f->fx, uuid), ==, QSIM_STATUS_RUNNING);

	second = spawn_agents(f, "QSIM_AGENT_COUNT=1", "QSIM_LEASE_SECONDS=600", NULL);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	/* the commands had started: never run twice, failed with the reason */
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_cmpstr(r->error, ==, "agent lost");
	g_assert_cmpuint(r->attempts, ==, 1);
	g_assert_cmpuint(agent_test_count_procs(root), ==, 0);
	g_assert_false(g_file_test(root, G_FILE_TEST_EXISTS));
	g_subprocess_send_signal(second, SIGTERM);
	g_assert_true(wait_proc(second, RUN_TIMEOUT_S));
}

static void
test_sigterm(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	GSubprocess *proc;
	Wait w = {f, NULL};

	if (!agent_test_require_vm(&f->fx))
		return;
	uuid = agent_test_submit(&f->fx, "tiny", "echo started; sleep 600", 300);
	w.uuid = uuid;
	proc = spawn_agents(f, "QSIM_AGENT_COUNT=1", "QSIM_SHUTDOWN_GRACE=1", NULL);
	g_assert_true(agent_test_wait(started_cb, &w, RUN_TIMEOUT_S));
	g_subprocess_send_signal(proc, SIGTERM);
	/* a clean exit only after the VM is gone and the status written */
	g_assert_true(wait_proc(proc, RUN_TIMEOUT_S));
	r = agent_test_get(&f->fx, uuid);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_cmpstr(r->error, ==, "agent shut down");
	g_assert_cmpint(r->lease_expires_at, ==, 0);
	g_assert_cmpuint(agent_test_count_procs(f->fx.run_dir), ==, 0);
	g_assert_cmpuint(agent_test_count_dir(f->fx.run_dir), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/agent/daemon/sigterm", Fixture, NULL, fixture_setup, test_sigterm,
	           fixture_teardown);
	g_test_add("/qsim/agent/daemon/kill9-restart", Fixture, NULL, fixture_setup,
	           test_kill9_restart, fixture_teardown);
	g_test_add("/qsim/agent/daemon/two-processes", Fixture, NULL, fixture_setup,
	           test_two_processes, fixture_teardown);
	return g_test_run();
}
