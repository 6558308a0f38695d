#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent-test-util.h"
#include "agent/qsim-agent-pool.h"
#include "store/qsim-file-artifact-store.h"

/*
 * Outputs end to end on the real tiny guest: a request's commands make files,
 * the agent collects them over SFTP into STATE_DIR/artifacts/<uuid>/ and the
 * store has their metadata. Hang guards only: no timing is asserted.
 */
#define RUN_TIMEOUT_S 300

typedef struct {
	AgentFixture fx;
	QsimAgentPool *pool;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	agent_fixture_init(&f->fx);
	agent_fixture_config(&f->fx, "QSIM_AGENT_COUNT=1", "QSIM_MAX_CONCURRENT_VMS=1",
	                     "QSIM_LEASE_SECONDS=10", "QSIM_SHUTDOWN_GRACE=1",
	                     "QSIM_MAX_ARTIFACT_FILES=50", "QSIM_MAX_ARTIFACT_BYTES=2M", NULL);
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
		g_assert_cmpuint(agent_test_count_procs(f->fx.run_dir), ==, 0);
		g_clear_object(&f->pool);
	}
	agent_fixture_clear(&f->fx);
}

static void
start_pool(Fixture *f)
{
	g_autoptr(GError) error = NULL;

	f->pool = qsim_agent_pool_new(f->fx.config, f->fx.store);
	g_assert_true(qsim_agent_pool_start(f->pool, &error));
	g_assert_no_error(error);
}

static gchar *
submit(Fixture *f, const gchar *commands, const gchar *const *paths)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request_full(
	    f->fx.store, "tiny", commands, 240, (gchar **)paths, NULL, &error);

	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

static const QsimArtifactRecord *
find(GPtrArray *rows, const gchar *name)
{
	for (guint i = 0; i < rows->len; i++) {
		const QsimArtifactRecord *r = rows->pdata[i];

		if (g_strcmp0(r->name, name) == 0)
			return r;
	}
	return NULL;
}

static gchar *
host_path(Fixture *f, const gchar *uuid, const gchar *name)
{
	return g_build_filename(qsim_config_get_state_dir(f->fx.config), "artifacts", uuid, name,
	                        NULL);
}

/* The stored file exists, has the recorded size and sha256, and (when given) the
 * sha256 the guest printed for it. */
static void
assert_stored(Fixture *f, const gchar *uuid, const QsimArtifactRecord *r, const gchar *guest_out)
{
	g_autofree gchar *path = host_path(f, uuid, r->name);
	g_autofree gchar *data = NULL;
	g_autofree gchar *sum = NULL;
	g_autofree gchar *line = NULL;
	gsize len = 0;
	struct stat st;

	g_assert_cmpint(r->kind, ==, QSIM_ARTIFACT_FILE);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_assert_cmpuint(len, ==, r->size);
	sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
	g_assert_cmpstr(sum, ==, r->sha256);
	/* the host copy is private to qsim whatever the guest's mode was */
	g_assert_cmpint(lstat(path, &st), ==, 0);
	g_assert_true(S_ISREG(st.st_mode));
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	if (guest_out != NULL) {
		line = g_strdup_printf("%s  /%s\n", sum, r->name);
		g_assert_nonnull(strstr(guest_out, line));
	}
}

static void
test_collect(Fixture *f, gconstpointer data)
{
	/* binary and text files with modes, a nested directory, a symlink to
	 * /etc/shadow and one climbing out with ../, a file that keeps growing
	 * while it is collected, a name with a control character; the commands
	 * fail, and the outputs are collected all the same */
	static const gchar *commands =
	    "set -e; mkdir -p /out/sub /out/odd;"
	    "head -c 300001 /dev/urandom > /out/bin.dat;"
	    "printf '#!/bin/sh\\necho built\\n' > /out/run.sh; chmod 750 /out/run.sh;"
	    "echo nested > /out/sub/deep.txt; chmod 604 /out/sub/deep.txt;"
	    "ln -s /etc/shadow /out/shadow; ln -s ../../etc/passwd /out/sub/up;"
	    "touch \"/out/odd/bad$(printf '\\001')name\";"
	    "head -c 100000 /dev/zero > /out/grow;"
	    "nohup sh -c 'while :; do echo more >> /out/grow; done' >/dev/null 2>&1 &"
	    "/out/run.sh; sha256sum /out/bin.dat /out/run.sh /out/sub/deep.txt; exit 3";
	static const gchar *const paths[] = {"/out/*.dat", "/out", "/missing/file",
	                                     "/nothing/here*", NULL};
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *sys = NULL;
	g_autofree gchar *shadow_path = NULL;
	const QsimArtifactRecord *a;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = submit(f, commands, paths);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	sys = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_test_message("system log:\n%s", sys);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "failed");
	g_assert_cmpint(r->exit_code, ==, 3);
	g_assert_nonnull(strstr(out, "built\n"));

	rows = qsim_store_list_artifacts(f->fx.store, uuid, &error);
	g_assert_no_error(error);
	a = find(rows, "out/bin.dat");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 300001);
	assert_stored(f, uuid, a, out);
	a = find(rows, "out/run.sh");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->mode, ==, 0750);
	assert_stored(f, uuid, a, out);
	a = find(rows, "out/sub/deep.txt");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->mode, ==, 0604);
	assert_stored(f, uuid, a, out);

	/* symlinks are what they are: never followed, no bytes on the host */
	a = find(rows, "out/shadow");
	g_assert_nonnull(a);
	g_assert_cmpint(a->kind, ==, QSIM_ARTIFACT_SYMLINK);
	g_assert_cmpstr(a->target, ==, "/etc/shadow");
	shadow_path = host_path(f, uuid, "out/shadow");
	g_assert_false(g_file_test(shadow_path, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK));
	a = find(rows, "out/sub/up");
	g_assert_nonnull(a);
	g_assert_cmpint(a->kind, ==, QSIM_ARTIFACT_SYMLINK);
	g_assert_cmpstr(a->target, ==, "../../etc/passwd");

	/* the growing file: cut at a size it had, stored whole and consistent */
	a = find(rows, "out/grow");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, >=, 100000);
	assert_stored(f, uuid, a, NULL);

	/* refused and missing paths are log lines, never a failure */
	g_assert_null(find(rows, "out/odd/bad\001name"));
	g_assert_nonnull(strstr(sys, "control character"));
	g_assert_nonnull(strstr(sys, "/missing/file: no such file in the guest"));
	g_assert_nonnull(strstr(sys, "/nothing/here* matched nothing"));
	g_assert_nonnull(strstr(sys, "artifacts: collected"));
	/* bin.dat matched twice (glob and directory) and is stored once */
	g_assert_cmpuint(rows->len, ==, 6);

	/* deleting the request deletes the files */
	{
		g_autoptr(QsimArtifactStore) artifacts =
		    qsim_artifact_store_new_for_config(f->fx.config);
		g_autofree gchar *dir = host_path(f, uuid, "");

		qsim_store_set_artifact_store(f->fx.store, artifacts);
		g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
		g_assert_true(qsim_store_delete_request(f->fx.store, uuid, &error));
		g_assert_no_error(error);
		g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
	}
}

static void
test_limits(Fixture *f, gconstpointer data)
{
	/* many tiny files in a tmpfs (the cap is 50) and files over the byte cap (2M):
	 * the collection stops at the cap instead of walking them all */
	static const gchar *commands =
	    "set -e; mkdir -p /tmp/many /tmp/big; mount -t tmpfs none /tmp/many 2>/dev/null || :;"
	    "head -c 3000000 /dev/zero > /tmp/big/huge; echo small > /tmp/big/small;"
	    "cd /tmp/many; i=0; while [ $i -lt 200 ]; do"
	    " j=0; while [ $j -lt 100 ]; do : > f$i-$j; j=$((j+1)); done; i=$((i+1)); done;"
	    "ls | wc -l";
	static const gchar *const paths[] = {"/tmp/big", "/tmp/many/*", NULL};
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sys = NULL;

	if (!agent_test_require_vm(&f->fx))
		return;
	start_pool(f);
	uuid = submit(f, commands, paths);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	sys = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_test_message("system log:\n%s", sys);
	{
		g_autofree gchar *err = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDERR);
		g_autofree gchar *out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);

		g_test_message("stdout: %s stderr: %s", out, err);
		g_assert_cmpstr(out, ==, "20000\n");
	}
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	rows = qsim_store_list_artifacts(f->fx.store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 50);
	g_assert_null(find(rows, "tmp/big/huge"));
	g_assert_nonnull(find(rows, "tmp/big/small"));
	g_assert_nonnull(strstr(sys, "/tmp/big/huge (3000000 bytes) skipped: over "
	                             "MAX_ARTIFACT_BYTES=2097152"));
	g_assert_nonnull(strstr(sys, "stopped at MAX_ARTIFACT_FILES=50"));
}

/* Spools one part as the API does: chunks of at most 1 MiB, then its size and sha256. */
static void
spool(Fixture *f, const gchar *upload_id, guint idx, QsimUploadKind kind, const gchar *path,
      guint mode, const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
	guint seq = 0;

	g_assert_true(
	    qsim_store_upload_add_file(f->fx.store, upload_id, idx, kind, path, mode, &error));
	g_assert_no_error(error);
	for (gsize off = 0; off < len; off += QSIM_UPLOAD_CHUNK_MAX) {
		g_autoptr(GBytes) chunk =
		    g_bytes_new(data + off, MIN(len - off, (gsize)QSIM_UPLOAD_CHUNK_MAX));

		g_assert_true(
		    qsim_store_upload_put_chunk(f->fx.store, upload_id, idx, seq++, chunk, &error));
	}
	g_assert_true(qsim_store_upload_finish_file(f->fx.store, upload_id, idx, len, sum, &error));
	g_assert_no_error(error);
}

static void
test_inputs(Fixture *f, gconstpointer data)
{
	/* a script with its mode, a binary file across chunk boundaries and a tar.gz of a
	 * small tree: built and run in the guest, checked by sha256 there, and the outputs
	 * it makes collected back */
	static const gchar *script = "#!/bin/sh\necho \"built from $(cat /root/src/tree/a.txt)\" > "
	                             "/root/out/result.txt\n";
	static const gchar *const paths[] = {"/root/out", NULL};
	g_autofree gchar *upload_id = g_uuid_string_random();
	g_autofree gchar *bin_sum = NULL;
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *sys = NULL;
	g_autofree gchar *tgz_data = NULL;
	g_autofree gchar *tree = g_build_filename(f->fx.dir, "tree", NULL);
	g_autofree gchar *tgz = g_build_filename(f->fx.dir, "tree.tar.gz", NULL);
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GPtrArray) left = NULL;
	g_autoptr(GError) error = NULL;
	gsize bin_len = 2 * QSIM_UPLOAD_CHUNK_MAX + 12345, tgz_len = 0;
	g_autofree guint8 *bin = g_malloc(bin_len);
	const QsimArtifactRecord *a;

	if (!agent_test_require_vm(&f->fx))
		return;
	for (gsize i = 0; i < bin_len; i++)
		bin[i] = (guint8)g_random_int();
	bin_sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, bin, bin_len);
	{
		g_autofree gchar *sub = g_build_filename(tree, "tree", NULL);
		g_autofree gchar *file = g_build_filename(sub, "a.txt", NULL);
		const gchar *argv[] = {"tar", "-czf", tgz, "-C", tree, "tree", NULL};
		gint status = -1;

		g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
		g_assert_true(g_file_set_contents(file, "tarball", -1, NULL));
		g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
		                           NULL, NULL, NULL, &status, &error));
		g_assert_true(g_spawn_check_wait_status(status, NULL));
		g_assert_true(g_file_get_contents(tgz, &tgz_data, &tgz_len, NULL));
	}
	spool(f, upload_id, 0, QSIM_UPLOAD_FILE, "/root/src/build.sh", 0755, (const guint8 *)script,
	      strlen(script));
	spool(f, upload_id, 1, QSIM_UPLOAD_FILE, "/root/src/data/blob.bin", 0600, bin, bin_len);
	spool(f, upload_id, 2, QSIM_UPLOAD_TAR_GZ, "/root/src", 0, (const guint8 *)tgz_data,
	      tgz_len);
	{
		g_autoptr(QsimRequest) created = qsim_store_create_request_full(
		    f->fx.store, "tiny",
		    "mkdir -p /root/out && /root/src/build.sh && stat -c '%a %s' "
		    "/root/src/build.sh /root/src/data/blob.bin && sha256sum "
		    "/root/src/data/blob.bin",
		    240, (gchar **)paths, upload_id, &error);

		g_assert_no_error(error);
		uuid = g_strdup(created->uuid);
	}
	start_pool(f);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	sys = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_test_message("stdout:\n%s\nsystem log:\n%s", out, sys);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	{
		g_autofree gchar *want = g_strdup_printf("755 %zu\n600 %" G_GSIZE_FORMAT "\n%s  "
		                                         "/root/src/data/blob.bin\n",
		                                         strlen(script), bin_len, bin_sum);
		g_assert_cmpstr(out, ==, want);
	}
	g_assert_nonnull(strstr(sys, "uploaded 3 parts"));
	rows = qsim_store_list_artifacts(f->fx.store, uuid, &error);
	a = find(rows, "root/out/result.txt");
	g_assert_nonnull(a);
	assert_stored(f, uuid, a, NULL);
	{
		g_autofree gchar *path = host_path(f, uuid, "root/out/result.txt");
		g_autofree gchar *text = NULL;

		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		g_assert_cmpstr(text, ==, "built from tarball\n");
	}
	/* the spool is gone once the inputs are in the guest */
	left = qsim_store_list_uploads(f->fx.store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(left->len, ==, 0);
}

static void
test_no_sftp(Fixture *f, gconstpointer data)
{
	/* a guest whose sftp-server is hidden (qsim.nosftp=1): a 0755 script, a binary
	 * file and a tar.gz go in over exec (cat, tar), and a file, a symlink and a
	 * missing path come back over exec, checked by sha256 on both sides */
	static const gchar *script = "#!/bin/sh\necho \"built from $(cat /root/src/tree/a.txt)\" > "
	                             "/root/out/result.txt\n";
	static const gchar *const paths[] = {"/root/out", "/root/missing.txt", NULL};
	g_autofree gchar *upload_id = g_uuid_string_random();
	g_autofree gchar *bin_sum = NULL;
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *sys = NULL;
	g_autofree gchar *tgz_data = NULL;
	g_autofree gchar *tree = g_build_filename(f->fx.dir, "tree", NULL);
	g_autofree gchar *tgz = g_build_filename(f->fx.dir, "tree.tar.gz", NULL);
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	gsize bin_len = QSIM_UPLOAD_CHUNK_MAX + 70001, tgz_len = 0;
	g_autofree guint8 *bin = g_malloc(bin_len);
	const QsimArtifactRecord *a;

	if (!agent_test_require_vm(&f->fx))
		return;
	for (gsize i = 0; i < bin_len; i++)
		bin[i] = (guint8)g_random_int();
	bin_sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, bin, bin_len);
	{
		g_autofree gchar *sub = g_build_filename(tree, "tree", NULL);
		g_autofree gchar *file = g_build_filename(sub, "a.txt", NULL);
		const gchar *argv[] = {"tar", "-czf", tgz, "-C", tree, "tree", NULL};
		gint status = -1;

		g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
		g_assert_true(g_file_set_contents(file, "tarball", -1, NULL));
		g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
		                           NULL, NULL, NULL, &status, &error));
		g_assert_true(g_spawn_check_wait_status(status, NULL));
		g_assert_true(g_file_get_contents(tgz, &tgz_data, &tgz_len, NULL));
	}
	spool(f, upload_id, 0, QSIM_UPLOAD_FILE, "/root/src/build.sh", 0755, (const guint8 *)script,
	      strlen(script));
	spool(f, upload_id, 1, QSIM_UPLOAD_FILE, "/root/src/data/it's.bin", 0640, bin, bin_len);
	spool(f, upload_id, 2, QSIM_UPLOAD_TAR_GZ, "/root/src", 0, (const guint8 *)tgz_data,
	      tgz_len);
	{
		g_autoptr(QsimRequest) created = qsim_store_create_request_full(
		    f->fx.store, "tiny-nosftp",
		    "mkdir -p /root/out && /root/src/build.sh && stat -c '%a %s' "
		    "/root/src/build.sh \"/root/src/data/it's.bin\" && sha256sum "
		    "\"/root/src/data/it's.bin\" && ln -s /etc/shadow /root/out/link && "
		    "head -c 100000 /dev/urandom > /root/out/rand.bin && chmod 0751 "
		    "/root/out/rand.bin "
		    "&& sha256sum /root/out/rand.bin /root/out/result.txt",
		    240, (gchar **)paths, upload_id, &error);

		g_assert_no_error(error);
		uuid = g_strdup(created->uuid);
	}
	start_pool(f);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	out = agent_test_log_text(&f->fx, uuid, QSIM_LOG_STDOUT);
	sys = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_test_message("stdout:\n%s\nsystem log:\n%s", out, sys);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	{
		g_autofree gchar *want = g_strdup_printf("755 %zu\n640 %" G_GSIZE_FORMAT "\n%s  "
		                                         "/root/src/data/it's.bin\n",
		                                         strlen(script), bin_len, bin_sum);
		g_assert_true(g_str_has_prefix(out, want));
	}
	g_assert_nonnull(strstr(sys, "over exec (cat, tar): the guest has no SFTP subsystem"));
	g_assert_nonnull(strstr(sys, "the guest has no SFTP subsystem; collecting over exec"));
	g_assert_nonnull(strstr(sys, "/root/missing.txt: no such file in the guest"));
	g_assert_nonnull(strstr(sys, "artifacts: collected 3 "));
	rows = qsim_store_list_artifacts(f->fx.store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 3);
	a = find(rows, "root/out/result.txt");
	g_assert_nonnull(a);
	assert_stored(f, uuid, a, out);
	a = find(rows, "root/out/rand.bin");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 100000);
	g_assert_cmpuint(a->mode, ==, 0751);
	assert_stored(f, uuid, a, out);
	a = find(rows, "root/out/link");
	g_assert_nonnull(a);
	g_assert_cmpint(a->kind, ==, QSIM_ARTIFACT_SYMLINK);
	g_assert_cmpstr(a->target, ==, "/etc/shadow");
}

static void
test_no_sftp_hostile(Fixture *f, gconstpointer data)
{
	/* a name holding a newline, which would break a line-based listing: refused with a
	 * note while the files listed after it still come back. (PATH cannot plant a lying
	 * `head`: busybox sh runs its applets whatever PATH says; /bin/sh itself can be
	 * replaced, see no-sftp-liar.) */
	static const gchar *const paths[] = {"/root/out", NULL};
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *sys = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	const QsimArtifactRecord *a;

	if (!agent_test_require_vm(&f->fx))
		return;
	{
		g_autoptr(QsimRequest) created = qsim_store_create_request_full(
		    f->fx.store, "tiny-nosftp",
		    "mkdir -p /root/out && printf 0123456789 > /root/out/a.txt && "
		    "printf x > \"/root/out/new\nline\" && printf abc > /root/out/z.txt",
		    240, (gchar **)paths, NULL, &error);

		g_assert_no_error(error);
		uuid = g_strdup(created->uuid);
	}
	start_pool(f);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	sys = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_test_message("system log:\n%s", sys);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	g_assert_nonnull(strstr(sys, "the guest has no SFTP subsystem; collecting over exec"));
	g_assert_nonnull(strstr(sys, "a guest path was refused"));
	rows = qsim_store_list_artifacts(f->fx.store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 2);
	a = find(rows, "root/out/a.txt");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 10);
	assert_stored(f, uuid, a, NULL);
	{
		g_autofree gchar *path = host_path(f, uuid, "root/out/a.txt");
		g_autofree gchar *text = NULL;

		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		g_assert_cmpstr(text, ==, "0123456789");
	}
	a = find(rows, "root/out/z.txt");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 3);
}

/*
 * A lying guest against the exec fallback: the request's commands plant a /bin/sh
 * that every later exec channel runs through, and it lies: a listing with `..`, a
 * newline and a NUL in names, a path no pattern names, a huge size; a `head` that
 * sends less, endlessly more, or nothing while never ending. The request still ends,
 * each lie is a system log line, nothing is written outside the request's artifacts
 * directory and what is stored has the recorded size and sha256.
 */
static const gchar liar_sh[] =
    "#!/bin/busybox sh\n"
    "# planted over /bin/sh by the request: every exec channel runs through it\n"
    "case \"$2\" in\n"
    "*qsim-list*)\n"
    "\tprintf 'E 81a4 5 18 0\\n/root/out/real.txt\\nE 81a4 4 17 0\\n/root/out/../../x\\nE 81a4 1 "
    "13 0\\n/root/out/a\\nb\\nE 81a4 5 13 0\\n/etc/hostname\\nE 81a4 99999999999999 14 "
    "0\\n/root/out/huge\\nE 81a4 100 15 0\\n/root/out/short\\nE 81a4 10 14 0\\n/root/out/long\\nE "
    "81a4 10 15 0\\n/root/out/sleep\\nE 81a4 3 13 0\\n/root/out/a\\000b\\n'\n"
    "\texit 0 ;;\n"
    "*\"head -c \"*\"'/root/out/short'\")\n"
    "\tprintf abcde\n"
    "\texit 0 ;;\n"
    "*\"head -c \"*\"'/root/out/long'\")\n"
    "\twhile :; do echo liarliarliar; done ;;\n"
    "*\"head -c \"*\"'/root/out/sleep'\")\n"
    "\texec /bin/busybox sleep 100000 ;;\n"
    "esac\n"
    "exec /bin/busybox sh \"$@\"\n";

static void
assert_no_file_named(const gchar *dir, const gchar *const *names)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *child = g_build_filename(dir, name, NULL);

		g_assert_false(g_strv_contains(names, name));
		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			assert_no_file_named(child, names);
	}
}

static void
test_no_sftp_liar(Fixture *f, gconstpointer data)
{
	static const gchar *const paths[] = {"/root/out", NULL};
	static const gchar *const never[] = {"x", "hostname", "huge", "sleep", NULL};
	static const gchar *const lies[] = {
	    "a guest path was refused: artifact name 'root/out/../../x' has an empty",
	    "has a control character",
	    "the guest listed /etc/hostname, which no artifact path names; skipped",
	    "/root/out/huge (99999999999999 bytes) skipped: over MAX_ARTIFACT_BYTES",
	    "the guest sent 5 of the 100 bytes it listed for /root/out/short",
	    "the guest sent more than the 10 bytes it listed for /root/out/long",
	    "/root/out/sleep: the guest command sent nothing for",
	    "the guest's listing is malformed",
	    "artifacts: collected 3 ",
	};
	g_autofree gchar *upload_id = g_uuid_string_random();
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *sys = NULL;
	g_autofree gchar *root = NULL;
	g_autofree gchar *mine = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	const QsimArtifactRecord *a;

	if (!agent_test_require_vm(&f->fx))
		return;
	spool(f, upload_id, 0, QSIM_UPLOAD_FILE, "/root/liar-sh", 0755, (const guint8 *)liar_sh,
	      strlen(liar_sh));
	{
		g_autoptr(QsimRequest) created = qsim_store_create_request_full(
		    f->fx.store, "tiny-nosftp",
		    "mkdir -p /root/out && echo real > /root/out/real.txt && "
		    "cp /root/liar-sh /bin/sh.new && mv /bin/sh.new /bin/sh",
		    240, (gchar **)paths, upload_id, &error);

		g_assert_no_error(error);
		uuid = g_strdup(created->uuid);
	}
	start_pool(f);
	r = agent_test_wait_final(&f->fx, uuid, RUN_TIMEOUT_S);
	sys = agent_test_log_text(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_test_message("system log:\n%s", sys);
	g_assert_cmpstr(qsim_status_to_string(r->status), ==, "done");
	g_assert_nonnull(strstr(sys, "the guest has no SFTP subsystem; collecting over exec"));
	for (guint i = 0; i < G_N_ELEMENTS(lies); i++) {
		if (strstr(sys, lies[i]) == NULL)
			g_error("no system log line says: %s", lies[i]);
	}
	/* a name's newline is shown escaped: one lie, one log line */
	g_assert_null(strstr(sys, "a\nb"));
	g_assert_nonnull(strstr(sys, "root/out/a\\nb' has a control character"));
	rows = qsim_store_list_artifacts(f->fx.store, uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 3);
	for (guint i = 0; i < rows->len; i++)
		assert_stored(f, uuid, rows->pdata[i], NULL);
	a = find(rows, "root/out/real.txt");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 5);
	a = find(rows, "root/out/short");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 5);
	a = find(rows, "root/out/long");
	g_assert_nonnull(a);
	g_assert_cmpuint(a->size, ==, 10);
	/* nothing written outside STATE_DIR/artifacts/<uuid>/, nothing but what was kept */
	root = g_build_filename(qsim_config_get_state_dir(f->fx.config), "artifacts", NULL);
	{
		g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
		const gchar *name;

		g_assert_nonnull(d);
		while ((name = g_dir_read_name(d)) != NULL)
			g_assert_cmpstr(name, ==, uuid);
	}
	mine = host_path(f, uuid, "root/out");
	{
		g_autoptr(GDir) d = g_dir_open(mine, 0, NULL);
		const gchar *name;
		guint n = 0;

		g_assert_nonnull(d);
		while ((name = g_dir_read_name(d)) != NULL) {
			g_assert_true(g_str_equal(name, "real.txt") || g_str_equal(name, "short") ||
			              g_str_equal(name, "long"));
			n++;
		}
		g_assert_cmpuint(n, ==, 3);
	}
	assert_no_file_named(f->fx.dir, never);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/artifacts-vm/collect", Fixture, NULL, fixture_setup, test_collect,
	           fixture_teardown);
	g_test_add("/artifacts-vm/inputs", Fixture, NULL, fixture_setup, test_inputs,
	           fixture_teardown);
	g_test_add("/artifacts-vm/limits", Fixture, NULL, fixture_setup, test_limits,
	           fixture_teardown);
	g_test_add("/artifacts-vm/no-sftp", Fixture, NULL, fixture_setup, test_no_sftp,
	           fixture_teardown);
	g_test_add("/artifacts-vm/no-sftp-hostile", Fixture, NULL, fixture_setup,
	           test_no_sftp_hostile, fixture_teardown);
	g_test_add("/artifacts-vm/no-sftp-liar", Fixture, NULL, fixture_setup, test_no_sftp_liar,
	           fixture_teardown);
	return g_test_run();
}
