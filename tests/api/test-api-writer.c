#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"

/* A hang guard for waits, never a measurement */
#define WAIT_LIMIT_S 60

typedef struct {
	gchar *dir;
	gchar *path;
	QsimApiWriter *writer;
	GThread *main_thread;
} WriterFixture;

typedef struct {
	WriterFixture *fx;
	gchar *uuid;           /* set by the report on success */
	GError *error;         /* set by the report on failure */
	gint64 rows_at_report; /* rows another connection sees when the report runs */
	gboolean reported;
	guint reports;
} Outcome;

static gint64
raw_count(const gchar *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	gint64 n;

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM requests", -1, &stmt, NULL),
	                ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return n;
}

static void
fixture_setup(WriterFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("qsim-writer-XXXXXX", &error);
	g_assert_no_error(error);
	fx->path = g_build_filename(fx->dir, "qsim.db", NULL);
	fx->writer = qsim_api_writer_new(fx->path, &error);
	g_assert_no_error(error);
	fx->main_thread = g_thread_self();
}

static void
fixture_teardown(WriterFixture *fx, gconstpointer data)
{
	const gchar *suffixes[] = {"", "-wal", "-shm"};

	g_clear_object(&fx->writer);
	while (g_main_context_iteration(NULL, FALSE))
		;
	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree gchar *f = g_strconcat(fx->path, suffixes[i], NULL);
		g_unlink(f);
	}
	g_rmdir(fx->dir);
	g_free(fx->path);
	g_free(fx->dir);
}

static void
on_report(const QsimRequest *request, const GError *error, gpointer user_data)
{
	Outcome *o = user_data;

	/* on the submitter's context, exactly once, with exactly one of the two */
	g_assert_true(g_thread_self() == o->fx->main_thread);
	g_assert_true((request == NULL) != (error == NULL));
	o->reports++;
	o->reported = TRUE;
	if (request != NULL) {
		g_assert_cmpint(request->status, ==, QSIM_STATUS_PENDING);
		o->uuid = g_strdup(request->uuid);
		/* durable before the caller hears of it: another connection sees it */
		o->rows_at_report = raw_count(o->fx->path);
	} else {
		o->error = g_error_copy(error);
	}
}

static gboolean
wait_expired(gpointer data)
{
	g_error("a test wait took more than %d s", WAIT_LIMIT_S);
	return G_SOURCE_REMOVE;
}

static void
wait_all(Outcome *outcomes, guint n)
{
	guint guard = g_timeout_add_seconds(WAIT_LIMIT_S, wait_expired, NULL);

	for (guint i = 0; i < n; i++) {
		while (!outcomes[i].reported)
			g_main_context_iteration(NULL, TRUE);
	}
	g_source_remove(guard);
}

static void
outcomes_clear(Outcome *outcomes, guint n)
{
	for (guint i = 0; i < n; i++) {
		g_free(outcomes[i].uuid);
		g_clear_error(&outcomes[i].error);
	}
}

/*
 * Submissions queued while another connection holds the write lock must come
 * out of the writer in (at most) two transactions: the one it was already
 * blocked in, and one for everything that piled up meanwhile.
 */
static void
test_group_commit(WriterFixture *fx, gconstpointer data)
{
	enum { N = 60 };
	Outcome outcomes[N] = {0};
	sqlite3 *blocker = NULL;
	guint batches = 0, requests = 0, created = 0;
	g_autoptr(GHashTable) uuids = g_hash_table_new(g_str_hash, g_str_equal);

	g_assert_cmpint(sqlite3_open(fx->path, &blocker), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
	for (guint i = 0; i < N; i++) {
		g_autofree gchar *cmd = g_strdup_printf("echo %u", i);

		outcomes[i].fx = fx;
		/* every tenth is invalid: it must fail alone, not its batch */
		qsim_api_writer_create_request(fx->writer, "tiny", i % 10 == 3 ? "" : cmd, 30,
		                               on_report, &outcomes[i]);
	}
	/* nothing can have been committed or reported yet */
	while (g_main_context_iteration(NULL, FALSE))
		;
	for (guint i = 0; i < N; i++)
		g_assert_false(outcomes[i].reported);
	g_assert_cmpint(sqlite3_exec(blocker, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(blocker);

	wait_all(outcomes, N);
	for (guint i = 0; i < N; i++) {
		g_assert_cmpuint(outcomes[i].reports, ==, 1);
		if (i % 10 == 3) {
			g_assert_error(outcomes[i].error, QSIM_ERROR, QSIM_ERROR_INVALID);
			g_assert_null(outcomes[i].uuid);
			continue;
		}
		g_assert_no_error(outcomes[i].error);
		g_assert_true(g_hash_table_add(uuids, outcomes[i].uuid));
		g_assert_cmpint(outcomes[i].rows_at_report, >, 0);
		created++;
	}
	g_assert_cmpuint(created, ==, N - N / 10);
	g_assert_cmpint(raw_count(fx->path), ==, created);
	qsim_api_writer_get_counts(fx->writer, &batches, &requests);
	g_assert_cmpuint(requests, ==, N);
	g_assert_cmpuint(batches, >=, 1);
	g_assert_cmpuint(batches, <=, 2);
	outcomes_clear(outcomes, N);
}

/* Stopping finishes what is queued; later submissions fail with BUSY, still reported */
static void
test_stop(WriterFixture *fx, gconstpointer data)
{
	enum { N = 20 };
	Outcome outcomes[N + 1] = {0};

	for (guint i = 0; i < N; i++) {
		outcomes[i].fx = fx;
		qsim_api_writer_create_request(fx->writer, "tiny", "true", 5, on_report,
		                               &outcomes[i]);
	}
	qsim_api_writer_stop(fx->writer);
	qsim_api_writer_stop(fx->writer);
	outcomes[N].fx = fx;
	qsim_api_writer_create_request(fx->writer, "tiny", "true", 5, on_report, &outcomes[N]);
	wait_all(outcomes, N + 1);
	for (guint i = 0; i < N; i++) {
		g_assert_no_error(outcomes[i].error);
		g_assert_nonnull(outcomes[i].uuid);
	}
	g_assert_error(outcomes[N].error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_assert_cmpint(raw_count(fx->path), ==, N);
	outcomes_clear(outcomes, N + 1);
}

/* A failed transaction fails every valid job in it, each with the reason */
static void
test_batch_failure(WriterFixture *fx, gconstpointer data)
{
	enum { N = 5 };
	Outcome outcomes[N] = {0};
	sqlite3 *db = NULL;

	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db,
	                             "CREATE TRIGGER rollback_all BEFORE INSERT ON requests"
	                             " BEGIN SELECT RAISE(ROLLBACK, 'refused by test'); END;",
	                             NULL, NULL, NULL),
	                ==, SQLITE_OK);
	sqlite3_close(db);
	for (guint i = 0; i < N; i++) {
		outcomes[i].fx = fx;
		qsim_api_writer_create_request(fx->writer, "tiny", "true", 5, on_report,
		                               &outcomes[i]);
	}
	wait_all(outcomes, N);
	for (guint i = 0; i < N; i++) {
		g_assert_error(outcomes[i].error, QSIM_ERROR, QSIM_ERROR_STORE);
		g_assert_nonnull(strstr(outcomes[i].error->message, "refused by test"));
	}
	g_assert_cmpint(raw_count(fx->path), ==, 0);
	outcomes_clear(outcomes, N);
}

/* While the database is locked, only a bounded number of submissions may wait: the rest
 * are refused at once with BUSY (the API's 503), every one is reported exactly once, and
 * every accepted one is committed once the lock goes. */
static void
test_queue_bound(WriterFixture *fx, gconstpointer data)
{
	enum { N = 20, MAX = 4 };
	Outcome outcomes[N] = {0};
	sqlite3 *blocker = NULL;
	guint refused = 0, created = 0;

	qsim_api_writer_set_max_queue(fx->writer, MAX);
	g_assert_cmpint(sqlite3_open(fx->path, &blocker), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
	for (guint i = 0; i < N; i++) {
		outcomes[i].fx = fx;
		qsim_api_writer_create_request(fx->writer, "tiny", "true", 5, on_report,
		                               &outcomes[i]);
	}
	/* the refusals need no database: they are reported while the lock is still held */
	while (g_main_context_iteration(NULL, FALSE))
		;
	for (guint i = 0; i < N; i++) {
		if (!outcomes[i].reported)
			continue;
		g_assert_error(outcomes[i].error, QSIM_ERROR, QSIM_ERROR_BUSY);
		g_assert_nonnull(strstr(outcomes[i].error->message, "too many submissions"));
		refused++;
	}
	/* exactly MAX accepted: the batch the writer took and is blocked in counts too */
	g_assert_cmpuint(refused, ==, N - MAX);
	g_assert_cmpint(sqlite3_exec(blocker, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(blocker);
	wait_all(outcomes, N);
	for (guint i = 0; i < N; i++) {
		g_assert_cmpuint(outcomes[i].reports, ==, 1);
		if (outcomes[i].uuid != NULL)
			created++;
	}
	g_assert_cmpuint(created + refused, ==, N);
	g_assert_cmpint(raw_count(fx->path), ==, created);
	outcomes_clear(outcomes, N);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, WriterFixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("/qsim/api/writer/group-commit", test_group_commit);
	ADD("/qsim/api/writer/stop", test_stop);
	ADD("/qsim/api/writer/queue-bound", test_queue_bound);
	ADD("/qsim/api/writer/batch-failure", test_batch_failure);
	return g_test_run();
}
