#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/qsim-error.h"
#include "daemon/qsimd-commands.h"
#include "store/qsim-pg-store.h"
#include "store/qsim-sqlite-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-import.h"
#include "store/qsim-store-migrate.h"

/*
 * "sqlite:PATH" or a postgresql:// URL. A source must exist: opening a SQLite
 * path creates the file, and copying an empty new file would "succeed".
 */
static QsimStore *
open_spec(QsimdContext *ctx, const gchar *what, const gchar *spec, gboolean must_exist,
          GError **error)
{
	if (g_str_has_prefix(spec, "sqlite:")) {
		const gchar *path = spec + strlen("sqlite:");
		QsimStore *store;

		if (path[0] == '\0') {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "--%s sqlite: needs a path", what);
			return NULL;
		}
		if (must_exist && !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no database at %s",
			            path);
			return NULL;
		}
		store = qsim_sqlite_store_new(path, error);
		if (store == NULL)
			g_prefix_error(error, "--%s: ", what);
		return store;
	}
	if (qsim_pg_store_is_url(spec)) {
		QsimStore *store;

		/* the password: DATABASE_PASSWORD_FILE (set by main) or libpq's PGPASSFILE */
		(void)ctx;
		store = qsim_store_open(spec, error);
		if (store == NULL)
			g_prefix_error(error, "--%s: ", what);
		return store;
	}
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
	            "--%s must be sqlite:PATH or a postgresql:// URL", what);
	return NULL;
}

static void
progress_cb(guint64 requests, guint64 logs, gpointer user_data)
{
	gint64 *last = user_data;
	gint64 now = g_get_monotonic_time();

	/* a line every few seconds, on stderr: stdout is the result */
	if (now - *last < 5 * G_USEC_PER_SEC)
		return;
	*last = now;
	g_printerr("qsimd: copied %" G_GUINT64_FORMAT " requests, %" G_GUINT64_FORMAT
	           " log chunks so far\n",
	           requests, logs);
}

static void
print_report(const QsimStoreMigrateReport *r)
{
	g_print("requests:       source %" G_GUINT64_FORMAT ", target %" G_GUINT64_FORMAT
	        " (copied %" G_GUINT64_FORMAT ", already there %" G_GUINT64_FORMAT ")\n",
	        r->source_requests, r->target_requests, r->copied_requests,
	        r->seen_requests - r->copied_requests);
	g_print("log chunks:     source %" G_GUINT64_FORMAT ", target %" G_GUINT64_FORMAT
	        " (copied %" G_GUINT64_FORMAT ", already there %" G_GUINT64_FORMAT ")\n",
	        r->source_logs, r->target_logs, r->copied_logs, r->seen_logs - r->copied_logs);
	g_print("artifacts:      source %" G_GUINT64_FORMAT ", target %" G_GUINT64_FORMAT
	        " (copied %" G_GUINT64_FORMAT ", already there %" G_GUINT64_FORMAT ")\n",
	        r->source_artifacts, r->target_artifacts, r->copied_artifacts,
	        r->seen_artifacts - r->copied_artifacts);
	g_print("templates:      %u\n", r->templates);
	g_print("accel verdicts: %u\n", r->accel_verdicts);
}

/**
 * qsimd_cmd_migrate_store:
 *
 * `qsimd migrate-store --from SPEC --to SPEC [--force|--resume] [--batch N]`:
 * copies a whole database to another backend (SQLite to PostgreSQL, or back)
 * through the store API, then compares the row counts: exit 0 when they agree,
 * 1 when they do not or the copy failed, 2 on a usage error.
 */
gint
qsimd_cmd_migrate_store(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	g_autofree gchar *from_spec = NULL;
	g_autofree gchar *to_spec = NULL;
	gboolean force = FALSE;
	gboolean resume = FALSE;
	gint batch = QSIM_STORE_MIGRATE_BATCH;
	GOptionEntry entries[] = {
	    {"from", 0, 0, G_OPTION_ARG_STRING, &from_spec, "The database to copy", "SPEC"},
	    {"to", 0, 0, G_OPTION_ARG_STRING, &to_spec, "The database to copy into", "SPEC"},
	    {"force", 0, 0, G_OPTION_ARG_NONE, &force,
	     "Copy into a target that holds requests already", NULL},
	    {"resume", 0, 0, G_OPTION_ARG_NONE, &resume,
	     "Continue an interrupted copy: rows the target has are skipped", NULL},
	    {"batch", 0, 0, G_OPTION_ARG_INT, &batch, "Requests per transaction (1-1000)", "N"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("");
	g_auto(GStrv) args = g_strdupv(argv);
	g_autoptr(QsimStore) from = NULL;
	g_autoptr(QsimStore) to = NULL;
	QsimStoreMigrateOptions options = {0};
	QsimStoreMigrateReport report;
	gint64 last_progress = g_get_monotonic_time();

	(void)argc;
	g_option_context_set_summary(octx, "Copy every request, log, template and accelerator "
	                                   "verdict to another database (sqlite:PATH or "
	                                   "postgresql://…), then check the row counts.");
	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse_strv(octx, &args, error)) {
		qsim_error_convert(error);
		return QSIMD_EXIT_USAGE;
	}
	if (args[1] != NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "migrate-store takes no arguments (got '%s')", args[1]);
		return QSIMD_EXIT_USAGE;
	}
	if (from_spec == NULL || to_spec == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "migrate-store needs --from and --to");
		return QSIMD_EXIT_USAGE;
	}
	if (batch < 1 || batch > 1000) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "--batch must be 1 to 1000, not %d", batch);
		return QSIMD_EXIT_USAGE;
	}
	if (g_strcmp0(from_spec, to_spec) == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "--from and --to name the same database");
		return QSIMD_EXIT_USAGE;
	}
	from = open_spec(ctx, "from", from_spec, TRUE, error);
	if (from == NULL)
		return 1;
	to = open_spec(ctx, "to", to_spec, FALSE, error);
	if (to == NULL)
		return 1;
	options.batch = (guint)batch;
	options.allow_nonempty = force || resume;
	options.progress = progress_cb;
	options.progress_data = &last_progress;
	if (!qsim_store_migrate(from, to, &options, &report, error))
		return 1;
	print_report(&report);
	if (report.active_requests > 0)
		g_printerr("qsimd: %" G_GUINT64_FORMAT " requests were acknowledged or running in "
		           "the source; the target's agents recover them once their leases end\n",
		           report.active_requests);
	if (!qsim_store_migrate_check(&report, error))
		return 1;
	g_print("row-count check: ok\n");
	return 0;
}
