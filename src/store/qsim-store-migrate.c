#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-store-import.h"
#include "store/qsim-store-migrate.h"

/* a log page: both bounds, so a request with a huge log is copied in pieces */
#define LOG_PAGE_ROWS 1000
#define LOG_PAGE_BYTES (4 * 1024 * 1024)

static gboolean
copy_logs(QsimStore *from, QsimStore *to, const gchar *uuid, QsimStoreMigrateReport *report,
          GError **error)
{
	gint64 after = 0;

	for (;;) {
		g_autoptr(GPtrArray) page = NULL;
		gboolean cut = FALSE;
		guint inserted = 0;

		page = qsim_store_read_logs_page(from, uuid, after, LOG_PAGE_ROWS, -1,
		                                 LOG_PAGE_BYTES, &cut, error);
		if (page == NULL)
			return FALSE;
		if (page->len == 0)
			return TRUE;
		if (!qsim_store_import_logs(to, uuid, page, &inserted, error))
			return FALSE;
		report->seen_logs += page->len;
		report->copied_logs += inserted;
		after = ((const QsimLogEntry *)page->pdata[page->len - 1])->seq;
		if (page->len < LOG_PAGE_ROWS && !cut)
			return TRUE;
	}
}

/* The metadata only: the files are in the artifact store, which both stores share */
static gboolean
copy_artifacts(QsimStore *from, QsimStore *to, const gchar *uuid, QsimStoreMigrateReport *report,
               GError **error)
{
	g_autoptr(GPtrArray) records = qsim_store_list_artifacts(from, uuid, error);
	guint inserted = 0;

	if (records == NULL)
		return FALSE;
	if (records->len == 0)
		return TRUE;
	if (!qsim_store_import_artifacts(to, uuid, records, &inserted, error))
		return FALSE;
	report->seen_artifacts += records->len;
	report->copied_artifacts += inserted;
	return TRUE;
}

static gboolean
copy_requests(QsimStore *from, QsimStore *to, guint batch, const QsimStoreMigrateOptions *options,
              QsimStoreMigrateReport *report, GError **error)
{
	gint64 cursor = 0;

	for (;;) {
		g_autoptr(GPtrArray) rows = NULL;
		guint inserted = 0;

		rows = qsim_store_export_requests(from, cursor, batch, QSIM_STORE_EXPORT_MAX_BYTES,
		                                  &cursor, error);
		if (rows == NULL)
			return FALSE;
		if (rows->len == 0)
			return TRUE;
		if (!qsim_store_import_requests(to, rows, &inserted, error))
			return FALSE;
		report->seen_requests += rows->len;
		report->copied_requests += inserted;
		/* the rows commit before their logs: a copy stopped in between resumes
		 * over them and completes their logs (a seq the target has is skipped) */
		for (guint i = 0; i < rows->len; i++) {
			const QsimImportRow *row = rows->pdata[i];
			QsimStatus status = row->request->status;

			if (status == QSIM_STATUS_ACKNOWLEDGED || status == QSIM_STATUS_RUNNING)
				report->active_requests++;
			if (!copy_logs(from, to, row->request->uuid, report, error)) {
				g_prefix_error(error, "logs of %s: ", row->request->uuid);
				return FALSE;
			}
			if (!copy_artifacts(from, to, row->request->uuid, report, error)) {
				g_prefix_error(error, "artifacts of %s: ", row->request->uuid);
				return FALSE;
			}
		}
		if (options->progress != NULL)
			options->progress(report->seen_requests, report->seen_logs,
			                  options->progress_data);
	}
}

static gboolean
copy_templates(QsimStore *from, QsimStore *to, QsimStoreMigrateReport *report, GError **error)
{
	g_autoptr(GPtrArray) templates = qsim_store_list_templates(from, NULL, FALSE, error);
	g_autoptr(GPtrArray) verdicts = NULL;

	if (templates == NULL)
		return FALSE;
	for (guint i = 0; i < templates->len; i++) {
		const QsimTemplateRecord *t = templates->pdata[i];

		if (!qsim_store_upsert_template(to, t, error))
			return FALSE;
		/* a build the user asked for and no agent took yet: ask the new database */
		if (t->prepare_requested_at != 0) {
			g_autoptr(QsimTemplateRecord) asked = qsim_store_request_prepare(
			    to, t->vm_name, t->host, t->prepare_force, error);

			if (asked == NULL)
				return FALSE;
		}
		report->templates++;
	}
	verdicts = qsim_store_list_accel_verdicts(from, error);
	if (verdicts == NULL)
		return FALSE;
	for (guint i = 0; i < verdicts->len; i++) {
		if (!qsim_store_put_accel_verdict(to, verdicts->pdata[i], error))
			return FALSE;
		report->accel_verdicts++;
	}
	return TRUE;
}

gboolean
qsim_store_migrate(QsimStore *from, QsimStore *to, const QsimStoreMigrateOptions *options,
                   QsimStoreMigrateReport *report, GError **error)
{
	guint batch;
	guint64 requests_after = 0;
	guint64 logs_after = 0;
	guint64 artifacts_after = 0;

	g_return_val_if_fail(QSIM_IS_STORE(from) && QSIM_IS_STORE(to), FALSE);
	g_return_val_if_fail(options != NULL && report != NULL, FALSE);
	memset(report, 0, sizeof(*report));
	batch = options->batch != 0 ? options->batch : QSIM_STORE_MIGRATE_BATCH;
	if (batch > 1000) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "a batch holds 1 to 1000 requests, not %u", batch);
		return FALSE;
	}
	if (from == to) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "the source and the target are the same store");
		return FALSE;
	}
	if (!qsim_store_count_rows(from, &report->source_requests, &report->source_logs, error) ||
	    !qsim_store_count_rows(to, &report->target_requests_before, &report->target_logs_before,
	                           error) ||
	    !qsim_store_count_artifacts(from, &report->source_artifacts, error) ||
	    !qsim_store_count_artifacts(to, &report->target_artifacts_before, error))
		return FALSE;
	if (!options->allow_nonempty &&
	    (report->target_requests_before > 0 || report->target_logs_before > 0)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		            "the target holds %" G_GUINT64_FORMAT
		            " requests already; give --resume "
		            "to continue an interrupted copy, or --force to copy into it anyway",
		            report->target_requests_before);
		return FALSE;
	}
	if (!copy_requests(from, to, batch, options, report, error) ||
	    !copy_templates(from, to, report, error))
		return FALSE;
	if (!qsim_store_count_rows(from, &requests_after, &logs_after, error) ||
	    !qsim_store_count_rows(to, &report->target_requests, &report->target_logs, error) ||
	    !qsim_store_count_artifacts(from, &artifacts_after, error) ||
	    !qsim_store_count_artifacts(to, &report->target_artifacts, error))
		return FALSE;
	report->source_changed = requests_after != report->source_requests ||
	                         logs_after != report->source_logs ||
	                         artifacts_after != report->source_artifacts;
	return TRUE;
}

static gboolean
check_equal(const gchar *what, guint64 expected, guint64 got, GError **error)
{
	if (expected == got)
		return TRUE;
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE,
	            "row-count check failed: %s: expected %" G_GUINT64_FORMAT
	            ", found %" G_GUINT64_FORMAT,
	            what, expected, got);
	return FALSE;
}

gboolean
qsim_store_migrate_check(const QsimStoreMigrateReport *r, GError **error)
{
	if (r->source_changed) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_STORE,
		                    "row-count check failed: the source changed during the copy "
		                    "(stop every qsimd using it, then run again with --resume)");
		return FALSE;
	}
	if (!check_equal("source requests read", r->source_requests, r->seen_requests, error) ||
	    !check_equal("source log chunks read", r->source_logs, r->seen_logs, error) ||
	    !check_equal("target requests (before + copied)",
	                 r->target_requests_before + r->copied_requests, r->target_requests,
	                 error) ||
	    !check_equal("target log chunks (before + copied)",
	                 r->target_logs_before + r->copied_logs, r->target_logs, error) ||
	    !check_equal("source artifacts read", r->source_artifacts, r->seen_artifacts, error) ||
	    !check_equal("target artifacts (before + copied)",
	                 r->target_artifacts_before + r->copied_artifacts, r->target_artifacts,
	                 error))
		return FALSE;
	/* an empty target, or a resumed copy of the same source: the same rows */
	if (r->target_requests_before == r->seen_requests - r->copied_requests &&
	    r->target_logs_before == r->seen_logs - r->copied_logs &&
	    r->target_artifacts_before == r->seen_artifacts - r->copied_artifacts)
		return check_equal("target requests", r->source_requests, r->target_requests,
		                   error) &&
		       check_equal("target log chunks", r->source_logs, r->target_logs, error) &&
		       check_equal("target artifacts", r->source_artifacts, r->target_artifacts,
		                   error);
	return TRUE;
}
