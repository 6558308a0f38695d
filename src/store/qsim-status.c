#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-status.h"

static const gchar *const status_names[QSIM_STATUS_COUNT] = {
    [QSIM_STATUS_PENDING] = "pending", [QSIM_STATUS_ACKNOWLEDGED] = "acknowledged",
    [QSIM_STATUS_RUNNING] = "running", [QSIM_STATUS_DONE] = "done",
    [QSIM_STATUS_FAILED] = "failed",   [QSIM_STATUS_CANCELLED] = "cancelled",
    [QSIM_STATUS_HOLD] = "hold",
};

/* held_from value meaning "any": a transition not out of hold */
#define ANY_HELD_FROM (-1)

/*
 * THE transition table: every status change in qsim is checked against it.
 * Rows out of hold name the status the request was held from, so a request
 * held while pending can only be released to pending, and one held while
 * running can only resume running (or end: an agent may finish or lose it).
 * Hold from acknowledged is deliberately absent: the VM is booting, there is
 * nothing to pause yet and the boot deadline would keep running; cancel it.
 */
static const struct {
	QsimStatus from;
	QsimStatus to;
	gint held_from;
	QsimStatusActor actors;
} transitions[] = {
    {QSIM_STATUS_PENDING, QSIM_STATUS_ACKNOWLEDGED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_PENDING, QSIM_STATUS_HOLD, ANY_HELD_FROM, QSIM_STATUS_ACTOR_USER},
    {QSIM_STATUS_PENDING, QSIM_STATUS_CANCELLED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_ANY},
    {QSIM_STATUS_HOLD, QSIM_STATUS_PENDING, QSIM_STATUS_PENDING, QSIM_STATUS_ACTOR_USER},
    {QSIM_STATUS_HOLD, QSIM_STATUS_RUNNING, QSIM_STATUS_RUNNING, QSIM_STATUS_ACTOR_USER},
    {QSIM_STATUS_HOLD, QSIM_STATUS_CANCELLED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_ANY},
    /* the commands ended just as the user paused, or the agent died/shut down */
    {QSIM_STATUS_HOLD, QSIM_STATUS_DONE, QSIM_STATUS_RUNNING, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_HOLD, QSIM_STATUS_FAILED, QSIM_STATUS_RUNNING, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_ACKNOWLEDGED, QSIM_STATUS_RUNNING, ANY_HELD_FROM, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_ACKNOWLEDGED, QSIM_STATUS_FAILED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_ACKNOWLEDGED, QSIM_STATUS_CANCELLED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_ANY},
    /* recovery: the agent died before the commands started */
    {QSIM_STATUS_ACKNOWLEDGED, QSIM_STATUS_PENDING, ANY_HELD_FROM, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_RUNNING, QSIM_STATUS_HOLD, ANY_HELD_FROM, QSIM_STATUS_ACTOR_USER},
    {QSIM_STATUS_RUNNING, QSIM_STATUS_DONE, ANY_HELD_FROM, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_RUNNING, QSIM_STATUS_FAILED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_AGENT},
    {QSIM_STATUS_RUNNING, QSIM_STATUS_CANCELLED, ANY_HELD_FROM, QSIM_STATUS_ACTOR_ANY},
};

static gboolean
status_is_valid(QsimStatus status)
{
	return (guint)status < QSIM_STATUS_COUNT;
}

/**
 * qsim_status_to_string:
 *
 * Returns: (transfer none): the stored and wire name of @status
 */
const gchar *
qsim_status_to_string(QsimStatus status)
{
	if (!status_is_valid(status))
		return "unknown";
	return status_names[status];
}

/**
 * qsim_status_from_string:
 *
 * Returns: TRUE and sets @out if @str is exactly one of the names
 */
gboolean
qsim_status_from_string(const gchar *str, QsimStatus *out)
{
	if (str == NULL)
		return FALSE;
	for (guint i = 0; i < QSIM_STATUS_COUNT; i++) {
		if (g_strcmp0(str, status_names[i]) == 0) {
			if (out != NULL)
				*out = (QsimStatus)i;
			return TRUE;
		}
	}
	return FALSE;
}

gboolean
qsim_status_is_final(QsimStatus status)
{
	return status == QSIM_STATUS_DONE || status == QSIM_STATUS_FAILED ||
	       status == QSIM_STATUS_CANCELLED;
}

gboolean
qsim_status_is_active(QsimStatus status)
{
	return status == QSIM_STATUS_ACKNOWLEDGED || status == QSIM_STATUS_RUNNING ||
	       status == QSIM_STATUS_HOLD;
}

gboolean
qsim_status_can_transition(QsimStatus from, QsimStatus to)
{
	for (guint i = 0; i < G_N_ELEMENTS(transitions); i++) {
		if (transitions[i].from == from && transitions[i].to == to)
			return TRUE;
	}
	return FALSE;
}

/**
 * qsim_status_check_transition:
 *
 * Returns: TRUE when a row of the table allows it for @actor (and, out of
 * hold, for @held_from); else FALSE with a CONFLICT naming the current status
 */
gboolean
qsim_status_check_transition(QsimStatus from, QsimStatus held_from, QsimStatus to,
                             QsimStatusActor actor, GError **error)
{
	if (!status_is_valid(from) || !status_is_valid(to)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown status %d -> %d",
		            (gint)from, (gint)to);
		return FALSE;
	}
	for (guint i = 0; i < G_N_ELEMENTS(transitions); i++) {
		if (transitions[i].from != from || transitions[i].to != to)
			continue;
		if ((transitions[i].actors & actor) == 0)
			continue;
		if (transitions[i].held_from != ANY_HELD_FROM &&
		    transitions[i].held_from != (gint)held_from)
			continue;
		return TRUE;
	}
	if (from == QSIM_STATUS_HOLD) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "cannot change status from hold (held from %s) to %s",
		            qsim_status_to_string(held_from), qsim_status_to_string(to));
		return FALSE;
	}
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT, "cannot change status from %s to %s",
	            qsim_status_to_string(from), qsim_status_to_string(to));
	return FALSE;
}
