/*
 * The dashboard's store reads (schema v9): the request journal behind
 * GET /events, the commands search behind GET /requests?q= and the finished
 * samples behind GET /stats/history.
 */
#include "config.h"

#include <libpq-fe.h>
#include <string.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store.h"

#define LEASE_MS 30000

static gchar *
create(QsimStore *store, const gchar *commands)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(store, "tiny", commands, 60, &error);

	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

static GPtrArray *
events_after(QsimStore *store, gint64 after)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *events = qsim_store_list_request_events(store, after, 1000, &error);

	g_assert_no_error(error);
	return events;
}

static void
assert_event(GPtrArray *events, guint i, const gchar *uuid, const gchar *kind, const gchar *status)
{
	const QsimRequestEvent *e;

	g_assert_cmpuint(i, <, events->len);
	e = events->pdata[i];
	g_assert_cmpstr(e->uuid, ==, uuid);
	g_assert_cmpstr(e->kind, ==, kind);
	g_assert_cmpstr(e->status, ==, status);
	if (i > 0)
		g_assert_cmpint(e->id, >, ((QsimRequestEvent *)events->pdata[i - 1])->id);
}

/* Every change any connection commits is journalled once, in order */
static void
test_journal(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(QsimStore) other = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) tail = NULL;
	QsimStatus st;

	g_assert_cmpint(qsim_store_get_last_request_event_id(fx->store, &error), ==, 0);
	a = create(fx->store, "echo a");
	fx->now += 1000;
	claimed = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_mark_running(fx->store, a, "agent-1", &error));
	/* a lease renewal rewrites the row but is no status change */
	g_assert_true(qsim_store_renew_lease(fx->store, a, "agent-1", LEASE_MS, &st, &error));
	/* another process: a second connection to the same file */
	other = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_finish_request(other, a, "agent-1", QSIM_STATUS_DONE, TRUE, 0,
	                                        NULL, &st, &error));
	g_assert_true(qsim_store_delete_request(fx->store, a, &error));

	all = events_after(fx->store, 0);
	g_assert_cmpuint(all->len, ==, 5);
	assert_event(all, 0, a, "created", "pending");
	assert_event(all, 1, a, "status", "acknowledged");
	assert_event(all, 2, a, "status", "running");
	assert_event(all, 3, a, "status", "done");
	assert_event(all, 4, a, "deleted", NULL);
	g_assert_cmpint(((QsimRequestEvent *)all->pdata[1])->at_ms, ==, fx->now);
	g_assert_cmpint(qsim_store_get_last_request_event_id(fx->store, &error), ==,
	                ((QsimRequestEvent *)all->pdata[4])->id);

	/* a resume point returns exactly what came after it */
	tail = events_after(other, ((QsimRequestEvent *)all->pdata[2])->id);
	g_assert_cmpuint(tail->len, ==, 2);
	assert_event(tail, 0, a, "status", "done");

	g_assert_null(qsim_store_list_request_events(fx->store, -1, 10, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

/* The journal keeps the last 100000 events, and ids are never reused */
static void
test_trim(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = NULL;
	g_autoptr(GPtrArray) first = NULL;
	gint64 last;

	store_test_raw_exec(fx->path, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
	                              " FROM c WHERE i < 100010) INSERT INTO request_events"
	                              " (uuid, kind, status, at) SELECT 'x', 'status', 'done', i"
	                              " FROM c");
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT count(*) FROM request_events"), ==,
	                100000);
	a = create(fx->store, "echo after the trim");
	last = qsim_store_get_last_request_event_id(fx->store, &error);
	g_assert_cmpint(last, ==, 100011);
	first = events_after(fx->store, 0);
	/* the oldest kept: a client resuming from 1 sees the gap and lists afresh */
	g_assert_cmpint(((QsimRequestEvent *)first->pdata[0])->id, ==, 12);
	store_test_raw_exec(fx->path, "DELETE FROM request_events");
	g_free(create(fx->store, "echo more"));
	g_assert_cmpint(qsim_store_get_last_request_event_id(fx->store, &error), ==, last + 1);
}

static void
pg_exec(PGconn *conn, const gchar *sql)
{
	PGresult *res = PQexec(conn, sql);

	g_assert_cmpint(PQresultStatus(res), ==, PGRES_COMMAND_OK);
	PQclear(res);
}

/*
 * PostgreSQL: a transaction that changed a request earlier but commits later
 * journals after what committed in between, so a reader resuming from the
 * last id it saw gets it (with a plain sequence it would get a lower id and
 * be skipped). SQLite has one writer at a time: nothing to race.
 */
static void
test_commit_order(StoreFixture *fx, gconstpointer data)
{
	g_autofree gchar *a = NULL;
	g_autofree gchar *b = NULL;
	g_autofree gchar *sql = NULL;
	g_autoptr(GPtrArray) first = NULL;
	g_autoptr(GPtrArray) seen = NULL;
	g_autoptr(GPtrArray) later = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	PGconn *conn;
	gint64 resume;

	if (!store_test_is_pg(fx->path)) {
		g_test_skip("SQLite commits one writer at a time");
		return;
	}
	a = create(fx->store, "echo a");
	claimed = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);
	g_assert_no_error(error);
	first = events_after(fx->store, 0);
	g_assert_cmpuint(first->len, ==, 2);
	conn = PQconnectdb(fx->path);
	g_assert_cmpint(PQstatus(conn), ==, CONNECTION_OK);
	pg_exec(conn, "BEGIN");
	/* acknowledged -> running: other request_counts rows than an insert's, so
	 * the insert below need not wait for this transaction */
	sql = g_strdup_printf("UPDATE requests SET status = 'running' WHERE uuid = '%s'", a);
	pg_exec(conn, sql);
	/* committed while the update is still open */
	b = create(fx->store, "echo b");
	seen = events_after(fx->store, ((QsimRequestEvent *)first->pdata[1])->id);
	g_assert_cmpuint(seen->len, ==, 1);
	assert_event(seen, 0, b, "created", "pending");
	resume = ((QsimRequestEvent *)seen->pdata[0])->id;
	pg_exec(conn, "COMMIT");
	PQfinish(conn);
	later = events_after(fx->store, resume);
	g_assert_cmpuint(later->len, ==, 1);
	assert_event(later, 0, a, "status", "running");
}

static GPtrArray *
search(QsimStore *store, const gchar *text, gint status, const gchar *before, GError **error)
{
	QsimRequestFilter f;
	gboolean more = FALSE;

	qsim_request_filter_init(&f);
	f.text = text;
	f.status = status;
	f.before_uuid = before;
	return qsim_store_list_requests(store, &f, &more, error);
}

/* Substring search in commands, any case, newest first, with the other filters */
static void
test_text_filter(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = create(fx->store, "echo Alpha-one");
	g_autofree gchar *b = create(fx->store, "echo beta");
	g_autofree gchar *c = create(fx->store, "grep ALPHA /etc/passwd");
	g_autofree gchar *d = create(fx->store, "echo 'say \"hi\" OR NOT x*'");
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(QsimRequest) cancelled = NULL;

	rows = search(fx->store, "alpha", -1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 2);
	g_assert_cmpstr(((QsimRequest *)rows->pdata[0])->uuid, ==, c);
	g_assert_cmpstr(((QsimRequest *)rows->pdata[1])->uuid, ==, a);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* the cursor */
	rows = search(fx->store, "alpha", -1, c, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_assert_cmpstr(((QsimRequest *)rows->pdata[0])->uuid, ==, a);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* with a status */
	cancelled = qsim_store_cancel_request(fx->store, a, &error);
	g_assert_no_error(error);
	rows = search(fx->store, "alpha", QSIM_STATUS_CANCELLED, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_assert_cmpstr(((QsimRequest *)rows->pdata[0])->uuid, ==, a);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* the text is data: quotes and FTS5 operators match themselves */
	rows = search(fx->store, "\"hi\" OR NOT x*", -1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_assert_cmpstr(((QsimRequest *)rows->pdata[0])->uuid, ==, d);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* a deleted request leaves the index */
	g_assert_true(qsim_store_delete_request(fx->store, a, &error));
	rows = search(fx->store, "alpha", -1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_clear_pointer(&rows, g_ptr_array_unref);

	rows = search(fx->store, "zzzz", -1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 0);
	g_clear_pointer(&rows, g_ptr_array_unref);

	g_assert_null(search(fx->store, "be", -1, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	(void)b;
}

/* The samples of the health charts, first output included */
static void
test_finished_since(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *a = create(fx->store, "echo a");
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(GPtrArray) samples = NULL;
	gint64 created = fx->now;
	const QsimFinishedSample *s;
	QsimStatus st;

	r = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_mark_running(fx->store, a, "agent-1", &error));
	g_ptr_array_add(
	    chunks, qsim_log_entry_new(QSIM_LOG_SYSTEM, created + 100, (const guint8 *)"ready", 5));
	g_ptr_array_add(
	    chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, created + 2500, (const guint8 *)"a\n", 2));
	g_assert_cmpint(qsim_store_append_logs(fx->store, a, chunks, &error), >, 0);
	fx->now += 3000;
	g_assert_true(qsim_store_finish_request(fx->store, a, "agent-1", QSIM_STATUS_DONE, TRUE, 0,
	                                        NULL, &st, &error));
	g_free(create(fx->store, "echo still pending"));

	samples = qsim_store_list_finished_since(fx->store, created, 100, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(samples->len, ==, 1);
	s = samples->pdata[0];
	g_assert_cmpint(s->status, ==, QSIM_STATUS_DONE);
	g_assert_cmpint(s->created_at, ==, created);
	g_assert_cmpint(s->finished_at, ==, fx->now);
	g_assert_cmpint(s->first_output_at, ==, created + 2500);
	g_clear_pointer(&samples, g_ptr_array_unref);

	samples = qsim_store_list_finished_since(fx->store, fx->now + 1, 100, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(samples->len, ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/events/journal", test_journal);
	ADD("/qsim/store/events/trim", test_trim);
	ADD("/qsim/store/events/commit-order", test_commit_order);
	ADD("/qsim/store/events/text-filter", test_text_filter);
	ADD("/qsim/store/events/finished-since", test_finished_since);
	return g_test_run();
}
