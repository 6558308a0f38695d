#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-sqlite-store-private.h"
#include "store/qsim-template-rules.h"
#include "store/qsim-sqlite-transaction.h"

/* ---- accelerator verdicts ------------------------------------------------ */

gboolean
qsim_sqlite_put_accel_verdict(QsimStore *store, const QsimAccelVerdict *v, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimSqliteCachedStmt) stmt = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "INSERT INTO accel_verdicts (host, cache_key, kvm, reason, probe_ms,"
	    " probed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	    " ON CONFLICT (host) DO UPDATE SET cache_key = excluded.cache_key,"
	    " kvm = excluded.kvm, reason = excluded.reason,"
	    " probe_ms = excluded.probe_ms, probed_at = excluded.probed_at",
	    error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, v->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, v->cache_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 3, v->kvm ? 1 : 0);
	sqlite3_bind_text(stmt, 4, v->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, v->probe_ms);
	sqlite3_bind_int64(stmt, 6, v->probed_at);
	if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot write the accelerator verdict", error))
		return FALSE;
	g_clear_pointer(&stmt, qsim_sqlite_cached_stmt_release);
	return qsim_sqlite_transaction_commit(tx, error);
}

GPtrArray *
qsim_sqlite_list_accel_verdicts(QsimStore *store, const gchar *host, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "SELECT host, cache_key, kvm, reason, probe_ms, probed_at FROM accel_verdicts"
	    " WHERE (?1 IS NULL OR host = ?1) ORDER BY host",
	    error);
	g_autoptr(GPtrArray) out = NULL;
	gint rc;

	if (stmt == NULL)
		return NULL;
	if (host != NULL)
		sqlite3_bind_text(stmt, 1, host, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, 1);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_accel_verdict_free);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		g_autofree gchar *h = qsim_sqlite_column_dup(stmt, 0);
		g_autofree gchar *key = qsim_sqlite_column_dup(stmt, 1);
		g_autofree gchar *reason = qsim_sqlite_column_dup(stmt, 3);

		g_ptr_array_add(out,
		                qsim_accel_verdict_new(h, key, sqlite3_column_int(stmt, 2) != 0,
		                                       reason, sqlite3_column_int64(stmt, 4),
		                                       sqlite3_column_int64(stmt, 5)));
	}
	if (rc != SQLITE_DONE) {
		qsim_sqlite_set_error(self->db, rc, "cannot read the accelerator verdicts", error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

/* ---- templates ------------------------------------------------------------ */

#define TEMPLATE_COLUMNS                                                                           \
	"vm_name, host, state, dir, size_bytes, image_sha256, image_size, image_mtime_us,"         \
	" config_hash, qemu_version, machine, build_started_at, build_finished_at, build_ms,"      \
	" reason, prepare_requested_at, prepare_force, updated_at, builder"

#define SQL_SELECT_TEMPLATE                                                                        \
	"SELECT " TEMPLATE_COLUMNS " FROM templates WHERE vm_name = ?1 AND host = ?2"

/* Returns: (transfer full): the record at the current row of a TEMPLATE_COLUMNS query */
static QsimTemplateRecord *
row_to_template(sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(QsimTemplateRecord) r = g_new0(QsimTemplateRecord, 1);
	const gchar *state = (const gchar *)sqlite3_column_text(stmt, 2);

	r->vm_name = qsim_sqlite_column_dup(stmt, 0);
	r->host = qsim_sqlite_column_dup(stmt, 1);
	if (!qsim_template_record_state_from_string(state, &r->state)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
		            "template %s on %s has an unknown state '%s'", r->vm_name, r->host,
		            state != NULL ? state : "(null)");
		return NULL;
	}
	r->dir = qsim_sqlite_column_dup(stmt, 3);
	r->size_bytes = (guint64)MAX(sqlite3_column_int64(stmt, 4), 0);
	r->image_sha256 = qsim_sqlite_column_dup(stmt, 5);
	r->image_size = (guint64)MAX(sqlite3_column_int64(stmt, 6), 0);
	r->image_mtime_us = sqlite3_column_int64(stmt, 7);
	r->config_hash = qsim_sqlite_column_dup(stmt, 8);
	r->qemu_version = qsim_sqlite_column_dup(stmt, 9);
	r->machine = qsim_sqlite_column_dup(stmt, 10);
	r->build_started_at = sqlite3_column_int64(stmt, 11);
	r->build_finished_at = sqlite3_column_int64(stmt, 12);
	r->build_ms = sqlite3_column_int64(stmt, 13);
	r->reason = qsim_sqlite_column_dup(stmt, 14);
	r->prepare_requested_at = sqlite3_column_int64(stmt, 15);
	r->prepare_force = sqlite3_column_int64(stmt, 16) != 0;
	r->updated_at = sqlite3_column_int64(stmt, 17);
	r->builder = qsim_sqlite_column_dup(stmt, 18);
	return g_steal_pointer(&r);
}

/* Returns: (transfer full): the row, or NULL with NOT_FOUND or a database error */
static QsimTemplateRecord *
load_template(QsimSqliteStore *self, const gchar *vm_name, const gchar *host, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt =
	    qsim_sqlite_store_stmt_get(self, SQL_SELECT_TEMPLATE, error);
	gint rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, vm_name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, host, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		return row_to_template(stmt, error);
	if (rc == SQLITE_DONE) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no template of %s on %s",
		            vm_name, host);
		return NULL;
	}
	qsim_sqlite_set_error(self->db, rc, "cannot read template", error);
	return NULL;
}

/* Writes every column but the prepare request, inside the caller's transaction */
static gboolean
write_template(QsimSqliteStore *self, const QsimTemplateRecord *r, GError **error)
{
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
	    self,
	    "INSERT INTO templates (" TEMPLATE_COLUMNS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL, 0,"
	    " ?16, ?17)"
	    " ON CONFLICT (vm_name, host) DO UPDATE SET state = excluded.state,"
	    " dir = excluded.dir, size_bytes = excluded.size_bytes,"
	    " image_sha256 = excluded.image_sha256, image_size = excluded.image_size,"
	    " image_mtime_us = excluded.image_mtime_us, config_hash = excluded.config_hash,"
	    " qemu_version = excluded.qemu_version, machine = excluded.machine,"
	    " build_started_at = excluded.build_started_at,"
	    " build_finished_at = excluded.build_finished_at, build_ms = excluded.build_ms,"
	    " reason = excluded.reason, updated_at = excluded.updated_at,"
	    " builder = excluded.builder",
	    error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, r->vm_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, qsim_template_record_state_to_string(r->state), -1,
	                  SQLITE_STATIC);
	qsim_sqlite_bind_text_or_null(stmt, 4, r->dir);
	qsim_sqlite_bind_time_or_null(stmt, 5, (gint64)r->size_bytes);
	qsim_sqlite_bind_text_or_null(stmt, 6, r->image_sha256);
	qsim_sqlite_bind_time_or_null(stmt, 7, (gint64)r->image_size);
	qsim_sqlite_bind_time_or_null(stmt, 8, r->image_mtime_us);
	qsim_sqlite_bind_text_or_null(stmt, 9, r->config_hash);
	qsim_sqlite_bind_text_or_null(stmt, 10, r->qemu_version);
	qsim_sqlite_bind_text_or_null(stmt, 11, r->machine);
	qsim_sqlite_bind_time_or_null(stmt, 12, r->build_started_at);
	qsim_sqlite_bind_time_or_null(stmt, 13, r->build_finished_at);
	qsim_sqlite_bind_time_or_null(stmt, 14, r->build_ms);
	qsim_sqlite_bind_text_or_null(stmt, 15, r->reason);
	sqlite3_bind_int64(stmt, 16, r->updated_at);
	/* only a running build has a builder */
	qsim_sqlite_bind_text_or_null(
	    stmt, 17, r->state == QSIM_TEMPLATE_RECORD_BUILDING ? r->builder : NULL);
	return qsim_sqlite_store_stmt_done(self, stmt, "cannot write template", error);
}

gboolean
qsim_sqlite_upsert_template(QsimStore *store, const QsimTemplateRecord *record, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	if (!write_template(self, record, error))
		return FALSE;
	return qsim_sqlite_transaction_commit(tx, error);
}

QsimTemplateRecord *
qsim_sqlite_get_template(QsimStore *store, const gchar *vm_name, const gchar *host, GError **error)
{
	return load_template(QSIM_SQLITE_STORE(store), vm_name, host, error);
}

GPtrArray *
qsim_sqlite_list_templates(QsimStore *store, const gchar *host, gboolean only_requested,
                           GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	/* two fixed texts: the prepare poll uses the partial index */
	const gchar *sql = only_requested
	                       ? "SELECT " TEMPLATE_COLUMNS " FROM templates"
	                         " WHERE prepare_requested_at IS NOT NULL"
	                         " AND (?1 IS NULL OR host = ?1)"
	                         " ORDER BY prepare_requested_at, vm_name, host"
	                       : "SELECT " TEMPLATE_COLUMNS " FROM templates"
	                         " WHERE (?1 IS NULL OR host = ?1) ORDER BY vm_name, host";
	g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(self, sql, error);

	if (stmt == NULL)
		return NULL;
	qsim_sqlite_bind_text_or_null(stmt, 1, host);
	return qsim_sqlite_store_collect_rows(self, stmt, (QsimSqliteRowFunc)row_to_template,
	                                      (GDestroyNotify)qsim_template_record_free,
	                                      "cannot read templates", error);
}

QsimTemplateRecord *
qsim_sqlite_request_prepare(QsimStore *store, const gchar *vm_name, const gchar *host,
                            gboolean force, GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimTemplateRecord) r = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return NULL;
	{
		/* an earlier request keeps its time (the poll is oldest first); force
		 * only ever turns on until the claim takes it */
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "INSERT INTO templates (vm_name, host, state, prepare_requested_at,"
		    " prepare_force, updated_at) VALUES (?1, ?2, 'none', ?3, ?4, ?3)"
		    " ON CONFLICT (vm_name, host) DO UPDATE SET"
		    " prepare_requested_at = COALESCE(templates.prepare_requested_at, ?3),"
		    " prepare_force = CASE WHEN ?4 = 1 THEN 1 ELSE templates.prepare_force END,"
		    " updated_at = ?3",
		    error);

		if (stmt == NULL)
			return NULL;
		sqlite3_bind_text(stmt, 1, vm_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, host, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 3, now);
		sqlite3_bind_int(stmt, 4, force ? 1 : 0);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot request a template build",
		                                 error))
			return NULL;
	}
	r = load_template(self, vm_name, host, error);
	if (r == NULL || !qsim_sqlite_transaction_commit(tx, error))
		return NULL;
	return g_steal_pointer(&r);
}

gboolean
qsim_sqlite_claim_prepare(QsimStore *store, const gchar *vm_name, const gchar *host,
                          const gchar *builder, gboolean *out_claimed, gboolean *out_force,
                          GError **error)
{
	QsimSqliteStore *self = QSIM_SQLITE_STORE(store);
	g_autoptr(QsimSqliteTransaction) tx = NULL;
	g_autoptr(QsimTemplateRecord) r = NULL;
	g_autoptr(GError) local = NULL;
	gint64 now = qsim_sqlite_store_now_ms(self);

	/* the write lock first: the check and the claim must not race another process */
	tx = qsim_sqlite_transaction_begin(self->db, TRUE, error);
	if (tx == NULL)
		return FALSE;
	r = load_template(self, vm_name, host, &local);
	if (r == NULL) {
		if (!g_error_matches(local, QSIM_ERROR, QSIM_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		r = qsim_template_record_new(vm_name, host);
	}
	if (!qsim_template_record_apply_build_claim(r, builder, now, out_force)) {
		*out_claimed = FALSE; /* another build runs; the guard rolls back */
		return TRUE;
	}
	if (!write_template(self, r, error))
		return FALSE;
	{
		g_autoptr(QsimSqliteCachedStmt) stmt = qsim_sqlite_store_stmt_get(
		    self,
		    "UPDATE templates SET prepare_requested_at = NULL, prepare_force = 0"
		    " WHERE vm_name = ?1 AND host = ?2",
		    error);

		if (stmt == NULL)
			return FALSE;
		sqlite3_bind_text(stmt, 1, vm_name, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 2, host, -1, SQLITE_STATIC);
		if (!qsim_sqlite_store_stmt_done(self, stmt, "cannot take the prepare request",
		                                 error))
			return FALSE;
	}
	if (!qsim_sqlite_transaction_commit(tx, error))
		return FALSE;
	*out_claimed = TRUE;
	return TRUE;
}
