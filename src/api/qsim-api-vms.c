#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-accel.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-offload.h"
#include "common/qsim-error.h"
#include "common/qsim-text.h"
#include "common/qsim-accel-mode.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-name.h"
#include "store/qsim-store-hosts.h"

/*
 * GET /vms and GET /vms/{name} answer from the store alone: the catalogue, warm
 * pool counts and template states that each host's agents published. A VM is
 * listed once with the fields of one host (this process's HOST_ID when it has
 * the VM, else a live host), and "hosts" holds every host's row.
 */

static void
add_string_or_null(JsonBuilder *b, const gchar *name, const gchar *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL && value[0] != '\0')
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

/* One VM with its rows: hosts (QsimHostVm), the hosts table, the templates */
typedef struct {
	GPtrArray *rows;       /* (element-type QsimHostVm) of one VM, by host */
	GHashTable *hosts;     /* host -> QsimHostRecord (borrowed from the listing) */
	GHashTable *templates; /* host -> QsimTemplateRecord (owned) */
	gint64 now_ms;
} VmView;

static void
vm_view_clear(VmView *v)
{
	g_clear_pointer(&v->rows, g_ptr_array_unref);
	g_clear_pointer(&v->templates, g_hash_table_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmView, vm_view_clear)

static gboolean
host_is_stale(VmView *v, const gchar *host)
{
	const QsimHostRecord *h = g_hash_table_lookup(v->hosts, host);

	return h == NULL || qsim_host_record_is_stale(h, v->now_ms);
}

/* the row the VM's own fields come from */
static const QsimHostVm *
vm_view_primary(VmView *v)
{
	const QsimHostVm *live = NULL;

	for (guint i = 0; i < v->rows->len; i++) {
		const QsimHostVm *r = g_ptr_array_index(v->rows, i);

		if (g_strcmp0(r->host, qsim_host_id_get()) == 0)
			return r;
		if (live == NULL && !host_is_stale(v, r->host))
			live = r;
	}
	return live != NULL ? live : g_ptr_array_index(v->rows, 0);
}

static void
add_template(JsonBuilder *b, VmView *v, const QsimHostVm *r)
{
	const QsimTemplateRecord *row = g_hash_table_lookup(v->templates, r->host);
	const gchar *state = "none";
	gboolean has_files;

	if (row != NULL) {
		state = qsim_template_record_state_to_string(row->state);
		/* a build that never finished: its recovery resets it, meanwhile nothing */
		if (row->state == QSIM_TEMPLATE_RECORD_BUILDING &&
		    row->build_started_at <= v->now_ms - QSIM_STORE_TEMPLATE_BUILD_STALE_MS)
			state = "none";
	}
	has_files = row != NULL && row->state != QSIM_TEMPLATE_RECORD_NONE &&
	            row->state != QSIM_TEMPLATE_RECORD_BUILDING;
	json_builder_set_member_name(b, "template");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "state");
	json_builder_add_string_value(b, state);
	json_builder_set_member_name(b, "size_bytes");
	if (has_files && row->size_bytes > 0)
		json_builder_add_int_value(b, (gint64)row->size_bytes);
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "age_s");
	if (has_files && row->build_finished_at > 0)
		json_builder_add_double_value(b,
		                              MAX(v->now_ms - row->build_finished_at, 0) / 1000.0);
	else
		json_builder_add_null_value(b);
	qsim_api_json_add_timestamp(b, "built_at", has_files ? row->build_finished_at : 0);
	json_builder_set_member_name(b, "build_s");
	if (row != NULL && row->build_finished_at != 0 && row->build_ms > 0)
		json_builder_add_double_value(b, row->build_ms / 1000.0);
	else
		json_builder_add_null_value(b);
	add_string_or_null(b, "reason",
	                   row != NULL && (row->state == QSIM_TEMPLATE_RECORD_STALE ||
	                                   row->state == QSIM_TEMPLATE_RECORD_FAILED)
	                       ? row->reason
	                       : NULL);
	add_string_or_null(b, "qemu_version", has_files ? row->qemu_version : NULL);
	add_string_or_null(b, "machine", has_files ? row->machine : NULL);
	json_builder_set_member_name(b, "prepare_requested");
	json_builder_add_boolean_value(b, row != NULL && row->prepare_requested_at != 0);
	json_builder_end_object(b);
}

static void
add_warm_pool(JsonBuilder *b, guint size, guint parked, guint starting)
{
	json_builder_set_member_name(b, "warm_pool");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "size");
	json_builder_add_int_value(b, size);
	json_builder_set_member_name(b, "parked");
	json_builder_add_int_value(b, parked);
	json_builder_set_member_name(b, "starting");
	json_builder_add_int_value(b, starting);
	json_builder_end_object(b);
}

static void
add_host_row(JsonBuilder *b, VmView *v, const QsimHostVm *r)
{
	const QsimHostRecord *h = g_hash_table_lookup(v->hosts, r->host);
	gboolean kvm = FALSE;
	QsimAccelMode mode = QSIM_ACCEL_MODE_AUTO;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "host");
	json_builder_add_string_value(b, r->host);
	json_builder_set_member_name(b, "stale");
	json_builder_add_boolean_value(b, host_is_stale(v, r->host));
	qsim_api_json_add_timestamp(b, "heartbeat_at", h != NULL ? h->heartbeat_at : 0);
	json_builder_set_member_name(b, "valid");
	json_builder_add_boolean_value(b, r->valid);
	add_string_or_null(b, "error", r->error);
	add_string_or_null(b, "config_hash", r->config_hash);
	add_string_or_null(b, "image_id", r->image_id);
	/* what this VM runs under there: its ACCEL, resolved by that host's probe */
	if (r->accel_mode != NULL)
		qsim_accel_mode_from_string(r->accel_mode, &mode);
	if (mode == QSIM_ACCEL_MODE_KVM)
		kvm = TRUE;
	else if (mode == QSIM_ACCEL_MODE_AUTO)
		kvm = h != NULL && g_strcmp0(h->accel, "kvm") == 0;
	json_builder_set_member_name(b, "accel");
	if (mode == QSIM_ACCEL_MODE_AUTO && (h == NULL || h->accel == NULL))
		json_builder_add_null_value(b);
	else
		json_builder_add_string_value(b, kvm ? "kvm" : "tcg");
	add_template(b, v, r);
	add_warm_pool(b, r->warm_size, r->warm_parked, r->warm_starting);
	json_builder_end_object(b);
}

static void
add_vm(JsonBuilder *b, QsimApiServer *server, VmView *v)
{
	const QsimHostVm *p = vm_view_primary(v);
	guint parked = 0;
	guint starting = 0;

	/* a stale host's VMs are not waiting for anyone */
	for (guint i = 0; i < v->rows->len; i++) {
		const QsimHostVm *r = g_ptr_array_index(v->rows, i);

		if (!host_is_stale(v, r->host)) {
			parked += r->warm_parked;
			starting += r->warm_starting;
		}
	}
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, p->vm_name);
	add_string_or_null(b, "image", p->image);
	add_string_or_null(b, "format", p->format);
	json_builder_set_member_name(b, "size_bytes");
	json_builder_add_int_value(b, (gint64)p->size_bytes);
	add_string_or_null(b, "config", p->config);
	json_builder_set_member_name(b, "valid");
	json_builder_add_boolean_value(b, p->valid);
	add_string_or_null(b, "error", p->error);
	add_template(b, v, p);
	add_warm_pool(b, p->warm_size, parked, starting);
	qsim_api_accel_add(b, server, p);
	json_builder_set_member_name(b, "hosts");
	json_builder_begin_array(b);
	for (guint i = 0; i < v->rows->len; i++)
		add_host_row(b, v, g_ptr_array_index(v->rows, i));
	json_builder_end_array(b);
	json_builder_end_object(b);
}

/* Everything GET /vms needs, read once: hosts, catalogue rows, template rows */
typedef struct {
	GPtrArray *hosts;     /* (element-type QsimHostRecord) */
	GHashTable *by_host;  /* host -> QsimHostRecord (borrowed) */
	GPtrArray *rows;      /* (element-type QsimHostVm) by VM name, then host */
	GPtrArray *templates; /* (element-type QsimTemplateRecord) */
} Catalogue;

static void
catalogue_clear(Catalogue *c)
{
	g_clear_pointer(&c->hosts, g_ptr_array_unref);
	g_clear_pointer(&c->by_host, g_hash_table_unref);
	g_clear_pointer(&c->rows, g_ptr_array_unref);
	g_clear_pointer(&c->templates, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Catalogue, catalogue_clear)

static gboolean
catalogue_load(QsimStore *store, const gchar *vm_name, Catalogue *c, GError **error)
{
	c->hosts = qsim_store_list_hosts(store, error);
	if (c->hosts == NULL)
		return FALSE;
	c->by_host = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < c->hosts->len; i++) {
		QsimHostRecord *h = g_ptr_array_index(c->hosts, i);

		g_hash_table_insert(c->by_host, h->host, h);
	}
	c->rows = qsim_store_list_host_vms(store, vm_name, NULL, error);
	if (c->rows == NULL)
		return FALSE;
	c->templates = qsim_store_list_templates(store, NULL, FALSE, error);
	return c->templates != NULL;
}

/* the rows of the VM starting at @from; @out_next: the index after them */
static void
catalogue_view(Catalogue *c, guint from, gint64 now_ms, VmView *v, guint *out_next)
{
	const QsimHostVm *first = g_ptr_array_index(c->rows, from);
	guint i = from;

	v->rows = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	v->hosts = c->by_host;
	v->templates = g_hash_table_new(g_str_hash, g_str_equal);
	v->now_ms = now_ms;
	for (; i < c->rows->len; i++) {
		const QsimHostVm *r = g_ptr_array_index(c->rows, i);

		if (g_strcmp0(r->vm_name, first->vm_name) != 0)
			break;
		g_ptr_array_add(v->rows, qsim_host_vm_copy(r));
	}
	for (guint t = 0; t < c->templates->len; t++) {
		QsimTemplateRecord *row = g_ptr_array_index(c->templates, t);

		if (g_strcmp0(row->vm_name, first->vm_name) == 0)
			g_hash_table_insert(v->templates, row->host, row);
	}
	*out_next = i;
}

static void
respond_store_error(QsimApiContext *ctx, const GError *error)
{
	g_warning("cannot read the VM catalogue: %s", error->message);
	qsim_api_error_respond(ctx->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal_error",
	                       "The VM catalog cannot be read.");
}

void
qsim_api_vms_list(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(GError) error = NULL;
	g_auto(Catalogue) c = {NULL};
	g_autoptr(JsonBuilder) b = json_builder_new_immutable();
	g_autoptr(JsonNode) root = NULL;
	gint64 now_ms;

	qsim_api_server_refresh_catalogue(ctx->server);
	now_ms = qsim_store_now_ms(store);
	if (!catalogue_load(store, NULL, &c, &error)) {
		respond_store_error(ctx, error);
		return;
	}
	json_builder_begin_array(b);
	for (guint i = 0; i < c.rows->len;) {
		g_auto(VmView) v = {NULL};

		catalogue_view(&c, i, now_ms, &v, &i);
		add_vm(b, ctx->server, &v);
	}
	json_builder_end_array(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}

/* Loads the VM named by the path into @c; FALSE when @ctx was answered (422 bad
 * name, 404 in no host's catalogue, 500 unreadable store) */
static gboolean
resolve_vm(QsimApiContext *ctx, Catalogue *c)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_name_validate(ctx->param, &error)) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return FALSE;
	}
	if (!catalogue_load(store, ctx->param, c, &error)) {
		respond_store_error(ctx, error);
		return FALSE;
	}
	if (c->rows->len == 0) {
		g_set_error(&error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no VM named '%s'",
		            ctx->param);
		qsim_api_error_respond_gerror(ctx->msg, error);
		return FALSE;
	}
	return TRUE;
}

void
qsim_api_vms_get(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	g_auto(Catalogue) c = {NULL};
	g_auto(VmView) v = {NULL};
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;
	guint next = 0;

	qsim_api_server_refresh_catalogue(ctx->server);
	if (!resolve_vm(ctx, &c))
		return;
	catalogue_view(&c, 0, qsim_store_now_ms(store), &v, &next);
	b = json_builder_new_immutable();
	add_vm(b, ctx->server, &v);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}

/* force (`force=true|false`) and host from the query or the optional JSON body;
 * FALSE when @ctx was answered with 400 */
static gboolean
read_prepare_args(QsimApiContext *ctx, gboolean *out_force, gchar **out_host)
{
	SoupMessageBody *body = soup_server_message_get_request_body(ctx->msg);
	const gchar *q = qsim_api_context_get_query(ctx, "force");
	const gchar *qhost = qsim_api_context_get_query(ctx, "host");
	gboolean in_query = FALSE;

	*out_force = FALSE;
	*out_host = NULL;
	if (q != NULL) {
		if (g_strcmp0(q, "true") != 0 && g_strcmp0(q, "false") != 0) {
			qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
			                       "Query parameter 'force' must be true or false.");
			return FALSE;
		}
		*out_force = g_strcmp0(q, "true") == 0;
		in_query = TRUE;
	}
	if (qhost != NULL)
		*out_host = g_strdup(qhost);
	if (body != NULL && body->length > 0) {
		g_autoptr(JsonObject) obj = qsim_api_json_read_object(ctx->msg);
		g_autoptr(GList) members = NULL;
		JsonNode *node;

		if (obj == NULL)
			return FALSE;
		members = json_object_get_members(obj);
		for (GList *it = members; it != NULL; it = it->next) {
			if (g_strcmp0(it->data, "force") != 0 && g_strcmp0(it->data, "host") != 0) {
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
			*out_force = json_node_get_boolean(node);
		}
		node = json_object_get_member(obj, "host");
		if (node != NULL) {
			if (JSON_NODE_TYPE(node) != JSON_NODE_VALUE ||
			    json_node_get_value_type(node) != G_TYPE_STRING) {
				qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST,
				                       "bad_request",
				                       "Field 'host' must be a string.");
				return FALSE;
			}
			if (*out_host != NULL) {
				qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST,
				                       "bad_request",
				                       "Give 'host' in the query or in the body, "
				                       "not both.");
				return FALSE;
			}
			*out_host = g_strdup(json_node_get_string(node));
		}
	}
	if (*out_host != NULL && !qsim_host_id_validate(*out_host, NULL)) {
		g_autofree gchar *shown = qsim_utf8_safe_dup(*out_host, -1, 64);

		qsim_api_error_respond(ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		                       "'%s' is not a host id.", shown);
		g_clear_pointer(out_host, g_free);
		return FALSE;
	}
	return TRUE;
}

typedef struct {
	QsimApiServer *server;
	gchar *vm_name;
	GStrv hosts; /* where the template is wanted */
	gboolean force;
} PrepareJob;

static void
prepare_job_free(PrepareJob *j)
{
	g_object_unref(j->server);
	g_free(j->vm_name);
	g_strfreev(j->hosts);
	g_free(j);
}

static gboolean
prepare_write(QsimStore *store, gpointer data, GError **error)
{
	PrepareJob *j = data;

	/* each host's agents pick up their own row; a failure leaves the others asked */
	for (guint i = 0; j->hosts[i] != NULL; i++) {
		g_autoptr(QsimTemplateRecord) row =
		    qsim_store_request_prepare(store, j->vm_name, j->hosts[i], j->force, error);

		if (row == NULL)
			return FALSE;
	}
	return TRUE;
}

static void
prepare_done(SoupServerMessage *msg, QsimStore *server_store, gboolean offloaded, gpointer data,
             const GError *error)
{
	PrepareJob *j = data;
	QsimStore *store = qsim_api_server_get_store(j->server);
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(GError) local = NULL;
	g_auto(Catalogue) c = {NULL};
	g_auto(VmView) v = {NULL};
	guint next = 0;

	/* the agents of `qsimd all` pick the request up from this signal at once */
	for (guint i = 0; offloaded && error == NULL && j->hosts[i] != NULL; i++)
		g_signal_emit_by_name(server_store, "template-changed", j->vm_name, j->hosts[i]);
	if (msg == NULL)
		return;
	if (error != NULL) {
		qsim_api_error_respond_gerror(msg, error);
		return;
	}
	if (!catalogue_load(store, j->vm_name, &c, &local) || c.rows->len == 0) {
		qsim_api_error_respond(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal_error",
		                       "The VM catalog cannot be read.");
		return;
	}
	catalogue_view(&c, 0, qsim_store_now_ms(store), &v, &next);
	b = json_builder_new_immutable();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, j->vm_name);
	json_builder_set_member_name(b, "force");
	json_builder_add_boolean_value(b, j->force);
	json_builder_set_member_name(b, "hosts");
	json_builder_begin_array(b);
	for (guint i = 0; j->hosts[i] != NULL; i++)
		json_builder_add_string_value(b, j->hosts[i]);
	json_builder_end_array(b);
	add_template(b, &v, vm_view_primary(&v));
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(msg, SOUP_STATUS_ACCEPTED, root);
}

/* the hosts a prepare asks: @host if given (it must have the VM), else every live host
 * whose catalogue has it valid (every such host when none is live) */
static GStrv
prepare_hosts(QsimApiContext *ctx, Catalogue *c, const gchar *host)
{
	g_autoptr(GStrvBuilder) live = g_strv_builder_new();
	g_autoptr(GStrvBuilder) all = g_strv_builder_new();
	gint64 now_ms = qsim_store_now_ms(qsim_api_server_get_store(ctx->server));
	const QsimHostVm *invalid = NULL;
	guint n_live = 0;
	guint n_all = 0;

	for (guint i = 0; i < c->rows->len; i++) {
		const QsimHostVm *r = g_ptr_array_index(c->rows, i);
		const QsimHostRecord *h = g_hash_table_lookup(c->by_host, r->host);

		if (host != NULL && g_strcmp0(r->host, host) != 0)
			continue;
		if (!r->valid) {
			invalid = r;
			continue;
		}
		g_strv_builder_add(all, r->host);
		n_all++;
		if (h != NULL && !qsim_host_record_is_stale(h, now_ms)) {
			g_strv_builder_add(live, r->host);
			n_live++;
		}
	}
	if (n_all > 0)
		return n_live > 0 ? g_strv_builder_end(live) : g_strv_builder_end(all);
	if (invalid != NULL) {
		qsim_api_error_respond(ctx->msg, SOUP_STATUS_CONFLICT, "conflict",
		                       "VM '%s' cannot have a template: its configuration is "
		                       "invalid: %s",
		                       invalid->vm_name,
		                       invalid->error != NULL ? invalid->error : "unknown error");
		return NULL;
	}
	qsim_api_error_respond(ctx->msg, SOUP_STATUS_NOT_FOUND, "not_found",
	                       "Host '%s' has no VM named '%s'.", host, ctx->param);
	return NULL;
}

void
qsim_api_vms_prepare(QsimApiContext *ctx)
{
	g_auto(Catalogue) c = {NULL};
	g_autofree gchar *host = NULL;
	g_auto(GStrv) hosts = NULL;
	PrepareJob *j;
	gboolean force = FALSE;

	if (!resolve_vm(ctx, &c) || !read_prepare_args(ctx, &force, &host))
		return;
	hosts = prepare_hosts(ctx, &c, host);
	if (hosts == NULL)
		return;
	j = g_new0(PrepareJob, 1);
	j->server = g_object_ref(ctx->server);
	j->vm_name = g_strdup(ctx->param);
	j->hosts = g_steal_pointer(&hosts);
	j->force = force;
	/* BEGIN IMMEDIATE may wait for the write lock: never on the main loop */
	qsim_api_offload_write(ctx, prepare_write, prepare_done, j,
	                       (GDestroyNotify)prepare_job_free);
}
