#include "config.h"

#include <string.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

#define LEASE_MS 30000
#define HOST "host-a"

static QsimTemplateRecord *
ready_record(const gchar *vm_name, const gchar *host)
{
	QsimTemplateRecord *r = qsim_template_record_new(vm_name, host);

	r->state = QSIM_TEMPLATE_RECORD_READY;
	r->dir = g_strdup("/var/lib/qsim/templates/tiny");
	r->size_bytes = 69632000;
	r->image_sha256 = g_strdup("ab12");
	r->image_size = 104857600;
	r->image_mtime_us = 1764000000123456;
	r->config_hash = g_strdup("cafe");
	r->qemu_version = g_strdup("7.2.0");
	r->machine = g_strdup("");
	r->build_started_at = 1764000000000;
	r->build_finished_at = 1764000005000;
	r->build_ms = 5000;
	return r;
}

static void
on_template_changed(QsimStore *store, const gchar *vm_name, const gchar *host, gpointer data)
{
	g_ptr_array_add(data, g_strdup_printf("%s@%s", vm_name, host));
}

static void
test_template_crud(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateRecord) in = ready_record("tiny", HOST);
	g_autoptr(QsimTemplateRecord) got = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);

	g_signal_connect(fx->store, "template-changed", G_CALLBACK(on_template_changed), seen);
	g_assert_null(qsim_store_get_template(fx->store, "tiny", HOST, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);

	g_assert_true(qsim_store_upsert_template(fx->store, in, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(seen->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(seen, 0), ==, "tiny@" HOST);
	got = qsim_store_get_template(fx->store, "tiny", HOST, &error);
	g_assert_no_error(error);
	g_assert_cmpint(got->state, ==, QSIM_TEMPLATE_RECORD_READY);
	g_assert_cmpstr(got->dir, ==, in->dir);
	g_assert_cmpuint(got->size_bytes, ==, 69632000);
	g_assert_cmpstr(got->image_sha256, ==, "ab12");
	g_assert_cmpuint(got->image_size, ==, 104857600);
	g_assert_cmpint(got->image_mtime_us, ==, 1764000000123456);
	g_assert_cmpstr(got->config_hash, ==, "cafe");
	g_assert_cmpstr(got->qemu_version, ==, "7.2.0");
	g_assert_cmpstr(got->machine, ==, "");
	g_assert_cmpint(got->build_started_at, ==, 1764000000000);
	g_assert_cmpint(got->build_finished_at, ==, 1764000005000);
	g_assert_cmpint(got->build_ms, ==, 5000);
	g_assert_null(got->reason);
	g_assert_cmpint(got->prepare_requested_at, ==, 0);
	g_assert_cmpint(got->updated_at, ==, fx->now);

	/* the same VM on another host is another row; an update replaces the state */
	{
		g_autoptr(QsimTemplateRecord) other = ready_record("tiny", "host-b");
		g_autoptr(QsimTemplateRecord) stale = qsim_template_record_copy(got);

		g_assert_true(qsim_store_upsert_template(fx->store, other, &error));
		fx->now += 1000;
		stale->state = QSIM_TEMPLATE_RECORD_STALE;
		g_free(stale->reason);
		stale->reason = g_strdup("image changed: mtime\xff");
		g_assert_true(qsim_store_upsert_template(fx->store, stale, &error));
		g_assert_no_error(error);
	}
	g_clear_pointer(&got, qsim_template_record_free);
	got = qsim_store_get_template(fx->store, "tiny", HOST, &error);
	g_assert_cmpint(got->state, ==, QSIM_TEMPLATE_RECORD_STALE);
	g_assert_true(g_utf8_validate(got->reason, -1, NULL)); /* made valid for storage */
	g_assert_nonnull(strstr(got->reason, "image changed"));
	g_assert_cmpint(got->updated_at, ==, fx->now);

	rows = qsim_store_list_templates(fx->store, NULL, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 2);
	g_assert_cmpstr(((QsimTemplateRecord *)rows->pdata[0])->host, ==, HOST);
	g_assert_cmpstr(((QsimTemplateRecord *)rows->pdata[1])->host, ==, "host-b");
	g_clear_pointer(&rows, g_ptr_array_unref);
	rows = qsim_store_list_templates(fx->store, "host-b", FALSE, &error);
	g_assert_cmpuint(rows->len, ==, 1);

	/* validation */
	{
		g_autoptr(QsimTemplateRecord) bad = qsim_template_record_new("", HOST);

		g_assert_false(qsim_store_upsert_template(fx->store, bad, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_clear_error(&error);
		g_free(bad->vm_name);
		bad->vm_name = g_strdup("tiny");
		bad->state = (QsimTemplateRecordState)42;
		g_assert_false(qsim_store_upsert_template(fx->store, bad, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_clear_error(&error);
		g_assert_null(qsim_store_get_template(fx->store, "tiny", "", &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_clear_error(&error);
	}
	g_assert_cmpuint(seen->len, ==, 3);
	/* names round-trip */
	for (guint i = 0; i < QSIM_TEMPLATE_RECORD_STATE_COUNT; i++) {
		QsimTemplateRecordState s = QSIM_TEMPLATE_RECORD_NONE;

		g_assert_true(qsim_template_record_state_from_string(
		    qsim_template_record_state_to_string(i), &s));
		g_assert_cmpint(s, ==, i);
	}
	g_assert_false(qsim_template_record_state_from_string("Ready", NULL));
}

static void
test_prepare_request_and_claim(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateRecord) r = NULL;
	g_autoptr(GPtrArray) pending = NULL;
	gboolean claimed = FALSE;
	gboolean force = TRUE;

	/* a request for a VM without a row creates one (state none) */
	r = qsim_store_request_prepare(fx->store, "tiny", HOST, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpint(r->state, ==, QSIM_TEMPLATE_RECORD_NONE);
	g_assert_cmpint(r->prepare_requested_at, ==, fx->now);
	g_assert_false(r->prepare_force);
	g_clear_pointer(&r, qsim_template_record_free);
	/* a second request keeps the first time; force only turns on */
	fx->now += 500;
	r = qsim_store_request_prepare(fx->store, "tiny", HOST, TRUE, &error);
	g_assert_cmpint(r->prepare_requested_at, ==, fx->now - 500);
	g_assert_true(r->prepare_force);
	g_clear_pointer(&r, qsim_template_record_free);
	r = qsim_store_request_prepare(fx->store, "tiny", HOST, FALSE, &error);
	g_assert_true(r->prepare_force);
	g_clear_pointer(&r, qsim_template_record_free);
	fx->now += 500;
	r = qsim_store_request_prepare(fx->store, "other", HOST, FALSE, &error);
	g_clear_pointer(&r, qsim_template_record_free);
	r = qsim_store_request_prepare(fx->store, "tiny", "host-b", FALSE, &error);
	g_clear_pointer(&r, qsim_template_record_free);

	/* the poll sees this host's requests, oldest first */
	pending = qsim_store_list_templates(fx->store, HOST, TRUE, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(pending->len, ==, 2);
	g_assert_cmpstr(((QsimTemplateRecord *)pending->pdata[0])->vm_name, ==, "tiny");
	g_assert_cmpstr(((QsimTemplateRecord *)pending->pdata[1])->vm_name, ==, "other");
	g_clear_pointer(&pending, g_ptr_array_unref);

	/* the claim takes the request and its force, and sets building */
	fx->now += 1000;
	g_assert_true(qsim_store_claim_prepare(fx->store, "tiny", HOST, &claimed, &force, &error));
	g_assert_no_error(error);
	g_assert_true(claimed);
	g_assert_true(force);
	r = qsim_store_get_template(fx->store, "tiny", HOST, &error);
	g_assert_cmpint(r->state, ==, QSIM_TEMPLATE_RECORD_BUILDING);
	g_assert_cmpint(r->build_started_at, ==, fx->now);
	g_assert_cmpint(r->prepare_requested_at, ==, 0);
	g_assert_false(r->prepare_force);
	/* the builder is this process, in the agent id format recovery checks */
	{
		g_autofree gchar *me = qsim_store_dup_builder_id();
		g_autofree gchar *pid = g_strdup_printf(":%d:0", (gint)getpid());

		g_assert_cmpstr(r->builder, ==, me);
		g_assert_true(g_str_has_suffix(me, pid));
	}
	g_clear_pointer(&r, qsim_template_record_free);

	/* while it builds, nobody else claims; a new request waits for later */
	r = qsim_store_request_prepare(fx->store, "tiny", HOST, FALSE, &error);
	g_clear_pointer(&r, qsim_template_record_free);
	g_assert_true(qsim_store_claim_prepare(fx->store, "tiny", HOST, &claimed, &force, &error));
	g_assert_false(claimed);
	g_assert_false(force);
	r = qsim_store_get_template(fx->store, "tiny", HOST, &error);
	g_assert_cmpint(r->prepare_requested_at, !=, 0);
	g_clear_pointer(&r, qsim_template_record_free);

	/* the build's result keeps that request (upsert never touches it) */
	{
		g_autoptr(QsimTemplateRecord) done = ready_record("tiny", HOST);

		g_assert_true(qsim_store_upsert_template(fx->store, done, &error));
		r = qsim_store_get_template(fx->store, "tiny", HOST, &error);
		g_assert_cmpint(r->state, ==, QSIM_TEMPLATE_RECORD_READY);
		g_assert_cmpint(r->prepare_requested_at, !=, 0);
		/* a finished build has no builder any more */
		g_assert_null(r->builder);
		g_clear_pointer(&r, qsim_template_record_free);
	}

	/* a claim with no request (a background build) creates the row, force FALSE */
	g_assert_true(qsim_store_claim_prepare(fx->store, "fresh", HOST, &claimed, &force, &error));
	g_assert_true(claimed);
	g_assert_false(force);

	/* a build abandoned past the limit (its process died) can be claimed again */
	fx->now += QSIM_STORE_TEMPLATE_BUILD_STALE_MS - 1;
	g_assert_true(qsim_store_claim_prepare(fx->store, "fresh", HOST, &claimed, NULL, &error));
	g_assert_false(claimed);
	fx->now += 1;
	g_assert_true(qsim_store_claim_prepare(fx->store, "fresh", HOST, &claimed, NULL, &error));
	g_assert_true(claimed);
}

typedef struct {
	const gchar *path;
	GMutex lock;
	GCond cond;
	guint ready;
	guint started;
} ClaimRace;

#define RACE_VMS 150

static gpointer
claim_thread(gpointer data)
{
	ClaimRace *race = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) store = qsim_store_open(race->path, &error);
	GPtrArray *won = g_ptr_array_new_with_free_func(g_free);
	gboolean downwards;

	g_assert_no_error(error);
	/* start together, from opposite ends, so both contend where they meet */
	g_mutex_lock(&race->lock);
	downwards = race->ready == 1;
	race->ready++;
	g_cond_broadcast(&race->cond);
	while (race->ready < 2)
		g_cond_wait(&race->cond, &race->lock);
	g_mutex_unlock(&race->lock);
	for (guint i = 0; i < RACE_VMS; i++) {
		g_autofree gchar *vm = g_strdup_printf("vm%03u", downwards ? RACE_VMS - 1 - i : i);
		gboolean claimed = FALSE;

		g_assert_true(qsim_store_claim_prepare(store, vm, HOST, &claimed, NULL, &error));
		g_assert_no_error(error);
		if (claimed)
			g_ptr_array_add(won, g_steal_pointer(&vm));
	}
	return won;
}

/* Two connections claim the same VMs at the same time: each VM is built exactly once */
static void
test_claim_once_two_connections(StoreFixture *fx, gconstpointer data)
{
	ClaimRace race = {.path = fx->path};
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) all = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) a = NULL;
	g_autoptr(GPtrArray) b = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	GThread *ta, *tb;

	g_mutex_init(&race.lock);
	g_cond_init(&race.cond);
	for (guint i = 0; i < RACE_VMS; i++) {
		g_autofree gchar *vm = g_strdup_printf("vm%03u", i);
		g_autoptr(QsimTemplateRecord) r =
		    qsim_store_request_prepare(fx->store, vm, HOST, FALSE, &error);

		g_assert_no_error(error);
	}
	ta = g_thread_new("claim-a", claim_thread, &race);
	tb = g_thread_new("claim-b", claim_thread, &race);
	a = g_thread_join(ta);
	b = g_thread_join(tb);
	for (guint i = 0; i < a->len; i++)
		g_assert_true(g_hash_table_add(all, a->pdata[i]));
	for (guint i = 0; i < b->len; i++)
		g_assert_true(g_hash_table_add(all, b->pdata[i])); /* never claimed twice */
	g_assert_cmpuint(g_hash_table_size(all), ==, RACE_VMS);
	g_test_message("claims: %u by one connection, %u by the other", a->len, b->len);
	rows = qsim_store_list_templates(fx->store, HOST, TRUE, &error);
	g_assert_cmpuint(rows->len, ==, 0); /* every request taken */
	g_mutex_clear(&race.lock);
	g_cond_clear(&race.cond);
}

static void
test_start_mode(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(QsimRequest) got = NULL;

	r = qsim_store_create_request(fx->store, "tiny", "true", 60, &error);
	g_assert_no_error(error);
	g_assert_cmpint(r->start_mode, ==, QSIM_START_MODE_NONE);
	/* no VM yet: nothing to record */
	g_assert_false(qsim_store_set_start_mode(fx->store, r->uuid, "cold", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "pending"));
	g_clear_error(&error);
	claimed = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);
	g_assert_nonnull(claimed);
	g_assert_true(qsim_store_set_start_mode(fx->store, r->uuid, "snapshot", &error));
	g_assert_no_error(error);
	/* a fallback records the cold boot that replaced the restore: the last call wins */
	g_assert_true(qsim_store_set_start_mode(fx->store, r->uuid, "cold", &error));
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_cmpint(got->start_mode, ==, QSIM_START_MODE_COLD);
	g_clear_pointer(&got, qsim_request_free);
	g_assert_true(qsim_store_set_start_mode(fx->store, r->uuid, "warm", &error));
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_cmpint(got->start_mode, ==, QSIM_START_MODE_WARM);
	g_assert_cmpstr(qsim_start_mode_to_string(got->start_mode), ==, "warm");

	g_assert_false(qsim_store_set_start_mode(fx->store, r->uuid, "hot", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, "start mode must be cold, snapshot or warm, not 'hot'");
	g_clear_error(&error);
	g_assert_false(qsim_store_set_start_mode(fx->store, r->uuid, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(qsim_store_set_start_mode(fx->store, "nope", "cold", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(qsim_store_set_start_mode(fx->store, "123e4567-e89b-42d3-a456-426614174000",
	                                         "cold", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	/* once finished (the lease dropped) it stays as recorded */
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent-1", &error));
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent-1", QSIM_STATUS_DONE,
	                                        TRUE, 0, NULL, NULL, &error));
	g_assert_false(qsim_store_set_start_mode(fx->store, r->uuid, "cold", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	g_clear_pointer(&got, qsim_request_free);
	got = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_cmpint(got->start_mode, ==, QSIM_START_MODE_WARM);
}

/* Runs one request through claim, start mode, running (after @queue_ms) and done */
static void
run_one(StoreFixture *fx, const gchar *mode, gint64 queue_ms)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "true", 60, &error);
	g_autoptr(QsimRequest) c = qsim_store_claim_next(fx->store, "agent-1", LEASE_MS, 0, &error);

	g_assert_nonnull(c);
	g_assert_cmpstr(c->uuid, ==, r->uuid);
	fx->now += queue_ms;
	if (mode != NULL)
		g_assert_true(qsim_store_set_start_mode(fx->store, r->uuid, mode, &error));
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent-1", &error));
	fx->now += 10;
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent-1", QSIM_STATUS_DONE,
	                                        TRUE, 0, NULL, NULL, &error));
	g_assert_no_error(error);
}

static void
test_stats_by_start_mode(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStats) stats = NULL;
	g_autoptr(QsimRequest) pending = NULL;

	run_one(fx, "cold", 3000);
	run_one(fx, "cold", 2000);
	run_one(fx, "cold", 4000);
	run_one(fx, "snapshot", 900);
	run_one(fx, "snapshot", 700);
	run_one(fx, "warm", 300);
	run_one(fx, NULL, 100); /* started by an older agent: no mode */
	pending = qsim_store_create_request(fx->store, "tiny", "true", 60, &error);
	stats = qsim_store_get_stats(fx->store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(stats->start_counts[QSIM_START_MODE_COLD], ==, 3);
	g_assert_cmpuint(stats->start_counts[QSIM_START_MODE_SNAPSHOT], ==, 2);
	g_assert_cmpuint(stats->start_counts[QSIM_START_MODE_WARM], ==, 1);
	g_assert_cmpuint(stats->start_counts[QSIM_START_MODE_NONE], ==, 2);
	g_assert_true(stats->has_start_latency[QSIM_START_MODE_COLD]);
	g_assert_cmpint(stats->start_p50_ms[QSIM_START_MODE_COLD], ==, 3000);
	/* nearest rank of two: the lower one */
	g_assert_cmpint(stats->start_p50_ms[QSIM_START_MODE_SNAPSHOT], ==, 700);
	g_assert_cmpint(stats->start_p50_ms[QSIM_START_MODE_WARM], ==, 300);
	g_assert_cmpuint(stats->total, ==, 8);
}

/* An empty database has no start-mode latencies, not zeros */
static void
test_stats_start_mode_empty(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStats) stats = qsim_store_get_stats(fx->store, &error);

	g_assert_no_error(error);
	for (guint m = 0; m < QSIM_START_MODE_COUNT; m++) {
		g_assert_cmpuint(stats->start_counts[m], ==, 0);
		g_assert_false(stats->has_start_latency[m]);
	}
}

/* One verdict per host, replaced whole, visible to another connection, validated. */
static void
test_accel_verdicts(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(QsimAccelVerdict) a =
	    qsim_accel_verdict_new("host-a", "v1:aaa", FALSE, "no KVM device at /dev/kvm", 0, 1000);
	g_autoptr(QsimAccelVerdict) a2 = qsim_accel_verdict_new(
	    "host-a", "v1:bbb", TRUE, "KVM at /dev/kvm booted a test kernel in 0.41 s", 410, 2000);
	g_autoptr(QsimAccelVerdict) b =
	    qsim_accel_verdict_new("host-b", "v1:ccc", FALSE, "bad \xff\x01 bytes", 3000, 1500);
	g_autoptr(QsimAccelVerdict) bad = qsim_accel_verdict_new("", "v1:x", FALSE, "", 0, 0);
	g_autoptr(QsimAccelVerdict) got = NULL;
	g_autoptr(QsimAccelVerdict) seen = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) other = NULL;

	got = qsim_store_get_accel_verdict(fx->store, "host-a", &error);
	g_assert_null(got);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);

	g_assert_true(qsim_store_put_accel_verdict(fx->store, a, &error));
	g_assert_true(qsim_store_put_accel_verdict(fx->store, b, &error));
	g_assert_true(qsim_store_put_accel_verdict(fx->store, a2, &error));
	g_assert_no_error(error);
	got = qsim_store_get_accel_verdict(fx->store, "host-a", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->cache_key, ==, "v1:bbb");
	g_assert_true(got->kvm);
	g_assert_cmpint(got->probe_ms, ==, 410);
	g_assert_cmpint(got->probed_at, ==, 2000);
	g_assert_cmpstr(got->reason, ==, a2->reason);

	/* another connection (another process) sees the same rows */
	other = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	all = qsim_store_list_accel_verdicts(other, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 2);
	seen = qsim_accel_verdict_copy(g_ptr_array_index(all, 1));
	g_assert_cmpstr(seen->host, ==, "host-b");
	/* QEMU's words are stored as valid UTF-8 */
	g_assert_true(g_utf8_validate(seen->reason, -1, NULL));

	g_assert_false(qsim_store_put_accel_verdict(fx->store, bad, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/templates/crud", test_template_crud);
	ADD("/qsim/store/templates/prepare-and-claim", test_prepare_request_and_claim);
	ADD("/qsim/store/templates/claim-once-two-connections", test_claim_once_two_connections);
	ADD("/qsim/store/start-mode", test_start_mode);
	ADD("/qsim/store/accel-verdicts", test_accel_verdicts);
	ADD("/qsim/store/stats/start-mode", test_stats_by_start_mode);
	ADD("/qsim/store/stats/start-mode-empty", test_stats_start_mode_empty);
#undef ADD
	return g_test_run();
}
