#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-end-reason.h"
#include "store/qsim-request-rules.h"
#include "store/qsim-stats-rows.h"
#include "store/qsim-store.h"
#include "store/qsim-template-rules.h"

/*
 * The pure decisions both backends share (qsim-request-rules.c, qsim-stats-rows.c,
 * qsim-template-rules.c), without a database: test-store*.c run them through each
 * backend; these pin the edge cases one by one.
 */

#define NOW 1000000
#define UUID "0f4b6a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

static QsimRequest *
leased(QsimStatus status, const gchar *agent_id)
{
	QsimRequest *r = qsim_request_new();

	r->uuid = g_strdup(UUID);
	r->vm_name = g_strdup("vm");
	r->commands = g_strdup("true");
	r->status = status;
	r->agent_id = g_strdup(agent_id);
	r->lease_expires_at = NOW + 5000;
	r->attempts = 1;
	r->created_at = NOW - 100;
	return r;
}

static void
test_recover_retries_then_fails(void)
{
	g_autoptr(QsimRequest) r = leased(QSIM_STATUS_ACKNOWLEDGED, "a1");
	g_autoptr(QsimRequest) last = leased(QSIM_STATUS_ACKNOWLEDGED, "a1");
	g_autoptr(QsimRequest) running = leased(QSIM_STATUS_RUNNING, "a1");
	g_autoptr(GError) error = NULL;

	g_assert_true(qsim_request_apply_recover(r, "a1", TRUE, "lost", NOW, &error));
	g_assert_no_error(error);
	g_assert_cmpint(r->status, ==, QSIM_STATUS_PENDING);
	g_assert_null(r->agent_id);
	g_assert_null(r->error);
	g_assert_cmpint(r->lease_expires_at, ==, 0);
	g_assert_cmpint(r->finished_at, ==, 0);
	g_assert_cmpint(r->updated_at, ==, NOW);

	/* the last attempt, and a request already running, fail instead */
	last->attempts = QSIM_STORE_MAX_ATTEMPTS;
	g_assert_true(qsim_request_apply_recover(last, NULL, TRUE, "lost", NOW, &error));
	g_assert_cmpint(last->status, ==, QSIM_STATUS_FAILED);
	g_assert_cmpstr(last->error, ==, "lost");
	g_assert_cmpstr(last->agent_id, ==, "a1");
	g_assert_cmpint(last->finished_at, ==, NOW);
	g_assert_true(qsim_request_apply_recover(running, NULL, TRUE, "gone", NOW, &error));
	g_assert_cmpint(running->status, ==, QSIM_STATUS_FAILED);
	g_assert_cmpstr(running->error, ==, "gone");
}

static void
test_recover_refusals(void)
{
	g_autoptr(QsimRequest) other = leased(QSIM_STATUS_RUNNING, "a1");
	g_autoptr(QsimRequest) done = leased(QSIM_STATUS_RUNNING, "a1");
	g_autoptr(QsimRequest) cancelled = leased(QSIM_STATUS_CANCELLED, "a1");
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_request_apply_recover(other, "a2", FALSE, "x", NOW, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	/* a second recoverer finds the lease gone */
	done->lease_expires_at = 0;
	g_assert_false(qsim_request_apply_recover(done, NULL, FALSE, "x", NOW, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "nothing to recover"));
	g_clear_error(&error);
	/* cancelled while its agent died: only the lease goes */
	cancelled->error = g_strdup(QSIM_END_TEXT_CANCELLED);
	cancelled->finished_at = NOW - 10;
	g_assert_true(qsim_request_apply_recover(cancelled, NULL, TRUE, "x", NOW, &error));
	g_assert_cmpint(cancelled->status, ==, QSIM_STATUS_CANCELLED);
	g_assert_cmpstr(cancelled->error, ==, QSIM_END_TEXT_CANCELLED);
	g_assert_cmpint(cancelled->finished_at, ==, NOW - 10);
	g_assert_cmpint(cancelled->lease_expires_at, ==, 0);
}

static void
test_finish(void)
{
	g_autoptr(QsimRequest) r = leased(QSIM_STATUS_RUNNING, "a1");
	g_autoptr(QsimRequest) cancelled = leased(QSIM_STATUS_CANCELLED, "a1");
	g_autoptr(QsimRequest) early = leased(QSIM_STATUS_ACKNOWLEDGED, "a1");
	g_autoptr(GError) error = NULL;

	g_assert_false(
	    qsim_request_apply_finish(r, "a2", QSIM_STATUS_DONE, TRUE, 0, NULL, NOW, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_true(
	    qsim_request_apply_finish(r, "a1", QSIM_STATUS_FAILED, TRUE, 3, "exit 3", NOW, &error));
	g_assert_cmpint(r->status, ==, QSIM_STATUS_FAILED);
	g_assert_true(r->has_exit_code);
	g_assert_cmpint(r->exit_code, ==, 3);
	g_assert_cmpstr(r->error, ==, "exit 3");
	g_assert_cmpint(r->finished_at, ==, NOW);
	g_assert_cmpint(r->lease_expires_at, ==, 0);
	/* a retried finish is refused: it was applied once */
	g_assert_false(qsim_request_apply_finish(r, "a1", QSIM_STATUS_FAILED, TRUE, 3, "exit 3",
	                                         NOW + 1, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_true(g_str_has_prefix(error->message, "request " UUID ": "));
	g_clear_error(&error);
	/* the user won the race: cancelled stays, the exit code is recorded */
	cancelled->error = g_strdup(QSIM_END_TEXT_CANCELLED);
	cancelled->finished_at = NOW - 10;
	g_assert_true(qsim_request_apply_finish(cancelled, "a1", QSIM_STATUS_DONE, TRUE, 0, NULL,
	                                        NOW, &error));
	g_assert_cmpint(cancelled->status, ==, QSIM_STATUS_CANCELLED);
	g_assert_cmpstr(cancelled->error, ==, QSIM_END_TEXT_CANCELLED);
	g_assert_true(cancelled->has_exit_code);
	g_assert_cmpint(cancelled->finished_at, ==, NOW - 10);
	/* done is only reached from running */
	g_assert_false(
	    qsim_request_apply_finish(early, "a1", QSIM_STATUS_DONE, FALSE, 0, NULL, NOW, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
}

static void
test_claim_running_user(void)
{
	g_autoptr(QsimRequest) r = leased(QSIM_STATUS_PENDING, NULL);
	g_autoptr(GError) error = NULL;

	r->lease_expires_at = 0;
	g_assert_false(qsim_request_apply_running(r, NULL, NOW, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_true(qsim_request_apply_claim(r, "a1", 500, NOW, &error));
	g_assert_cmpint(r->status, ==, QSIM_STATUS_ACKNOWLEDGED);
	g_assert_cmpstr(r->agent_id, ==, "a1");
	g_assert_cmpint(r->lease_expires_at, ==, NOW + 500);
	g_assert_cmpuint(r->attempts, ==, 2);
	g_assert_false(qsim_request_apply_claim(r, "a2", 500, NOW, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	g_assert_true(qsim_request_apply_running(r, "a1", NOW + 1, &error));
	g_assert_cmpint(r->started_at, ==, NOW + 1);
	g_assert_true(qsim_request_apply_user_status(r, QSIM_STATUS_HOLD, NOW + 2, &error));
	g_assert_cmpint(r->held_from, ==, QSIM_STATUS_RUNNING);
	g_assert_true(qsim_request_apply_user_status(r, QSIM_STATUS_CANCELLED, NOW + 3, &error));
	g_assert_cmpstr(r->error, ==, QSIM_END_TEXT_CANCELLED);
	g_assert_cmpint(r->finished_at, ==, NOW + 3);
	/* the lease stays until the agent has stopped the VM */
	g_assert_cmpint(r->lease_expires_at, ==, NOW + 500);
	g_assert_true(qsim_request_check_deletable(r, &error));
	g_assert_true(qsim_request_check_vm_held(r, &error));
	g_assert_no_error(error);
	r->lease_expires_at = 0;
	g_assert_false(qsim_request_check_vm_held(r, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
}

static void
test_pick_by_prefix(void)
{
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);
	g_autoptr(QsimRequest) one = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_null(qsim_request_pick_by_prefix(rows, 2, "ab", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	for (guint i = 0; i < 3; i++) {
		QsimRequest *r = qsim_request_new();

		r->uuid = g_strdup_printf("ab%u", i);
		g_ptr_array_add(rows, r);
		if (i == 0) {
			one = qsim_request_pick_by_prefix(rows, 2, "ab", &error);
			g_assert_no_error(error);
			g_assert_cmpstr(one->uuid, ==, "ab0");
		}
	}
	g_assert_null(qsim_request_pick_by_prefix(rows, 2, "ab", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS);
	g_assert_cmpstr(error->message, ==,
	                "request ID prefix 'ab' is ambiguous: it matches ab0, ab1, ...");
}

static void
test_page_trim(void)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new();

	for (guint i = 0; i < 3; i++)
		g_ptr_array_add(rows, GUINT_TO_POINTER(i + 1));
	g_assert_false(qsim_request_page_trim(rows, 3, FALSE));
	g_assert_cmpuint(rows->len, ==, 3);
	g_assert_true(qsim_request_page_trim(rows, 3, TRUE));
	g_assert_true(qsim_request_page_trim(rows, 2, FALSE));
	g_assert_cmpuint(rows->len, ==, 2);
}

static void
test_stats_rows(void)
{
	g_autoptr(QsimStats) stats = qsim_stats_new();
	g_autoptr(QsimLatencySample) sample = qsim_latency_sample_new();

	qsim_stats_add_count(stats, "status", "done", 4);
	qsim_stats_add_count(stats, "status", "failed", -1);
	qsim_stats_add_count(stats, "status", "nonsense", 9);
	qsim_stats_add_count(stats, "start_mode", "cold", 2);
	qsim_stats_add_count(stats, "start_mode", "none", 1);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_DONE], ==, 4);
	g_assert_cmpuint(stats->counts[QSIM_STATUS_FAILED], ==, 0);
	g_assert_cmpuint(stats->total, ==, 4);
	g_assert_cmpuint(stats->start_counts[QSIM_START_MODE_COLD], ==, 2);
	g_assert_cmpuint(stats->start_counts[QSIM_START_MODE_NONE], ==, 1);

	/* never started: no sample; a clock behind clamps to 0 */
	qsim_latency_sample_add(sample, 100, FALSE, 0, 500, NULL);
	qsim_latency_sample_add(sample, 100, TRUE, 130, 200, "cold");
	qsim_latency_sample_add(sample, 100, TRUE, 90, 80, NULL);
	qsim_latency_sample_apply(sample, stats);
	g_assert_true(stats->has_queue_latency);
	g_assert_cmpint(stats->queue_p50_ms, ==, 0);
	g_assert_cmpint(stats->queue_p95_ms, ==, 30);
	g_assert_cmpint(stats->run_p95_ms, ==, 70);
	g_assert_true(stats->has_start_latency[QSIM_START_MODE_COLD]);
	g_assert_cmpint(stats->start_p50_ms[QSIM_START_MODE_COLD], ==, 30);
	g_assert_true(stats->has_start_latency[QSIM_START_MODE_NONE]);
}

static void
test_template_claim(void)
{
	g_autoptr(QsimTemplateRecord) r = qsim_template_record_new("vm", "h1");
	gboolean force = FALSE;

	r->state = QSIM_TEMPLATE_RECORD_BUILDING;
	r->build_started_at = NOW - 1;
	r->prepare_requested_at = NOW - 5;
	r->prepare_force = TRUE;
	g_assert_false(qsim_template_record_apply_build_claim(r, "b2", NOW, &force));
	g_assert_false(force);
	g_assert_null(r->builder);
	/* a build older than the stale limit is taken over */
	r->build_started_at = NOW - QSIM_STORE_TEMPLATE_BUILD_STALE_MS;
	r->reason = g_strdup("old");
	g_assert_true(qsim_template_record_apply_build_claim(r, "b2", NOW, &force));
	g_assert_true(force);
	g_assert_cmpstr(r->builder, ==, "b2");
	g_assert_null(r->reason);
	g_assert_cmpint(r->build_started_at, ==, NOW);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/store-rules/recover-retries-then-fails", test_recover_retries_then_fails);
	g_test_add_func("/store-rules/recover-refusals", test_recover_refusals);
	g_test_add_func("/store-rules/finish", test_finish);
	g_test_add_func("/store-rules/claim-running-user", test_claim_running_user);
	g_test_add_func("/store-rules/pick-by-prefix", test_pick_by_prefix);
	g_test_add_func("/store-rules/page-trim", test_page_trim);
	g_test_add_func("/store-rules/stats-rows", test_stats_rows);
	g_test_add_func("/store-rules/template-claim", test_template_claim);
	return g_test_run();
}
