#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "api-fixture.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-catalog.h"
#include "common/qsim-vm-config.h"
#include "store/qsim-store-hosts.h"

static void add_printf(GStrvBuilder *b, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static void
add_printf(GStrvBuilder *b, const gchar *format, ...)
{
	g_autofree gchar *s = NULL;
	va_list args;

	va_start(args, format);
	s = g_strdup_vprintf(format, args);
	va_end(args);
	g_strv_builder_add(b, s);
}

/* A hang guard for waits, never a measurement: generous on a loaded box. */
#define WAIT_LIMIT_S 60

/**
 * api_fixture_make_config:
 * @extra_env: (nullable): NAME=value pairs added to the test environment
 *
 * Returns: (transfer full): a config whose every path is inside @tmpdir,
 * read from a private environment so the developer's own settings never leak in
 */
QsimConfig *
api_fixture_make_config(const gchar *tmpdir, const gchar *const *extra_env)
{
	g_autoptr(QsimConfig) config = qsim_config_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_auto(GStrv) envp = NULL;
	g_autofree gchar *db = g_build_filename(tmpdir, "qsim.db", NULL);
	g_autofree gchar *images = g_build_filename(tmpdir, "images", NULL);
	g_autofree gchar *configs = g_build_filename(tmpdir, "configs", NULL);

	add_printf(b, "QSIM_DB_PATH=%s", db);
	add_printf(b, "QSIM_VM_IMAGES_DIR=%s", images);
	add_printf(b, "QSIM_VM_CONFIG_DIR=%s", configs);
	add_printf(b, "XDG_CONFIG_HOME=%s", tmpdir);
	add_printf(b, "HOME=%s", tmpdir);
	g_strv_builder_add(b, "QSIM_API_HOST=127.0.0.1");
	g_strv_builder_add(b, "QSIM_MAX_TIMEOUT=3600");
	g_strv_builder_add(b, "QSIM_DEFAULT_TIMEOUT=300");
	/* the host's free space must not decide the tests; the disk tests set their own */
	g_strv_builder_add(b, "QSIM_MIN_FREE_DISK=0");
	for (guint i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
		g_strv_builder_add(b, extra_env[i]);
	envp = g_strv_builder_end(b);
	g_assert_true(qsim_config_load(config, NULL, envp, tmpdir, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&config);
}

void
api_fixture_publish(ApiFixture *fx)
{
	static const gchar *const no_agents[] = {NULL};
	g_autoptr(QsimHostRecord) host = qsim_host_record_new(qsim_host_id_get());
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	g_autoptr(GError) error = NULL;

	host->version = g_strdup("test");
	/* an agent that beats at least once a minute, as far as these tests go */
	host->stale_after_ms = 3600 * 1000;
	g_strfreev(host->agent_ids);
	host->agent_ids = g_strdupv((gchar **)no_agents);
	entries = qsim_vm_catalog_list(qsim_config_get_vm_images_dir(fx->config),
	                               qsim_config_get_vm_config_dir(fx->config), &error);
	g_assert_no_error(error);
	for (guint i = 0; i < entries->len; i++) {
		const QsimVmCatalogEntry *e = g_ptr_array_index(entries, i);
		QsimHostVm *v = qsim_host_vm_new(host->host, e->name);
		g_autoptr(QsimVmConfig) vmc = NULL;

		v->valid = e->valid;
		v->error = g_strdup(e->error);
		v->image = e->image_path != NULL ? g_path_get_basename(e->image_path) : NULL;
		v->format = g_strdup(e->format);
		v->size_bytes = e->size_bytes;
		v->config = e->config_path != NULL ? g_path_get_basename(e->config_path) : NULL;
		if (e->valid)
			vmc = qsim_vm_config_load(qsim_config_get_vm_images_dir(fx->config),
			                          qsim_config_get_vm_config_dir(fx->config),
			                          e->name, NULL);
		if (vmc != NULL)
			v->warm_size = vmc->warm_pool_size;
		g_ptr_array_add(vms, v);
	}
	g_assert_true(qsim_store_publish_host(fx->store, host, vms, &error));
	g_assert_no_error(error);
}

void
api_fixture_setup(ApiFixture *fx, gconstpointer user_data)
{
	const ApiFixtureOptions *opts = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GStrvBuilder) env = g_strv_builder_new();
	g_auto(GStrv) extra = NULL;
	g_autofree gchar *images = NULL;
	g_autofree gchar *configs = NULL;
	g_autofree gchar *image = NULL;
	g_autofree gchar *db = NULL;

	fx->tmpdir = g_dir_make_tmp("qsim-api-XXXXXX", &error);
	g_assert_no_error(error);
	images = g_build_filename(fx->tmpdir, "images", NULL);
	configs = g_build_filename(fx->tmpdir, "configs", NULL);
	g_assert_cmpint(g_mkdir(images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(configs, 0700), ==, 0);
	/* the catalog only needs the file to exist: submit validation never boots it */
	image = g_build_filename(images, "tiny.qcow2", NULL);
	g_assert_true(g_file_set_contents(image, "QFI\xfb", 4, &error));
	if (opts != NULL && opts->tokens != NULL)
		add_printf(env, "QSIM_API_TOKENS=%s", opts->tokens);
	if (opts != NULL && opts->origins != NULL) {
		g_strv_builder_add(env, "QSIM_ENABLE_CORS=true");
		add_printf(env, "QSIM_ALLOWED_ORIGINS=%s", opts->origins);
	}
	if (opts != NULL && opts->env != NULL)
		g_strv_builder_addv(env, (const gchar **)opts->env);
	extra = g_strv_builder_end(env);
	fx->config = api_fixture_make_config(fx->tmpdir, (const gchar *const *)extra);
	db = g_build_filename(fx->tmpdir, "qsim.db", NULL);
	if (opts != NULL && opts->store_type != 0)
		fx->store = g_object_new(opts->store_type, NULL);
	else
		fx->store = qsim_store_open(db, &error);
	g_assert_no_error(error);
	/* what an agent on this host would have published: the API reads only the store */
	if (opts == NULL || opts->store_type == 0)
		api_fixture_publish(fx);
	fx->server = qsim_api_server_new(fx->config, fx->store);
	/* POST goes through the writer thread, as in qsimd, whenever the store is real */
	if (opts == NULL || (opts->store_type == 0 && !opts->no_writer))
		g_assert_true(qsim_api_server_enable_writer(fx->server, &error));
	qsim_api_server_set_port(fx->server, 0);
	/* short intervals keep the stream tests quick; they never assert timing */
	qsim_api_server_set_stream_intervals(fx->server, 300, 50);
	g_assert_true(qsim_api_server_listen(fx->server, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_api_server_get_port(fx->server), >, 0);
	fx->base = g_strdup_printf("http://127.0.0.1:%u", qsim_api_server_get_port(fx->server));
	/* no proxy resolver: the server is on loopback, and libproxy's lookup
	 * threads outlive the test and show up as leaks under valgrind */
	fx->session = soup_session_new_with_options("timeout", 60, "proxy-resolver", NULL, NULL);
}

static void
remove_tree(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR))
			remove_tree(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

void
api_fixture_teardown(ApiFixture *fx, gconstpointer user_data)
{
	g_clear_object(&fx->session);
	qsim_api_server_stop(fx->server);
	/* let libsoup finish closing connections before the objects go */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_clear_object(&fx->server);
	g_clear_object(&fx->store);
	g_clear_object(&fx->config);
	remove_tree(fx->tmpdir);
	g_free(fx->tmpdir);
	g_free(fx->base);
}

static gboolean
wait_expired(gpointer data)
{
	g_error("a test wait took more than %d s", WAIT_LIMIT_S);
	return G_SOURCE_REMOVE;
}

/**
 * api_wait_until:
 *
 * Runs the main loop (the server lives on it) until @cond holds.
 */
void
api_wait_until(gboolean (*cond)(gpointer), gpointer data)
{
	guint guard = g_timeout_add_seconds(WAIT_LIMIT_S, wait_expired, NULL);

	while (!cond(data))
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(guard);
}

typedef struct {
	GBytes *body;
	GError *error;
	gboolean done;
} SendState;

static void
send_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SendState *st = user_data;

	st->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &st->error);
	st->done = TRUE;
}

static gboolean
send_is_done(gpointer data)
{
	return ((SendState *)data)->done;
}

/**
 * api_request:
 * @content_type: (nullable): with @body, the request's Content-Type
 * @body: (nullable): the request body
 * @...: header name/value pairs, then %NULL
 *
 * Sends one request over real HTTP, running the loop meanwhile.
 *
 * Returns: (transfer full): the response
 */
ApiResponse *
api_request(ApiFixture *fx, const gchar *method, const gchar *path, const gchar *content_type,
            const gchar *body, ...)
{
	g_autofree gchar *uri = g_strconcat(fx->base, path, NULL);
	g_autoptr(SoupMessage) msg = soup_message_new(method, uri);
	SoupMessageHeaders *h;
	SendState st = {0};
	ApiResponse *r = g_new0(ApiResponse, 1);
	const gchar *name;
	va_list args;

	g_assert_nonnull(msg);
	h = soup_message_get_request_headers(msg);
	if (body != NULL) {
		g_autoptr(GBytes) bytes = g_bytes_new(body, strlen(body));
		soup_message_set_request_body_from_bytes(msg, content_type, bytes);
	}
	va_start(args, body);
	while ((name = va_arg(args, const gchar *)) != NULL)
		soup_message_headers_replace(h, name, va_arg(args, const gchar *));
	va_end(args);
	soup_session_send_and_read_async(fx->session, msg, G_PRIORITY_DEFAULT, NULL, send_done,
	                                 &st);
	api_wait_until(send_is_done, &st);
	g_assert_no_error(st.error);
	r->status = soup_message_get_status(msg);
	r->headers = soup_message_headers_ref(soup_message_get_response_headers(msg));
	r->body = st.body;
	if (g_strcmp0(soup_message_headers_get_content_type(r->headers, NULL),
	              "application/json") == 0 &&
	    g_bytes_get_size(r->body) > 0) {
		g_autoptr(JsonParser) parser = json_parser_new();
		gsize len = 0;
		gconstpointer data = g_bytes_get_data(r->body, &len);
		g_autoptr(GError) error = NULL;

		g_assert_true(json_parser_load_from_data(parser, data, (gssize)len, &error));
		r->json = json_parser_steal_root(parser);
	}
	return r;
}

void
api_response_free(ApiResponse *r)
{
	if (r == NULL)
		return;
	soup_message_headers_unref(r->headers);
	g_bytes_unref(r->body);
	if (r->json != NULL)
		json_node_unref(r->json);
	g_free(r);
}

const gchar *
api_response_header(ApiResponse *r, const gchar *name)
{
	return soup_message_headers_get_one(r->headers, name);
}

/* Returns: (transfer none): error.code of a JSON error, asserting the shape */
const gchar *
api_response_error_code(ApiResponse *r)
{
	JsonObject *err;

	g_assert_nonnull(r->json);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(r->json));
	err = json_object_get_object_member(json_node_get_object(r->json), "error");
	g_assert_nonnull(err);
	g_assert_cmpuint(json_object_get_size(err), ==, 2);
	g_assert_nonnull(json_object_get_string_member(err, "message"));
	return json_object_get_string_member(err, "code");
}

const gchar *
api_response_string(ApiResponse *r, const gchar *member)
{
	g_assert_nonnull(r->json);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(r->json));
	return json_object_get_string_member_with_default(json_node_get_object(r->json), member,
	                                                  NULL);
}

/* Returns: (transfer full): the uuid of a new pending request on "tiny" */
gchar *
api_submit(ApiFixture *fx, const gchar *commands)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *body = NULL;
	g_autoptr(ApiResponse) r = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "vm_name");
	json_builder_add_string_value(b, "tiny");
	json_builder_set_member_name(b, "commands");
	json_builder_add_string_value(b, commands);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	body = json_to_string(root, FALSE);
	r = api_request(fx, "POST", "/requests", "application/json", body, NULL);
	g_assert_cmpuint(r->status, ==, 201);
	return g_strdup(api_response_string(r, "uuid"));
}
