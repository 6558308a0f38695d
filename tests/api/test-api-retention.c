#define G_LOG_DOMAIN "qsim-test"
#define _GNU_SOURCE /* unshare() */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api-fixture.h"
#include "store/qsim-store.h"

/* Set by main(): why the tmpfs test cannot run here, or NULL when it can */
static gchar *tmpfs_skip_reason;

static gint64 fake_now = 1764000000000; /* 2025-11-24 */

static gint64
fake_clock(gpointer user_data)
{
	return fake_now;
}

static gint64
member_int(ApiResponse *r, const gchar *name)
{
	g_assert_nonnull(r->json);
	return json_object_get_int_member(json_node_get_object(r->json), name);
}

static gboolean
member_bool(ApiResponse *r, const gchar *name)
{
	g_assert_nonnull(r->json);
	return json_object_get_boolean_member(json_node_get_object(r->json), name);
}

static void
assert_error(ApiResponse *r, guint status, const gchar *code)
{
	g_assert_cmpuint(r->status, ==, status);
	g_assert_cmpstr(api_response_error_code(r), ==, code);
}

/* A request that ran and ended with @final, by the store's clock */
static gchar *
finished_request(ApiFixture *fx, QsimStatus final)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	g_autoptr(QsimRequest) claimed = NULL;
	QsimStatus stored;

	g_assert_no_error(error);
	claimed = qsim_store_claim_next(fx->store, "agent", 60000, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(claimed->uuid, ==, r->uuid);
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent", &error));
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent", final, TRUE,
	                                        final == QSIM_STATUS_DONE ? 0 : 1, NULL, &stored,
	                                        &error));
	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

static guint
count_requests(ApiFixture *fx)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/requests?limit=1000", NULL, NULL, NULL);

	g_assert_cmpuint(r->status, ==, 200);
	return json_array_get_length(json_node_get_array(r->json));
}

static void
purge_expect(ApiFixture *fx, const gchar *query, guint deleted, gboolean more)
{
	g_autofree gchar *path = g_strdup_printf("/requests?%s", query);
	g_autoptr(ApiResponse) r = api_request(fx, "DELETE", path, NULL, NULL, NULL);

	g_assert_cmpuint(r->status, ==, 200);
	g_assert_cmpint(member_int(r, "deleted"), ==, deleted);
	g_assert_cmpint(member_bool(r, "more"), ==, more);
	g_assert_nonnull(api_response_string(r, "before"));
}

static void
test_bulk_delete(ApiFixture *fx, gconstpointer data)
{
	const gchar *bad[] = {
	    "",                         /* before is required */
	    "before=7",                 /* a bare number: seconds or days? */
	    "before=7x",                /* no such unit */
	    "before=yesterday",         /* not a time */
	    "before=1d&status=running", /* active requests are never bulk deleted */
	    "before=1d&status=bogus",   /* unknown status */
	    "before=1d&stauts=failed",  /* a typo must not widen the delete */
	    "before=1d&limit=0",        /* out of range */
	    "before=1d&limit=1001",     /* over the per-call bound */
	    "before=1d&limit=ten",      /* not a number */
	};
	g_autofree gchar *running = NULL;
	g_autofree gchar *iso = NULL;
	g_autoptr(GDateTime) later = NULL;
	g_autoptr(GError) error = NULL;

	qsim_store_set_clock(fx->store, fake_clock, NULL);
	for (guint i = 0; i < 5; i++)
		g_free(finished_request(fx, QSIM_STATUS_DONE));
	for (guint i = 0; i < 3; i++)
		g_free(finished_request(fx, QSIM_STATUS_FAILED));
	/* two days later: two more finish, one runs, one waits */
	fake_now += 2 * 24 * 3600 * 1000LL;
	g_free(finished_request(fx, QSIM_STATUS_DONE));
	g_free(finished_request(fx, QSIM_STATUS_CANCELLED));
	{
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(fx->store, "tiny", "sleep 9", 30, &error);
		g_autoptr(QsimRequest) c = qsim_store_claim_next(fx->store, "a", 60000, 0, &error);

		g_assert_no_error(error);
		running = g_strdup(c->uuid);
		g_assert_true(qsim_store_mark_running(fx->store, running, "a", &error));
	}
	{
		g_autoptr(QsimRequest) waiting =
		    qsim_store_create_request(fx->store, "tiny", "true", 30, &error);

		g_assert_no_error(error);
	}
	g_assert_cmpuint(count_requests(fx), ==, 12);

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *path = g_strdup_printf("/requests?%s", bad[i]);
		g_autoptr(ApiResponse) r = api_request(fx, "DELETE", path, NULL, NULL, NULL);

		g_test_message("DELETE %s", path);
		assert_error(r, 400, "bad_request");
	}
	g_assert_cmpuint(count_requests(fx), ==, 12);

	/* by status, then the rest in bounded calls */
	purge_expect(fx, "before=1d&status=failed", 3, FALSE);
	purge_expect(fx, "before=1d&limit=2", 2, TRUE);
	purge_expect(fx, "before=1d&limit=2", 2, TRUE);
	purge_expect(fx, "before=1d&limit=2", 1, FALSE);
	purge_expect(fx, "before=1d", 0, FALSE);
	g_assert_cmpuint(count_requests(fx), ==, 4);

	/* an ISO-8601 time: everything finished until a second from now; active ones stay */
	later = g_date_time_new_from_unix_utc((fake_now + 1000) / 1000);
	iso = g_date_time_format_iso8601(later);
	{
		g_autofree gchar *escaped = g_uri_escape_string(iso, NULL, FALSE);
		g_autofree gchar *q = g_strdup_printf("before=%s", escaped);

		purge_expect(fx, q, 2, FALSE);
	}
	g_assert_cmpuint(count_requests(fx), ==, 2);
	{
		g_autofree gchar *path = g_strdup_printf("/requests/%s", running);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", path, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
	}
}

/* What the low-disk checks act on, made while there is still space */
typedef struct {
	gchar *done;
	gchar *pending_path;
	gchar *pending2_status;
} LowDiskRows;

static void
low_disk_rows_make(ApiFixture *fx, LowDiskRows *rows)
{
	g_autofree gchar *failed = finished_request(fx, QSIM_STATUS_FAILED);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) pending = NULL;
	g_autoptr(QsimRequest) pending2 = NULL;

	/* finished first: finished_request() claims the oldest pending one */
	rows->done = finished_request(fx, QSIM_STATUS_DONE);
	pending = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	pending2 = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	g_assert_no_error(error);
	rows->pending_path = g_strdup_printf("/requests/%s", pending->uuid);
	rows->pending2_status = g_strdup_printf("/requests/%s/status", pending2->uuid);
}

static void
low_disk_rows_clear(LowDiskRows *rows)
{
	g_free(rows->done);
	g_free(rows->pending_path);
	g_free(rows->pending2_status);
}

/* Below MIN_FREE_DISK: submits get 507, /health is degraded, and everything
 * that frees space still works (a cancel, a delete, a bulk delete) */
static void
check_low_disk(ApiFixture *fx, LowDiskRows *rows, guint expect_purged)
{
	g_autofree gchar *done_path = g_strdup_printf("/requests/%s", rows->done);
	g_autoptr(ApiResponse) post = NULL;
	g_autoptr(ApiResponse) health = NULL;
	g_autoptr(ApiResponse) cancel = NULL;
	g_autoptr(ApiResponse) cancel2 = NULL;
	g_autoptr(ApiResponse) del = NULL;
	JsonObject *h;
	JsonArray *reasons;

	post = api_request(fx, "POST", "/requests", "application/json",
	                   "{\"vm_name\":\"tiny\",\"commands\":\"true\"}", NULL);
	assert_error(post, 507, "insufficient_storage");
	g_assert_nonnull(
	    strstr(json_object_get_string_member(
	               json_object_get_object_member(json_node_get_object(post->json), "error"),
	               "message"),
	           "MIN_FREE_DISK"));

	health = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_assert_cmpuint(health->status, ==, 200);
	h = json_node_get_object(health->json);
	g_assert_cmpstr(json_object_get_string_member(h, "status"), ==, "degraded");
	g_assert_cmpstr(json_object_get_string_member(h, "database"), ==, "ok");
	reasons = json_object_get_array_member(h, "reasons");
	g_assert_cmpuint(json_array_get_length(reasons), ==, 1);
	g_assert_nonnull(strstr(json_array_get_string_element(reasons, 0), "MIN_FREE_DISK"));
	g_assert_cmpstr(
	    json_object_get_string_member(json_object_get_object_member(h, "disk"), "status"), ==,
	    "low");

	cancel = api_request(fx, "DELETE", rows->pending_path, NULL, NULL, NULL);
	g_assert_cmpuint(cancel->status, ==, 200);
	g_assert_cmpstr(api_response_string(cancel, "status"), ==, "cancelled");
	cancel2 = api_request(fx, "PUT", rows->pending2_status, "application/json",
	                      "{\"status\":\"cancelled\"}", NULL);
	g_assert_cmpuint(cancel2->status, ==, 200);
	del = api_request(fx, "DELETE", done_path, NULL, NULL, NULL);
	g_assert_cmpuint(del->status, ==, 204);
	purge_expect(fx, "before=0", expect_purged, FALSE);
	g_assert_cmpuint(count_requests(fx), ==, 0);
}

static void
test_reserve_huge(ApiFixture *fx, gconstpointer data)
{
	LowDiskRows rows;

	low_disk_rows_make(fx, &rows);
	check_low_disk(fx, &rows, 3);
	low_disk_rows_clear(&rows);
}

static guint64
free_bytes(const gchar *dir)
{
	struct statvfs st;

	g_assert_cmpint(statvfs(dir, &st), ==, 0);
	return (guint64)st.f_bavail * st.f_frsize;
}

/* A real small file system, filled until below the reserve */
static void
test_tmpfs_full(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *filler = NULL;
	g_autoptr(ApiResponse) health = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = NULL;
	g_autoptr(QsimRequest) cancelled = NULL;
	LowDiskRows rows;
	guint64 have;
	gint fd;

	if (tmpfs_skip_reason != NULL) {
		g_test_skip(tmpfs_skip_reason);
		return;
	}
	qsim_disk_reserve_set_cache_ms(qsim_api_server_get_disk_reserve(fx->server), 0);
	/* some history with logs, as a database that filled its disk would have */
	for (guint i = 0; i < 4; i++) {
		g_autofree gchar *u = finished_request(fx, QSIM_STATUS_DONE);
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
		g_autofree guint8 *bytes = g_malloc0(64 * 1024);

		g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, bytes, 64 * 1024));
		g_assert_cmpint(qsim_store_append_logs(fx->store, u, chunks, &error), ==, 1);
	}
	low_disk_rows_make(fx, &rows);
	uuid = api_submit(fx, "true");
	cancelled = qsim_store_cancel_request(fx->store, uuid, &error);
	g_assert_nonnull(cancelled);
	health = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_assert_cmpstr(api_response_string(health, "status"), ==, "ok");

	/* fill the file system up to 512 KiB free: below the 1 MiB reserve */
	have = free_bytes(fx->tmpdir);
	g_assert_cmpuint(have, >, 1024 * 1024);
	filler = g_build_filename(fx->tmpdir, "filler", NULL);
	fd = g_open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(posix_fallocate(fd, 0, (off_t)(have - 512 * 1024)), ==, 0);
	g_assert_cmpint(close(fd), ==, 0);
	g_assert_cmpuint(free_bytes(fx->tmpdir), <, 1024 * 1024);

	/* 4 + the cancelled submit + check_low_disk's 3 */
	check_low_disk(fx, &rows, 8);
	low_disk_rows_clear(&rows);

	/* space back: submits work again */
	g_assert_cmpint(g_unlink(filler), ==, 0);
	{
		g_autoptr(ApiResponse) ok = api_request(fx, "GET", "/health", NULL, NULL, NULL);
		g_autofree gchar *again = api_submit(fx, "true");

		g_assert_cmpstr(api_response_string(ok, "status"), ==, "ok");
	}
}

/* A private mount namespace with a 6 MiB tmpfs as TMPDIR, so the fixture's
 * database lives on a file system we can fill without touching the host's */
static void
setup_tmpfs(void)
{
	g_autofree gchar *dir = g_build_filename(
	    g_getenv("TMPDIR") != NULL ? g_getenv("TMPDIR") : "/tmp", "qsim-tmpfs-XXXXXX", NULL);

	if (unshare(CLONE_NEWNS) != 0) {
		tmpfs_skip_reason =
		    g_strdup_printf("unshare(CLONE_NEWNS) is not permitted: %s", g_strerror(errno));
		return;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 || mkdtemp(dir) == NULL ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=6m,mode=0700") != 0) {
		tmpfs_skip_reason =
		    g_strdup_printf("cannot mount a private tmpfs: %s", g_strerror(errno));
		return;
	}
	g_setenv("TMPDIR", dir, TRUE);
}

int
main(int argc, char **argv)
{
	static const gchar *const huge[] = {"QSIM_MIN_FREE_DISK=1000T", NULL};
	static const gchar *const one_mib[] = {"QSIM_MIN_FREE_DISK=1M", NULL};
	static const ApiFixtureOptions huge_opts = {.env = huge};
	static const ApiFixtureOptions tmpfs_opts = {.env = one_mib};

	/* before anything asks GLib for the temporary directory */
	setup_tmpfs();
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/api/retention/bulk-delete", ApiFixture, NULL, api_fixture_setup,
	           test_bulk_delete, api_fixture_teardown);
	g_test_add("/qsim/api/disk/reserve-huge", ApiFixture, &huge_opts, api_fixture_setup,
	           test_reserve_huge, api_fixture_teardown);
	g_test_add("/qsim/api/disk/tmpfs-full", ApiFixture, &tmpfs_opts, api_fixture_setup,
	           test_tmpfs_full, api_fixture_teardown);
	return g_test_run();
}
