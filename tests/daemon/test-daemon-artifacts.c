/*
 * Files out end to end through a real `qsimd all` and qsim-ctl: `qsim-ctl run tiny
 * --artifact ... --output-dir DIR` runs failing commands in the real tiny guest, exits
 * with the guest's status and leaves the collected files (modes, a nested directory, a
 * symlink kept as one) in DIR; `qsim-ctl artifacts` lists them and fetches one by name.
 * After a kill -9, the next start sweeps what the store does not know.
 */
#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <utime.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "test-util.h"

typedef struct {
	gchar *dir;
	gchar *images;
	gchar *url;
	gchar *log;
	GSubprocess *daemon;
	SoupSession *session;
} Fixture;

static const gchar *
source_root(void)
{
	const gchar *root = g_getenv("QSIM_SOURCE_ROOT");

	return root != NULL ? root : SOURCE_ROOT;
}

static gboolean
fixture_setup(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_images = g_build_filename(source_root(), "vm_images", NULL);
	g_autofree gchar *src_conf =
	    g_build_filename(source_root(), "tests", "data", "vm_configs", "tiny.conf", NULL);
	g_autofree gchar *src_image = g_build_filename(src_images, "tiny.qcow2", NULL);
	g_autofree gchar *configs = NULL;
	g_autofree gchar *conf = NULL;
	g_autofree gchar *conf_text = NULL;
	const gchar *linked[] = {"tiny.qcow2", "tiny-vmlinux", "tiny-initrd.img", "tiny-key", NULL};

	if (!g_file_test(src_image, G_FILE_TEST_EXISTS)) {
		if (g_getenv("QSIM_REQUIRE_VM") != NULL)
			g_error("the tiny guest is required (QSIM_REQUIRE_VM): no %s", src_image);
		g_test_skip("no tiny guest (meson compile -C build guest-image)");
		return FALSE;
	}
	/* short: QEMU's QMP socket path must fit a sockaddr_un */
	f->dir = g_dir_make_tmp("qda-XXXXXX", &error);
	g_assert_no_error(error);
	f->images = g_build_filename(f->dir, "images", NULL);
	configs = g_build_filename(f->dir, "vmconf", NULL);
	g_assert_cmpint(g_mkdir(f->images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(configs, 0700), ==, 0);
	for (guint i = 0; linked[i] != NULL; i++) {
		g_autofree gchar *from = g_build_filename(src_images, linked[i], NULL);
		g_autofree gchar *to = g_build_filename(f->images, linked[i], NULL);

		g_assert_cmpint(symlink(from, to), ==, 0);
	}
	conf = g_build_filename(configs, "tiny.conf", NULL);
	g_assert_true(g_file_get_contents(src_conf, &conf_text, NULL, &error));
	g_assert_true(g_file_set_contents(conf, conf_text, -1, &error));
	f->session = soup_session_new();
	return TRUE;
}

static void
fixture_teardown(Fixture *f)
{
	if (f->daemon != NULL) {
		g_subprocess_send_signal(f->daemon, SIGTERM);
		g_subprocess_wait(f->daemon, NULL, NULL);
		g_clear_object(&f->daemon);
	}
	g_clear_object(&f->session);
	if (f->dir != NULL)
		qsim_test_rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->images);
	g_free(f->url);
	g_free(f->log);
}

static void
daemon_start(Fixture *f)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *port = NULL;
	g_autofree gchar *db = g_build_filename(f->dir, "db.sqlite", NULL);
	g_autofree gchar *run = g_build_filename(f->dir, "run", NULL);
	g_autofree gchar *state = g_build_filename(f->dir, "state", NULL);
	g_autofree gchar *configs = g_build_filename(f->dir, "vmconf", NULL);
	const gchar *argv[] = {qsim_test_qsimd_path(), "all", NULL};
	guint16 p = qsim_test_free_port();

	port = g_strdup_printf("%u", p);
	f->url = g_strdup_printf("http://127.0.0.1:%u", p);
	g_subprocess_launcher_setenv(launcher, "QSIM_DB_PATH", db, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_RUN_DIR", run, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_STATE_DIR", state, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_VM_IMAGES_DIR", f->images, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_VM_CONFIG_DIR", configs, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_LOG_LEVEL", "INFO", TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_AGENT_COUNT", "1", TRUE);
	g_subprocess_launcher_setenv(launcher, "XDG_CONFIG_HOME", f->dir, TRUE);
	g_subprocess_launcher_setenv(launcher, "HOME", f->dir, TRUE);
	g_subprocess_launcher_unsetenv(launcher, "QSIM_API_TOKENS");
	g_subprocess_launcher_setenv(launcher, "QSIM_API_HOST", "127.0.0.1", TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_API_PORT", port, TRUE);
	g_subprocess_launcher_setenv(launcher, "QSIM_AGENT_POLL_INTERVAL", "0.2", TRUE);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	f->log = g_build_filename(f->dir, "qsimd.log", NULL);
	g_subprocess_launcher_set_stdout_file_path(launcher, f->log);
	g_subprocess_launcher_set_stderr_file_path(launcher, f->log);
	f->daemon = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
}

static void
wait_healthy(Fixture *f)
{
	gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

	for (;;) {
		g_autofree gchar *uri = g_strconcat(f->url, "/health", NULL);
		g_autoptr(SoupMessage) msg = soup_message_new("GET", uri);
		g_autoptr(GBytes) reply = soup_session_send_and_read(f->session, msg, NULL, NULL);

		if (reply != NULL && soup_message_get_status(msg) == 200)
			return;
		if (g_get_monotonic_time() > deadline)
			g_error("qsimd all did not come up; see %s", f->log);
		g_usleep(200 * 1000);
	}
}

/* Runs qsim-ctl with @args; returns its exit status, with its output in @out/@err */
static gint
ctl(Fixture *f, const gchar *const *args, gchar **out, gchar **err)
{
	const gchar *root = g_getenv("QSIM_BUILD_ROOT");
	g_autofree gchar *exe =
	    g_build_filename(root != NULL ? root : BUILD_ROOT, "src", "cli", "qsim-ctl", NULL);
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(argv, exe);
	g_ptr_array_add(argv, "--url");
	g_ptr_array_add(argv, f->url);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_setenv(launcher, "LANG", "C.UTF-8", TRUE);
	g_subprocess_launcher_unsetenv(launcher, "QSIM_TOKEN");
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, out, err, &error));
	g_test_message("qsim-ctl %s: %s%s", args[0], *out, *err);
	g_assert_true(g_subprocess_get_if_exited(proc));
	return g_subprocess_get_exit_status(proc);
}

static void
assert_file(const gchar *dir, const gchar *name, const gchar *content, guint mode)
{
	g_autofree gchar *path = g_build_filename(dir, name, NULL);
	g_autofree gchar *data = NULL;
	struct stat st;

	g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
	g_assert_cmpstr(data, ==, content);
	g_assert_cmpint(lstat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, mode);
}

static void
make_old(const gchar *path)
{
	struct utimbuf t = {.actime = time(NULL) - 86400, .modtime = time(NULL) - 86400};

	g_assert_cmpint(utime(path, &t), ==, 0);
}

/*
 * kill -9 leaves what the store does not know under STATE_DIR/artifacts: a
 * directory for a request that never recorded artifacts, a partial file beside
 * recorded ones. The next start sweeps both and keeps what the store names.
 */
static void
restart_sweeps(Fixture *f, const gchar *uuid)
{
	g_autofree gchar *root = g_build_filename(f->dir, "state", "artifacts", NULL);
	g_autofree gchar *orphan_uuid = g_uuid_string_random();
	g_autofree gchar *orphan = g_build_filename(root, orphan_uuid, NULL);
	g_autofree gchar *orphan_file = g_build_filename(orphan, "half.bin", NULL);
	g_autofree gchar *dir = g_build_filename(root, uuid, NULL);
	g_autofree gchar *partial = g_build_filename(dir, "out", "partial.bin", NULL);
	g_autofree gchar *kept = g_build_filename(dir, "out", "a.txt", NULL);
	gint64 deadline;

	g_subprocess_send_signal(f->daemon, SIGKILL);
	g_assert_false(g_subprocess_wait_check(f->daemon, NULL, NULL));
	g_clear_object(&f->daemon);
	g_clear_pointer(&f->url, g_free);
	g_clear_pointer(&f->log, g_free);
	g_assert_true(g_file_test(kept, G_FILE_TEST_EXISTS));
	g_assert_cmpint(g_mkdir(orphan, 0700), ==, 0);
	g_assert_true(g_file_set_contents(orphan_file, "half", -1, NULL));
	g_assert_true(g_file_set_contents(partial, "half", -1, NULL));
	make_old(orphan);
	make_old(dir);
	daemon_start(f);
	wait_healthy(f);
	deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	while (g_file_test(orphan, G_FILE_TEST_EXISTS) ||
	       g_file_test(partial, G_FILE_TEST_EXISTS)) {
		if (g_get_monotonic_time() > deadline)
			g_error("the leftovers were not swept at start; see %s", f->log);
		g_usleep(100 * 1000);
	}
	g_assert_true(g_file_test(kept, G_FILE_TEST_EXISTS));
}

static void
test_run_artifacts(void)
{
	Fixture f = {0};
	g_autofree gchar *outdir = NULL;
	g_autofree gchar *one = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *link = NULL;
	g_autofree gchar *link_path = NULL;
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *src = NULL;
	g_autofree gchar *one_file = NULL;
	g_autofree gchar *data_sum = NULL;
	g_autofree gchar *one_sum = NULL;

	if (!fixture_setup(&f))
		return;
	daemon_start(&f);
	wait_healthy(&f);
	outdir = g_build_filename(f.dir, "results", NULL);
	/* inputs: a tree (an executable script, a binary file in a subdirectory, a
	 * symlink) and a single file */
	src = g_build_filename(f.dir, "src", NULL);
	{
		g_autofree gchar *sub = g_build_filename(src, "sub", NULL);
		g_autofree gchar *script = g_build_filename(src, "build.sh", NULL);
		g_autofree gchar *data = g_build_filename(sub, "data.bin", NULL);
		g_autofree gchar *lnk = g_build_filename(src, "link", NULL);
		gsize len = 300001;
		g_autofree guint8 *bytes = g_malloc(len);

		for (gsize i = 0; i < len; i++)
			bytes[i] = (guint8)g_random_int();
		data_sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, bytes, len);
		g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
		g_assert_true(g_file_set_contents(script, "#!/bin/sh\necho report\n", -1, NULL));
		g_assert_cmpint(g_chmod(script, 0755), ==, 0);
		g_assert_true(g_file_set_contents(data, (const gchar *)bytes, (gssize)len, NULL));
		g_assert_cmpint(symlink("sub/data.bin", lnk), ==, 0);
		one_file = g_build_filename(f.dir, "one.bin", NULL);
		g_assert_true(g_file_set_contents(one_file, (const gchar *)bytes, 1000, NULL));
		one_sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, bytes, 1000);
	}
	{
		g_autofree gchar *up1 = g_strdup_printf("%s:/root/src", src);
		g_autofree gchar *up2 = g_strdup_printf("%s:/root/one.bin", one_file);
		g_autofree gchar *want = NULL;
		const gchar *args[] = {
		    "run",
		    "tiny",
		    "--upload",
		    up1,
		    "--upload",
		    up2,
		    "--artifact",
		    "/out/*",
		    "--artifact",
		    "/none/x",
		    "-o",
		    outdir,
		    "--",
		    "mkdir -p /out/d && /root/src/build.sh > /out/a.txt && chmod 700 "
		    "/out/a.txt && printf bin > /out/d/b && ln -s /etc/passwd "
		    "/out/l && sha256sum /root/src/sub/data.bin /root/src/link "
		    "/root/one.bin && exit 4",
		    NULL};

		g_assert_cmpint(ctl(&f, args, &out, &err), ==, 4);
		want = g_strdup_printf("%s  /root/src/sub/data.bin\n%s  /root/src/link\n%s  "
		                       "/root/one.bin\n",
		                       data_sum, data_sum, one_sum);
		g_assert_cmpstr(out, ==, want);
	}
	assert_file(outdir, "out/a.txt", "report\n", 0700);
	assert_file(outdir, "out/d/b", "bin", 0644 & 0777);
	link_path = g_build_filename(outdir, "out", "l", NULL);
	link = g_file_read_link(link_path, NULL);
	g_assert_cmpstr(link, ==, "/etc/passwd");

	/* the list, then one artifact by name */
	{
		const gchar *args[] = {"--json", "list-requests", NULL};
		g_autofree gchar *o = NULL;
		g_autofree gchar *e = NULL;
		g_autoptr(JsonParser) parser = json_parser_new();

		g_assert_cmpint(ctl(&f, args, &o, &e), ==, 0);
		g_assert_true(json_parser_load_from_data(parser, o, -1, NULL));
		uuid = g_strdup(json_object_get_string_member(
		    json_array_get_object_element(json_node_get_array(json_parser_get_root(parser)),
		                                  0),
		    "uuid"));
	}
	{
		const gchar *args[] = {"artifacts", uuid, NULL};
		g_autofree gchar *o = NULL;
		g_autofree gchar *e = NULL;

		g_assert_cmpint(ctl(&f, args, &o, &e), ==, 0);
		g_assert_nonnull(strstr(o, "out/a.txt"));
		g_assert_nonnull(strstr(o, "out/l -> /etc/passwd"));
		g_assert_nonnull(strstr(o, "0700"));
	}
	one = g_build_filename(f.dir, "one", NULL);
	{
		const gchar *args[] = {"artifacts", uuid, "--get", "out/d/b", "-o", one, NULL};
		g_autofree gchar *o = NULL;
		g_autofree gchar *e = NULL;
		g_autofree gchar *other = g_build_filename(one, "out", "a.txt", NULL);

		g_assert_cmpint(ctl(&f, args, &o, &e), ==, 0);
		assert_file(one, "out/d/b", "bin", 0644);
		g_assert_false(g_file_test(other, G_FILE_TEST_EXISTS));
	}
	{
		const gchar *args[] = {"artifacts", uuid, "--get", "out/nope", NULL};
		g_autofree gchar *o = NULL;
		g_autofree gchar *e = NULL;

		g_assert_cmpint(ctl(&f, args, &o, &e), !=, 0);
		g_assert_nonnull(strstr(e, "no artifact out/nope"));
	}
	restart_sweeps(&f, uuid);
	fixture_teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/daemon/artifacts/run-output-dir", test_run_artifacts);
	return g_test_run();
}
