#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"
#include "store/qsim-template-rules.h"

/* ---- accelerator verdicts ------------------------------------------------ */

gboolean
qsim_pg_put_accel_verdict(QsimStore *store, const QsimAccelVerdict *v, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, v->host);
	qsim_pg_args_text(a, v->cache_key);
	qsim_pg_args_int(a, v->kvm ? 1 : 0);
	qsim_pg_args_text(a, v->reason);
	qsim_pg_args_int(a, v->probe_ms);
	qsim_pg_args_int(a, v->probed_at);
	return qsim_pg_store_exec(
	    QSIM_PG_STORE(store),
	    "INSERT INTO accel_verdicts (host, cache_key, kvm, reason, probe_ms,"
	    " probed_at) VALUES ($1, $2, $3, $4, $5, $6)"
	    " ON CONFLICT (host) DO UPDATE SET cache_key = excluded.cache_key,"
	    " kvm = excluded.kvm, reason = excluded.reason,"
	    " probe_ms = excluded.probe_ms, probed_at = excluded.probed_at",
	    a, error);
}

GPtrArray *
qsim_pg_list_accel_verdicts(QsimStore *store, const gchar *host, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_text(a, host);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT host, cache_key, kvm, reason, probe_ms, probed_at"
	                          " FROM accel_verdicts WHERE ($1::text IS NULL OR host = $1)"
	                          " ORDER BY host COLLATE \"C\"",
	                          a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_accel_verdict_free);
	for (gint i = 0; i < PQntuples(res); i++)
		g_ptr_array_add(
		    out, qsim_accel_verdict_new(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		                                qsim_pg_int(res, i, 2) != 0, PQgetvalue(res, i, 3),
		                                qsim_pg_int(res, i, 4), qsim_pg_int(res, i, 5)));
	return g_steal_pointer(&out);
}

/* ---- templates ------------------------------------------------------------ */

#define TEMPLATE_COLUMNS                                                                           \
	"vm_name, host, state, dir, size_bytes, image_sha256, image_size, image_mtime_us,"         \
	" config_hash, qemu_version, machine, build_started_at, build_finished_at, build_ms,"      \
	" reason, prepare_requested_at, prepare_force, updated_at, builder"

static QsimTemplateRecord *
row_to_template(const PGresult *res, gint i, GError **error)
{
	g_autoptr(QsimTemplateRecord) r = g_new0(QsimTemplateRecord, 1);

	r->vm_name = qsim_pg_dup(res, i, 0);
	r->host = qsim_pg_dup(res, i, 1);
	if (!qsim_template_record_state_from_string(PQgetvalue(res, i, 2), &r->state)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "template %s on %s has an unknown state '%s'", r->vm_name, r->host,
		            PQgetvalue(res, i, 2));
		return NULL;
	}
	r->dir = qsim_pg_dup(res, i, 3);
	r->size_bytes = (guint64)MAX(qsim_pg_int(res, i, 4), 0);
	r->image_sha256 = qsim_pg_dup(res, i, 5);
	r->image_size = (guint64)MAX(qsim_pg_int(res, i, 6), 0);
	r->image_mtime_us = qsim_pg_int(res, i, 7);
	r->config_hash = qsim_pg_dup(res, i, 8);
	r->qemu_version = qsim_pg_dup(res, i, 9);
	r->machine = qsim_pg_dup(res, i, 10);
	r->build_started_at = qsim_pg_int(res, i, 11);
	r->build_finished_at = qsim_pg_int(res, i, 12);
	r->build_ms = qsim_pg_int(res, i, 13);
	r->reason = qsim_pg_dup(res, i, 14);
	r->prepare_requested_at = qsim_pg_int(res, i, 15);
	r->prepare_force = qsim_pg_int(res, i, 16) != 0;
	r->updated_at = qsim_pg_int(res, i, 17);
	r->builder = qsim_pg_dup(res, i, 18);
	return g_steal_pointer(&r);
}

static QsimTemplateRecord *
load_template(QsimPgStore *self, const gchar *vm_name, const gchar *host, gboolean for_update,
              GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;

	qsim_pg_args_text(a, vm_name);
	qsim_pg_args_text(a, host);
	res = qsim_pg_store_query(self,
	                          for_update ? "SELECT " TEMPLATE_COLUMNS " FROM templates"
	                                       " WHERE vm_name = $1 AND host = $2 FOR UPDATE"
	                                     : "SELECT " TEMPLATE_COLUMNS " FROM templates"
	                                       " WHERE vm_name = $1 AND host = $2",
	                          a, error);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no template of %s on %s",
		            vm_name, host);
		return NULL;
	}
	return row_to_template(res, 0, error);
}

/* Writes every column but the prepare request */
static gboolean
write_template(QsimPgStore *self, const QsimTemplateRecord *r, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, r->vm_name);
	qsim_pg_args_text(a, r->host);
	qsim_pg_args_text(a, qsim_template_record_state_to_string(r->state));
	qsim_pg_args_text(a, r->dir);
	qsim_pg_args_time(a, (gint64)r->size_bytes);
	qsim_pg_args_text(a, r->image_sha256);
	qsim_pg_args_time(a, (gint64)r->image_size);
	qsim_pg_args_time(a, r->image_mtime_us);
	qsim_pg_args_text(a, r->config_hash);
	qsim_pg_args_text(a, r->qemu_version);
	qsim_pg_args_text(a, r->machine);
	qsim_pg_args_time(a, r->build_started_at);
	qsim_pg_args_time(a, r->build_finished_at);
	qsim_pg_args_time(a, r->build_ms);
	qsim_pg_args_text(a, r->reason);
	qsim_pg_args_int(a, r->updated_at);
	/* only a running build has a builder */
	qsim_pg_args_text(a, r->state == QSIM_TEMPLATE_RECORD_BUILDING ? r->builder : NULL);
	return qsim_pg_store_exec(
	    self,
	    "INSERT INTO templates (" TEMPLATE_COLUMNS ")"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, 0,"
	    " $16, $17)"
	    " ON CONFLICT (vm_name, host) DO UPDATE SET state = excluded.state,"
	    " dir = excluded.dir, size_bytes = excluded.size_bytes,"
	    " image_sha256 = excluded.image_sha256, image_size = excluded.image_size,"
	    " image_mtime_us = excluded.image_mtime_us, config_hash = excluded.config_hash,"
	    " qemu_version = excluded.qemu_version, machine = excluded.machine,"
	    " build_started_at = excluded.build_started_at,"
	    " build_finished_at = excluded.build_finished_at, build_ms = excluded.build_ms,"
	    " reason = excluded.reason, updated_at = excluded.updated_at,"
	    " builder = excluded.builder",
	    a, error);
}

gboolean
qsim_pg_upsert_template(QsimStore *store, const QsimTemplateRecord *record, GError **error)
{
	return write_template(QSIM_PG_STORE(store), record, error);
}

QsimTemplateRecord *
qsim_pg_get_template(QsimStore *store, const gchar *vm_name, const gchar *host, GError **error)
{
	return load_template(QSIM_PG_STORE(store), vm_name, host, FALSE, error);
}

GPtrArray *
qsim_pg_list_templates(QsimStore *store, const gchar *host, gboolean only_requested, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_text(a, host);
	res = qsim_pg_store_query(
	    QSIM_PG_STORE(store),
	    only_requested
	        ? "SELECT " TEMPLATE_COLUMNS " FROM templates"
	          " WHERE prepare_requested_at IS NOT NULL"
	          " AND ($1::text IS NULL OR host = $1)"
	          " ORDER BY prepare_requested_at, vm_name COLLATE \"C\", host COLLATE \"C\""
	        : "SELECT " TEMPLATE_COLUMNS " FROM templates"
	          " WHERE ($1::text IS NULL OR host = $1)"
	          " ORDER BY vm_name COLLATE \"C\", host COLLATE \"C\"",
	    a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_template_record_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		QsimTemplateRecord *r = row_to_template(res, i, error);

		if (r == NULL)
			return NULL;
		g_ptr_array_add(out, r);
	}
	return g_steal_pointer(&out);
}

QsimTemplateRecord *
qsim_pg_request_prepare(QsimStore *store, const gchar *vm_name, const gchar *host, gboolean force,
                        GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(QsimTemplateRecord) r = NULL;

	if (tx == NULL)
		return NULL;
	qsim_pg_args_text(a, vm_name);
	qsim_pg_args_text(a, host);
	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	qsim_pg_args_int(a, force ? 1 : 0);
	/* an earlier request keeps its time; force only turns on until the claim takes it */
	if (!qsim_pg_store_exec(
	        self,
	        "INSERT INTO templates (vm_name, host, state, prepare_requested_at,"
	        " prepare_force, updated_at) VALUES ($1, $2, 'none', $3, $4, $3)"
	        " ON CONFLICT (vm_name, host) DO UPDATE SET"
	        " prepare_requested_at = COALESCE(templates.prepare_requested_at, $3),"
	        " prepare_force = CASE WHEN $4 = 1 THEN 1 ELSE templates.prepare_force END,"
	        " updated_at = $3",
	        a, error))
		return NULL;
	r = load_template(self, vm_name, host, FALSE, error);
	if (r == NULL || !qsim_pg_tx_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

gboolean
qsim_pg_claim_prepare(QsimStore *store, const gchar *vm_name, const gchar *host,
                      const gchar *builder, gboolean *out_claimed, gboolean *out_force,
                      GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgTx) tx = qsim_pg_tx_begin(self, error);
	g_autoptr(QsimTemplateRecord) r = NULL;
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(QsimPgArgs) b = qsim_pg_args_new();
	gint64 now = qsim_pg_now_ms(self);

	if (tx == NULL)
		return FALSE;
	/* a row to lock first (none yet: create it), then the check and the claim
	 * under that row lock: one process in the whole database wins */
	qsim_pg_args_text(a, vm_name);
	qsim_pg_args_text(a, host);
	qsim_pg_args_int(a, now);
	if (!qsim_pg_store_exec(self,
	                        "INSERT INTO templates (vm_name, host, state, updated_at)"
	                        " VALUES ($1, $2, 'none', $3) ON CONFLICT DO NOTHING",
	                        a, error))
		return FALSE;
	r = load_template(self, vm_name, host, TRUE, error);
	if (r == NULL)
		return FALSE;
	if (!qsim_template_record_apply_build_claim(r, builder, now, out_force)) {
		*out_claimed = FALSE; /* another build runs; the guard rolls back */
		return TRUE;
	}
	qsim_pg_args_text(b, vm_name);
	qsim_pg_args_text(b, host);
	if (!write_template(self, r, error) ||
	    !qsim_pg_store_exec(
	        self,
	        "UPDATE templates SET prepare_requested_at = NULL, prepare_force = 0"
	        " WHERE vm_name = $1 AND host = $2",
	        b, error) ||
	    !qsim_pg_tx_commit(tx, error))
		return FALSE;
	*out_claimed = TRUE;
	return TRUE;
}
