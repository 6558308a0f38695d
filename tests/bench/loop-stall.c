/*
 * The longest stall of an agent process's main loop while the database cannot take a
 * write, with the log batcher writing inline (on the loop) and on the store worker.
 *
 * A producer appends 4 KiB of stdout every 5 ms to one request's batcher (as a chatty
 * command would) and a 5 ms timer measures how late the loop runs it. After 1 s a
 * second connection holds the write lock for HOLD_MS (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: LOCK TABLE request_logs, which makes the batch wait for lock_timeout), then
 * lets go; the run ends once everything is stored. Prints, per mode: the longest gap
 * between two ticks, the ticks that came over 100 ms late, and the bytes stored against
 * the bytes produced (they must be equal: nothing dropped).
 *
 * Usage: loop-stall [DB_URL] [HOLD_MS]   (no URL: a SQLite file in a temporary directory)
 * Prints figures, asserts nothing.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <string.h>

#include "agent/qsim-log-batcher.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-worker.h"

typedef struct {
	const gchar *location;
	gboolean is_pg;
	guint hold_ms;
	QsimLogBatcher *batcher;
	gint64 last_tick_us;
	gint64 max_gap_us;
	guint late_ticks;
	guint64 produced;
	gboolean holding_done;
	GMainLoop *loop;
} Run;

static gpointer
hold_thread(gpointer data)
{
	Run *run = data;

	g_usleep(1000 * 1000);
	if (run->is_pg) {
		PGconn *conn = PQconnectdb(run->location);
		PGresult *res = PQexec(conn, "BEGIN; LOCK TABLE request_logs IN EXCLUSIVE MODE");

		PQclear(res);
		g_usleep((gulong)run->hold_ms * 1000);
		res = PQexec(conn, "ROLLBACK");
		PQclear(res);
		PQfinish(conn);
	} else {
		sqlite3 *db = NULL;

		sqlite3_open(run->location, &db);
		sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		g_usleep((gulong)run->hold_ms * 1000);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(db);
	}
	g_atomic_int_set(&run->holding_done, TRUE);
	return NULL;
}

static gboolean
tick_cb(gpointer data)
{
	Run *run = data;
	gint64 now = g_get_monotonic_time();
	static const guint8 chunk[4096] = {'x'};

	if (run->last_tick_us != 0) {
		gint64 gap = now - run->last_tick_us;

		run->max_gap_us = MAX(run->max_gap_us, gap);
		if (gap > 105 * 1000)
			run->late_ticks++;
	}
	run->last_tick_us = now;
	if (!g_atomic_int_get(&run->holding_done)) {
		qsim_log_batcher_append(run->batcher, QSIM_LOG_STDOUT, chunk, sizeof chunk);
		run->produced += sizeof chunk;
	} else if (qsim_log_batcher_get_buffered(run->batcher) == 0) {
		g_main_loop_quit(run->loop);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static guint64
stored_bytes(QsimStore *store, const gchar *uuid)
{
	guint64 total = 0;
	gint64 after = 0;

	for (;;) {
		g_autoptr(GPtrArray) logs =
		    qsim_store_read_logs(store, uuid, after, 1000, -1, NULL);

		if (logs == NULL || logs->len == 0)
			return total;
		for (guint i = 0; i < logs->len; i++) {
			QsimLogEntry *e = g_ptr_array_index(logs, i);

			total += g_bytes_get_size(e->output);
			after = e->seq;
		}
	}
}

static void
run_mode(const gchar *location, gboolean is_pg, guint hold_ms, gboolean with_worker)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = qsim_store_open(location, &error);
	g_autoptr(QsimStoreWorker) worker = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	GThread *holder;
	Run run = {0};

	if (store == NULL)
		g_error("%s", error->message);
	r = qsim_store_create_request(store, "tiny", "yes", 60, &error);
	if (r == NULL)
		g_error("%s", error->message);
	run.location = location;
	run.is_pg = is_pg;
	run.hold_ms = hold_ms;
	run.loop = loop;
	run.batcher = qsim_log_batcher_new(store, r->uuid, 0, 0);
	qsim_log_batcher_set_low_latency(run.batcher, QSIM_LOG_BATCHER_LINGER_MS,
	                                 QSIM_LOG_BATCHER_INTERVAL_MS);
	if (with_worker) {
		worker = qsim_store_worker_new(location, &error);
		if (worker == NULL)
			g_error("%s", error->message);
		qsim_log_batcher_set_store_worker(run.batcher, worker);
	}
	/* inline writes warn on every failed try: figures only here */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	holder = g_thread_new("hold", hold_thread, &run);
	g_timeout_add(5, tick_cb, &run);
	g_main_loop_run(loop);
	g_thread_join(holder);
	g_print("%-7s longest loop stall %6.0f ms, ticks over 100 ms late %3u, stored "
	        "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes\n",
	        with_worker ? "worker" : "inline", run.max_gap_us / 1000.0, run.late_ticks,
	        stored_bytes(store, r->uuid), run.produced);
	g_object_unref(run.batcher);
}

int
main(int argc, char **argv)
{
	const gchar *url = argc > 1 && argv[1][0] != '\0' ? argv[1] : NULL;
	guint hold_ms = argc > 2 ? (guint)g_ascii_strtoull(argv[2], NULL, 10) : 3000;
	g_autofree gchar *dir = NULL;

	if (url == NULL) {
		for (guint i = 0; i < 2; i++) {
			g_autofree gchar *path = NULL;

			dir = g_dir_make_tmp("qsim-stall-XXXXXX", NULL);
			path = g_build_filename(dir, "db.sqlite", NULL);
			run_mode(path, FALSE, hold_ms, i == 1);
			g_unlink(path);
			for (const gchar *const *s = (const gchar *const[]){"-wal", "-shm", NULL};
			     *s; s++) {
				g_autofree gchar *side = g_strconcat(path, *s, NULL);
				g_unlink(side);
			}
			g_rmdir(dir);
			g_clear_pointer(&dir, g_free);
		}
	} else {
		run_mode(url, TRUE, hold_ms, FALSE);
		run_mode(url, TRUE, hold_ms, TRUE);
	}
	return 0;
}
