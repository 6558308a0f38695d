/*
 * store-backends-worker: the store-level half of tests/bench/store-backends, one
 * role per process so that contention and cross-process wake-ups are real. It
 * talks to the store API only (no VMs, no HTTP) and prints one result line.
 *
 *   submit SPEC N            N create_request calls (one transaction each), then N
 *                            more as create_requests groups of 50: "submit <1tx/s> <group/s>"
 *   claim SPEC AGENT START   claims until the queue stays empty for 1 s, each claim then
 *                            mark_running + finish (so a cap never fills), from the unix
 *                            time START (µs) on: "claim <n> <first_us> <last_us>"
 *   claimer SPEC N           waits for work the way an agent does (the store's change
 *                            watch at the agents' interval, then claim_next) and prints
 *                            "claimed <uuid> <unix µs>" per claim, N claims in all
 *   submitter SPEC N GAP_MS  N requests one at a time, each after the previous one was
 *                            claimed plus GAP_MS: "submitted <uuid> <unix µs before the call>"
 *   logs SPEC MB             append_logs of 16 x 4 KiB batches to one request: "logs <MB/s>"
 *
 * SPEC is sqlite:PATH or a postgresql:// URL.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-sqlite-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store.h"

/* QSIM_AGENT_POOL_WATCH_INTERVAL_MS: the claimer waits for work as the agents do */
#define AGENT_WATCH_INTERVAL_MS 50

static QsimStore *
open_spec(const gchar *spec, GError **error)
{
	if (g_str_has_prefix(spec, "sqlite:"))
		return qsim_sqlite_store_new(spec + strlen("sqlite:"), error);
	if (qsim_store_location_is_url(spec))
		return qsim_store_open(spec, error);
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "bad SPEC %s", spec);
	return NULL;
}

static void
die(const GError *error)
{
	g_printerr("store-backends-worker: %s\n", error != NULL ? error->message : "failed");
	exit(1);
}

static gdouble
seconds_since(gint64 t0)
{
	return (g_get_monotonic_time() - t0) / 1e6;
}

static void
role_submit(QsimStore *store, guint n)
{
	g_autoptr(GError) error = NULL;
	gint64 t0 = g_get_monotonic_time();
	gdouble one, group;

	for (guint i = 0; i < n; i++) {
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(store, "tiny", "echo hi", 60, &error);

		if (r == NULL)
			die(error);
	}
	one = n / seconds_since(t0);
	t0 = g_get_monotonic_time();
	for (guint done = 0; done < n;) {
		g_autoptr(GPtrArray) drafts =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_draft_free);

		for (guint i = 0; i < 50 && done < n; i++, done++)
			g_ptr_array_add(drafts, qsim_request_draft_new("tiny", "echo hi", 60));
		if (!qsim_store_create_requests(store, drafts, &error))
			die(error);
	}
	group = n / seconds_since(t0);
	g_print("submit %.0f %.0f\n", one, group);
}

static void
role_claim(QsimStore *store, const gchar *agent, gint64 start_us)
{
	g_autoptr(GError) error = NULL;
	gint64 first = 0, last = 0, idle_since = 0;
	guint n = 0;

	while (g_get_real_time() < start_us)
		g_usleep(200);
	for (;;) {
		g_autoptr(QsimRequest) r = qsim_store_claim_next(store, agent, 60000, 0, &error);

		if (error != NULL) {
			/* contention is part of what is measured: a busy database is retried */
			if (g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY)) {
				g_clear_error(&error);
				continue;
			}
			die(error);
		}
		if (r == NULL) {
			if (idle_since == 0)
				idle_since = g_get_monotonic_time();
			else if (g_get_monotonic_time() - idle_since > G_USEC_PER_SEC)
				break;
			g_usleep(1000);
			continue;
		}
		idle_since = 0;
		if (first == 0)
			first = g_get_real_time();
		if (!qsim_store_mark_running(store, r->uuid, agent, &error) ||
		    !qsim_store_finish_request(store, r->uuid, agent, QSIM_STATUS_DONE, TRUE, 0,
		                               NULL, NULL, &error))
			die(error);
		last = g_get_real_time();
		n++;
	}
	g_print("claim %u %" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n", n, first, last);
}

typedef struct {
	QsimStore *store;
	GMainLoop *loop;
	guint left;
} Claimer;

static void
try_claim(Claimer *c)
{
	g_autoptr(GError) error = NULL;

	while (c->left > 0) {
		g_autoptr(QsimRequest) r =
		    qsim_store_claim_next(c->store, "bench:1:0", 60000, 0, &error);

		if (r == NULL) {
			if (error != NULL && !g_error_matches(error, QSIM_ERROR, QSIM_ERROR_BUSY))
				die(error);
			return;
		}
		g_print("claimed %s %" G_GINT64_FORMAT "\n", r->uuid, g_get_real_time());
		fflush(stdout);
		c->left--;
	}
	g_main_loop_quit(c->loop);
}

static void
changed_elsewhere_cb(QsimStore *store, gpointer user_data)
{
	try_claim(user_data);
}

static void
role_claimer(QsimStore *store, guint n)
{
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	Claimer c = {store, loop, n};

	g_signal_connect(store, "changed-elsewhere", G_CALLBACK(changed_elsewhere_cb), &c);
	qsim_store_watch_changes(store, AGENT_WATCH_INTERVAL_MS);
	g_print("ready\n");
	fflush(stdout);
	try_claim(&c);
	if (c.left > 0)
		g_main_loop_run(loop);
	qsim_store_unwatch_changes(store);
}

static void
role_submitter(QsimStore *store, guint n, guint gap_ms)
{
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < n; i++) {
		gint64 t = g_get_real_time();
		g_autoptr(QsimRequest) r =
		    qsim_store_create_request(store, "tiny", "echo hi", 60, &error);

		if (r == NULL)
			die(error);
		g_print("submitted %s %" G_GINT64_FORMAT "\n", r->uuid, t);
		fflush(stdout);
		for (;;) {
			g_autoptr(QsimRequest) got =
			    qsim_store_get_request(store, r->uuid, 36, &error);

			if (got == NULL)
				die(error);
			if (got->status != QSIM_STATUS_PENDING)
				break;
			g_usleep(2000);
		}
		/* a random gap: submits must not fall in step with the claimer's watch tick */
		g_usleep((gap_ms + g_random_int_range(0, 50)) * 1000);
	}
}

static void
role_logs(QsimStore *store, guint mb)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(store, "tiny", "logs", 60, &error);
	guint8 chunk[4096];
	guint batches = mb * 1024 * 1024 / (16 * sizeof(chunk));
	gint64 t0;

	if (r == NULL)
		die(error);
	for (gsize i = 0; i < sizeof(chunk); i++)
		chunk[i] = (guint8)(i * 31);
	t0 = g_get_monotonic_time();
	for (guint b = 0; b < batches; b++) {
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

		for (guint c = 0; c < 16; c++)
			g_ptr_array_add(
			    chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, chunk, sizeof(chunk)));
		if (qsim_store_append_logs(store, r->uuid, chunks, &error) < 0)
			die(error);
	}
	g_print("logs %.1f\n", batches * 16.0 * sizeof(chunk) / 1048576.0 / seconds_since(t0));
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = NULL;

	if (argc < 4) {
		g_printerr("usage: %s submit|claim|claimer|submitter|logs SPEC ARGS…\n", argv[0]);
		return 2;
	}
	store = open_spec(argv[2], &error);
	if (store == NULL)
		die(error);
	if (strcmp(argv[1], "submit") == 0)
		role_submit(store, (guint)atoi(argv[3]));
	else if (strcmp(argv[1], "claim") == 0 && argc > 4)
		role_claim(store, argv[3], g_ascii_strtoll(argv[4], NULL, 10));
	else if (strcmp(argv[1], "claimer") == 0)
		role_claimer(store, (guint)atoi(argv[3]));
	else if (strcmp(argv[1], "submitter") == 0 && argc > 4)
		role_submitter(store, (guint)atoi(argv[3]), (guint)atoi(argv[4]));
	else if (strcmp(argv[1], "logs") == 0)
		role_logs(store, (guint)atoi(argv[3]));
	else {
		g_printerr("unknown role %s\n", argv[1]);
		return 2;
	}
	return 0;
}
