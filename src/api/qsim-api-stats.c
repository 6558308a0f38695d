#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"

static void
add_seconds(JsonBuilder *b, const gchar *name, gboolean has, gint64 ms)
{
	json_builder_set_member_name(b, name);
	if (has)
		json_builder_add_double_value(b, ms / 1000.0);
	else
		json_builder_add_null_value(b);
}

static void
add_latency(JsonBuilder *b, const gchar *name, gboolean has, gint64 p50, gint64 p95)
{
	json_builder_set_member_name(b, name);
	json_builder_begin_object(b);
	add_seconds(b, "p50", has, p50);
	add_seconds(b, "p95", has, p95);
	json_builder_end_object(b);
}

void
qsim_api_stats_get(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStats) st = qsim_store_get_stats(store, &error);
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;
	guint parked = 0;
	guint starting = 0;

	if (st == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return;
	}
	b = json_builder_new_immutable();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "counts");
	json_builder_begin_object(b);
	for (guint s = 0; s < QSIM_STATUS_COUNT; s++) {
		json_builder_set_member_name(b, qsim_status_to_string((QsimStatus)s));
		json_builder_add_int_value(b, (gint64)st->counts[s]);
	}
	json_builder_end_object(b);
	json_builder_set_member_name(b, "total");
	json_builder_add_int_value(b, (gint64)st->total);
	json_builder_set_member_name(b, "running_vms");
	json_builder_add_int_value(b, st->active_vms);
	/* idle agents hold no lease, so the store alone undercounts them */
	json_builder_set_member_name(b, "agents");
	json_builder_add_int_value(
	    b, MAX(st->active_agents, qsim_api_server_get_agent_count(ctx->server)));
	add_seconds(b, "oldest_pending_age_s", st->has_oldest_pending, st->oldest_pending_age_ms);
	add_latency(b, "queue_latency_s", st->has_queue_latency, st->queue_p50_ms,
	            st->queue_p95_ms);
	add_latency(b, "run_latency_s", st->has_run_latency, st->run_p50_ms, st->run_p95_ms);
	/* fast start: how requests started, and how long submit -> running took each way */
	json_builder_set_member_name(b, "start_modes");
	json_builder_begin_object(b);
	for (guint m = QSIM_START_MODE_COLD; m < QSIM_START_MODE_COUNT; m++) {
		json_builder_set_member_name(b, qsim_start_mode_to_string((QsimStartMode)m));
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "count");
		json_builder_add_int_value(b, (gint64)st->start_counts[m]);
		add_seconds(b, "submit_to_running_p50_s", st->has_start_latency[m],
		            st->start_p50_ms[m]);
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	/* null when the agents run in another process */
	json_builder_set_member_name(b, "warm_pool");
	if (qsim_api_server_get_warm_pool_counts(ctx->server, NULL, &parked, &starting)) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "parked");
		json_builder_add_int_value(b, parked);
		json_builder_set_member_name(b, "starting");
		json_builder_add_int_value(b, starting);
		json_builder_end_object(b);
	} else {
		json_builder_add_null_value(b);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}
