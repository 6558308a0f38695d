#include "config.h"

#include <string.h>

#include <signal.h>
#include <sys/wait.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

/*
 * Several PROCESSES, each with its own connection to one database file, claim
 * from the same queue at once. Each child is this binary run with
 * "--claim-child"; it writes the UUIDs it claimed to its own file.
 */

#define N_CHILDREN 4
#define N_REQUESTS 12000 /* 4 processes x 3000 */
#define LEASE_MS (3600 * 1000)

/* Child: claim until nothing is left (or the cap stops us), one UUID per line */
static int
claim_child(const gchar *db_path, const gchar *agent_id, const gchar *out_path,
            const gchar *go_path, guint max_active)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(GString) out = g_string_new(NULL);
	guint busy = 0;
	guint tries = 0;

	/* start together, so the opens and the claims really interleave */
	while (!g_file_test(go_path, G_FILE_TEST_EXISTS))
		g_usleep(1000);
	store = qsim_store_open(db_path, &error);
	if (store == NULL) {
		g_printerr("child %s: %s\n", agent_id, error->message);
		return 1;
	}
	for (;;) {
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(store, agent_id, LEASE_MS, max_active, &error);

		if (r != NULL) {
			g_string_append_printf(out, "%s\n", r->uuid);
			continue;
		}
		/* with a cap, keep trying a while: a NULL may only mean "at capacity" */
		if (error == NULL && max_active > 0 && ++tries < 50)
			continue;
		if (error == NULL)
			break;
		/* past the busy timeout: legitimate under contention, try again */
		if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY) && busy++ < 100) {
			g_clear_error(&error);
			continue;
		}
		g_printerr("child %s: %s\n", agent_id, error->message);
		return 1;
	}
	if (!g_file_set_contents(out_path, out->str, (gssize)out->len, &error)) {
		g_printerr("child %s: %s\n", agent_id, error->message);
		return 1;
	}
	return 0;
}

/* Child: submit requests, note each UUID once create returned, then die by SIGKILL */
static int
crash_child(const gchar *db_path, const gchar *out_path, guint n)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = qsim_store_open(db_path, &error);
	g_autoptr(GString) out = g_string_new(NULL);

	if (store == NULL) {
		g_printerr("crash child: %s\n", error->message);
		return 1;
	}
	for (guint i = 0; i < n; i++) {
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(store, "tiny", "true", 5, &error);
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

		if (r == NULL) {
			g_printerr("crash child: %s\n", error->message);
			return 1;
		}
		g_ptr_array_add(chunks,
		                qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (guint8 *)"x\0y", 3));
		if (qsim_store_append_logs(store, r->uuid, chunks, &error) != 1) {
			g_printerr("crash child: %s\n", error->message);
			return 1;
		}
		g_string_append_printf(out, "%s\n", r->uuid);
	}
	/* the acknowledgement (this file) exists before the kill; nothing is closed cleanly */
	if (!g_file_set_contents(out_path, out->str, (gssize)out->len, &error)) {
		g_printerr("crash child: %s\n", error->message);
		return 1;
	}
	raise(SIGKILL);
	return 2; /* not reached */
}

static void
fill_queue(QsimStore *store, guint n)
{
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < n; i++) {
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(store, "tiny", "true", 5, &error);

		g_assert_no_error(error);
	}
}

/* Runs the children against fx's database; returns uuid -> agent for every claim */
static GHashTable *
run_children(StoreFixture *fx, const gchar *db_path, guint n_children, guint max_active,
             guint *n_claims)
{
	g_autofree gchar *self_exe = g_file_read_link("/proc/self/exe", NULL);
	g_autofree gchar *go_path = g_build_filename(fx->dir, "go", NULL);
	g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(GPid));
	GHashTable *owner = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autofree gchar *max_str = g_strdup_printf("%u", max_active);

	g_assert_nonnull(self_exe);
	*n_claims = 0;
	for (guint i = 0; i < n_children; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *agent = g_strdup_printf("agent-%u", i);
		g_autofree gchar *out = g_strdup_printf("%s/claims-%u.txt", fx->dir, i);
		const gchar *argv[] = {self_exe, "--claim-child", fx->path, agent,
		                       out,      go_path,         max_str,  NULL};
		GPid pid = 0;

		/* plain spawn + waitpid: GSubprocess would start a GLib worker thread */
		g_spawn_async(NULL, (gchar **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
		              &pid, &error);
		g_assert_no_error(error);
		g_array_append_val(pids, pid);
	}
	g_assert_true(g_file_set_contents(go_path, "", 0, NULL));
	for (guint i = 0; i < n_children; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *agent = g_strdup_printf("agent-%u", i);
		g_autofree gchar *out = g_strdup_printf("%s/claims-%u.txt", fx->dir, i);
		g_autofree gchar *contents = NULL;
		g_auto(GStrv) lines = NULL;
		guint mine = 0;

		gint wstatus = 0;

		g_assert_cmpint(waitpid(g_array_index(pids, GPid, i), &wstatus, 0), ==,
		                g_array_index(pids, GPid, i));
		g_spawn_close_pid(g_array_index(pids, GPid, i));
		g_assert_true(g_spawn_check_wait_status(wstatus, &error));
		g_assert_no_error(error);
		g_assert_true(g_file_get_contents(out, &contents, NULL, &error));
		lines = g_strsplit(contents, "\n", -1);
		for (guint j = 0; lines[j] != NULL; j++) {
			if (lines[j][0] == '\0')
				continue;
			/* the heart of the test: nobody else claimed this one */
			if (g_hash_table_contains(owner, lines[j]))
				g_error("%s claimed by %s and by %s", lines[j],
				        (gchar *)g_hash_table_lookup(owner, lines[j]), agent);
			g_hash_table_insert(owner, g_strdup(lines[j]), g_strdup(agent));
			mine++;
		}
		g_test_message("%s claimed %u", agent, mine);
		*n_claims += mine;
	}
	return owner;
}

static void
test_claim_concurrent(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) owner = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	QsimRequestFilter filter;
	gboolean more = TRUE;
	guint n_claims = 0, n_agents_used = 0, n_rows = 0;
	g_autofree gchar *before = NULL;
	guint per_agent[N_CHILDREN] = {0};

	gint64 t0 = g_get_monotonic_time();

	fill_queue(fx->store, N_REQUESTS);
	g_test_message("queued %d requests in %.2f s", N_REQUESTS,
	               (g_get_monotonic_time() - t0) / 1e6);
	t0 = g_get_monotonic_time();
	owner = run_children(fx, fx->path, N_CHILDREN, 0, &n_claims);
	g_test_message("%d processes claimed them in %.2f s", N_CHILDREN,
	               (g_get_monotonic_time() - t0) / 1e6);
	g_assert_cmpuint(n_claims, ==, N_REQUESTS);
	g_assert_cmpuint(g_hash_table_size(owner), ==, N_REQUESTS);

	/* the database agrees with what each child says it got, exactly once */
	qsim_request_filter_init(&filter);
	filter.limit = QSIM_REQUEST_FILTER_MAX_LIMIT;
	while (more) {
		g_autofree gchar *last = NULL;

		rows = qsim_store_list_requests(fx->store, &filter, &more, &error);
		g_assert_no_error(error);
		for (guint i = 0; i < rows->len; i++) {
			const QsimRequest *r = g_ptr_array_index(rows, i);

			g_assert_cmpint(r->status, ==, QSIM_STATUS_ACKNOWLEDGED);
			g_assert_cmpuint(r->attempts, ==, 1);
			g_assert_cmpstr(r->agent_id, ==, g_hash_table_lookup(owner, r->uuid));
			per_agent[r->agent_id[strlen(r->agent_id) - 1] - '0']++;
			n_rows++;
		}
		g_free(before);
		before = g_strdup(((QsimRequest *)g_ptr_array_index(rows, rows->len - 1))->uuid);
		filter.before_uuid = before;
		g_clear_pointer(&rows, g_ptr_array_unref);
	}
	g_assert_cmpuint(n_rows, ==, N_REQUESTS);
	for (guint i = 0; i < N_CHILDREN; i++)
		n_agents_used += per_agent[i] > 0;
	g_test_message("%u of %d agents got work", n_agents_used, N_CHILDREN);
}

/* MAX_CONCURRENT_VMS holds across processes: never more live leases than the cap */
static void
test_claim_concurrent_cap(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) owner = NULL;
	guint n_claims = 0, active = 0;

	fill_queue(fx->store, 200);
	owner = run_children(fx, fx->path, N_CHILDREN, 5, &n_claims);
	g_assert_cmpuint(n_claims, ==, 5);
	g_assert_true(qsim_store_count_active_vms(fx->store, &active, &error));
	/* the children used the real clock: the fixture's fake one is in the past */
	g_assert_cmpuint(active, <=, 5);
}

/* Processes opening (creating, migrating) one fresh file at the same moment all succeed */
static void
test_concurrent_open(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) owner = NULL;
	g_autoptr(QsimStore) store = NULL;
	g_autofree gchar *fresh = g_build_filename(fx->dir, "fresh.db", NULL);
	guint n_claims = 99;

	/* each child exits non-zero if its open fails; the helper asserts exit 0 */
	owner = run_children(fx, fresh, N_CHILDREN, 0, &n_claims);
	g_assert_cmpuint(n_claims, ==, 0);
	store = qsim_store_open(fresh, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_store_get_schema_version(store), ==,
	                 qsim_store_get_current_schema_version());
}

/* What a returned create promised survives the process being killed with SIGKILL */
static void
test_kill9_durability(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *self_exe = g_file_read_link("/proc/self/exe", NULL);
	g_autofree gchar *out = g_build_filename(fx->dir, "acked.txt", NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	const gchar *argv[] = {self_exe, "--crash-child", fx->path, out, "200", NULL};
	gint wstatus = 0;
	guint n = 0;

	g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
	                           NULL, &wstatus, &error));
	g_assert_no_error(error);
	g_assert_true(WIFSIGNALED(wstatus));
	g_assert_cmpint(WTERMSIG(wstatus), ==, SIGKILL);
	g_assert_true(g_file_get_contents(out, &contents, NULL, &error));
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(QsimRequest) r = NULL;
		g_autoptr(GPtrArray) logs = NULL;

		if (lines[i][0] == '\0')
			continue;
		/* read through the fixture's connection, which was open all along */
		r = qsim_store_get_request(fx->store, lines[i], 36, &error);
		g_assert_no_error(error);
		g_assert_cmpint(r->status, ==, QSIM_STATUS_PENDING);
		logs = qsim_store_read_logs(fx->store, lines[i], 0, 0, -1, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(logs->len, ==, 1);
		g_assert_cmpuint(
		    g_bytes_get_size(((QsimLogEntry *)g_ptr_array_index(logs, 0))->output), ==, 3);
		n++;
	}
	g_assert_cmpuint(n, ==, 200);
	/* and a fresh connection (as after a restart) sees the same */
	g_clear_object(&fx->store);
	fx->store = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	{
		QsimRequestFilter filter;
		g_autoptr(GPtrArray) rows = NULL;

		qsim_request_filter_init(&filter);
		filter.limit = 1000;
		rows = qsim_store_list_requests(fx->store, &filter, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(rows->len, ==, 200);
	}
}

int
main(int argc, char **argv)
{
	if (argc == 5 && g_strcmp0(argv[1], "--crash-child") == 0)
		return crash_child(argv[2], argv[3], (guint)g_ascii_strtoull(argv[4], NULL, 10));
	if (argc == 7 && g_strcmp0(argv[1], "--claim-child") == 0)
		return claim_child(argv[2], argv[3], argv[4], argv[5],
		                   (guint)g_ascii_strtoull(argv[6], NULL, 10));
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/store/claim/concurrent", StoreFixture, NULL, store_fixture_setup,
	           test_claim_concurrent, store_fixture_teardown);
	g_test_add("/qsim/store/claim/concurrent-cap", StoreFixture, NULL, store_fixture_setup,
	           test_claim_concurrent_cap, store_fixture_teardown);
	g_test_add("/qsim/store/claim/concurrent-open", StoreFixture, NULL, store_fixture_setup,
	           test_concurrent_open, store_fixture_teardown);
	g_test_add("/qsim/store/kill9-durability", StoreFixture, NULL, store_fixture_setup,
	           test_kill9_durability, store_fixture_teardown);
	return g_test_run();
}
