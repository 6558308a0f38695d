#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <glib-unix.h>
#include <signal.h>

#include "store/qsim-file-artifact-store.h"
#include "api/qsim-api-metrics.h"
#include "api/qsim-api-server.h"
#include "common/qsim-dir-check.h"
#include "common/qsim-error.h"
#include "daemon/qsimd-commands.h"
#include "store/qsim-retention.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

static gboolean
on_stop_signal(gpointer user_data)
{
	GMainLoop *loop = user_data;

	g_info("signal received, stopping");
	g_main_loop_quit(loop);
	return G_SOURCE_CONTINUE;
}

/**
 * qsimd_cmd_api:
 *
 * `qsimd api`: serves the REST API until SIGTERM, SIGINT or SIGHUP. Agents run
 * elsewhere (`qsimd agents`); the server sees their changes by polling the
 * shared database.
 *
 * Returns: the exit status
 */
gint
qsimd_cmd_api(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimApiServer) server = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(QsimRetention) retention = NULL;
	guint sigterm_id, sigint_id, sighup_id;

	if (argc > 1) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "api takes no arguments (got '%s')", argv[1]);
		return QSIMD_EXIT_USAGE;
	}
	/* a client that goes away mid-write is an error to handle, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	if (qsim_config_store_is_sqlite(ctx->config) &&
	    !qsim_dir_check_db_path(qsim_config_get_db_path(ctx->config), error)) {
		g_prefix_error(error, "DB_PATH: ");
		return 1;
	}
	/* only read here (templates): checked when present, created by the agents */
	if (!qsim_dir_check_private(qsim_config_get_state_dir(ctx->config), FALSE, error)) {
		g_prefix_error(error, "STATE_DIR: ");
		return 1;
	}
	store = qsim_store_open(qsim_config_get_store_location(ctx->config), error);
	if (store == NULL)
		return 1;
	{
		g_autoptr(QsimArtifactStore) artifacts =
		    qsim_artifact_store_new_for_config(ctx->config);
		qsim_store_set_artifact_store(store, artifacts);
	}
	server = qsim_api_server_new(ctx->config, store);
	if (!qsim_api_server_enable_writer(server, error) || !qsim_api_server_listen(server, error))
		return 1;
	qsim_api_metrics_probe_qemu(server);
	/* every process that writes purges: concurrent purges only share the work */
	if (qsim_config_get_retention_ms(ctx->config) > 0) {
		retention = qsim_retention_new(store, qsim_config_get_retention_ms(ctx->config));
		qsim_retention_start(retention);
	}
	loop = g_main_loop_new(NULL, FALSE);
	sigterm_id = g_unix_signal_add(SIGTERM, on_stop_signal, loop);
	sigint_id = g_unix_signal_add(SIGINT, on_stop_signal, loop);
	sighup_id = g_unix_signal_add(SIGHUP, on_stop_signal, loop);
	g_main_loop_run(loop);
	g_source_remove(sigterm_id);
	g_source_remove(sigint_id);
	g_source_remove(sighup_id);
	qsim_api_server_stop(server);
	g_info("API server stopped");
	return 0;
}
