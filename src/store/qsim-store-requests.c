#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "store/qsim-store-private.h"

#define COMMANDS_MAX (256 * 1024)
#define AGENT_ID_MAX 128

/* Returns: (transfer full): a pending request for @vm_name etc., or NULL with INVALID */
static QsimRequest *
build_request(QsimStore *self, const gchar *vm_name, const gchar *commands, gint64 timeout_s,
              gchar **artifact_paths, const gchar *upload_id, GError **error)
{
	g_autoptr(QsimRequest) request = NULL;

	if (!qsim_store_check_text("vm_name", vm_name, VM_NAME_MAX, error))
		return NULL;
	if (!qsim_store_check_text("commands", commands, COMMANDS_MAX, error))
		return NULL;
	if (timeout_s <= 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "timeout must be positive, got %" G_GINT64_FORMAT, timeout_s);
		return NULL;
	}
	if (!qsim_guest_path_validate_list((const gchar *const *)artifact_paths, error))
		return NULL;
	request = qsim_request_new();
	if (artifact_paths != NULL && artifact_paths[0] != NULL)
		request->artifact_paths = g_strdupv(artifact_paths);
	request->upload_id = g_strdup(upload_id);
	request->uuid = g_uuid_string_random();
	request->vm_name = g_strdup(vm_name);
	request->commands = g_strdup(commands);
	request->timeout_s = timeout_s;
	request->status = QSIM_STATUS_PENDING;
	request->created_at = qsim_store_now_ms(self);
	request->updated_at = request->created_at;
	return g_steal_pointer(&request);
}

/**
 * qsim_store_create_request:
 *
 * Returns: (transfer full): the new pending request
 */
QsimRequest *
qsim_store_create_request(QsimStore *self, const gchar *vm_name, const gchar *commands,
                          gint64 timeout_s, GError **error)
{
	return qsim_store_create_request_full(self, vm_name, commands, timeout_s, NULL, NULL,
	                                      error);
}

/**
 * qsim_store_create_request_full:
 *
 * Returns: (transfer full): the new pending request
 */
QsimRequest *
qsim_store_create_request_full(QsimStore *self, const gchar *vm_name, const gchar *commands,
                               gint64 timeout_s, gchar **artifact_paths, const gchar *upload_id,
                               GError **error)
{
	g_autoptr(QsimRequest) request = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	request =
	    build_request(self, vm_name, commands, timeout_s, artifact_paths, upload_id, error);
	if (request == NULL)
		return NULL;
	if (!QSIM_STORE_GET_CLASS(self)->insert_request(self, request, error))
		return NULL;
	qsim_store_emit_changed(self, request->uuid, request->status);
	return g_steal_pointer(&request);
}

/* For a backend without insert_requests: atomic per row only */
static gboolean
insert_rows_one_by_one(QsimStore *self, GPtrArray *requests, GError **row_errors)
{
	for (guint i = 0; i < requests->len; i++)
		QSIM_STORE_GET_CLASS(self)->insert_request(self, requests->pdata[i],
		                                           &row_errors[i]);
	return TRUE;
}

/**
 * qsim_store_create_requests:
 *
 * Returns: TRUE when the batch committed; each draft says what became of it
 */
gboolean
qsim_store_create_requests(QsimStore *self, GPtrArray *drafts, GError **error)
{
	QsimStoreClass *klass;
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GArray) owners = NULL; /* rows[i] belongs to drafts[owners[i]] */
	g_autofree GError **row_errors = NULL;
	g_autoptr(GError) batch_error = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (drafts == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "no drafts given");
		return FALSE;
	}
	for (guint i = 0; i < drafts->len; i++) {
		if (g_ptr_array_index(drafts, i) == NULL) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "draft %u is NULL", i);
			return FALSE;
		}
	}
	klass = QSIM_STORE_GET_CLASS(self);
	rows = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);
	owners = g_array_sized_new(FALSE, FALSE, sizeof(guint), drafts->len);
	/* validate everything before the transaction: a bad draft only fails itself */
	for (guint i = 0; i < drafts->len; i++) {
		QsimRequestDraft *d = g_ptr_array_index(drafts, i);
		QsimRequest *r;

		g_clear_pointer(&d->request, qsim_request_free);
		g_clear_error(&d->error);
		r = build_request(self, d->vm_name, d->commands, d->timeout_s, d->artifact_paths,
		                  d->upload_id, &d->error);
		if (r == NULL)
			continue;
		g_ptr_array_add(rows, r);
		g_array_append_val(owners, i);
	}
	if (rows->len == 0)
		return TRUE;
	row_errors = g_new0(GError *, rows->len);
	if (klass->insert_requests != NULL
	        ? !klass->insert_requests(self, rows, row_errors, &batch_error)
	        : !insert_rows_one_by_one(self, rows, row_errors)) {
		for (guint j = 0; j < rows->len; j++) {
			QsimRequestDraft *d =
			    g_ptr_array_index(drafts, g_array_index(owners, guint, j));

			g_clear_error(&row_errors[j]);
			d->error = g_error_copy(batch_error);
		}
		g_propagate_error(error, g_steal_pointer(&batch_error));
		return FALSE;
	}
	for (guint j = 0; j < rows->len; j++) {
		QsimRequestDraft *d = g_ptr_array_index(drafts, g_array_index(owners, guint, j));

		if (row_errors[j] != NULL) {
			d->error = g_steal_pointer(&row_errors[j]);
			continue;
		}
		d->request = g_steal_pointer(&rows->pdata[j]);
		qsim_store_emit_changed(self, d->request->uuid, d->request->status);
	}
	return TRUE;
}

/**
 * qsim_store_get_request:
 *
 * Returns: (transfer full): the request matching the UUID or unique prefix
 */
QsimRequest *
qsim_store_get_request(QsimStore *self, const gchar *uuid_or_prefix, guint min_prefix_len,
                       GError **error)
{
	g_autofree gchar *lower = NULL;
	gsize len;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (uuid_or_prefix == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "no request ID given");
		return NULL;
	}
	len = strlen(uuid_or_prefix);
	if (len < MAX(min_prefix_len, 1)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "a request ID prefix needs at least %u characters",
		            MAX(min_prefix_len, 1));
		return NULL;
	}
	if (len > 36) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "a request ID has at most 36 characters");
		return NULL;
	}
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit(uuid_or_prefix[i]) && uuid_or_prefix[i] != '-') {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			                    "a request ID has only hex digits and dashes");
			return NULL;
		}
	}
	lower = g_ascii_strdown(uuid_or_prefix, -1);
	return QSIM_STORE_GET_CLASS(self)->get_request(self, lower, min_prefix_len, error);
}

/**
 * qsim_store_list_requests:
 *
 * Returns: (transfer container) (element-type QsimRequest): newest first
 */
GPtrArray *
qsim_store_list_requests(QsimStore *self, const QsimRequestFilter *filter, gboolean *has_more,
                         GError **error)
{
	QsimRequestFilter f;
	g_autofree gchar *before = NULL;
	gboolean more = FALSE;
	GPtrArray *rows;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	qsim_request_filter_init(&f);
	if (filter != NULL)
		f = *filter;
	if (f.status < -1 || f.status >= QSIM_STATUS_COUNT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown status %d", f.status);
		return NULL;
	}
	if (f.limit == 0)
		f.limit = QSIM_REQUEST_FILTER_DEFAULT_LIMIT;
	if (f.limit > QSIM_REQUEST_FILTER_MAX_LIMIT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "limit must be 1..%d",
		            QSIM_REQUEST_FILTER_MAX_LIMIT);
		return NULL;
	}
	if (f.text != NULL &&
	    (strlen(f.text) < QSIM_REQUEST_FILTER_TEXT_MIN ||
	     strlen(f.text) > QSIM_REQUEST_FILTER_TEXT_MAX || !g_utf8_validate(f.text, -1, NULL))) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "the text to search for must be %d..%d bytes of UTF-8",
		            QSIM_REQUEST_FILTER_TEXT_MIN, QSIM_REQUEST_FILTER_TEXT_MAX);
		return NULL;
	}
	if (f.before_uuid != NULL) {
		before = qsim_store_normalize_uuid(f.before_uuid, error);
		if (before == NULL)
			return NULL;
		f.before_uuid = before;
	}
	rows = QSIM_STORE_GET_CLASS(self)->list_requests(self, &f, &more, error);
	if (rows != NULL && has_more != NULL)
		*has_more = more;
	return rows;
}

/**
 * qsim_store_set_status:
 *
 * Returns: (transfer full): the request after the change
 */
QsimRequest *
qsim_store_set_status(QsimStore *self, const gchar *uuid, QsimStatus to, GError **error)
{
	g_autofree gchar *id = NULL;
	QsimRequest *request;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return NULL;
	if (to != QSIM_STATUS_CANCELLED && to != QSIM_STATUS_HOLD && to != QSIM_STATUS_PENDING &&
	    to != QSIM_STATUS_RUNNING) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "status can only be set to cancelled, hold, pending or running, not %s",
		            qsim_status_to_string(to));
		return NULL;
	}
	request = QSIM_STORE_GET_CLASS(self)->set_status(self, id, to, error);
	if (request != NULL)
		qsim_store_emit_changed(self, request->uuid, request->status);
	return request;
}

/**
 * qsim_store_cancel_request:
 *
 * Returns: (transfer full): the cancelled request
 */
QsimRequest *
qsim_store_cancel_request(QsimStore *self, const gchar *uuid, GError **error)
{
	return qsim_store_set_status(self, uuid, QSIM_STATUS_CANCELLED, error);
}

gboolean
qsim_store_delete_request(QsimStore *self, const gchar *uuid, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (!QSIM_STORE_GET_CLASS(self)->delete_request(self, id, error))
		return FALSE;
	qsim_store_delete_artifact_files(self, id);
	g_signal_emit(self, qsim_store_signals[SIGNAL_REQUEST_DELETED], 0, id);
	return TRUE;
}

/**
 * qsim_store_claim_next:
 *
 * Returns: (transfer full) (nullable): the claimed request
 */
QsimRequest *
qsim_store_claim_next(QsimStore *self, const gchar *agent_id, gint64 lease_ms, guint max_active_vms,
                      GError **error)
{
	return qsim_store_claim_next_capped(self, agent_id, lease_ms, max_active_vms, 0, error);
}

QsimRequest *
qsim_store_claim_next_capped(QsimStore *self, const gchar *agent_id, gint64 lease_ms,
                             guint max_active_vms, guint max_host_vms, GError **error)
{
	QsimRequest *request;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!qsim_store_check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return NULL;
	if (lease_ms <= 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "lease must be positive");
		return NULL;
	}
	request = QSIM_STORE_GET_CLASS(self)->claim_next(self, agent_id, lease_ms, max_active_vms,
	                                                 max_host_vms, error);
	if (request != NULL)
		qsim_store_emit_changed(self, request->uuid, request->status);
	return request;
}

gboolean
qsim_store_mark_running(QsimStore *self, const gchar *uuid, const gchar *agent_id, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL || !qsim_store_check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return FALSE;
	if (!QSIM_STORE_GET_CLASS(self)->mark_running(self, id, agent_id, error))
		return FALSE;
	qsim_store_emit_changed(self, id, QSIM_STATUS_RUNNING);
	return TRUE;
}

/*
 * For the backends' renew_lease, on the row as locked: a lease that is gone, has
 * ended or ends within QSIM_STORE_LEASE_MARGIN_MS is not renewed. Its holder stops
 * its VM at that point on its own (it cannot know whether a late renewal will
 * land), and a renewal that was delayed (a lock, a network cut) and lands after
 * that must not give the lease back to a job that is gone: another agent would
 * otherwise wait a whole lease more to recover the request.
 */
gboolean
qsim_store_check_lease_renewable(const QsimRequest *r, gint64 now_ms, GError **error)
{
	if (r->lease_expires_at == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "request %s is %s and holds no lease: it was recovered or finished",
		            r->uuid, qsim_status_to_string(r->status));
		return FALSE;
	}
	if (r->lease_expires_at - now_ms < QSIM_STORE_LEASE_MARGIN_MS) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "the lease of request %s %s: not renewed, its holder stops", r->uuid,
		            r->lease_expires_at <= now_ms ? "has ended" : "ends in under a second");
		return FALSE;
	}
	return TRUE;
}

gboolean
qsim_store_renew_lease(QsimStore *self, const gchar *uuid, const gchar *agent_id, gint64 lease_ms,
                       QsimStatus *out_status, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL || !qsim_store_check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return FALSE;
	if (lease_ms <= 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "lease must be positive");
		return FALSE;
	}
	/* no signal: the status did not change, and renewals are frequent */
	return QSIM_STORE_GET_CLASS(self)->renew_lease(self, id, agent_id, lease_ms, out_status,
	                                               error);
}

gboolean
qsim_store_finish_request(QsimStore *self, const gchar *uuid, const gchar *agent_id,
                          QsimStatus final, gboolean has_exit_code, gint exit_code,
                          const gchar *error_msg, QsimStatus *out_status, GError **error)
{
	g_autofree gchar *id = NULL;
	g_autofree gchar *reason = NULL;
	QsimStatus stored = final;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL || !qsim_store_check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return FALSE;
	if (!qsim_status_is_final(final)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s is not a final status",
		            qsim_status_to_string(final));
		return FALSE;
	}
	reason = qsim_store_sanitize_reason(error_msg);
	if (!QSIM_STORE_GET_CLASS(self)->finish_request(self, id, agent_id, final, has_exit_code,
	                                                exit_code, reason, &stored, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = stored;
	qsim_store_emit_changed(self, id, stored);
	return TRUE;
}

/**
 * qsim_store_list_expired_leases:
 *
 * Returns: (transfer container) (element-type QsimRequest): expired claims
 */
GPtrArray *
qsim_store_list_expired_leases(QsimStore *self, gint64 now_ms, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	return QSIM_STORE_GET_CLASS(self)->list_expired_leases(self, now_ms, error);
}

gboolean
qsim_store_recover_request(QsimStore *self, const gchar *uuid, const gchar *expected_agent_id,
                           gboolean retry, const gchar *reason, QsimStatus *out_status,
                           GError **error)
{
	g_autofree gchar *id = NULL;
	g_autofree gchar *why = NULL;
	QsimStatus stored = QSIM_STATUS_FAILED;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (expected_agent_id != NULL &&
	    !qsim_store_check_text("agent_id", expected_agent_id, AGENT_ID_MAX, error))
		return FALSE;
	why = qsim_store_sanitize_reason(reason != NULL ? reason : "agent lost");
	if (!QSIM_STORE_GET_CLASS(self)->recover_request(self, id, expected_agent_id, retry, why,
	                                                 &stored, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = stored;
	qsim_store_emit_changed(self, id, stored);
	return TRUE;
}

/**
 * qsim_store_list_leases:
 *
 * Returns: (transfer container) (element-type QsimRequest): requests holding a lease
 */
GPtrArray *
qsim_store_list_leases(QsimStore *self, const gchar *agent_id, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (agent_id != NULL && !qsim_store_check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return NULL;
	return QSIM_STORE_GET_CLASS(self)->list_leases(self, agent_id, error);
}

gboolean
qsim_store_set_start_mode(QsimStore *self, const gchar *uuid, const gchar *mode, GError **error)
{
	g_autofree gchar *id = NULL;
	QsimStartMode m = QSIM_START_MODE_NONE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (!qsim_start_mode_from_string(mode, &m)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "start mode must be cold, snapshot or warm, not '%.20s'",
		            mode != NULL && g_utf8_validate(mode, -1, NULL) ? mode : "(invalid)");
		return FALSE;
	}
	/* no signal: neither the status nor the lease changed */
	return QSIM_STORE_GET_CLASS(self)->set_start_mode(self, id, m, error);
}

gboolean
qsim_store_set_output_truncated(QsimStore *self, const gchar *uuid, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (QSIM_STORE_GET_CLASS(self)->set_output_truncated == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		            "this store cannot record an output truncation");
		return FALSE;
	}
	return QSIM_STORE_GET_CLASS(self)->set_output_truncated(self, id, error);
}

static GPtrArray *
list_events(QsimStore *self, gint64 after_id, guint limit, GError **error)
{
	QsimStoreClass *klass = QSIM_STORE_GET_CLASS(self);

	if (klass->list_request_events == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "this store keeps no request journal");
		return NULL;
	}
	return klass->list_request_events(self, after_id, limit, error);
}

/**
 * qsim_store_list_request_events:
 *
 * Returns: (transfer container) (element-type QsimRequestEvent): the events
 */
GPtrArray *
qsim_store_list_request_events(QsimStore *self, gint64 after_id, guint limit, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (after_id < 0 || limit == 0 || limit > QSIM_STORE_EVENTS_MAX_LIMIT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "after_id must be >= 0 and limit 1..%d", QSIM_STORE_EVENTS_MAX_LIMIT);
		return NULL;
	}
	return list_events(self, after_id, limit, error);
}

/**
 * qsim_store_get_last_request_event_id:
 *
 * Returns: the newest event's id, 0 for none, -1 with @error
 */
gint64
qsim_store_get_last_request_event_id(QsimStore *self, GError **error)
{
	g_autoptr(GPtrArray) events = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), -1);
	events = list_events(self, -1, 1, error);
	if (events == NULL)
		return -1;
	return events->len > 0 ? ((QsimRequestEvent *)events->pdata[0])->id : 0;
}

/**
 * qsim_store_list_finished_since:
 *
 * Returns: (transfer container) (element-type QsimFinishedSample): the samples
 */
GPtrArray *
qsim_store_list_finished_since(QsimStore *self, gint64 since_ms, guint limit, GError **error)
{
	QsimStoreClass *klass;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	klass = QSIM_STORE_GET_CLASS(self);
	if (limit == 0 || limit > QSIM_STORE_FINISHED_MAX_LIMIT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "limit must be 1..%d",
		            QSIM_STORE_FINISHED_MAX_LIMIT);
		return NULL;
	}
	if (klass->list_finished_since == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "this store cannot list finished requests");
		return NULL;
	}
	return klass->list_finished_since(self, since_ms, limit, error);
}
