#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "common/qsim-vm-catalog.h"

/* File names only: the directories are in GET /config, and a client has no
 * use for host paths. */
static void
add_basename(JsonBuilder *b, const gchar *name, const gchar *path)
{
	json_builder_set_member_name(b, name);
	if (path != NULL) {
		g_autofree gchar *base = g_path_get_basename(path);
		json_builder_add_string_value(b, base);
	} else {
		json_builder_add_null_value(b);
	}
}

void
qsim_api_vms_list(QsimApiContext *ctx)
{
	QsimConfig *config = qsim_api_server_get_config(ctx->server);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) vms = NULL;
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonNode) root = NULL;

	vms = qsim_vm_catalog_list(qsim_config_get_vm_images_dir(config),
	                           qsim_config_get_vm_config_dir(config), &error);
	if (vms == NULL) {
		/* a missing or unreadable images dir is a server fault, not the client's */
		g_warning("cannot list VMs: %s", error->message);
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
		                       "internal_error", "The VM catalog cannot be read.");
		return;
	}
	json_builder_begin_array(b);
	for (guint i = 0; i < vms->len; i++) {
		const QsimVmCatalogEntry *e = vms->pdata[i];

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, e->name);
		add_basename(b, "image", e->image_path);
		json_builder_set_member_name(b, "format");
		if (e->format != NULL)
			json_builder_add_string_value(b, e->format);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "size_bytes");
		json_builder_add_int_value(b, (gint64)e->size_bytes);
		add_basename(b, "config", e->config_path);
		json_builder_set_member_name(b, "valid");
		json_builder_add_boolean_value(b, e->valid);
		json_builder_set_member_name(b, "error");
		if (e->error != NULL)
			json_builder_add_string_value(b, e->error);
		else
			json_builder_add_null_value(b);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}
