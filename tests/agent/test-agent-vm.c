#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <string.h>

#include "agent-test-util.h"
#include "agent/qsim-agent-pool.h"
#include "guest/qsim-guest.h"
#include "qmp/qsim-qmp-commands.h"

/* hang guards only: far above any healthy run on a loaded 2-core TCG host */
#define RUN_TIMEOUT_S 300
#define BIG_TIMEOUT_S 900

typedef struct {
	AgentFixture fx;
	QsimAgentPool *pool;
	GHashTable *jobs; /* uuid -> QsimJob, kept after they finish */
} Fixture;

static void
job_started_cb(QsimAgentPool *pool, QsimJob *job, gpointer user_data)
{
	Fixture *f = user_data;

	g_hash_table_insert(f->jobs, g_strdup(qsim_job_get_uuid(job)), g_object_ref(job));
}

static void
start_pool(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStoreWorker) worker = NULL;

	f->pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	/* as qsimd agents runs them: logs and renewals off the main loop */
	worker = qsim_store_worker_new(f->fx.db_url != NULL ? f->fx.db_url : f->fx.db_path, &error);
	g_assert_no_error(error);
	qsim_agent_pool_set_store_worker(f->pool, worker);
	g_signal_connect(f->pool, "job-started", G_CALLBACK(job_started_cb), f);
	g_assert_true(qsim_agent_pool_start(f->pool, &error));
	g_assert_no_error(error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	agent_fixture_init(&f->fx);
	f->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	agent_fixture_config(&f->fx, "QSIM_AGENT_COUNT=2", "QSIM_MAX_CONCURRENT_VMS=2",
	                     "QSIM_LEASE_SECONDS=10", "QSIM_SHUTDOWN_GRACE=1", NULL);
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
fixture_teardown(Fixture *f, gconstpointer data)
{
	if (f->pool != NULL) {
		gboolean stopped = FALSE;

		qsim_agent_pool_stop_async(f->pool, 0, NULL, stopped_cb, &stopped);
		g_assert_true(agent_test_wait(flag_cb, &stopped, RUN_TIMEOUT_S));
		/* whatever happened, nothing may be left behind */
		g_assert_cmpuint(agent_test_count_procs(f->fx.run_dir), ==, 0);
		g_assert_cmpuint(agent_test_count_dir(f->fx.run_dir), ==, 0);
		g_clear_object(&f->pool);
	}
	g_hash_table_unref(f->jobs);
	agent_fixture_clear(&f->fx);
}

typedef struct {
	Fixture *f;
	const gchar *uuid;
	const gchar *needle;
} StdoutWait;

static gboolean
stdout_has_cb(gpointer user_data)
{
	StdoutWait *w = user_data;
	g_autofree gchar *out = agent_test_log_text(&w->f->fx, w->uuid, QSIM_LOG_STDOUT);

	return strstr(out, w->needle) != NULL;
}

/* Waits until @needle is stored in @uuid's stdout: the commands run. */
static void
wait_stdout(Fixture *f, const gchar *uuid, const gchar *needle)
{
	StdoutWait w = {f, uuid, needle};

	g_assert_true(agent_test_wait(stdout_has_cb, &w, RUN_TIMEOUT_S));
}

static void
assert_nothing_left(Fixture *f, const gchar *uuid)
{
	g_autofree gchar *root = g_build_filename(f->fx.run_dir, uuid, NULL);

	g_assert_cmpuint(agent_test_count_procs(f->fx.run_dir), ==, 0);
	g_assert_false(g_file_test(root, G_FILE_TEST_EXISTS));
}

/* Returns: the index of the first entry of @type whose text has @needle, or -1 */
static gint
find_entry(GPtrArray *logs, QsimLogType type, const gchar *needle)
{
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		gsize len = 0;
		const gchar *d = g_bytes_get_data(e->output, &len);
		g_autofree gchar *text = g_strndup(d, len);

		if (e->log_type == type && (needle == NULL || strstr(text, needle) != NULL))
			return (gint)i;
	}
	return -1;
}

static void
test_done(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *cmd = NULL;
	gint claimed, started, qmp, boot, ssh, command, stdout_at, exit_at, shut;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo hello; echo oops >&2; echo world", 120);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	g_assert_true(r->has_exit_code);
	g_assert_cmpint(r->exit_code, ==, 0);
	g_assert_null(r->error);
	g_assert_cmpuint(r->attempts, ==, 1);
	g_assert_nonnull(r->agent_id);
	g_assert_cmpint(r->started_at, >, 0);
	g_assert_cmpint(r->finished_at, >=, r->started_at);

	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	err = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDERR);
	cmd = agent_test_log_text(&f->fx, uuid, QSIM_LOG_COMMAND);
	g_assert_cmpstr(out, ==, "hello\nworld\n");
	g_assert_cmpstr(err, ==, "oops\n");
	g_assert_cmpstr(cmd, ==, "echo hello; echo oops >&2; echo world\n");

	/* the milestones, in order */
	logs = agent_test_logs(&f->fx, uuid);
	claimed = find_entry(logs, QSIM_LOG_SYSTEM, "claimed by agent");
	started = find_entry(logs, QSIM_LOG_SYSTEM, "VM started: QEMU pid");
	qmp = find_entry(logs, QSIM_LOG_SYSTEM, "QMP up");
	boot = find_entry(logs, QSIM_LOG_BOOT, NULL);
	ssh = find_entry(logs, QSIM_LOG_SYSTEM, "SSH ready, host key SHA256:");
	command = find_entry(logs, QSIM_LOG_COMMAND, NULL);
	stdout_at = find_entry(logs, QSIM_LOG_STDOUT, NULL);
	exit_at = find_entry(logs, QSIM_LOG_SYSTEM, "exit code 0");
	shut = find_entry(logs, QSIM_LOG_SYSTEM, "VM shut down");
	g_assert_cmpint(claimed, ==, 0);
	g_assert_cmpint(started, >, claimed);
	g_assert_cmpint(qmp, >, started);
	g_assert_cmpint(boot, >, 0);
	g_assert_cmpint(ssh, >, qmp);
	g_assert_cmpint(ssh, >, boot);
	g_assert_cmpint(command, >, ssh);
	g_assert_cmpint(stdout_at, >, command);
	g_assert_cmpint(exit_at, >, stdout_at);
	g_assert_cmpint(shut, >, exit_at);
	/* the console arrives in chunks as QEMU writes them, so the marker may straddle two
	 * boot entries: look in the whole boot text */
	{
		g_autofree gchar *boot_text = agent_test_log_text(&f->fx, uuid, QSIM_LOG_BOOT);

		g_assert_nonnull(strstr(boot_text, "QSIM-READY"));
	}
	assert_nothing_left(f, uuid);
}

static void
test_exit_code(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autofree gchar *out = NULL;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo before; exit 3", 120);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_true(r->has_exit_code);
	g_assert_cmpint(r->exit_code, ==, 3);
	g_assert_cmpstr(r->error, ==, "exit code 3");
	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	g_assert_cmpstr(out, ==, "before\n");
	assert_nothing_left(f, uuid);
}

static void
test_timeout(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autofree gchar *system = NULL;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	/* the deadline counts from VM start: long enough to reach the command */
	uuid = agent_test_submit(&f->fx, "tiny", "echo started; sleep 600", 25);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_cmpstr(r->error, ==, "timed out after 25 s");
	g_assert_false(r->has_exit_code);
	system = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_assert_nonnull(strstr(system, "timed out after 25 s"));
	g_assert_nonnull(strstr(system, "VM shut down"));
	assert_nothing_left(f, uuid);
}

static void
test_boot_timeout(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GByteArray) command = NULL;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny-nossh", "echo never", 300);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_cmpstr(r->error, ==, "guest did not become ready within 6 s");
	/* it never ran: no start time, no command entry */
	g_assert_cmpint(r->started_at, ==, 0);
	command = agent_test_log_bytes(&f->fx, uuid, QSIM_LOG_COMMAND);
	g_assert_cmpuint(command->len, ==, 0);
	assert_nothing_left(f, uuid);
}

typedef struct {
	Fixture *f;
	const gchar *uuid;
} JobWait;

static gboolean
job_booting_cb(gpointer user_data)
{
	JobWait *w = user_data;
	QsimJob *job = g_hash_table_lookup(w->f->jobs, w->uuid);

	return job != NULL && qsim_job_get_phase(job) == QSIM_JOB_PHASE_BOOTING;
}

static void
cancel(Fixture *f, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_cancel_request(f->fx.store, uuid, &error);

	g_assert_no_error(error);
	g_assert_cmpint(r->status, ==, QSIM_STATUS_CANCELLED);
}

static void
test_cancel_booting(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autofree gchar *system = NULL;
	JobWait w = {f, NULL};

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo never", 120);
	w.uuid = uuid;
	/* QEMU and QMP are up, the guest is not ready yet */
	g_assert_true(agent_test_wait(job_booting_cb, &w, RUN_TIMEOUT_S));
	g_assert_cmpint(agent_test_status(&f->fx, uuid), ==, QSIM_STATUS_ACKNOWLEDGED);
	cancel(f, uuid);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "cancelled");
	g_assert_cmpstr(r->error, ==, "cancelled by user");
	g_assert_cmpint(r->started_at, ==, 0);
	system = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_assert_nonnull(strstr(system, "VM started"));
	g_assert_nonnull(strstr(system, "cancelled by user"));
	g_assert_nonnull(strstr(system, "VM shut down"));
	assert_nothing_left(f, uuid);
}

static void
test_cancel_running(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autofree gchar *out = NULL;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo started; sleep 600; echo never", 300);
	wait_stdout(f, uuid, "started\n");
	g_assert_cmpint(agent_test_status(&f->fx, uuid), ==, QSIM_STATUS_RUNNING);
	cancel(f, uuid);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "cancelled");
	g_assert_cmpstr(r->error, ==, "cancelled by user");
	g_assert_false(r->has_exit_code);
	/* the logs written until then are kept */
	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	g_assert_cmpstr(out, ==, "started\n");
	assert_nothing_left(f, uuid);
}

typedef struct {
	gboolean done;
	gboolean running;
	gchar *status;
	GError *error;
} QueryStatus;

static void
query_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QueryStatus *q = user_data;

	qsim_qmp_client_query_status_finish(QSIM_QMP_CLIENT(source), res, &q->running, &q->status,
	                                    &q->error);
	q->done = TRUE;
}

/* Returns: (transfer full): QEMU's own run state of @uuid's VM ("paused", "running") */
static gchar *
qmp_status(Fixture *f, const gchar *uuid)
{
	QsimJob *job = g_hash_table_lookup(f->jobs, uuid);
	QsimQmpClient *qmp;
	QueryStatus q = {0};

	g_assert_nonnull(job);
	qmp = qsim_vm_get_qmp(qsim_job_get_vm(job));
	g_assert_nonnull(qmp);
	qsim_qmp_client_query_status_async(qmp, 5000, NULL, query_status_cb, &q);
	g_assert_true(agent_test_wait(flag_cb, &q.done, 60));
	g_assert_no_error(q.error);
	return q.status;
}

typedef struct {
	Fixture *f;
	const gchar *uuid;
	gboolean paused;
} PauseWait;

static gboolean
job_paused_cb(gpointer user_data)
{
	PauseWait *w = user_data;
	QsimJob *job = g_hash_table_lookup(w->f->jobs, w->uuid);

	return job != NULL && qsim_job_get_paused(job) == w->paused;
}

static void
set_status(Fixture *f, const gchar *uuid, QsimStatus to)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_set_status(f->fx.store, uuid, to, &error);

	g_assert_no_error(error);
	g_assert_cmpint(r->status, ==, to);
}

static void
test_hold_resume(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *system = NULL;
	g_autofree gchar *paused = NULL;
	g_autofree gchar *running = NULL;
	PauseWait w = {f, NULL, TRUE};

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo one; sleep 10; echo two", 300);
	w.uuid = uuid;
	wait_stdout(f, uuid, "one\n");
	set_status(f, uuid, QSIM_STATUS_HOLD);
	g_assert_true(agent_test_wait(job_paused_cb, &w, RUN_TIMEOUT_S));
	/* the database and QEMU agree */
	paused = qmp_status(f, uuid);
	g_assert_cmpstr(paused, ==, "paused");
	g_assert_cmpint(agent_test_status(&f->fx, uuid), ==, QSIM_STATUS_HOLD);

	set_status(f, uuid, QSIM_STATUS_RUNNING);
	w.paused = FALSE;
	g_assert_true(agent_test_wait(job_paused_cb, &w, RUN_TIMEOUT_S));
	running = qmp_status(f, uuid);
	g_assert_cmpstr(running, ==, "running");

	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	g_assert_cmpstr(out, ==, "one\ntwo\n");
	system = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_assert_nonnull(strstr(system, "VM paused (hold, QMP stop): deadline clock stopped"));
	g_assert_nonnull(strstr(system, "VM resumed (QMP cont)"));
	assert_nothing_left(f, uuid);
}

static void
test_kill_qemu(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	QsimJob *job;
	GPid pid;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo started; sleep 600", 300);
	wait_stdout(f, uuid, "started\n");
	job = g_hash_table_lookup(f->jobs, uuid);
	pid = qsim_vm_get_pid(qsim_job_get_vm(job));
	g_assert_cmpint(pid, >, 0);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_nonnull(r->error);
	g_assert_true(g_str_has_prefix(r->error, "qemu exited: "));
	g_assert_nonnull(strstr(r->error, "signal 9"));
	assert_nothing_left(f, uuid);
}

typedef struct {
	GPid pid;
	gint64 gone_at; /* unix ms, written by the watcher thread before @gone */
	gint gone;
} PidWatch;

/* A thread: the main loop may be blocked by the locked database for seconds at a time,
 * so it cannot tell when QEMU went */
static gpointer
pid_watch_thread(gpointer user_data)
{
	PidWatch *w = user_data;

	while (kill(w->pid, 0) == 0)
		g_usleep(10 * 1000);
	w->gone_at = g_get_real_time() / 1000;
	g_atomic_int_set(&w->gone, 1);
	return NULL;
}

static gboolean
pid_gone_cb(gpointer user_data)
{
	PidWatch *w = user_data;

	return g_atomic_int_get(&w->gone) != 0;
}

/* Another connection takes the database's write lock, as an unreachable server would
 * refuse every write: SQLite's exclusive transaction, or a table lock on PostgreSQL (the
 * store's lock timeout then fails its calls with BUSY) */
typedef struct {
	sqlite3 *db;
	PGconn *pg;
} DbLock;

static void
db_lock(Fixture *f, DbLock *l)
{
	if (f->fx.db_url != NULL) {
		PGresult *res;

		l->pg = PQconnectdb(f->fx.db_url);
		g_assert_cmpint(PQstatus(l->pg), ==, CONNECTION_OK);
		res = PQexec(l->pg, "BEGIN; LOCK TABLE requests IN ACCESS EXCLUSIVE MODE");
		g_assert_cmpint(PQresultStatus(res), ==, PGRES_COMMAND_OK);
		PQclear(res);
		return;
	}
	g_assert_cmpint(sqlite3_open(f->fx.db_path, &l->db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(l->db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), ==, SQLITE_OK);
}

static void
db_unlock(DbLock *l)
{
	if (l->pg != NULL) {
		PQclear(PQexec(l->pg, "ROLLBACK"));
		PQfinish(l->pg);
		return;
	}
	g_assert_cmpint(sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(l->db);
}

/*
 * A job that cannot renew its lease (here: another connection holds the database's
 * write lock, as an unreachable PostgreSQL would refuse it) stops its VM before the
 * lease ends, on its own, and writes nothing more: after the lease another agent may
 * recover the request, and the commands must not be running anywhere by then.
 */
static void
test_lease_fence(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	DbLock lock = {NULL, NULL};
	GLogLevelFlags fatal;
	gint64 locked_at;
	QsimJob *job;
	PidWatch watch = {0};
	GThread *watcher;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", "echo started; sleep 600", 300);
	wait_stdout(f, uuid, "started\n");
	job = g_hash_table_lookup(f->jobs, uuid);
	watch.pid = qsim_vm_get_pid(qsim_job_get_vm(job));
	g_assert_cmpint(watch.pid, >, 0);

	/* every writer warns while the lock lasts, and the agent when its job lost the
	 * lease: warnings are what should happen here */
	fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	db_lock(f, &lock);
	locked_at = g_get_real_time() / 1000;
	/* while the lock is held: QEMU goes, though nothing in the database said so */
	watcher = g_thread_new("pid-watch", pid_watch_thread, &watch);
	g_assert_true(agent_test_wait(pid_gone_cb, &watch, RUN_TIMEOUT_S));
	g_thread_join(watcher);
	{
		g_autoptr(QsimRequest) held = NULL;

		db_unlock(&lock);
		held = agent_test_get(&f->fx, uuid);
		/* the lease it had was still live when its VM was gone */
		g_assert_cmpint(watch.gone_at, <, held->lease_expires_at);
		g_assert_cmpint(held->lease_expires_at, <=, locked_at + 10 * 1000 + 1000);
	}

	/* then the recovery sees an expired lease: failed, never run again */
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_cmpstr(r->error, ==, "agent lost");
	g_assert_cmpuint(r->attempts, ==, 1);
	logs = agent_test_logs(&f->fx, uuid);
	g_assert_cmpint(find_entry(logs, QSIM_LOG_SYSTEM, "lease lost"), >=, 0);
	assert_nothing_left(f, uuid);
	g_log_set_always_fatal(fatal);
}

static gboolean
parse_sha(const gchar *text, gchar **out)
{
	g_auto(GStrv) words = g_strsplit_set(text, " \t\n", -1);

	for (guint i = 0; words[i] != NULL; i++) {
		if (strlen(words[i]) == 64) {
			*out = g_ascii_strdown(words[i], -1);
			return TRUE;
		}
	}
	return FALSE;
}

static void
test_big_output(Fixture *f, gconstpointer data)
{
	const gsize size = 100 * 1000 * 1000;
	/* one pass, nothing on the guest's small disk: tee feeds stdout (fd 3) and sha256sum */
	g_autofree gchar *cmd =
	    g_strdup_printf("{ head -c %" G_GSIZE_FORMAT
	                    " /dev/urandom | tee /proc/self/fd/3 | sha256sum >&2; } 3>&1",
	                    size);
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree gchar *err = NULL;
	g_autofree gchar *guest_sha = NULL;
	QsimJob *job;
	gsize stored = 0;

	if (!agent_test_require_vm(&f->fx))
		return;
	/* past the default OUTPUT_LIMIT (64M): this test wants every byte */
	agent_fixture_config(&f->fx, "QSIM_AGENT_COUNT=2", "QSIM_MAX_CONCURRENT_VMS=2",
	                     "QSIM_LEASE_SECONDS=10", "QSIM_SHUTDOWN_GRACE=1",
	                     "QSIM_OUTPUT_LIMIT=0", NULL);
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny", cmd, 1800);
	r = agent_test_wait_final(&f->fx, uuid, BIG_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");

	/* the sha256 over the stored stdout chunks, in seq order, equals the guest's */
	logs = agent_test_logs(&f->fx, uuid);
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		gsize len = 0;
		const guint8 *d = g_bytes_get_data(e->output, &len);

		if (e->log_type != QSIM_LOG_STDOUT)
			continue;
		g_checksum_update(sum, d, (gssize)len);
		stored += len;
	}
	g_assert_cmpuint(stored, ==, size);
	err = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDERR);
	g_assert_true(parse_sha(err, &guest_sha));
	g_assert_cmpstr(g_checksum_get_string(sum), ==, guest_sha);

	/* bounded memory: the batcher's bound plus what the SSH worker may have in flight */
	job = g_hash_table_lookup(f->jobs, uuid);
	g_assert_cmpuint(qsim_log_batcher_get_max_buffered(qsim_job_get_batcher(job)), <=,
	                 QSIM_LOG_BATCHER_DEFAULT_MAX_BYTES + QSIM_GUEST_DEFAULT_FLOW_BUDGET);
	g_test_message("100 MB stored in %u batches (%u log rows)",
	               qsim_log_batcher_get_n_flushes(qsim_job_get_batcher(job)), logs->len);
	assert_nothing_left(f, uuid);
}

/* tiny with its own OUTPUT_LIMIT: the per-VM key overrides the 64M default */
static void
write_capped_vm(Fixture *f, const gchar *limit)
{
	g_autofree gchar *src = g_build_filename(f->fx.config_dir, "tiny.conf", NULL);
	g_autofree gchar *dst = g_build_filename(f->fx.config_dir, "tiny-cap.conf", NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *capped = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(src, &text, NULL, &error));
	capped = g_strdup_printf("%sOUTPUT_LIMIT=%s\n", text, limit);
	g_assert_true(g_file_set_contents(dst, capped, -1, &error));
}

/* Returns: boot, stdout and stderr bytes stored for @uuid */
static gsize
stored_output(Fixture *f, const gchar *uuid)
{
	const QsimLogType types[] = {QSIM_LOG_BOOT, QSIM_LOG_STDOUT, QSIM_LOG_STDERR};
	gsize total = 0;

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autoptr(GByteArray) b = agent_test_log_bytes(&f->fx, uuid, types[i]);
		total += b->len;
	}
	return total;
}

/* OUTPUT_LIMIT_ACTION=truncate: the command runs to its end (exit 0 after writing 5 MB),
 * only the first 1 MiB of output is kept, and the request says it was cut. */
static void
test_output_truncate(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	gint cut;

	if (!agent_test_require_vm(&f->fx))
		return;
	write_capped_vm(f, "1M");
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny-cap",
	                         "yes | head -c 5000000; echo after-the-cap >&2; exit 0", 600);
	r = agent_test_wait_final(&f->fx, uuid, BIG_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	g_assert_true(r->has_exit_code);
	g_assert_cmpint(r->exit_code, ==, 0);
	g_assert_true(r->output_truncated);
	g_assert_cmpuint(stored_output(f, uuid), ==, 1024 * 1024);
	logs = agent_test_logs(&f->fx, uuid);
	cut = find_entry(logs, QSIM_LOG_SYSTEM, "output truncated at 1 MiB");
	g_assert_cmpint(cut, >, 0);
	/* drained, not stored: nothing of stdout or stderr after the notice */
	g_assert_cmpint(find_entry(logs, QSIM_LOG_STDERR, "after-the-cap"), ==, -1);
	for (guint i = (guint)cut + 1; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);

		g_assert_cmpint(e->log_type, !=, QSIM_LOG_STDOUT);
		g_assert_cmpint(e->log_type, !=, QSIM_LOG_STDERR);
	}
	g_assert_cmpint(find_entry(logs, QSIM_LOG_SYSTEM, "exit code 0"), >, cut);
	assert_nothing_left(f, uuid);
}

/* OUTPUT_LIMIT_ACTION=fail: an endless writer is stopped at the cap, not at its timeout */
static void
test_output_fail(Fixture *f, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) logs = NULL;

	if (!agent_test_require_vm(&f->fx))
		return;
	agent_fixture_config(&f->fx, "QSIM_AGENT_COUNT=1", "QSIM_MAX_CONCURRENT_VMS=1",
	                     "QSIM_LEASE_SECONDS=10", "QSIM_SHUTDOWN_GRACE=1",
	                     "QSIM_OUTPUT_LIMIT_ACTION=fail", NULL);
	write_capped_vm(f, "1M");
	start_pool(f);
	uuid = agent_test_submit(&f->fx, "tiny-cap", "yes", 3000);
	r = agent_test_wait_final(&f->fx, uuid, BIG_TIMEOUT_S);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_false(r->has_exit_code);
	g_assert_cmpstr(r->error, ==, "output exceeded OUTPUT_LIMIT=1M (OUTPUT_LIMIT_ACTION=fail)");
	g_assert_true(r->output_truncated);
	g_assert_cmpuint(stored_output(f, uuid), ==, 1024 * 1024);
	logs = agent_test_logs(&f->fx, uuid);
	g_assert_cmpint(find_entry(logs, QSIM_LOG_SYSTEM, "output truncated at 1 MiB"), >, 0);
	assert_nothing_left(f, uuid);
}

typedef struct {
	Fixture *f;
	gchar **uuids;
	guint n;
	guint max_qemus;
	guint max_busy;
	guint max_leases;
} Capacity;

static gboolean
all_final_sampling_cb(gpointer user_data)
{
	Capacity *c = user_data;
	guint leases = 0;

	c->max_qemus = MAX(c->max_qemus, agent_test_count_procs(c->f->fx.run_dir));
	c->max_busy = MAX(c->max_busy, qsim_agent_pool_get_n_busy(c->f->pool));
	g_assert_true(qsim_store_count_active_vms(c->f->fx.store, &leases, NULL));
	c->max_leases = MAX(c->max_leases, leases);
	for (guint i = 0; i < c->n; i++) {
		g_autoptr(QsimRequest) r = agent_test_get(&c->f->fx, c->uuids[i]);

		if (!qsim_status_is_final(r->status) || r->lease_expires_at != 0)
			return FALSE;
	}
	return TRUE;
}

static void
test_capacity(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	Capacity c = {f, NULL, 6, 0, 0, 0};

	if (!agent_test_require_vm(&f->fx))
		return;
	/* more agents than VM slots: the cap, not the agent count, must limit */
	agent_fixture_config(&f->fx, "QSIM_AGENT_COUNT=4", "QSIM_MAX_CONCURRENT_VMS=2", NULL);
	for (guint i = 0; i < c.n; i++) {
		g_autofree gchar *cmd = g_strdup_printf("echo request-%u", i);
		g_ptr_array_add(uuids, agent_test_submit(&f->fx, "tiny", cmd, 300));
	}
	c.uuids = (gchar **)uuids->pdata;
	start_pool(f);
	g_assert_true(agent_test_wait(all_final_sampling_cb, &c, RUN_TIMEOUT_S * 3));
	g_test_message("at most %u QEMUs, %u busy agents, %u leases", c.max_qemus, c.max_busy,
	               c.max_leases);
	g_assert_cmpuint(c.max_qemus, <=, 2);
	g_assert_cmpuint(c.max_busy, <=, 2);
	g_assert_cmpuint(c.max_leases, <=, 2);
	for (guint i = 0; i < c.n; i++) {
		g_autoptr(QsimRequest) r = agent_test_get(&f->fx, c.uuids[i]);
		g_autofree gchar *want = g_strdup_printf("request-%u\n", i);
		g_autofree gchar *out = agent_test_log_text(&f->fx, c.uuids[i], QSIM_LOG_STDOUT);

		g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
		g_assert_cmpuint(r->attempts, ==, 1);
		g_assert_cmpstr(out, ==, want);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/agent/vm/done", Fixture, NULL, fixture_setup, test_done,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/exit-code", Fixture, NULL, fixture_setup, test_exit_code,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/timeout", Fixture, NULL, fixture_setup, test_timeout,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/boot-timeout", Fixture, NULL, fixture_setup, test_boot_timeout,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/cancel-booting", Fixture, NULL, fixture_setup,
	           test_cancel_booting, fixture_teardown);
	g_test_add("/qsim/agent/vm/cancel-running", Fixture, NULL, fixture_setup,
	           test_cancel_running, fixture_teardown);
	g_test_add("/qsim/agent/vm/hold-resume", Fixture, NULL, fixture_setup, test_hold_resume,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/kill-qemu", Fixture, NULL, fixture_setup, test_kill_qemu,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/lease-fence", Fixture, NULL, fixture_setup, test_lease_fence,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/capacity", Fixture, NULL, fixture_setup, test_capacity,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/output-truncate", Fixture, NULL, fixture_setup,
	           test_output_truncate, fixture_teardown);
	g_test_add("/qsim/agent/vm/output-fail", Fixture, NULL, fixture_setup, test_output_fail,
	           fixture_teardown);
	g_test_add("/qsim/agent/vm/big-output", Fixture, NULL, fixture_setup, test_big_output,
	           fixture_teardown);
	return g_test_run();
}
