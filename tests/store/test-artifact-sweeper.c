#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include "common/qsim-error.h"
#include "store/qsim-artifact-sweeper.h"
#include "store/qsim-file-artifact-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store.h"

/*
 * The artifact sweeper against a real SQLite file and a real artifacts
 * directory: what the store does not know goes (the directory of a request
 * gone or that recorded nothing, files no row names), what a live request owns
 * stays, and each pass checks at most its batch.
 */

typedef struct {
	gchar *tmpdir;
	gchar *root;
	QsimStore *store;
	QsimArtifactStore *artifacts;
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *db = NULL;

	fx->tmpdir = g_dir_make_tmp("qsim-sweep-XXXXXX", &error);
	g_assert_no_error(error);
	db = g_build_filename(fx->tmpdir, "qsim.db", NULL);
	fx->store = qsim_store_open(db, &error);
	g_assert_no_error(error);
	fx->root = g_build_filename(fx->tmpdir, "artifacts", NULL);
	fx->artifacts = qsim_file_artifact_store_new(fx->root);
}

/* rm -r without following a symlink */
static void
remove_tree(const gchar *path)
{
	GStatBuf st;
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (g_lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		g_unlink(path);
		return;
	}
	dir = g_dir_open(path, 0, NULL);
	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);

		remove_tree(child);
	}
	g_rmdir(path);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_clear_object(&fx->artifacts);
	g_clear_object(&fx->store);
	remove_tree(fx->tmpdir);
	g_free(fx->root);
	g_free(fx->tmpdir);
}

static void
put(Fixture *fx, const gchar *uuid, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GOutputStream) os = qsim_artifact_store_create(fx->artifacts, uuid, name, &error);

	g_assert_no_error(error);
	g_assert_true(g_output_stream_write_all(os, "data", 4, NULL, NULL, &error));
	g_assert_true(g_output_stream_close(os, NULL, &error));
}

/* Makes the request directory look as old as a leftover from yesterday */
static void
age(Fixture *fx, const gchar *uuid)
{
	g_autofree gchar *dir = g_build_filename(fx->root, uuid, NULL);
	struct utimbuf t = {.actime = time(NULL) - 86400, .modtime = time(NULL) - 86400};

	g_assert_cmpint(utime(dir, &t), ==, 0);
}

static gboolean
stored(Fixture *fx, const gchar *uuid, const gchar *name)
{
	g_autofree gchar *path = g_build_filename(fx->root, uuid, name, NULL);

	return g_file_test(path, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK);
}

/* A request claimed and running; finished with @status unless it is RUNNING */
static gchar *
request_in(Fixture *fx, QsimStatus status)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	g_autoptr(QsimRequest) claimed = NULL;
	QsimStatus out;

	g_assert_no_error(error);
	claimed = qsim_store_claim_next(fx->store, "agent", 60000, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(claimed->uuid, ==, r->uuid);
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent", &error));
	if (status != QSIM_STATUS_RUNNING)
		g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent", status, TRUE,
		                                        0, NULL, &out, &error));
	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

static void
record(Fixture *fx, const gchar *uuid, const gchar *name)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	QsimArtifactRecord *r = qsim_artifact_record_new();
	g_autoptr(GError) error = NULL;

	r->name = g_strdup(name);
	r->kind = QSIM_ARTIFACT_FILE;
	r->size = 4;
	r->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "data", 4);
	r->mode = 0644;
	g_ptr_array_add(rows, r);
	g_assert_true(qsim_store_add_artifacts(fx->store, uuid, rows, &error));
	g_assert_no_error(error);
}

static void
test_sweep(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *running = request_in(fx, QSIM_STATUS_RUNNING);
	g_autofree gchar *recorded = request_in(fx, QSIM_STATUS_DONE);
	g_autofree gchar *nothing = request_in(fx, QSIM_STATUS_FAILED);
	g_autofree gchar *deleted = request_in(fx, QSIM_STATUS_DONE);
	g_autofree gchar *unknown = g_uuid_string_random();
	g_autofree gchar *fresh = g_uuid_string_random();
	g_autofree gchar *linked = g_uuid_string_random();
	g_autoptr(QsimRequest) queued = NULL;
	g_autoptr(QsimArtifactSweeper) sweeper = NULL;
	g_autofree gchar *outside = g_build_filename(fx->tmpdir, "outside", NULL);
	g_autofree gchar *outside_file = g_build_filename(outside, "keep", NULL);
	g_autofree gchar *link = g_build_filename(fx->root, linked, NULL);
	g_autofree gchar *notes = g_build_filename(fx->root, "notes", NULL);
	guint passes = 0;

	queued = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	g_assert_no_error(error);
	put(fx, running, "out/partial");
	put(fx, recorded, "out/a.txt");
	put(fx, recorded, "out/partial.bin");
	record(fx, recorded, "out/a.txt");
	put(fx, nothing, "half");
	put(fx, deleted, "x");
	record(fx, deleted, "x");
	g_assert_true(qsim_store_delete_request(fx->store, deleted, &error));
	g_assert_no_error(error);
	put(fx, unknown, "y");
	put(fx, fresh, "z");
	put(fx, queued->uuid, "w");
	/* not ours: a symlink with a request's name, a directory with another name */
	g_assert_cmpint(g_mkdir(outside, 0700), ==, 0);
	g_assert_true(g_file_set_contents(outside_file, "x", 1, &error));
	g_assert_cmpint(symlink(outside, link), ==, 0);
	g_assert_cmpint(g_mkdir(notes, 0700), ==, 0);
	{
		const gchar *old[] = {running, recorded, nothing, deleted, unknown, queued->uuid};

		for (guint i = 0; i < G_N_ELEMENTS(old); i++)
			age(fx, old[i]);
	}

	sweeper = qsim_artifact_sweeper_new(fx->store, QSIM_FILE_ARTIFACT_STORE(fx->artifacts));
	qsim_artifact_sweeper_set_timing(sweeper, 1000, 0, 2, 3600);
	/* six old request directories, two per pass */
	while (qsim_artifact_sweeper_pass(sweeper)) {
		passes++;
		g_assert_cmpuint(qsim_artifact_sweeper_get_n_checked(sweeper), ==, 2 * passes);
	}
	g_assert_cmpuint(passes, ==, 2);
	g_assert_cmpuint(qsim_artifact_sweeper_get_n_checked(sweeper), ==, 6);
	g_assert_cmpuint(qsim_artifact_sweeper_get_n_rounds(sweeper), ==, 1);

	g_assert_true(stored(fx, running, "out/partial"));
	g_assert_true(stored(fx, queued->uuid, "w"));
	g_assert_true(stored(fx, recorded, "out/a.txt"));
	g_assert_false(stored(fx, recorded, "out/partial.bin"));
	g_assert_false(stored(fx, nothing, NULL));
	g_assert_false(stored(fx, deleted, NULL));
	g_assert_false(stored(fx, unknown, NULL));
	g_assert_true(stored(fx, fresh, "z"));
	g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
	g_assert_true(g_file_test(outside_file, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(notes, G_FILE_TEST_IS_DIR));
	/* 3 directories and 1 file */
	g_assert_cmpuint(qsim_artifact_sweeper_get_n_removed(sweeper), ==, 4);

	/* with no grace the fresh one goes too; what is left is kept again */
	qsim_artifact_sweeper_set_timing(sweeper, 1000, 0, 100, 0);
	g_assert_false(qsim_artifact_sweeper_pass(sweeper));
	g_assert_false(stored(fx, fresh, NULL));
	g_assert_true(stored(fx, running, "out/partial"));
	g_assert_true(stored(fx, recorded, "out/a.txt"));
	g_assert_cmpuint(qsim_artifact_sweeper_get_n_removed(sweeper), ==, 5);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/store/artifact-sweeper", Fixture, NULL, fixture_setup, test_sweep,
	           fixture_teardown);
	return g_test_run();
}
