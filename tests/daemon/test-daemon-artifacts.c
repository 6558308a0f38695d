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

#include "daemon-test-util.h"

typedef DaemonFixture Fixture;

static void
daemon_start(Fixture *f)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    daemon_fixture_launcher(f, G_SUBPROCESS_FLAGS_NONE);

	g_subprocess_launcher_setenv(launcher, "QSIM_AGENT_COUNT", "1", TRUE);
	daemon_fixture_spawn_all(f, launcher);
}

/* Runs qsim-ctl with @args; returns its exit status, with its output in @out/@err */
static gint
ctl(Fixture *f, const gchar *const *args, gchar **out, gchar **err)
{
	return daemon_test_ctl(f->url, NULL, args, out, err);
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
	daemon_fixture_wait_healthy(f);
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

	if (!daemon_fixture_setup(&f, "qda-XXXXXX", TRUE))
		return;
	daemon_start(&f);
	daemon_fixture_wait_healthy(&f);
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
	daemon_fixture_teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/daemon/artifacts/run-output-dir", test_run_artifacts);
	return g_test_run();
}
