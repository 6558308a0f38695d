/*
 * One source of truth, end to end: `qsimd api` on a "host" with no images and two
 * `qsimd agents` with their own HOST_ID, RUN_DIR and STATE_DIR share one database.
 *   - GET /vms shows the VM with a row per host (the API reads only the store);
 *   - POST /vms/tiny/prepare is built by the agents of both hosts;
 *   - MAX_CONCURRENT_VMS holds across both processes with warm pools, builds and
 *     requests: a sampler counts the QEMU children of the two agents all along;
 *   - after kill -9 of one agent process its VM slots come back: the other host
 *     fills them, its host shows stale, and a request still runs.
 */
#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "daemon-test-util.h"
#include "qsim-pg-fixture.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-hosts.h"

/* hang guards only, far above a healthy run on a loaded 2-core TCG host */
#define WAIT_S 400
#define POLL_US (200 * 1000)
#define MAX_VMS 2

typedef struct {
	gchar *dir;
	gchar *images;
	gchar *configs;
	gchar *db;
	gchar *db_url; /* QSIM_TEST_DATABASE=pg: the PostgreSQL store, else NULL */
	gchar *url;
	GSubprocess *api;
	GSubprocess *agents[2];
	GPid agent_pids[2];
	SoupSession *session;
	/* the sampler thread */
	GThread *sampler;
	gint stop;
	gint max_qemus;
	gint samples_at_max;
} Fixture;

static const gchar *const hosts[] = {"host-a", "host-b"};

static gboolean
fixture_setup(Fixture *f)
{
	g_autoptr(GError) error = NULL;

	if (!daemon_test_have_guest())
		return FALSE;
	/* short: QEMU's QMP socket path must fit a sockaddr_un */
	f->dir = g_dir_make_tmp("qdh-XXXXXX", &error);
	g_assert_no_error(error);
	f->images = g_build_filename(f->dir, "images", NULL);
	f->configs = g_build_filename(f->dir, "vmconf", NULL);
	f->db = g_build_filename(f->dir, "db.sqlite", NULL);
	if (qsim_pg_test_wanted()) {
		f->db_url = qsim_pg_server_create_database(qsim_pg_server_get_shared(), &error);
		g_assert_no_error(error);
	}
	g_assert_cmpint(g_mkdir(f->images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(f->configs, 0700), ==, 0);
	daemon_test_link_guest(f->images, TRUE);
	/* every host wants more warm VMs than the whole database may run */
	daemon_test_write_conf(f->configs, "tiny", "\nWARM_POOL_SIZE=2\n");
	f->session = soup_session_new();
	return TRUE;
}

/* Returns: (transfer full): a launcher for `qsimd` as @host (NULL: the API's "host") */
static GSubprocessLauncher *
launcher_for(Fixture *f, const gchar *host)
{
	const gchar *me = host != NULL ? host : "api-host";
	g_autofree gchar *run = g_build_filename(f->dir, me, "run", NULL);
	g_autofree gchar *state = g_build_filename(f->dir, me, "state", NULL);
	g_autofree gchar *empty = g_build_filename(f->dir, me, "no-images", NULL);
	g_autofree gchar *log = g_strdup_printf("%s/%s.log", f->dir, me);
	GSubprocessLauncher *l;

	g_assert_cmpint(g_mkdir_with_parents(empty, 0700), ==, 0);
	/* the API's host has no images at all */
	l = daemon_test_launcher_new(G_SUBPROCESS_FLAGS_NONE, f->dir, f->db, run, state,
	                             host != NULL ? f->images : empty,
	                             host != NULL ? f->configs : empty);
	if (f->db_url != NULL)
		g_subprocess_launcher_setenv(l, "QSIM_DATABASE_URL", f->db_url, TRUE);
	else
		g_subprocess_launcher_unsetenv(l, "QSIM_DATABASE_URL");
	g_subprocess_launcher_setenv(l, "QSIM_HOST_ID", me, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_MAX_CONCURRENT_VMS", G_STRINGIFY(MAX_VMS), TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_WARM_POOL_SIZE", "2", TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_AGENT_COUNT", "2", TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_AGENT_POLL_INTERVAL", "0.2", TRUE);
	/* a dead agent's host goes stale (and its leases expire) within seconds */
	g_subprocess_launcher_setenv(l, "QSIM_LEASE_SECONDS", "3", TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_ACCEL", "tcg", TRUE);
	g_subprocess_launcher_set_stdout_file_path(l, log);
	g_subprocess_launcher_set_stderr_file_path(l, log);
	return l;
}

static void
start_agents(Fixture *f, guint i)
{
	g_autoptr(GSubprocessLauncher) l = launcher_for(f, hosts[i]);
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {qsim_test_qsimd_path(), "agents", NULL};

	f->agents[i] = g_subprocess_launcher_spawnv(l, argv, &error);
	g_assert_no_error(error);
	f->agent_pids[i] =
	    (GPid)g_ascii_strtoll(g_subprocess_get_identifier(f->agents[i]), NULL, 10);
}

static void
start_api(Fixture *f)
{
	g_autoptr(GSubprocessLauncher) l = launcher_for(f, NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *port = NULL;
	const gchar *argv[] = {qsim_test_qsimd_path(), "api", NULL};
	guint16 p = qsim_test_free_port();

	port = g_strdup_printf("%u", p);
	f->url = g_strdup_printf("http://127.0.0.1:%u", p);
	g_subprocess_launcher_setenv(l, "QSIM_API_HOST", "127.0.0.1", TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_API_PORT", port, TRUE);
	f->api = g_subprocess_launcher_spawnv(l, argv, &error);
	g_assert_no_error(error);
}

/* QEMUs now whose parent is one of the agent processes (from /proc) */
static gint
count_qemus(Fixture *f)
{
	g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
	const gchar *name;
	gint n = 0;

	while (proc != NULL && (name = g_dir_read_name(proc)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *stat = NULL;
		const gchar *close;
		gint ppid = 0;
		gchar state = 0;

		if (!g_ascii_isdigit(name[0]))
			continue;
		path = g_strdup_printf("/proc/%s/stat", name);
		if (!g_file_get_contents(path, &stat, NULL, NULL))
			continue;
		/* pid (comm) state ppid ...: comm may hold spaces, the last ')' ends it */
		close = strrchr(stat, ')');
		if (close == NULL || strstr(stat, "(qemu-system") == NULL ||
		    sscanf(close + 1, " %c %d", &state, &ppid) != 2 || state == 'Z')
			continue;
		if (ppid == f->agent_pids[0] || ppid == f->agent_pids[1])
			n++;
	}
	return n;
}

static gpointer
sampler_thread(gpointer data)
{
	Fixture *f = data;

	while (!g_atomic_int_get(&f->stop)) {
		gint n = count_qemus(f);

		if (n > g_atomic_int_get(&f->max_qemus)) {
			g_atomic_int_set(&f->max_qemus, n);
			g_atomic_int_set(&f->samples_at_max, 0);
		}
		if (n == g_atomic_int_get(&f->max_qemus))
			g_atomic_int_inc(&f->samples_at_max);
		g_usleep(50 * 1000);
	}
	return NULL;
}

static void
fixture_teardown(Fixture *f)
{
	if (f->sampler != NULL) {
		g_atomic_int_set(&f->stop, 1);
		g_thread_join(f->sampler);
	}
	for (guint i = 0; i < 2; i++)
		daemon_test_stop(&f->agents[i]);
	daemon_test_stop(&f->api);
	g_clear_object(&f->session);
	/* on PostgreSQL no process fell back to a SQLite file */
	if (f->db_url != NULL)
		g_assert_false(g_file_test(f->db, G_FILE_TEST_EXISTS));
	if (f->dir != NULL && g_getenv("QSIM_KEEP_TEST_DIR") == NULL)
		qsim_test_rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->images);
	g_free(f->configs);
	g_free(f->db);
	g_free(f->db_url);
	g_free(f->url);
}

/* Returns: (transfer full) (nullable): the JSON reply; NULL when nothing answered */
static JsonNode *
http(Fixture *f, const gchar *method, const gchar *path, const gchar *body, guint *out_status)
{
	return daemon_test_http(f->session, f->url, method, path, body, out_status);
}

typedef gboolean (*CheckFunc)(Fixture *f, JsonObject *vm, gpointer data);

/* Polls GET /vms/tiny until @check holds; fails the test past WAIT_S */
static void
wait_vm(Fixture *f, const gchar *what, CheckFunc check, gpointer data)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;

	g_test_message("waiting: %s", what);
	for (;;) {
		guint status = 0;
		g_autoptr(JsonNode) node = http(f, "GET", "/vms/tiny", NULL, &status);

		if (node != NULL && status == 200 && check(f, json_node_get_object(node), data))
			return;
		if (g_get_monotonic_time() > deadline)
			g_error("timed out waiting: %s (logs in %s)", what, f->dir);
		g_usleep(POLL_US);
	}
}

/* Returns: (transfer none) (nullable): the row of @host in @vm's "hosts" */
static JsonObject *
host_row(JsonObject *vm, const gchar *host)
{
	JsonArray *rows =
	    json_object_has_member(vm, "hosts") ? json_object_get_array_member(vm, "hosts") : NULL;

	for (guint i = 0; rows != NULL && i < json_array_get_length(rows); i++) {
		JsonObject *r = json_array_get_object_element(rows, i);

		if (g_strcmp0(json_object_get_string_member(r, "host"), host) == 0)
			return r;
	}
	return NULL;
}

static gboolean
both_hosts_listed(Fixture *f, JsonObject *vm, gpointer data)
{
	return host_row(vm, hosts[0]) != NULL && host_row(vm, hosts[1]) != NULL;
}

static gboolean
both_templates_ready(Fixture *f, JsonObject *vm, gpointer data)
{
	for (guint i = 0; i < 2; i++) {
		JsonObject *r = host_row(vm, hosts[i]);
		JsonObject *t = r != NULL ? json_object_get_object_member(r, "template") : NULL;

		if (t == NULL)
			return FALSE;
		/* a failed build would never become ready: say so at once */
		if (g_strcmp0(json_object_get_string_member(t, "state"), "failed") == 0)
			g_error("the build on %s failed: %s", hosts[i],
			        json_object_get_string_member(t, "reason"));
		if (g_strcmp0(json_object_get_string_member(t, "state"), "ready") != 0)
			return FALSE;
	}
	return TRUE;
}

static guint
parked_on(JsonObject *vm, const gchar *host)
{
	JsonObject *r = host_row(vm, host);

	return r != NULL ? (guint)json_object_get_int_member(
	                       json_object_get_object_member(r, "warm_pool"), "parked")
	                 : 0;
}

static gboolean
pools_full(Fixture *f, JsonObject *vm, gpointer data)
{
	/* every slot taken by a warm VM (more would break the cap: the sampler says so) */
	return parked_on(vm, hosts[0]) + parked_on(vm, hosts[1]) >= MAX_VMS;
}

static gboolean
b_took_every_slot(Fixture *f, JsonObject *vm, gpointer data)
{
	JsonObject *a = host_row(vm, hosts[0]);

	return a != NULL && json_object_get_boolean_member(a, "stale") &&
	       parked_on(vm, hosts[1]) >= MAX_VMS;
}

static gchar *
submit(Fixture *f, const gchar *commands)
{
	g_autofree gchar *body =
	    g_strdup_printf("{\"vm_name\":\"tiny\",\"commands\":\"%s\",\"timeout\":120}", commands);
	guint status = 0;
	g_autoptr(JsonNode) node = http(f, "POST", "/requests", body, &status);

	g_assert_nonnull(node);
	g_assert_cmpuint(status, ==, 201);
	return g_strdup(json_object_get_string_member(json_node_get_object(node), "uuid"));
}

static void
wait_done(Fixture *f, const gchar *uuid)
{
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);
	gint64 deadline = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;

	for (;;) {
		guint status = 0;
		g_autoptr(JsonNode) node = http(f, "GET", path, NULL, &status);
		const gchar *st =
		    node != NULL
		        ? json_object_get_string_member(json_node_get_object(node), "status")
		        : NULL;

		if (g_strcmp0(st, "done") == 0)
			return;
		if (g_strcmp0(st, "failed") == 0 || g_strcmp0(st, "cancelled") == 0)
			g_error("request %s ended %s: %s", uuid, st,
			        json_object_get_string_member(json_node_get_object(node), "error"));
		if (g_get_monotonic_time() > deadline)
			g_error("request %s not done in time (logs in %s)", uuid, f->dir);
		g_usleep(POLL_US);
	}
}

static guint
slots_of(Fixture *f, const gchar *host)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = qsim_store_open(f->db_url != NULL ? f->db_url : f->db, &error);
	g_autoptr(GPtrArray) slots = NULL;

	g_assert_no_error(error);
	slots = qsim_store_list_slots(store, host, &error);
	g_assert_no_error(error);
	return slots->len;
}

static void
test_two_hosts(void)
{
	Fixture f = {0};
	g_autoptr(JsonNode) accepted = NULL;
	JsonArray *asked;
	guint status = 0;
	gint64 deadline;

	if (!fixture_setup(&f))
		return;
	start_api(&f);
	start_agents(&f, 0);
	start_agents(&f, 1);
	f.sampler = g_thread_new("qemu-sampler", sampler_thread, &f);

	/* the API has no images, yet lists the VM with both hosts */
	wait_vm(&f, "GET /vms/tiny shows both hosts", both_hosts_listed, NULL);
	{
		g_autoptr(JsonNode) list = http(&f, "GET", "/vms", NULL, &status);

		g_assert_cmpuint(status, ==, 200);
		g_assert_cmpuint(json_array_get_length(json_node_get_array(list)), ==, 1);
	}

	/* a prepare without a host: both hosts build their own template */
	accepted = http(&f, "POST", "/vms/tiny/prepare", NULL, &status);
	g_assert_nonnull(accepted);
	g_assert_cmpuint(status, ==, 202);
	asked = json_object_get_array_member(json_node_get_object(accepted), "hosts");
	g_assert_cmpuint(json_array_get_length(asked), ==, 2);
	wait_vm(&f, "both templates ready", both_templates_ready, NULL);

	/* warm pools of both processes want 4 VMs; the database allows MAX_VMS */
	wait_vm(&f, "warm pools fill every slot", pools_full, NULL);
	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *uuid = submit(&f, "echo hello");

		wait_done(&f, uuid);
	}
	wait_vm(&f, "warm pools refilled", pools_full, NULL);
	g_assert_cmpint(g_atomic_int_get(&f.max_qemus), <=, MAX_VMS);

	/* kill -9 host-a's agents: its QEMUs die with it, its slots come back */
	g_assert_cmpuint(slots_of(&f, hosts[0]) + slots_of(&f, hosts[1]), ==, MAX_VMS);
	g_subprocess_force_exit(f.agents[0]);
	g_subprocess_wait(f.agents[0], NULL, NULL);
	g_clear_object(&f.agents[0]);
	wait_vm(&f, "host-b takes every slot, host-a shows stale", b_took_every_slot, NULL);
	deadline = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;
	while (slots_of(&f, hosts[0]) > 0) {
		if (g_get_monotonic_time() > deadline)
			g_error("host-a's slots were not freed");
		g_usleep(POLL_US);
	}
	{
		g_autofree gchar *uuid = submit(&f, "echo after");

		wait_done(&f, uuid);
	}
	g_atomic_int_set(&f.stop, 1);
	g_thread_join(f.sampler);
	f.sampler = NULL;
	g_test_message("at most %d QEMUs at once (%d samples there)", f.max_qemus,
	               f.samples_at_max);
	/* never past the cap, and the sampler did see the cap reached (it can see QEMUs) */
	g_assert_cmpint(f.max_qemus, ==, MAX_VMS);
	fixture_teardown(&f);
}

int
main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/daemon/hosts/two-hosts", test_two_hosts);
	return g_test_run();
}
