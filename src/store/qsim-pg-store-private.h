#pragma once

/*
 * Private to src/store/: the insides of QsimPgStore shared by the qsim-pg-*.c
 * files that implement its QsimStore vfuncs.
 */

#include <glib.h>
#include <libpq-fe.h>

#include "store/qsim-pg-store.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PGresult, PQclear)

struct _QsimPgStore {
	QsimStore parent_instance;
	gchar *url;
	gchar *password; /* from DATABASE_PASSWORD_FILE, or NULL */
	guint schema_version;

	/* the query connection; NULL while down */
	PGconn *conn;
	guint generation;   /* bumped per (re)connect: a transaction never outlives its conn */
	gint backend_pid;   /* of conn: its own NOTIFYs are not changes "elsewhere" */
	gint64 retry_at_us; /* monotonic; calls before it fail fast while down */
	guint backoff_ms;
	gchar *last_error;
	gchar last_sqlstate[6]; /* of the last failed query, "" if none */

	/* LISTEN qsim_changes, watched from the default main context */
	GMutex listen_lock;
	PGconn *listen_conn;
	guint listen_source;
	gint64 listen_retry_at_us;
	guint listen_backoff_ms;
	guint64 data_version;
};

#define REQUEST_COLUMNS                                                                            \
	"uuid, vm_name, commands, timeout, status, held_from, created_at, updated_at,"             \
	" started_at, finished_at, exit_code, error, agent_id, lease_expires_at, attempts,"        \
	" start_mode, output_truncated"

/* advisory lock keys (pg_advisory_xact_lock): arbitrary, fixed, qsim's own */
#define QSIM_PG_LOCK_MIGRATE 0x7173696d0001 /* "qsim" 1 */
#define QSIM_PG_LOCK_SLOTS 0x7173696d0002   /* the caps: count and insert of vm_slots */

/* Parameters of one query, all text but bytea values (binary) */
typedef struct {
	GPtrArray *values; /* gchar * or NULL (SQL NULL) */
	GArray *lengths;   /* gint */
	GArray *formats;   /* gint: 0 text, 1 binary */
} QsimPgArgs;

QsimPgArgs *qsim_pg_args_new(void);
void qsim_pg_args_free(QsimPgArgs *args);
void qsim_pg_args_text(QsimPgArgs *args, const gchar *text);
void qsim_pg_args_int(QsimPgArgs *args, gint64 value);
/* 0 binds SQL NULL (times, optional sizes) */
void qsim_pg_args_time(QsimPgArgs *args, gint64 value);
void qsim_pg_args_bytes(QsimPgArgs *args, gconstpointer data, gsize len);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimPgArgs, qsim_pg_args_free)

/* A transaction that rolls back unless committed, on the connection it began on */
typedef struct {
	QsimPgStore *store;
	guint generation;
	gboolean done;
} QsimPgTx;

QsimPgTx *qsim_pg_tx_begin(QsimPgStore *self, GError **error);
gboolean qsim_pg_tx_commit(QsimPgTx *tx, GError **error);
void qsim_pg_tx_free(QsimPgTx *tx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimPgTx, qsim_pg_tx_free)

/**
 * qsim_pg_store_query:
 * @args: (nullable): $1.. parameters
 *
 * Runs one statement on the query connection, connecting first when needed
 * (fails fast with BUSY while the server is unreachable and the backoff runs).
 * Errors: BUSY for a lost connection, a lock or statement timeout, a
 * serialization failure or deadlock (all worth a retry); STORE otherwise.
 *
 * Returns: (transfer full): the result (COMMAND_OK or TUPLES_OK), or NULL
 */
PGresult *qsim_pg_store_query(QsimPgStore *self, const gchar *sql, QsimPgArgs *args,
                              GError **error);
/* qsim_pg_store_query() for a statement whose result is not needed */
gboolean qsim_pg_store_exec(QsimPgStore *self, const gchar *sql, QsimPgArgs *args, GError **error);
/* TRUE when the last failed query broke a constraint (SQLSTATE class 23) */
gboolean qsim_pg_store_last_was_constraint(QsimPgStore *self);

/* Row access: NULL/0 for SQL NULL */
gchar *qsim_pg_dup(const PGresult *res, gint row, gint col);
gint64 qsim_pg_int(const PGresult *res, gint row, gint col);
gboolean qsim_pg_is_null(const PGresult *res, gint row, gint col);

QsimRequest *qsim_pg_row_to_request(const PGresult *res, gint row, GError **error);
GPtrArray *qsim_pg_collect_requests(const PGresult *res, GError **error);
/* Loads @uuid; with @for_update, locks the row until the transaction ends */
QsimRequest *qsim_pg_load_request(QsimPgStore *self, const gchar *uuid, gboolean for_update,
                                  GError **error);
gboolean qsim_pg_update_request(QsimPgStore *self, const QsimRequest *r, GError **error);
gint64 qsim_pg_now_ms(QsimPgStore *self);

/* qsim-pg-schema.c */
gboolean qsim_pg_schema_migrate(QsimPgStore *self, guint *out_version, GError **error);

/* qsim-pg-requests.c */
gboolean qsim_pg_insert_request(QsimStore *store, const QsimRequest *r, GError **error);
gboolean qsim_pg_insert_requests(QsimStore *store, GPtrArray *requests, GError **row_errors,
                                 GError **error);
QsimRequest *qsim_pg_get_request(QsimStore *store, const gchar *uuid_or_prefix,
                                 guint min_prefix_len, GError **error);
GPtrArray *qsim_pg_list_requests(QsimStore *store, const QsimRequestFilter *filter,
                                 gboolean *has_more, GError **error);
QsimRequest *qsim_pg_set_status(QsimStore *store, const gchar *uuid, QsimStatus to, GError **error);
gboolean qsim_pg_delete_request(QsimStore *store, const gchar *uuid, GError **error);
QsimRequest *qsim_pg_claim_next(QsimStore *store, const gchar *agent_id, gint64 lease_ms,
                                guint max_active_vms, guint max_host_vms, GError **error);
gboolean qsim_pg_mark_running(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                              GError **error);
gboolean qsim_pg_renew_lease(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                             gint64 lease_ms, QsimStatus *out_status, GError **error);
gboolean qsim_pg_finish_request(QsimStore *store, const gchar *uuid, const gchar *agent_id,
                                QsimStatus final, gboolean has_exit_code, gint exit_code,
                                const gchar *error_msg, QsimStatus *out_status, GError **error);
GPtrArray *qsim_pg_list_expired_leases(QsimStore *store, gint64 now, GError **error);
GPtrArray *qsim_pg_list_leases(QsimStore *store, const gchar *agent_id, GError **error);
gboolean qsim_pg_recover_request(QsimStore *store, const gchar *uuid,
                                 const gchar *expected_agent_id, gboolean retry,
                                 const gchar *reason, QsimStatus *out_status, GError **error);
gboolean qsim_pg_set_start_mode(QsimStore *store, const gchar *uuid, QsimStartMode mode,
                                GError **error);
gboolean qsim_pg_set_output_truncated(QsimStore *store, const gchar *uuid, GError **error);

/* qsim-pg-logs.c: logs, retention */
gint64 qsim_pg_append_logs(QsimStore *store, const gchar *uuid, GPtrArray *chunks, GError **error);
GPtrArray *qsim_pg_read_logs(QsimStore *store, const gchar *uuid, gint64 after_seq, guint limit,
                             gint log_type, gsize max_bytes, gboolean *out_cut, GError **error);
GPtrArray *qsim_pg_purge_requests(QsimStore *store, gint status, gint64 before_ms, guint limit,
                                  gboolean *out_more, GError **error);
gboolean qsim_pg_reclaim_space(QsimStore *store, guint max_pages, guint64 *out_free_pages,
                               gboolean *out_incremental, GError **error);
gboolean qsim_pg_vacuum(QsimStore *store, GError **error);

/* qsim-pg-stats.c */
QsimStats *qsim_pg_get_stats(QsimStore *store, GError **error);
QsimStoreMetrics *qsim_pg_get_metrics(QsimStore *store, GError **error);
gboolean qsim_pg_count_active_vms(QsimStore *store, guint *out_count, GError **error);

/* qsim-pg-templates.c */
gboolean qsim_pg_put_accel_verdict(QsimStore *store, const QsimAccelVerdict *v, GError **error);
GPtrArray *qsim_pg_list_accel_verdicts(QsimStore *store, const gchar *host, GError **error);
gboolean qsim_pg_upsert_template(QsimStore *store, const QsimTemplateRecord *record,
                                 GError **error);
QsimTemplateRecord *qsim_pg_get_template(QsimStore *store, const gchar *vm_name, const gchar *host,
                                         GError **error);
GPtrArray *qsim_pg_list_templates(QsimStore *store, const gchar *host, gboolean only_requested,
                                  GError **error);
QsimTemplateRecord *qsim_pg_request_prepare(QsimStore *store, const gchar *vm_name,
                                            const gchar *host, gboolean force, GError **error);
gboolean qsim_pg_claim_prepare(QsimStore *store, const gchar *vm_name, const gchar *host,
                               const gchar *builder, gboolean *out_claimed, gboolean *out_force,
                               GError **error);

/* qsim-pg-hosts.c: hosts, catalogues, VM slots */
gboolean qsim_pg_slots_count(QsimPgStore *self, gint64 now, const gchar *host, guint *out_total,
                             guint *out_host, GError **error);
gboolean qsim_pg_slots_insert_capped(QsimPgStore *self, gint64 now, const gchar *host,
                                     const gchar *owner, QsimVmSlotKind kind, const gchar *ref,
                                     guint max_total, guint max_host, gint64 *out_id,
                                     GError **error);
gboolean qsim_pg_slots_drop_request(QsimPgStore *self, const gchar *uuid, GError **error);
gboolean qsim_pg_publish_host(QsimStore *store, const QsimHostRecord *host, GPtrArray *vms,
                              GError **error);
GPtrArray *qsim_pg_list_hosts(QsimStore *store, GError **error);
GPtrArray *qsim_pg_list_host_vms(QsimStore *store, const gchar *vm_name, const gchar *host,
                                 GError **error);
gboolean qsim_pg_claim_slot(QsimStore *store, const gchar *host, const gchar *owner,
                            QsimVmSlotKind kind, const gchar *ref, guint max_total, guint max_host,
                            gint64 *out_id, GError **error);
gboolean qsim_pg_release_slot(QsimStore *store, gint64 id, gint kind, gboolean *out_released,
                              GError **error);
gboolean qsim_pg_adopt_slot(QsimStore *store, gint64 warm_id, const gchar *uuid,
                            const gchar *agent_id, gboolean *out_adopted, GError **error);
gboolean qsim_pg_release_owner_slots(QsimStore *store, const gchar *owner_prefix, guint *out_n,
                                     GError **error);
gboolean qsim_pg_release_stale_host_slots(QsimStore *store, guint *out_n, GError **error);
GPtrArray *qsim_pg_list_slots(QsimStore *store, const gchar *host, GError **error);

/* qsim-pg-import.c: migrate-store's export and import */
GPtrArray *qsim_pg_export_requests(QsimStore *store, gint64 after_id, guint limit, gsize max_bytes,
                                   gint64 *out_last_id, GError **error);
gboolean qsim_pg_import_requests(QsimStore *store, GPtrArray *rows, guint *out_inserted,
                                 GError **error);
gboolean qsim_pg_import_logs(QsimStore *store, const gchar *uuid, GPtrArray *entries,
                             guint *out_inserted, GError **error);
gboolean qsim_pg_count_rows(QsimStore *store, guint64 *out_requests, guint64 *out_logs,
                            GError **error);

G_END_DECLS
