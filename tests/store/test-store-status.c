#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-log-type.h"
#include "store/qsim-status.h"

#define P QSIM_STATUS_PENDING
#define A QSIM_STATUS_ACKNOWLEDGED
#define R QSIM_STATUS_RUNNING
#define D QSIM_STATUS_DONE
#define F QSIM_STATUS_FAILED
#define C QSIM_STATUS_CANCELLED
#define H QSIM_STATUS_HOLD
#define U QSIM_STATUS_ACTOR_USER
#define G QSIM_STATUS_ACTOR_AGENT

/*
 * The expected table, written out independently of src/store/qsim-status.c
 * (docs/store.md has the same table). held_from -1: any.
 */
static const struct {
	QsimStatus from, to;
	gint held_from;
	QsimStatusActor actors;
} expected[] = {
    {P, A, -1, G}, {P, H, -1, U},     {P, C, -1, U | G}, {H, P, P, U},
    {H, R, R, U},  {H, C, -1, U | G}, {H, D, R, G},      {H, F, R, G},
    {A, R, -1, G}, {A, F, -1, G},     {A, C, -1, U | G}, {A, P, -1, G},
    {R, H, -1, U}, {R, D, -1, G},     {R, F, -1, G},     {R, C, -1, U | G},
};

static gboolean
expected_allows(QsimStatus from, QsimStatus held_from, QsimStatus to, QsimStatusActor actor)
{
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		if (expected[i].from == from && expected[i].to == to &&
		    (expected[i].actors & actor) != 0 &&
		    (expected[i].held_from < 0 || expected[i].held_from == (gint)held_from))
			return TRUE;
	}
	return FALSE;
}

static gboolean
expected_any(QsimStatus from, QsimStatus to)
{
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		if (expected[i].from == from && expected[i].to == to)
			return TRUE;
	}
	return FALSE;
}

/* Every (from, held_from, to, actor) of the 7x7x7x2 space against the table */
static void
test_status_matrix(void)
{
	const QsimStatusActor actors[] = {QSIM_STATUS_ACTOR_USER, QSIM_STATUS_ACTOR_AGENT};
	guint allowed = 0, forbidden = 0;

	for (guint from = 0; from < QSIM_STATUS_COUNT; from++) {
		for (guint to = 0; to < QSIM_STATUS_COUNT; to++) {
			g_assert_cmpint(qsim_status_can_transition(from, to), ==,
			                expected_any(from, to));
			for (guint held = 0; held < QSIM_STATUS_COUNT; held++) {
				for (guint a = 0; a < G_N_ELEMENTS(actors); a++) {
					g_autoptr(GError) error = NULL;
					gboolean want = expected_allows(from, held, to, actors[a]);
					gboolean got = qsim_status_check_transition(
					    from, held, to, actors[a], &error);

					if (got != want)
						g_error(
						    "%s (held from %s) -> %s by %s: got %d want %d",
						    qsim_status_to_string(from),
						    qsim_status_to_string(held),
						    qsim_status_to_string(to),
						    a == 0 ? "user" : "agent", got, want);
					if (got) {
						g_assert_no_error(error);
						allowed++;
						continue;
					}
					forbidden++;
					g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
					/* the message names the current status */
					g_assert_nonnull(
					    strstr(error->message, qsim_status_to_string(from)));
				}
			}
		}
	}
	g_assert_cmpuint(allowed, >, 0);
	g_assert_cmpuint(forbidden, >, allowed);
	g_test_message("%u allowed, %u forbidden combinations", allowed, forbidden);
}

static void
test_status_examples(void)
{
	g_autoptr(GError) error = NULL;

	/* the issue's own example */
	g_assert_false(qsim_status_check_transition(D, P, R, QSIM_STATUS_ACTOR_ANY, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_assert_cmpstr(error->message, ==, "cannot change status from done to running");
	g_clear_error(&error);
	/* hold remembers where it came from */
	g_assert_false(qsim_status_check_transition(H, P, R, QSIM_STATUS_ACTOR_USER, &error));
	g_assert_cmpstr(error->message, ==,
	                "cannot change status from hold (held from pending) to running");
	g_clear_error(&error);
	g_assert_true(qsim_status_check_transition(H, R, R, QSIM_STATUS_ACTOR_USER, NULL));
	/* users cannot start or finish a request; agents cannot hold one */
	g_assert_false(qsim_status_check_transition(A, P, R, QSIM_STATUS_ACTOR_USER, NULL));
	g_assert_false(qsim_status_check_transition(R, P, D, QSIM_STATUS_ACTOR_USER, NULL));
	g_assert_false(qsim_status_check_transition(R, P, H, QSIM_STATUS_ACTOR_AGENT, NULL));
	/* hold from acknowledged is not allowed (docs/store.md says why) */
	g_assert_false(qsim_status_can_transition(A, H));
	/* an out-of-range value is INVALID, not a crash */
	g_assert_false(qsim_status_check_transition(99, P, P, QSIM_STATUS_ACTOR_ANY, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

static void
test_status_strings(void)
{
	for (guint i = 0; i < QSIM_STATUS_COUNT; i++) {
		QsimStatus s = 99;

		g_assert_true(qsim_status_from_string(qsim_status_to_string(i), &s));
		g_assert_cmpint(s, ==, i);
		g_assert_cmpint(qsim_status_is_final(i) && qsim_status_is_active(i), ==, FALSE);
	}
	g_assert_cmpstr(qsim_status_to_string(QSIM_STATUS_ACKNOWLEDGED), ==, "acknowledged");
	g_assert_false(qsim_status_from_string("Pending", NULL));
	g_assert_false(qsim_status_from_string("", NULL));
	g_assert_false(qsim_status_from_string(NULL, NULL));
	g_assert_cmpstr(qsim_status_to_string(42), ==, "unknown");
	g_assert_true(qsim_status_is_final(D) && qsim_status_is_final(F) &&
	              qsim_status_is_final(C));
	g_assert_true(qsim_status_is_active(A) && qsim_status_is_active(R) &&
	              qsim_status_is_active(H));
	g_assert_false(qsim_status_is_final(P) || qsim_status_is_active(P));

	for (guint i = 0; i < QSIM_LOG_TYPE_COUNT; i++) {
		QsimLogType t = 99;

		g_assert_true(qsim_log_type_from_string(qsim_log_type_to_string(i), &t));
		g_assert_cmpint(t, ==, i);
	}
	g_assert_cmpstr(qsim_log_type_to_string(QSIM_LOG_STDERR), ==, "stderr");
	g_assert_false(qsim_log_type_from_string("STDOUT", NULL));
	g_assert_cmpstr(qsim_log_type_to_string(-1), ==, "unknown");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/store/status/matrix", test_status_matrix);
	g_test_add_func("/qsim/store/status/examples", test_status_examples);
	g_test_add_func("/qsim/store/status/strings", test_status_strings);
	return g_test_run();
}
