#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-test-util.h"
#include "agent/qsim-agent-pool.h"
#include "agent/qsim-agent-recovery.h"
#include "agent/qsim-agent.h"
#include "agent/qsim-job.h"
#include "common/qsim-error.h"
#include "vm/qsim-vm-rundir.h"
#include "common/qsim-layout.h"
#include "agent/qsim-host-publisher.h"
#include "agent/qsim-template-service.h"
#include "store/qsim-store-hosts.h"

typedef struct {
	AgentFixture fx;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	agent_fixture_init(&f->fx);
	agent_fixture_config(&f->fx, "QSIM_AGENT_COUNT=2", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	agent_fixture_clear(&f->fx);
}

/* A pid that ran and is gone (reaped). */
static GPid
dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	g_assert_cmpint(pid, >, 0);
	g_assert_cmpint(waitpid(pid, NULL, 0), ==, pid);
	return pid;
}

static QsimRequest *
claim_as(Fixture *f, const gchar *agent_id, const gchar *vm_name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) created =
	    qsim_store_create_request(f->fx.store, vm_name, "echo hi", 30, &error);
	QsimRequest *claimed;

	g_assert_no_error(error);
	claimed = qsim_store_claim_next(f->fx.store, agent_id, 60000, 0, &error);
	g_assert_no_error(error);
	g_assert_nonnull(claimed);
	g_assert_cmpstr(claimed->uuid, ==, created->uuid);
	return claimed;
}

static void
test_agent_id(Fixture *f, gconstpointer data)
{
	g_autofree gchar *id = qsim_agent_id_make(3);
	g_autofree gchar *host = NULL;
	GPid pid = 0;

	g_assert_true(qsim_agent_id_parse(id, &host, &pid));
	g_assert_cmpstr(host, ==, qsim_host_id_get());
	g_assert_cmpint(pid, ==, getpid());
	g_assert_false(qsim_agent_id_parse("nohost", NULL, NULL));
	g_assert_false(qsim_agent_id_parse("h:x:1", NULL, NULL));
	g_assert_false(qsim_agent_id_parse(":12:1", NULL, NULL));
	g_assert_false(qsim_agent_id_parse(NULL, NULL, NULL));
}

static void
test_dead_local(Fixture *f, gconstpointer data)
{
	g_autofree gchar *dead = g_strdup_printf("%s:%d:0", qsim_host_id_get(), (gint)dead_pid());
	g_autofree gchar *parent = g_strdup_printf("%s:%d:0", qsim_host_id_get(), (gint)getppid());
	g_autofree gchar *remote = g_strdup_printf("elsewhere.invalid:%d:0", (gint)dead_pid());

	g_assert_true(qsim_agent_recovery_agent_is_dead_local(dead));
	/* a live process running another program holds no claim of ours: its pid was reused */
	g_assert_true(qsim_agent_recovery_agent_is_dead_local(parent));
	/* another host: only its lease can tell */
	g_assert_false(qsim_agent_recovery_agent_is_dead_local(remote));
	g_assert_false(qsim_agent_recovery_agent_is_dead_local("garbage"));
}

/* a failed assertion must not leave the fake QEMU holding the test's stdout open, or the
 * harness waits for EOF until its timeout */
static void
die_with_test(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* A fake orphaned QEMU: a process whose command line names its run dir. */
static GPid
spawn_fake_qemu(const gchar *run_dir, const gchar *uuid)
{
	/* sh blocks opening a FIFO nobody writes: unlike `sleep`, it never forks, so no
	 * short-lived child with the same command line can be counted as a second QEMU */
	const gchar *argv[] = {"/bin/sh", "-c", "read -r _ < \"$0/fifo\"", run_dir, NULL};
	g_autofree gchar *fifo = g_build_filename(run_dir, "fifo", NULL);
	g_autoptr(GError) error = NULL;
	GPid pid = 0;

	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_true(g_spawn_async(NULL, (gchar **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                            die_with_test, NULL, &pid, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_vm_rundir_write_state(run_dir, pid, uuid, &error));
	g_assert_no_error(error);
	return pid;
}

static void
test_recover_acknowledged(Fixture *f, gconstpointer data)
{
	g_autofree gchar *dead = g_strdup_printf("%s:%d:0", qsim_host_id_get(), (gint)dead_pid());
	g_autoptr(QsimRequest) r = claim_as(f, dead, "tiny");
	g_autoptr(QsimRequest) after = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *root = qsim_layout_dup_request_root(f->fx.run_dir, r->uuid);
	g_autofree gchar *vmdir = g_build_filename(root, "tiny-abcdef", NULL);
	GPid qemu;
	guint n = 0;

	g_assert_cmpint(g_mkdir_with_parents(vmdir, 0700), ==, 0);
	qemu = spawn_fake_qemu(vmdir, r->uuid);
	g_assert_cmpuint(agent_test_count_procs(vmdir), ==, 1);

	/* the lease is still live, but its process is gone: recovered at once */
	g_assert_true(qsim_agent_recovery_run(f->fx.store, f->fx.run_dir, NULL, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 1);
	g_assert_cmpuint(agent_test_count_procs(vmdir), ==, 0);
	g_assert_false(g_file_test(root, G_FILE_TEST_EXISTS));
	g_assert_cmpint(waitpid(qemu, NULL, 0), ==, qemu);

	/* failed before the commands started, first attempt: back to pending */
	after = agent_test_get(&f->fx, r->uuid);
	g_assert_cmpint(after->status, ==, QSIM_STATUS_PENDING);
	g_assert_cmpuint(after->attempts, ==, 1);
	g_assert_cmpint(after->lease_expires_at, ==, 0);
	/* a second pass finds nothing */
	g_assert_true(qsim_agent_recovery_run(f->fx.store, f->fx.run_dir, NULL, &n, &error));
	g_assert_cmpuint(n, ==, 0);
}

static void
test_recover_running(Fixture *f, gconstpointer data)
{
	g_autofree gchar *dead = g_strdup_printf("%s:%d:1", qsim_host_id_get(), (gint)dead_pid());
	g_autoptr(QsimRequest) r = claim_as(f, dead, "tiny");
	g_autoptr(QsimRequest) after = NULL;
	g_autoptr(GError) error = NULL;
	guint n = 0;

	g_assert_true(qsim_store_mark_running(f->fx.store, r->uuid, dead, &error));
	g_assert_true(qsim_agent_recovery_run(f->fx.store, f->fx.run_dir, NULL, &n, &error));
	g_assert_cmpuint(n, ==, 1);
	/* the commands may have run: never twice */
	after = agent_test_get(&f->fx, r->uuid);
	g_assert_cmpint(after->status, ==, QSIM_STATUS_FAILED);
	g_assert_cmpstr(after->error, ==, QSIM_AGENT_RECOVERY_REASON);
	g_assert_cmpint(after->finished_at, >, 0);
}

static gint64
clock_cb(gpointer user_data)
{
	return *(gint64 *)user_data;
}

static void
test_recover_expired(Fixture *f, gconstpointer data)
{
	g_autofree gchar *remote = g_strdup_printf("elsewhere.invalid:%d:0", (gint)getpid());
	g_autoptr(QsimRequest) r = claim_as(f, remote, "tiny");
	g_autoptr(QsimRequest) mid = NULL;
	g_autoptr(QsimRequest) after = NULL;
	g_autoptr(GHashTable) skip = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GError) error = NULL;
	gint64 now = g_get_real_time() / 1000;
	guint n = 0;

	qsim_store_set_clock(f->fx.store, clock_cb, &now);
	/* another host's live lease is left alone */
	g_assert_true(qsim_agent_recovery_run(f->fx.store, f->fx.run_dir, NULL, &n, &error));
	g_assert_cmpuint(n, ==, 0);
	mid = agent_test_get(&f->fx, r->uuid);
	g_assert_cmpint(mid->status, ==, QSIM_STATUS_ACKNOWLEDGED);
	/* expired: recovered by anyone, unless it is one of ours still running */
	now += 120 * 1000;
	g_hash_table_add(skip, r->uuid);
	g_assert_true(qsim_agent_recovery_run(f->fx.store, f->fx.run_dir, skip, &n, &error));
	g_assert_cmpuint(n, ==, 0);
	g_assert_true(qsim_agent_recovery_run(f->fx.store, f->fx.run_dir, NULL, &n, &error));
	g_assert_cmpuint(n, ==, 1);
	after = agent_test_get(&f->fx, r->uuid);
	g_assert_cmpint(after->status, ==, QSIM_STATUS_PENDING);
	qsim_store_set_clock(f->fx.store, NULL, NULL);
}

static void
test_sweep(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) done =
	    qsim_store_create_request(f->fx.store, "tiny", "true", 5, &error);
	g_autofree gchar *stale = qsim_layout_dup_request_root(f->fx.run_dir, done->uuid);
	g_autofree gchar *stale_vm = g_build_filename(stale, "tiny-zzzzzz", NULL);
	g_autofree gchar *unknown =
	    qsim_layout_dup_request_root(f->fx.run_dir, "0b6e8a4c-2c1c-4c1e-9d1a-6f0d1c2b3a4f");
	g_autofree gchar *other = g_build_filename(f->fx.run_dir, "tiny-run-vm", NULL);
	g_autofree gchar *stale_file = g_build_filename(stale_vm, QSIM_VM_RUNDIR_STATE, NULL);
	GPid qemu;

	/* a request with no lease (pending) whose dir still holds a live QEMU */
	g_assert_cmpint(g_mkdir_with_parents(stale_vm, 0700), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(unknown, 0700), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(other, 0700), ==, 0);
	qemu = spawn_fake_qemu(stale_vm, done->uuid);
	g_assert_true(g_file_test(stale_file, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(qsim_agent_recovery_sweep_run_dir(f->fx.store, f->fx.run_dir, NULL), ==,
	                 2);
	g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(unknown, G_FILE_TEST_EXISTS));
	/* not a request's directory: not ours to remove */
	g_assert_true(g_file_test(other, G_FILE_TEST_IS_DIR));
	g_assert_cmpint(waitpid(qemu, NULL, 0), ==, qemu);
}

static gboolean
final_cb(gpointer user_data)
{
	gpointer *args = user_data;
	Fixture *f = args[0];
	g_autoptr(QsimRequest) r = agent_test_get(&f->fx, args[1]);

	return qsim_status_is_final(r->status) && r->lease_expires_at == 0;
}

static gboolean pool_idle_cb(gpointer user_data);

static void
raw_exec(const gchar *path, const gchar *sql)
{
	sqlite3 *db = NULL;
	gchar *msg = NULL;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		g_error("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* the job's warning about the failed write is expected here, and counted; any
 * other warning still fails the test */
static void
finish_warning_cb(const gchar *log_domain, GLogLevelFlags log_level, const gchar *message,
                  gpointer user_data)
{
	if (strstr(message, "cannot store the final status") == NULL ||
	    strstr(message, "injected write failure") == NULL)
		g_error("unexpected warning: %s", message);
	(*(guint *)user_data)++;
}

static gboolean
heal_database_cb(gpointer user_data)
{
	raw_exec(user_data, "DELETE FROM fail_once");
	return G_SOURCE_REMOVE;
}

/* The final status write fails with a non-BUSY error (injected by a trigger,
 * as a full disk or an I/O error would) until the database heals: the job
 * keeps retrying, and the request does not stay acknowledged/running. */
static void
test_pool_finish_retried(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimAgentPool) pool = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) after = NULL;
	guint warnings = 0;
	guint handler;
	GLogLevelFlags old_fatal;
	gpointer args[2];

	raw_exec(f->fx.db_path,
	         "CREATE TABLE fail_once (x); INSERT INTO fail_once VALUES (1);"
	         "CREATE TRIGGER fail_finish BEFORE UPDATE OF status ON requests"
	         " WHEN NEW.status IN ('done', 'failed') AND EXISTS (SELECT 1 FROM fail_once)"
	         " BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;");
	old_fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	handler =
	    g_log_set_handler("qsim-agent", G_LOG_LEVEL_WARNING, finish_warning_cb, &warnings);
	pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	g_assert_true(qsim_agent_pool_start(pool, &error));
	g_assert_no_error(error);
	r = qsim_store_create_request(f->fx.store, "vanished", "echo hi", 30, &error);
	g_assert_no_error(error);
	/* the job fails at once (no such VM); its first finish attempts meet the fault */
	g_timeout_add(1500, heal_database_cb, f->fx.db_path);
	args[0] = f;
	args[1] = r->uuid;
	g_assert_true(agent_test_wait(final_cb, args, 30));
	g_log_remove_handler("qsim-agent", handler);
	g_log_set_always_fatal(old_fatal);
	/* warned once, not once per attempt */
	g_assert_cmpuint(warnings, ==, 1);
	after = agent_test_get(&f->fx, r->uuid);
	g_assert_cmpint(after->status, ==, QSIM_STATUS_FAILED);
	g_assert_true(g_str_has_prefix(after->error, "VM vanished cannot be used: "));
	g_assert_true(agent_test_wait(pool_idle_cb, pool, 30));
}

static gboolean
pool_idle_cb(gpointer user_data)
{
	return qsim_agent_pool_get_n_busy(QSIM_AGENT_POOL(user_data)) == 0;
}

static void
test_pool_missing_vm(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimAgentPool) pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) after = NULL;
	g_autoptr(GByteArray) system = NULL;
	gpointer args[2];

	g_assert_true(qsim_agent_pool_start(pool, &error));
	g_assert_no_error(error);
	/* accepted at submit time, but its image and config are gone by the run */
	r = qsim_store_create_request(f->fx.store, "vanished", "echo hi", 30, &error);
	g_assert_no_error(error);
	args[0] = f;
	args[1] = r->uuid;
	g_assert_true(agent_test_wait(final_cb, args, 60));
	after = agent_test_get(&f->fx, r->uuid);
	g_assert_cmpint(after->status, ==, QSIM_STATUS_FAILED);
	g_assert_true(g_str_has_prefix(after->error, "VM vanished cannot be used: "));
	g_assert_cmpuint(after->attempts, ==, 1);
	g_assert_false(after->has_exit_code);
	system = agent_test_log_bytes(&f->fx, r->uuid, QSIM_LOG_SYSTEM);
	g_byte_array_append(system, (const guint8 *)"", 1);
	g_assert_nonnull(strstr((const gchar *)system->data, "claimed by agent"));
	g_assert_nonnull(strstr((const gchar *)system->data, "VM vanished cannot be used"));
	/* the agent is free again once the job reported */
	g_assert_true(agent_test_wait(pool_idle_cb, pool, 30));
}

static void
stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(qsim_agent_pool_stop_finish(QSIM_AGENT_POOL(source), res, &error));
	*(gboolean *)user_data = TRUE;
}

static gboolean
flag_cb(gpointer user_data)
{
	return *(gboolean *)user_data;
}

static void
test_pool_cancelled_and_held(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimAgentPool) pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) cancelled = NULL;
	g_autoptr(QsimRequest) held = NULL;
	g_autoptr(QsimRequest) tmp = NULL;
	g_autoptr(QsimRequest) c_after = NULL;
	g_autoptr(QsimRequest) h_after = NULL;
	g_autoptr(QsimRequest) released = NULL;
	gboolean stopped = FALSE;
	gpointer args[2];

	cancelled = qsim_store_create_request(f->fx.store, "vanished", "echo 1", 30, &error);
	held = qsim_store_create_request(f->fx.store, "vanished", "echo 2", 30, &error);
	g_assert_no_error(error);
	/* cancel while pending: at once, never claimed */
	tmp = qsim_store_cancel_request(f->fx.store, cancelled->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpint(tmp->status, ==, QSIM_STATUS_CANCELLED);
	g_clear_pointer(&tmp, qsim_request_free);
	tmp = qsim_store_set_status(f->fx.store, held->uuid, QSIM_STATUS_HOLD, &error);
	g_assert_no_error(error);
	g_clear_pointer(&tmp, qsim_request_free);

	g_assert_true(qsim_agent_pool_start(pool, &error));
	qsim_agent_pool_claim_now(pool);
	g_assert_cmpuint(qsim_agent_pool_get_n_busy(pool), ==, 0);
	c_after = agent_test_get(&f->fx, cancelled->uuid);
	h_after = agent_test_get(&f->fx, held->uuid);
	g_assert_cmpint(c_after->status, ==, QSIM_STATUS_CANCELLED);
	g_assert_cmpstr(c_after->error, ==, "cancelled by user");
	g_assert_cmpuint(c_after->attempts, ==, 0);
	g_assert_cmpint(h_after->status, ==, QSIM_STATUS_HOLD);
	g_assert_cmpuint(h_after->attempts, ==, 0);

	/* released: the in-process signal wakes an agent, which runs (and fails) it */
	tmp = qsim_store_set_status(f->fx.store, held->uuid, QSIM_STATUS_PENDING, &error);
	g_assert_no_error(error);
	args[0] = f;
	args[1] = held->uuid;
	g_assert_true(agent_test_wait(final_cb, args, 60));
	released = agent_test_get(&f->fx, held->uuid);
	g_assert_cmpint(released->status, ==, QSIM_STATUS_FAILED);
	g_assert_cmpuint(released->attempts, ==, 1);

	qsim_agent_pool_stop_async(pool, 1000, NULL, stopped_cb, &stopped);
	g_assert_true(agent_test_wait(flag_cb, &stopped, 30));
}

/* The host publisher: the host row, its agents, the catalogue from this host's disk, and
 * template rows brought in line with the files (ready without files: none). */
static void
test_publisher(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimTemplateService) templates =
	    qsim_template_service_new(f->fx.config, f->fx.store);
	g_autoptr(QsimHostPublisher) pub = NULL;
	g_autoptr(GPtrArray) hosts = NULL;
	g_autoptr(GPtrArray) vms = NULL;
	g_autoptr(QsimTemplateRecord) row = qsim_template_record_new("tiny", qsim_host_id_get());
	g_autoptr(QsimTemplateRecord) after = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *me = qsim_agent_id_make(0);
	g_autofree gchar *broken = g_build_filename(f->fx.config_dir, "broken.conf", NULL);
	const gchar *ids[] = {me, NULL};
	const QsimHostVm *tiny = NULL;
	const QsimHostVm *bad = NULL;

	g_assert_true(g_file_set_contents(broken, "MEMORY=lots\n", -1, &error));
	row->state = QSIM_TEMPLATE_RECORD_READY;
	row->build_finished_at = 1;
	g_assert_true(qsim_store_upsert_template(f->fx.store, row, &error));
	pub = qsim_host_publisher_new(f->fx.config, f->fx.store, templates, NULL, ids);
	g_assert_true(qsim_host_publisher_publish(pub, &error));
	g_assert_no_error(error);

	hosts = qsim_store_list_hosts(f->fx.store, &error);
	g_assert_cmpuint(hosts->len, ==, 1);
	g_assert_cmpstr(((QsimHostRecord *)hosts->pdata[0])->host, ==, qsim_host_id_get());
	g_assert_cmpstr(((QsimHostRecord *)hosts->pdata[0])->agent_ids[0], ==, me);
	vms = qsim_store_list_host_vms(f->fx.store, NULL, qsim_host_id_get(), &error);
	for (guint i = 0; i < vms->len; i++) {
		const QsimHostVm *v = vms->pdata[i];

		if (g_strcmp0(v->vm_name, "tiny") == 0)
			tiny = v;
		if (g_strcmp0(v->vm_name, "broken") == 0)
			bad = v;
	}
	g_assert_nonnull(tiny);
	g_assert_true(tiny->valid);
	g_assert_cmpstr(tiny->image, ==, "tiny.qcow2");
	g_assert_nonnull(tiny->config_hash);
	g_assert_cmpuint(strlen(tiny->config_hash), ==, 64);
	g_assert_nonnull(tiny->image_id);
	g_assert_nonnull(bad);
	g_assert_false(bad->valid);
	g_assert_nonnull(bad->error);
	/* the row said ready, the files are not there: the publisher says none */
	after = qsim_store_get_template(f->fx.store, "tiny", qsim_host_id_get(), &error);
	g_assert_no_error(error);
	g_assert_cmpint(after->state, ==, QSIM_TEMPLATE_RECORD_NONE);
	g_unlink(broken);
}

/* Recovery frees the warm and build slots of a dead local process, not a live one's */
static void
test_recover_slots(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimAgentPool) pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	g_autoptr(GPtrArray) slots = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dead = g_strdup_printf("%s:%d:0", qsim_host_id_get(), (gint)dead_pid());
	pid_t live_pid = fork();
	g_autofree gchar *live = NULL;
	gint64 id = 0;

	/* a live process of this very program: its slots stay */
	if (live_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	g_assert_cmpint(live_pid, >, 0);
	live = g_strdup_printf("%s:%d:0", qsim_host_id_get(), (gint)live_pid);

	g_assert_true(
	    qsim_store_claim_slot(f->fx.store, dead, QSIM_VM_SLOT_WARM, "tiny", 0, 0, &id, &error));
	g_assert_true(qsim_store_claim_slot(f->fx.store, dead, QSIM_VM_SLOT_BUILD, "tiny", 0, 0,
	                                    &id, &error));
	g_assert_true(
	    qsim_store_claim_slot(f->fx.store, live, QSIM_VM_SLOT_WARM, "tiny", 0, 0, &id, &error));
	g_assert_no_error(error);
	qsim_agent_pool_recover_now(pool);
	slots = qsim_store_list_slots(f->fx.store, NULL, &error);
	g_assert_cmpuint(slots->len, ==, 1);
	g_assert_cmpstr(((QsimVmSlot *)slots->pdata[0])->owner, ==, live);
	kill(live_pid, SIGKILL);
	waitpid(live_pid, NULL, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/agent/id", Fixture, NULL, fixture_setup, test_agent_id, fixture_teardown);
	g_test_add("/qsim/agent/recovery/dead-local", Fixture, NULL, fixture_setup, test_dead_local,
	           fixture_teardown);
	g_test_add("/qsim/agent/recovery/acknowledged-retried", Fixture, NULL, fixture_setup,
	           test_recover_acknowledged, fixture_teardown);
	g_test_add("/qsim/agent/recovery/running-failed", Fixture, NULL, fixture_setup,
	           test_recover_running, fixture_teardown);
	g_test_add("/qsim/agent/recovery/expired-lease", Fixture, NULL, fixture_setup,
	           test_recover_expired, fixture_teardown);
	g_test_add("/qsim/agent/publisher", Fixture, NULL, fixture_setup, test_publisher,
	           fixture_teardown);
	g_test_add("/qsim/agent/recovery/slots", Fixture, NULL, fixture_setup, test_recover_slots,
	           fixture_teardown);
	g_test_add("/qsim/agent/recovery/sweep", Fixture, NULL, fixture_setup, test_sweep,
	           fixture_teardown);
	g_test_add("/qsim/agent/pool/missing-vm", Fixture, NULL, fixture_setup,
	           test_pool_missing_vm, fixture_teardown);
	g_test_add("/qsim/agent/pool/finish-retried", Fixture, NULL, fixture_setup,
	           test_pool_finish_retried, fixture_teardown);
	g_test_add("/qsim/agent/pool/cancelled-and-held", Fixture, NULL, fixture_setup,
	           test_pool_cancelled_and_held, fixture_teardown);
	return g_test_run();
}
