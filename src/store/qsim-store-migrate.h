#pragma once

#include <glib.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

/* Requests per import transaction by default */
#define QSIM_STORE_MIGRATE_BATCH 200

/* Called after each batch of requests with the totals so far */
typedef void (*QsimStoreMigrateProgress)(guint64 requests_seen, guint64 logs_seen,
                                         gpointer user_data);

/**
 * QsimStoreMigrateOptions:
 * @batch: requests per transaction, 1..1000 (0 = QSIM_STORE_MIGRATE_BATCH)
 * @allow_nonempty: the target may hold requests already (--force, --resume):
 *   rows it has (same UUID, same log seq) are left alone and the rest copied
 */
typedef struct {
	guint batch;
	gboolean allow_nonempty;
	QsimStoreMigrateProgress progress;
	gpointer progress_data;
} QsimStoreMigrateOptions;

/* What a copy did, and the counts it is checked by */
typedef struct {
	guint64 source_requests; /* counted before and after the copy: they must agree */
	guint64 source_logs;
	guint64 target_requests_before;
	guint64 target_logs_before;
	guint64 target_requests; /* counted at the end */
	guint64 target_logs;
	guint64 seen_requests; /* rows read from the source */
	guint64 seen_logs;
	guint64 copied_requests; /* rows the target did not have */
	guint64 copied_logs;
	guint64 active_requests; /* acknowledged or running in the source: an agent ran */
	/* artifact metadata (the bytes stay in ARTIFACTS_DIR), counted like the rows above */
	guint64 source_artifacts;
	guint64 target_artifacts_before;
	guint64 target_artifacts;
	guint64 seen_artifacts;
	guint64 copied_artifacts;
	guint templates;
	guint accel_verdicts;
	gboolean source_changed; /* the source's counts moved during the copy */
} QsimStoreMigrateReport;

/**
 * qsim_store_migrate:
 *
 * Copies every request (all columns, in submission order), its log chunks
 * (seq numbers kept), the templates (with their prepare requests) and the
 * accelerator verdicts from @from to @to, in batches: memory stays bounded by
 * the batch and a log page whatever the database's size. Refuses a target
 * that holds requests unless @options allow it. Hosts, their catalogues and
 * VM slots are not copied: the agents publish them again when they start.
 *
 * Returns: FALSE with @error when the copy stopped (what was committed stays:
 * run it again with allow_nonempty to resume). The counts are checked
 * separately, by qsim_store_migrate_check().
 */
gboolean qsim_store_migrate(QsimStore *from, QsimStore *to, const QsimStoreMigrateOptions *options,
                            QsimStoreMigrateReport *report, GError **error);

/**
 * qsim_store_migrate_check:
 *
 * The row-count check: every source row was read, the target grew by exactly
 * the rows copied, and (unless it held requests of its own before, or the
 * copy resumed over rows it already had) holds exactly the source's counts.
 *
 * Returns: FALSE with @error naming the first count that disagrees
 */
gboolean qsim_store_migrate_check(const QsimStoreMigrateReport *report, GError **error);

G_END_DECLS
