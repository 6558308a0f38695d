#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "qsim-pg-fixture.h"
#include "store/qsim-sqlite-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-import.h"
#include "store/qsim-store-migrate.h"

/*
 * `qsimd migrate-store`: every column of every row arrives, logs keep their
 * seq numbers, a non-empty target is refused, an interrupted copy resumes,
 * and the row-count check fails when rows are missing. Plain: SQLite to SQLite;
 * with QSIM_TEST_DATABASE=pg (test-store-migrate-pg): PostgreSQL to SQLite and
 * SQLite to PostgreSQL, on a real server (tests/pg).
 */

#define AGENT "h1:100:0"
#define LEASE_MS 30000

typedef struct {
	StoreFixture src;
	gchar *dst_path; /* a SQLite file or a postgresql:// URL */
	QsimStore *dst;
} MigrateFixture;

/* Which way: the fixture's backend into a SQLite file, or a SQLite file into PostgreSQL */
#define INTO_SQLITE GINT_TO_POINTER(0)
#define INTO_PG GINT_TO_POINTER(1)

static gint64
source_clock(gpointer user_data)
{
	return ((StoreFixture *)user_data)->now;
}

static void
migrate_setup(MigrateFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	store_fixture_setup(&fx->src, data);
	if (data == INTO_PG) {
		/* the fixture's (PostgreSQL) database becomes the target, a file the source */
		fx->dst = g_steal_pointer(&fx->src.store);
		fx->dst_path = g_steal_pointer(&fx->src.path);
		fx->src.path = g_build_filename(fx->src.dir, "source.db", NULL);
		fx->src.store = qsim_sqlite_store_new(fx->src.path, &error);
		g_assert_no_error(error);
		qsim_store_set_clock(fx->src.store, source_clock, &fx->src);
		return;
	}
	fx->dst_path = g_build_filename(fx->src.dir, "target.db", NULL);
	fx->dst = qsim_sqlite_store_new(fx->dst_path, &error);
	g_assert_no_error(error);
}

/* The CLI's SPEC for a fixture path */
static gchar *
spec_of(const gchar *path)
{
	if (qsim_store_location_is_url(path))
		return g_strdup(path);
	return g_strconcat("sqlite:", path, NULL);
}

static void
migrate_teardown(MigrateFixture *fx, gconstpointer data)
{
	g_clear_object(&fx->dst);
	g_free(fx->dst_path);
	store_fixture_teardown(&fx->src, data);
}

static QsimRequest *
submit(MigrateFixture *fx, const gchar *commands)
{
	g_autoptr(GError) error = NULL;
	QsimRequest *r;

	fx->src.now += 1000;
	r = qsim_store_create_request(fx->src.store, "tiny", commands, 60, &error);
	g_assert_no_error(error);
	return r;
}

static void
append(MigrateFixture *fx, const gchar *uuid, QsimLogType type, const gchar *text)
{
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(GError) error = NULL;

	fx->src.now += 7;
	g_ptr_array_add(chunks, qsim_log_entry_new(type, 0, (const guint8 *)text, strlen(text)));
	g_assert_cmpint(qsim_store_append_logs(fx->src.store, uuid, chunks, &error), >, 0);
	g_assert_no_error(error);
}

/* Claims the oldest pending request (the one just submitted when the queue is empty) */
static void
claim(MigrateFixture *fx, const gchar *uuid)
{
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GError) error = NULL;

	fx->src.now += 100;
	r = qsim_store_claim_next(fx->src.store, AGENT, LEASE_MS, 0, &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
	g_assert_cmpstr(r->uuid, ==, uuid);
}

static void
finish(MigrateFixture *fx, const gchar *uuid, QsimStatus final, gint code, const gchar *msg)
{
	g_autoptr(GError) error = NULL;

	fx->src.now += 500;
	g_assert_true(qsim_store_finish_request(fx->src.store, uuid, AGENT, final, TRUE, code, msg,
	                                        NULL, &error));
	g_assert_no_error(error);
}

/* Two collected artifacts, and the paths that asked for them */
static void
add_artifacts(MigrateFixture *fx, const gchar *uuid)
{
	g_autoptr(GPtrArray) records =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sql = NULL;
	QsimArtifactRecord *a = qsim_artifact_record_new();
	QsimArtifactRecord *b = qsim_artifact_record_new();

	a->name = g_strdup("out/a.txt");
	a->kind = QSIM_ARTIFACT_FILE;
	a->size = 8;
	a->sha256 = g_strnfill(64, 'a');
	a->mode = 0644;
	b->name = g_strdup("out/link");
	b->kind = QSIM_ARTIFACT_SYMLINK;
	b->size = 5;
	b->sha256 = g_strnfill(64, 'b');
	b->mode = 0777;
	b->target = g_strdup("a.txt");
	g_ptr_array_add(records, a);
	g_ptr_array_add(records, b);
	fx->src.now += 3;
	g_assert_true(qsim_store_add_artifacts(fx->src.store, uuid, records, &error));
	g_assert_no_error(error);
	/* a raw write: the paths are set only when a request is created */
	sql = g_strdup_printf("UPDATE requests SET artifact_paths = '/out/a.txt\n/out/link'"
	                      " WHERE uuid = '%s'",
	                      uuid);
	store_test_raw_exec(fx->src.path, sql);
}

/* A source holding every state a request can be in, logs, artifacts, a template and a verdict */
static guint
fill_source(MigrateFixture *fx)
{
	QsimStore *s = fx->src.store;
	g_autoptr(GError) error = NULL;
	guint n = 0;

	for (guint i = 0; i < 7; i++) {
		g_autofree gchar *cmd = g_strdup_printf("echo TOKEN-%u", i);
		g_autoptr(QsimRequest) r = submit(fx, cmd);

		n++;
		switch (i) {
		case 0: /* done, started warm, output cut */
			claim(fx, r->uuid);
			g_assert_true(qsim_store_set_start_mode(s, r->uuid, "warm", &error));
			g_assert_true(qsim_store_mark_running(s, r->uuid, AGENT, &error));
			append(fx, r->uuid, QSIM_LOG_COMMAND, cmd);
			append(fx, r->uuid, QSIM_LOG_STDOUT, "TOKEN-0\n");
			append(fx, r->uuid, QSIM_LOG_STDERR, "");
			g_assert_true(qsim_store_set_output_truncated(s, r->uuid, &error));
			finish(fx, r->uuid, QSIM_STATUS_DONE, 0, NULL);
			add_artifacts(fx, r->uuid);
			break;
		case 1: /* failed with an exit code */
			claim(fx, r->uuid);
			g_assert_true(qsim_store_mark_running(s, r->uuid, AGENT, &error));
			append(fx, r->uuid, QSIM_LOG_STDOUT, "partial\n");
			finish(fx, r->uuid, QSIM_STATUS_FAILED, 3, "exit code 3");
			break;
		case 2: /* running, holding a lease */
			claim(fx, r->uuid);
			g_assert_true(qsim_store_mark_running(s, r->uuid, AGENT, &error));
			append(fx, r->uuid, QSIM_LOG_BOOT, "booted\n");
			break;
		default: /* pending: 3 is cancelled and 4 held below */
			break;
		}
		g_assert_no_error(error);
	}
	/* the cancel and the hold after the claims: the claims take the oldest pending */
	{
		g_autoptr(GPtrArray) pending = NULL;
		QsimRequestFilter filter;

		qsim_request_filter_init(&filter);
		filter.status = QSIM_STATUS_PENDING;
		pending = qsim_store_list_requests(s, &filter, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(pending->len, ==, 4);
		/* newest first: [3] is request 3, [2] request 4 */
		{
			g_autoptr(QsimRequest) c = qsim_store_cancel_request(
			    s, ((QsimRequest *)pending->pdata[3])->uuid, &error);
			g_assert_no_error(error);
		}
		{
			g_autoptr(QsimRequest) h = qsim_store_set_status(
			    s, ((QsimRequest *)pending->pdata[2])->uuid, QSIM_STATUS_HOLD, &error);
			g_assert_no_error(error);
		}
	}
	/* one request whose log spans several pages of the copy (1000 rows each) */
	{
		g_autoptr(QsimRequest) r = submit(fx, "yes | head -n 2500");
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

		n++;
		for (guint i = 0; i < 2500; i++) {
			g_autofree gchar *line = g_strdup_printf("y %u\n", i);

			g_ptr_array_add(chunks,
			                qsim_log_entry_new(QSIM_LOG_STDOUT, fx->src.now + i,
			                                   (const guint8 *)line, strlen(line)));
		}
		g_assert_cmpint(qsim_store_append_logs(s, r->uuid, chunks, &error), ==, 2500);
		g_assert_no_error(error);
	}
	{
		g_autoptr(QsimTemplateRecord) t = qsim_template_record_new("tiny", "h1");
		g_autoptr(QsimTemplateRecord) asked = NULL;
		g_autoptr(QsimAccelVerdict) v =
		    qsim_accel_verdict_new("h1", "key-1", FALSE, "no /dev/kvm", 0, fx->src.now);

		t->state = QSIM_TEMPLATE_RECORD_READY;
		t->dir = g_strdup("/var/lib/qsim/templates/tiny");
		t->size_bytes = 12345;
		t->build_ms = 4321;
		g_assert_true(qsim_store_upsert_template(s, t, &error));
		asked = qsim_store_request_prepare(s, "tiny", "h2", TRUE, &error);
		g_assert_no_error(error);
		g_assert_true(qsim_store_put_accel_verdict(s, v, &error));
		g_assert_no_error(error);
	}
	return n;
}

static GPtrArray *
export_all(QsimStore *store)
{
	g_autoptr(GPtrArray) all =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_import_row_free);
	g_autoptr(GError) error = NULL;
	gint64 cursor = 0;

	for (;;) {
		g_autoptr(GPtrArray) rows =
		    qsim_store_export_requests(store, cursor, 1000, 0, &cursor, &error);

		g_assert_no_error(error);
		if (rows->len == 0)
			return g_steal_pointer(&all);
		for (guint i = 0; i < rows->len; i++)
			g_ptr_array_add(all, g_steal_pointer(&rows->pdata[i]));
	}
}

static void
assert_same_request(const QsimImportRow *a, const QsimImportRow *b)
{
	const QsimRequest *x = a->request;
	const QsimRequest *y = b->request;

	g_assert_cmpstr(x->uuid, ==, y->uuid);
	g_assert_cmpstr(x->vm_name, ==, y->vm_name);
	g_assert_cmpstr(x->commands, ==, y->commands);
	g_assert_cmpint(x->timeout_s, ==, y->timeout_s);
	g_assert_cmpint(x->status, ==, y->status);
	g_assert_cmpint(x->created_at, ==, y->created_at);
	g_assert_cmpint(x->updated_at, ==, y->updated_at);
	g_assert_cmpint(x->started_at, ==, y->started_at);
	g_assert_cmpint(x->finished_at, ==, y->finished_at);
	g_assert_cmpint(x->has_exit_code, ==, y->has_exit_code);
	g_assert_cmpint(x->exit_code, ==, y->exit_code);
	g_assert_cmpstr(x->error, ==, y->error);
	g_assert_cmpstr(x->agent_id, ==, y->agent_id);
	g_assert_cmpint(x->lease_expires_at, ==, y->lease_expires_at);
	g_assert_cmpuint(x->attempts, ==, y->attempts);
	if (x->status == QSIM_STATUS_HOLD)
		g_assert_cmpint(x->held_from, ==, y->held_from);
	g_assert_cmpint(x->start_mode, ==, y->start_mode);
	g_assert_cmpint(x->output_truncated, ==, y->output_truncated);
	g_assert_cmpstr(a->end_reason, ==, b->end_reason);
	g_assert_true((x->artifact_paths == NULL && y->artifact_paths == NULL) ||
	              (x->artifact_paths != NULL && y->artifact_paths != NULL &&
	               g_strv_equal((const gchar *const *)x->artifact_paths,
	                            (const gchar *const *)y->artifact_paths)));
}

static void
assert_same_artifacts(QsimStore *a, QsimStore *b, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) x = qsim_store_list_artifacts(a, uuid, &error);
	g_autoptr(GPtrArray) y = qsim_store_list_artifacts(b, uuid, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(x->len, ==, y->len);
	for (guint i = 0; i < x->len; i++) {
		const QsimArtifactRecord *p = x->pdata[i];
		const QsimArtifactRecord *q = y->pdata[i];

		g_assert_cmpstr(p->name, ==, q->name);
		g_assert_cmpint(p->kind, ==, q->kind);
		g_assert_cmpuint(p->size, ==, q->size);
		g_assert_cmpstr(p->sha256, ==, q->sha256);
		g_assert_cmpuint(p->mode, ==, q->mode);
		g_assert_cmpstr(p->target, ==, q->target);
		g_assert_cmpint(p->created_at, ==, q->created_at);
	}
}

static void
assert_same_logs(QsimStore *a, QsimStore *b, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) x =
	    qsim_store_read_logs(a, uuid, 0, QSIM_STORE_LOGS_MAX_LIMIT, -1, &error);
	g_autoptr(GPtrArray) y =
	    qsim_store_read_logs(b, uuid, 0, QSIM_STORE_LOGS_MAX_LIMIT, -1, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(x->len, ==, y->len);
	for (guint i = 0; i < x->len; i++) {
		const QsimLogEntry *p = x->pdata[i];
		const QsimLogEntry *q = y->pdata[i];

		g_assert_cmpint(p->seq, ==, q->seq);
		g_assert_cmpint(p->log_type, ==, q->log_type);
		g_assert_cmpint(p->timestamp_ms, ==, q->timestamp_ms);
		g_assert_true(g_bytes_equal(p->output, q->output));
	}
}

static void
assert_same_store(QsimStore *a, QsimStore *b)
{
	g_autoptr(GPtrArray) x = export_all(a);
	g_autoptr(GPtrArray) y = export_all(b);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStats) sa = NULL;
	g_autoptr(QsimStats) sb = NULL;

	g_assert_cmpuint(x->len, ==, y->len);
	for (guint i = 0; i < x->len; i++) {
		assert_same_request(x->pdata[i], y->pdata[i]);
		assert_same_logs(a, b, ((QsimImportRow *)x->pdata[i])->request->uuid);
		assert_same_artifacts(a, b, ((QsimImportRow *)x->pdata[i])->request->uuid);
	}
	/* the counts the triggers keep follow the imported rows */
	sa = qsim_store_get_stats(a, &error);
	sb = qsim_store_get_stats(b, &error);
	g_assert_no_error(error);
	for (guint s = 0; s < QSIM_STATUS_COUNT; s++)
		g_assert_cmpuint(sa->counts[s], ==, sb->counts[s]);
}

static void
run_migrate(MigrateFixture *fx, guint batch, gboolean allow_nonempty, QsimStoreMigrateReport *r)
{
	g_autoptr(GError) error = NULL;
	QsimStoreMigrateOptions opt = {0};

	opt.batch = batch;
	opt.allow_nonempty = allow_nonempty;
	g_assert_true(qsim_store_migrate(fx->src.store, fx->dst, &opt, r, &error));
	g_assert_no_error(error);
}

static void
test_copies_everything(MigrateFixture *fx, gconstpointer data)
{
	guint n = fill_source(fx);
	QsimStoreMigrateReport r;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateRecord) t1 = NULL;
	g_autoptr(QsimTemplateRecord) t2 = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;
	g_autoptr(GPtrArray) listed_a = NULL;
	g_autoptr(GPtrArray) listed_b = NULL;

	/* batches of 3: the cursor crosses several transactions */
	run_migrate(fx, 3, FALSE, &r);
	g_assert_true(qsim_store_migrate_check(&r, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(r.source_requests, ==, n);
	g_assert_cmpuint(r.copied_requests, ==, n);
	g_assert_cmpuint(r.target_requests, ==, n);
	g_assert_cmpuint(r.source_logs, ==, 2500 + 5);
	g_assert_cmpuint(r.copied_logs, ==, r.source_logs);
	g_assert_cmpuint(r.active_requests, ==, 1);
	g_assert_cmpuint(r.source_artifacts, ==, 2);
	g_assert_cmpuint(r.copied_artifacts, ==, 2);
	g_assert_cmpuint(r.target_artifacts, ==, 2);
	g_assert_cmpuint(r.templates, ==, 2);
	g_assert_cmpuint(r.accel_verdicts, ==, 1);
	assert_same_store(fx->src.store, fx->dst);

	/* newest first in both: the submission order survived */
	listed_a = qsim_store_list_requests(fx->src.store, NULL, NULL, &error);
	listed_b = qsim_store_list_requests(fx->dst, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(listed_a->len, ==, listed_b->len);
	for (guint i = 0; i < listed_a->len; i++)
		g_assert_cmpstr(((QsimRequest *)listed_a->pdata[i])->uuid, ==,
		                ((QsimRequest *)listed_b->pdata[i])->uuid);

	t1 = qsim_store_get_template(fx->dst, "tiny", "h1", &error);
	g_assert_no_error(error);
	g_assert_cmpint(t1->state, ==, QSIM_TEMPLATE_RECORD_READY);
	g_assert_cmpstr(t1->dir, ==, "/var/lib/qsim/templates/tiny");
	g_assert_cmpuint(t1->size_bytes, ==, 12345);
	g_assert_cmpint(t1->build_ms, ==, 4321);
	t2 = qsim_store_get_template(fx->dst, "tiny", "h2", &error);
	g_assert_no_error(error);
	g_assert_cmpint(t2->prepare_requested_at, >, 0);
	g_assert_true(t2->prepare_force);
	v = qsim_store_get_accel_verdict(fx->dst, "h1", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(v->cache_key, ==, "key-1");
	g_assert_cmpstr(v->reason, ==, "no /dev/kvm");

	/* the copy is a working store: a claim there takes the oldest pending one */
	{
		g_autoptr(QsimRequest) c =
		    qsim_store_claim_next(fx->dst, "h2:1:0", LEASE_MS, 0, &error);

		g_assert_no_error(error);
		g_assert_nonnull(c);
		g_assert_cmpstr(c->commands, ==, "echo TOKEN-5");
		g_assert_cmpuint(c->attempts, ==, 1);
	}
}

static void
test_refuses_nonempty(MigrateFixture *fx, gconstpointer data)
{
	guint n = fill_source(fx);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) own = qsim_store_create_request(fx->dst, "tiny", "true", 5, &error);
	QsimStoreMigrateOptions opt = {0};
	QsimStoreMigrateReport r;
	guint64 nreq = 0, nlogs = 0;

	g_assert_no_error(error);
	g_assert_false(qsim_store_migrate(fx->src.store, fx->dst, &opt, &r, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_true(qsim_store_count_rows(fx->dst, &nreq, &nlogs, &error));
	g_assert_cmpuint(nreq, ==, 1);
	g_assert_cmpuint(nlogs, ==, 0);

	/* --force: copied next to the target's own request, which stays */
	run_migrate(fx, 0, TRUE, &r);
	g_assert_true(qsim_store_migrate_check(&r, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(r.copied_requests, ==, n);
	g_assert_cmpuint(r.target_requests, ==, n + 1);
	{
		g_autoptr(QsimRequest) still =
		    qsim_store_get_request(fx->dst, own->uuid, 36, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(still->commands, ==, "true");
	}
}

static void
test_resume(MigrateFixture *fx, gconstpointer data)
{
	guint n = fill_source(fx);
	QsimStoreMigrateReport r;
	g_autoptr(GError) error = NULL;
	gint64 big_logs;

	run_migrate(fx, 0, FALSE, &r);
	/* an interrupted copy: the newest request never arrived, the big log only in part */
	big_logs = store_test_raw_int(fx->dst_path, "SELECT COUNT(*) FROM request_logs"
	                                            " WHERE request_uuid = (SELECT uuid FROM"
	                                            " requests ORDER BY id DESC LIMIT 1)");
	g_assert_cmpint(big_logs, ==, 2500);
	store_test_raw_exec(fx->dst_path,
	                    "DELETE FROM request_logs WHERE request_uuid = (SELECT uuid FROM"
	                    " requests ORDER BY id DESC LIMIT 1) AND seq > 1700;"
	                    "DELETE FROM requests WHERE id = (SELECT MIN(id) FROM requests"
	                    " WHERE status = 'pending');");
	run_migrate(fx, 0, TRUE, &r);
	g_assert_true(qsim_store_migrate_check(&r, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(r.copied_requests, ==, 1);
	g_assert_cmpuint(r.copied_logs, ==, 800);
	g_assert_cmpuint(r.target_requests, ==, n);
	/* the artifacts were there already: none copied twice */
	g_assert_cmpuint(r.seen_artifacts, ==, 2);
	g_assert_cmpuint(r.copied_artifacts, ==, 0);
	g_assert_cmpuint(r.target_artifacts, ==, 2);
	/* the re-copied row comes after the others now: compare by UUID, not order */
	{
		g_autoptr(GPtrArray) rows = export_all(fx->src.store);

		for (guint i = 0; i < rows->len; i++) {
			const gchar *uuid = ((QsimImportRow *)rows->pdata[i])->request->uuid;
			g_autoptr(QsimRequest) got =
			    qsim_store_get_request(fx->dst, uuid, 36, &error);

			g_assert_no_error(error);
			assert_same_logs(fx->src.store, fx->dst, uuid);
		}
	}
}

static void
test_check_fails(void)
{
	QsimStoreMigrateReport ok = {0};
	QsimStoreMigrateReport r;
	g_autoptr(GError) error = NULL;

	ok.source_requests = ok.seen_requests = ok.copied_requests = ok.target_requests = 10;
	ok.source_logs = ok.seen_logs = ok.copied_logs = ok.target_logs = 40;
	g_assert_true(qsim_store_migrate_check(&ok, &error));
	g_assert_no_error(error);

	r = ok;
	r.target_requests = 9; /* a row lost on the way */
	g_assert_false(qsim_store_migrate_check(&r, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_STORE);
	g_assert_nonnull(strstr(error->message, "row-count check failed"));
	g_clear_error(&error);

	r = ok;
	r.target_logs = 41;
	g_assert_false(qsim_store_migrate_check(&r, &error));
	g_clear_error(&error);

	r = ok;
	r.seen_logs = r.copied_logs = r.target_logs = 39; /* the reader missed one */
	g_assert_false(qsim_store_migrate_check(&r, &error));
	g_clear_error(&error);

	r = ok;
	r.source_changed = TRUE;
	g_assert_false(qsim_store_migrate_check(&r, &error));
	g_assert_nonnull(strstr(error->message, "changed"));
	g_clear_error(&error);

	/* --force over a target with its own rows: more rows than the source is right */
	r = ok;
	r.target_requests_before = 3;
	r.target_requests = 13;
	g_assert_true(qsim_store_migrate_check(&r, &error));
	g_assert_no_error(error);
}

static gint
run_qsimd(const gchar *const *args, gchar **out, gchar **err)
{
	g_autofree gchar *qsimd = g_build_filename(BUILD_ROOT, "src", "daemon", "qsimd", NULL);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) env = g_get_environ();
	gint status = 0;

	g_ptr_array_add(argv, qsimd);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	/* no user config file may change the result */
	env = g_environ_setenv(env, "XDG_CONFIG_HOME", "/nonexistent", TRUE);
	g_assert_true(g_spawn_sync(NULL, (gchar **)argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL,
	                           out, err, &status, &error));
	g_assert_no_error(error);
	if (!WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
test_cli(MigrateFixture *fx, gconstpointer data)
{
	g_autofree gchar *from = spec_of(fx->src.path);
	g_autofree gchar *out_path = NULL;
	g_autofree gchar *to = NULL;
	g_autofree gchar *missing = g_strconcat("sqlite:", fx->src.dir, "/missing.db", NULL);

	if (data == INTO_PG) {
		g_autoptr(GError) error = NULL;

		out_path = qsim_pg_server_create_database(qsim_pg_server_get_shared(), &error);
		g_assert_no_error(error);
	} else {
		out_path = g_build_filename(fx->src.dir, "cli.db", NULL);
	}
	to = spec_of(out_path);
	fill_source(fx);
	{
		const gchar *args[] = {"migrate-store", "--from", from, "--to", to, NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		g_assert_cmpint(run_qsimd(args, &out, &err), ==, 0);
		g_assert_nonnull(strstr(out, "requests:       source 8, target 8 (copied 8"));
		g_assert_nonnull(strstr(out, "log chunks:     source 2505, target 2505"));
		g_assert_nonnull(strstr(out, "row-count check: ok"));
		g_assert_nonnull(strstr(err, "1 requests were acknowledged or running"));
	}
	{
		/* again: the target is not empty now */
		const gchar *args[] = {"migrate-store", "--from", from, "--to", to, NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		g_assert_cmpint(run_qsimd(args, &out, &err), ==, 1);
		g_assert_nonnull(strstr(err, "holds 8 requests already"));
	}
	{
		const gchar *args[] = {"migrate-store", "--from", from, "--to", to,
		                       "--resume",      NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		g_assert_cmpint(run_qsimd(args, &out, &err), ==, 0);
		g_assert_nonnull(strstr(out, "(copied 0, already there 8)"));
		g_assert_nonnull(strstr(out, "row-count check: ok"));
	}
	{
		const gchar *args[] = {"migrate-store", "--from", missing, "--to", to, NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		g_assert_cmpint(run_qsimd(args, &out, &err), ==, 1);
		g_assert_nonnull(strstr(err, "no database at"));
		g_assert_false(g_file_test(missing + strlen("sqlite:"), G_FILE_TEST_EXISTS));
	}
	{
		const gchar *usage[][7] = {
		    {"migrate-store", "--from", from, NULL},
		    {"migrate-store", "--from", from, "--to", from, NULL},
		    {"migrate-store", "--from", from, "--to", to, "--batch", "0"},
		    {"migrate-store", "--from", from, "--to", to, "extra", NULL},
		};

		for (guint i = 0; i < G_N_ELEMENTS(usage); i++) {
			const gchar *args[8] = {0};
			g_autofree gchar *out = NULL;
			g_autofree gchar *err = NULL;

			memcpy(args, usage[i], sizeof(usage[i]));
			g_assert_cmpint(run_qsimd(args, &out, &err), ==, 2);
			g_assert_true(g_str_has_prefix(err, "qsimd: "));
		}
	}
	{
		const gchar *args[] = {"migrate-store", "--from",      from,
		                       "--to",          "mysql://x/y", NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		g_assert_cmpint(run_qsimd(args, &out, &err), ==, 1);
		g_assert_nonnull(strstr(err, "must be sqlite:PATH or a postgresql:// URL"));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, way, fn)                                                                         \
	g_test_add(path, MigrateFixture, way, migrate_setup, fn, migrate_teardown)
	/* plain: SQLite into SQLite; -pg: PostgreSQL into SQLite */
	ADD("/store/migrate/into-sqlite/copies-everything", INTO_SQLITE, test_copies_everything);
	ADD("/store/migrate/into-sqlite/refuses-nonempty", INTO_SQLITE, test_refuses_nonempty);
	ADD("/store/migrate/into-sqlite/resume", INTO_SQLITE, test_resume);
	ADD("/store/migrate/into-sqlite/cli", INTO_SQLITE, test_cli);
	if (qsim_pg_test_wanted()) {
		ADD("/store/migrate/sqlite-into-pg/copies-everything", INTO_PG,
		    test_copies_everything);
		ADD("/store/migrate/sqlite-into-pg/refuses-nonempty", INTO_PG,
		    test_refuses_nonempty);
		ADD("/store/migrate/sqlite-into-pg/resume", INTO_PG, test_resume);
		ADD("/store/migrate/sqlite-into-pg/cli", INTO_PG, test_cli);
	}
	g_test_add_func("/store/migrate/check-fails", test_check_fails);
	return g_test_run();
}
