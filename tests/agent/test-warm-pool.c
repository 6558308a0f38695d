#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-test-util.h"
#include "agent/qsim-agent-pool.h"
#include "agent/qsim-agent-recovery.h"
#include "agent/qsim-job.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-vm-config.h"
#include "store/qsim-log-entry.h"
#include "vm/qsim-template.h"
#include "vm/qsim-vm-rundir.h"
#include "common/qsim-layout.h"

/*
 * The warm pool end to end: a real QsimAgentPool (and `qsimd agents` for SIGTERM) on a
 * real database, the real tiny guest restored from a template built once for all tests
 * (every fixture's tiny.conf has the same content, so the template fits them all).
 */

static gchar *shared_state_dir;

typedef struct {
	AgentFixture fx;
	QsimAgentPool *pool;
	gchar *warm_root;
} Fixture;

static void
wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

static gboolean
have_result(gpointer data)
{
	return *(GAsyncResult **)data != NULL;
}

static void
append_line(const gchar *path, const gchar *line)
{
	g_autofree gchar *text = NULL;
	g_autofree gchar *more = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	more = g_strconcat(text, line, "\n", NULL);
	g_assert_true(g_file_set_contents(path, more, -1, &error));
}

/* tiny with WARM_POOL_SIZE=1, and `other`: the same guest without a warm pool */
static void
fixture_init(Fixture *f)
{
	g_autofree gchar *tiny = NULL;
	g_autofree gchar *other = NULL;
	g_autofree gchar *text = NULL;

	agent_fixture_init(&f->fx);
	tiny = g_build_filename(f->fx.config_dir, "tiny.conf", NULL);
	other = g_build_filename(f->fx.config_dir, "other.conf", NULL);
	g_assert_true(g_file_get_contents(tiny, &text, NULL, NULL));
	g_assert_true(g_file_set_contents(other, text, -1, NULL));
	append_line(tiny, "WARM_POOL_SIZE=1");
	f->warm_root = g_build_filename(f->fx.run_dir, QSIM_LAYOUT_WARM_DIR, NULL);
}

static QsimTemplate *
tiny_template(void)
{
	return qsim_template_new(shared_state_dir, "tiny");
}

/* Builds the shared template unless it is ready. Returns FALSE when no VM can run. */
static gboolean
fixture_setup(Fixture *f, const gchar *max_vms, gboolean start_pool)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplate) tpl = tiny_template();
	g_autoptr(QsimVmConfig) config = NULL;
	g_autofree gchar *state = g_strdup_printf("QSIM_STATE_DIR=%s", shared_state_dir);
	g_autofree gchar *reason = NULL;

	fixture_init(f);
	agent_fixture_config(&f->fx, state, "QSIM_WARM_POOL_SIZE=4", max_vms, "QSIM_AGENT_COUNT=1",
	                     "QSIM_AGENT_POLL_INTERVAL=0.2", NULL);
	if (!agent_test_require_vm(&f->fx))
		return FALSE;
	config = qsim_vm_config_load(f->fx.images_dir, f->fx.config_dir, "tiny", &error);
	g_assert_no_error(error);
	if (qsim_template_check(tpl, config, &reason) != QSIM_TEMPLATE_STATE_READY) {
		g_autoptr(GAsyncResult) res = NULL;

		qsim_template_build_async(tpl, g_steal_pointer(&config), f->fx.run_dir, NULL,
		                          wait_cb, &res);
		/* a hang guard only: a build is about 10 s here */
		g_assert_true(agent_test_wait(have_result, &res, 300));
		g_assert_true(qsim_template_build_finish(tpl, res, &error));
		g_assert_no_error(error);
	}
	if (!start_pool)
		return TRUE;
	f->pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	g_assert_true(qsim_agent_pool_start(f->pool, &error));
	g_assert_no_error(error);
	return TRUE;
}

static void
fixture_stop_pool(Fixture *f)
{
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	if (f->pool == NULL)
		return;
	qsim_agent_pool_stop_async(f->pool, 1000, NULL, wait_cb, &res);
	g_assert_true(agent_test_wait(have_result, &res, 120));
	g_assert_true(qsim_agent_pool_stop_finish(f->pool, res, &error));
	g_assert_no_error(error);
	g_clear_object(&f->pool);
}

static void
fixture_teardown(Fixture *f)
{
	fixture_stop_pool(f);
	g_free(f->warm_root);
	agent_fixture_clear(&f->fx);
}

typedef struct {
	Fixture *f;
	const gchar *vm;
	guint parked;
} ParkedWait;

static gboolean
parked_is(gpointer data)
{
	ParkedWait *w = data;
	guint parked = 0;

	qsim_warm_pool_get_counts(qsim_agent_pool_get_warm_pool(w->f->pool), w->vm, &parked, NULL);
	return parked == w->parked;
}

/* Waits (hang guard, not a timing assertion) for @n parked warm VMs of @vm. */
static void
wait_parked(Fixture *f, const gchar *vm, guint n)
{
	ParkedWait w = {f, vm, n};

	g_assert_true(agent_test_wait(parked_is, &w, 120));
}

static gboolean
never(gpointer data)
{
	return FALSE;
}

static gboolean
system_log_has(Fixture *f, const gchar *uuid, const gchar *needle)
{
	g_autofree gchar *text = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);

	return strstr(text, needle) != NULL;
}

/* the guest's `date -u +%s` against the host's clock when that output was stored */
static void
assert_clock_right(Fixture *f, const gchar *uuid)
{
	g_autoptr(GPtrArray) logs = agent_test_logs(&f->fx, uuid);
	gboolean checked = FALSE;

	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		g_autofree gchar *out = NULL;
		gsize len = 0;
		const gchar *data;

		if (e->log_type != QSIM_LOG_STDOUT || checked)
			continue;
		data = g_bytes_get_data(e->output, &len);
		out = g_strndup(data, len);
		g_assert_cmpfloat(ABS(g_ascii_strtod(out, NULL) - e->timestamp_ms / 1000.0), <=,
		                  2.0);
		checked = TRUE;
	}
	g_assert_true(checked);
}

static void
test_hand_off(void)
{
	Fixture f = {0};
	g_autofree gchar *uuid1 = NULL;
	g_autofree gchar *uuid2 = NULL;
	g_autoptr(QsimRequest) r1 = NULL;
	g_autoptr(QsimRequest) r2 = NULL;
	g_autofree gchar *out2 = NULL;
	g_autofree gchar *root1 = NULL;

	if (fixture_setup(&f, "QSIM_MAX_CONCURRENT_VMS=3", TRUE)) {
		wait_parked(&f, "tiny", 1);
		/* parked a few seconds: the guest's clock stood still meanwhile */
		agent_test_wait(never, NULL, 4);
		uuid1 = agent_test_submit(&f.fx, "tiny", "date -u +%s; echo mine > /root/warm-mark",
		                          60);
		r1 = agent_test_wait_final(&f.fx, uuid1, 120);
		g_assert_cmpint(r1->status, ==, QSIM_STATUS_DONE);
		g_assert_cmpint(r1->start_mode, ==, QSIM_START_MODE_WARM);
		g_assert_true(system_log_has(&f, uuid1,
		                             "started from the warm pool (restored from "
		                             "snapshot "));
		g_assert_true(system_log_has(&f, uuid1, "guest clock set from the host"));
		g_assert_false(system_log_has(&f, uuid1, "cold boot"));
		assert_clock_right(&f, uuid1);
		/* the request's run dir is gone, and with it the link to the warm VM's */
		root1 = qsim_layout_dup_request_root(f.fx.run_dir, uuid1);
		g_assert_false(g_file_test(root1, G_FILE_TEST_EXISTS));

		/* refilled; the next warm VM is another restore, on its own disk */
		wait_parked(&f, "tiny", 1);
		uuid2 =
		    agent_test_submit(&f.fx, "tiny", "test ! -e /root/warm-mark && echo clean", 60);
		r2 = agent_test_wait_final(&f.fx, uuid2, 120);
		g_assert_cmpint(r2->status, ==, QSIM_STATUS_DONE);
		g_assert_cmpint(r2->start_mode, ==, QSIM_START_MODE_WARM);
		out2 = agent_test_log_text(&f.fx, uuid2, QSIM_LOG_STDOUT);
		g_assert_cmpstr(out2, ==, "clean\n");

		/* stopping the agents destroys every warm VM */
		wait_parked(&f, "tiny", 1);
		fixture_stop_pool(&f);
		g_assert_cmpuint(agent_test_count_procs(f.fx.run_dir), ==, 0);
		g_assert_cmpuint(agent_test_count_dir(f.warm_root), ==, 0);
	}
	fixture_teardown(&f);
}

/* Returns: the pid of the only QEMU under RUN_DIR/warm (from its pidfile) */
static GPid
warm_qemu_pid(Fixture *f)
{
	g_autoptr(GDir) dir = g_dir_open(f->warm_root, 0, NULL);
	const gchar *name;
	GPid pid = 0;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(f->warm_root, name, "qemu.pid", NULL);
		g_autofree gchar *text = NULL;

		g_assert_cmpint(pid, ==, 0);
		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		pid = (GPid)g_ascii_strtoll(text, NULL, 10);
	}
	g_assert_cmpint(pid, >, 1);
	return pid;
}

typedef struct {
	Fixture *f;
	GPid old;
} ReplacedWait;

static gboolean
replaced(gpointer data)
{
	ReplacedWait *w = data;
	guint parked = 0;

	qsim_warm_pool_get_counts(qsim_agent_pool_get_warm_pool(w->f->pool), "tiny", &parked, NULL);
	return parked == 1 && agent_test_count_dir(w->f->warm_root) == 1 &&
	       warm_qemu_pid(w->f) != w->old;
}

static void
test_died_replaced(void)
{
	Fixture f = {0};
	ReplacedWait w = {&f, 0};
	GLogLevelFlags fatal;
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;

	if (fixture_setup(&f, "QSIM_MAX_CONCURRENT_VMS=2", TRUE)) {
		wait_parked(&f, "tiny", 1);
		w.old = warm_qemu_pid(&f);
		/* the pool warns about the QEMU this test kills: not fatal meanwhile */
		fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
		g_assert_cmpint(kill(w.old, SIGKILL), ==, 0);
		g_assert_true(agent_test_wait(replaced, &w, 120));
		g_log_set_always_fatal(fatal);
		uuid = agent_test_submit(&f.fx, "tiny", "echo replaced", 60);
		r = agent_test_wait_final(&f.fx, uuid, 120);
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_cmpint(r->start_mode, ==, QSIM_START_MODE_WARM);
	}
	fixture_teardown(&f);
}

static gboolean
pool_has_parked(gpointer data)
{
	guint parked = 0;

	qsim_warm_pool_get_counts(QSIM_WARM_POOL(data), "tiny", &parked, NULL);
	return parked > 0;
}

/* A warm VM that is dead by the time a job takes it: the job starts the normal way. */
static void
test_dead_at_hand_off(void)
{
	Fixture f = {0};
	g_autoptr(QsimWarmPool) pool = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) created = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimTemplateService) service = NULL;
	g_autoptr(QsimJob) job = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	QsimStatus status;

	if (fixture_setup(&f, "QSIM_MAX_CONCURRENT_VMS=2", FALSE)) {
		pool = qsim_warm_pool_new(f.fx.config, NULL, NULL);
		qsim_warm_pool_start(pool);
		g_assert_true(agent_test_wait(pool_has_parked, pool, 120));
		created =
		    qsim_store_create_request(f.fx.store, "tiny", "echo survived", 60, &error);
		g_assert_no_error(error);
		claimed = qsim_store_claim_next(f.fx.store, "agent-warm", 60000, 0, &error);
		g_assert_no_error(error);
		job = qsim_job_new(f.fx.config, f.fx.store, "agent-warm", claimed);
		service = qsim_template_service_new(f.fx.config, f.fx.store);
		qsim_job_set_template_service(job, service);
		qsim_job_set_warm_pool(job, pool);
		/* no main loop turn between the kill and the take: the pool cannot know */
		g_assert_cmpint(kill(warm_qemu_pid(&f), SIGKILL), ==, 0);
		qsim_job_run_async(job, wait_cb, &res);
		g_assert_true(agent_test_wait(have_result, &res, 300));
		g_assert_true(qsim_job_run_finish(job, res, &status, &error));
		g_assert_no_error(error);
		r = agent_test_get(&f.fx, created->uuid);
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_true(system_log_has(&f, r->uuid, "started from the warm pool"));
		g_assert_true(system_log_has(&f, r->uuid, "warm VM failed"));
		g_assert_cmpint(r->start_mode, !=, QSIM_START_MODE_WARM);
		qsim_warm_pool_clear(pool);
	}
	fixture_teardown(&f);
}

typedef struct {
	Fixture *f;
	const gchar *uuid;
	guint warm_while_running;
	gboolean seen_running;
} RunningWait;

static gboolean
running_seen(gpointer data)
{
	RunningWait *w = data;

	if (agent_test_status(&w->f->fx, w->uuid) != QSIM_STATUS_RUNNING)
		return FALSE;
	w->seen_running = TRUE;
	w->warm_while_running =
	    qsim_warm_pool_get_counts(qsim_agent_pool_get_warm_pool(w->f->pool), NULL, NULL, NULL);
	return TRUE;
}

static void
test_cap(void)
{
	Fixture f = {0};
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	RunningWait w = {0};

	if (fixture_setup(&f, "QSIM_MAX_CONCURRENT_VMS=1", TRUE)) {
		wait_parked(&f, "tiny", 1);
		/* the only slot is held by a warm VM of tiny: a request for other needs it */
		uuid = agent_test_submit(&f.fx, "other", "sleep 2; echo other", 60);
		w.f = &f;
		w.uuid = uuid;
		g_assert_true(agent_test_wait(running_seen, &w, 120));
		g_assert_cmpuint(w.warm_while_running, ==, 0);
		r = agent_test_wait_final(&f.fx, uuid, 120);
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_cmpint(r->start_mode, ==, QSIM_START_MODE_COLD);
		/* the slot is free again: tiny gets its warm VM back */
		wait_parked(&f, "tiny", 1);
	}
	fixture_teardown(&f);
}

static gboolean
pool_empty(gpointer data)
{
	Fixture *f = data;

	return qsim_warm_pool_get_counts(qsim_agent_pool_get_warm_pool(f->pool), NULL, NULL,
	                                 NULL) == 0;
}

/* Last: it leaves the shared template stale. */
static void
test_stale_drained(void)
{
	Fixture f = {0};
	g_autoptr(QsimTemplate) tpl = tiny_template();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;

	if (fixture_setup(&f, "QSIM_MAX_CONCURRENT_VMS=2", TRUE)) {
		wait_parked(&f, "tiny", 1);
		g_assert_true(qsim_template_mark_stale(tpl, "test: stale on purpose", &error));
		g_assert_no_error(error);
		g_assert_true(agent_test_wait(pool_empty, &f, 60));
		uuid = agent_test_submit(&f.fx, "tiny", "echo fresh", 60);
		r = agent_test_wait_final(&f.fx, uuid, 120);
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_cmpint(r->start_mode, ==, QSIM_START_MODE_COLD);
		g_assert_false(system_log_has(&f, uuid, "warm pool"));
		/* still nothing to warm from */
		g_assert_cmpuint(qsim_warm_pool_get_counts(qsim_agent_pool_get_warm_pool(f.pool),
		                                           NULL, NULL, NULL),
		                 ==, 0);
	}
	fixture_teardown(&f);
}

/* ---- SIGTERM through `qsimd agents` ---------------------------------------- */

static gboolean
file_has(gpointer data)
{
	const gchar *const *args = data;
	g_autofree gchar *text = NULL;

	return g_file_get_contents(args[0], &text, NULL, NULL) && strstr(text, args[1]) != NULL;
}

static void
exited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	*(gboolean *)user_data = TRUE;
}

static gboolean
flag_set(gpointer data)
{
	return *(gboolean *)data;
}

static void
test_sigterm(void)
{
	Fixture f = {0};
	g_autofree gchar *state = NULL;
	g_autofree gchar *log = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) env = NULL;
	gboolean exited = FALSE;

	if (!fixture_setup(&f, "QSIM_MAX_CONCURRENT_VMS=2", FALSE)) {
		fixture_teardown(&f);
		return;
	}
	state = g_strdup_printf("QSIM_STATE_DIR=%s", shared_state_dir);
	env = agent_fixture_environ(&f.fx, (const gchar *[]){state, "QSIM_WARM_POOL_SIZE=1",
	                                                     "QSIM_AGENT_COUNT=1",
	                                                     "QSIM_LOG_LEVEL=INFO", NULL});
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_set_environ(launcher, env);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	log = g_build_filename(f.fx.dir, "qsimd.log", NULL);
	g_subprocess_launcher_set_stdout_file_path(launcher, log);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	proc = g_subprocess_launcher_spawnv(
	    launcher, (const gchar *[]){qsim_test_qsimd_path(), "agents", NULL}, &error);
	g_assert_no_error(error);
	g_assert_true(agent_test_wait(file_has, (const gchar *[]){log, "is parked"}, 120));
	g_assert_cmpuint(agent_test_count_procs(f.warm_root), ==, 1);

	g_subprocess_send_signal(proc, SIGTERM);
	g_subprocess_wait_async(proc, NULL, exited_cb, &exited);
	g_assert_true(agent_test_wait(flag_set, &exited, 60));
	g_assert_true(g_subprocess_get_if_exited(proc));
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);
	g_assert_cmpuint(agent_test_count_procs(f.fx.run_dir), ==, 0);
	g_assert_cmpuint(agent_test_count_dir(f.warm_root), ==, 0);
	fixture_teardown(&f);
}

/* ---- recovery: what a kill -9 leaves behind --------------------------------- */

/* a failed assertion must not leave the fake QEMU behind */
static void
die_with_test(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* A fake leftover QEMU: a process whose command line names its run dir, as QEMU's does. */
static void
fake_qemu(const gchar *vm_dir)
{
	const gchar *argv[] = {"/bin/sh", "-c", "read -r _ < \"$0/fifo\"", vm_dir, NULL};
	g_autofree gchar *fifo = g_build_filename(vm_dir, "fifo", NULL);
	g_autoptr(GError) error = NULL;
	GPid pid = 0;

	g_assert_cmpint(g_mkdir_with_parents(vm_dir, 0700), ==, 0);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	/* never reaped: a zombie counts as gone, and its command line is empty */
	g_assert_true(g_spawn_async(NULL, (gchar **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                            die_with_test, NULL, &pid, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_vm_rundir_write_state(vm_dir, pid, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(agent_test_count_procs(vm_dir), ==, 1);
}

static void
test_recovery(void)
{
	Fixture f = {0};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *warm = NULL;
	g_autofree gchar *build = NULL;
	g_autofree gchar *handed = NULL;
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *root = NULL;
	g_autofree gchar *link = NULL;

	fixture_init(&f);
	agent_fixture_config(&f.fx, NULL);
	warm = g_build_filename(f.warm_root, "tiny-aaaaaa", NULL);
	build = g_build_filename(f.fx.run_dir, "template-builds", "tiny-bbbbbb", NULL);
	fake_qemu(warm);
	fake_qemu(build);
	/* the start-up sweep: leftover warm VMs and template builds */
	g_assert_cmpuint(qsim_agent_recovery_sweep_run_dir(f.fx.store, f.fx.run_dir, NULL), ==, 2);
	g_assert_cmpuint(agent_test_count_procs(warm), ==, 0);
	g_assert_cmpuint(agent_test_count_procs(build), ==, 0);
	g_assert_false(g_file_test(warm, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(build, G_FILE_TEST_EXISTS));

	/* a request that took a warm VM: its run root links to the warm VM's dir */
	handed = g_build_filename(f.warm_root, "tiny-cccccc", NULL);
	fake_qemu(handed);
	uuid = g_uuid_string_random();
	root = qsim_layout_dup_request_root(f.fx.run_dir, uuid);
	g_assert_cmpint(g_mkdir_with_parents(root, 0700), ==, 0);
	link = g_build_filename(root, "tiny-cccccc", NULL);
	g_assert_cmpint(symlink(handed, link), ==, 0);
	g_assert_true(qsim_agent_recovery_clean_request(f.fx.run_dir, uuid, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(agent_test_count_procs(handed), ==, 0);
	g_assert_false(g_file_test(handed, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(root, G_FILE_TEST_EXISTS));
	agent_fixture_clear(&f.fx);
	g_free(f.warm_root);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	dir = g_dir_make_tmp("qwp-XXXXXX", &error);
	g_assert_no_error(error);
	shared_state_dir = g_build_filename(dir, "state", NULL);
	g_test_add_func("/qsim/agent/warm-pool/recovery", test_recovery);
	g_test_add_func("/qsim/agent/warm-pool/hand-off", test_hand_off);
	g_test_add_func("/qsim/agent/warm-pool/cap", test_cap);
	g_test_add_func("/qsim/agent/warm-pool/died-replaced", test_died_replaced);
	g_test_add_func("/qsim/agent/warm-pool/dead-at-hand-off", test_dead_at_hand_off);
	g_test_add_func("/qsim/agent/warm-pool/sigterm", test_sigterm);
	g_test_add_func("/qsim/agent/warm-pool/stale-drained", test_stale_drained);
	rc = g_test_run();
	/* the template's files are read-only and versioned: remove the whole tree */
	qsim_test_rm_rf(dir);
	g_free(shared_state_dir);
	return rc;
}
