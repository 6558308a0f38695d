#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "common/qsim-error.h"
#include "qsim-pg-fixture.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

#define LEASE_MS 30000

static QsimRequest *
create(StoreFixture *fx, const gchar *vm)
{
	g_autoptr(GError) error = NULL;
	QsimRequest *r = qsim_store_create_request(fx->store, vm, "echo hi", 60, &error);

	g_assert_no_error(error);
	g_assert_nonnull(r);
	return r;
}

static void
test_migrate_empty(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) again = NULL;

	g_assert_cmpuint(qsim_store_get_schema_version(fx->store), ==,
	                 qsim_store_get_current_schema_version());
	g_assert_cmpuint(qsim_store_get_schema_version(fx->store), >=, 1);
	if (store_test_is_pg(fx->path)) {
		/* the version table and the tables, in SQLite's numbering */
		g_assert_cmpint(
		    store_test_raw_int(fx->path, "SELECT MAX(version) FROM schema_version"), ==,
		    qsim_store_get_current_schema_version());
		g_assert_cmpint(
		    store_test_raw_int(fx->path, "SELECT COUNT(*) FROM pg_tables WHERE tablename IN"
		                                 " ('requests', 'request_logs')"
		                                 " AND schemaname = current_schema()"),
		    ==, 2);
		g_assert_true(qsim_store_ping(fx->store, &error));
		g_assert_no_error(error);
		g_clear_object(&fx->store);
		again = qsim_store_open(fx->path, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(qsim_store_get_schema_version(again), ==,
		                 qsim_store_get_current_schema_version());
		return;
	}
	g_assert_cmpint(store_test_raw_int(fx->path, "PRAGMA user_version"), ==,
	                qsim_store_get_current_schema_version());
	g_assert_cmpint(store_test_raw_int(fx->path,
	                                   "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
	                                   " ('requests', 'request_logs')"),
	                ==, 2);
	/* WAL is persistent in the file; the other pragmas are per connection */
	g_assert_cmpint(
	    store_test_raw_int(fx->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"),
	    ==, 1);
	g_assert_true(qsim_store_ping(fx->store, &error));
	g_assert_no_error(error);

	/* reopening a current database is a no-op that keeps the data */
	g_clear_object(&fx->store);
	again = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_store_get_schema_version(again), ==,
	                 qsim_store_get_current_schema_version());
}

static void
test_migrate_future_refused(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;

	gboolean pg = store_test_is_pg(fx->path);
	const gchar *version_sql =
	    pg ? "SELECT MAX(version) FROM schema_version" : "PRAGMA user_version";

	g_clear_object(&fx->store);
	store_test_raw_exec(fx->path, pg ? "INSERT INTO schema_version VALUES (99, 0)"
	                                 : "PRAGMA user_version = 99");
	store = qsim_store_open(fx->path, &error);
	g_assert_null(store);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "schema version 99 is newer than this qsim"));
	g_assert_nonnull(strstr(error->message, fx->path));
	/* refused, not touched */
	g_assert_cmpint(store_test_raw_int(fx->path, version_sql), ==, 99);
}

static void
test_migrate_failure_keeps_data(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("qsim-store-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "old.db", NULL);

	/* a version-0 file that already has a conflicting "requests" table with data */
	store_test_raw_exec(
	    path, "CREATE TABLE requests (x TEXT); INSERT INTO requests VALUES ('keep me');");
	store = qsim_store_open(path, &error);
	g_assert_null(store);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "from version 0 to 1 failed"));
	g_assert_nonnull(strstr(error->message, "no data was deleted"));
	g_assert_cmpint(store_test_raw_int(path, "PRAGMA user_version"), ==, 0);
	g_assert_cmpint(
	    store_test_raw_int(path, "SELECT COUNT(*) FROM requests WHERE x = 'keep me'"), ==, 1);
	/* the step was rolled back as a whole: no half-created log table */
	g_assert_cmpint(store_test_raw_int(
	                    path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'request_logs'"),
	                ==, 0);
	store_test_rmdir(dir);
}

static gboolean
strip_paren_space(const GMatchInfo *match, GString *result, gpointer user_data)
{
	g_autofree gchar *m = g_match_info_fetch(match, 0);

	g_string_append(result, g_strstrip(m));
	return FALSE;
}

/* Returns: (transfer full): the schema of @path, whitespace-normalized, one object per line */
static gchar *
schema_text(const gchar *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GRegex) space = g_regex_new("\\s+", 0, 0, NULL);
	g_autoptr(GRegex) paren = g_regex_new("\\( | \\)| ,", 0, 0, NULL);

	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db,
	                                   "SELECT type, name, COALESCE(sql, '') FROM sqlite_master"
	                                   " ORDER BY name",
	                                   -1, &stmt, NULL),
	                ==, SQLITE_OK);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		g_autofree gchar *a = g_regex_replace_literal(
		    space, (const gchar *)sqlite3_column_text(stmt, 2), -1, 0, " ", 0, NULL);
		g_autofree gchar *b = NULL;

		b = g_regex_replace_eval(paren, a, -1, 0, 0, strip_paren_space, NULL, NULL);
		g_string_append_printf(out, "%s %s: %s\n", sqlite3_column_text(stmt, 0),
		                       sqlite3_column_text(stmt, 1), b);
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* A database written by schema version 1 (tests/data/store/schema-v1.sql) still opens */
static void
test_migrate_from_v1_fixture(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimRequest) held = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("qsim-store-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "v1.db", NULL);
	g_autofree gchar *sql_path =
	    g_build_filename(SOURCE_ROOT, "tests", "data", "store", "schema-v1.sql", NULL);
	g_autofree gchar *sql = NULL;
	const guint8 want[] = {'h', 'i', '\n', 0x00, 0xff};

	g_assert_true(g_file_get_contents(sql_path, &sql, NULL, &error));
	store_test_raw_exec(path, sql);
	store = qsim_store_open(path, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_store_get_schema_version(store), ==,
	                 qsim_store_get_current_schema_version());
	/* migrated from the fixture, the schema must be exactly what a fresh file gets
	 * (so the fixture is what migration 1 created, and the later steps apply to it) */
	{
		g_autofree gchar *fresh_path = g_build_filename(dir, "fresh.db", NULL);
		g_autoptr(QsimStore) fresh = qsim_store_open(fresh_path, &error);
		g_autofree gchar *want_schema = NULL;
		g_autofree gchar *got_schema = NULL;

		g_assert_no_error(error);
		g_clear_object(&fresh);
		want_schema = schema_text(fresh_path);
		got_schema = schema_text(path);
		g_assert_cmpstr(got_schema, ==, want_schema);
	}
	held = qsim_store_get_request(store, "0a1b2c3d-0000-4000-8000-000000000002", 36, &error);
	g_assert_no_error(error);
	/* v2 added start_mode: rows from before have none */
	g_assert_cmpint(held->start_mode, ==, QSIM_START_MODE_NONE);
	/* v4 added output_truncated: rows from before were never cut */
	g_assert_false(held->output_truncated);
	g_assert_cmpint(held->status, ==, QSIM_STATUS_HOLD);
	g_assert_cmpint(held->held_from, ==, QSIM_STATUS_RUNNING);
	g_assert_cmpint(held->lease_expires_at, ==, 1764000050000);
	g_assert_cmpstr(held->agent_id, ==, "host-a:1");
	logs =
	    qsim_store_read_logs(store, "0a1b2c3d-0000-4000-8000-000000000001", 0, 0, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(logs->len, ==, 2);
	g_assert_cmpint(((QsimLogEntry *)g_ptr_array_index(logs, 0))->log_type, ==,
	                QSIM_LOG_COMMAND);
	g_assert_cmpmem(
	    g_bytes_get_data(((QsimLogEntry *)g_ptr_array_index(logs, 1))->output, NULL), 5, want,
	    sizeof(want));
	/* new rows continue the submission order after the old ones */
	{
		g_autoptr(QsimRequest) r = qsim_store_create_request(store, "tiny", "x", 1, &error);
		g_autoptr(GPtrArray) rows = qsim_store_list_requests(store, NULL, NULL, &error);

		g_assert_no_error(error);
		g_assert_cmpuint(rows->len, ==, 4);
		g_assert_cmpstr(((QsimRequest *)g_ptr_array_index(rows, 0))->uuid, ==, r->uuid);
		g_assert_cmpstr(((QsimRequest *)g_ptr_array_index(rows, 3))->uuid, ==,
		                "0a1b2c3d-0000-4000-8000-000000000001");
	}
	/* and the held request can be resumed through the table */
	{
		g_autoptr(QsimRequest) r = qsim_store_set_status(
		    store, "0a1b2c3d-0000-4000-8000-000000000002", QSIM_STATUS_RUNNING, &error);

		g_assert_no_error(error);
		g_assert_cmpint(r->status, ==, QSIM_STATUS_RUNNING);
	}
	g_clear_object(&store);
	store_test_rmdir(dir);
}

static void
test_open_errors(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;
	g_autofree gchar *dir = g_dir_make_tmp("qsim-store-XXXXXX", NULL);
	g_autofree gchar *path = g_build_filename(dir, "junk.db", NULL);
	g_autofree gchar *missing = g_build_filename(dir, "no", "such", "dir.db", NULL);

	g_assert_true(
	    g_file_set_contents(path, "this is not a database, it is text .......", -1, NULL));
	store = qsim_store_open(path, &error);
	g_assert_null(store);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_clear_error(&error);
	store = qsim_store_open(missing, &error);
	g_assert_null(store);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, missing));
	g_clear_error(&error);
	store = qsim_store_open("", &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	store_test_rmdir(dir);
}

/* output_truncated: off for a new request, on once recorded (again is harmless) */
static void
test_output_truncated(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = create(fx, "tiny");
	g_autoptr(QsimRequest) got = NULL;

	g_assert_false(r->output_truncated);
	g_assert_true(qsim_store_set_output_truncated(fx->store, r->uuid, &error));
	g_assert_true(qsim_store_set_output_truncated(fx->store, r->uuid, &error));
	g_assert_no_error(error);
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_no_error(error);
	g_assert_true(got->output_truncated);
	g_assert_false(qsim_store_set_output_truncated(
	    fx->store, "0a1b2c3d-0000-4000-8000-00000000ffff", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
}

static void
test_create_get(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = create(fx, "tiny");
	g_autoptr(QsimRequest) got = NULL;
	g_autoptr(QsimRequest) copy = NULL;
	g_autofree gchar *upper = NULL;

	g_assert_true(g_uuid_string_is_valid(r->uuid));
	g_assert_cmpint(r->uuid[14], ==, '4'); /* v4 */
	g_assert_cmpint(r->status, ==, QSIM_STATUS_PENDING);
	g_assert_cmpint(r->created_at, ==, fx->now);
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->uuid, ==, r->uuid);
	g_assert_cmpstr(got->vm_name, ==, "tiny");
	g_assert_cmpstr(got->commands, ==, "echo hi");
	g_assert_cmpint(got->timeout_s, ==, 60);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_PENDING);
	g_assert_cmpint(got->created_at, ==, fx->now);
	g_assert_cmpint(got->updated_at, ==, fx->now);
	g_assert_cmpint(got->started_at, ==, 0);
	g_assert_cmpint(got->finished_at, ==, 0);
	g_assert_false(got->has_exit_code);
	g_assert_null(got->error);
	g_assert_null(got->agent_id);
	g_assert_cmpint(got->lease_expires_at, ==, 0);
	g_assert_cmpuint(got->attempts, ==, 0);
	copy = qsim_request_copy(got);
	g_assert_cmpstr(copy->commands, ==, got->commands);
	g_assert_true(copy->commands != got->commands);

	/* full UUIDs are case-insensitive */
	upper = g_ascii_strup(r->uuid, -1);
	g_clear_pointer(&got, qsim_request_free);
	got = qsim_store_get_request(fx->store, upper, 36, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->uuid, ==, r->uuid);

	/* validation */
	g_assert_null(qsim_store_create_request(fx->store, "", "x", 1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_null(qsim_store_create_request(fx->store, "tiny", "", 1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, "commands must not be empty");
	g_clear_error(&error);
	g_assert_null(qsim_store_create_request(fx->store, "tiny", "x", 0, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_null(qsim_store_create_request(fx->store, "tiny", "\xff\xfe", 1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	{
		g_autofree gchar *huge = g_strnfill(256 * 1024 + 1, 'x');

		g_assert_null(qsim_store_create_request(fx->store, "tiny", huge, 1, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_clear_error(&error);
	}
	g_assert_null(
	    qsim_store_get_request(fx->store, "123e4567-e89b-42d3-a456-426614174000", 36, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
}

/* Inserts requests with the given uuids directly: prefixes need known UUIDs */
static void
insert_known(StoreFixture *fx, const gchar *uuid, gint64 id)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;

	if (store_test_is_pg(fx->path)) {
		/* uuid is one of this file's constants */
		g_autofree gchar *sql = g_strdup_printf(
		    "INSERT INTO requests (uuid, id, vm_name, commands, timeout, status,"
		    " created_at, updated_at) VALUES ('%s', %" G_GINT64_FORMAT
		    ", 'tiny', 'true', 5, 'pending', 1, 1)",
		    uuid, id);

		store_test_raw_exec(fx->path, sql);
		return;
	}
	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db,
	                                   "INSERT INTO requests (uuid, id, vm_name, commands,"
	                                   " timeout, status, created_at, updated_at)"
	                                   " VALUES (?1, ?2, 'tiny', 'true', 5, 'pending', 1, 1)",
	                                   -1, &stmt, NULL),
	                ==, SQLITE_OK);
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, id);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

static void
test_partial_uuid(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;

	insert_known(fx, "abcd1234-0000-4000-8000-000000000001", 1);
	insert_known(fx, "abcd1234-0000-4000-8000-000000000002", 2);
	insert_known(fx, "abce0000-0000-4000-8000-000000000003", 3);
	insert_known(fx, "ab_d0000-0000-4000-8000-000000000004", 4); /* LIKE bait, never valid */

	/* unique prefix, 4 characters for the CLI */
	r = qsim_store_get_request(fx->store, "abce", QSIM_STORE_MIN_PREFIX_CLI, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(r->uuid, ==, "abce0000-0000-4000-8000-000000000003");
	g_clear_pointer(&r, qsim_request_free);
	/* case-insensitive, and a prefix may include the dash */
	r = qsim_store_get_request(fx->store, "ABCD1234-0000-4000-8000-00000000000",
	                           QSIM_STORE_MIN_PREFIX_API, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS);
	g_clear_error(&error);
	r = qsim_store_get_request(fx->store, "abcd1234-0000-4000-8000-0000000000",
	                           QSIM_STORE_MIN_PREFIX_API, &error);
	g_assert_null(r);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS);
	g_assert_nonnull(strstr(error->message, "abcd1234-0000-4000-8000-000000000001"));
	g_assert_nonnull(strstr(error->message, "abcd1234-0000-4000-8000-000000000002"));
	g_assert_null(strstr(error->message, "abce"));
	g_clear_error(&error);
	r = qsim_store_get_request(fx->store, "abcd", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS);
	g_clear_error(&error);
	/* too short for the API, fine for the CLI */
	r = qsim_store_get_request(fx->store, "abce", QSIM_STORE_MIN_PREFIX_API, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "at least 8"));
	g_clear_error(&error);
	r = qsim_store_get_request(fx->store, "abc", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	/* not found */
	r = qsim_store_get_request(fx->store, "ffff", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	/* wildcards and non-hex are rejected, never passed to SQL as patterns */
	r = qsim_store_get_request(fx->store, "ab_d", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	r = qsim_store_get_request(fx->store, "ab%%", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	r = qsim_store_get_request(fx->store, "abcd1234-0000-4000-8000-0000000000011", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	/* more than ten candidates: listed ten and an ellipsis */
	for (gint i = 0; i < 12; i++) {
		g_autofree gchar *uuid =
		    g_strdup_printf("eeee0000-0000-4000-8000-0000000000%02d", i);

		insert_known(fx, uuid, 10 + i);
	}
	r = qsim_store_get_request(fx->store, "eeee", 4, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS);
	g_assert_nonnull(strstr(error->message, ", ..."));
	g_assert_null(strstr(error->message, "eeee0000-0000-4000-8000-000000000010"));
}

static void
test_list(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) rows = NULL;
	QsimRequestFilter filter;
	gboolean more = TRUE;
	guint seen = 0;
	const gchar *before = NULL;
	g_autofree gchar *cursor = NULL;

	/* 25 requests, alternating VMs, all in the same millisecond: order is submission */
	for (gint i = 0; i < 25; i++) {
		g_autoptr(QsimRequest) r = create(fx, i % 2 == 0 ? "even" : "odd");

		g_ptr_array_add(uuids, g_strdup(r->uuid));
	}
	rows = qsim_store_list_requests(fx->store, NULL, &more, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 25);
	g_assert_false(more);
	for (guint i = 0; i < rows->len; i++) {
		const QsimRequest *r = g_ptr_array_index(rows, i);

		g_assert_cmpstr(r->uuid, ==, g_ptr_array_index(uuids, 24 - i));
	}
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* pages of 10 with the before cursor */
	qsim_request_filter_init(&filter);
	filter.limit = 10;
	do {
		filter.before_uuid = before;
		rows = qsim_store_list_requests(fx->store, &filter, &more, &error);
		g_assert_no_error(error);
		for (guint i = 0; i < rows->len; i++) {
			const QsimRequest *r = g_ptr_array_index(rows, i);

			g_assert_cmpstr(r->uuid, ==, g_ptr_array_index(uuids, 24 - seen));
			seen++;
		}
		g_assert_cmpint(more, ==, seen < 25);
		g_free(cursor);
		cursor = g_strdup(((QsimRequest *)g_ptr_array_index(rows, rows->len - 1))->uuid);
		before = cursor;
		g_clear_pointer(&rows, g_ptr_array_unref);
	} while (more);
	g_assert_cmpuint(seen, ==, 25);

	/* filters */
	qsim_request_filter_init(&filter);
	filter.vm_name = "odd";
	rows = qsim_store_list_requests(fx->store, &filter, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 12);
	g_clear_pointer(&rows, g_ptr_array_unref);
	{
		g_autoptr(QsimRequest) claimed =
		    qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(claimed->uuid, ==, g_ptr_array_index(uuids, 0)); /* oldest */
	}
	filter.vm_name = NULL;
	filter.status = QSIM_STATUS_ACKNOWLEDGED;
	rows = qsim_store_list_requests(fx->store, &filter, &more, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_assert_false(more);
	g_clear_pointer(&rows, g_ptr_array_unref);
	filter.status = QSIM_STATUS_PENDING;
	filter.vm_name = "even";
	filter.limit = 5;
	filter.before_uuid = g_ptr_array_index(uuids, 20);
	rows = qsim_store_list_requests(fx->store, &filter, &more, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 5);
	g_assert_true(more); /* 18, 16, 14, 12, 10; then 8 .. 2 remain (0 is claimed) */
	g_assert_cmpstr(((QsimRequest *)g_ptr_array_index(rows, 0))->uuid, ==,
	                g_ptr_array_index(uuids, 18));
	g_clear_pointer(&rows, g_ptr_array_unref);
	qsim_request_filter_init(&filter);
	filter.agent_id = "agent-1";
	rows = qsim_store_list_requests(fx->store, &filter, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* bad arguments */
	qsim_request_filter_init(&filter);
	filter.before_uuid = "123e4567-e89b-42d3-a456-426614174000";
	g_assert_null(qsim_store_list_requests(fx->store, &filter, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	filter.before_uuid = "nope";
	g_assert_null(qsim_store_list_requests(fx->store, &filter, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	qsim_request_filter_init(&filter);
	filter.limit = QSIM_REQUEST_FILTER_MAX_LIMIT + 1;
	g_assert_null(qsim_store_list_requests(fx->store, &filter, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	qsim_request_filter_init(&filter);
	filter.status = 7;
	g_assert_null(qsim_store_list_requests(fx->store, &filter, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

typedef struct {
	guint changed;
	guint deleted;
	guint logs;
	gint last_status;
	gint64 last_seq;
	gchar *last_uuid;
} SignalLog;

static void
on_changed(QsimStore *store, const gchar *uuid, gint status, SignalLog *log)
{
	log->changed++;
	log->last_status = status;
	g_free(log->last_uuid);
	log->last_uuid = g_strdup(uuid);
}

static void
on_deleted(QsimStore *store, const gchar *uuid, SignalLog *log)
{
	log->deleted++;
}

static void
on_logs(QsimStore *store, const gchar *uuid, gint64 last_seq, SignalLog *log)
{
	log->logs++;
	log->last_seq = last_seq;
}

/* A whole run, as an agent and a user drive it, checking rows and signals */
static void
test_lifecycle(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) got = NULL;
	SignalLog log = {0};
	QsimStatus status = QSIM_STATUS_PENDING;
	gint64 t0 = fx->now;

	g_signal_connect(fx->store, "request-changed", G_CALLBACK(on_changed), &log);
	g_signal_connect(fx->store, "request-deleted", G_CALLBACK(on_deleted), &log);
	g_signal_connect(fx->store, "logs-appended", G_CALLBACK(on_logs), &log);
	r = create(fx, "tiny");
	g_assert_cmpuint(log.changed, ==, 1);
	g_assert_cmpint(log.last_status, ==, QSIM_STATUS_PENDING);
	g_assert_cmpstr(log.last_uuid, ==, r->uuid);
	g_clear_pointer(&r, qsim_request_free);

	fx->now += 1000;
	r = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 4, &error);
	g_assert_no_error(error);
	g_assert_cmpint(r->status, ==, QSIM_STATUS_ACKNOWLEDGED);
	g_assert_cmpstr(r->agent_id, ==, "agent-1");
	g_assert_cmpint(r->lease_expires_at, ==, fx->now + LEASE_MS);
	g_assert_cmpuint(r->attempts, ==, 1);
	g_assert_cmpuint(log.changed, ==, 2);
	g_assert_cmpint(log.last_status, ==, QSIM_STATUS_ACKNOWLEDGED);
	/* nothing else to claim: NULL without an error */
	g_assert_null(qsim_store_claim_next(fx->store, "agent-2", LEASE_MS, 4, &error));
	g_assert_no_error(error);

	/* another agent cannot touch it */
	g_assert_false(qsim_store_mark_running(fx->store, r->uuid, "agent-2", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	fx->now += 2000;
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent-1", &error));
	g_assert_no_error(error);
	g_assert_cmpint(log.last_status, ==, QSIM_STATUS_RUNNING);

	fx->now += 5000;
	g_assert_true(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, QSIM_STATUS_RUNNING);
	g_assert_false(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-2", LEASE_MS, &status, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);

	/* hold and resume, as the user */
	got = qsim_store_set_status(fx->store, r->uuid, QSIM_STATUS_HOLD, &error);
	g_assert_no_error(error);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_HOLD);
	g_assert_cmpint(got->held_from, ==, QSIM_STATUS_RUNNING);
	g_assert_true(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, &status, &error));
	g_assert_cmpint(status, ==, QSIM_STATUS_HOLD);
	g_clear_pointer(&got, qsim_request_free);
	got = qsim_store_set_status(fx->store, r->uuid, QSIM_STATUS_PENDING, &error);
	g_assert_null(got);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "hold"));
	g_clear_error(&error);
	got = qsim_store_set_status(fx->store, r->uuid, QSIM_STATUS_RUNNING, &error);
	g_assert_no_error(error);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_RUNNING);
	g_assert_cmpint(got->started_at, ==, t0 + 3000); /* resume does not restart the clock */
	g_clear_pointer(&got, qsim_request_free);

	/* the run ends, with a log */
	{
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

		g_ptr_array_add(chunks,
		                qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (guint8 *)"hi\n", 3));
		g_assert_cmpint(qsim_store_append_logs(fx->store, r->uuid, chunks, &error), ==, 1);
		g_assert_no_error(error);
		g_assert_cmpuint(log.logs, ==, 1);
		g_assert_cmpint(log.last_seq, ==, 1);
	}
	fx->now += 10000;
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent-1", QSIM_STATUS_FAILED,
	                                        TRUE, 3, "exit code 3", &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, QSIM_STATUS_FAILED);
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_FAILED);
	g_assert_true(got->has_exit_code);
	g_assert_cmpint(got->exit_code, ==, 3);
	g_assert_cmpstr(got->error, ==, "exit code 3");
	g_assert_cmpint(got->started_at, ==, t0 + 3000);
	g_assert_cmpint(got->finished_at, ==, t0 + 18000);
	g_assert_cmpint(got->lease_expires_at, ==, 0);
	g_assert_cmpstr(got->agent_id, ==, "agent-1");
	g_clear_pointer(&got, qsim_request_free);
	/* the lease is gone with the run */
	g_assert_false(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);

	/* deletion cascades to the logs */
	g_assert_true(qsim_store_delete_request(fx->store, r->uuid, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(log.deleted, ==, 1);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM request_logs"), ==, 0);
	g_assert_null(qsim_store_get_request(fx->store, r->uuid, 36, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(qsim_store_delete_request(fx->store, r->uuid, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_free(log.last_uuid);
}

static void
test_cancel_race(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) got = NULL;
	QsimStatus status = QSIM_STATUS_PENDING;
	guint active = 99;

	g_clear_pointer(&r, qsim_request_free);
	r = create(fx, "tiny");
	g_clear_pointer(&r, qsim_request_free);
	r = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent-1", &error));
	fx->now += 500;
	got = qsim_store_cancel_request(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_CANCELLED);
	g_assert_cmpstr(got->error, ==, "cancelled by user");
	g_assert_cmpint(got->finished_at, ==, fx->now);
	g_clear_pointer(&got, qsim_request_free);
	/* the agent still holds the VM slot until it has stopped the VM */
	g_assert_true(qsim_store_count_active_vms(fx->store, &active, &error));
	g_assert_cmpuint(active, ==, 1);
	g_assert_true(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, &status, &error));
	g_assert_cmpint(status, ==, QSIM_STATUS_CANCELLED);
	/* a second cancel is a conflict that names the status */
	g_assert_null(qsim_store_cancel_request(fx->store, r->uuid, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "cancelled"));
	g_clear_error(&error);
	/* the agent's late "done" keeps cancelled but records the exit code */
	fx->now += 500;
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent-1", QSIM_STATUS_DONE,
	                                        TRUE, 0, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, QSIM_STATUS_CANCELLED);
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_cmpint(got->status, ==, QSIM_STATUS_CANCELLED);
	g_assert_cmpstr(got->error, ==, "cancelled by user");
	g_assert_true(got->has_exit_code);
	g_assert_cmpint(got->finished_at, ==, fx->now - 500);
	g_assert_cmpint(got->lease_expires_at, ==, 0);
	g_assert_true(qsim_store_count_active_vms(fx->store, &active, &error));
	g_assert_cmpuint(active, ==, 0);
}

/* Two connections: signals stay local, data_version tells the other one */
static void
test_data_version(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) other = qsim_store_open(fx->path, &error);
	guint64 v0 = 0, v1 = 0, v2 = 0;
	SignalLog log = {0};

	g_assert_no_error(error);
	g_signal_connect(fx->store, "request-changed", G_CALLBACK(on_changed), &log);
	g_assert_true(qsim_store_get_data_version(fx->store, &v0, &error));
	g_assert_no_error(error);
	/* our own commit: a signal, and no change of data_version */
	qsim_request_free(create(fx, "tiny"));
	g_assert_cmpuint(log.changed, ==, 1);
	g_assert_true(qsim_store_get_data_version(fx->store, &v1, &error));
	g_assert_cmpuint(v1, ==, v0);
	/* another connection's commit: no signal here, but data_version moves */
	{
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(other, "tiny", "true", 5, &error);

		g_assert_no_error(error);
	}
	g_assert_cmpuint(log.changed, ==, 1);
	g_assert_true(qsim_store_get_data_version(fx->store, &v2, &error));
	/* PostgreSQL: the NOTIFY reaches the LISTEN connection shortly after the
	 * commit, not within it (meson's timeout bounds the wait) */
	while (store_test_is_pg(fx->path) && v2 == v1) {
		g_usleep(1000);
		g_assert_true(qsim_store_get_data_version(fx->store, &v2, &error));
	}
	g_assert_cmpuint(v2, !=, v1);
	g_free(log.last_uuid);
}

static void
on_changed_elsewhere(QsimStore *store, gpointer data)
{
	(*(guint *)data)++;
}

/* Waits (no deadline of its own: meson's test timeout is the bound) for the next
 * "changed-elsewhere" after @seen of them */
static void
wait_changed_elsewhere(const guint *count, guint seen)
{
	while (*count == seen)
		g_main_context_iteration(NULL, TRUE);
}

/* The watch turns another connection's commit into a signal on this one */
static void
test_watch_changes(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) other = qsim_store_open(fx->path, &error);
	guint count = 0;

	g_assert_no_error(error);
	g_signal_connect(fx->store, "changed-elsewhere", G_CALLBACK(on_changed_elsewhere), &count);
	qsim_store_watch_changes(fx->store, 10);
	/* a second watcher with a longer interval shares the timer */
	qsim_store_watch_changes(fx->store, 5000);
	qsim_request_free(create(fx, "tiny"));
	{
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(other, "tiny", "true", 5, &error);

		g_assert_no_error(error);
	}
	wait_changed_elsewhere(&count, 0);
	g_assert_cmpuint(count, ==, 1);
	/* one watcher left: still on, at the short interval */
	qsim_store_unwatch_changes(fx->store);
	{
		g_autoptr(QsimTemplateRecord) r =
		    qsim_store_request_prepare(other, "tiny", "host-a", FALSE, &error);

		g_assert_no_error(error);
	}
	wait_changed_elsewhere(&count, 1);
	g_assert_cmpuint(count, ==, 2);
	qsim_store_unwatch_changes(fx->store);
}

/* Reasons from QEMU or the guest are stored as bounded, valid UTF-8 */
static void
test_reason_sanitized(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) a = create(fx, "tiny");
	g_autoptr(QsimRequest) b = create(fx, "tiny");
	g_autoptr(QsimRequest) got = NULL;
	g_autoptr(GString) long_reason = g_string_new("qemu exited: ");
	QsimStatus status;

	qsim_request_free(qsim_store_claim_next(fx->store, "ag", 1000, 0, &error));
	qsim_request_free(qsim_store_claim_next(fx->store, "ag", 1000, 0, &error));
	g_assert_true(qsim_store_finish_request(fx->store, a->uuid, "ag", QSIM_STATUS_FAILED, FALSE,
	                                        0, "bad \xff byte", &status, &error));
	g_assert_no_error(error);
	got = qsim_store_get_request(fx->store, a->uuid, 36, &error);
	g_assert_true(g_utf8_validate(got->error, -1, NULL));
	g_assert_true(g_str_has_prefix(got->error, "bad "));
	g_assert_true(g_str_has_suffix(got->error, " byte"));
	g_clear_pointer(&got, qsim_request_free);
	/* 4 KiB cap, cut on a character boundary (each "é" is 2 bytes) */
	while (long_reason->len < 10000)
		g_string_append(long_reason, "\xc3\xa9");
	g_assert_true(qsim_store_finish_request(fx->store, b->uuid, "ag", QSIM_STATUS_FAILED, FALSE,
	                                        0, long_reason->str, &status, &error));
	got = qsim_store_get_request(fx->store, b->uuid, 36, &error);
	g_assert_true(g_utf8_validate(got->error, -1, NULL));
	g_assert_cmpuint(strlen(got->error), <=, 4096);
	g_assert_cmpuint(strlen(got->error), >=, 4095);
	g_assert_true(g_str_has_prefix(got->error, "qemu exited: "));
}

/* A write lock held past the 5 s busy timeout is QSIM_ERROR_BUSY, and nothing breaks */
static void
test_busy(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	sqlite3 *db = NULL;

	if (store_test_skip_on_pg(fx, "SQLite's write lock; PostgreSQL locks rows"))
		return;
	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
	r = qsim_store_create_request(fx->store, "tiny", "true", 5, &error);
	g_assert_null(r);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_assert_nonnull(strstr(error->message, "locked"));
	g_clear_error(&error);
	/* reads still work while another connection writes (WAL) */
	g_assert_true(qsim_store_ping(fx->store, &error));
	g_assert_no_error(error);
	g_assert_cmpint(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	r = qsim_store_create_request(fx->store, "tiny", "true", 5, &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
}

static void
test_delete_active_refused(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = create(fx, "tiny");

	g_assert_false(qsim_store_delete_request(fx->store, r->uuid, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "pending"));
	g_clear_error(&error);
	g_assert_false(qsim_store_delete_request(fx->store, "x", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

static void
test_claim_capacity(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) claimed =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);
	QsimRequest *r;
	QsimStatus status = QSIM_STATUS_PENDING;
	guint active = 0;

	for (gint i = 0; i < 5; i++)
		qsim_request_free(create(fx, "tiny"));
	/* a held pending request holds no slot and is never claimed */
	{
		g_autoptr(QsimRequest) held = create(fx, "tiny");
		g_autoptr(QsimRequest) got =
		    qsim_store_set_status(fx->store, held->uuid, QSIM_STATUS_HOLD, &error);

		g_assert_no_error(error);
		g_assert_cmpint(got->held_from, ==, QSIM_STATUS_PENDING);
	}
	while ((r = qsim_store_claim_next(fx->store, "a", LEASE_MS, 2, &error)) != NULL)
		g_ptr_array_add(claimed, r);
	g_assert_no_error(error);
	g_assert_cmpuint(claimed->len, ==, 2);
	g_assert_true(qsim_store_count_active_vms(fx->store, &active, &error));
	g_assert_cmpuint(active, ==, 2);

	/* a hold keeps the VM (paused) and its slot */
	r = g_ptr_array_index(claimed, 0);
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "a", &error));
	qsim_request_free(qsim_store_set_status(fx->store, r->uuid, QSIM_STATUS_HOLD, &error));
	g_assert_no_error(error);
	g_assert_null(qsim_store_claim_next(fx->store, "a", LEASE_MS, 2, &error));
	g_assert_no_error(error);

	/* finishing one frees a slot */
	r = g_ptr_array_index(claimed, 1);
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "a", QSIM_STATUS_FAILED, FALSE,
	                                        0, "qemu exited: boom", &status, &error));
	r = qsim_store_claim_next(fx->store, "a", LEASE_MS, 2, &error);
	g_assert_nonnull(r);
	g_ptr_array_add(claimed, r);
	g_assert_null(qsim_store_claim_next(fx->store, "a", LEASE_MS, 2, &error));
	/* an expired lease does not count: its agent is gone */
	fx->now += LEASE_MS;
	g_assert_true(qsim_store_count_active_vms(fx->store, &active, &error));
	g_assert_cmpuint(active, ==, 0);
	r = qsim_store_claim_next(fx->store, "a", LEASE_MS, 2, &error);
	g_assert_nonnull(r);
	g_ptr_array_add(claimed, r);
	/* 0 = no cap: the remaining two pending go, the held one stays */
	r = qsim_store_claim_next(fx->store, "b", LEASE_MS, 0, &error);
	g_assert_nonnull(r);
	g_ptr_array_add(claimed, r);
	g_assert_null(qsim_store_claim_next(fx->store, "b", LEASE_MS, 0, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(claimed->len, ==, 5);

	/* argument checks */
	g_assert_null(qsim_store_claim_next(fx->store, "", LEASE_MS, 0, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_null(qsim_store_claim_next(fx->store, "a", 0, 0, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

static void
test_leases_recovery(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) expired = NULL;
	g_autoptr(QsimRequest) booting = NULL;
	g_autoptr(QsimRequest) running = NULL;
	g_autoptr(QsimRequest) got = NULL;
	QsimStatus status = QSIM_STATUS_PENDING;

	qsim_request_free(create(fx, "tiny"));
	qsim_request_free(create(fx, "tiny"));
	qsim_request_free(create(fx, "tiny"));
	booting = qsim_store_claim_next(fx->store, "dead", 1000, 0, &error);
	running = qsim_store_claim_next(fx->store, "dead", 2000, 0, &error);
	g_assert_true(qsim_store_mark_running(fx->store, running->uuid, "dead", &error));
	expired = qsim_store_list_expired_leases(fx->store, fx->now + 999, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(expired->len, ==, 0);
	g_clear_pointer(&expired, g_ptr_array_unref);
	fx->now += 5000;
	expired = qsim_store_list_expired_leases(fx->store, qsim_store_now_ms(fx->store), &error);
	g_assert_cmpuint(expired->len, ==, 2);
	g_assert_cmpstr(((QsimRequest *)g_ptr_array_index(expired, 0))->uuid, ==, booting->uuid);
	g_assert_cmpstr(((QsimRequest *)g_ptr_array_index(expired, 1))->uuid, ==, running->uuid);

	/* what each agent still holds, expired or not */
	{
		g_autoptr(GPtrArray) mine = qsim_store_list_leases(fx->store, "dead", &error);
		g_autoptr(GPtrArray) all = qsim_store_list_leases(fx->store, NULL, &error);
		g_autoptr(GPtrArray) none = qsim_store_list_leases(fx->store, "other", &error);

		g_assert_no_error(error);
		g_assert_cmpuint(mine->len, ==, 2);
		g_assert_cmpstr(((QsimRequest *)g_ptr_array_index(mine, 0))->uuid, ==,
		                booting->uuid);
		g_assert_cmpuint(all->len, ==, 2);
		g_assert_cmpuint(none->len, ==, 0);
	}
	/* only the expected agent's claim is recovered */
	g_assert_false(qsim_store_recover_request(fx->store, booting->uuid, "other", TRUE,
	                                          "agent lost", &status, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	/* booting: back to pending, once */
	g_assert_true(qsim_store_recover_request(fx->store, booting->uuid, "dead", TRUE,
	                                         "agent lost", &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, QSIM_STATUS_PENDING);
	got = qsim_store_get_request(fx->store, booting->uuid, 36, &error);
	g_assert_cmpint(got->lease_expires_at, ==, 0);
	g_assert_null(got->agent_id);
	g_assert_cmpuint(got->attempts, ==, 1);
	g_clear_pointer(&got, qsim_request_free);
	/* a second recoverer finds nothing to do */
	g_assert_false(qsim_store_recover_request(fx->store, booting->uuid, NULL, TRUE,
	                                          "agent lost", &status, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	/* running: the commands may have had effects, so it fails, even if retry is asked */
	g_assert_true(qsim_store_recover_request(fx->store, running->uuid, NULL, TRUE, "agent lost",
	                                         &status, &error));
	g_assert_cmpint(status, ==, QSIM_STATUS_FAILED);
	got = qsim_store_get_request(fx->store, running->uuid, 36, &error);
	g_assert_cmpstr(got->error, ==, "agent lost");
	g_assert_cmpint(got->finished_at, ==, fx->now);
	g_clear_pointer(&got, qsim_request_free);
	/* the agent comes back late and cannot overwrite the outcome */
	g_assert_false(qsim_store_finish_request(fx->store, running->uuid, "dead", QSIM_STATUS_DONE,
	                                         TRUE, 0, NULL, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "failed"));
	g_clear_error(&error);

	/* the retried request is claimed again (it is now the oldest pending) and counts
	 * attempt 2; a second loss fails it for good */
	g_clear_pointer(&got, qsim_request_free);
	got = qsim_store_claim_next(fx->store, "new", 1000, 0, &error);
	g_assert_cmpstr(got->uuid, ==, booting->uuid);
	g_assert_cmpuint(got->attempts, ==, 2);
	g_assert_true(qsim_store_recover_request(fx->store, got->uuid, "new", TRUE, "agent lost",
	                                         &status, &error));
	g_assert_cmpint(status, ==, QSIM_STATUS_FAILED);
	g_clear_pointer(&expired, g_ptr_array_unref);
	expired = qsim_store_list_expired_leases(fx->store, fx->now + 1000000, &error);
	g_assert_cmpuint(expired->len, ==, 0);
	g_clear_pointer(&expired, g_ptr_array_unref);
	expired = qsim_store_list_leases(fx->store, NULL, &error);
	g_assert_cmpuint(expired->len, ==, 0);
}

/* Builds a request in one of the states of the matrix, through the store */
typedef enum {
	S_PENDING,
	S_ACK,
	S_RUNNING,
	S_HOLD_PENDING,
	S_HOLD_RUNNING,
	S_DONE,
	S_FAILED,
	S_CANCELLED_PENDING,
	S_CANCELLED_RUNNING, /* cancelled while the agent still holds the VM */
	S_LAST
} Scenario;

static QsimRequest *
make_state(StoreFixture *fx, Scenario s)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = create(fx, "tiny");
	gboolean owned = s != S_PENDING && s != S_HOLD_PENDING && s != S_CANCELLED_PENDING;
	gboolean run = s == S_RUNNING || s == S_HOLD_RUNNING || s == S_DONE || s == S_FAILED ||
	               s == S_CANCELLED_RUNNING;

	if (owned) {
		g_autoptr(QsimRequest) c =
		    qsim_store_claim_next(fx->store, "ag", LEASE_MS, 0, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(c->uuid, ==, r->uuid);
	}
	if (run)
		g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "ag", &error));
	if (s == S_HOLD_PENDING || s == S_HOLD_RUNNING)
		qsim_request_free(
		    qsim_store_set_status(fx->store, r->uuid, QSIM_STATUS_HOLD, &error));
	if (s == S_CANCELLED_PENDING || s == S_CANCELLED_RUNNING)
		qsim_request_free(qsim_store_cancel_request(fx->store, r->uuid, &error));
	if (s == S_DONE || s == S_FAILED)
		g_assert_true(qsim_store_finish_request(
		    fx->store, r->uuid, "ag", s == S_DONE ? QSIM_STATUS_DONE : QSIM_STATUS_FAILED,
		    TRUE, s == S_DONE ? 0 : 1, NULL, NULL, &error));
	g_assert_no_error(error);
	return qsim_store_get_request(fx->store, r->uuid, 36, NULL);
}

/* All cases share one database: a request left claimable would be claimed by the next
 * case's make_state(), so cancel it */
static void
release_pending(StoreFixture *fx, const gchar *uuid)
{
	g_autoptr(QsimRequest) r = qsim_store_get_request(fx->store, uuid, 36, NULL);

	if (r->status == QSIM_STATUS_PENDING || r->status == QSIM_STATUS_HOLD)
		qsim_request_free(qsim_store_cancel_request(fx->store, uuid, NULL));
}

typedef enum {
	OP_SET_FIRST,
	OP_SET_LAST = OP_SET_FIRST + QSIM_STATUS_COUNT - 1,
	OP_MARK_RUNNING,
	OP_FINISH_DONE,
	OP_FINISH_FAILED,
	OP_FINISH_CANCELLED,
	OP_RECOVER_RETRY,
	OP_RECOVER_FAIL,
	OP_LAST
} Op;

static void
check_op(StoreFixture *fx, Scenario s, Op op, guint *n_ok, guint *n_conflict)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) before = NULL;
	g_autoptr(QsimRequest) after = NULL;
	QsimStatus from, want = QSIM_STATUS_PENDING;
	gboolean owned, ok, expect_ok;
	QsimStatus got = QSIM_STATUS_PENDING;

	before = make_state(fx, s);
	from = before->status;
	owned = g_strcmp0(before->agent_id, "ag") == 0;
	if (op <= OP_SET_LAST) {
		QsimStatus to = (QsimStatus)(op - OP_SET_FIRST);
		g_autoptr(QsimRequest) r =
		    qsim_store_set_status(fx->store, before->uuid, to, &error);

		if (to == QSIM_STATUS_ACKNOWLEDGED || to == QSIM_STATUS_DONE ||
		    to == QSIM_STATUS_FAILED) {
			/* not a user's to set: rejected before the table is asked */
			g_assert_null(r);
			g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
			release_pending(fx, before->uuid);
			return;
		}
		expect_ok = qsim_status_check_transition(from, before->held_from, to,
		                                         QSIM_STATUS_ACTOR_USER, NULL);
		ok = r != NULL;
		want = to;
	} else if (op == OP_MARK_RUNNING) {
		expect_ok = owned && qsim_status_check_transition(from, before->held_from,
		                                                  QSIM_STATUS_RUNNING,
		                                                  QSIM_STATUS_ACTOR_AGENT, NULL);
		ok = qsim_store_mark_running(fx->store, before->uuid, "ag", &error);
		want = QSIM_STATUS_RUNNING;
	} else if (op <= OP_FINISH_CANCELLED) {
		QsimStatus final = op == OP_FINISH_DONE     ? QSIM_STATUS_DONE
		                   : op == OP_FINISH_FAILED ? QSIM_STATUS_FAILED
		                                            : QSIM_STATUS_CANCELLED;

		/* a user's cancel wins over the agent's outcome */
		want = from == QSIM_STATUS_CANCELLED ? QSIM_STATUS_CANCELLED : final;
		expect_ok = owned && (from == QSIM_STATUS_CANCELLED ||
		                      qsim_status_check_transition(from, before->held_from, final,
		                                                   QSIM_STATUS_ACTOR_AGENT, NULL));
		ok = qsim_store_finish_request(fx->store, before->uuid, "ag", final, TRUE, 0, "x",
		                               &got, &error);
		if (ok)
			g_assert_cmpint(got, ==, want);
	} else {
		gboolean retry = op == OP_RECOVER_RETRY;

		/* only a held lease can be recovered */
		expect_ok = before->lease_expires_at != 0;
		want = qsim_status_is_final(from)                  ? from
		       : retry && from == QSIM_STATUS_ACKNOWLEDGED ? QSIM_STATUS_PENDING
		                                                   : QSIM_STATUS_FAILED;
		ok = qsim_store_recover_request(fx->store, before->uuid, NULL, retry, "agent lost",
		                                &got, &error);
		if (ok)
			g_assert_cmpint(got, ==, want);
	}
	after = qsim_store_get_request(fx->store, before->uuid, 36, NULL);
	if (ok != expect_ok)
		g_error("scenario %d op %d from %s: got %d want %d (%s)", s, op,
		        qsim_status_to_string(from), ok, expect_ok,
		        error != NULL ? error->message : "no error");
	if (ok) {
		g_assert_no_error(error);
		g_assert_cmpint(after->status, ==, want);
		(*n_ok)++;
	} else {
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
		g_assert_nonnull(strstr(error->message, qsim_status_to_string(from)));
		/* a refused change leaves the row exactly as it was */
		g_assert_cmpint(after->status, ==, before->status);
		g_assert_cmpint(after->updated_at, ==, before->updated_at);
		g_assert_cmpint(after->lease_expires_at, ==, before->lease_expires_at);
		(*n_conflict)++;
	}
	release_pending(fx, before->uuid);
}

/* Every operation from every state, against the transition table */
static void
test_transitions_through_store(StoreFixture *fx, gconstpointer data)
{
	guint n_ok = 0, n_conflict = 0;

	for (Scenario s = 0; s < S_LAST; s++) {
		for (Op op = 0; op < OP_LAST; op++)
			check_op(fx, s, op, &n_ok, &n_conflict);
	}
	g_test_message("%u allowed, %u refused operations", n_ok, n_conflict);
	g_assert_cmpuint(n_ok, >=, 25);
	g_assert_cmpuint(n_conflict, >=, 40);
}

/* Stats on rows with known timestamps */
static void
test_stats(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStats) stats = NULL;
	gint64 t0 = fx->now;

	stats = qsim_store_get_stats(fx->store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(stats->total, ==, 0);
	g_assert_false(stats->has_oldest_pending);
	g_assert_false(stats->has_queue_latency);
	g_assert_false(stats->has_run_latency);
	g_clear_pointer(&stats, qsim_stats_free);

	/* 20 requests: request i waits (i+1) s in the queue and runs (i+1)*100 ms */
	for (gint i = 0; i < 20; i++) {
		g_autoptr(QsimRequest) r = NULL;

		fx->now = t0;
		qsim_request_free(create(fx, "tiny"));
		fx->now = t0 + (i + 1) * 1000;
		r = qsim_store_claim_next(fx->store, "a", LEASE_MS, 0, &error);
		g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "a", &error));
		fx->now += (i + 1) * 100;
		g_assert_true(qsim_store_finish_request(
		    fx->store, r->uuid, "a", i % 4 == 0 ? QSIM_STATUS_FAILED : QSIM_STATUS_DONE,
		    TRUE, i % 4 == 0, NULL, NULL, &error));
	}
	/* plus one pending since t0 + 60 s, one cancelled before it started, one running */
	fx->now = t0 + 60000;
	qsim_request_free(create(fx, "tiny"));
	{
		g_autoptr(QsimRequest) a = create(fx, "tiny");
		g_autoptr(QsimRequest) b = NULL;

		qsim_request_free(qsim_store_cancel_request(fx->store, a->uuid, &error));
		qsim_request_free(create(fx, "tiny"));
		b = qsim_store_claim_next(fx->store, "b", LEASE_MS, 0, &error);
		g_assert_true(qsim_store_mark_running(fx->store, b->uuid, "b", &error));
	}
	fx->now = t0 + 80000;
	stats = qsim_store_get_stats(fx->store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(stats->total, ==, 23);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_DONE], ==, 15);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_FAILED], ==, 5);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_CANCELLED], ==, 1);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_PENDING], ==, 1);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_RUNNING], ==, 1);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_HOLD], ==, 0);
	g_assert_cmpuint(stats->active_vms, ==, 1);
	g_assert_cmpuint(stats->active_agents, ==, 1);
	g_assert_true(stats->has_oldest_pending);
	g_assert_cmpint(stats->oldest_pending_age_ms, ==, 20000);
	/* nearest rank over 20 samples: p50 is the 10th, p95 the 19th */
	g_assert_true(stats->has_queue_latency);
	g_assert_cmpint(stats->queue_p50_ms, ==, 10000);
	g_assert_cmpint(stats->queue_p95_ms, ==, 19000);
	g_assert_true(stats->has_run_latency);
	g_assert_cmpint(stats->run_p50_ms, ==, 1000);
	g_assert_cmpint(stats->run_p95_ms, ==, 1900);
}

static void
test_percentile(void)
{
	const gint64 one[] = {7};
	const gint64 four[] = {1, 2, 3, 4};
	gint64 hundred[100];

	for (gint i = 0; i < 100; i++)
		hundred[i] = i + 1;
	g_assert_cmpint(qsim_stats_percentile(one, 1, 50), ==, 7);
	g_assert_cmpint(qsim_stats_percentile(one, 1, 95), ==, 7);
	g_assert_cmpint(qsim_stats_percentile(four, 4, 50), ==, 2);
	g_assert_cmpint(qsim_stats_percentile(four, 4, 95), ==, 4);
	g_assert_cmpint(qsim_stats_percentile(four, 4, 100), ==, 4);
	g_assert_cmpint(qsim_stats_percentile(hundred, 100, 50), ==, 50);
	g_assert_cmpint(qsim_stats_percentile(hundred, 100, 95), ==, 95);
	g_assert_cmpint(qsim_stats_percentile(hundred, 100, 1), ==, 1);
}

/* A lease that ends within the margin, or has ended, is not renewed: its holder is
 * stopping its VM by then, and a renewal that was held up must not revive it */
static void
test_lease_margin(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	QsimStatus status = QSIM_STATUS_PENDING;

	r = qsim_store_create_request(fx->store, "tiny", "true", 5, &error);
	g_assert_no_error(error);
	claimed = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);
	g_assert_no_error(error);
	g_assert_nonnull(claimed);
	/* just outside the margin: renewed, for a whole lease from now */
	fx->now += LEASE_MS - QSIM_STORE_LEASE_MARGIN_MS;
	g_assert_true(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, &status, &error));
	g_assert_no_error(error);
	/* inside it: refused, and the lease is left as it was */
	fx->now += LEASE_MS - QSIM_STORE_LEASE_MARGIN_MS + 1;
	g_assert_false(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, &status, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "under a second"));
	g_clear_error(&error);
	g_clear_pointer(&claimed, qsim_request_free);
	claimed = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_no_error(error);
	g_assert_cmpint(claimed->lease_expires_at, ==, fx->now + QSIM_STORE_LEASE_MARGIN_MS - 1);
	/* past it */
	fx->now += QSIM_STORE_LEASE_MARGIN_MS;
	g_assert_false(
	    qsim_store_renew_lease(fx->store, r->uuid, "agent-1", LEASE_MS, &status, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "has ended"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/migrate/empty", test_migrate_empty);
	ADD("/qsim/store/migrate/future-refused", test_migrate_future_refused);
	/* SQLite files: their migrations from old versions, paths that cannot open */
	if (!qsim_pg_test_wanted()) {
		g_test_add_func("/qsim/store/migrate/failure-keeps-data",
		                test_migrate_failure_keeps_data);
		g_test_add_func("/qsim/store/migrate/from-v1-fixture",
		                test_migrate_from_v1_fixture);
		g_test_add_func("/qsim/store/open-errors", test_open_errors);
	}
	ADD("/qsim/store/create-get", test_create_get);
	ADD("/qsim/store/output-truncated", test_output_truncated);
	ADD("/qsim/store/partial-uuid", test_partial_uuid);
	ADD("/qsim/store/list", test_list);
	ADD("/qsim/store/lifecycle", test_lifecycle);
	ADD("/qsim/store/cancel-race", test_cancel_race);
	ADD("/qsim/store/delete-active-refused", test_delete_active_refused);
	ADD("/qsim/store/data-version", test_data_version);
	ADD("/qsim/store/watch-changes", test_watch_changes);
	ADD("/qsim/store/reason-sanitized", test_reason_sanitized);
	ADD("/qsim/store/busy", test_busy);
	ADD("/qsim/store/claim-capacity", test_claim_capacity);
	ADD("/qsim/store/leases-recovery", test_leases_recovery);
	ADD("/qsim/store/lease-margin", test_lease_margin);
	ADD("/qsim/store/transitions", test_transitions_through_store);
	ADD("/qsim/store/stats", test_stats);
	g_test_add_func("/qsim/store/stats/percentile", test_percentile);
#undef ADD
	return g_test_run();
}
