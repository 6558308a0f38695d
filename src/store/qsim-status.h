#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimStatus:
 *
 * The life cycle of a request. The values are stored as their string names
 * (qsim_status_to_string()), never as numbers, so the order here is free.
 */
typedef enum {
	QSIM_STATUS_PENDING,
	QSIM_STATUS_ACKNOWLEDGED,
	QSIM_STATUS_RUNNING,
	QSIM_STATUS_DONE,
	QSIM_STATUS_FAILED,
	QSIM_STATUS_CANCELLED,
	QSIM_STATUS_HOLD,
} QsimStatus;

#define QSIM_STATUS_COUNT (QSIM_STATUS_HOLD + 1)

/**
 * QsimStatusActor:
 *
 * Who may drive a transition. Users (REST/CLI) cancel, hold and resume;
 * agents claim, start, finish and recover. A transition can allow both.
 */
typedef enum {
	QSIM_STATUS_ACTOR_USER = 1 << 0,
	QSIM_STATUS_ACTOR_AGENT = 1 << 1,
	QSIM_STATUS_ACTOR_ANY = QSIM_STATUS_ACTOR_USER | QSIM_STATUS_ACTOR_AGENT,
} QsimStatusActor;

/* Returns: (transfer none): "pending", "acknowledged", ...; "unknown" for a bad value */
const gchar *qsim_status_to_string(QsimStatus status);

/* Returns: TRUE and sets @out when @str names a status exactly (lowercase) */
gboolean qsim_status_from_string(const gchar *str, QsimStatus *out);

/* done, failed and cancelled */
gboolean qsim_status_is_final(QsimStatus status);

/* acknowledged, running and hold: an agent may own the request */
gboolean qsim_status_is_active(QsimStatus status);

/* TRUE when the one transition table has a row from -> to (any actor, any held_from) */
gboolean qsim_status_can_transition(QsimStatus from, QsimStatus to);

/**
 * qsim_status_check_transition:
 * @from: the current status
 * @held_from: the status before hold; only read when @from is %QSIM_STATUS_HOLD
 * @to: the wanted status
 * @actor: who asks
 *
 * The full check against the transition table, as every status change in the
 * store does it.
 *
 * Returns: TRUE if allowed, else FALSE with %QSIM_ERROR_CONFLICT naming the
 * current status.
 */
gboolean qsim_status_check_transition(QsimStatus from, QsimStatus held_from, QsimStatus to,
                                      QsimStatusActor actor, GError **error);

G_END_DECLS
