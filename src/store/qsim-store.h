#pragma once

#include <glib-object.h>

#include "store/qsim-artifact-record.h"
#include "store/qsim-artifact-store.h"
#include "store/qsim-upload-record.h"
#include "store/qsim-end-reason.h"
#include "store/qsim-finished-sample.h"
#include "store/qsim-log-entry.h"
#include "store/qsim-log-type.h"
#include "store/qsim-request-draft.h"
#include "store/qsim-request-event.h"
#include "store/qsim-request-filter.h"
#include "store/qsim-request.h"
#include "store/qsim-stats.h"
#include "store/qsim-store-metrics.h"
#include "store/qsim-status.h"
#include "common/qsim-accel-verdict.h"
#include "store/qsim-host-record.h"
#include "store/qsim-host-vm.h"
#include "store/qsim-template-record.h"
#include "store/qsim-vm-slot.h"

G_BEGIN_DECLS

/* How many claims a request gets: the first run plus one infrastructure retry */
#define QSIM_STORE_MAX_ATTEMPTS 2
/* A lease with less than this left is not renewed; its holder fences its VM then
 * (qsim_store_renew_lease()) */
#define QSIM_STORE_LEASE_MARGIN_MS 1000
/* qsim_store_get_request(): the CLI accepts 4 characters, the REST API 8 */
#define QSIM_STORE_MIN_PREFIX_CLI 4
#define QSIM_STORE_MIN_PREFIX_API 8
#define QSIM_STORE_LOGS_DEFAULT_LIMIT 1000
#define QSIM_STORE_LOGS_MAX_LIMIT 100000
#define QSIM_STORE_EVENTS_MAX_LIMIT 10000
#define QSIM_STORE_FINISHED_MAX_LIMIT 10000
/* A template build not finished after this is taken as abandoned (its process died):
 * another claim may then build. Far above a real build (seconds to a few minutes). */
#define QSIM_STORE_TEMPLATE_BUILD_STALE_MS (30 * 60 * 1000)

/* Purges: requests per transaction by default (the retention timer), and per REST call */
#define QSIM_STORE_PURGE_BATCH 100
#define QSIM_STORE_PURGE_MAX_BATCH 1000
/* A batch also stops after this many log chunks per request it may delete, so one
 * request with a huge log never makes a long transaction: it is purged over several */
#define QSIM_STORE_PURGE_LOG_ROWS_PER_REQUEST 10

/* The clock of a store, unix ms; replaceable so tests can move time */
typedef gint64 (*QsimStoreClockFunc)(gpointer user_data);

#define QSIM_TYPE_STORE (qsim_store_get_type())
G_DECLARE_DERIVABLE_TYPE(QsimStore, qsim_store, QSIM, STORE, GObject)

/**
 * QsimStoreClass:
 *
 * The backend interface. QsimStore itself validates arguments, emits the
 * signals after a successful commit and owns the clock; a backend (SQLite
 * today, PostgreSQL later) only implements these, each atomically. Every
 * status change in a backend goes through qsim_status_check_transition().
 * Arguments reach a backend already validated (full UUIDs, known enums).
 */
struct _QsimStoreClass {
	GObjectClass parent_class;

	guint (*get_schema_version)(QsimStore *self);
	gboolean (*ping)(QsimStore *self, GError **error);
	gboolean (*insert_request)(QsimStore *self, const QsimRequest *request, GError **error);
	QsimRequest *(*get_request)(QsimStore *self, const gchar *uuid_or_prefix,
	                            guint min_prefix_len, GError **error);
	GPtrArray *(*list_requests)(QsimStore *self, const QsimRequestFilter *filter,
	                            gboolean *has_more, GError **error);
	QsimRequest *(*set_status)(QsimStore *self, const gchar *uuid, QsimStatus to,
	                           GError **error);
	gboolean (*delete_request)(QsimStore *self, const gchar *uuid, GError **error);
	QsimRequest *(*claim_next)(QsimStore *self, const gchar *agent_id, gint64 lease_ms,
	                           guint max_active_vms, guint max_host_vms, GError **error);
	gboolean (*mark_running)(QsimStore *self, const gchar *uuid, const gchar *agent_id,
	                         GError **error);
	gboolean (*renew_lease)(QsimStore *self, const gchar *uuid, const gchar *agent_id,
	                        gint64 lease_ms, QsimStatus *out_status, GError **error);
	gboolean (*finish_request)(QsimStore *self, const gchar *uuid, const gchar *agent_id,
	                           QsimStatus final, gboolean has_exit_code, gint exit_code,
	                           const gchar *error_msg, QsimStatus *out_status, GError **error);
	GPtrArray *(*list_expired_leases)(QsimStore *self, gint64 now_ms, GError **error);
	gboolean (*recover_request)(QsimStore *self, const gchar *uuid,
	                            const gchar *expected_agent_id, gboolean retry,
	                            const gchar *reason, QsimStatus *out_status, GError **error);
	gint64 (*append_logs)(QsimStore *self, const gchar *uuid, GPtrArray *chunks,
	                      GError **error);
	GPtrArray *(*read_logs)(QsimStore *self, const gchar *uuid, gint64 after_seq, guint limit,
	                        gint log_type, gsize max_bytes, gboolean *out_cut, GError **error);
	QsimStats *(*get_stats)(QsimStore *self, GError **error);
	gboolean (*count_active_vms)(QsimStore *self, guint *out_count, GError **error);

	gboolean (*get_data_version)(QsimStore *self, guint64 *out_version, GError **error);
	GPtrArray *(*list_leases)(QsimStore *self, const gchar *agent_id, GError **error);
	/* @requests (element-type QsimRequest) are complete, validated pending rows,
	 * inserted in ONE transaction. A row the database refuses without ending
	 * the transaction (a constraint) gets its error in @row_errors[i] (an array
	 * of @requests->len slots) and the others still commit. FALSE with @error
	 * when the transaction as a whole failed: then nothing was inserted.
	 * Optional: without it the base inserts row by row with insert_request. */
	gboolean (*insert_requests)(QsimStore *self, GPtrArray *requests, GError **row_errors,
	                            GError **error);

	/* fast start: schema v2 */
	gboolean (*set_start_mode)(QsimStore *self, const gchar *uuid, QsimStartMode mode,
	                           GError **error);
	gboolean (*upsert_template)(QsimStore *self, const QsimTemplateRecord *record,
	                            GError **error);
	QsimTemplateRecord *(*get_template)(QsimStore *self, const gchar *vm_name,
	                                    const gchar *host, GError **error);
	GPtrArray *(*list_templates)(QsimStore *self, const gchar *host, gboolean only_requested,
	                             GError **error);
	QsimTemplateRecord *(*request_prepare)(QsimStore *self, const gchar *vm_name,
	                                       const gchar *host, gboolean force, GError **error);
	gboolean (*claim_prepare)(QsimStore *self, const gchar *vm_name, const gchar *host,
	                          const gchar *builder, gboolean *out_claimed, gboolean *out_force,
	                          GError **error);

	/* accelerator verdicts: schema v3 */
	gboolean (*put_accel_verdict)(QsimStore *self, const QsimAccelVerdict *verdict,
	                              GError **error);
	GPtrArray *(*list_accel_verdicts)(QsimStore *self, const gchar *host, GError **error);

	/* retention and space: see qsim_store_purge_requests() and below. @status is a
	 * final QsimStatus or -1 for all three; returns the deleted UUIDs (gchar *) */
	GPtrArray *(*purge_requests)(QsimStore *self, gint status, gint64 before_ms, guint limit,
	                             gboolean *out_more, GError **error);
	gboolean (*reclaim_space)(QsimStore *self, guint max_pages, guint64 *out_free_pages,
	                          gboolean *out_incremental, GError **error);
	gboolean (*vacuum)(QsimStore *self, GError **error);

	/* output cap: schema v4 */
	gboolean (*set_output_truncated)(QsimStore *self, const gchar *uuid, GError **error);

	/* metrics: schema v6 */
	QsimStoreMetrics *(*get_metrics)(QsimStore *self, GError **error);
	/* hosts, catalogues and VM slots: schema v7, see store/qsim-store-hosts.h */
	gboolean (*publish_host)(QsimStore *self, const QsimHostRecord *host, GPtrArray *vms,
	                         GError **error);
	GPtrArray *(*list_hosts)(QsimStore *self, GError **error);
	GPtrArray *(*list_host_vms)(QsimStore *self, const gchar *vm_name, const gchar *host,
	                            GError **error);
	gboolean (*claim_slot)(QsimStore *self, const gchar *host, const gchar *owner,
	                       QsimVmSlotKind kind, const gchar *ref, guint max_total,
	                       guint max_host, gint64 *out_id, GError **error);
	gboolean (*release_slot)(QsimStore *self, gint64 id, gint kind, gboolean *out_released,
	                         GError **error);
	gboolean (*adopt_slot)(QsimStore *self, gint64 warm_id, const gchar *uuid,
	                       const gchar *agent_id, gboolean *out_adopted, GError **error);
	gboolean (*release_owner_slots)(QsimStore *self, const gchar *owner_prefix, guint *out_n,
	                                GError **error);
	gboolean (*release_stale_host_slots)(QsimStore *self, guint *out_n, GError **error);
	GPtrArray *(*list_slots)(QsimStore *self, const gchar *host, GError **error);

	/* `qsimd migrate-store`: rows copied as they are, see store/qsim-store-import.h */
	GPtrArray *(*export_requests)(QsimStore *self, gint64 after_id, guint limit,
	                              gsize max_bytes, gint64 *out_last_id, GError **error);
	gboolean (*import_requests)(QsimStore *self, GPtrArray *rows, guint *out_inserted,
	                            GError **error);
	gboolean (*import_logs)(QsimStore *self, const gchar *uuid, GPtrArray *entries,
	                        guint *out_inserted, GError **error);
	gboolean (*count_rows)(QsimStore *self, guint64 *out_requests, guint64 *out_logs,
	                       GError **error);
	/* artifacts: schema v8, see qsim_store_add_artifacts() */
	gboolean (*add_artifacts)(QsimStore *self, const gchar *uuid, GPtrArray *records,
	                          GError **error);
	GPtrArray *(*list_artifacts)(QsimStore *self, const gchar *uuid, GError **error);
	/* `qsimd migrate-store`: see store/qsim-store-import.h */
	gboolean (*import_artifacts)(QsimStore *self, const gchar *uuid, GPtrArray *records,
	                             guint *out_inserted, GError **error);
	gboolean (*count_artifacts)(QsimStore *self, guint64 *out_count, GError **error);
	/* uploads: schema v8, see qsim_store_upload_add_file() */
	gboolean (*upload_add_file)(QsimStore *self, const gchar *upload_id, guint idx,
	                            QsimUploadKind kind, const gchar *guest_path, guint mode,
	                            GError **error);
	gboolean (*upload_put_chunk)(QsimStore *self, const gchar *upload_id, guint idx, guint seq,
	                             GBytes *data, GError **error);
	gboolean (*upload_finish_file)(QsimStore *self, const gchar *upload_id, guint idx,
	                               guint64 size, const gchar *sha256, GError **error);
	gboolean (*upload_discard)(QsimStore *self, const gchar *upload_id, GError **error);
	gboolean (*delete_uploads)(QsimStore *self, const gchar *uuid, GError **error);
	GPtrArray *(*list_uploads)(QsimStore *self, const gchar *uuid, GError **error);
	GBytes *(*upload_read_chunk)(QsimStore *self, const gchar *upload_id, guint idx, guint seq,
	                             GError **error);
	/* the request journal: schema v8. @after_id < 0 asks for the newest event
	 * only (a new client's starting point). Optional: NULL answers STORE */
	GPtrArray *(*list_request_events)(QsimStore *self, gint64 after_id, guint limit,
	                                  GError **error);

	/* the dashboard's charts: requests finished since @since_ms, newest first */
	GPtrArray *(*list_finished_since)(QsimStore *self, gint64 since_ms, guint limit,
	                                  GError **error);

	gpointer padding[2];
};

/*
 * Threading: one QsimStore is one database connection. Use it from one thread
 * at a time (it may move between threads, e.g. into a GTask worker, but never
 * two at once); give each thread or agent process its own store. Signals are
 * emitted synchronously in the calling thread.
 *
 * Signals, emitted after a commit made through THIS object only (other
 * processes must poll):
 *   "request-changed" (const gchar *uuid, gint status): created, or its status
 *       or lease changed;
 *   "request-deleted" (const gchar *uuid);
 *   "logs-appended" (const gchar *uuid, gint64 last_seq);
 *   "template-changed" (const gchar *vm_name, const gchar *host): a template
 *       row was written (state, prepare request, claim).
 *
 * and, only while qsim_store_watch_changes() is on, from the main context:
 *   "changed-elsewhere": another connection (another process) committed
 *       something; what changed is for the listener to query.
 *
 * Errors are QSIM_ERROR: INVALID (bad argument), NOT_FOUND, AMBIGUOUS,
 * CONFLICT (the transition table said no; names the current status),
 * BUSY (database locked past the busy timeout), STORE (anything else).
 */

/* Returns: the schema version of the open database */
guint qsim_store_get_schema_version(QsimStore *self);

/* Returns: TRUE if the database answers a trivial read (for /health) */
gboolean qsim_store_ping(QsimStore *self, GError **error);

/* Replace the clock (tests); NULL restores the real-time clock */
void qsim_store_set_clock(QsimStore *self, QsimStoreClockFunc func, gpointer user_data);

/* Returns: now in unix ms, by the store's clock */
gint64 qsim_store_now_ms(QsimStore *self);

/**
 * qsim_store_create_request:
 * @vm_name: non-empty, at most 64 bytes (the caller checks it names a VM)
 * @commands: non-empty, at most 256 KiB
 * @timeout_s: > 0
 *
 * Inserts a pending request with a fresh v4 UUID.
 *
 * Returns: (transfer full): the new row, or NULL with @error set
 */
QsimRequest *qsim_store_create_request(QsimStore *self, const gchar *vm_name, const gchar *commands,
                                       gint64 timeout_s, GError **error);

/**
 * qsim_store_create_request_full:
 * @artifact_paths: (nullable) (array zero-terminated=1): guest paths or globs to
 *   collect after the commands (qsim_guest_path_validate_list())
 *
 * @upload_id: (nullable): spooled uploads (qsim_store_upload_add_file()) the
 *   request takes, linked in the same transaction
 *
 * As qsim_store_create_request(), with the paths stored in the same row.
 */
QsimRequest *qsim_store_create_request_full(QsimStore *self, const gchar *vm_name,
                                            const gchar *commands, gint64 timeout_s,
                                            gchar **artifact_paths, const gchar *upload_id,
                                            GError **error);

/**
 * qsim_store_create_requests:
 * @drafts: (element-type QsimRequestDraft): the requests to insert; their
 *   @request and @error fields are overwritten
 *
 * Group commit: validates every draft as qsim_store_create_request() does,
 * then inserts all the valid ones in ONE transaction (one fsync, one lock).
 * An invalid draft gets its own INVALID error and never fails the others,
 * nor does a row the database refuses by itself (a constraint). A
 * "request-changed" signal is emitted per created request after the commit.
 *
 * Returns: TRUE when the transaction committed (or nothing was valid): each
 * draft then holds its new row in @request or its reason in @error. FALSE
 * with @error when the transaction failed: nothing was inserted, and every
 * draft that passed validation holds a copy of @error.
 */
gboolean qsim_store_create_requests(QsimStore *self, GPtrArray *drafts, GError **error);

/**
 * qsim_store_get_request:
 * @uuid_or_prefix: a full UUID or a prefix of one (case-insensitive)
 * @min_prefix_len: shortest accepted prefix (QSIM_STORE_MIN_PREFIX_CLI/_API)
 *
 * Errors: INVALID when too short or not hex, NOT_FOUND, AMBIGUOUS listing up
 * to 10 candidates.
 *
 * Returns: (transfer full): the request, or NULL with @error set
 */
QsimRequest *qsim_store_get_request(QsimStore *self, const gchar *uuid_or_prefix,
                                    guint min_prefix_len, GError **error);

/**
 * qsim_store_list_requests:
 * @filter: (nullable): NULL = everything, default limit
 * @has_more: (out) (optional): TRUE when more rows match beyond the limit
 *
 * Newest first (by submission order). @filter->before_uuid must be a full
 * UUID of an existing request (else NOT_FOUND).
 *
 * Returns: (transfer container) (element-type QsimRequest): rows, or NULL
 * with @error set
 */
GPtrArray *qsim_store_list_requests(QsimStore *self, const QsimRequestFilter *filter,
                                    gboolean *has_more, GError **error);

/**
 * qsim_store_set_status:
 * @uuid: full UUID
 * @to: cancelled, hold, pending (from hold) or running (from hold)
 *
 * The user-driven change (REST PUT /status) through the transition table.
 * cancelled sets error "cancelled by user" and finished_at; an agent still
 * holding the VM sees it through qsim_store_renew_lease().
 *
 * Returns: (transfer full): the updated request, or NULL with CONFLICT naming
 * the current status, NOT_FOUND or INVALID
 */
QsimRequest *qsim_store_set_status(QsimStore *self, const gchar *uuid, QsimStatus to,
                                   GError **error);

/* Returns: (transfer full): qsim_store_set_status(self, uuid, QSIM_STATUS_CANCELLED) */
QsimRequest *qsim_store_cancel_request(QsimStore *self, const gchar *uuid, GError **error);

/* Deletes a final request and (cascade) its logs; CONFLICT when still active */
gboolean qsim_store_delete_request(QsimStore *self, const gchar *uuid, GError **error);

/**
 * qsim_store_claim_next:
 * @agent_id: non-empty, at most 128 bytes
 * @lease_ms: > 0
 * @max_active_vms: cap for the whole database; 0 = no cap
 *
 * In one IMMEDIATE transaction: if fewer than @max_active_vms requests hold a
 * live lease, moves the oldest pending request to acknowledged, sets agent_id,
 * the lease and attempts+1. Safe across processes sharing the file.
 *
 * Returns: (transfer full): the claimed request; NULL without error when there
 * is nothing to claim or the cap is reached; NULL with @error on failure
 */
QsimRequest *qsim_store_claim_next(QsimStore *self, const gchar *agent_id, gint64 lease_ms,
                                   guint max_active_vms, GError **error);

/**
 * qsim_store_claim_next_capped:
 * @max_active_vms: VM slots in the whole database (MAX_CONCURRENT_VMS); 0 = no cap
 * @max_host_vms: VM slots on the agent's host (MAX_VMS_PER_HOST); 0 = no cap
 *
 * qsim_store_claim_next() that counts every VM slot (requests' with a live
 * lease, warm VMs', builds') against both caps and, in the same transaction,
 * gives the claimed request its slot on the host named by @agent_id. The slot
 * goes with the lease (qsim_store_finish_request(), qsim_store_recover_request()).
 */
QsimRequest *qsim_store_claim_next_capped(QsimStore *self, const gchar *agent_id, gint64 lease_ms,
                                          guint max_active_vms, guint max_host_vms, GError **error);

/* acknowledged -> running, sets started_at; CONFLICT if cancelled meanwhile or not ours */
gboolean qsim_store_mark_running(QsimStore *self, const gchar *uuid, const gchar *agent_id,
                                 GError **error);

/**
 * qsim_store_renew_lease:
 * @out_status: (out) (optional): the current status, so the agent sees
 *   cancel (cancelled) and hold/resume
 *
 * Extends the lease to now + @lease_ms while the request is active. On a
 * final request (e.g. cancelled by the user) the lease is left alone and TRUE
 * is returned with the status. CONFLICT when another agent owns it or no
 * lease is held (recovered meanwhile).
 */
gboolean qsim_store_renew_lease(QsimStore *self, const gchar *uuid, const gchar *agent_id,
                                gint64 lease_ms, QsimStatus *out_status, GError **error);

/**
 * qsim_store_finish_request:
 * @final: done, failed or cancelled
 * @error_msg: (nullable): the reason ("exit code 3", "timed out after 300 s")
 * @out_status: (out) (optional): the status stored: stays cancelled when the
 *   user cancelled meanwhile (the exit code is still recorded)
 *
 * Ends the agent's run: sets finished_at (unless already set), exit code,
 * error and drops the lease (frees the VM slot). CONFLICT when @agent_id does
 * not own the request or the table forbids it.
 */
gboolean qsim_store_finish_request(QsimStore *self, const gchar *uuid, const gchar *agent_id,
                                   QsimStatus final, gboolean has_exit_code, gint exit_code,
                                   const gchar *error_msg, QsimStatus *out_status, GError **error);

/**
 * qsim_store_list_expired_leases:
 * @now_ms: the time to compare with (usually qsim_store_now_ms())
 *
 * Returns: (transfer container) (element-type QsimRequest): requests whose
 * lease ended at or before @now_ms (any status), oldest lease first; NULL
 * with @error on failure
 */
GPtrArray *qsim_store_list_expired_leases(QsimStore *self, gint64 now_ms, GError **error);

/**
 * qsim_store_recover_request:
 * @expected_agent_id: (nullable): only act if the request still belongs to it
 * @retry: TRUE if the run failed in the infrastructure before the commands
 *   started; honoured only from acknowledged with attempts below
 *   QSIM_STORE_MAX_ATTEMPTS, then it goes back to pending
 * @reason: the error stored when the request fails, e.g. "agent lost"
 * @out_status: (out) (optional): the resulting status
 *
 * Recovers a request whose agent is gone: pending (retry) or failed with
 * @reason; a request already final only loses its lease. Clears the lease.
 * CONFLICT when @expected_agent_id no longer owns it.
 */
gboolean qsim_store_recover_request(QsimStore *self, const gchar *uuid,
                                    const gchar *expected_agent_id, gboolean retry,
                                    const gchar *reason, QsimStatus *out_status, GError **error);

/**
 * qsim_store_append_logs:
 * @chunks: (element-type QsimLogEntry): at least one; seq ignored; a
 *   timestamp_ms of 0 means now
 *
 * Appends all chunks in ONE transaction, numbering them after the request's
 * last seq.
 *
 * Returns: the last seq assigned (>= 1), or -1 with @error set
 */
gint64 qsim_store_append_logs(QsimStore *self, const gchar *uuid, GPtrArray *chunks,
                              GError **error);

/**
 * qsim_store_read_logs:
 * @after_seq: only chunks with seq > this (0 = from the start)
 * @limit: 1..QSIM_STORE_LOGS_MAX_LIMIT; 0 = QSIM_STORE_LOGS_DEFAULT_LIMIT
 * @log_type: a QsimLogType or -1 for all
 *
 * Returns: (transfer container) (element-type QsimLogEntry): chunks in seq
 * order; NULL with NOT_FOUND when the request does not exist
 */
GPtrArray *qsim_store_read_logs(QsimStore *self, const gchar *uuid, gint64 after_seq, guint limit,
                                gint log_type, GError **error);

/**
 * qsim_store_read_logs_page:
 * @max_bytes: 0 = no cap; else stop before the chunk whose output would take
 *   the page past this many bytes (a page holds at least one chunk)
 * @out_cut: (out) (optional): TRUE when the page stopped at @max_bytes with
 *   chunks left within @limit: continue with after_seq = the last seq returned
 *
 * qsim_store_read_logs() with a byte budget, so one page never loads more than
 * about @max_bytes of output into memory.
 */
GPtrArray *qsim_store_read_logs_page(QsimStore *self, const gchar *uuid, gint64 after_seq,
                                     guint limit, gint log_type, gsize max_bytes, gboolean *out_cut,
                                     GError **error);

/* Returns: (transfer full): counts, active VMs, latencies; NULL with @error */
QsimStats *qsim_store_get_stats(QsimStore *self, GError **error);

/* Requests holding a live lease, i.e. VM slots in use across all processes */
gboolean qsim_store_count_active_vms(QsimStore *self, guint *out_count, GError **error);

/**
 * qsim_store_get_metrics:
 *
 * The shared state /metrics exports: counts by status, the monotonic totals
 * (submitted, finished by status and end reason, starts, template builds,
 * output bytes), live leases, templates by state and the database's size. One
 * read snapshot whose cost does not grow with the number of requests.
 *
 * Returns: (transfer full): the metrics, or NULL with @error
 */
QsimStoreMetrics *qsim_store_get_metrics(QsimStore *self, GError **error);

/**
 * qsim_store_list_leases:
 * @agent_id: (nullable): only this agent's; NULL = every agent's
 *
 * Every request holding a lease, live or expired, in claim order: what an
 * agent process still owns at shutdown, or owned before a restart.
 *
 * Returns: (transfer container) (element-type QsimRequest): the requests, or
 * NULL with @error set
 */
GPtrArray *qsim_store_list_leases(QsimStore *self, const gchar *agent_id, GError **error);

/**
 * qsim_store_get_data_version:
 * @out_version: (out): a number that changes whenever ANOTHER connection (another
 *   store object or process) has committed to the database since the last call
 *
 * A cheap poll for processes that do not get the signals (e.g. `qsimd api`
 * serving SSE while `qsimd agents` writes logs): compare with the previous
 * value and only query when it moved. Commits through this same object do
 * not change it; they emit signals instead.
 */
gboolean qsim_store_get_data_version(QsimStore *self, guint64 *out_version, GError **error);

/**
 * qsim_store_watch_changes:
 * @interval_ms: how often to look; > 0
 *
 * Emits "changed-elsewhere" from the default main context within about
 * @interval_ms of another connection's commit, so a process learns of another
 * process's submit without its own slower poll. The base class compares
 * get_data_version() on a timer (SQLite: PRAGMA data_version, microseconds per
 * look, no I/O); a backend with server push (PostgreSQL LISTEN/NOTIFY) bumps
 * its data version from the notification. Counted: each call needs one
 * qsim_store_unwatch_changes(); the shortest interval asked for wins. The store
 * must then be used from that main context's thread only.
 */
void qsim_store_watch_changes(QsimStore *self, guint interval_ms);

/**
 * qsim_store_list_request_events:
 * @after_id: only events with a greater id (0 = the oldest kept)
 * @limit: 1..QSIM_STORE_EVENTS_MAX_LIMIT
 *
 * The request journal, oldest first: one event per request created, status
 * changed and request deleted, by any process. Written by the backend in the
 * transaction that made the change, kept for the last 100000 events.
 *
 * Returns: (transfer container) (element-type QsimRequestEvent): events, or
 * NULL with @error set
 */
GPtrArray *qsim_store_list_request_events(QsimStore *self, gint64 after_id, guint limit,
                                          GError **error);

/**
 * qsim_store_get_last_request_event_id:
 *
 * Returns: the id of the newest journal event, 0 when there is none, or -1
 * with @error set
 */
gint64 qsim_store_get_last_request_event_id(QsimStore *self, GError **error);

/**
 * qsim_store_list_finished_since:
 * @since_ms: unix ms
 * @limit: 1..QSIM_STORE_FINISHED_MAX_LIMIT
 *
 * The requests that finished at or after @since_ms, newest first, read
 * through the finished_at index (the cost follows the rows returned, not the
 * table), each with the time of its first output.
 *
 * Returns: (transfer container) (element-type QsimFinishedSample): samples,
 * or NULL with @error set
 */
GPtrArray *qsim_store_list_finished_since(QsimStore *self, gint64 since_ms, guint limit,
                                          GError **error);

/* Undoes one qsim_store_watch_changes(); the last one stops the timer */
void qsim_store_unwatch_changes(QsimStore *self);

/**
 * qsim_store_set_output_truncated:
 * @uuid: a full request UUID
 *
 * Records that OUTPUT_LIMIT cut the request's stored output (output_truncated).
 * Idempotent; no signal (neither the status nor the lease changed).
 *
 * Returns: %TRUE on success; NOT_FOUND when the request is gone
 */
gboolean qsim_store_set_output_truncated(QsimStore *self, const gchar *uuid, GError **error);

/**
 * qsim_store_set_start_mode:
 * @uuid: full UUID
 * @mode: "cold", "snapshot" or "warm"
 *
 * Records how the request's VM started. Only while an agent holds a VM for
 * the request (a live or expired lease): CONFLICT otherwise. May be called
 * again (a failed restore that fell back to a cold boot); the last call wins.
 */
gboolean qsim_store_set_start_mode(QsimStore *self, const gchar *uuid, const gchar *mode,
                                   GError **error);

/* Returns: the host name template rows of this process are recorded under */
const gchar *qsim_store_get_local_host(void);

/* Returns: (transfer full): this process as a template's builder, "host:pid:0" */
gchar *qsim_store_dup_builder_id(void);

/**
 * qsim_store_upsert_template:
 * @record: vm_name and host name the row; every other column is written from
 *   it, except the prepare request (prepare_requested_at, prepare_force),
 *   which only qsim_store_request_prepare() and qsim_store_claim_prepare()
 *   change. updated_at is set to now.
 */
gboolean qsim_store_upsert_template(QsimStore *self, const QsimTemplateRecord *record,
                                    GError **error);

/* Returns: (transfer full): the row of @vm_name on @host, or NULL with NOT_FOUND */
QsimTemplateRecord *qsim_store_get_template(QsimStore *self, const gchar *vm_name,
                                            const gchar *host, GError **error);

/**
 * qsim_store_list_templates:
 * @host: (nullable): only this host's rows; NULL = every host
 * @only_requested: only rows with a prepare request, oldest request first
 *
 * Returns: (transfer container) (element-type QsimTemplateRecord): rows by
 * vm_name and host (or request time), or NULL with @error
 */
GPtrArray *qsim_store_list_templates(QsimStore *self, const gchar *host, gboolean only_requested,
                                     GError **error);

/**
 * qsim_store_request_prepare:
 * @force: rebuild even when the template is fresh; ORed with a pending request
 *
 * Asks the agents on @host to build (or check) the template of @vm_name: sets
 * prepare_requested_at (kept if already set) and creates the row (state
 * none) if there is none.
 *
 * Returns: (transfer full): the row after the change, or NULL with @error
 */
QsimTemplateRecord *qsim_store_request_prepare(QsimStore *self, const gchar *vm_name,
                                               const gchar *host, gboolean force, GError **error);

/**
 * qsim_store_claim_prepare:
 * @out_claimed: (out): TRUE when this caller now builds the template
 * @out_force: (out) (optional): whether the request it took asked for --force
 *
 * Atomically (one IMMEDIATE transaction, so one process in the whole database
 * wins): unless a build of @vm_name on @host runs already (state building,
 * started less than QSIM_STORE_TEMPLATE_BUILD_STALE_MS ago), sets the row to
 * building (creating it if needed), build_started_at to now, builder to
 * this process (qsim_store_dup_builder_id()), clears the reason and takes
 * the prepare request. @out_claimed FALSE means another build runs; the
 * prepare request then stays for later. A building row whose builder process
 * is gone is reset by the agents' recovery, not by this claim.
 *
 * Returns: FALSE with @error only on a database failure
 */
gboolean qsim_store_claim_prepare(QsimStore *self, const gchar *vm_name, const gchar *host,
                                  gboolean *out_claimed, gboolean *out_force, GError **error);

/**
 * qsim_store_purge_requests:
 * @status: QSIM_STATUS_DONE, _FAILED or _CANCELLED, or -1 for any of them
 * @before_ms: only requests that finished before this time (unix ms)
 * @limit: at most this many requests, 1..QSIM_STORE_PURGE_MAX_BATCH
 * @out_deleted: (out): how many requests were deleted
 * @out_more: (out) (optional): TRUE when more requests match (call again)
 *
 * Deletes finished requests and their logs in ONE short IMMEDIATE transaction,
 * oldest finish first. Requests an agent still holds a VM for (a cancel not yet
 * finished by its agent) are left for a later call. The transaction also stops
 * after about @limit * QSIM_STORE_PURGE_LOG_ROWS_PER_REQUEST log chunks: a
 * request with a long log may lose its logs over several calls before its row
 * goes. "request-deleted" is emitted per deleted request. Purges running at
 * once (other processes) are harmless: each deletes what is still there.
 *
 * Returns: FALSE with @error on failure (nothing of this call was deleted)
 */
gboolean qsim_store_purge_requests(QsimStore *self, gint status, gint64 before_ms, guint limit,
                                   guint *out_deleted, gboolean *out_more, GError **error);

/**
 * qsim_store_reclaim_space:
 * @max_pages: at most this many free pages go back to the file system
 * @out_free_pages: (out) (optional): free pages left in the file afterwards
 * @out_incremental: (out) (optional): whether the file is in incremental mode
 *
 * One step of SQLite's incremental vacuum (its own short write transaction).
 * A database not in auto_vacuum=INCREMENTAL mode (created before qsim had
 * retention, see qsim_store_vacuum()) gives nothing back: @out_incremental
 * says so, and @out_free_pages how much a vacuum could reclaim.
 */
gboolean qsim_store_reclaim_space(QsimStore *self, guint max_pages, guint64 *out_free_pages,
                                  gboolean *out_incremental, GError **error);

/**
 * qsim_store_vacuum:
 *
 * Rewrites the whole database with auto_vacuum=INCREMENTAL (`qsimd vacuum`):
 * needed once for files created before incremental vacuum, and it takes an
 * exclusive lock for as long as copying the file takes. Needs free space about
 * the size of the database.
 */
gboolean qsim_store_vacuum(QsimStore *self, GError **error);

gboolean qsim_store_put_accel_verdict(QsimStore *self, const QsimAccelVerdict *verdict,
                                      GError **error);
QsimAccelVerdict *qsim_store_get_accel_verdict(QsimStore *self, const gchar *host, GError **error);
GPtrArray *qsim_store_list_accel_verdicts(QsimStore *self, GError **error);

void qsim_store_set_artifact_store(QsimStore *self, QsimArtifactStore *artifacts);

/**
 * qsim_store_add_artifacts:
 * @uuid: a full request UUID
 * @records: (element-type QsimArtifactRecord): validated names, unique per request
 *
 * Records collected artifacts in one transaction (their bytes are already in the
 * artifact store). Errors: NOT_FOUND when the request is gone, INVALID for a bad
 * record, CONFLICT for a name already recorded.
 */
gboolean qsim_store_add_artifacts(QsimStore *self, const gchar *uuid, GPtrArray *records,
                                  GError **error);

/**
 * qsim_store_list_artifacts:
 *
 * Returns: (transfer container) (element-type QsimArtifactRecord): the request's
 *   artifacts by name (empty when none), or NULL with @error (NOT_FOUND: no request)
 */
GPtrArray *qsim_store_list_artifacts(QsimStore *self, const gchar *uuid, GError **error);

/*
 * Uploads: the parts of a multipart POST /requests, spooled in the store while the
 * body streams in, under a fresh @upload_id (a UUID) that no request has yet;
 * qsim_store_create_request_full() attaches the complete ones (sha256 set) in its
 * transaction. An agent on any host reads them back chunk by chunk
 * (qsim_store_upload_read_chunk(): an empty GBytes past the last) and deletes them
 * once they are in the guest; deleting the request deletes them too.
 */
gboolean qsim_store_upload_add_file(QsimStore *self, const gchar *upload_id, guint idx,
                                    QsimUploadKind kind, const gchar *guest_path, guint mode,
                                    GError **error);
gboolean qsim_store_upload_put_chunk(QsimStore *self, const gchar *upload_id, guint idx, guint seq,
                                     GBytes *data, GError **error);
gboolean qsim_store_upload_finish_file(QsimStore *self, const gchar *upload_id, guint idx,
                                       guint64 size, const gchar *sha256, GError **error);
/* Drops a spool no request took (a refused or abandoned POST). */
gboolean qsim_store_upload_discard(QsimStore *self, const gchar *upload_id, GError **error);
gboolean qsim_store_delete_uploads(QsimStore *self, const gchar *uuid, GError **error);
/* Returns: (transfer container) (element-type QsimUploadRecord): by idx */
GPtrArray *qsim_store_list_uploads(QsimStore *self, const gchar *uuid, GError **error);
GBytes *qsim_store_upload_read_chunk(QsimStore *self, const gchar *upload_id, guint idx, guint seq,
                                     GError **error);

G_END_DECLS
