#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-end-reason.h"
#include "store/qsim-request-rules.h"
#include "store/qsim-store.h"

/*
 * Both backends load the row under their lock (SQLite's write lock, PostgreSQL's
 * FOR UPDATE), call one of these, and write the row back: the rules live here once,
 * so the two stores cannot drift apart on what a call may do.
 */

gboolean
qsim_request_check_owner(const QsimRequest *r, const gchar *agent_id, GError **error)
{
	if (g_strcmp0(r->agent_id, agent_id) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and claimed by %s, not by agent %s", r->uuid,
		            qsim_status_to_string(r->status),
		            r->agent_id != NULL ? r->agent_id : "no agent", agent_id);
		return FALSE;
	}
	return TRUE;
}

gboolean
qsim_request_check_deletable(const QsimRequest *r, GError **error)
{
	if (!qsim_status_is_final(r->status)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s; only a done, failed or cancelled request can be "
		            "deleted",
		            r->uuid, qsim_status_to_string(r->status));
		return FALSE;
	}
	return TRUE;
}

gboolean
qsim_request_check_vm_held(const QsimRequest *r, GError **error)
{
	if (r->lease_expires_at == 0) {
		/* the lease is the VM: without one no VM runs for it */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and no agent holds a VM for it: no start mode to "
		            "record",
		            r->uuid, qsim_status_to_string(r->status));
		return FALSE;
	}
	return TRUE;
}

/*
 * @rows: the page as read, up to @limit + 1 rows (the one more tells whether more
 * follow); @cut: the byte cap stopped the read early. Trims @rows to @limit.
 * Returns: whether more rows follow the page
 */
gboolean
qsim_request_page_trim(GPtrArray *rows, guint limit, gboolean cut)
{
	gboolean more = cut || rows->len > limit;

	if (rows->len > limit)
		g_ptr_array_set_size(rows, limit);
	return more;
}

/*
 * @rows: the first (up to @shown + 1) requests whose UUID starts with @prefix, in
 * UUID order. Returns: (transfer full): the one match, or NULL with NOT_FOUND or
 * AMBIGUOUS (naming up to @shown of them)
 */
QsimRequest *
qsim_request_pick_by_prefix(GPtrArray *rows, guint shown, const gchar *prefix, GError **error)
{
	g_autoptr(GString) names = NULL;

	if (rows->len == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no request matches '%s'",
		            prefix);
		return NULL;
	}
	if (rows->len == 1)
		return qsim_request_copy(g_ptr_array_index(rows, 0));
	names = g_string_new(NULL);
	for (guint i = 0; i < MIN(rows->len, shown); i++) {
		const QsimRequest *r = g_ptr_array_index(rows, i);

		g_string_append_printf(names, "%s%s", i > 0 ? ", " : "", r->uuid);
	}
	if (rows->len > shown)
		g_string_append(names, ", ...");
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS,
	            "request ID prefix '%s' is ambiguous: it matches %s", prefix, names->str);
	return NULL;
}

gboolean
qsim_request_apply_user_status(QsimRequest *r, QsimStatus to, gint64 now, GError **error)
{
	if (!qsim_status_check_transition(r->status, r->held_from, to, QSIM_STATUS_ACTOR_USER,
	                                  error)) {
		g_prefix_error(error, "request %s: ", r->uuid);
		return FALSE;
	}
	if (to == QSIM_STATUS_HOLD)
		r->held_from = r->status;
	if (to == QSIM_STATUS_CANCELLED) {
		/* the lease stays: the agent keeps its VM slot until it has stopped the VM */
		g_free(r->error);
		r->error = g_strdup(QSIM_END_TEXT_CANCELLED);
		if (r->finished_at == 0)
			r->finished_at = now;
	}
	r->status = to;
	r->updated_at = now;
	return TRUE;
}

/* The backend takes the VM slot in the same transaction, and drops the row if it cannot */
gboolean
qsim_request_apply_claim(QsimRequest *r, const gchar *agent_id, gint64 lease_ms, gint64 now,
                         GError **error)
{
	if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_ACKNOWLEDGED,
	                                  QSIM_STATUS_ACTOR_AGENT, error))
		return FALSE;
	r->status = QSIM_STATUS_ACKNOWLEDGED;
	g_free(r->agent_id);
	r->agent_id = g_strdup(agent_id);
	r->lease_expires_at = now + lease_ms;
	r->attempts++;
	r->updated_at = now;
	return TRUE;
}

gboolean
qsim_request_apply_running(QsimRequest *r, const gchar *agent_id, gint64 now, GError **error)
{
	if (!qsim_request_check_owner(r, agent_id, error))
		return FALSE;
	if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_RUNNING,
	                                  QSIM_STATUS_ACTOR_AGENT, error)) {
		g_prefix_error(error, "request %s: ", r->uuid);
		return FALSE;
	}
	r->status = QSIM_STATUS_RUNNING;
	r->started_at = now;
	r->updated_at = now;
	return TRUE;
}

/*
 * A retry after a connection lost at COMMIT finds the finish applied: the table
 * refuses a second one (CONFLICT), the agent stops retrying, and the request was
 * finished exactly once. The backend frees the VM slot with the write.
 */
gboolean
qsim_request_apply_finish(QsimRequest *r, const gchar *agent_id, QsimStatus final,
                          gboolean has_exit_code, gint exit_code, const gchar *error_msg,
                          gint64 now, GError **error)
{
	if (!qsim_request_check_owner(r, agent_id, error))
		return FALSE;
	if (r->status == QSIM_STATUS_CANCELLED) {
		/* the user won the race: keep cancelled and its reason, record the rest */
		if (has_exit_code) {
			r->has_exit_code = TRUE;
			r->exit_code = exit_code;
		}
	} else {
		if (!qsim_status_check_transition(r->status, r->held_from, final,
		                                  QSIM_STATUS_ACTOR_AGENT, error)) {
			g_prefix_error(error, "request %s: ", r->uuid);
			return FALSE;
		}
		r->status = final;
		r->has_exit_code = has_exit_code;
		r->exit_code = has_exit_code ? exit_code : 0;
		g_free(r->error);
		r->error = g_strdup(error_msg);
	}
	if (r->finished_at == 0)
		r->finished_at = now;
	r->lease_expires_at = 0;
	r->updated_at = now;
	return TRUE;
}

/*
 * @expected_agent_id: nullable, then any holder. The agent is gone and its QEMU
 * died with it: the backend frees the VM slot with the write.
 */
gboolean
qsim_request_apply_recover(QsimRequest *r, const gchar *expected_agent_id, gboolean retry,
                           const gchar *reason, gint64 now, GError **error)
{
	if (expected_agent_id != NULL && !qsim_request_check_owner(r, expected_agent_id, error))
		return FALSE;
	if (r->lease_expires_at == 0) {
		/* the lease is the claim: without it another recoverer already acted */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and holds no lease: nothing to recover", r->uuid,
		            qsim_status_to_string(r->status));
		return FALSE;
	}
	if (qsim_status_is_final(r->status)) {
		/* cancelled while the agent died: only free the VM slot */
	} else if (retry && r->status == QSIM_STATUS_ACKNOWLEDGED &&
	           r->attempts < QSIM_STORE_MAX_ATTEMPTS) {
		if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_PENDING,
		                                  QSIM_STATUS_ACTOR_AGENT, error))
			return FALSE;
		r->status = QSIM_STATUS_PENDING;
		g_clear_pointer(&r->agent_id, g_free);
	} else {
		if (!qsim_status_check_transition(r->status, r->held_from, QSIM_STATUS_FAILED,
		                                  QSIM_STATUS_ACTOR_AGENT, error)) {
			g_prefix_error(error, "request %s: ", r->uuid);
			return FALSE;
		}
		r->status = QSIM_STATUS_FAILED;
		g_free(r->error);
		r->error = g_strdup(reason);
		if (r->finished_at == 0)
			r->finished_at = now;
	}
	r->lease_expires_at = 0;
	r->updated_at = now;
	return TRUE;
}
