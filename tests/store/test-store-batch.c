#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"

static GPtrArray *
draft_array(void)
{
	return g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_draft_free);
}

static void
add_draft(GPtrArray *drafts, const gchar *vm_name, const gchar *commands, gint64 timeout_s)
{
	g_ptr_array_add(drafts, qsim_request_draft_new(vm_name, commands, timeout_s));
}

static QsimRequestDraft *
draft_at(GPtrArray *drafts, guint i)
{
	return g_ptr_array_index(drafts, i);
}

static gint64
count_rows(StoreFixture *fx)
{
	return store_test_raw_int(fx->path, "SELECT COUNT(*) FROM requests");
}

typedef struct {
	StoreFixture *fx;
	GPtrArray *uuids;
	gint64 rows_seen; /* rows visible to another connection when the last signal fired */
} SignalLog;

static void
on_changed(QsimStore *store, const gchar *uuid, gint status, gpointer user_data)
{
	SignalLog *log = user_data;

	g_assert_cmpint(status, ==, QSIM_STATUS_PENDING);
	g_ptr_array_add(log->uuids, g_strdup(uuid));
	/* a raw connection sees the row: the signal comes after the commit */
	log->rows_seen = count_rows(log->fx);
}

/* A good draft's row is exactly what was asked for */
static void
assert_created(StoreFixture *fx, QsimRequestDraft *d)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) got = NULL;

	g_assert_no_error(d->error);
	g_assert_nonnull(d->request);
	g_assert_true(g_uuid_string_is_valid(d->request->uuid));
	g_assert_cmpint(d->request->status, ==, QSIM_STATUS_PENDING);
	got = qsim_store_get_request(fx->store, d->request->uuid, 36, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->vm_name, ==, d->vm_name);
	g_assert_cmpstr(got->commands, ==, d->commands);
	g_assert_cmpint(got->timeout_s, ==, d->timeout_s);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_PENDING);
	g_assert_cmpint(got->created_at, ==, fx->now);
	g_assert_cmpuint(got->attempts, ==, 0);
}

static void
assert_invalid(QsimRequestDraft *d, const gchar *fragment)
{
	g_assert_null(d->request);
	g_assert_error(d->error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(d->error->message, fragment));
}

static void
test_batch_mixed(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) drafts = draft_array();
	g_autoptr(GPtrArray) rows = NULL;
	g_autofree gchar *long_name = g_strnfill(65, 'a');
	SignalLog log = {fx, g_ptr_array_new_with_free_func(g_free), 0};
	gulong id = g_signal_connect(fx->store, "request-changed", G_CALLBACK(on_changed), &log);

	add_draft(drafts, "tiny", "echo one", 10);
	add_draft(drafts, "", "echo empty vm", 10);
	add_draft(drafts, "tiny", "echo two", 20);
	add_draft(drafts, "tiny", "echo zero timeout", 0);
	add_draft(drafts, "tiny", "bad \xff utf-8", 10);
	add_draft(drafts, long_name, "echo long vm", 10);
	add_draft(drafts, "tiny", NULL, 10);
	add_draft(drafts, "other", "echo three", 30);

	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
	assert_created(fx, draft_at(drafts, 0));
	assert_invalid(draft_at(drafts, 1), "vm_name must not be empty");
	assert_created(fx, draft_at(drafts, 2));
	assert_invalid(draft_at(drafts, 3), "timeout must be positive");
	assert_invalid(draft_at(drafts, 4), "commands is not valid UTF-8");
	assert_invalid(draft_at(drafts, 5), "vm_name is longer than 64 bytes");
	assert_invalid(draft_at(drafts, 6), "commands must not be empty");
	assert_created(fx, draft_at(drafts, 7));
	g_assert_cmpint(count_rows(fx), ==, 3);

	/* one signal per created request, in order, each after the commit */
	g_assert_cmpuint(log.uuids->len, ==, 3);
	g_assert_cmpstr(log.uuids->pdata[0], ==, draft_at(drafts, 0)->request->uuid);
	g_assert_cmpstr(log.uuids->pdata[1], ==, draft_at(drafts, 2)->request->uuid);
	g_assert_cmpstr(log.uuids->pdata[2], ==, draft_at(drafts, 7)->request->uuid);
	g_assert_cmpint(log.rows_seen, ==, 3);

	/* submission order is the order of the batch: newest (last) first */
	rows = qsim_store_list_requests(fx->store, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 3);
	g_assert_cmpstr(((QsimRequest *)rows->pdata[0])->commands, ==, "echo three");
	g_assert_cmpstr(((QsimRequest *)rows->pdata[1])->commands, ==, "echo two");
	g_assert_cmpstr(((QsimRequest *)rows->pdata[2])->commands, ==, "echo one");

	/* the outcome fields are outputs: running the batch again makes new rows */
	g_clear_pointer(&log.uuids, g_ptr_array_unref);
	log.uuids = g_ptr_array_new_with_free_func(g_free);
	{
		g_autofree gchar *first = g_strdup(draft_at(drafts, 0)->request->uuid);

		g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
		g_assert_no_error(error);
		g_assert_cmpstr(draft_at(drafts, 0)->request->uuid, !=, first);
	}
	assert_invalid(draft_at(drafts, 1), "vm_name must not be empty");
	g_assert_cmpint(count_rows(fx), ==, 6);
	g_assert_cmpuint(log.uuids->len, ==, 3);

	g_signal_handler_disconnect(fx->store, id);
	g_ptr_array_unref(log.uuids);
}

static void
test_batch_row_refused(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) drafts = draft_array();

	/* RAISE(ABORT) fails one statement and keeps the transaction open; on
	 * PostgreSQL a constraint-class error, which the store's savepoint undoes */
	if (store_test_is_pg(fx->path))
		store_test_raw_exec(
		    fx->path, "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN"
		              " IF NEW.commands = 'boom' THEN RAISE EXCEPTION 'refused by test'"
		              " USING ERRCODE = 'check_violation'; END IF; RETURN NEW;"
		              " END $$ LANGUAGE plpgsql;"
		              "CREATE TRIGGER refuse_boom BEFORE INSERT ON requests"
		              " FOR EACH ROW EXECUTE FUNCTION refuse_boom()");
	else
		store_test_raw_exec(fx->path,
		                    "CREATE TRIGGER refuse_boom BEFORE INSERT ON requests"
		                    " WHEN NEW.commands = 'boom'"
		                    " BEGIN SELECT RAISE(ABORT, 'refused by test'); END;");
	add_draft(drafts, "tiny", "echo before", 10);
	add_draft(drafts, "tiny", "boom", 10);
	add_draft(drafts, "tiny", "", 10);
	add_draft(drafts, "tiny", "echo after", 10);

	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
	assert_created(fx, draft_at(drafts, 0));
	g_assert_null(draft_at(drafts, 1)->request);
	g_assert_error(draft_at(drafts, 1)->error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(draft_at(drafts, 1)->error->message, "refused by test"));
	assert_invalid(draft_at(drafts, 2), "commands must not be empty");
	assert_created(fx, draft_at(drafts, 3));
	g_assert_cmpint(count_rows(fx), ==, 2);
}

static void
count_signal(QsimStore *store, const gchar *uuid, gint status, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
test_batch_all_or_nothing(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) drafts = draft_array();
	guint signals = 0;
	gulong id;

	/* RAISE(ROLLBACK) ends the transaction: the rows inserted before it in the
	 * same batch must be gone too, which shows they shared one transaction */
	if (store_test_is_pg(fx->path))
		store_test_raw_exec(fx->path,
		                    "CREATE FUNCTION rollback_boom() RETURNS trigger AS $$ BEGIN"
		                    " IF NEW.commands = 'rollback' THEN"
		                    " RAISE EXCEPTION 'rolled back by test'; END IF; RETURN NEW;"
		                    " END $$ LANGUAGE plpgsql;"
		                    "CREATE TRIGGER rollback_boom BEFORE INSERT ON requests"
		                    " FOR EACH ROW EXECUTE FUNCTION rollback_boom()");
	else
		store_test_raw_exec(fx->path,
		                    "CREATE TRIGGER rollback_boom BEFORE INSERT ON requests"
		                    " WHEN NEW.commands = 'rollback'"
		                    " BEGIN SELECT RAISE(ROLLBACK, 'rolled back by test'); END;");
	add_draft(drafts, "tiny", "echo one", 10);
	add_draft(drafts, "tiny", "echo two", 10);
	add_draft(drafts, "", "echo invalid", 10);
	add_draft(drafts, "tiny", "rollback", 10);
	add_draft(drafts, "tiny", "echo never reached", 10);
	id = g_signal_connect(fx->store, "request-changed", G_CALLBACK(count_signal), &signals);

	g_assert_false(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "rolled back by test"));
	for (guint i = 0; i < drafts->len; i++) {
		QsimRequestDraft *d = draft_at(drafts, i);

		g_assert_null(d->request);
		if (i == 2) {
			assert_invalid(d, "vm_name must not be empty");
			continue;
		}
		g_assert_error(d->error, QSIM_ERROR, QSIM_ERROR_STORE);
		g_assert_cmpstr(d->error->message, ==, error->message);
	}
	g_assert_cmpint(count_rows(fx), ==, 0);
	g_assert_cmpuint(signals, ==, 0);

	/* the connection is usable again */
	g_clear_error(&error);
	g_ptr_array_remove_index(drafts, 3);
	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
	g_assert_cmpint(count_rows(fx), ==, 3);
	g_assert_cmpuint(signals, ==, 3);
	g_signal_handler_disconnect(fx->store, id);
}

static void
test_batch_edges(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) drafts = draft_array();
	g_autoptr(GPtrArray) holes = g_ptr_array_new();

	/* nothing to do is a success */
	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
	/* only invalid drafts: success, nothing inserted */
	add_draft(drafts, "tiny", "echo", -5);
	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
	assert_invalid(draft_at(drafts, 0), "timeout must be positive");
	g_assert_cmpint(count_rows(fx), ==, 0);
	/* malformed arguments */
	g_assert_false(qsim_store_create_requests(fx->store, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_ptr_array_add(holes, NULL);
	g_assert_false(qsim_store_create_requests(fx->store, holes, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

static void
test_batch_large(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) drafts = draft_array();
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	const guint n = 2000;

	for (guint i = 0; i < n; i++) {
		g_autofree gchar *cmd = g_strdup_printf("echo %u", i);

		add_draft(drafts, "tiny", cmd, 1 + i % 50);
	}
	g_assert_true(qsim_store_create_requests(fx->store, drafts, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < n; i++) {
		QsimRequestDraft *d = draft_at(drafts, i);

		g_assert_no_error(d->error);
		g_assert_true(g_hash_table_add(seen, d->request->uuid));
	}
	g_assert_cmpint(count_rows(fx), ==, n);
	/* ids stay dense and in batch order */
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT MAX(id) - MIN(id) FROM requests"), ==,
	                n - 1);
	g_assert_cmpint(store_test_raw_int(fx->path,
	                                   "SELECT COUNT(*) FROM requests a"
	                                   " JOIN requests b ON b.id = a.id + 1"
	                                   " WHERE CAST(substr(b.commands, 6) AS INTEGER)"
	                                   " != CAST(substr(a.commands, 6) AS INTEGER) + 1"),
	                ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/batch/mixed", test_batch_mixed);
	ADD("/qsim/store/batch/row-refused", test_batch_row_refused);
	ADD("/qsim/store/batch/all-or-nothing", test_batch_all_or_nothing);
	ADD("/qsim/store/batch/edges", test_batch_edges);
	ADD("/qsim/store/batch/large", test_batch_large);
	return g_test_run();
}
