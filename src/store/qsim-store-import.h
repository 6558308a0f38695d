#pragma once

#include <glib.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * Copying a whole database to another backend (`qsimd migrate-store`): the
 * rows as they are, with every column the normal API computes itself (ids in
 * submission order, end_reason, leases, attempts, log seq numbers). Not for
 * anything else: these bypass the transition table on purpose.
 */

/* Export batches stop after about this much text (commands may be 256 KiB each) */
#define QSIM_STORE_EXPORT_MAX_BYTES (8 * 1024 * 1024)

/**
 * QsimImportRow:
 * @request: the full row
 * @end_reason: (nullable): requests.end_reason as stored (set on final rows)
 */
typedef struct {
	QsimRequest *request;
	gchar *end_reason;
} QsimImportRow;

/* Returns: (transfer full): a row owning @request and a copy of @end_reason */
QsimImportRow *qsim_import_row_new(QsimRequest *request, const gchar *end_reason);
void qsim_import_row_free(QsimImportRow *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimImportRow, qsim_import_row_free)

/**
 * qsim_store_export_requests:
 * @after_id: the cursor: 0 to start, then the previous call's @out_last_id
 * @limit: at most this many rows (1..1000)
 * @max_bytes: stop after about this much text, after at least one row (0 = no cap)
 * @out_last_id: (out): the cursor for the next call
 *
 * Requests in submission order. An empty array means the end.
 *
 * Returns: (transfer container) (element-type QsimImportRow): rows, or NULL with @error
 */
GPtrArray *qsim_store_export_requests(QsimStore *self, gint64 after_id, guint limit,
                                      gsize max_bytes, gint64 *out_last_id, GError **error);

/**
 * qsim_store_import_requests:
 * @rows: (element-type QsimImportRow): validated rows, in submission order
 * @out_inserted: (out): how many were new
 *
 * Inserts the rows with every column as given, after the target's own rows
 * in submission order, in ONE transaction. A row whose UUID exists already is
 * left alone (a resumed copy). No signals: nothing runs while a store is copied.
 */
gboolean qsim_store_import_requests(QsimStore *self, GPtrArray *rows, guint *out_inserted,
                                    GError **error);

/**
 * qsim_store_import_logs:
 * @entries: (element-type QsimLogEntry): chunks with their seq (>= 1) and timestamp
 * @out_inserted: (out): how many were new
 *
 * Inserts the chunks with their own seq numbers in ONE transaction; a seq the
 * request has already is left alone. NOT_FOUND when the request is missing.
 */
gboolean qsim_store_import_logs(QsimStore *self, const gchar *uuid, GPtrArray *entries,
                                guint *out_inserted, GError **error);

/**
 * qsim_store_import_artifacts:
 * @records: (element-type QsimArtifactRecord): a request's artifact metadata, with
 *   their created_at
 * @out_inserted: (out): how many were new
 *
 * Inserts the records as they are in ONE transaction; a name the request has
 * already is left alone (a resumed copy). NOT_FOUND when the request is missing.
 * The bytes are not copied: they live in the artifact store (ARTIFACTS_DIR).
 */
gboolean qsim_store_import_artifacts(QsimStore *self, const gchar *uuid, GPtrArray *records,
                                     guint *out_inserted, GError **error);

/* How many artifact records the database holds */
gboolean qsim_store_count_artifacts(QsimStore *self, guint64 *out_count, GError **error);

/* How many requests and log chunks the database holds (a full count, not a cache) */
gboolean qsim_store_count_rows(QsimStore *self, guint64 *out_requests, guint64 *out_logs,
                               GError **error);

G_END_DECLS
