#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-accel.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-offload.h"
#include "common/qsim-error.h"
#include "common/qsim-text.h"
#include "common/qsim-vm-catalog.h"
#include "common/qsim-vm-config.h"
#include "vm/qsim-template.h"

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

static void
add_string_or_null(JsonBuilder *b, const gchar *name, const gchar *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL && value[0] != '\0')
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

/* What GET /vms says about a VM's template: the database row of this host
 * combined with the cheap check of the files, so a touched image or a changed
 * config shows stale at once, before any request or build noticed. */
typedef struct {
	const gchar *state; /* none, building, ready, stale, failed */
	gchar *reason;
	guint64 size_bytes;
	gint64 built_at_ms;
	gchar *qemu_version;
	gchar *machine;
	gboolean prepare_requested;
	gint64 build_ms;
} TemplateView;

static void
template_view_clear(TemplateView *v)
{
	g_free(v->reason);
	g_free(v->qemu_version);
	g_free(v->machine);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TemplateView, template_view_clear)

/* Returns: (transfer full) (nullable): @e's config, NULL when it is invalid; loaded once
 * per VM and answer, for the template and the warm pool */
static QsimVmConfig *
load_vm_config(QsimApiServer *server, const QsimVmCatalogEntry *e)
{
	QsimConfig *config = qsim_api_server_get_config(server);

	if (!e->valid)
		return NULL;
	return qsim_vm_config_load(qsim_config_get_vm_images_dir(config),
	                           qsim_config_get_vm_config_dir(config), e->name, NULL);
}

static void
template_view_fill(QsimApiServer *server, const QsimVmCatalogEntry *e, const QsimVmConfig *vmc,
                   TemplateView *v)
{
	QsimConfig *config = qsim_api_server_get_config(server);
	QsimStore *store = qsim_api_server_get_store(server);
	g_autoptr(QsimTemplate) tpl = qsim_template_new(qsim_config_get_state_dir(config), e->name);
	g_autoptr(QsimTemplateRecord) row =
	    qsim_store_get_template(store, e->name, qsim_store_get_local_host(), NULL);
	g_autoptr(QsimTemplateManifest) m = NULL;
	g_autofree gchar *reason = NULL;
	QsimTemplateState live = QSIM_TEMPLATE_STATE_NONE;
	gboolean row_building;

	qsim_template_set_qemu_binary(tpl, qsim_config_get_qemu(config));
	if (vmc != NULL)
		live = qsim_template_check(tpl, vmc, &reason);
	else if (g_file_test(qsim_template_get_dir(tpl), G_FILE_TEST_IS_DIR)) {
		/* the VM's config broke: whatever was built from it cannot be used */
		live = QSIM_TEMPLATE_STATE_STALE;
		reason = g_strdup(e->error);
	}
	row_building =
	    row != NULL && row->state == QSIM_TEMPLATE_RECORD_BUILDING &&
	    row->build_started_at > qsim_store_now_ms(store) - QSIM_STORE_TEMPLATE_BUILD_STALE_MS;
	v->prepare_requested = row != NULL && row->prepare_requested_at != 0;
	if (row != NULL && row->build_finished_at != 0)
		v->build_ms = row->build_ms;
	if (row_building || qsim_template_is_building(tpl)) {
		v->state = "building";
	} else if (live == QSIM_TEMPLATE_STATE_READY) {
		v->state = "ready";
	} else if (row != NULL && row->state == QSIM_TEMPLATE_RECORD_FAILED) {
		/* the last build failed; an older template, if any, is not usable either */
		v->state = "failed";
		v->reason = g_strdup(row->reason);
	} else if (live == QSIM_TEMPLATE_STATE_STALE) {
		v->state = "stale";
		v->reason = g_steal_pointer(&reason);
	} else {
		v->state = "none";
	}
	if (live != QSIM_TEMPLATE_STATE_NONE) {
		v->size_bytes = qsim_template_get_size_bytes(tpl);
		m = qsim_template_load_manifest(tpl, NULL);
	}
	if (m != NULL) {
		v->built_at_ms = m->created_unix * 1000;
		v->qemu_version = g_strdup(m->qemu_version);
		v->machine = g_strdup(m->machine);
	} else if (row != NULL && row->state != QSIM_TEMPLATE_RECORD_NONE) {
		v->size_bytes = row->size_bytes;
		v->built_at_ms = row->build_finished_at;
		v->qemu_version = g_strdup(row->qemu_version);
		v->machine = g_strdup(row->machine);
	}
}

static void
add_template(JsonBuilder *b, QsimApiServer *server, const QsimVmCatalogEntry *e,
             const QsimVmConfig *vmc)
{
	g_auto(TemplateView) v = {NULL};
	gint64 now_ms = g_get_real_time() / 1000;

	template_view_fill(server, e, vmc, &v);
	json_builder_set_member_name(b, "template");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, v.state);
	json_builder_set_member_name(b, "size_bytes");
	if (v.size_bytes > 0)
		json_builder_add_int_value(b, (gint64)v.size_bytes);
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "age_s");
	if (v.built_at_ms > 0)
		json_builder_add_double_value(b, MAX(now_ms - v.built_at_ms, 0) / 1000.0);
	else
		json_builder_add_null_value(b);
	qsim_api_json_add_timestamp(b, "built_at", v.built_at_ms);
	json_builder_set_member_name(b, "build_s");
	if (v.build_ms > 0)
		json_builder_add_double_value(b, v.build_ms / 1000.0);
	else
		json_builder_add_null_value(b);
	add_string_or_null(b, "reason", v.reason);
	add_string_or_null(b, "qemu_version", v.qemu_version);
	add_string_or_null(b, "machine", v.machine);
	json_builder_set_member_name(b, "prepare_requested");
	json_builder_add_boolean_value(b, v.prepare_requested);
	json_builder_end_object(b);
}

static void
add_count_or_null(JsonBuilder *b, const gchar *name, gboolean known, guint value)
{
	json_builder_set_member_name(b, name);
	if (known)
		json_builder_add_int_value(b, value);
	else
		json_builder_add_null_value(b);
}

/* size: WARM_POOL_SIZE of the VM's config; parked/starting: null unless this process
 * runs the agents (`qsimd all`), which hold the pool */
static void
add_warm_pool(JsonBuilder *b, QsimApiServer *server, const QsimVmCatalogEntry *e,
              const QsimVmConfig *vmc)
{
	guint parked = 0;
	guint starting = 0;
	gboolean known;

	known = qsim_api_server_get_warm_pool_counts(server, e->name, &parked, &starting);
	json_builder_set_member_name(b, "warm_pool");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "size");
	json_builder_add_int_value(b, vmc != NULL ? vmc->warm_pool_size : 0);
	add_count_or_null(b, "parked", known, parked);
	add_count_or_null(b, "starting", known, starting);
	json_builder_end_object(b);
}

static void
add_vm(JsonBuilder *b, QsimApiServer *server, const QsimVmCatalogEntry *e)
{
	g_autoptr(QsimVmConfig) vmc = load_vm_config(server, e);

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
	add_template(b, server, e, vmc);
	add_warm_pool(b, server, e, vmc);
	qsim_api_accel_add(b, server, vmc);
	json_builder_end_object(b);
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
	for (guint i = 0; i < vms->len; i++)
		add_vm(b, ctx->server, vms->pdata[i]);
	json_builder_end_array(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}

/* Returns: (transfer full) (nullable): the VM named by the path, or NULL when
 * @ctx was answered (400 bad name, 404 unknown, 500 unreadable catalog) */
static QsimVmCatalogEntry *
resolve_vm(QsimApiContext *ctx)
{
	QsimConfig *config = qsim_api_server_get_config(ctx->server);
	g_autoptr(GError) error = NULL;
	QsimVmCatalogEntry *e =
	    qsim_vm_catalog_lookup(qsim_config_get_vm_images_dir(config),
	                           qsim_config_get_vm_config_dir(config), ctx->param, &error);

	if (e == NULL)
		qsim_api_error_respond_gerror(ctx->msg, error);
	return e;
}

void
qsim_api_vms_get(QsimApiContext *ctx)
{
	g_autoptr(QsimVmCatalogEntry) e = resolve_vm(ctx);
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;

	if (e == NULL)
		return;
	b = json_builder_new_immutable();
	add_vm(b, ctx->server, e);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}

/* force from the query (`force=true|false`) or the optional JSON body; FALSE
 * when @ctx was answered with 400 */
static gboolean
read_force(QsimApiContext *ctx, gboolean *out)
{
	SoupMessageBody *body = soup_server_message_get_request_body(ctx->msg);
	const gchar *q = qsim_api_context_get_query(ctx, "force");
	gboolean in_query = FALSE;

	*out = FALSE;
	if (q != NULL) {
		if (g_strcmp0(q, "true") != 0 && g_strcmp0(q, "false") != 0) {
			qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			                       "Query parameter 'force' must be true or false.");
			return FALSE;
		}
		*out = g_strcmp0(q, "true") == 0;
		in_query = TRUE;
	}
	if (body != NULL && body->length > 0) {
		g_autoptr(JsonObject) obj = qsim_api_json_read_object(ctx->msg);
		g_autoptr(GList) members = NULL;
		JsonNode *node;

		if (obj == NULL)
			return FALSE;
		members = json_object_get_members(obj);
		for (GList *it = members; it != NULL; it = it->next) {
			if (g_strcmp0(it->data, "force") != 0) {
				g_autofree gchar *field = qsim_utf8_safe_dup(it->data, -1, 64);

				qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST,
				                       "bad_request", "Unknown field '%s'.", field);
				return FALSE;
			}
		}
		node = json_object_get_member(obj, "force");
		if (node != NULL) {
			if (JSON_NODE_TYPE(node) != JSON_NODE_VALUE ||
			    json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
				qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST,
				                       "bad_request",
				                       "Field 'force' must be true or false.");
				return FALSE;
			}
			if (in_query) {
				qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST,
				                       "bad_request",
				                       "Give 'force' in the query or in the body, "
				                       "not both.");
				return FALSE;
			}
			*out = json_node_get_boolean(node);
		}
	}
	return TRUE;
}

typedef struct {
	QsimApiServer *server;
	QsimVmCatalogEntry *entry;
	gchar *host;
	gboolean force;
	QsimTemplateRecord *row;
} PrepareJob;

static void
prepare_job_free(PrepareJob *j)
{
	g_object_unref(j->server);
	qsim_vm_catalog_entry_free(j->entry);
	g_free(j->host);
	if (j->row != NULL)
		qsim_template_record_free(j->row);
	g_free(j);
}

static gboolean
prepare_write(QsimStore *store, gpointer data, GError **error)
{
	PrepareJob *j = data;

	j->row = qsim_store_request_prepare(store, j->entry->name, j->host, j->force, error);
	return j->row != NULL;
}

static void
prepare_done(SoupServerMessage *msg, QsimStore *server_store, gboolean offloaded, gpointer data,
             const GError *error)
{
	PrepareJob *j = data;
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(QsimVmConfig) vmc = NULL;

	/* the agents of `qsimd all` pick the request up from this signal at once */
	if (offloaded && error == NULL)
		g_signal_emit_by_name(server_store, "template-changed", j->entry->name, j->host);
	if (msg == NULL)
		return;
	if (error != NULL) {
		qsim_api_error_respond_gerror(msg, error);
		return;
	}
	b = json_builder_new_immutable();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, j->entry->name);
	json_builder_set_member_name(b, "force");
	json_builder_add_boolean_value(b, j->force);
	vmc = load_vm_config(j->server, j->entry);
	add_template(b, j->server, j->entry, vmc);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(msg, SOUP_STATUS_ACCEPTED, root);
}

void
qsim_api_vms_prepare(QsimApiContext *ctx)
{
	g_autoptr(QsimVmCatalogEntry) e = resolve_vm(ctx);
	PrepareJob *j;
	gboolean force = FALSE;

	if (e == NULL || !read_force(ctx, &force))
		return;
	if (!e->valid) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_CONFLICT, "conflict",
		                       "VM '%s' cannot have a template: its configuration is "
		                       "invalid: %s",
		                       e->name, e->error != NULL ? e->error : "unknown error");
		return;
	}
	j = g_new0(PrepareJob, 1);
	j->server = g_object_ref(ctx->server);
	j->entry = g_steal_pointer(&e);
	j->host = g_strdup(qsim_store_get_local_host());
	j->force = force;
	/* BEGIN IMMEDIATE may wait for the write lock: never on the main loop */
	qsim_api_offload_write(ctx, prepare_write, prepare_done, j,
	                       (GDestroyNotify)prepare_job_free);
}
