#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-accel.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"

/*
 * 503 while the database cannot be read (a PostgreSQL server restarting, a
 * network cut): the error object of every 503, plus "status":"degraded" and
 * why, so a load balancer and an operator read the same answer. The server
 * keeps running and recovers by itself when the store reconnects. The reason
 * never quotes the store's error (it may name hosts or SQL).
 */
static void
qsim_api_health_respond_unreachable(SoupServerMessage *msg)
{
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "error");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "code");
	json_builder_add_string_value(b, "unavailable");
	json_builder_set_member_name(b, "message");
	json_builder_add_string_value(b, "The database cannot be read.");
	json_builder_end_object(b);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, "degraded");
	json_builder_set_member_name(b, "reasons");
	json_builder_begin_array(b);
	json_builder_add_string_value(b, "database unreachable");
	json_builder_end_array(b);
	json_builder_set_member_name(b, "database");
	json_builder_add_string_value(b, "unreachable");
	json_builder_set_member_name(b, "version");
	json_builder_add_string_value(b, PACKAGE_VERSION);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, root);
}

void
qsim_api_health_get(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *disk_reason = NULL;
	QsimDiskReserve *disk = qsim_api_server_get_disk_reserve(ctx->server);
	guint64 free_bytes = 0;
	gboolean disk_ok;

	if (!qsim_store_ping(store, &error)) {
		g_warning("health check: database unreachable: %s", error->message);
		qsim_api_health_respond_unreachable(ctx->msg);
		return;
	}
	/* degraded, not down: still 200, because this server is exactly what an
	 * operator needs to free space (deletes and purges keep working) */
	disk_ok = qsim_disk_reserve_check(disk, &free_bytes, &disk_reason);
	b = json_builder_new_immutable();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, disk_ok ? "ok" : "degraded");
	json_builder_set_member_name(b, "reasons");
	json_builder_begin_array(b);
	if (!disk_ok)
		json_builder_add_string_value(b, disk_reason);
	json_builder_end_array(b);
	json_builder_set_member_name(b, "disk");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "status");
	json_builder_add_string_value(b, disk_ok ? "ok" : "low");
	json_builder_set_member_name(b, "free_bytes");
	json_builder_add_int_value(b, (gint64)free_bytes);
	json_builder_set_member_name(b, "min_free_bytes");
	json_builder_add_int_value(b, (gint64)qsim_disk_reserve_get_min_free(disk));
	json_builder_end_object(b);
	json_builder_set_member_name(b, "database");
	json_builder_add_string_value(b, "ok");
	json_builder_set_member_name(b, "schema_version");
	json_builder_add_int_value(b, qsim_store_get_schema_version(store));
	json_builder_set_member_name(b, "version");
	json_builder_add_string_value(b, PACKAGE_VERSION);
	qsim_api_accel_add(b, ctx->server, NULL);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}
