#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <glib-unix.h>
#include <signal.h>

#include "store/qsim-file-artifact-store.h"
#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-agent-pool.h"
#include "agent/qsim-warm-pool.h"
#include "store/qsim-store-worker.h"
#include "api/qsim-api-metrics.h"
#include "api/qsim-api-server.h"
#include "common/qsim-dir-check.h"
#include "common/qsim-error.h"
#include "daemon/qsimd-commands.h"
#include "store/qsim-artifact-sweeper.h"
#include "store/qsim-retention.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

typedef struct {
	GMainLoop *loop;
	QsimAgentPool *pool;
	guint grace_ms;
	gboolean stopping;
} AgentsRun;

static void
agents_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AgentsRun *run = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_agent_pool_stop_finish(QSIM_AGENT_POOL(source), res, &error))
		g_warning("%s", error->message);
	g_main_loop_quit(run->loop);
}

static gboolean
agents_signal_cb(gpointer user_data)
{
	AgentsRun *run = user_data;

	if (run->stopping) {
		/* a second signal: do not wait for the grace period */
		g_info("second signal: stopping running jobs now");
		qsim_agent_pool_abort_jobs(run->pool);
		return G_SOURCE_CONTINUE;
	}
	run->stopping = TRUE;
	g_info("signal received: shutting down (grace %u ms)", run->grace_ms);
	qsim_agent_pool_stop_async(run->pool, run->grace_ms, NULL, agents_stopped_cb, run);
	return G_SOURCE_CONTINUE;
}

/* RUN_DIR and STATE_DIR are created private; the database's directory must be ours */
static gboolean
qsimd_agents_check_dirs(QsimConfig *config, GError **error)
{
	if (qsim_config_store_is_sqlite(config) &&
	    !qsim_dir_check_db_path(qsim_config_get_db_path(config), error)) {
		g_prefix_error(error, "DB_PATH: ");
		return FALSE;
	}
	if (!qsim_dir_check_private(qsim_config_get_run_dir(config), TRUE, error)) {
		g_prefix_error(error, "RUN_DIR: ");
		return FALSE;
	}
	if (!qsim_dir_check_private(qsim_config_get_state_dir(config), TRUE, error)) {
		g_prefix_error(error, "STATE_DIR: ");
		return FALSE;
	}
	return TRUE;
}

/* `agents` and `all` share everything but the API server. */
/* GET /vms and /stats in `qsimd all`: the pool outlives the server (stopped first) */
static void
qsimd_warm_pool_counts(const gchar *vm_name, guint *n_parked, guint *n_starting, gpointer user_data)
{
	QsimWarmPool *warm = qsim_agent_pool_get_warm_pool(QSIM_AGENT_POOL(user_data));

	if (warm != NULL)
		qsim_warm_pool_get_counts(warm, vm_name, n_parked, n_starting);
}

static void
qsimd_agents_counts(guint *n_agents, guint *n_busy, gpointer user_data)
{
	QsimAgentPool *pool = QSIM_AGENT_POOL(user_data);

	*n_agents = qsim_agent_pool_get_n_agents(pool);
	*n_busy = qsim_agent_pool_get_n_busy(pool);
}

/* METRICS_LISTEN: `qsimd agents` has no API, so each such process gets a
 * /metrics of its own (its agents, VMs and histograms) to be scraped */
static QsimApiServer *
qsimd_agents_metrics_server(QsimdContext *ctx, QsimStore *store, QsimAgentPool *pool,
                            GError **error)
{
	const gchar *listen = qsim_config_get_metrics_listen(ctx->config);
	g_autofree gchar *host = NULL;
	g_autoptr(QsimApiServer) server = NULL;
	guint16 port = 0;

	if (listen == NULL || listen[0] == '\0')
		return NULL;
	if (!qsim_config_split_listen(listen, &host, &port, error)) {
		g_prefix_error(error, "METRICS_LISTEN=%s: ", listen);
		return NULL;
	}
	server = qsim_api_server_new(ctx->config, store);
	qsim_api_server_set_metrics_only(server, host, port);
	qsim_api_server_set_agents_func(server, qsimd_agents_counts, pool);
	qsim_api_server_set_warm_pool_func(server, qsimd_warm_pool_counts, pool);
	if (!qsim_api_server_listen(server, error)) {
		g_prefix_error(error, "METRICS_LISTEN: ");
		return NULL;
	}
	qsim_api_metrics_probe_qemu(server);
	return g_steal_pointer(&server);
}

static gint
qsimd_run_agents(QsimdContext *ctx, gint argc, gchar **argv, gboolean with_api, GError **error)
{
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimApiServer) server = NULL;
	g_autoptr(QsimAgentPool) pool = NULL;
	g_autoptr(QsimStoreWorker) worker = NULL;
	g_autoptr(QsimAccelResolver) accel = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(QsimRetention) retention = NULL;
	g_autoptr(QsimArtifactSweeper) sweeper = NULL;
	AgentsRun run = {0};
	guint sigterm_id, sigint_id, sighup_id;

	if (argc > 1) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s takes no arguments (got '%s')", argv[0], argv[1]);
		return QSIMD_EXIT_USAGE;
	}
	/* a client that goes away mid-write is an error to handle, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	if (!qsimd_agents_check_dirs(ctx->config, error))
		return 1;
	store = qsim_store_open(qsim_config_get_store_location(ctx->config), error);
	if (store == NULL)
		return 1;
	{
		g_autoptr(QsimArtifactStore) artifacts =
		    qsim_artifact_store_new_for_config(ctx->config);
		qsim_store_set_artifact_store(store, artifacts);
	}
	pool = qsim_agent_pool_new(ctx->config, store);
	/* the logs and lease renewals of every VM, off this loop: a slow or unreachable
	 * database must not hold up the QMP, SSH and console work of the others */
	if (!g_str_equal(qsim_config_get_store_location(ctx->config), ":memory:")) {
		worker = qsim_store_worker_new(qsim_config_get_store_location(ctx->config), error);
		if (worker == NULL)
			return 1;
		qsim_agent_pool_set_store_worker(pool, worker);
	}
	/* the catalogue is in the store before anyone may ask for it */
	qsim_agent_pool_publish_now(pool);
	if (with_api) {
		/* one store object: the API's submit signals the pool directly */
		server = qsim_api_server_new(ctx->config, store);
		qsim_api_server_set_agent_count(server, qsim_agent_pool_get_n_agents(pool));
		qsim_api_server_set_warm_pool_func(server, qsimd_warm_pool_counts, pool);
		qsim_api_server_set_agents_func(server, qsimd_agents_counts, pool);
		qsim_api_server_set_catalogue_func(
		    server, (GSourceFunc)qsim_agent_pool_refresh_templates, pool);
		if (!qsim_api_server_enable_writer(server, error) ||
		    !qsim_api_server_listen(server, error))
			return 1;
		qsim_api_metrics_probe_qemu(server);
	} else {
		server = qsimd_agents_metrics_server(ctx, store, pool, error);
		if (server == NULL && *error != NULL)
			return 1;
	}
	/* before any VM starts: KVM only where it runs a guest. The API already answers
	 * meanwhile (this iterates the main context); requests wait at most the probe's
	 * deadline, and only when no cached verdict matches. */
	accel = qsim_accel_resolver_new(ctx->config, store);
	if (!qsim_accel_resolver_prepare_sync(accel, error))
		return 1;
	qsim_accel_resolver_set_default(accel);
	if (!qsim_agent_pool_start(pool, error))
		return 1;
	/* every process that writes purges: concurrent purges only share the work */
	if (qsim_config_get_retention_ms(ctx->config) > 0) {
		retention = qsim_retention_new(store, qsim_config_get_retention_ms(ctx->config));
		qsim_retention_start(retention);
	}
	/* what an agent killed mid-collect, or a purge that died half way, left behind */
	{
		g_autoptr(QsimArtifactStore) artifacts =
		    qsim_artifact_store_new_for_config(ctx->config);

		sweeper = qsim_artifact_sweeper_new(store, QSIM_FILE_ARTIFACT_STORE(artifacts));
		qsim_artifact_sweeper_start(sweeper);
	}
	loop = g_main_loop_new(NULL, FALSE);
	run.loop = loop;
	run.pool = pool;
	run.grace_ms = (guint)(qsim_config_get_shutdown_grace(ctx->config) * 1000);
	sigterm_id = g_unix_signal_add(SIGTERM, agents_signal_cb, &run);
	sigint_id = g_unix_signal_add(SIGINT, agents_signal_cb, &run);
	/* a closed terminal or a reload by habit: stop as gracefully as on SIGTERM */
	sighup_id = g_unix_signal_add(SIGHUP, agents_signal_cb, &run);
	g_main_loop_run(loop);
	g_source_remove(sigterm_id);
	g_source_remove(sigint_id);
	g_source_remove(sighup_id);
	if (server != NULL)
		qsim_api_server_stop(server);
	/* what the worker still had (a last renewal) reports back, so nothing it holds
	 * is left behind */
	if (worker != NULL)
		qsim_store_worker_stop(worker);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_info("%s stopped", with_api ? "qsimd all" : "agents");
	qsim_accel_resolver_set_default(NULL);
	return 0;
}

/**
 * qsimd_cmd_agents:
 *
 * `qsimd agents`: runs AGENT_COUNT agents until SIGTERM, SIGINT or SIGHUP. Several
 * such processes may share one database file.
 *
 * Returns: the exit status
 */
gint
qsimd_cmd_agents(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	return qsimd_run_agents(ctx, argc, argv, FALSE, error);
}

/**
 * qsimd_cmd_all:
 *
 * `qsimd all`: the REST API and the agents in one process and one main
 * loop; a submit wakes an idle agent at once.
 *
 * Returns: the exit status
 */
gint
qsimd_cmd_all(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	return qsimd_run_agents(ctx, argc, argv, TRUE, error);
}
