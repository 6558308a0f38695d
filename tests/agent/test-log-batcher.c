#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agent-test-util.h"
#include "agent/qsim-log-batcher.h"
#include "common/qsim-error.h"
#include "vm/qsim-serial-reader.h"

typedef struct {
	AgentFixture fx;
	gchar *uuid;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;

	agent_fixture_init(&f->fx);
	r = qsim_store_create_request(f->fx.store, "tiny", "echo hi", 30, &error);
	g_assert_no_error(error);
	f->uuid = g_strdup(r->uuid);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_free(f->uuid);
	agent_fixture_clear(&f->fx);
}

/* a second connection to the fixture's database, in a thread of its own */
static QsimStoreWorker *
fixture_worker(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	QsimStoreWorker *worker =
	    qsim_store_worker_new(f->fx.db_url != NULL ? f->fx.db_url : f->fx.db_path, &error);

	g_assert_no_error(error);
	return worker;
}

static guint
n_rows(Fixture *f)
{
	g_autoptr(GPtrArray) logs = agent_test_logs(&f->fx, f->uuid);

	return logs->len;
}

static void
test_size_bound(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 1024, 600000);
	guint8 buf[600];

	memset(buf, 'x', sizeof(buf));
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	/* below the bound and long before the time bound: nothing written yet */
	g_assert_cmpuint(n_rows(f), ==, 0);
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 600);
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	/* passing the bound writes at once, as one merged row in one transaction */
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 0);
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 1);
	g_assert_cmpuint(n_rows(f), ==, 1);
	{
		g_autoptr(GByteArray) out = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_STDOUT);
		g_assert_cmpuint(out->len, ==, 1200);
	}
}

static gboolean
buffer_empty_cb(gpointer user_data)
{
	return qsim_log_batcher_get_buffered(QSIM_LOG_BATCHER(user_data)) == 0;
}

static void
test_time_bound(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 0, 100);

	qsim_log_batcher_append_line(b, QSIM_LOG_SYSTEM, "VM started");
	g_assert_cmpuint(n_rows(f), ==, 0);
	/* the timer, not a size or an explicit flush, writes it */
	g_assert_true(agent_test_wait(buffer_empty_cb, b, 30));
	g_assert_cmpuint(n_rows(f), ==, 1);
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 1);
}

/* Jobs use low latency: without it these chunks would wait for the 600 s bound. */
static void
test_low_latency(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 0, 600000);

	qsim_log_batcher_set_low_latency(b, 5, 50);
	qsim_log_batcher_append_line(b, QSIM_LOG_STDOUT, "first");
	g_assert_cmpuint(n_rows(f), ==, 0);
	g_assert_true(agent_test_wait(buffer_empty_cb, b, 30));
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 1);
	/* right after a flush the next chunk waits for the interval, then goes too */
	qsim_log_batcher_append_line(b, QSIM_LOG_STDOUT, "second");
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), >, 0);
	g_assert_true(agent_test_wait(buffer_empty_cb, b, 30));
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 2);
	g_assert_cmpuint(n_rows(f), ==, 2); /* a row per flush */
}

static void
test_order(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 0, 600000);
	g_autoptr(GPtrArray) logs = NULL;
	g_autoptr(GError) error = NULL;
	const struct {
		QsimLogType type;
		const gchar *text;
	} want[] = {
	    {QSIM_LOG_BOOT, "booting\nQSIM-READY\n"},
	    {QSIM_LOG_SYSTEM, "SSH ready\n"},
	    {QSIM_LOG_SYSTEM, "second line\n"},
	    {QSIM_LOG_COMMAND, "echo a; echo b >&2\n"},
	    {QSIM_LOG_STDOUT, "a\nmore\n"},
	    {QSIM_LOG_STDERR, "b\n"},
	    {QSIM_LOG_STDOUT, "c\n"},
	};

	qsim_log_batcher_append(b, QSIM_LOG_BOOT, (const guint8 *)"booting\n", 8);
	qsim_log_batcher_append(b, QSIM_LOG_BOOT, (const guint8 *)"QSIM-READY\n", 11);
	qsim_log_batcher_append_line(b, QSIM_LOG_SYSTEM, "SSH ready");
	qsim_log_batcher_append_line(b, QSIM_LOG_SYSTEM, "second line\n");
	qsim_log_batcher_append_line(b, QSIM_LOG_COMMAND, "echo a; echo b >&2");
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, (const guint8 *)"a\n", 2);
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, (const guint8 *)"more\n", 5);
	qsim_log_batcher_append(b, QSIM_LOG_STDERR, (const guint8 *)"b\n", 2);
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, (const guint8 *)"c\n", 2);
	g_assert_true(qsim_log_batcher_flush(b, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 1);

	logs = agent_test_logs(&f->fx, f->uuid);
	g_assert_cmpuint(logs->len, ==, G_N_ELEMENTS(want));
	for (guint i = 0; i < logs->len; i++) {
		QsimLogEntry *e = g_ptr_array_index(logs, i);
		gsize len = 0;
		const gchar *d = g_bytes_get_data(e->output, &len);

		g_assert_cmpint(e->log_type, ==, want[i].type);
		g_assert_cmpuint(len, ==, strlen(want[i].text));
		g_assert_cmpint(memcmp(d, want[i].text, len), ==, 0);
		g_assert_cmpint(e->seq, ==, (gint64)i + 1);
	}
	/* an empty flush writes nothing */
	g_assert_true(qsim_log_batcher_flush(b, &error));
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 1);
}

static void
test_bytes_exact(Fixture *f, gconstpointer data)
{
	const gsize total = 8 * 1024 * 1024;
	const gsize bound = 64 * 1024;
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, bound, 600000);
	g_autoptr(GByteArray) in = g_byte_array_sized_new(total);
	g_autoptr(GByteArray) out = NULL;
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	g_autoptr(GError) error = NULL;
	gsize off = 0;
	gsize max_chunk = 0;

	for (gsize i = 0; i < total; i++) {
		guint8 byte = (guint8)g_rand_int_range(rand, 0, 256);
		g_byte_array_append(in, &byte, 1);
	}
	while (off < total) {
		gsize n = MIN((gsize)g_rand_int_range(rand, 1, 40000), total - off);

		qsim_log_batcher_append(b, QSIM_LOG_STDOUT, in->data + off, n);
		/* some stderr in between, so the stdout rows do split */
		if (g_rand_int_range(rand, 0, 8) == 0)
			qsim_log_batcher_append(b, QSIM_LOG_STDERR, (const guint8 *)"\0e", 2);
		max_chunk = MAX(max_chunk, n);
		off += n;
	}
	g_assert_true(qsim_log_batcher_flush(b, &error));
	g_assert_no_error(error);
	out = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_STDOUT);
	g_assert_cmpuint(out->len, ==, in->len);
	g_assert_cmpint(memcmp(out->data, in->data, in->len), ==, 0);
	/* memory stays bounded: never more than the bound plus one chunk */
	g_assert_cmpuint(qsim_log_batcher_get_max_buffered(b), <, bound + max_chunk + 2);
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), >=, total / (bound + max_chunk + 2));
}

static void
congested_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
test_congestion(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[700];
	guint notified = 0;

	/* a store that refuses the writes: the request is gone */
	r = qsim_store_cancel_request(f->fx.store, f->uuid, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_delete_request(f->fx.store, f->uuid, &error));
	b = qsim_log_batcher_new(f->fx.store, f->uuid, 1024, 600000);
	g_signal_connect(b, "notify::congested", G_CALLBACK(congested_cb), &notified);
	memset(buf, 'y', sizeof(buf));

	g_test_expect_message("qsim-agent", G_LOG_LEVEL_WARNING, "*cannot store logs*");
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	g_assert_false(qsim_log_batcher_get_congested(b));
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	g_test_assert_expected_messages();
	/* nothing dropped, and the producer is told to hold back */
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 1400);
	g_assert_true(qsim_log_batcher_get_congested(b));
	g_assert_cmpuint(notified, ==, 1);
	g_assert_false(qsim_log_batcher_flush(b, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 1400);
	g_test_expect_message("qsim-agent", G_LOG_LEVEL_WARNING, "*never stored*");
	g_clear_object(&b);
	g_test_assert_expected_messages();
}

static void
count_cb(QsimLogBatcher *b, gpointer user_data)
{
	(*(guint *)user_data)++;
}

/* The cap counts boot, stdout and stderr together, cuts at the byte, says so once, and
 * lets system lines through afterwards. */
static void
test_output_limit(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 0, 600000);
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) boot = NULL;
	g_autoptr(GByteArray) out = NULL;
	g_autoptr(GByteArray) err = NULL;
	g_autofree gchar *system = NULL;
	guint8 buf[600];
	guint signalled = 0;

	memset(buf, 'z', sizeof(buf));
	qsim_log_batcher_set_output_limit(b, 1500);
	g_signal_connect(b, "output-truncated", G_CALLBACK(count_cb), &signalled);
	qsim_log_batcher_append(b, QSIM_LOG_BOOT, buf, 500);
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	g_assert_false(qsim_log_batcher_get_output_truncated(b));
	g_assert_cmpuint(signalled, ==, 0);
	qsim_log_batcher_append(b, QSIM_LOG_STDERR, buf, sizeof(buf));
	g_assert_true(qsim_log_batcher_get_output_truncated(b));
	g_assert_cmpuint(signalled, ==, 1);
	/* drained: nothing more is kept, and no second notice */
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	qsim_log_batcher_append(b, QSIM_LOG_BOOT, buf, sizeof(buf));
	qsim_log_batcher_append_line(b, QSIM_LOG_SYSTEM, "exit code 0");
	g_assert_cmpuint(signalled, ==, 1);
	g_assert_true(qsim_log_batcher_flush(b, &error));
	g_assert_no_error(error);

	boot = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_BOOT);
	out = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_STDOUT);
	err = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_STDERR);
	g_assert_cmpuint(boot->len, ==, 500);
	g_assert_cmpuint(out->len, ==, 600);
	g_assert_cmpuint(err->len, ==, 400);
	system = agent_test_log_text(&f->fx, f->uuid, QSIM_LOG_SYSTEM);
	g_assert_cmpstr(system, ==, "output truncated at 1500 bytes\nexit code 0\n");
}

/* the wiring a job makes between a VM's console and its batcher */
typedef struct {
	QsimLogBatcher *batcher;
	QsimSerialReader *reader;
} ConsoleWire;

static void
wire_data_cb(QsimSerialReader *reader, GBytes *chunk, gpointer user_data)
{
	ConsoleWire *w = user_data;

	qsim_log_batcher_append_bytes(w->batcher, QSIM_LOG_BOOT, chunk);
}

static void
wire_congested_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	ConsoleWire *w = user_data;

	qsim_serial_reader_set_paused(w->reader, qsim_log_batcher_get_congested(w->batcher));
}

static gboolean
batcher_congested_cb(gpointer user_data)
{
	return qsim_log_batcher_get_congested(QSIM_LOG_BATCHER(user_data));
}

typedef struct {
	Fixture *f;
	gsize want;
} StoredWait;

static gboolean
boot_stored_cb(gpointer user_data)
{
	StoredWait *w = user_data;
	g_autoptr(GByteArray) boot = agent_test_log_bytes(&w->f->fx, w->f->uuid, QSIM_LOG_BOOT);

	return boot->len >= w->want;
}

static gboolean
batcher_caught_up_cb(gpointer user_data)
{
	return !qsim_log_batcher_get_congested(QSIM_LOG_BATCHER(user_data));
}

static gboolean
set_flag_cb(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
flag_set_cb(gpointer user_data)
{
	return *(gboolean *)user_data;
}

/* runs the main loop for @ms, whatever is due in it */
static void
spin_ms(guint ms)
{
	gboolean done = FALSE;

	g_timeout_add(ms, set_flag_cb, &done);
	g_assert_true(agent_test_wait(flag_set_cb, &done, 60));
}

static gsize
pipe_pending(gint fd)
{
	gint n = 0;

	g_assert_cmpint(ioctl(fd, FIONREAD, &n), ==, 0);
	return (gsize)n;
}

/* A store that cannot write (another connection holds the write lock) pauses the
 * console reader: the bytes stay in the pipe, as they would in QEMU's stdout, and are
 * all stored once the lock is gone. */
static void
test_console_backpressure(Fixture *f, gconstpointer data)
{
	const gsize max_bytes = 8192;
	const gsize total = 48 * 1024;
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, max_bytes, 50);
	g_autoptr(QsimStoreWorker) worker = data != NULL ? fixture_worker(f) : NULL;
	g_autoptr(QsimSerialReader) reader = NULL;
	g_autoptr(GInputStream) stream = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) boot = NULL;
	g_autofree guint8 *buf = g_malloc(total);
	ConsoleWire wire;
	StoredWait stored = {f, total};
	sqlite3 *locker = NULL;
	gint fds[2];
	gsize in_pipe;

	/* each failed flush warns, and how many fail depends on timing: not fatal here */
	GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);

	for (gsize i = 0; i < total; i++)
		buf[i] = (guint8)('a' + i % 26);
	g_assert_true(g_unix_open_pipe(fds, FD_CLOEXEC, &error));
	g_assert_no_error(error);
	/* fits the pipe's 64 KiB buffer: written at once, then EOF after it */
	g_assert_cmpint(write(fds[1], buf, total), ==, (gssize)total);
	close(fds[1]);

	g_assert_cmpint(sqlite3_open(f->fx.db_path, &locker), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);

	/* with a worker the writes wait for the lock in its thread, not here */
	if (worker != NULL)
		qsim_log_batcher_set_store_worker(b, worker);
	stream = g_unix_input_stream_new(fds[0], TRUE);
	reader = qsim_serial_reader_new(stream, NULL);
	wire.batcher = b;
	wire.reader = reader;
	g_signal_connect(reader, "data", G_CALLBACK(wire_data_cb), &wire);
	g_signal_connect(b, "notify::congested", G_CALLBACK(wire_congested_cb), &wire);
	qsim_serial_reader_start(reader);

	g_assert_true(agent_test_wait(batcher_congested_cb, b, 40));
	g_assert_true(qsim_serial_reader_get_paused(reader));
	/* a flush retry comes and fails meanwhile: the reader must stay put */
	spin_ms(600);
	g_assert_true(qsim_log_batcher_get_congested(b));
	g_assert_cmpuint(qsim_serial_reader_get_n_bytes(reader), <=, max_bytes + 4096);
	g_assert_cmpuint(qsim_log_batcher_get_max_buffered(b), <=, max_bytes + 4096);
	in_pipe = pipe_pending(fds[0]);
	g_assert_cmpuint(in_pipe, ==, total - qsim_serial_reader_get_n_bytes(reader));
	g_assert_cmpuint(in_pipe, >=, total - max_bytes - 4096);
	boot = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_BOOT);
	g_assert_cmpuint(boot->len, ==, 0);
	g_clear_pointer(&boot, g_byte_array_unref);

	/* the store recovers: reading resumes where it stopped, nothing lost or reordered */
	g_assert_cmpint(sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(locker);
	g_assert_true(agent_test_wait(boot_stored_cb, &stored, 40));
	/* on a worker its report comes through the main loop, after the commit */
	g_assert_true(agent_test_wait(batcher_caught_up_cb, b, 40));
	g_assert_false(qsim_serial_reader_get_paused(reader));
	boot = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_BOOT);
	g_assert_cmpuint(boot->len, ==, total);
	g_assert_cmpmem(boot->data, boot->len, buf, total);
	g_assert_cmpuint(qsim_log_batcher_get_max_buffered(b), <=, max_bytes + 4096);
	qsim_serial_reader_stop(reader);
	g_log_set_always_fatal(fatal);
}

typedef struct {
	gboolean done;
	gboolean ok;
	GError *error;
} FlushWait;

static void
flush_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
	FlushWait *w = user_data;

	w->ok = qsim_log_batcher_flush_finish(QSIM_LOG_BATCHER(source), result, &w->error);
	w->done = TRUE;
}

/* qsim_log_batcher_flush_async(), waited for on the main loop */
static gboolean
flush_wait(QsimLogBatcher *b, GError **error)
{
	FlushWait w = {0};

	qsim_log_batcher_flush_async(b, flush_done_cb, &w);
	g_assert_true(agent_test_wait(flag_set_cb, &w.done, 60));
	if (w.error != NULL)
		g_propagate_error(error, w.error);
	return w.ok;
}

/* On the worker: what comes while a batch is written is the next batch, after it,
 * and a flush waits for both */
static void
test_worker_order(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 0, 600000);
	g_autoptr(QsimStoreWorker) worker = fixture_worker(f);
	g_autoptr(GByteArray) out = NULL;
	g_autoptr(GError) error = NULL;

	qsim_log_batcher_set_store_worker(b, worker);
	qsim_log_batcher_append_line(b, QSIM_LOG_SYSTEM, "first");
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, (const guint8 *)"a\n", 2);
	qsim_log_batcher_kick(b);
	/* in flight now: the main loop has not run, so its report cannot have come */
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 0);
	g_assert_false(qsim_log_batcher_flush(b, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_BUSY);
	g_clear_error(&error);
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, (const guint8 *)"b\n", 2);
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 10);
	g_assert_true(flush_wait(b, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 2);
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 0);
	g_assert_cmpuint(n_rows(f), ==, 3);
	out = agent_test_log_bytes(&f->fx, f->uuid, QSIM_LOG_STDOUT);
	g_assert_cmpmem(out->data, out->len, "a\nb\n", 4);
	/* nothing buffered: done at once, no transaction */
	g_assert_true(flush_wait(b, &error));
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 2);
}

static gboolean
batcher_congested_wait_cb(gpointer user_data)
{
	return qsim_log_batcher_get_congested(QSIM_LOG_BATCHER(user_data));
}

/* On the worker, a refused batch comes back in front, in order, and the flush says why */
static void
test_worker_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimLogBatcher) b = qsim_log_batcher_new(f->fx.store, f->uuid, 1024, 600000);
	g_autoptr(QsimStoreWorker) worker = fixture_worker(f);
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GError) error = NULL;
	guint8 buf[700];
	/* each retry warns, as many as the timing makes: not fatal here */
	GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);

	r = qsim_store_cancel_request(f->fx.store, f->uuid, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_delete_request(f->fx.store, f->uuid, &error));
	qsim_log_batcher_set_store_worker(b, worker);
	memset(buf, 'y', sizeof(buf));
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	qsim_log_batcher_append(b, QSIM_LOG_STDOUT, buf, sizeof(buf));
	g_assert_true(agent_test_wait(batcher_congested_wait_cb, b, 30));
	qsim_log_batcher_append(b, QSIM_LOG_STDERR, buf, 10);
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 1410);
	g_assert_false(flush_wait(b, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_assert_cmpuint(qsim_log_batcher_get_buffered(b), ==, 1410);
	g_assert_cmpuint(qsim_log_batcher_get_n_flushes(b), ==, 0);
	g_assert_true(qsim_log_batcher_get_congested(b));
	g_clear_object(&b);
	g_log_set_always_fatal(fatal);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/agent/log-batcher/size-bound", Fixture, NULL, fixture_setup,
	           test_size_bound, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/time-bound", Fixture, NULL, fixture_setup,
	           test_time_bound, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/low-latency", Fixture, NULL, fixture_setup,
	           test_low_latency, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/order", Fixture, NULL, fixture_setup, test_order,
	           fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/bytes-exact", Fixture, NULL, fixture_setup,
	           test_bytes_exact, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/congestion", Fixture, NULL, fixture_setup,
	           test_congestion, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/output-limit", Fixture, NULL, fixture_setup,
	           test_output_limit, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/console-backpressure", Fixture, NULL, fixture_setup,
	           test_console_backpressure, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/console-backpressure-worker", Fixture, "worker",
	           fixture_setup, test_console_backpressure, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/worker-order", Fixture, NULL, fixture_setup,
	           test_worker_order, fixture_teardown);
	g_test_add("/qsim/agent/log-batcher/worker-refused", Fixture, NULL, fixture_setup,
	           test_worker_refused, fixture_teardown);
	return g_test_run();
}
