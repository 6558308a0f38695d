#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"

static GPtrArray *
chunk_array(void)
{
	return g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
}

static void
test_logs_append_read(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);
	g_autofree gchar *other = store_test_new_request(fx);
	g_autoptr(GPtrArray) chunks = chunk_array();
	g_autoptr(GPtrArray) got = NULL;
	const QsimLogType types[] = {QSIM_LOG_BOOT,   QSIM_LOG_SYSTEM, QSIM_LOG_COMMAND,
	                             QSIM_LOG_STDOUT, QSIM_LOG_STDERR, QSIM_LOG_STDOUT};

	/* empty request: empty array, not an error */
	got = qsim_store_read_logs(fx->store, uuid, 0, 0, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(got->len, ==, 0);
	g_clear_pointer(&got, g_ptr_array_unref);

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autofree gchar *text = g_strdup_printf("line %u\n", i + 1);

		g_ptr_array_add(chunks, qsim_log_entry_new(types[i], i == 0 ? 42 : 0,
		                                           (const guint8 *)text, strlen(text)));
	}
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 6);
	g_assert_no_error(error);
	/* numbering is per request */
	g_assert_cmpint(qsim_store_append_logs(fx->store, other, chunks, &error), ==, 6);
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 12);

	got = qsim_store_read_logs(fx->store, uuid, 0, 0, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(got->len, ==, 12);
	for (guint i = 0; i < got->len; i++) {
		const QsimLogEntry *e = g_ptr_array_index(got, i);
		g_autofree gchar *text = g_strdup_printf("line %u\n", i % 6 + 1);
		gsize len = 0;
		const gchar *bytes = g_bytes_get_data(e->output, &len);

		g_assert_cmpint(e->seq, ==, i + 1);
		g_assert_cmpint(e->log_type, ==, types[i % 6]);
		g_assert_cmpmem(bytes, len, text, strlen(text));
		g_assert_cmpint(e->timestamp_ms, ==, i % 6 == 0 ? 42 : fx->now);
	}
	g_clear_pointer(&got, g_ptr_array_unref);

	/* after_seq + limit */
	got = qsim_store_read_logs(fx->store, uuid, 4, 3, -1, &error);
	g_assert_cmpuint(got->len, ==, 3);
	g_assert_cmpint(((QsimLogEntry *)g_ptr_array_index(got, 0))->seq, ==, 5);
	g_assert_cmpint(((QsimLogEntry *)g_ptr_array_index(got, 2))->seq, ==, 7);
	g_clear_pointer(&got, g_ptr_array_unref);
	got = qsim_store_read_logs(fx->store, uuid, 12, 0, -1, &error);
	g_assert_cmpuint(got->len, ==, 0);
	g_clear_pointer(&got, g_ptr_array_unref);

	/* log_type, combined with after_seq */
	got = qsim_store_read_logs(fx->store, uuid, 0, 0, QSIM_LOG_STDOUT, &error);
	g_assert_cmpuint(got->len, ==, 4);
	g_assert_cmpint(((QsimLogEntry *)g_ptr_array_index(got, 0))->seq, ==, 4);
	g_assert_cmpint(((QsimLogEntry *)g_ptr_array_index(got, 3))->seq, ==, 12);
	g_clear_pointer(&got, g_ptr_array_unref);
	got = qsim_store_read_logs(fx->store, uuid, 6, 1, QSIM_LOG_STDOUT, &error);
	g_assert_cmpuint(got->len, ==, 1);
	g_assert_cmpint(((QsimLogEntry *)g_ptr_array_index(got, 0))->seq, ==, 10);
	g_clear_pointer(&got, g_ptr_array_unref);

	/* errors */
	g_assert_null(qsim_store_read_logs(fx->store, "123e4567-e89b-42d3-a456-426614174000", 0, 0,
	                                   -1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(qsim_store_append_logs(fx->store, "123e4567-e89b-42d3-a456-426614174000",
	                                       chunks, &error),
	                ==, -1);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_null(qsim_store_read_logs(fx->store, uuid, 0, 0, 5, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_null(
	    qsim_store_read_logs(fx->store, uuid, 0, QSIM_STORE_LOGS_MAX_LIMIT + 1, -1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	{
		g_autoptr(GPtrArray) empty = chunk_array();

		g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, empty, &error), ==, -1);
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	}
}

/* NULs, invalid UTF-8, every byte value, an empty chunk, and 1 MiB: all byte-exact */
static void
test_logs_binary(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);
	g_autoptr(GPtrArray) chunks = chunk_array();
	g_autoptr(GPtrArray) got = NULL;
	guint8 all[256];
	const guint8 nasty[] = {'a', 0, 'b', 0xff, 0xfe, 0xc3, 0x28, 0, 0, '\n', 0x80};
	g_autofree guint8 *big = g_malloc(1024 * 1024);
	GRand *rand = g_rand_new_with_seed(1234);

	for (guint i = 0; i < 256; i++)
		all[i] = (guint8)i;
	for (gsize i = 0; i < 1024 * 1024; i++)
		big[i] = (guint8)g_rand_int_range(rand, 0, 256);
	g_rand_free(rand);
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, nasty, sizeof(nasty)));
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDERR, 0, all, sizeof(all)));
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, NULL, 0));
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, big, 1024 * 1024));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 4);
	g_assert_no_error(error);

	got = qsim_store_read_logs(fx->store, uuid, 0, 0, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(got->len, ==, 4);
	for (guint i = 0; i < 4; i++) {
		const QsimLogEntry *in = g_ptr_array_index(chunks, i);
		const QsimLogEntry *out = g_ptr_array_index(got, i);

		g_assert_true(g_bytes_equal(in->output, out->output));
		g_assert_cmpint(out->log_type, ==, in->log_type);
	}
	g_assert_cmpuint(g_bytes_get_size(((QsimLogEntry *)g_ptr_array_index(got, 3))->output), ==,
	                 1024 * 1024);
	g_assert_cmpuint(g_bytes_get_size(((QsimLogEntry *)g_ptr_array_index(got, 2))->output), ==,
	                 0);
	{
		g_autoptr(QsimLogEntry) copy = qsim_log_entry_copy(g_ptr_array_index(got, 0));

		g_assert_cmpint(copy->seq, ==, 1);
		g_assert_true(g_bytes_equal(
		    copy->output, ((QsimLogEntry *)g_ptr_array_index(chunks, 0))->output));
	}
}

/* A batch that fails half way (here: a trigger) leaves no chunk behind */
static void
test_logs_batch_atomic(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);
	g_autoptr(GPtrArray) chunks = chunk_array();
	g_autoptr(GPtrArray) got = NULL;

	if (store_test_is_pg(fx->path))
		store_test_raw_exec(fx->path,
		                    "CREATE FUNCTION fail_dead() RETURNS trigger AS $$ BEGIN"
		                    " IF NEW.output = '\\xdead'::bytea THEN"
		                    " RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW;"
		                    " END $$ LANGUAGE plpgsql;"
		                    "CREATE TRIGGER fail_dead BEFORE INSERT ON request_logs"
		                    " FOR EACH ROW EXECUTE FUNCTION fail_dead()");
	else
		store_test_raw_exec(fx->path,
		                    "CREATE TRIGGER fail_dead BEFORE INSERT ON request_logs"
		                    " WHEN NEW.output = X'DEAD'"
		                    " BEGIN SELECT RAISE(ABORT, 'refused by test'); END;");
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (guint8 *)"ok", 2));
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (guint8 *)"\xde\xad", 2));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, -1);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "refused by test"));
	g_clear_error(&error);
	got = qsim_store_read_logs(fx->store, uuid, 0, 0, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(got->len, ==, 0);
	g_clear_pointer(&got, g_ptr_array_unref);
	/* the connection is usable again and numbering starts at 1 */
	g_ptr_array_remove_index(chunks, 1);
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 1);
	g_assert_no_error(error);

	/* the base rejects a malformed chunk before any SQL runs */
	{
		g_autoptr(QsimLogEntry) bad =
		    qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (guint8 *)"x", 1);

		bad->log_type = 17;
		g_ptr_array_add(chunks, qsim_log_entry_copy(bad));
		g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, -1);
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	}
}

/* Deleting a request deletes its logs, and only its logs */
static void
test_logs_cascade(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);
	g_autofree gchar *keep = store_test_new_request(fx);
	g_autoptr(GPtrArray) chunks = chunk_array();
	g_autoptr(GPtrArray) got = NULL;

	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_SYSTEM, 0, (guint8 *)"vm up", 5));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 1);
	g_assert_cmpint(qsim_store_append_logs(fx->store, keep, chunks, &error), ==, 1);
	qsim_request_free(qsim_store_cancel_request(fx->store, uuid, &error));
	g_assert_no_error(error);
	/* logs may still be appended to a final request (the agent's last lines) */
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 2);
	g_assert_true(qsim_store_delete_request(fx->store, uuid, &error));
	g_assert_no_error(error);
	g_assert_null(qsim_store_read_logs(fx->store, uuid, 0, 0, -1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	got = qsim_store_read_logs(fx->store, keep, 0, 0, -1, NULL);
	g_assert_cmpuint(got->len, ==, 1);
}

/* A byte-capped page: whole chunks only, at least one, and following it loses nothing */
static void
test_logs_page_bytes(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);
	g_autoptr(GPtrArray) chunks = chunk_array();
	gint64 after = 0;
	guint pages = 0;

	/* 10 chunks of 100 bytes, the 4th one 1000 bytes */
	for (guint i = 0; i < 10; i++) {
		gsize len = i == 3 ? 1000 : 100;
		g_autofree gchar *text = g_strnfill(len, (gchar)('a' + i));

		g_ptr_array_add(chunks,
		                qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)text, len));
	}
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 10);
	for (;;) {
		gboolean cut = TRUE;
		g_autoptr(GPtrArray) page =
		    qsim_store_read_logs_page(fx->store, uuid, after, 0, -1, 250, &cut, &error);
		gsize bytes = 0;

		g_assert_no_error(error);
		g_assert_cmpuint(page->len, >, 0);
		for (guint i = 0; i < page->len; i++) {
			const QsimLogEntry *e = page->pdata[i];

			g_assert_cmpint(e->seq, ==, after + 1);
			after = e->seq;
			bytes += g_bytes_get_size(e->output);
		}
		/* over the budget only when one chunk alone is */
		g_assert_true(bytes <= 250 || page->len == 1);
		pages++;
		if (!cut)
			break;
	}
	g_assert_cmpint(after, ==, 10);
	/* [1 2] [3] [4: 1000 bytes, alone] [5 6] [7 8] [9 10] */
	g_assert_cmpuint(pages, ==, 6);
	{
		gboolean cut = TRUE;
		g_autoptr(GPtrArray) all =
		    qsim_store_read_logs_page(fx->store, uuid, 0, 0, -1, 0, &cut, &error);

		g_assert_cmpuint(all->len, ==, 10);
		g_assert_false(cut);
	}
}

/* A byte-capped list: has_more, and the before cursor goes on from there */
static void
test_list_page_bytes(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *before = NULL;
	g_autofree gchar *big = g_strnfill(4000, 'x');
	guint seen = 0, pages = 0;
	gboolean has_more = TRUE;

	for (guint i = 0; i < 12; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(fx->store, "tiny", big, 60, &error);

		g_assert_no_error(error);
		g_ptr_array_add(uuids, g_strdup(r->uuid));
	}
	while (has_more) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) page = NULL;
		QsimRequestFilter filter;

		qsim_request_filter_init(&filter);
		filter.limit = 100;
		filter.before_uuid = before;
		filter.max_bytes = 10000;
		page = qsim_store_list_requests(fx->store, &filter, &has_more, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(page->len, >, 0);
		g_assert_cmpuint(page->len, <=, 2);
		for (guint i = 0; i < page->len; i++) {
			const QsimRequest *r = page->pdata[i];

			/* newest first, each once */
			g_assert_cmpstr(r->uuid, ==, uuids->pdata[11 - seen]);
			seen++;
		}
		g_free(before);
		before = g_strdup(((const QsimRequest *)page->pdata[page->len - 1])->uuid);
		pages++;
	}
	g_assert_cmpuint(seen, ==, 12);
	g_assert_cmpuint(pages, ==, 6);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/logs/append-read", test_logs_append_read);
	ADD("/qsim/store/logs/binary", test_logs_binary);
	ADD("/qsim/store/logs/batch-atomic", test_logs_batch_atomic);
	ADD("/qsim/store/logs/cascade", test_logs_cascade);
	ADD("/qsim/store/logs/page-bytes", test_logs_page_bytes);
	ADD("/qsim/store/list/page-bytes", test_list_page_bytes);
#undef ADD
	return g_test_run();
}
