#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "store/qsim-store.h"

#define VM_NAME_MAX 64
#define COMMANDS_MAX (256 * 1024)
#define AGENT_ID_MAX 128
#define REASON_MAX 4096
#define HOST_MAX 255
#define TEMPLATE_TEXT_MAX 4096

typedef struct {
	QsimStoreClockFunc clock_func;
	gpointer clock_data;
	/* qsim_store_watch_changes() */
	guint n_watchers;
	guint watch_interval_ms;
	guint watch_id;
	guint64 watch_version;
	gboolean watch_have_version;
} QsimStorePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(QsimStore, qsim_store, G_TYPE_OBJECT)

enum {
	SIGNAL_REQUEST_CHANGED,
	SIGNAL_REQUEST_DELETED,
	SIGNAL_LOGS_APPENDED,
	SIGNAL_TEMPLATE_CHANGED,
	SIGNAL_CHANGED_ELSEWHERE,
	SIGNAL_LAST
};

static guint signals[SIGNAL_LAST] = {0};

static void
qsim_store_init(QsimStore *self)
{
}

static void
qsim_store_dispose(GObject *object)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(QSIM_STORE(object));

	g_clear_handle_id(&priv->watch_id, g_source_remove);
	G_OBJECT_CLASS(qsim_store_parent_class)->dispose(object);
}

static void
qsim_store_class_init(QsimStoreClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = qsim_store_dispose;
	signals[SIGNAL_REQUEST_CHANGED] =
	    g_signal_new("request-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT);
	signals[SIGNAL_REQUEST_DELETED] =
	    g_signal_new("request-deleted", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
	signals[SIGNAL_LOGS_APPENDED] =
	    g_signal_new("logs-appended", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT64);
	signals[SIGNAL_TEMPLATE_CHANGED] =
	    g_signal_new("template-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
	signals[SIGNAL_CHANGED_ELSEWHERE] =
	    g_signal_new("changed-elsewhere", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                 NULL, NULL, G_TYPE_NONE, 0);
}

static void
emit_changed(QsimStore *self, const gchar *uuid, QsimStatus status)
{
	g_signal_emit(self, signals[SIGNAL_REQUEST_CHANGED], 0, uuid, (gint)status);
}

/* Returns: (transfer full): the lowercase UUID, or NULL with INVALID */
static gchar *
normalize_uuid(const gchar *uuid, GError **error)
{
	g_autofree gchar *lower = NULL;

	if (uuid == NULL || !g_uuid_string_is_valid(uuid)) {
		/* bounded: the text may be anything a client sent */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "'%.40s' is not a UUID",
		            uuid != NULL && g_utf8_validate(uuid, -1, NULL) ? uuid : "(invalid)");
		return NULL;
	}
	lower = g_ascii_strdown(uuid, -1);
	return g_steal_pointer(&lower);
}

static gboolean
check_text(const gchar *field, const gchar *value, gsize max_len, GError **error)
{
	if (value == NULL || value[0] == '\0') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s must not be empty", field);
		return FALSE;
	}
	if (strlen(value) > max_len) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s is longer than %" G_GSIZE_FORMAT " bytes", field, max_len);
		return FALSE;
	}
	if (!g_utf8_validate(value, -1, NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s is not valid UTF-8", field);
		return FALSE;
	}
	return TRUE;
}

/* Returns: (transfer full) (nullable): @reason as bounded valid UTF-8, for storage */
static gchar *
sanitize_reason(const gchar *reason)
{
	g_autofree gchar *valid = NULL;
	const gchar *end;

	if (reason == NULL)
		return NULL;
	valid = g_utf8_make_valid(reason, -1);
	if (strlen(valid) <= REASON_MAX)
		return g_steal_pointer(&valid);
	/* cut on a character boundary so the stored text stays valid UTF-8 */
	end = g_utf8_find_prev_char(valid, valid + REASON_MAX + 1);
	return g_strndup(valid, end - valid);
}

gboolean
qsim_store_purge_requests(QsimStore *self, gint status, gint64 before_ms, guint limit,
                          guint *out_deleted, gboolean *out_more, GError **error)
{
	g_autoptr(GPtrArray) uuids = NULL;
	gboolean more = FALSE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_deleted != NULL, FALSE);
	*out_deleted = 0;
	if (status >= 0 && !qsim_status_is_final((QsimStatus)status)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "only done, failed or cancelled requests can be purged, not %s",
		            qsim_status_to_string((QsimStatus)status));
		return FALSE;
	}
	if (limit < 1 || limit > QSIM_STORE_PURGE_MAX_BATCH) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "a purge takes 1 to %u requests at a time, not %u",
		            (guint)QSIM_STORE_PURGE_MAX_BATCH, limit);
		return FALSE;
	}
	uuids = QSIM_STORE_GET_CLASS(self)->purge_requests(self, status, before_ms, limit, &more,
	                                                   error);
	if (uuids == NULL)
		return FALSE;
	for (guint i = 0; i < uuids->len; i++)
		g_signal_emit(self, signals[SIGNAL_REQUEST_DELETED], 0, uuids->pdata[i]);
	*out_deleted = uuids->len;
	if (out_more != NULL)
		*out_more = more;
	return TRUE;
}

gboolean
qsim_store_reclaim_space(QsimStore *self, guint max_pages, guint64 *out_free_pages,
                         gboolean *out_incremental, GError **error)
{
	guint64 free_pages = 0;
	gboolean incremental = FALSE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (!QSIM_STORE_GET_CLASS(self)->reclaim_space(self, max_pages, &free_pages, &incremental,
	                                               error))
		return FALSE;
	if (out_free_pages != NULL)
		*out_free_pages = free_pages;
	if (out_incremental != NULL)
		*out_incremental = incremental;
	return TRUE;
}

gboolean
qsim_store_vacuum(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	return QSIM_STORE_GET_CLASS(self)->vacuum(self, error);
}

guint
qsim_store_get_schema_version(QsimStore *self)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), 0);
	return QSIM_STORE_GET_CLASS(self)->get_schema_version(self);
}

gboolean
qsim_store_ping(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	return QSIM_STORE_GET_CLASS(self)->ping(self, error);
}

void
qsim_store_set_clock(QsimStore *self, QsimStoreClockFunc func, gpointer user_data)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);

	g_return_if_fail(QSIM_IS_STORE(self));
	priv->clock_func = func;
	priv->clock_data = user_data;
}

gint64
qsim_store_now_ms(QsimStore *self)
{
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);

	if (priv->clock_func != NULL)
		return priv->clock_func(priv->clock_data);
	return g_get_real_time() / 1000;
}

/* Returns: (transfer full): a pending request for @vm_name etc., or NULL with INVALID */
static QsimRequest *
build_request(QsimStore *self, const gchar *vm_name, const gchar *commands, gint64 timeout_s,
              GError **error)
{
	g_autoptr(QsimRequest) request = NULL;

	if (!check_text("vm_name", vm_name, VM_NAME_MAX, error))
		return NULL;
	if (!check_text("commands", commands, COMMANDS_MAX, error))
		return NULL;
	if (timeout_s <= 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "timeout must be positive, got %" G_GINT64_FORMAT, timeout_s);
		return NULL;
	}
	request = qsim_request_new();
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
	g_autoptr(QsimRequest) request = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	request = build_request(self, vm_name, commands, timeout_s, error);
	if (request == NULL)
		return NULL;
	if (!QSIM_STORE_GET_CLASS(self)->insert_request(self, request, error))
		return NULL;
	emit_changed(self, request->uuid, request->status);
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
		r = build_request(self, d->vm_name, d->commands, d->timeout_s, &d->error);
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
		emit_changed(self, d->request->uuid, d->request->status);
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
	if (f.before_uuid != NULL) {
		before = normalize_uuid(f.before_uuid, error);
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
	id = normalize_uuid(uuid, error);
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
		emit_changed(self, request->uuid, request->status);
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
	id = normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (!QSIM_STORE_GET_CLASS(self)->delete_request(self, id, error))
		return FALSE;
	g_signal_emit(self, signals[SIGNAL_REQUEST_DELETED], 0, id);
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
	if (!check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return NULL;
	if (lease_ms <= 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "lease must be positive");
		return NULL;
	}
	request = QSIM_STORE_GET_CLASS(self)->claim_next(self, agent_id, lease_ms, max_active_vms,
	                                                 max_host_vms, error);
	if (request != NULL)
		emit_changed(self, request->uuid, request->status);
	return request;
}

gboolean
qsim_store_mark_running(QsimStore *self, const gchar *uuid, const gchar *agent_id, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = normalize_uuid(uuid, error);
	if (id == NULL || !check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return FALSE;
	if (!QSIM_STORE_GET_CLASS(self)->mark_running(self, id, agent_id, error))
		return FALSE;
	emit_changed(self, id, QSIM_STATUS_RUNNING);
	return TRUE;
}

gboolean
qsim_store_renew_lease(QsimStore *self, const gchar *uuid, const gchar *agent_id, gint64 lease_ms,
                       QsimStatus *out_status, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = normalize_uuid(uuid, error);
	if (id == NULL || !check_text("agent_id", agent_id, AGENT_ID_MAX, error))
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
	id = normalize_uuid(uuid, error);
	if (id == NULL || !check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return FALSE;
	if (!qsim_status_is_final(final)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s is not a final status",
		            qsim_status_to_string(final));
		return FALSE;
	}
	reason = sanitize_reason(error_msg);
	if (!QSIM_STORE_GET_CLASS(self)->finish_request(self, id, agent_id, final, has_exit_code,
	                                                exit_code, reason, &stored, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = stored;
	emit_changed(self, id, stored);
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
	id = normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (expected_agent_id != NULL &&
	    !check_text("agent_id", expected_agent_id, AGENT_ID_MAX, error))
		return FALSE;
	why = sanitize_reason(reason != NULL ? reason : "agent lost");
	if (!QSIM_STORE_GET_CLASS(self)->recover_request(self, id, expected_agent_id, retry, why,
	                                                 &stored, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = stored;
	emit_changed(self, id, stored);
	return TRUE;
}

gint64
qsim_store_append_logs(QsimStore *self, const gchar *uuid, GPtrArray *chunks, GError **error)
{
	g_autofree gchar *id = NULL;
	gint64 last_seq;

	g_return_val_if_fail(QSIM_IS_STORE(self), -1);
	id = normalize_uuid(uuid, error);
	if (id == NULL)
		return -1;
	if (chunks == NULL || chunks->len == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "no log chunks given");
		return -1;
	}
	for (guint i = 0; i < chunks->len; i++) {
		const QsimLogEntry *entry = g_ptr_array_index(chunks, i);

		if (entry == NULL || entry->output == NULL ||
		    (guint)entry->log_type >= QSIM_LOG_TYPE_COUNT || entry->timestamp_ms < 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "log chunk %u is malformed", i);
			return -1;
		}
	}
	last_seq = QSIM_STORE_GET_CLASS(self)->append_logs(self, id, chunks, error);
	if (last_seq < 0)
		return -1;
	g_signal_emit(self, signals[SIGNAL_LOGS_APPENDED], 0, id, last_seq);
	return last_seq;
}

/**
 * qsim_store_read_logs:
 *
 * Returns: (transfer container) (element-type QsimLogEntry): chunks in seq order
 */
GPtrArray *
qsim_store_read_logs(QsimStore *self, const gchar *uuid, gint64 after_seq, guint limit,
                     gint log_type, GError **error)
{
	return qsim_store_read_logs_page(self, uuid, after_seq, limit, log_type, 0, NULL, error);
}

/**
 * qsim_store_read_logs_page:
 *
 * Returns: (transfer container) (element-type QsimLogEntry): chunks in seq order
 */
GPtrArray *
qsim_store_read_logs_page(QsimStore *self, const gchar *uuid, gint64 after_seq, guint limit,
                          gint log_type, gsize max_bytes, gboolean *out_cut, GError **error)
{
	g_autofree gchar *id = NULL;
	gboolean cut = FALSE;
	GPtrArray *logs;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	id = normalize_uuid(uuid, error);
	if (id == NULL)
		return NULL;
	if (log_type < -1 || log_type >= QSIM_LOG_TYPE_COUNT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown log type %d", log_type);
		return NULL;
	}
	if (limit == 0)
		limit = QSIM_STORE_LOGS_DEFAULT_LIMIT;
	if (limit > QSIM_STORE_LOGS_MAX_LIMIT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "limit must be 1..%d",
		            QSIM_STORE_LOGS_MAX_LIMIT);
		return NULL;
	}
	logs = QSIM_STORE_GET_CLASS(self)->read_logs(self, id, MAX(after_seq, 0), limit, log_type,
	                                             max_bytes, &cut, error);
	if (out_cut != NULL)
		*out_cut = logs != NULL && cut;
	return logs;
}

/**
 * qsim_store_get_stats:
 *
 * Returns: (transfer full): a snapshot of the queue
 */
QsimStats *
qsim_store_get_stats(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	return QSIM_STORE_GET_CLASS(self)->get_stats(self, error);
}

QsimStoreMetrics *
qsim_store_get_metrics(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	/* optional for a backend: /metrics then reports the database as down */
	if (QSIM_STORE_GET_CLASS(self)->get_metrics == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "this store backend exports no metrics");
		return NULL;
	}
	return QSIM_STORE_GET_CLASS(self)->get_metrics(self, error);
}

gboolean
qsim_store_count_active_vms(QsimStore *self, guint *out_count, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	return QSIM_STORE_GET_CLASS(self)->count_active_vms(self, out_count, error);
}

gboolean
qsim_store_get_data_version(QsimStore *self, guint64 *out_version, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_version != NULL, FALSE);
	return QSIM_STORE_GET_CLASS(self)->get_data_version(self, out_version, error);
}

static gboolean
qsim_store_watch_cb(gpointer user_data)
{
	QsimStore *self = QSIM_STORE(user_data);
	QsimStorePrivate *priv = qsim_store_get_instance_private(self);
	g_autoptr(GError) error = NULL;
	guint64 version = 0;

	/* a locked or busy database only delays the news to the next tick */
	if (!qsim_store_get_data_version(self, &version, &error)) {
		g_debug("cannot read the data version: %s", error->message);
		return G_SOURCE_CONTINUE;
	}
	if (priv->watch_have_version && version != priv->watch_version) {
		priv->watch_version = version;
		g_signal_emit(self, signals[SIGNAL_CHANGED_ELSEWHERE], 0);
		return G_SOURCE_CONTINUE;
	}
	priv->watch_version = version;
	priv->watch_have_version = TRUE;
	return G_SOURCE_CONTINUE;
}

void
qsim_store_watch_changes(QsimStore *self, guint interval_ms)
{
	QsimStorePrivate *priv;

	g_return_if_fail(QSIM_IS_STORE(self));
	g_return_if_fail(interval_ms > 0);
	priv = qsim_store_get_instance_private(self);
	priv->n_watchers++;
	if (priv->watch_id != 0 && priv->watch_interval_ms <= interval_ms)
		return;
	g_clear_handle_id(&priv->watch_id, g_source_remove);
	priv->watch_interval_ms = interval_ms;
	if (!priv->watch_have_version)
		priv->watch_have_version =
		    qsim_store_get_data_version(self, &priv->watch_version, NULL);
	priv->watch_id = g_timeout_add(interval_ms, qsim_store_watch_cb, self);
}

void
qsim_store_unwatch_changes(QsimStore *self)
{
	QsimStorePrivate *priv;

	g_return_if_fail(QSIM_IS_STORE(self));
	priv = qsim_store_get_instance_private(self);
	g_return_if_fail(priv->n_watchers > 0);
	if (--priv->n_watchers > 0)
		return;
	g_clear_handle_id(&priv->watch_id, g_source_remove);
	priv->watch_have_version = FALSE;
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
	if (agent_id != NULL && !check_text("agent_id", agent_id, AGENT_ID_MAX, error))
		return NULL;
	return QSIM_STORE_GET_CLASS(self)->list_leases(self, agent_id, error);
}

gboolean
qsim_store_set_start_mode(QsimStore *self, const gchar *uuid, const gchar *mode, GError **error)
{
	g_autofree gchar *id = NULL;
	QsimStartMode m = QSIM_START_MODE_NONE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = normalize_uuid(uuid, error);
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
	id = normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	if (QSIM_STORE_GET_CLASS(self)->set_output_truncated == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		            "this store cannot record an output truncation");
		return FALSE;
	}
	return QSIM_STORE_GET_CLASS(self)->set_output_truncated(self, id, error);
}

/* Returns: (transfer none): this process's HOST_ID, see qsim_host_id_get() */
const gchar *
qsim_store_get_local_host(void)
{
	return qsim_host_id_get();
}

gchar *
qsim_store_dup_builder_id(void)
{
	return qsim_layout_dup_builder_id();
}

static gboolean
check_template_key(const gchar *vm_name, const gchar *host, GError **error)
{
	return check_text("vm_name", vm_name, VM_NAME_MAX, error) &&
	       check_text("host", host, HOST_MAX, error);
}

static gboolean
check_optional_text(const gchar *field, const gchar *value, GError **error)
{
	return value == NULL || check_text(field, value, TEMPLATE_TEXT_MAX, error);
}

static void
emit_template_changed(QsimStore *self, const gchar *vm_name, const gchar *host)
{
	g_signal_emit(self, signals[SIGNAL_TEMPLATE_CHANGED], 0, vm_name, host);
}

gboolean
qsim_store_upsert_template(QsimStore *self, const QsimTemplateRecord *record, GError **error)
{
	g_autoptr(QsimTemplateRecord) r = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(record != NULL, FALSE);
	if (!check_template_key(record->vm_name, record->host, error))
		return FALSE;
	if ((guint)record->state >= QSIM_TEMPLATE_RECORD_STATE_COUNT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown template state %d",
		            (gint)record->state);
		return FALSE;
	}
	if (!check_optional_text("dir", record->dir, error) ||
	    !check_optional_text("image_sha256", record->image_sha256, error) ||
	    !check_optional_text("config_hash", record->config_hash, error) ||
	    !check_optional_text("qemu_version", record->qemu_version, error))
		return FALSE;
	/* MACHINE may legitimately be "" (QEMU's default) */
	if (record->machine != NULL && !g_utf8_validate(record->machine, -1, NULL)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "machine is not valid UTF-8");
		return FALSE;
	}
	if (record->build_ms < 0 || record->size_bytes > G_MAXINT64 ||
	    record->image_size > G_MAXINT64) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "template sizes and build time must not be negative");
		return FALSE;
	}
	r = qsim_template_record_copy(record);
	g_free(r->reason);
	r->reason = sanitize_reason(record->reason);
	r->updated_at = qsim_store_now_ms(self);
	if (!QSIM_STORE_GET_CLASS(self)->upsert_template(self, r, error))
		return FALSE;
	emit_template_changed(self, r->vm_name, r->host);
	return TRUE;
}

/**
 * qsim_store_get_template:
 *
 * Returns: (transfer full): the row
 */
QsimTemplateRecord *
qsim_store_get_template(QsimStore *self, const gchar *vm_name, const gchar *host, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!check_template_key(vm_name, host, error))
		return NULL;
	return QSIM_STORE_GET_CLASS(self)->get_template(self, vm_name, host, error);
}

/**
 * qsim_store_list_templates:
 *
 * Returns: (transfer container) (element-type QsimTemplateRecord): the rows
 */
GPtrArray *
qsim_store_list_templates(QsimStore *self, const gchar *host, gboolean only_requested,
                          GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (host != NULL && !check_text("host", host, HOST_MAX, error))
		return NULL;
	return QSIM_STORE_GET_CLASS(self)->list_templates(self, host, only_requested, error);
}

/**
 * qsim_store_request_prepare:
 *
 * Returns: (transfer full): the row after the request
 */
QsimTemplateRecord *
qsim_store_request_prepare(QsimStore *self, const gchar *vm_name, const gchar *host, gboolean force,
                           GError **error)
{
	QsimTemplateRecord *r;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!check_template_key(vm_name, host, error))
		return NULL;
	r = QSIM_STORE_GET_CLASS(self)->request_prepare(self, vm_name, host, force != FALSE, error);
	if (r != NULL)
		emit_template_changed(self, vm_name, host);
	return r;
}

gboolean
qsim_store_claim_prepare(QsimStore *self, const gchar *vm_name, const gchar *host,
                         gboolean *out_claimed, gboolean *out_force, GError **error)
{
	g_autofree gchar *builder = qsim_store_dup_builder_id();
	gboolean claimed = FALSE;
	gboolean force = FALSE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_claimed != NULL, FALSE);
	*out_claimed = FALSE;
	if (!check_template_key(vm_name, host, error))
		return FALSE;
	if (!QSIM_STORE_GET_CLASS(self)->claim_prepare(self, vm_name, host, builder, &claimed,
	                                               &force, error))
		return FALSE;
	*out_claimed = claimed;
	if (out_force != NULL)
		*out_force = claimed && force;
	if (claimed)
		emit_template_changed(self, vm_name, host);
	return TRUE;
}

/* ---- accelerator verdicts ------------------------------------------------- */

/**
 * qsim_store_put_accel_verdict:
 * @verdict: the KVM probe's verdict of its host (the row key)
 *
 * Replaces the host's verdict: a host has one accelerator answer at a time.
 *
 * Returns: FALSE with @error on bad fields or a database failure
 */
gboolean
qsim_store_put_accel_verdict(QsimStore *self, const QsimAccelVerdict *verdict, GError **error)
{
	g_autofree gchar *reason = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(verdict != NULL, FALSE);
	if (!check_text("host", verdict->host, HOST_MAX, error) ||
	    !check_text("cache_key", verdict->cache_key, 256, error))
		return FALSE;
	if (verdict->probe_ms < 0 || verdict->probed_at < 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "probe time and date must not be negative");
		return FALSE;
	}
	/* the reason quotes QEMU's stderr: bound it and make it valid UTF-8 */
	reason = sanitize_reason(verdict->reason != NULL ? verdict->reason : "");
	v = qsim_accel_verdict_copy(verdict);
	g_free(v->reason);
	v->reason = g_steal_pointer(&reason);
	if (v->reason == NULL)
		v->reason = g_strdup("");
	return QSIM_STORE_GET_CLASS(self)->put_accel_verdict(self, v, error);
}

/**
 * qsim_store_get_accel_verdict:
 *
 * Returns: (transfer full): the verdict of @host, or %NULL with NOT_FOUND or a database error
 */
QsimAccelVerdict *
qsim_store_get_accel_verdict(QsimStore *self, const gchar *host, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!check_text("host", host, HOST_MAX, error))
		return NULL;
	rows = QSIM_STORE_GET_CLASS(self)->list_accel_verdicts(self, host, error);
	if (rows == NULL)
		return NULL;
	if (rows->len == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
		            "no accelerator verdict for %s", host);
		return NULL;
	}
	return qsim_accel_verdict_copy(g_ptr_array_index(rows, 0));
}

/* Returns: (transfer container) (element-type QsimAccelVerdict): every host's, by host */
GPtrArray *
qsim_store_list_accel_verdicts(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	return QSIM_STORE_GET_CLASS(self)->list_accel_verdicts(self, NULL, error);
}
