/*
 * Big inputs and a hostile guest through a real `qsimd all` (real tiny guest, real HTTP,
 * qsim-ctl as the client), one daemon for both cases:
 *
 *   upload-200mib    a 200 MiB pseudo-random file goes into the guest (multipart POST,
 *                    spooled by the API, streamed over SFTP by the agent); the guest's
 *                    sha256sum must match the host's, and qsimd's peak RSS (VmHWM: API and
 *                    agent share the process) must stay far below the file's size.
 *   million-files    the guest has a million files (hard links on a read-only squashfs
 *                    DATA_DISK, made by mksquashfs from a pseudo-file list, no host files)
 *                    and the request asks for all of them: the collector stops at
 *                    MAX_ARTIFACT_FILES with a `system` line, memory stays bounded and the
 *                    request ends normally.
 *
 * Durations are printed (g_test_message), never asserted.
 */
#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <signal.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "daemon-test-util.h"

#define BIG_SIZE (200 * 1024 * 1024)
/* far below BIG_SIZE: a buffered upload or artifact list would cross it */
#define RSS_GROWTH_MAX_KIB (100 * 1024)
#define MANY_DIRS 1000
#define MANY_PER_DIR 1000
#define MAX_FILES 1000

static DaemonFixture fx;
/* VM "many" with its DATA_DISK: mksquashfs was found */
static gboolean have_many;

/*
 * Makes DATA_DISK many.sqfs: MANY_DIRS directories of MANY_PER_DIR hard links to one
 * 2-byte file, from a pseudo-file list (mksquashfs -pf), so no host file per entry. The
 * links name a pseudo file (L), which is faster than naming a host file (l, one lstat
 * each). Before the daemon starts: it reads VM configs once.
 */
static gboolean
make_many_disk(DaemonFixture *f)
{
	g_autofree gchar *mksquashfs = g_find_program_in_path("mksquashfs");
	g_autofree gchar *empty = g_build_filename(f->dir, "empty", NULL);
	g_autofree gchar *pf = g_build_filename(f->dir, "many.pf", NULL);
	g_autofree gchar *disk = g_build_filename(f->images, "many.sqfs", NULL);
	g_autoptr(GString) list = g_string_new("one f 0444 0 0 echo x\nmany d 0755 0 0\n");
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	gint64 start = g_get_monotonic_time();

	if (mksquashfs == NULL)
		return FALSE;
	g_assert_cmpint(g_mkdir(empty, 0700), ==, 0);
	for (guint d = 0; d < MANY_DIRS; d++) {
		g_string_append_printf(list, "many/%03u d 0755 0 0\n", d);
		for (guint i = 0; i < MANY_PER_DIR; i++)
			g_string_append_printf(list, "many/%03u/%03u L one\n", d, i);
	}
	g_assert_true(g_file_set_contents(pf, list->str, (gssize)list->len, &error));
	/* -no-progress -quiet: its progress bar would fill the test log */
	proc =
	    g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error, mksquashfs, empty, disk,
	                     "-pf", pf, "-noappend", "-no-progress", "-quiet", "-all-root", NULL);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_wait_check(proc, NULL, &error));
	g_assert_no_error(error);
	g_test_message("mksquashfs of %u entries: %.1f s", MANY_DIRS * MANY_PER_DIR,
	               (gdouble)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);
	return TRUE;
}

/* Starts the one `qsimd all` both cases use, once. */
static gboolean
daemon_up(DaemonFixture *f)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree gchar *configs = NULL;
	g_autofree gchar *max_files = g_strdup_printf("%u", MAX_FILES);

	if (!daemon_test_have_guest())
		return FALSE;
	if (f->daemon != NULL)
		return TRUE;
	g_assert_true(daemon_fixture_setup(f, "qdb-XXXXXX", TRUE));
	have_many = make_many_disk(f);
	configs = g_build_filename(f->dir, "vmconf", NULL);
	if (have_many)
		daemon_test_write_conf(configs, "many", "DATA_DISK=many.sqfs\n");
	launcher = daemon_fixture_launcher(f, G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_setenv(launcher, "QSIM_AGENT_COUNT", "1", TRUE);
	/* the default, said here because the test counts on it */
	g_subprocess_launcher_setenv(launcher, "QSIM_MAX_ARTIFACT_FILES", max_files, TRUE);
	daemon_fixture_spawn_all(f, launcher);
	daemon_fixture_wait_healthy(f);
	return TRUE;
}

/* Returns: qsimd's peak resident set so far (VmHWM), in KiB */
static guint64
daemon_vmhwm_kib(DaemonFixture *f)
{
	g_autofree gchar *path =
	    g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(f->daemon));
	g_autofree gchar *text = NULL;
	const gchar *line;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	line = strstr(text, "\nVmHWM:");
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + strlen("\nVmHWM:"), NULL, 10);
}

/* Runs qsim-ctl with @args (temporary files in the test's dir); returns its exit status */
static gint
ctl(DaemonFixture *f, const gchar *const *args, gchar **out, gchar **err)
{
	return daemon_test_ctl(f->url, f->dir, args, out, err);
}

/* Writes @size pseudo-random bytes to @path, a chunk at a time; returns their sha256 */
static gchar *
write_random_file(const gchar *path, gsize size)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261203);
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GFile) file = g_file_new_for_path(path);
	g_autoptr(GError) error = NULL;
	g_autoptr(GFileOutputStream) os =
	    g_file_replace(file, NULL, FALSE, G_FILE_CREATE_PRIVATE, NULL, &error);
	guint32 chunk[16384];

	g_assert_no_error(error);
	for (gsize done = 0; done < size; done += sizeof(chunk)) {
		gsize n = MIN(sizeof(chunk), size - done);

		for (guint i = 0; i < G_N_ELEMENTS(chunk); i++)
			chunk[i] = g_rand_int(rand);
		g_checksum_update(sum, (const guchar *)chunk, n);
		g_assert_true(
		    g_output_stream_write_all(G_OUTPUT_STREAM(os), chunk, n, NULL, NULL, &error));
	}
	g_assert_true(g_output_stream_close(G_OUTPUT_STREAM(os), NULL, &error));
	return g_strdup(g_checksum_get_string(sum));
}

static void
test_upload_200mib(void)
{
	DaemonFixture *f = &fx;
	g_autofree gchar *big = NULL;
	g_autofree gchar *sum = NULL;
	g_autofree gchar *spec = NULL;
	g_autofree gchar *want = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	guint64 before, after;
	gint64 start;

	if (!daemon_up(f))
		return;
	big = g_build_filename(f->dir, "big.bin", NULL);
	sum = write_random_file(big, BIG_SIZE);
	spec = g_strdup_printf("%s:/root/big.bin", big);
	before = daemon_vmhwm_kib(f);
	start = g_get_monotonic_time();
	{
		const gchar *args[] = {
		    "run",      "tiny", "--timeout", "900",
		    "--upload", spec,   "--",        "sha256sum /root/big.bin && rm /root/big.bin",
		    NULL};

		g_assert_cmpint(ctl(f, args, &out, &err), ==, 0);
	}
	g_test_message("200 MiB upload: %.1f s from submit to the end of the request",
	               (gdouble)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);
	want = g_strdup_printf("%s  /root/big.bin\n", sum);
	g_assert_cmpstr(out, ==, want);
	after = daemon_vmhwm_kib(f);
	g_test_message("qsimd VmHWM: %" G_GUINT64_FORMAT " KiB before, %" G_GUINT64_FORMAT
	               " KiB after the 200 MiB upload",
	               before, after);
	g_assert_cmpuint(after, <, before + RSS_GROWTH_MAX_KIB);
	g_assert_cmpint(g_unlink(big), ==, 0);
}

/* GET @path from qsimd; returns the parsed JSON reply, which must be a 200 */
static JsonNode *
http_get_json(DaemonFixture *f, const gchar *path)
{
	g_autofree gchar *uri = g_strconcat(f->url, path, NULL);
	g_autoptr(SoupMessage) msg = soup_message_new("GET", uri);
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;

	reply = soup_session_send_and_read(f->session, msg, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(soup_message_get_status(msg), ==, 200);
	g_assert_true(json_parser_load_from_data(parser, g_bytes_get_data(reply, NULL),
	                                         (gssize)g_bytes_get_size(reply), &error));
	return json_node_copy(json_parser_get_root(parser));
}

/* Returns: the `system` log lines of @vm's newest request, and its final status */
static gchar *
last_request_system_log(DaemonFixture *f, const gchar *vm, gchar **status)
{
	g_autofree gchar *list_path = g_strdup_printf("/requests?vm_name=%s&limit=1", vm);
	g_autoptr(JsonNode) list = http_get_json(f, list_path);
	JsonObject *req = json_array_get_object_element(json_node_get_array(list), 0);
	g_autofree gchar *logs_path = g_strdup_printf("/requests/%s/logs?log_type=system",
	                                              json_object_get_string_member(req, "uuid"));
	g_autoptr(JsonNode) logs = http_get_json(f, logs_path);
	JsonArray *entries = json_node_get_array(logs);
	g_autoptr(GString) text = g_string_new(NULL);

	*status = g_strdup(json_object_get_string_member(req, "status"));
	for (guint i = 0; i < json_array_get_length(entries); i++)
		g_string_append(text, json_object_get_string_member(
		                          json_array_get_object_element(entries, i), "output"));
	return g_string_free(g_steal_pointer(&text), FALSE);
}

static void
test_million_files(void)
{
	DaemonFixture *f = &fx;
	g_autofree gchar *outdir = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *want = NULL;
	g_autoptr(GDir) dir = NULL;
	g_autofree gchar *first = NULL;
	g_autofree gchar *system = NULL;
	g_autofree gchar *status = NULL;
	guint collected = 0;
	guint64 before, after;
	gint64 start;

	if (!daemon_up(f))
		return;
	if (!have_many) {
		if (g_getenv("QSIM_REQUIRE_VM") != NULL)
			g_error("mksquashfs not found (squashfs-tools, data/install-deps.sh)");
		g_test_skip("no mksquashfs (squashfs-tools)");
		return;
	}
	outdir = g_build_filename(f->dir, "many-out", NULL);
	before = daemon_vmhwm_kib(f);
	start = g_get_monotonic_time();
	{
		/* 60 missing paths first: 60 notes, more than are kept, must not hide that the
		 * collection was cut. The one inode's link count (the file and its million
		 * links) proves the entries without listing them. */
		const gchar *args[] = {"run",
		                       "many",
		                       "--timeout",
		                       "600",
		                       "--artifact",
		                       "/data/many/0[0-5]?/none",
		                       "--artifact",
		                       "/data/many/*/*",
		                       "-o",
		                       outdir,
		                       "--",
		                       "stat -c %h /data/many/000/000 && ls /data/many | wc -l && "
		                       "ls /data/many/999 | wc -l",
		                       NULL};

		g_assert_cmpint(ctl(f, args, &out, &err), ==, 0);
	}
	g_test_message("million-files request: %.1f s from submit to the end",
	               (gdouble)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);
	want =
	    g_strdup_printf("%u\n%u\n%u\n", MANY_DIRS * MANY_PER_DIR + 1, MANY_DIRS, MANY_PER_DIR);
	g_assert_cmpstr(out, ==, want);
	system = last_request_system_log(f, "many", &status);
	g_test_message("system log: %s", system);
	g_assert_cmpstr(status, ==, "done");
	/* the first 50 notes are kept, the next 10 counted, the cut always shown */
	g_assert_nonnull(strstr(system, "artifacts: /data/many/049/none: no such file"));
	g_assert_null(strstr(system, "/data/many/050/none"));
	g_assert_nonnull(strstr(system, "artifacts: 10 more notes not shown"));
	g_assert_nonnull(strstr(system, "artifacts: stopped at MAX_ARTIFACT_FILES=1000; "
	                                "/data/many/001/000 and anything after it not collected"));
	/* exactly the cap: the first directory whole, and nothing of the next */
	first = g_build_filename(outdir, "data", "many", "000", NULL);
	dir = g_dir_open(first, 0, NULL);
	g_assert_nonnull(dir);
	while (g_dir_read_name(dir) != NULL)
		collected++;
	g_assert_cmpuint(collected, ==, MAX_FILES);
	{
		g_autofree gchar *next = g_build_filename(outdir, "data", "many", "001", NULL);

		g_assert_false(g_file_test(next, G_FILE_TEST_EXISTS));
	}
	after = daemon_vmhwm_kib(f);
	g_test_message("qsimd VmHWM: %" G_GUINT64_FORMAT " KiB before, %" G_GUINT64_FORMAT
	               " KiB after the million-files request",
	               before, after);
	g_assert_cmpuint(after, <, before + RSS_GROWTH_MAX_KIB);
}

int
main(int argc, char **argv)
{
	gint rc;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/daemon/big/million-files", test_million_files);
	g_test_add_func("/qsim/daemon/big/upload-200mib", test_upload_200mib);
	rc = g_test_run();
	daemon_fixture_teardown(&fx);
	return rc;
}
