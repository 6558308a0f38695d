/*
 * Fast start through a real `qsimd all`: POST /vms/tiny/prepare builds the template
 * (GET /vms/tiny follows it to ready), a request restores it (start_mode snapshot,
 * "restored from snapshot" in its system log), touching the image makes GET /vms say
 * stale at once, and the next request boots cold. A SIGTERM during a build cancels it
 * (no QEMU or build dir left, row not "building"); a kill -9 during a build is recovered
 * by the next start (row reset, template built again). The image and VM config are
 * private copies, so nothing shared is touched.
 */
#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <utime.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "agent/qsim-template-service.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"
#include "daemon-test-util.h"
#include "vm/qsim-vm-rundir.h"

/* hang guards only, far above a healthy run on a loaded 2-core TCG host */
#define BUILD_TIMEOUT_S 300
#define REQUEST_TIMEOUT_S 240
#define POLL_US (200 * 1000)

typedef DaemonFixture Fixture;

/* The image is copied (the test touches it); the large read-only inputs are linked */
static gboolean
fixture_setup(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_image =
	    g_build_filename(daemon_test_source_root(), "vm_images", "tiny.qcow2", NULL);
	g_autofree gchar *image = NULL;
	g_autofree gchar *image_data = NULL;
	gsize image_len = 0;

	if (!daemon_fixture_setup(f, "qdf-XXXXXX", FALSE))
		return FALSE;
	image = g_build_filename(f->images, "tiny.qcow2", NULL);
	g_assert_true(g_file_get_contents(src_image, &image_data, &image_len, &error));
	g_assert_true(g_file_set_contents(image, image_data, (gssize)image_len, &error));
	g_assert_no_error(error);
	return TRUE;
}

/* Runs `qsimd ARG1 ARG2` to completion; its stdout and stderr go to @out */
static void
run_qsimd(Fixture *f, const gchar *arg1, const gchar *arg2, gint *status, gchar **out)
{
	g_autoptr(GSubprocessLauncher) launcher = daemon_fixture_launcher(
	    f, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {qsim_test_qsimd_path(), arg1, arg2, NULL};

	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, out, NULL, &error));
	g_assert_true(g_subprocess_get_if_exited(proc));
	*status = g_subprocess_get_exit_status(proc);
}

static void
daemon_start(Fixture *f)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    daemon_fixture_launcher(f, G_SUBPROCESS_FLAGS_NONE);

	daemon_fixture_spawn_all(f, launcher);
}

/* Returns: (transfer full) (nullable): the JSON reply; NULL when nothing answered */
static JsonNode *
http(Fixture *f, const gchar *method, const gchar *path, const gchar *body, guint *out_status)
{
	return daemon_test_http(f->session, f->url, method, path, body, out_status);
}

/* Returns: (transfer full): the object answered with @want_status */
static JsonNode *
http_ok(Fixture *f, const gchar *method, const gchar *path, const gchar *body, guint want_status)
{
	guint status = 0;
	JsonNode *node = http(f, method, path, body, &status);

	g_assert_nonnull(node);
	if (status != want_status)
		g_error("%s %s: %u, not %u", method, path, status, want_status);
	return node;
}

/* Returns: (transfer full): GET /vms/tiny's template object, as a node */
static JsonNode *
tiny_template(Fixture *f)
{
	g_autoptr(JsonNode) vm = http_ok(f, "GET", "/vms/tiny", NULL, 200);

	return json_node_copy(json_object_get_member(json_node_get_object(vm), "template"));
}

static const gchar *
tpl_state(JsonNode *tpl)
{
	return json_object_get_string_member(json_node_get_object(tpl), "state");
}

/* Waits until the prepare request was taken and the build ended; returns the template */
static JsonNode *
wait_template_settled(Fixture *f)
{
	gint64 deadline = g_get_monotonic_time() + BUILD_TIMEOUT_S * G_USEC_PER_SEC;
	gboolean seen_building = FALSE;

	for (;;) {
		g_autoptr(JsonNode) tpl = tiny_template(f);
		JsonObject *o = json_node_get_object(tpl);

		if (g_strcmp0(tpl_state(tpl), "building") == 0)
			seen_building = TRUE;
		else if (!json_object_get_boolean_member(o, "prepare_requested")) {
			g_test_message("template %s (building seen: %d)", tpl_state(tpl),
			               seen_building);
			return g_steal_pointer(&tpl);
		}
		if (g_get_monotonic_time() > deadline)
			g_error("the template build did not end; see %s", f->log);
		g_usleep(POLL_US);
	}
}

/* Submits @commands to tiny and waits until the request is final; returns it */
static JsonNode *
run_request(Fixture *f, const gchar *commands, gchar **out_uuid)
{
	g_autofree gchar *body =
	    g_strdup_printf("{\"vm_name\":\"tiny\",\"commands\":\"%s\",\"timeout\":120}", commands);
	g_autoptr(JsonNode) created = http_ok(f, "POST", "/requests", body, 201);
	g_autofree gchar *path = NULL;
	gint64 deadline = g_get_monotonic_time() + REQUEST_TIMEOUT_S * G_USEC_PER_SEC;

	*out_uuid = g_strdup(json_object_get_string_member(json_node_get_object(created), "uuid"));
	path = g_strdup_printf("/requests/%s", *out_uuid);
	for (;;) {
		g_autoptr(JsonNode) r = http_ok(f, "GET", path, NULL, 200);
		const gchar *status =
		    json_object_get_string_member(json_node_get_object(r), "status");

		if (g_strcmp0(status, "done") == 0 || g_strcmp0(status, "failed") == 0 ||
		    g_strcmp0(status, "cancelled") == 0)
			return g_steal_pointer(&r);
		if (g_get_monotonic_time() > deadline)
			g_error("request %s did not end; see %s", *out_uuid, f->log);
		g_usleep(POLL_US);
	}
}

/* Returns: (transfer full): the request's system log lines, joined */
static gchar *
system_log(Fixture *f, const gchar *uuid)
{
	g_autofree gchar *path = g_strdup_printf("/requests/%s/logs?log_type=system", uuid);
	g_autoptr(JsonNode) logs = http_ok(f, "GET", path, NULL, 200);
	JsonArray *a = json_node_get_array(logs);
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < json_array_get_length(a); i++)
		g_string_append_printf(
		    out, "%s\n",
		    json_object_get_string_member(json_array_get_object_element(a, i), "output"));
	return g_string_free(out, FALSE);
}

static const gchar *
str_member(JsonNode *node, const gchar *name)
{
	return json_object_get_string_member(json_node_get_object(node), name);
}

/* SIGTERM, and the daemon must exit 0 (under ASan also no leak or error in it) */
static void
daemon_stop_clean(Fixture *f)
{
	g_subprocess_send_signal(f->daemon, SIGTERM);
	g_subprocess_wait(f->daemon, NULL, NULL);
	if (!g_subprocess_get_if_exited(f->daemon) ||
	    g_subprocess_get_exit_status(f->daemon) != 0) {
		g_autofree gchar *log = NULL;

		g_file_get_contents(f->log, &log, NULL, NULL);
		g_error("qsimd all did not stop cleanly:\n%s", log != NULL ? log : "(no log)");
	}
	g_clear_object(&f->daemon);
}

static void
test_prepare_restore_stale(void)
{
	Fixture f = {0};
	g_autoptr(JsonNode) tpl = NULL;
	g_autoptr(JsonNode) accepted = NULL;
	g_autoptr(JsonNode) r1 = NULL;
	g_autoptr(JsonNode) r2 = NULL;
	g_autoptr(JsonNode) stats = NULL;
	g_autofree gchar *u1 = NULL;
	g_autofree gchar *u2 = NULL;
	g_autofree gchar *log1 = NULL;
	g_autofree gchar *log2 = NULL;
	g_autofree gchar *image = NULL;
	struct utimbuf later;
	GStatBuf st;

	if (!fixture_setup(&f))
		return;
	daemon_start(&f);
	daemon_fixture_wait_healthy(&f);

	tpl = tiny_template(&f);
	g_assert_cmpstr(tpl_state(tpl), ==, "none");
	g_clear_pointer(&tpl, json_node_unref);

	/* prepare: 202 with the template; the agents of `qsimd all` build it */
	accepted = http_ok(&f, "POST", "/vms/tiny/prepare", NULL, 202);
	g_assert_true(json_object_get_boolean_member(
	    json_object_get_object_member(json_node_get_object(accepted), "template"),
	    "prepare_requested"));
	tpl = wait_template_settled(&f);
	g_assert_cmpstr(tpl_state(tpl), ==, "ready");
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(tpl), "size_bytes"), >, 0);
	g_assert_false(json_object_get_null_member(json_node_get_object(tpl), "built_at"));
	g_assert_false(json_object_get_null_member(json_node_get_object(tpl), "build_s"));
	g_assert_cmpstr(str_member(tpl, "qemu_version"), !=, NULL);
	g_clear_pointer(&tpl, json_node_unref);

	/* a request restores it */
	r1 = run_request(&f, "echo restored", &u1);
	log1 = system_log(&f, u1);
	g_test_message("first request:\n%s", log1);
	g_assert_cmpstr(str_member(r1, "status"), ==, "done");
	g_assert_cmpstr(str_member(r1, "start_mode"), ==, "snapshot");
	g_assert_nonnull(strstr(log1, "restored from snapshot"));

	/* touch the image copy: GET /vms says stale at once, before any request */
	image = g_build_filename(f.images, "tiny.qcow2", NULL);
	g_assert_cmpint(g_stat(image, &st), ==, 0);
	later.actime = st.st_atime;
	later.modtime = st.st_mtime + 10;
	g_assert_cmpint(utime(image, &later), ==, 0);
	{
		g_autoptr(JsonNode) list = http_ok(&f, "GET", "/vms", NULL, 200);
		JsonObject *vm = json_array_get_object_element(json_node_get_array(list), 0);
		JsonObject *t = json_object_get_object_member(vm, "template");

		g_assert_cmpstr(json_object_get_string_member(vm, "name"), ==, "tiny");
		g_assert_cmpstr(json_object_get_string_member(t, "state"), ==, "stale");
		g_test_message("stale because: %s", json_object_get_string_member(t, "reason"));
		g_assert_false(json_object_get_null_member(t, "reason"));
	}

	/* and the next request boots cold */
	r2 = run_request(&f, "echo cold", &u2);
	log2 = system_log(&f, u2);
	g_assert_cmpstr(str_member(r2, "status"), ==, "done");
	g_assert_cmpstr(str_member(r2, "start_mode"), ==, "cold");
	g_assert_nonnull(strstr(log2, "cold boot (fast start:"));
	g_assert_null(strstr(log2, "restored from snapshot"));

	/* qsim-ctl prepare --wait rebuilds the stale template and returns once it is ready */
	{
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;
		const gchar *args[] = {"prepare", "tiny", "--wait", NULL};

		g_assert_cmpint(daemon_test_ctl(f.url, NULL, args, &out, &err), ==, 0);
		g_assert_nonnull(strstr(out, "Template of tiny: ready"));
		tpl = tiny_template(&f);
		g_assert_cmpstr(tpl_state(tpl), ==, "ready");
	}

	stats = http_ok(&f, "GET", "/stats", NULL, 200);
	{
		JsonObject *modes =
		    json_object_get_object_member(json_node_get_object(stats), "start_modes");

		g_assert_cmpint(json_object_get_int_member(
		                    json_object_get_object_member(modes, "snapshot"), "count"),
		                ==, 1);
		g_assert_cmpint(json_object_get_int_member(
		                    json_object_get_object_member(modes, "cold"), "count"),
		                ==, 1);
	}
	daemon_stop_clean(&f);

	/* the database row has the manifest's facts; `qsimd prepare` finds the template fresh
	 * (nothing to build) and records it ready again */
	{
		g_autofree gchar *db = g_build_filename(f.dir, "db.sqlite", NULL);
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimStore) store = qsim_store_open(db, &error);
		g_autoptr(QsimTemplateRecord) row = NULL;
		g_autofree gchar *out = NULL;
		gint status = -1;

		g_assert_no_error(error);
		row = qsim_store_get_template(store, "tiny", qsim_store_get_local_host(), &error);
		g_assert_no_error(error);
		g_assert_cmpint(row->state, ==, QSIM_TEMPLATE_RECORD_READY);
		g_assert_cmpuint(row->size_bytes, >, 0);
		g_assert_cmpuint(strlen(row->image_sha256), ==, 64);
		g_assert_cmpuint(row->image_size, >, 0);
		g_assert_nonnull(row->config_hash);
		g_assert_nonnull(row->qemu_version);
		g_assert_cmpstr(row->machine, ==, "q35");
		g_assert_cmpint(row->build_ms, >, 0);
		g_assert_cmpint(row->build_finished_at, >=, row->build_started_at);
		g_assert_null(row->reason);
		g_clear_pointer(&row, qsim_template_record_free);

		run_qsimd(&f, "prepare", "tiny", &status, &out);
		g_test_message("qsimd prepare tiny: %s", out);
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, "tiny: ready"));
		row = qsim_store_get_template(store, "tiny", qsim_store_get_local_host(), &error);
		g_assert_cmpint(row->state, ==, QSIM_TEMPLATE_RECORD_READY);
		g_assert_cmpint(row->prepare_requested_at, ==, 0);
	}
	daemon_fixture_teardown(&f);
}

/* Returns: (transfer full): RUN_DIR/template-builds */
static gchar *
build_root(Fixture *f)
{
	return g_build_filename(f->dir, "run", "template-builds", NULL);
}

/* Returns: the pid of a build VM's QEMU under RUN_DIR/template-builds, or 0 */
static GPid
build_qemu_pid(Fixture *f)
{
	g_autofree gchar *root = build_root(f);
	g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *pidfile =
		    g_build_filename(root, name, QSIM_VM_RUNDIR_QEMU_PID, NULL);
		g_autofree gchar *text = NULL;
		gint64 pid;

		if (!g_file_get_contents(pidfile, &text, NULL, NULL))
			continue;
		pid = g_ascii_strtoll(g_strstrip(text), NULL, 10);
		if (pid > 1)
			return (GPid)pid;
	}
	return 0;
}

/* Posts the prepare and waits until its build VM's QEMU runs; returns that pid */
static GPid
start_build(Fixture *f)
{
	g_autoptr(JsonNode) accepted = http_ok(f, "POST", "/vms/tiny/prepare", NULL, 202);
	gint64 deadline = g_get_monotonic_time() + BUILD_TIMEOUT_S * G_USEC_PER_SEC;
	GPid pid;

	while ((pid = build_qemu_pid(f)) == 0) {
		if (g_get_monotonic_time() > deadline)
			g_error("no build VM came up; see %s", f->log);
		g_usleep(20 * 1000);
	}
	return pid;
}

/* Whether @pid is still a QEMU: gone, a zombie (no cmdline) or another program is not */
static gboolean
qemu_alive(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cmdline", (gint)pid);
	g_autofree gchar *cmdline = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &cmdline, &len, NULL) || len == 0)
		return FALSE;
	return strstr(cmdline, "qemu") != NULL;
}

/* Returns: how many entries RUN_DIR/template-builds still holds */
static guint
build_root_entries(Fixture *f)
{
	g_autofree gchar *root = build_root(f);
	g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
	guint n = 0;

	while (dir != NULL && g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

static QsimTemplateRecord *
db_template(Fixture *f)
{
	g_autofree gchar *db = g_build_filename(f->dir, "db.sqlite", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = qsim_store_open(db, &error);
	QsimTemplateRecord *row;

	g_assert_no_error(error);
	row = qsim_store_get_template(store, "tiny", qsim_store_get_local_host(), &error);
	g_assert_no_error(error);
	return row;
}

/* SIGTERM while a prepare builds: the build is cancelled, its QEMU and build dir are
 * gone when qsimd has exited (0), and the row is not left "building": failed with the
 * shutdown reason, the prepare request queued again for the next start */
static void
test_shutdown_during_build(void)
{
	Fixture f = {0};
	g_autoptr(QsimTemplateRecord) row = NULL;
	GPid qemu;

	if (!fixture_setup(&f))
		return;
	daemon_start(&f);
	daemon_fixture_wait_healthy(&f);
	qemu = start_build(&f);
	g_test_message("build QEMU pid %d", (gint)qemu);
	daemon_stop_clean(&f);
	g_assert_false(qemu_alive(qemu));
	g_assert_cmpuint(build_root_entries(&f), ==, 0);
	row = db_template(&f);
	g_assert_cmpint(row->state, ==, QSIM_TEMPLATE_RECORD_FAILED);
	g_assert_cmpstr(row->reason, ==, QSIM_TEMPLATE_SERVICE_SHUTDOWN_REASON);
	g_assert_null(row->builder);
	g_assert_cmpint(row->prepare_requested_at, !=, 0);
	daemon_fixture_teardown(&f);
}

/* kill -9 of qsimd mid-build: the row still says building with the dead builder; the
 * next qsimd resets it at once (no 30-minute takeover), builds the template again from
 * the queued prepare, and no QEMU of the first build is left */
static void
test_builder_killed(void)
{
	Fixture f = {0};
	g_autoptr(QsimTemplateRecord) row = NULL;
	g_autoptr(JsonNode) tpl = NULL;
	g_autofree gchar *builder = NULL;
	g_autofree gchar *log = NULL;
	GPid qemu;

	if (!fixture_setup(&f))
		return;
	daemon_start(&f);
	daemon_fixture_wait_healthy(&f);
	qemu = start_build(&f);
	builder = g_strdup_printf("%s:%s:0", qsim_store_get_local_host(),
	                          g_subprocess_get_identifier(f.daemon));
	g_subprocess_force_exit(f.daemon);
	g_subprocess_wait(f.daemon, NULL, NULL);
	g_clear_object(&f.daemon);
	row = db_template(&f);
	g_assert_cmpint(row->state, ==, QSIM_TEMPLATE_RECORD_BUILDING);
	g_assert_cmpstr(row->builder, ==, builder);

	daemon_start(&f);
	daemon_fixture_wait_healthy(&f);
	tpl = wait_template_settled(&f);
	g_assert_cmpstr(tpl_state(tpl), ==, "ready");
	g_assert_false(qemu_alive(qemu));
	g_assert_true(g_file_get_contents(f.log, &log, NULL, NULL));
	g_assert_nonnull(strstr(log, "queued again"));
	daemon_stop_clean(&f);
	g_assert_cmpuint(build_root_entries(&f), ==, 0);
	daemon_fixture_teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/daemon/fast-start/prepare-restore-stale",
	                test_prepare_restore_stale);
	g_test_add_func("/qsim/daemon/fast-start/shutdown-during-build",
	                test_shutdown_during_build);
	g_test_add_func("/qsim/daemon/fast-start/builder-killed", test_builder_killed);
	return g_test_run();
}
