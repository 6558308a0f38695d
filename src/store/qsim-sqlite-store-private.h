#pragma once

/*
 * Private to src/store/: the insides of QsimSqliteStore shared by the
 * qsim-sqlite-*.c files that implement its QsimStore vfuncs.
 */

#include <glib.h>
#include <sqlite3.h>

#include "store/qsim-sqlite-store.h"
#include "store/qsim-sqlite-util.h"

G_BEGIN_DECLS

struct _QsimSqliteStore {
	QsimStore parent_instance;
	sqlite3 *db;
	gchar *path;
	guint schema_version;
	GHashTable *stmts; /* constant SQL text -> sqlite3_stmt*, finalized on dispose */
};

#define REQUEST_COLUMNS                                                                            \
	"uuid, vm_name, commands, timeout, status, held_from, created_at, updated_at,"             \
	" started_at, finished_at, exit_code, error, agent_id, lease_expires_at, attempts,"        \
	" start_mode, output_truncated"

#define SQL_SELECT_REQUEST "SELECT " REQUEST_COLUMNS " FROM requests WHERE uuid = ?1"

/* Reads the record at the current row of a query, or NULL with @error */
typedef gpointer (*QsimSqliteRowFunc)(sqlite3_stmt *stmt, GError **error);

/* qsim-sqlite-store.c: statements and rows */
QsimSqliteCachedStmt *qsim_sqlite_store_stmt_get(QsimSqliteStore *self, const gchar *sql,
                                                 GError **error);
gboolean qsim_sqlite_store_stmt_done(QsimSqliteStore *self, sqlite3_stmt *stmt,
                                     const gchar *context, GError **error);
void qsim_sqlite_bind_text_or_null(sqlite3_stmt *stmt, gint idx, const gchar *text);
void qsim_sqlite_bind_time_or_null(sqlite3_stmt *stmt, gint idx, gint64 ms);
gchar *qsim_sqlite_column_dup(sqlite3_stmt *stmt, gint col);
QsimRequest *qsim_sqlite_row_to_request(sqlite3_stmt *stmt, GError **error);
GPtrArray *qsim_sqlite_store_collect_rows(QsimSqliteStore *self, sqlite3_stmt *stmt,
                                          QsimSqliteRowFunc row_func, GDestroyNotify free_func,
                                          const gchar *context, GError **error);
GPtrArray *qsim_sqlite_store_collect_requests(QsimSqliteStore *self, sqlite3_stmt *stmt,
                                              GError **error);
GPtrArray *qsim_sqlite_store_collect_requests_capped(QsimSqliteStore *self, sqlite3_stmt *stmt,
                                                     gsize max_bytes, gboolean *out_cut,
                                                     GError **error);
QsimRequest *qsim_sqlite_store_load_request(QsimSqliteStore *self, const gchar *uuid,
                                            GError **error);
gboolean qsim_sqlite_check_owner(const QsimRequest *request, const gchar *agent_id, GError **error);
gboolean qsim_sqlite_store_update_request(QsimSqliteStore *self, const QsimRequest *r,
                                          GError **error);
gint64 qsim_sqlite_store_now_ms(QsimSqliteStore *self);

/* qsim-sqlite-requests.c: requests, claims and leases */
gboolean qsim_sqlite_insert_request(QsimStore *store, const QsimRequest *r, GError **error);
gboolean qsim_sqlite_insert_requests(QsimStore *store, GPtrArray *requests, GError **row_errors,
                                     GError **error);
QsimRequest *qsim_sqlite_get_request(QsimStore *store, const gchar *uuid_or_prefix,
                                     guint min_prefix_len, GError **error);
GPtrArray *qsim_sqlite_list_requests(QsimStore *store, const QsimRequestFilter *filter,
                                     gboolean *has_more, GError **error);
QsimRequest *qsim_sqlite_set_status(QsimStore *store, const gchar *uuid, QsimStatus to,
                                    GError **error);
gboolean qsim_sqlite_delete_request(QsimStore *store, const gchar *uuid, GError **error);
QsimRequest *qsim_sqlite_claim_next(QsimStore *store, const gchar *agent_id, gint64 lease_ms,
                                    guint max_active_vms, guint max_host_vms, GError **error);
gboolean qsim_sqlite_mark_running(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                                  GError **error);
gboolean qsim_sqlite_renew_lease(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                                 gint64 lease_ms, QsimStatus *out_status, GError **error);
gboolean qsim_sqlite_finish_request(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                                    QsimStatus final, gboolean has_exit_code, gint exit_code,
                                    const gchar *error_msg, QsimStatus *out_status, GError **error);
GPtrArray *qsim_sqlite_list_expired_leases(QsimStore *store, gint64 now, GError **error);
GPtrArray *qsim_sqlite_list_leases(QsimStore *store, const gchar *agent_id, GError **error);

/* qsim-sqlite-events.c: the request journal and the dashboard's samples */
GPtrArray *qsim_sqlite_list_finished_since(QsimStore *store, gint64 since_ms, guint limit,
                                           GError **error);
GPtrArray *qsim_sqlite_list_request_events(QsimStore *store, gint64 after_id, guint limit,
                                           GError **error);
gboolean qsim_sqlite_recover_request(QsimStore *store, const gchar *uuid,
                                     const gchar *expected_agent_id, gboolean retry,
                                     const gchar *reason, QsimStatus *out_status, GError **error);
gboolean qsim_sqlite_set_start_mode(QsimStore *store, const gchar *uuid, QsimStartMode mode,
                                    GError **error);
gboolean qsim_sqlite_set_output_truncated(QsimStore *store, const gchar *uuid, GError **error);

/* qsim-sqlite-logs.c: logs */
gint64 qsim_sqlite_append_logs(QsimStore *store, const gchar *uuid, GPtrArray *chunks,
                               GError **error);
GPtrArray *qsim_sqlite_read_logs(QsimStore *store, const gchar *uuid, gint64 after_seq, guint limit,
                                 gint log_type, gsize max_bytes, gboolean *out_cut, GError **error);

/* qsim-sqlite-stats.c: counts, stats and metrics */
QsimStats *qsim_sqlite_get_stats(QsimStore *store, GError **error);
QsimStoreMetrics *qsim_sqlite_get_metrics(QsimStore *store, GError **error);
gboolean qsim_sqlite_count_active_vms(QsimStore *store, guint *out_count, GError **error);

/* qsim-sqlite-templates.c: accelerator verdicts and templates */
gboolean qsim_sqlite_put_accel_verdict(QsimStore *store, const QsimAccelVerdict *v, GError **error);
GPtrArray *qsim_sqlite_list_accel_verdicts(QsimStore *store, const gchar *host, GError **error);
gboolean qsim_sqlite_upsert_template(QsimStore *store, const QsimTemplateRecord *record,
                                     GError **error);
QsimTemplateRecord *qsim_sqlite_get_template(QsimStore *store, const gchar *vm_name,
                                             const gchar *host, GError **error);
GPtrArray *qsim_sqlite_list_templates(QsimStore *store, const gchar *host, gboolean only_requested,
                                      GError **error);
QsimTemplateRecord *qsim_sqlite_request_prepare(QsimStore *store, const gchar *vm_name,
                                                const gchar *host, gboolean force, GError **error);
gboolean qsim_sqlite_claim_prepare(QsimStore *store, const gchar *vm_name, const gchar *host,
                                   const gchar *builder, gboolean *out_claimed, gboolean *out_force,
                                   GError **error);

/* qsim-sqlite-purge.c: retention: purge and space reclaim */
GPtrArray *qsim_sqlite_purge_requests(QsimStore *store, gint status, gint64 before_ms, guint limit,
                                      gboolean *out_more, GError **error);
gboolean qsim_sqlite_reclaim_space(QsimStore *store, guint max_pages, guint64 *out_free_pages,
                                   gboolean *out_incremental, GError **error);
gboolean qsim_sqlite_vacuum(QsimStore *store, GError **error);

G_END_DECLS
