#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "store/qsim-pg-store-private.h"
#include "store/qsim-request-rules.h"
#include "store/qsim-store-private.h"

#define AMBIGUOUS_SHOWN 10

/*
 * Status changes load the row FOR UPDATE, check the transition table in C
 * (qsim_status_check_transition()) and write it back with the one UPDATE of
 * qsim_pg_update_request(), all in one transaction: the row lock does what
 * SQLite's write lock does, for this request only.
 */

static gboolean
insert_row(QsimPgStore *self, const QsimRequest *r, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autofree gchar *paths = NULL;

	if (r->artifact_paths != NULL && r->artifact_paths[0] != NULL)
		paths = g_strjoinv("\n", r->artifact_paths);
	qsim_pg_args_text(a, r->uuid);
	qsim_pg_args_text(a, r->vm_name);
	qsim_pg_args_text(a, r->commands);
	qsim_pg_args_int(a, r->timeout_s);
	qsim_pg_args_text(a, qsim_status_to_string(r->status));
	qsim_pg_args_int(a, r->created_at);
	qsim_pg_args_text(a, paths);
	if (!qsim_pg_store_exec(self,
	                        "INSERT INTO requests (uuid, vm_name, commands, timeout, status,"
	                        " created_at, updated_at, attempts, artifact_paths)"
	                        " VALUES ($1, $2, $3, $4, $5, $6, $6, 0, $7)",
	                        a, error))
		return FALSE;
	if (r->upload_id != NULL)
		return qsim_pg_link_uploads(self, r->uuid, r->upload_id, error);
	return TRUE;
}

gboolean
qsim_pg_insert_request(QsimStore *store, const QsimRequest *r, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;

	/* one statement commits alone; with uploads to take, two must commit together */
	if (r->upload_id == NULL)
		return insert_row(self, r, error);
	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL || !insert_row(self, r, error))
		return FALSE;
	return qsim_pg_tx_commit(tx, error);
}

gboolean
qsim_pg_insert_requests(QsimStore *store, GPtrArray *requests, GError **row_errors, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);

	if (tx == NULL)
		return FALSE;
	for (guint i = 0; i < requests->len; i++) {
		g_autoptr(GError) row_error = NULL;

		/* a refused row must not abort the transaction: each row in a savepoint */
		if (!qsim_pg_store_exec(self, "SAVEPOINT row", NULL, error))
			return FALSE;
		if (insert_row(self, requests->pdata[i], &row_error)) {
			if (!qsim_pg_store_exec(self, "RELEASE SAVEPOINT row", NULL, error))
				return FALSE;
			continue;
		}
		if (qsim_pg_store_last_was_constraint(self) &&
		    qsim_pg_store_exec(self, "ROLLBACK TO SAVEPOINT row", NULL, NULL)) {
			row_errors[i] = g_steal_pointer(&row_error);
			continue;
		}
		g_propagate_error(error, g_steal_pointer(&row_error));
		return FALSE;
	}
	return qsim_pg_tx_commit(tx, error);
}

static QsimRequest *
get_by_prefix(QsimPgStore *self, const gchar *prefix, GError **error)
{
	g_autofree gchar *lower = g_ascii_strdown(prefix, -1);
	g_autofree gchar *upper = g_strconcat(lower, "g", NULL);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) rows = NULL;

	/* all UUID characters sort below 'g' (COLLATE "C": byte order, as SQLite) */
	qsim_pg_args_text(a, lower);
	qsim_pg_args_text(a, upper);
	qsim_pg_args_int(a, AMBIGUOUS_SHOWN + 1);
	res = qsim_pg_store_query(self,
	                          "SELECT " REQUEST_COLUMNS " FROM requests"
	                          " WHERE uuid COLLATE \"C\" >= $1 AND uuid COLLATE \"C\" < $2"
	                          " ORDER BY uuid COLLATE \"C\" LIMIT $3",
	                          a, error);
	if (res == NULL || (rows = qsim_pg_collect_requests(res, error)) == NULL)
		return NULL;
	return qsim_request_pick_by_prefix(rows, AMBIGUOUS_SHOWN, prefix, error);
}

QsimRequest *
qsim_pg_get_request(QsimStore *store, const gchar *uuid_or_prefix, guint min_prefix_len,
                    GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);

	if (strlen(uuid_or_prefix) == 36) {
		g_autofree gchar *lower = g_ascii_strdown(uuid_or_prefix, -1);

		return qsim_pg_load_request(self, lower, FALSE, error);
	}
	return get_by_prefix(self, uuid_or_prefix, error);
}

/* The text a request carries, the part that can be large (commands up to 256 KiB) */
static gsize
request_text_bytes(const QsimRequest *r)
{
	return 256 + strlen(r->commands) + (r->error != NULL ? strlen(r->error) : 0) +
	       strlen(r->vm_name) + (r->agent_id != NULL ? strlen(r->agent_id) : 0);
}

/*
 * A substring of commands in any case, as SQLite's trigram phrase: the text
 * is data, so LIKE's wildcards and its escape character (a backslash by default)
 * match themselves.
 */
static gchar *
like_pattern(const gchar *text)
{
	GString *p = g_string_new("%");

	for (const gchar *c = text; *c != '\0'; c++) {
		if (*c == '%' || *c == '_' || *c == '\\')
			g_string_append_c(p, '\\');
		g_string_append_c(p, *c);
	}
	g_string_append_c(p, '%');
	return g_string_free(p, FALSE);
}

GPtrArray *
qsim_pg_list_requests(QsimStore *store, const QsimRequestFilter *filter, gboolean *has_more,
                      GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) rows = NULL;
	gsize bytes = 0;
	gboolean cut = FALSE;
	g_autofree gchar *pattern = NULL;

	if (filter->text != NULL)
		pattern = like_pattern(filter->text);
	/* the cursor lookup and the page in one statement, hence one snapshot */
	qsim_pg_args_text(a, filter->status >= 0 ? qsim_status_to_string(filter->status) : NULL);
	qsim_pg_args_text(a, filter->before_uuid);
	qsim_pg_args_text(a, filter->vm_name);
	qsim_pg_args_text(a, filter->agent_id);
	qsim_pg_args_int(a, (gint64)filter->limit + 1);
	qsim_pg_args_text(a, pattern);
	/* unnamed statements are planned with their values: a NULL $6 drops the
	 * ILIKE, a given one can use the pg_trgm index (schema step 9) */
	res = qsim_pg_store_query(
	    self,
	    "SELECT " REQUEST_COLUMNS " FROM requests WHERE ($1::text IS NULL OR status = $1)"
	    " AND ($2::text IS NULL OR id < (SELECT id FROM requests WHERE uuid = $2))"
	    " AND ($3::text IS NULL OR vm_name = $3) AND ($4::text IS NULL OR agent_id = $4)"
	    " AND ($6::text IS NULL OR commands ILIKE $6)"
	    " ORDER BY id DESC LIMIT $5",
	    a, error);
	if (res == NULL)
		return NULL;
	if (filter->before_uuid != NULL) {
		g_autoptr(QsimPgArgs) b = qsim_pg_args_new();
		g_autoptr(PGresult) c = NULL;

		qsim_pg_args_text(b, filter->before_uuid);
		c = qsim_pg_store_query(self, "SELECT 1 FROM requests WHERE uuid = $1", b, error);
		if (c == NULL)
			return NULL;
		if (PQntuples(c) == 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
			            "no request %s to list before", filter->before_uuid);
			return NULL;
		}
	}
	rows = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimRequest *r = qsim_pg_row_to_request(res, i, error);

		if (r == NULL)
			return NULL;
		bytes += request_text_bytes(r);
		if (filter->max_bytes > 0 && rows->len > 0 && bytes > filter->max_bytes) {
			qsim_request_free(r);
			cut = TRUE;
			break;
		}
		g_ptr_array_add(rows, r);
	}
	*has_more = qsim_request_page_trim(rows, filter->limit, cut);
	return g_steal_pointer(&rows);
}

QsimRequest *
qsim_pg_set_status(QsimStore *store, const gchar *uuid, QsimStatus to, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_pg_now_ms(self);

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return NULL;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL || !qsim_request_apply_user_status(r, to, now, error))
		return NULL;
	if (!qsim_pg_update_request(self, r, error) || !qsim_pg_tx_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

gboolean
qsim_pg_delete_request(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL || !qsim_request_check_deletable(r, error))
		return FALSE;
	qsim_pg_args_text(a, uuid);
	return qsim_pg_store_exec(self, "DELETE FROM requests WHERE uuid = $1", a, error) &&
	       qsim_pg_tx_commit(tx, error);
}

/*
 * The oldest pending request nobody else is claiming (SKIP LOCKED), its VM slot
 * and the acknowledged status in one transaction. With a cap, the slot count
 * and insert run under a transaction advisory lock, the one serialisation
 * point: the caps hold exactly across processes and hosts.
 */
QsimRequest *
qsim_pg_claim_next(QsimStore *store, const gchar *agent_id, gint64 lease_ms, guint max_active_vms,
                   guint max_host_vms, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autofree gchar *host = NULL;
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(PGresult) res = NULL;
	gint64 now = qsim_pg_now_ms(self);
	gint64 slot_id = 0;

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL) {
		g_prefix_error(error, "cannot claim: ");
		return NULL;
	}
	res =
	    qsim_pg_store_query(self,
	                        "SELECT " REQUEST_COLUMNS " FROM requests WHERE status = 'pending'"
	                        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
	                        NULL, error);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0)
		return NULL; /* nothing to do; the guard rolls back */
	r = qsim_pg_row_to_request(res, 0, error);
	if (r == NULL)
		return NULL;
	if (!qsim_request_apply_claim(r, agent_id, lease_ms, now, error))
		return NULL;
	if (!qsim_agent_id_parse(agent_id, &host, NULL))
		host = g_strdup(agent_id);
	if (!qsim_pg_slots_insert_capped(self, now, host, agent_id, QSIM_VM_SLOT_REQUEST, r->uuid,
	                                 max_active_vms, max_host_vms, &slot_id, error))
		return NULL;
	if (slot_id == 0)
		return NULL; /* at capacity */
	if (!qsim_pg_update_request(self, r, error) || !qsim_pg_tx_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

gboolean
qsim_pg_mark_running(QsimStore *store, const gchar *uuid, const gchar *agent_id, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_pg_now_ms(self);

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL || !qsim_request_apply_running(r, agent_id, now, error))
		return FALSE;
	return qsim_pg_update_request(self, r, error) && qsim_pg_tx_commit(tx, error);
}

gboolean
qsim_pg_renew_lease(QsimStore *store, const gchar *uuid, const gchar *agent_id, gint64 lease_ms,
                    QsimStatus *out_status, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL || !qsim_request_check_owner(r, agent_id, error))
		return FALSE;
	if (!qsim_store_check_lease_renewable(r, qsim_pg_now_ms(self), error))
		return FALSE;
	qsim_pg_args_text(a, uuid);
	qsim_pg_args_int(a, qsim_pg_now_ms(self) + lease_ms);
	if (!qsim_pg_store_exec(self, "UPDATE requests SET lease_expires_at = $2 WHERE uuid = $1",
	                        a, error) ||
	    !qsim_pg_tx_commit(tx, error))
		return FALSE;
	if (out_status != NULL)
		*out_status = r->status;
	return TRUE;
}

gboolean
qsim_pg_finish_request(QsimStore *store, const gchar *uuid, const gchar *agent_id, QsimStatus final,
                       gboolean has_exit_code, gint exit_code, const gchar *error_msg,
                       QsimStatus *out_status, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_pg_now_ms(self);

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL || !qsim_request_apply_finish(r, agent_id, final, has_exit_code, exit_code,
	                                            error_msg, now, error))
		return FALSE;
	if (!qsim_pg_update_request(self, r, error) ||
	    !qsim_pg_slots_drop_request(self, uuid, error) || !qsim_pg_tx_commit(tx, error))
		return FALSE;
	*out_status = r->status;
	return TRUE;
}

GPtrArray *
qsim_pg_list_expired_leases(QsimStore *store, gint64 now, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_int(a, now);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT " REQUEST_COLUMNS
	                          " FROM requests WHERE lease_expires_at IS NOT NULL"
	                          " AND lease_expires_at <= $1 ORDER BY lease_expires_at",
	                          a, error);
	return res != NULL ? qsim_pg_collect_requests(res, error) : NULL;
}

GPtrArray *
qsim_pg_list_leases(QsimStore *store, const gchar *agent_id, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(a, agent_id);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT " REQUEST_COLUMNS
	                          " FROM requests WHERE lease_expires_at IS NOT NULL"
	                          " AND ($1::text IS NULL OR agent_id = $1) ORDER BY id",
	                          a, error);
	return res != NULL ? qsim_pg_collect_requests(res, error) : NULL;
}

gboolean
qsim_pg_recover_request(QsimStore *store, const gchar *uuid, const gchar *expected_agent_id,
                        gboolean retry, const gchar *reason, QsimStatus *out_status, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	gint64 now = qsim_pg_now_ms(self);

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL ||
	    !qsim_request_apply_recover(r, expected_agent_id, retry, reason, now, error))
		return FALSE;
	if (!qsim_pg_update_request(self, r, error) ||
	    !qsim_pg_slots_drop_request(self, uuid, error) || !qsim_pg_tx_commit(tx, error))
		return FALSE;
	*out_status = r->status;
	return TRUE;
}

gboolean
qsim_pg_set_start_mode(QsimStore *store, const gchar *uuid, QsimStartMode mode, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	r = qsim_pg_load_request(self, uuid, TRUE, error);
	if (r == NULL || !qsim_request_check_vm_held(r, error))
		return FALSE;
	qsim_pg_args_text(a, uuid);
	qsim_pg_args_text(a, qsim_start_mode_to_string(mode));
	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	return qsim_pg_store_exec(
	           self, "UPDATE requests SET start_mode = $2, updated_at = $3 WHERE uuid = $1", a,
	           error) &&
	       qsim_pg_tx_commit(tx, error);
}

gboolean
qsim_pg_set_output_truncated(QsimStore *store, const gchar *uuid, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(a, uuid);
	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	res = qsim_pg_store_query(
	    self, "UPDATE requests SET output_truncated = 1, updated_at = $2 WHERE uuid = $1", a,
	    error);
	if (res == NULL)
		return FALSE;
	if (g_strcmp0(PQcmdTuples(res), "0") == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "request %s not found", uuid);
		return FALSE;
	}
	return TRUE;
}
