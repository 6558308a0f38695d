#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include "common/qsim-dir-check.h"
#include "common/qsim-db-url.h"
#include "common/qsim-error.h"
#include "daemon/qsimd-commands.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

/**
 * qsimd_cmd_vacuum:
 *
 * `qsimd vacuum`: rewrites the database once with auto_vacuum=INCREMENTAL so
 * that the space retention frees goes back to the file system. Files created
 * since retention exist are incremental already; this is for older ones. It
 * holds an exclusive lock while it copies the file, so run it while qsimd is
 * stopped or quiet.
 *
 * Returns: the exit status
 */
gint
qsimd_cmd_vacuum(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	g_autoptr(QsimStore) store = NULL;
	const gchar *path = qsim_config_get_store_location(ctx->config);
	g_autofree gchar *shown = qsim_db_url_redact(path);

	if (argc > 1) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "vacuum takes no arguments (got '%s')", argv[1]);
		return QSIMD_EXIT_USAGE;
	}
	if (qsim_config_store_is_sqlite(ctx->config) && !g_file_test(path, G_FILE_TEST_EXISTS)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no database at %s", path);
		return 1;
	}
	store = qsim_store_open(path, error);
	if (store == NULL || !qsim_store_vacuum(store, error))
		return 1;
	g_print("%s: vacuumed; freed pages now go back to the file system\n", shown);
	return 0;
}
