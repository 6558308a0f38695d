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
	" start_mode, output_truncated, artifact_paths"

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

/* qsim-sqlite-artifacts.c: artifact metadata */
gboolean qsim_sqlite_add_artifacts(QsimStore *store, const gchar *uuid, GPtrArray *records,
                                   GError **error);
GPtrArray *qsim_sqlite_list_artifacts(QsimStore *store, const gchar *uuid, GError **error);
gboolean qsim_sqlite_import_artifacts(QsimStore *store, const gchar *uuid, GPtrArray *records,
                                      guint *out_inserted, GError **error);
gboolean qsim_sqlite_count_artifacts(QsimStore *store, guint64 *out_count, GError **error);

/* qsim-sqlite-uploads.c: inputs spooled until an agent puts them into the guest */
gboolean qsim_sqlite_link_uploads(QsimSqliteStore *self, const gchar *uuid, const gchar *upload_id,
                                  gint *out_rc, GError **error);
gboolean qsim_sqlite_upload_add_file(QsimStore *store, const gchar *upload_id, guint idx,
                                     QsimUploadKind kind, const gchar *guest_path, guint mode,
                                     GError **error);
gboolean qsim_sqlite_upload_put_chunk(QsimStore *store, const gchar *upload_id, guint idx,
                                      guint seq, GBytes *data, GError **error);
gboolean qsim_sqlite_upload_finish_file(QsimStore *store, const gchar *upload_id, guint idx,
                                        guint64 size, const gchar *sha256, GError **error);
gboolean qsim_sqlite_upload_discard(QsimStore *store, const gchar *upload_id, GError **error);
gboolean qsim_sqlite_delete_uploads(QsimStore *store, const gchar *uuid, GError **error);
GPtrArray *qsim_sqlite_list_uploads(QsimStore *store, const gchar *uuid, GError **error);
GBytes *qsim_sqlite_upload_read_chunk(QsimStore *store, const gchar *upload_id, guint idx,
                                      guint seq, GError **error);

/* qsim-sqlite-purge.c: retention: purge and space reclaim */
GPtrArray *qsim_sqlite_purge_requests(QsimStore *store, gint status, gint64 before_ms, guint limit,
                                      gboolean *out_more, GError **error);
gboolean qsim_sqlite_reclaim_space(QsimStore *store, guint max_pages, guint64 *out_free_pages,
                                   gboolean *out_incremental, GError **error);
gboolean qsim_sqlite_vacuum(QsimStore *store, GError **error);

/* qsim-sqlite-import.c: migrate-store's export and import */
GPtrArray *qsim_sqlite_export_requests(QsimStore *store, gint64 after_id, guint limit,
                                       gsize max_bytes, gint64 *out_last_id, GError **error);
gboolean qsim_sqlite_import_requests(QsimStore *store, GPtrArray *rows, guint *out_inserted,
                                     GError **error);
gboolean qsim_sqlite_import_logs(QsimStore *store, const gchar *uuid, GPtrArray *entries,
                                 guint *out_inserted, GError **error);
gboolean qsim_sqlite_count_rows(QsimStore *store, guint64 *out_requests, guint64 *out_logs,
                                GError **error);

G_END_DECLS
