#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-hosts.h"
#include "store/qsim-sqlite-transaction.h"
#include "store/qsim-sqlite-util.h"

/*
 * Statements here are prepared per call, not cached: heartbeats and catalogue
 * reads come every few seconds, not per request.
 */

static sqlite3_stmt *
prepare(sqlite3 *db, const gchar *sql, GError **error)
{
	sqlite3_stmt *stmt = NULL;
	gint rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);

	if (rc != SQLITE_OK) {
		qsim_sqlite_set_error(db, rc, "cannot prepare statement", error);
		sqlite3_finalize(stmt);
		return NULL;
	}
	return stmt;
}

static gboolean
step_done(sqlite3 *db, sqlite3_stmt *stmt, const gchar *context, GError **error)
{
	gint rc = sqlite3_step(stmt);

	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(db, rc, context, error);
		return FALSE;
	}
	return TRUE;
}

static void
bind_text_or_null(sqlite3_stmt *stmt, gint idx, const gchar *text)
{
	if (text != NULL)
		sqlite3_bind_text(stmt, idx, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, idx);
}

static gchar *
column_dup(sqlite3_stmt *stmt, gint col)
{
	const guchar *text = sqlite3_column_text(stmt, col);

	return text != NULL ? g_strdup((const gchar *)text) : NULL;
}

gboolean
qsim_sqlite_slots_count(sqlite3 *db, gint64 now, const gchar *host, guint *out_total,
                        guint *out_host, GError **error)
{
	/* a request's slot counts while its lease is live: an expired lease means its
	 * agent is gone, and its QEMU with it (they die with their agent) */
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(db,
	            "SELECT COUNT(*), COALESCE(SUM(s.host = ?1), 0) FROM vm_slots s"
	            " WHERE s.kind <> 'request' OR EXISTS (SELECT 1 FROM requests r"
	            " WHERE r.uuid = s.ref AND r.lease_expires_at > ?2)",
	            error);
	gint rc;

	if (stmt == NULL)
		return FALSE;
	bind_text_or_null(stmt, 1, host);
	sqlite3_bind_int64(stmt, 2, now);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		qsim_sqlite_set_error(db, rc, "cannot count VM slots", error);
		return FALSE;
	}
	if (out_total != NULL)
		*out_total = (guint)sqlite3_column_int64(stmt, 0);
	if (out_host != NULL)
		*out_host = (guint)sqlite3_column_int64(stmt, 1);
	return TRUE;
}

gboolean
qsim_sqlite_slots_insert_capped(sqlite3 *db, gint64 now, const gchar *host, const gchar *owner,
                                QsimVmSlotKind kind, const gchar *ref, guint max_total,
                                guint max_host, gint64 *out_id, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	guint total = 0;
	guint on_host = 0;

	*out_id = 0;
	/* without a cap nothing needs counting */
	if ((max_total > 0 || max_host > 0) &&
	    !qsim_sqlite_slots_count(db, now, host, &total, &on_host, error))
		return FALSE;
	if ((max_total > 0 && total >= max_total) || (max_host > 0 && on_host >= max_host))
		return TRUE;
	stmt = prepare(db,
	               "INSERT INTO vm_slots (host, owner, kind, ref, claimed_at)"
	               " VALUES (?1, ?2, ?3, ?4, ?5)",
	               error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, owner, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, qsim_vm_slot_kind_to_string(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, ref, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 5, now);
	if (!step_done(db, stmt, "cannot claim a VM slot", error))
		return FALSE;
	*out_id = sqlite3_last_insert_rowid(db);
	return TRUE;
}

gboolean
qsim_sqlite_slots_drop_request(sqlite3 *db, const gchar *uuid, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(db, "DELETE FROM vm_slots WHERE kind = 'request' AND ref = ?1", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, uuid, -1, SQLITE_TRANSIENT);
	return step_done(db, stmt, "cannot free a request's VM slot", error);
}

gboolean
qsim_sqlite_slots_claim(sqlite3 *db, gint64 now, const gchar *host, const gchar *owner,
                        QsimVmSlotKind kind, const gchar *ref, guint max_total, guint max_host,
                        gint64 *out_id, GError **error)
{
	/* the write lock first: the count and the insert must not race another process */
	g_autoptr(QsimSqliteTransaction) tx = qsim_sqlite_transaction_begin(db, TRUE, error);

	if (tx == NULL)
		return FALSE;
	if (!qsim_sqlite_slots_insert_capped(db, now, host, owner, kind, ref, max_total, max_host,
	                                     out_id, error))
		return FALSE;
	if (*out_id == 0)
		return TRUE; /* full: the guard rolls back the empty transaction */
	return qsim_sqlite_transaction_commit(tx, error);
}

gboolean
qsim_sqlite_slots_release(sqlite3 *db, gint64 id, gint kind, gboolean *out_released, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(db, "DELETE FROM vm_slots WHERE id = ?1 AND (?2 IS NULL OR kind = ?2)", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	bind_text_or_null(stmt, 2,
	                  kind >= 0 ? qsim_vm_slot_kind_to_string((QsimVmSlotKind)kind) : NULL);
	if (!step_done(db, stmt, "cannot free a VM slot", error))
		return FALSE;
	if (out_released != NULL)
		*out_released = sqlite3_changes(db) > 0;
	return TRUE;
}

gboolean
qsim_sqlite_slots_adopt(sqlite3 *db, gint64 now, gint64 warm_id, const gchar *uuid,
                        const gchar *owner, gboolean *out_adopted, GError **error)
{
	g_autoptr(QsimSqliteTransaction) tx = qsim_sqlite_transaction_begin(db, TRUE, error);
	g_autoptr(sqlite3_stmt) stmt = NULL;

	*out_adopted = FALSE;
	if (tx == NULL)
		return FALSE;
	stmt = prepare(db,
	               "UPDATE vm_slots SET kind = 'request', ref = ?2, owner = ?3, claimed_at = ?4"
	               " WHERE id = ?1 AND kind = 'warm'",
	               error);
	if (stmt == NULL)
		return FALSE;
	/* the request's own slot goes first: one QEMU, one slot */
	if (!qsim_sqlite_slots_drop_request(db, uuid, error))
		return FALSE;
	sqlite3_bind_int64(stmt, 1, warm_id);
	sqlite3_bind_text(stmt, 2, uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, owner, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 4, now);
	if (!step_done(db, stmt, "cannot hand a warm VM's slot over", error))
		return FALSE;
	if (sqlite3_changes(db) == 0)
		return TRUE; /* not a warm slot (any more): keep the request's own */
	*out_adopted = TRUE;
	return qsim_sqlite_transaction_commit(tx, error);
}

gboolean
qsim_sqlite_slots_release_owner(sqlite3 *db, const gchar *owner_prefix, guint *out_n,
                                GError **error)
{
	/* substr, not LIKE: an owner id may hold '_' */
	g_autoptr(sqlite3_stmt) stmt = prepare(db,
	                                       "DELETE FROM vm_slots WHERE kind <> 'request'"
	                                       " AND substr(owner, 1, length(?1)) = ?1",
	                                       error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, owner_prefix, -1, SQLITE_TRANSIENT);
	if (!step_done(db, stmt, "cannot free a process's VM slots", error))
		return FALSE;
	if (out_n != NULL)
		*out_n = (guint)sqlite3_changes(db);
	return TRUE;
}

gboolean
qsim_sqlite_slots_release_stale_hosts(sqlite3 *db, gint64 now, guint *out_n, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(db,
	            "DELETE FROM vm_slots WHERE kind <> 'request' AND host IN"
	            " (SELECT host FROM hosts WHERE heartbeat_at + stale_after_ms < ?1)",
	            error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, now);
	if (!step_done(db, stmt, "cannot free the VM slots of stale hosts", error))
		return FALSE;
	if (out_n != NULL)
		*out_n = (guint)sqlite3_changes(db);
	return TRUE;
}

GPtrArray *
qsim_sqlite_slots_list(sqlite3 *db, const gchar *host, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = prepare(db,
	                                       "SELECT id, host, owner, kind, ref, claimed_at"
	                                       " FROM vm_slots WHERE (?1 IS NULL OR host = ?1)"
	                                       " ORDER BY id",
	                                       error);
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	if (stmt == NULL)
		return NULL;
	bind_text_or_null(stmt, 1, host);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_vm_slot_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimVmSlot *s = g_new0(QsimVmSlot, 1);

		s->id = sqlite3_column_int64(stmt, 0);
		s->host = column_dup(stmt, 1);
		s->owner = column_dup(stmt, 2);
		qsim_vm_slot_kind_from_string((const gchar *)sqlite3_column_text(stmt, 3),
		                              &s->kind);
		s->ref = column_dup(stmt, 4);
		s->claimed_at = sqlite3_column_int64(stmt, 5);
		g_ptr_array_add(out, s);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(db, rc, "cannot read VM slots", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

static gboolean
publish_vm(sqlite3 *db, sqlite3_stmt *stmt, gint64 now, const QsimHostVm *v, GError **error)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	sqlite3_bind_text(stmt, 1, v->host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, v->vm_name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(stmt, 3, v->valid ? 1 : 0);
	bind_text_or_null(stmt, 4, v->error);
	bind_text_or_null(stmt, 5, v->image);
	bind_text_or_null(stmt, 6, v->format);
	sqlite3_bind_int64(stmt, 7, (gint64)MIN(v->size_bytes, (guint64)G_MAXINT64));
	bind_text_or_null(stmt, 8, v->config);
	bind_text_or_null(stmt, 9, v->config_hash);
	bind_text_or_null(stmt, 10, v->image_id);
	bind_text_or_null(stmt, 11, v->accel_mode);
	bind_text_or_null(stmt, 12, v->accel_source);
	sqlite3_bind_int64(stmt, 13, v->warm_size);
	sqlite3_bind_int64(stmt, 14, v->warm_parked);
	sqlite3_bind_int64(stmt, 15, v->warm_starting);
	sqlite3_bind_int64(stmt, 16, now);
	return step_done(db, stmt, "cannot publish a VM of the catalogue", error);
}

gboolean
qsim_sqlite_hosts_publish(sqlite3 *db, gint64 now, const QsimHostRecord *h, GPtrArray *vms,
                          GError **error)
{
	g_autoptr(QsimSqliteTransaction) tx = qsim_sqlite_transaction_begin(db, TRUE, error);
	g_autoptr(sqlite3_stmt) host = NULL;
	g_autoptr(sqlite3_stmt) agent = NULL;
	g_autoptr(sqlite3_stmt) prune = NULL;

	if (tx == NULL)
		return FALSE;
	host = prepare(db,
	               "INSERT INTO hosts (host, version, accel, max_vms, max_total, heartbeat_at,"
	               " stale_after_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	               " ON CONFLICT (host) DO UPDATE SET version = excluded.version,"
	               " accel = excluded.accel, max_vms = excluded.max_vms,"
	               " max_total = excluded.max_total, heartbeat_at = excluded.heartbeat_at,"
	               " stale_after_ms = excluded.stale_after_ms",
	               error);
	if (host == NULL)
		return FALSE;
	sqlite3_bind_text(host, 1, h->host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(host, 2, h->version != NULL ? h->version : "", -1, SQLITE_TRANSIENT);
	bind_text_or_null(host, 3, h->accel);
	sqlite3_bind_int64(host, 4, h->max_vms);
	sqlite3_bind_int64(host, 5, h->max_total);
	sqlite3_bind_int64(host, 6, now);
	sqlite3_bind_int64(host, 7, MAX(h->stale_after_ms, 1));
	if (!step_done(db, host, "cannot publish the host", error))
		return FALSE;
	agent = prepare(db,
	                "INSERT INTO host_agents (agent_id, host, heartbeat_at) VALUES (?1, ?2, ?3)"
	                " ON CONFLICT (agent_id) DO UPDATE SET host = excluded.host,"
	                " heartbeat_at = excluded.heartbeat_at",
	                error);
	if (agent == NULL)
		return FALSE;
	for (guint i = 0; h->agent_ids != NULL && h->agent_ids[i] != NULL; i++) {
		sqlite3_reset(agent);
		sqlite3_bind_text(agent, 1, h->agent_ids[i], -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(agent, 2, h->host, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(agent, 3, now);
		if (!step_done(db, agent, "cannot publish an agent", error))
			return FALSE;
	}
	/* agents of processes long gone: kept a while for the record, then dropped */
	prune = prepare(
	    db, "DELETE FROM host_agents WHERE host = ?1 AND heartbeat_at < ?2 - 10 * ?3", error);
	if (prune == NULL)
		return FALSE;
	sqlite3_bind_text(prune, 1, h->host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(prune, 2, now);
	sqlite3_bind_int64(prune, 3, MAX(h->stale_after_ms, 1));
	if (!step_done(db, prune, "cannot prune agents", error))
		return FALSE;
	if (vms != NULL) {
		g_autoptr(sqlite3_stmt) del =
		    prepare(db, "DELETE FROM host_vms WHERE host = ?1", error);
		g_autoptr(sqlite3_stmt) ins = NULL;

		if (del == NULL)
			return FALSE;
		sqlite3_bind_text(del, 1, h->host, -1, SQLITE_TRANSIENT);
		if (!step_done(db, del, "cannot replace the catalogue", error))
			return FALSE;
		ins =
		    prepare(db,
		            "INSERT INTO host_vms (host, vm_name, valid, error, image, format,"
		            " size_bytes, config, config_hash, image_id, accel_mode, accel_source,"
		            " warm_size, warm_parked, warm_starting, updated_at)"
		            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
		            " ?15, ?16)",
		            error);
		if (ins == NULL)
			return FALSE;
		for (guint i = 0; i < vms->len; i++) {
			QsimHostVm *v = g_ptr_array_index(vms, i);

			if (g_strcmp0(v->host, h->host) != 0) {
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
				            "VM %s of the catalogue of %s names host %s",
				            v->vm_name, h->host, v->host);
				return FALSE;
			}
			if (!publish_vm(db, ins, now, v, error))
				return FALSE;
		}
	}
	return qsim_sqlite_transaction_commit(tx, error);
}

static gchar **
live_agents(sqlite3 *db, const gchar *host, gint64 since, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = prepare(db,
	                                       "SELECT agent_id FROM host_agents WHERE host = ?1"
	                                       " AND heartbeat_at >= ?2 ORDER BY agent_id",
	                                       error);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 2, since);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_strv_builder_add(b, (const gchar *)sqlite3_column_text(stmt, 0));
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(db, rc, "cannot read agents", error);
		return NULL;
	}
	return g_strv_builder_end(b);
}

GPtrArray *
qsim_sqlite_hosts_list(sqlite3 *db, gint64 now, GError **error)
{
	g_autoptr(QsimSqliteTransaction) tx = qsim_sqlite_transaction_begin(db, FALSE, error);
	g_autoptr(sqlite3_stmt) stmt = NULL;
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	/* one snapshot for the hosts and their agents */
	if (tx == NULL)
		return NULL;
	stmt = prepare(db,
	               "SELECT host, version, accel, max_vms, max_total, heartbeat_at,"
	               " stale_after_ms FROM hosts ORDER BY host",
	               error);
	if (stmt == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_record_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimHostRecord *h =
		    qsim_host_record_new((const gchar *)sqlite3_column_text(stmt, 0));

		g_ptr_array_add(out, h);
		h->version = column_dup(stmt, 1);
		h->accel = column_dup(stmt, 2);
		h->max_vms = (guint)sqlite3_column_int64(stmt, 3);
		h->max_total = (guint)sqlite3_column_int64(stmt, 4);
		h->heartbeat_at = sqlite3_column_int64(stmt, 5);
		h->stale_after_ms = sqlite3_column_int64(stmt, 6);
		g_strfreev(h->agent_ids);
		h->agent_ids = live_agents(db, h->host, now - h->stale_after_ms, error);
		if (h->agent_ids == NULL)
			return NULL;
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(db, rc, "cannot read hosts", error);
		return NULL;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&out);
}

GPtrArray *
qsim_sqlite_hosts_list_vms(sqlite3 *db, const gchar *vm_name, const gchar *host, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	    prepare(db,
	            "SELECT host, vm_name, valid, error, image, format, size_bytes, config,"
	            " config_hash, image_id, accel_mode, accel_source, warm_size, warm_parked,"
	            " warm_starting, updated_at FROM host_vms"
	            " WHERE (?1 IS NULL OR vm_name = ?1) AND (?2 IS NULL OR host = ?2)"
	            " ORDER BY vm_name, host",
	            error);
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	if (stmt == NULL)
		return NULL;
	bind_text_or_null(stmt, 1, vm_name);
	bind_text_or_null(stmt, 2, host);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		QsimHostVm *v = g_new0(QsimHostVm, 1);

		v->host = column_dup(stmt, 0);
		v->vm_name = column_dup(stmt, 1);
		v->valid = sqlite3_column_int(stmt, 2) != 0;
		v->error = column_dup(stmt, 3);
		v->image = column_dup(stmt, 4);
		v->format = column_dup(stmt, 5);
		v->size_bytes = (guint64)MAX(sqlite3_column_int64(stmt, 6), 0);
		v->config = column_dup(stmt, 7);
		v->config_hash = column_dup(stmt, 8);
		v->image_id = column_dup(stmt, 9);
		v->accel_mode = column_dup(stmt, 10);
		v->accel_source = column_dup(stmt, 11);
		v->warm_size = (guint)sqlite3_column_int64(stmt, 12);
		v->warm_parked = (guint)sqlite3_column_int64(stmt, 13);
		v->warm_starting = (guint)sqlite3_column_int64(stmt, 14);
		v->updated_at = sqlite3_column_int64(stmt, 15);
		g_ptr_array_add(out, v);
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(db, rc, "cannot read the VM catalogue", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}
