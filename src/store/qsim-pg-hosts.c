#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"

/* Hosts, catalogues and VM slots: the PostgreSQL side of qsim-sqlite-hosts.c */

static gint64
changed_rows(const PGresult *res)
{
	return g_ascii_strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

gboolean
qsim_pg_slots_count(QsimPgStore *self, gint64 now, const gchar *host, guint *out_total,
                    guint *out_host, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(a, host);
	qsim_pg_args_int(a, now);
	/* a request's slot counts while its lease is live (see the SQLite side) */
	res = qsim_pg_store_query(self,
	                          "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.host = $1)"
	                          " FROM vm_slots s WHERE s.kind <> 'request' OR EXISTS"
	                          " (SELECT 1 FROM requests r WHERE r.uuid = s.ref"
	                          " AND r.lease_expires_at > $2)",
	                          a, error);
	if (res == NULL)
		return FALSE;
	if (out_total != NULL)
		*out_total = (guint)qsim_pg_int(res, 0, 0);
	if (out_host != NULL)
		*out_host = (guint)qsim_pg_int(res, 0, 1);
	return TRUE;
}

/*
 * Within the caller's transaction. With a cap, the transaction-level advisory
 * lock QSIM_PG_LOCK_SLOTS makes count + insert atomic across every process and
 * host (READ COMMITTED alone would let two claims both see room for one); it
 * is released at commit or rollback. Without a cap nothing is counted and
 * claims run in parallel.
 */
gboolean
qsim_pg_slots_insert_capped(QsimPgStore *self, gint64 now, const gchar *host, const gchar *owner,
                            QsimVmSlotKind kind, const gchar *ref, guint max_total, guint max_host,
                            gint64 *out_id, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	guint total = 0;
	guint on_host = 0;

	*out_id = 0;
	if (max_total > 0 || max_host > 0) {
		g_autoptr(QsimPgArgs) lock = qsim_pg_args_new();

		qsim_pg_args_int(lock, QSIM_PG_LOCK_SLOTS);
		if (!qsim_pg_store_exec(self, "SELECT pg_advisory_xact_lock($1)", lock, error) ||
		    !qsim_pg_slots_count(self, now, host, &total, &on_host, error))
			return FALSE;
	}
	if ((max_total > 0 && total >= max_total) || (max_host > 0 && on_host >= max_host))
		return TRUE;
	qsim_pg_args_text(a, host);
	qsim_pg_args_text(a, owner);
	qsim_pg_args_text(a, qsim_vm_slot_kind_to_string(kind));
	qsim_pg_args_text(a, ref);
	qsim_pg_args_int(a, now);
	res = qsim_pg_store_query(self,
	                          "INSERT INTO vm_slots (host, owner, kind, ref, claimed_at)"
	                          " VALUES ($1, $2, $3, $4, $5) RETURNING id",
	                          a, error);
	if (res == NULL)
		return FALSE;
	*out_id = qsim_pg_int(res, 0, 0);
	return TRUE;
}

gboolean
qsim_pg_slots_drop_request(QsimPgStore *self, const gchar *uuid, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, uuid);
	return qsim_pg_store_exec(self, "DELETE FROM vm_slots WHERE kind = 'request' AND ref = $1",
	                          a, error);
}

gboolean
qsim_pg_claim_slot(QsimStore *store, const gchar *host, const gchar *owner, QsimVmSlotKind kind,
                   const gchar *ref, guint max_total, guint max_host, gint64 *out_id,
                   GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);

	if (tx == NULL)
		return FALSE;
	if (!qsim_pg_slots_insert_capped(self, qsim_pg_now_ms(self), host, owner, kind, ref,
	                                 max_total, max_host, out_id, error))
		return FALSE;
	if (*out_id == 0)
		return TRUE; /* full: the guard rolls back */
	return qsim_pg_tx_commit(tx, error);
}

gboolean
qsim_pg_release_slot(QsimStore *store, gint64 id, gint kind, gboolean *out_released, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_int(a, id);
	qsim_pg_args_text(a, kind >= 0 ? qsim_vm_slot_kind_to_string((QsimVmSlotKind)kind) : NULL);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "DELETE FROM vm_slots WHERE id = $1"
	                          " AND ($2::text IS NULL OR kind = $2)",
	                          a, error);
	if (res == NULL)
		return FALSE;
	if (out_released != NULL)
		*out_released = changed_rows(res) > 0;
	return TRUE;
}

gboolean
qsim_pg_adopt_slot(QsimStore *store, gint64 warm_id, const gchar *uuid, const gchar *agent_id,
                   gboolean *out_adopted, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	*out_adopted = FALSE;
	tx = qsim_pg_tx_begin(self, error);
	if (tx == NULL)
		return FALSE;
	/* the request's own slot goes first: one QEMU, one slot */
	if (!qsim_pg_slots_drop_request(self, uuid, error))
		return FALSE;
	qsim_pg_args_int(a, warm_id);
	qsim_pg_args_text(a, uuid);
	qsim_pg_args_text(a, agent_id);
	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	res = qsim_pg_store_query(self,
	                          "UPDATE vm_slots SET kind = 'request', ref = $2, owner = $3,"
	                          " claimed_at = $4 WHERE id = $1 AND kind = 'warm'",
	                          a, error);
	if (res == NULL)
		return FALSE;
	if (changed_rows(res) == 0)
		return TRUE; /* not a warm slot (any more): keep the request's own */
	*out_adopted = TRUE;
	return qsim_pg_tx_commit(tx, error);
}

gboolean
qsim_pg_release_owner_slots(QsimStore *store, const gchar *owner_prefix, guint *out_n,
                            GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(a, owner_prefix);
	/* left(), not LIKE: an owner id may hold '_' */
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "DELETE FROM vm_slots WHERE kind <> 'request'"
	                          " AND left(owner, length($1)) = $1",
	                          a, error);
	if (res == NULL)
		return FALSE;
	if (out_n != NULL)
		*out_n = (guint)changed_rows(res);
	return TRUE;
}

gboolean
qsim_pg_release_stale_host_slots(QsimStore *store, guint *out_n, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	res = qsim_pg_store_query(
	    self,
	    "DELETE FROM vm_slots WHERE kind <> 'request' AND host IN"
	    " (SELECT host FROM hosts WHERE heartbeat_at + stale_after_ms < $1)",
	    a, error);
	if (res == NULL)
		return FALSE;
	if (out_n != NULL)
		*out_n = (guint)changed_rows(res);
	return TRUE;
}

GPtrArray *
qsim_pg_list_slots(QsimStore *store, const gchar *host, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_text(a, host);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT id, host, owner, kind, ref, claimed_at FROM vm_slots"
	                          " WHERE ($1::text IS NULL OR host = $1) ORDER BY id",
	                          a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_vm_slot_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimVmSlot *s = g_new0(QsimVmSlot, 1);

		s->id = qsim_pg_int(res, i, 0);
		s->host = qsim_pg_dup(res, i, 1);
		s->owner = qsim_pg_dup(res, i, 2);
		qsim_vm_slot_kind_from_string(PQgetvalue(res, i, 3), &s->kind);
		s->ref = qsim_pg_dup(res, i, 4);
		s->claimed_at = qsim_pg_int(res, i, 5);
		g_ptr_array_add(out, s);
	}
	return g_steal_pointer(&out);
}

static gboolean
publish_vms(QsimPgStore *self, gint64 now, const QsimHostRecord *h, GPtrArray *vms, GError **error)
{
	g_autoptr(QsimPgArgs) del = qsim_pg_args_new();
	g_autoptr(QsimPgArgs) a = NULL;
	g_autoptr(GString) sql = NULL;

	qsim_pg_args_text(del, h->host);
	if (!qsim_pg_store_exec(self, "DELETE FROM host_vms WHERE host = $1", del, error))
		return FALSE;
	if (vms->len == 0)
		return TRUE;
	a = qsim_pg_args_new();
	sql = g_string_new("INSERT INTO host_vms (host, vm_name, valid, error, image, format,"
	                   " size_bytes, config, config_hash, image_id, accel_mode, accel_source,"
	                   " warm_size, warm_parked, warm_starting, updated_at) VALUES ");
	for (guint i = 0; i < vms->len; i++) {
		QsimHostVm *v = g_ptr_array_index(vms, i);
		guint p = a->values->len + 1;

		if (g_strcmp0(v->host, h->host) != 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "VM %s of the catalogue of %s names host %s", v->vm_name,
			            h->host, v->host);
			return FALSE;
		}
		qsim_pg_args_text(a, v->host);
		qsim_pg_args_text(a, v->vm_name);
		qsim_pg_args_int(a, v->valid ? 1 : 0);
		qsim_pg_args_text(a, v->error);
		qsim_pg_args_text(a, v->image);
		qsim_pg_args_text(a, v->format);
		qsim_pg_args_int(a, (gint64)MIN(v->size_bytes, (guint64)G_MAXINT64));
		qsim_pg_args_text(a, v->config);
		qsim_pg_args_text(a, v->config_hash);
		qsim_pg_args_text(a, v->image_id);
		qsim_pg_args_text(a, v->accel_mode);
		qsim_pg_args_text(a, v->accel_source);
		qsim_pg_args_int(a, v->warm_size);
		qsim_pg_args_int(a, v->warm_parked);
		qsim_pg_args_int(a, v->warm_starting);
		qsim_pg_args_int(a, now);
		g_string_append_printf(sql, "%s(", i > 0 ? ", " : "");
		for (guint k = 0; k < 16; k++)
			g_string_append_printf(sql, "%s$%u", k > 0 ? ", " : "", p + k);
		g_string_append_c(sql, ')');
	}
	return qsim_pg_store_exec(self, sql->str, a, error);
}

gboolean
qsim_pg_publish_host(QsimStore *store, const QsimHostRecord *h, GPtrArray *vms, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(QsimPgArgs) prune = qsim_pg_args_new();
	gint64 now = qsim_pg_now_ms(self);

	if (tx == NULL)
		return FALSE;
	qsim_pg_args_text(a, h->host);
	qsim_pg_args_text(a, h->version != NULL ? h->version : "");
	qsim_pg_args_text(a, h->accel);
	qsim_pg_args_int(a, h->max_vms);
	qsim_pg_args_int(a, h->max_total);
	qsim_pg_args_int(a, now);
	qsim_pg_args_int(a, MAX(h->stale_after_ms, 1));
	if (!qsim_pg_store_exec(self,
	                        "INSERT INTO hosts (host, version, accel, max_vms, max_total,"
	                        " heartbeat_at, stale_after_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)"
	                        " ON CONFLICT (host) DO UPDATE SET version = excluded.version,"
	                        " accel = excluded.accel, max_vms = excluded.max_vms,"
	                        " max_total = excluded.max_total,"
	                        " heartbeat_at = excluded.heartbeat_at,"
	                        " stale_after_ms = excluded.stale_after_ms",
	                        a, error))
		return FALSE;
	for (guint i = 0; h->agent_ids != NULL && h->agent_ids[i] != NULL; i++) {
		g_autoptr(QsimPgArgs) ag = qsim_pg_args_new();

		qsim_pg_args_text(ag, h->agent_ids[i]);
		qsim_pg_args_text(ag, h->host);
		qsim_pg_args_int(ag, now);
		if (!qsim_pg_store_exec(
		        self,
		        "INSERT INTO host_agents (agent_id, host, heartbeat_at)"
		        " VALUES ($1, $2, $3) ON CONFLICT (agent_id) DO UPDATE SET"
		        " host = excluded.host, heartbeat_at = excluded.heartbeat_at",
		        ag, error))
			return FALSE;
	}
	/* agents of processes long gone: kept a while for the record, then dropped */
	qsim_pg_args_text(prune, h->host);
	qsim_pg_args_int(prune, now);
	qsim_pg_args_int(prune, MAX(h->stale_after_ms, 1));
	if (!qsim_pg_store_exec(self,
	                        "DELETE FROM host_agents WHERE host = $1"
	                        " AND heartbeat_at < $2::bigint - 10 * $3::bigint",
	                        prune, error))
		return FALSE;
	if (vms != NULL && !publish_vms(self, now, h, vms, error))
		return FALSE;
	return qsim_pg_tx_commit(tx, error);
}

GPtrArray *
qsim_pg_list_hosts(QsimStore *store, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	/* hosts and their live agents in one statement: one snapshot */
	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	res = qsim_pg_store_query(
	    self,
	    "SELECT h.host, h.version, h.accel, h.max_vms, h.max_total, h.heartbeat_at,"
	    " h.stale_after_ms, (SELECT string_agg(agent_id, ' ' ORDER BY agent_id COLLATE \"C\")"
	    " FROM host_agents g WHERE g.host = h.host"
	    " AND g.heartbeat_at >= $1::bigint - h.stale_after_ms)"
	    " FROM hosts h ORDER BY h.host COLLATE \"C\"",
	    a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_record_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimHostRecord *h = qsim_host_record_new(PQgetvalue(res, i, 0));

		g_ptr_array_add(out, h);
		h->version = qsim_pg_dup(res, i, 1);
		h->accel = qsim_pg_dup(res, i, 2);
		h->max_vms = (guint)qsim_pg_int(res, i, 3);
		h->max_total = (guint)qsim_pg_int(res, i, 4);
		h->heartbeat_at = qsim_pg_int(res, i, 5);
		h->stale_after_ms = qsim_pg_int(res, i, 6);
		g_strfreev(h->agent_ids);
		/* agent ids hold no spaces (host:pid:n) */
		h->agent_ids = qsim_pg_is_null(res, i, 7)
		                   ? g_new0(gchar *, 1)
		                   : g_strsplit(PQgetvalue(res, i, 7), " ", -1);
	}
	return g_steal_pointer(&out);
}

GPtrArray *
qsim_pg_list_host_vms(QsimStore *store, const gchar *vm_name, const gchar *host, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_text(a, vm_name);
	qsim_pg_args_text(a, host);
	res = qsim_pg_store_query(
	    QSIM_PG_STORE(store),
	    "SELECT host, vm_name, valid, error, image, format, size_bytes, config,"
	    " config_hash, image_id, accel_mode, accel_source, warm_size, warm_parked,"
	    " warm_starting, updated_at FROM host_vms"
	    " WHERE ($1::text IS NULL OR vm_name = $1) AND ($2::text IS NULL OR host = $2)"
	    " ORDER BY vm_name COLLATE \"C\", host COLLATE \"C\"",
	    a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimHostVm *v = g_new0(QsimHostVm, 1);

		v->host = qsim_pg_dup(res, i, 0);
		v->vm_name = qsim_pg_dup(res, i, 1);
		v->valid = qsim_pg_int(res, i, 2) != 0;
		v->error = qsim_pg_dup(res, i, 3);
		v->image = qsim_pg_dup(res, i, 4);
		v->format = qsim_pg_dup(res, i, 5);
		v->size_bytes = (guint64)MAX(qsim_pg_int(res, i, 6), 0);
		v->config = qsim_pg_dup(res, i, 7);
		v->config_hash = qsim_pg_dup(res, i, 8);
		v->image_id = qsim_pg_dup(res, i, 9);
		v->accel_mode = qsim_pg_dup(res, i, 10);
		v->accel_source = qsim_pg_dup(res, i, 11);
		v->warm_size = (guint)qsim_pg_int(res, i, 12);
		v->warm_parked = (guint)qsim_pg_int(res, i, 13);
		v->warm_starting = (guint)qsim_pg_int(res, i, 14);
		v->updated_at = qsim_pg_int(res, i, 15);
		g_ptr_array_add(out, v);
	}
	return g_steal_pointer(&out);
}
