/*
 * Schema v7: hosts with their heartbeat and agents, each host's VM catalogue,
 * and the VM slot table that MAX_CONCURRENT_VMS and MAX_VMS_PER_HOST count.
 */
#include "config.h"

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-hosts.h"

#define LEASE_MS 60000

static QsimHostRecord *
host_new(const gchar *host, const gchar *const *agents)
{
	QsimHostRecord *h = qsim_host_record_new(host);

	h->version = g_strdup("1.2.3");
	h->accel = g_strdup("tcg");
	h->max_vms = 3;
	h->max_total = 10;
	h->stale_after_ms = 5000;
	g_strfreev(h->agent_ids);
	h->agent_ids = g_strdupv((gchar **)agents);
	return h;
}

static QsimHostVm *
vm_new(const gchar *host, const gchar *name, guint parked)
{
	QsimHostVm *v = qsim_host_vm_new(host, name);

	v->valid = TRUE;
	v->image = g_strdup_printf("%s.qcow2", name);
	v->format = g_strdup("qcow2");
	v->size_bytes = 4096;
	v->config = g_strdup_printf("%s.conf", name);
	v->config_hash = g_strdup("abc");
	v->image_id = g_strdup("4096:17");
	v->accel_mode = g_strdup("auto");
	v->accel_source = g_strdup("default");
	v->warm_size = 2;
	v->warm_parked = parked;
	return v;
}

static void
publish(StoreFixture *fx, QsimHostRecord *h, GPtrArray *vms)
{
	g_autoptr(GError) error = NULL;
	gboolean ok = qsim_store_publish_host(fx->store, h, vms, &error);

	g_assert_no_error(error);
	g_assert_true(ok);
}

static void
test_hosts_publish(StoreFixture *fx, gconstpointer data)
{
	static const gchar *const a_agents[] = {"node-a:100:0", "node-a:100:1", NULL};
	static const gchar *const b_agents[] = {"node-b:200:0", NULL};
	g_autoptr(QsimHostRecord) a = host_new("node-a", a_agents);
	g_autoptr(QsimHostRecord) b = host_new("node-b", b_agents);
	g_autoptr(GPtrArray) a_vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	g_autoptr(GPtrArray) hosts = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	const QsimHostRecord *h;
	const QsimHostVm *v;

	g_ptr_array_add(a_vms, vm_new("node-a", "tiny", 1));
	g_ptr_array_add(a_vms, vm_new("node-a", "big", 0));
	publish(fx, a, a_vms);
	publish(fx, b, NULL);

	hosts = qsim_store_list_hosts(fx->store, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(hosts->len, ==, 2);
	h = hosts->pdata[0];
	g_assert_cmpstr(h->host, ==, "node-a");
	g_assert_cmpstr(h->version, ==, "1.2.3");
	g_assert_cmpstr(h->accel, ==, "tcg");
	g_assert_cmpuint(h->max_vms, ==, 3);
	g_assert_cmpuint(h->max_total, ==, 10);
	g_assert_cmpint(h->heartbeat_at, ==, fx->now);
	g_assert_cmpuint(g_strv_length(h->agent_ids), ==, 2);
	g_assert_cmpstr(h->agent_ids[0], ==, "node-a:100:0");
	g_assert_false(qsim_host_record_is_stale(h, fx->now));

	rows = qsim_store_list_host_vms(fx->store, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 2);
	v = rows->pdata[0];
	g_assert_cmpstr(v->vm_name, ==, "big");
	v = rows->pdata[1];
	g_assert_cmpstr(v->vm_name, ==, "tiny");
	g_assert_cmpstr(v->host, ==, "node-a");
	g_assert_true(v->valid);
	g_assert_cmpstr(v->image, ==, "tiny.qcow2");
	g_assert_cmpuint(v->size_bytes, ==, 4096);
	g_assert_cmpstr(v->config_hash, ==, "abc");
	g_assert_cmpstr(v->image_id, ==, "4096:17");
	g_assert_cmpuint(v->warm_size, ==, 2);
	g_assert_cmpuint(v->warm_parked, ==, 1);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* a heartbeat alone keeps the catalogue; a new catalogue replaces it whole */
	fx->now += 1000;
	publish(fx, a, NULL);
	rows = qsim_store_list_host_vms(fx->store, "tiny", "node-a", &error);
	g_assert_cmpuint(rows->len, ==, 1);
	g_clear_pointer(&rows, g_ptr_array_unref);
	g_ptr_array_remove_index(a_vms, 0);
	publish(fx, a, a_vms);
	rows = qsim_store_list_host_vms(fx->store, "tiny", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, 0);
	g_clear_pointer(&rows, g_ptr_array_unref);

	/* node-b stops publishing: stale after stale_after_ms, its agents drop out */
	fx->now += 6000;
	publish(fx, a, NULL);
	g_clear_pointer(&hosts, g_ptr_array_unref);
	hosts = qsim_store_list_hosts(fx->store, &error);
	h = hosts->pdata[1];
	g_assert_cmpstr(h->host, ==, "node-b");
	g_assert_true(qsim_host_record_is_stale(h, fx->now));
	g_assert_cmpuint(g_strv_length(h->agent_ids), ==, 0);
	g_assert_false(qsim_host_record_is_stale(hosts->pdata[0], fx->now));
}

static void
test_hosts_publish_invalid(StoreFixture *fx, gconstpointer data)
{
	static const gchar *const wrong[] = {"node-b:1:0", NULL};
	static const gchar *const none[] = {NULL};
	g_autoptr(QsimHostRecord) bad_host = host_new("no:colons", none);
	g_autoptr(QsimHostRecord) bad_agent = host_new("node-a", wrong);
	g_autoptr(QsimHostRecord) ok = host_new("node-a", none);
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_store_publish_host(fx->store, bad_host, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(qsim_store_publish_host(fx->store, bad_agent, NULL, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	/* a VM row of another host is refused, and nothing of the publish is kept */
	g_ptr_array_add(vms, vm_new("node-z", "tiny", 0));
	g_assert_false(qsim_store_publish_host(fx->store, ok, vms, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM hosts"), ==, 0);
}

static gint64
claim_slot(StoreFixture *fx, const gchar *owner, QsimVmSlotKind kind, guint max_total,
           guint max_host)
{
	g_autoptr(GError) error = NULL;
	gint64 id = -1;

	g_assert_true(qsim_store_claim_slot(fx->store, owner, kind, "tiny", max_total, max_host,
	                                    &id, &error));
	g_assert_no_error(error);
	return id;
}

/* every kind of QEMU counts against both caps, in the claim's own transaction */
static void
test_slots_caps(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) slots = NULL;
	g_autofree gchar *uuid1 = store_test_new_request(fx);
	g_autofree gchar *uuid2 = store_test_new_request(fx);
	gint64 warm;
	gint64 build;
	gboolean released = FALSE;
	QsimStatus st;

	warm = claim_slot(fx, "node-a:1:0", QSIM_VM_SLOT_WARM, 3, 2);
	g_assert_cmpint(warm, >, 0);
	build = claim_slot(fx, "node-a:1:0", QSIM_VM_SLOT_BUILD, 3, 2);
	g_assert_cmpint(build, >, 0);
	/* node-a is full (MAX_VMS_PER_HOST 2): not a warm VM, not a request */
	g_assert_cmpint(claim_slot(fx, "node-a:2:0", QSIM_VM_SLOT_WARM, 3, 2), ==, 0);
	g_assert_null(
	    qsim_store_claim_next_capped(fx->store, "node-a:2:0", LEASE_MS, 3, 2, &error));
	g_assert_no_error(error);
	/* node-b is not: its request takes the last slot of the database (3) */
	r = qsim_store_claim_next_capped(fx->store, "node-b:3:0", LEASE_MS, 3, 2, &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
	g_assert_cmpstr(r->uuid, ==, uuid1);
	g_assert_cmpint(claim_slot(fx, "node-b:3:0", QSIM_VM_SLOT_WARM, 3, 2), ==, 0);
	slots = qsim_store_list_slots(fx->store, NULL, &error);
	g_assert_cmpuint(slots->len, ==, 3);
	g_assert_cmpint(((QsimVmSlot *)slots->pdata[2])->kind, ==, QSIM_VM_SLOT_REQUEST);
	g_assert_cmpstr(((QsimVmSlot *)slots->pdata[2])->ref, ==, uuid1);
	g_assert_cmpstr(((QsimVmSlot *)slots->pdata[2])->host, ==, "node-b");
	g_clear_pointer(&slots, g_ptr_array_unref);

	/* the build's QEMU is gone: a slot on node-a again */
	g_assert_true(qsim_store_release_slot(fx->store, build, -1, &released, &error));
	g_assert_true(released);
	g_clear_pointer(&r, qsim_request_free);
	r = qsim_store_claim_next_capped(fx->store, "node-a:2:0", LEASE_MS, 3, 2, &error);
	g_assert_nonnull(r);
	g_assert_cmpstr(r->uuid, ==, uuid2);
	/* finishing frees the request's slot with its lease */
	g_assert_true(qsim_store_mark_running(fx->store, uuid2, "node-a:2:0", &error));
	g_assert_true(qsim_store_finish_request(fx->store, uuid2, "node-a:2:0", QSIM_STATUS_DONE,
	                                        TRUE, 0, NULL, &st, &error));
	g_assert_cmpint(claim_slot(fx, "node-a:1:0", QSIM_VM_SLOT_WARM, 3, 2), >, 0);
	/* an expired lease does not count (its agent and QEMU are gone) ... */
	fx->now += LEASE_MS + 1;
	g_assert_cmpint(claim_slot(fx, "node-b:3:0", QSIM_VM_SLOT_WARM, 3, 0), >, 0);
	/* ... and recovery removes its slot */
	g_assert_true(qsim_store_recover_request(fx->store, uuid1, "node-b:3:0", FALSE,
	                                         "agent lost", &st, &error));
	slots = qsim_store_list_slots(fx->store, "node-b", &error);
	g_assert_cmpuint(slots->len, ==, 1);
	g_assert_cmpint(((QsimVmSlot *)slots->pdata[0])->kind, ==, QSIM_VM_SLOT_WARM);
	/* a request slot cannot be taken outside a claim, a bad owner is refused */
	g_assert_false(qsim_store_claim_slot(fx->store, "node-a:1:0", QSIM_VM_SLOT_REQUEST, "tiny",
	                                     0, 0, &warm, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(qsim_store_claim_slot(fx->store, "nohost", QSIM_VM_SLOT_WARM, "tiny", 0, 0,
	                                     &warm, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

/* a warm VM handed to a request: one QEMU, one slot */
static void
test_slots_adopt(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) slots = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);
	gint64 warm = claim_slot(fx, "node-a:1:0", QSIM_VM_SLOT_WARM, 2, 0);
	gboolean adopted = FALSE;
	gboolean released = TRUE;
	QsimStatus st;

	r = qsim_store_claim_next_capped(fx->store, "node-a:1:1", LEASE_MS, 2, 0, &error);
	g_assert_nonnull(r);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM vm_slots"), ==, 2);
	g_assert_true(qsim_store_adopt_slot(fx->store, warm, uuid, "node-a:1:1", &adopted, &error));
	g_assert_no_error(error);
	g_assert_true(adopted);
	slots = qsim_store_list_slots(fx->store, NULL, &error);
	g_assert_cmpuint(slots->len, ==, 1);
	g_assert_cmpint(((QsimVmSlot *)slots->pdata[0])->id, ==, warm);
	g_assert_cmpint(((QsimVmSlot *)slots->pdata[0])->kind, ==, QSIM_VM_SLOT_REQUEST);
	g_assert_cmpstr(((QsimVmSlot *)slots->pdata[0])->ref, ==, uuid);
	/* the warm pool's late release of that slot must not free the request's */
	g_assert_true(
	    qsim_store_release_slot(fx->store, warm, QSIM_VM_SLOT_WARM, &released, &error));
	g_assert_false(released);
	/* adopting twice is refused without losing the request's slot */
	g_assert_true(qsim_store_adopt_slot(fx->store, warm, uuid, "node-a:1:1", &adopted, &error));
	g_assert_false(adopted);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM vm_slots"), ==, 1);
	g_assert_true(qsim_store_mark_running(fx->store, uuid, "node-a:1:1", &error));
	g_assert_true(qsim_store_finish_request(fx->store, uuid, "node-a:1:1", QSIM_STATUS_DONE,
	                                        TRUE, 0, NULL, &st, &error));
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM vm_slots"), ==, 0);
}

/* recovery: a dead process's warm and build slots, and those of stale hosts */
static void
test_slots_recovery(StoreFixture *fx, gconstpointer data)
{
	static const gchar *const agents[] = {NULL};
	g_autoptr(QsimHostRecord) b = host_new("node-b", agents);
	g_autoptr(GError) error = NULL;
	guint n = 0;

	claim_slot(fx, "node-a:1:0", QSIM_VM_SLOT_WARM, 0, 0);
	claim_slot(fx, "node-a:1:0", QSIM_VM_SLOT_BUILD, 0, 0);
	claim_slot(fx, "node-a:11:0", QSIM_VM_SLOT_WARM, 0, 0);
	claim_slot(fx, "node-b:1:0", QSIM_VM_SLOT_WARM, 0, 0);
	publish(fx, b, NULL);
	/* pid 1 died: only its slots, not pid 11's (a prefix of the same digits) */
	g_assert_true(qsim_store_release_process_slots(fx->store, "node-a:1:3", &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 2);
	g_assert_true(qsim_store_release_stale_host_slots(fx->store, &n, &error));
	g_assert_cmpuint(n, ==, 0);
	fx->now += 5001;
	g_assert_true(qsim_store_release_stale_host_slots(fx->store, &n, &error));
	g_assert_cmpuint(n, ==, 1);
	/* a host that never published (no row) is not stale: its slots stay */
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM vm_slots"), ==, 1);
}

/* a database upgraded with leased requests: each gets its slot */
static void
test_slots_migrate(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimStore) again = NULL;
	g_autofree gchar *uuid = store_test_new_request(fx);

	if (store_test_skip_on_pg(fx, "SQLite schema v6 files; PostgreSQL starts at v7"))
		return;
	r = qsim_store_claim_next(fx->store, "node-a:7:0", LEASE_MS, 0, &error);
	g_assert_nonnull(r);
	g_clear_object(&fx->store);
	store_test_raw_exec(
	    fx->path, "DROP TRIGGER request_events_insert; DROP TRIGGER request_events_status;"
	              "DROP TRIGGER request_events_delete; DROP TABLE request_events;"
	              "DROP TRIGGER requests_fts_insert; DROP TRIGGER requests_fts_delete;"
	              "DROP TABLE requests_fts;"
	              "DROP TABLE vm_slots; DROP TABLE host_vms;"
	              " DROP TABLE host_agents; DROP TABLE hosts;"
	              " DROP TABLE upload_chunks; DROP TABLE uploads;"
	              " DROP TABLE artifacts;"
	              " ALTER TABLE requests DROP COLUMN artifact_paths;"
	              " PRAGMA user_version = 6;");
	again = qsim_store_open(fx->path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT COUNT(*) FROM vm_slots"
	                                             " WHERE kind = 'request' AND host = 'node-a'"),
	                ==, 1);
}

int
main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func)                                                                            \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, func, store_fixture_teardown)
	ADD("/qsim/store/hosts/publish", test_hosts_publish);
	ADD("/qsim/store/hosts/publish-invalid", test_hosts_publish_invalid);
	ADD("/qsim/store/slots/caps", test_slots_caps);
	ADD("/qsim/store/slots/adopt", test_slots_adopt);
	ADD("/qsim/store/slots/recovery", test_slots_recovery);
	ADD("/qsim/store/slots/migrate", test_slots_migrate);
#undef ADD
	return g_test_run();
}
