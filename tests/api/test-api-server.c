#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "api-fixture.h"
#include "api/qsim-api-routes.h"
#include "api/qsim-api-writer.h"
#include "common/qsim-error.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-hosts.h"
#include "common/qsim-layout.h"

#define JSON "application/json"

static JsonObject *
obj(ApiResponse *r)
{
	g_assert_nonnull(r->json);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(r->json));
	return json_node_get_object(r->json);
}

static JsonArray *
arr(ApiResponse *r)
{
	g_assert_nonnull(r->json);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(r->json));
	return json_node_get_array(r->json);
}

static void
assert_timestamp(const gchar *ts)
{
	g_autoptr(GRegex) re =
	    g_regex_new("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$", 0, 0, NULL);

	g_assert_nonnull(ts);
	g_assert_true(g_regex_match(re, ts, 0, NULL));
}

static void
assert_error(ApiResponse *r, guint status, const gchar *code)
{
	g_assert_cmpuint(r->status, ==, status);
	g_assert_cmpstr(api_response_error_code(r), ==, code);
}

static void
test_health(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_autoptr(ApiResponse) head = NULL;

	g_assert_cmpuint(r->status, ==, 200);
	g_assert_cmpstr(api_response_string(r, "status"), ==, "ok");
	g_assert_cmpstr(api_response_string(r, "database"), ==, "ok");
	g_assert_cmpstr(api_response_string(r, "version"), ==, PACKAGE_VERSION);
	g_assert_cmpint(json_object_get_int_member(obj(r), "schema_version"), ==,
	                qsim_store_get_current_schema_version());
	{
		/* the accelerator: the setting, its source, and each host's stored verdict */
		JsonObject *accel = json_object_get_object_member(obj(r), "accelerator");
		g_autoptr(QsimAccelVerdict) v = qsim_accel_verdict_new(
		    "host-z", "v1:k", FALSE,
		    "KVM at /dev/kvm did not boot a test kernel within 5.0 s", 5001, 1000);
		g_autoptr(ApiResponse) again = NULL;
		g_autoptr(GError) error = NULL;
		JsonObject *host;

		g_assert_nonnull(accel);
		g_assert_cmpstr(json_object_get_string_member(accel, "setting"), ==, "auto");
		g_assert_cmpstr(json_object_get_string_member(accel, "source"), ==, "default");
		g_assert_cmpuint(
		    json_array_get_length(json_object_get_array_member(accel, "hosts")), ==, 0);
		g_assert_true(qsim_store_put_accel_verdict(fx->store, v, &error));
		g_assert_no_error(error);
		again = api_request(fx, "GET", "/health", NULL, NULL, NULL);
		accel = json_object_get_object_member(obj(again), "accelerator");
		host =
		    json_array_get_object_element(json_object_get_array_member(accel, "hosts"), 0);
		g_assert_cmpstr(json_object_get_string_member(host, "host"), ==, "host-z");
		g_assert_cmpstr(json_object_get_string_member(host, "accel"), ==, "tcg");
		g_assert_false(json_object_get_boolean_member(host, "kvm_works"));
		g_assert_cmpstr(json_object_get_string_member(host, "probe"), ==, v->reason);
	}
	head = api_request(fx, "HEAD", "/health", NULL, NULL, NULL);
	g_assert_cmpuint(head->status, ==, 200);
	g_assert_cmpuint(g_bytes_get_size(head->body), ==, 0);
}

static void
count_changed(QsimStore *store, const gchar *uuid, gint status, gpointer user_data)
{
	(*(guint *)user_data)++;
}

static void
test_create_and_get(ApiFixture *fx, gconstpointer data)
{
	guint changed = 0;
	gulong changed_id =
	    g_signal_connect(fx->store, "request-changed", G_CALLBACK(count_changed), &changed);
	g_autoptr(ApiResponse) r = NULL;
	g_autoptr(ApiResponse) g = NULL;
	g_autoptr(ApiResponse) p = NULL;
	g_autofree gchar *path = NULL;
	g_autofree gchar *prefix_path = NULL;
	g_autofree gchar *uuid = NULL;
	JsonObject *o;

	r = api_request(fx, "POST", "/requests", JSON,
	                "{\"vm_name\":\"tiny\",\"commands\":\"echo hi\",\"timeout\":42}", NULL);
	g_assert_cmpuint(r->status, ==, 201);
	/* in-process listeners (agents in `qsimd all`) hear of it whichever path inserted it */
	g_assert_cmpuint(changed, ==, 1);
	g_signal_handler_disconnect(fx->store, changed_id);
	uuid = g_strdup(api_response_string(r, "uuid"));
	g_assert_true(g_uuid_string_is_valid(uuid));
	g_assert_cmpstr(api_response_string(r, "status"), ==, "pending");
	g_assert_cmpstr(api_response_string(r, "message"), ==, "Request created successfully");
	path = g_strdup_printf("/requests/%s", uuid);
	g_assert_cmpstr(api_response_header(r, "Location"), ==, path);

	g = api_request(fx, "GET", path, NULL, NULL, NULL);
	g_assert_cmpuint(g->status, ==, 200);
	o = obj(g);
	g_assert_cmpstr(json_object_get_string_member(o, "uuid"), ==, uuid);
	g_assert_cmpstr(json_object_get_string_member(o, "vm_name"), ==, "tiny");
	g_assert_cmpstr(json_object_get_string_member(o, "commands"), ==, "echo hi");
	g_assert_cmpint(json_object_get_int_member(o, "timeout"), ==, 42);
	g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "pending");
	assert_timestamp(json_object_get_string_member(o, "created_at"));
	assert_timestamp(json_object_get_string_member(o, "updated_at"));
	g_assert_true(json_object_get_null_member(o, "started_at"));
	g_assert_true(json_object_get_null_member(o, "finished_at"));
	g_assert_true(json_object_get_null_member(o, "exit_code"));
	g_assert_true(json_object_get_null_member(o, "error"));
	g_assert_true(json_object_get_null_member(o, "agent_id"));
	g_assert_cmpint(json_object_get_int_member(o, "attempts"), ==, 0);
	g_assert_true(json_object_get_null_member(o, "start_mode"));
	g_assert_false(json_object_get_boolean_member(o, "output_truncated"));
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(o, "artifacts")), ==,
	                 0);
	g_assert_cmpuint(json_object_get_size(o), ==, 16);

	/* a unique 8-character prefix resolves, in upper case too */
	prefix_path = g_strdup_printf("/requests/%.8s", uuid);
	p = api_request(fx, "GET", prefix_path, NULL, NULL, NULL);
	g_assert_cmpuint(p->status, ==, 200);
	g_assert_cmpstr(api_response_string(p, "uuid"), ==, uuid);
}

typedef struct {
	SoupMessage *msg;
	GBytes *body;
	GError *error;
	gboolean done;
} ConcurrentPost;

typedef struct {
	ConcurrentPost *posts;
	guint n;
	guint done;
} ConcurrentRun;

static void
concurrent_post_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ConcurrentPost *p = user_data;

	p->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &p->error);
	p->done = TRUE;
}

static gboolean
concurrent_all_done(gpointer data)
{
	ConcurrentRun *run = data;

	while (run->done < run->n && run->posts[run->done].done)
		run->done++;
	return run->done == run->n;
}

/*
 * Many POSTs in flight at once go through the writer's group commit: every
 * valid one gets its own 201 and its own row, every invalid one its 422, and
 * the main store announces each new request to in-process listeners.
 */
static void
test_create_concurrent(ApiFixture *fx, gconstpointer data)
{
	enum { N = 300, CONNECTIONS = 48 };
	g_autoptr(SoupSession) session = soup_session_new_with_options(
	    "timeout", 60, "max-conns", CONNECTIONS, "max-conns-per-host", CONNECTIONS,
	    "proxy-resolver", NULL, NULL);
	g_autofree ConcurrentPost *posts = g_new0(ConcurrentPost, N);
	ConcurrentRun run = {posts, N, 0};
	g_autoptr(GHashTable) uuids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) rows = NULL;
	g_autoptr(GError) error = NULL;
	QsimRequestFilter filter;
	guint changed = 0, created = 0, batches = 0, handled = 0;
	gulong changed_id =
	    g_signal_connect(fx->store, "request-changed", G_CALLBACK(count_changed), &changed);

	for (guint i = 0; i < N; i++) {
		g_autofree gchar *uri = g_strconcat(fx->base, "/requests", NULL);
		/* every 25th is refused by the handler before it reaches the writer */
		g_autofree gchar *body = g_strdup_printf(
		    "{\"vm_name\":\"tiny\",\"commands\":\"echo %u\",\"timeout\":%u}", i,
		    i % 25 == 7 ? 0 : 1 + i % 100);
		g_autoptr(GBytes) bytes = g_bytes_new_take(g_steal_pointer(&body), strlen(body));

		posts[i].msg = soup_message_new("POST", uri);
		soup_message_set_request_body_from_bytes(posts[i].msg, JSON, bytes);
		soup_session_send_and_read_async(session, posts[i].msg, G_PRIORITY_DEFAULT, NULL,
		                                 concurrent_post_done, &posts[i]);
	}
	api_wait_until(concurrent_all_done, &run);
	g_signal_handler_disconnect(fx->store, changed_id);

	for (guint i = 0; i < N; i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		gsize len = 0;
		const gchar *text;
		JsonObject *o;

		g_assert_no_error(posts[i].error);
		text = g_bytes_get_data(posts[i].body, &len);
		g_assert_true(json_parser_load_from_data(parser, text, (gssize)len, &error));
		g_assert_no_error(error);
		o = json_node_get_object(json_parser_get_root(parser));
		if (i % 25 == 7) {
			g_assert_cmpuint(soup_message_get_status(posts[i].msg), ==, 422);
		} else {
			g_autoptr(QsimRequest) r = NULL;
			g_autofree gchar *cmd = g_strdup_printf("echo %u", i);
			const gchar *uuid = json_object_get_string_member(o, "uuid");

			g_assert_cmpuint(soup_message_get_status(posts[i].msg), ==, 201);
			g_assert_true(g_uuid_string_is_valid(uuid));
			g_assert_true(g_hash_table_add(uuids, g_strdup(uuid)));
			/* the row is there, through the server's own connection, as submitted */
			r = qsim_store_get_request(fx->store, uuid, 36, &error);
			g_assert_no_error(error);
			g_assert_cmpstr(r->commands, ==, cmd);
			g_assert_cmpint(r->timeout_s, ==, 1 + i % 100);
			created++;
		}
		g_bytes_unref(posts[i].body);
		g_object_unref(posts[i].msg);
	}
	g_assert_cmpuint(created, ==, N - N / 25);
	g_assert_cmpuint(changed, ==, created);
	qsim_request_filter_init(&filter);
	filter.limit = 1000;
	rows = qsim_store_list_requests(fx->store, &filter, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(rows->len, ==, created);
	qsim_api_writer_get_counts(qsim_api_server_get_writer(fx->server), &batches, &handled);
	g_assert_cmpuint(handled, ==, created);
	g_assert_cmpuint(batches, >=, 1);
	g_assert_cmpuint(batches, <=, handled);
	g_test_message("%u requests committed in %u transactions", handled, batches);
}

static void
test_default_timeout(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);
	g_autoptr(ApiResponse) g = api_request(fx, "GET", path, NULL, NULL, NULL);

	g_assert_cmpint(json_object_get_int_member(obj(g), "timeout"), ==, 300);
}

/* Every way a submit can be refused, with the field its message must name. */
static void
test_create_validation(ApiFixture *fx, gconstpointer data)
{
	const struct {
		const gchar *body;
		guint status;
		const gchar *code;
		const gchar *mentions;
	} cases[] = {
	    {"{\"commands\":\"x\"}", 422, "validation_error", "vm_name"},
	    {"{\"vm_name\":5,\"commands\":\"x\"}", 422, "validation_error", "vm_name"},
	    {"{\"vm_name\":\"../etc\",\"commands\":\"x\"}", 422, "validation_error", "vm_name"},
	    {"{\"vm_name\":\"nosuchvm\",\"commands\":\"x\"}", 422, "validation_error", "vm_name"},
	    {"{\"vm_name\":\"tiny\"}", 422, "validation_error", "commands"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"\"}", 422, "validation_error", "commands"},
	    {"{\"vm_name\":\"tiny\",\"commands\":[\"ls\"]}", 422, "validation_error", "commands"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"x\",\"timeout\":\"300\"}", 422,
	     "validation_error", "timeout"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"x\",\"timeout\":0}", 422, "validation_error",
	     "timeout"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"x\",\"timeout\":-5}", 422, "validation_error",
	     "timeout"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"x\",\"timeout\":3601}", 422, "validation_error",
	     "timeout"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"x\",\"timeout\":1.5}", 422, "validation_error",
	     "timeout"},
	    {"[1,2]", 422, "validation_error", "object"},
	    {"{\"vm_name\":\"tiny\",", 400, "bad_request", "JSON"},
	    {"", 400, "bad_request", "JSON"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/requests", JSON, cases[i].body, NULL);
		JsonObject *err;

		g_test_message("case %u: %s", i, cases[i].body);
		assert_error(r, cases[i].status, cases[i].code);
		err = json_object_get_object_member(obj(r), "error");
		g_assert_nonnull(
		    strstr(json_object_get_string_member(err, "message"), cases[i].mentions));
	}
}

static gchar *run_curl(const gchar *const *argv);

static void
test_media_type_and_size(ApiFixture *fx, gconstpointer data)
{
	const gchar *ok = "{\"vm_name\":\"tiny\",\"commands\":\"x\"}";
	g_autoptr(ApiResponse) plain = api_request(fx, "POST", "/requests", "text/plain", ok, NULL);
	g_autoptr(ApiResponse) form =
	    api_request(fx, "POST", "/requests", "application/x-www-form-urlencoded", ok, NULL);
	g_autoptr(ApiResponse) charset =
	    api_request(fx, "POST", "/requests", "application/json; charset=utf-8", ok, NULL);
	g_autoptr(ApiResponse) big = NULL;
	g_autoptr(ApiResponse) after = NULL;
	g_autoptr(GString) huge = g_string_new("{\"vm_name\":\"tiny\",\"commands\":\"");

	assert_error(plain, 415, "unsupported_media_type");
	assert_error(form, 415, "unsupported_media_type");
	g_assert_cmpuint(charset->status, ==, 201);
	while (huge->len <= 1024 * 1024 + 16)
		g_string_append(huge, "echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaa; ");
	g_string_append(huge, "\"}");
	big = api_request(fx, "POST", "/requests", JSON, huge->str, NULL);
	assert_error(big, 413, "payload_too_large");
	/* a chunked upload has no Content-Length: the size is checked once read */
	{
		g_autofree gchar *file = g_build_filename(fx->tmpdir, "big.json", NULL);
		g_autofree gchar *url = g_strconcat(fx->base, "/requests", NULL);
		g_autofree gchar *at_file = g_strconcat("@", file, NULL);
		const gchar *argv[] = {"curl",
		                       "-s",
		                       "-o",
		                       "/dev/null",
		                       "-w",
		                       "%{http_code}",
		                       "-H",
		                       "Content-Type: application/json",
		                       "-H",
		                       "Transfer-Encoding: chunked",
		                       "--data-binary",
		                       at_file,
		                       url,
		                       NULL};
		g_autofree gchar *code = NULL;

		g_assert_true(g_file_set_contents(file, huge->str, (gssize)huge->len, NULL));
		code = run_curl(argv);
		g_assert_cmpstr(code, ==, "413");
	}
	/* the server is still fine afterwards */
	after = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_assert_cmpuint(after->status, ==, 200);
}

static void
test_list(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(ApiResponse) page1 = NULL;
	g_autoptr(ApiResponse) page2 = NULL;
	g_autoptr(ApiResponse) all = NULL;
	g_autoptr(ApiResponse) held = NULL;
	g_autoptr(ApiResponse) none = NULL;
	g_autoptr(QsimRequest) h = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *next = NULL;
	const gchar *link;
	const gchar *start;

	for (guint i = 0; i < 5; i++)
		g_ptr_array_add(uuids, api_submit(fx, "true"));
	all = api_request(fx, "GET", "/requests", NULL, NULL, NULL);
	g_assert_cmpuint(all->status, ==, 200);
	g_assert_cmpuint(json_array_get_length(arr(all)), ==, 5);
	g_assert_null(api_response_header(all, "Link"));
	/* newest first */
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(arr(all), 0), "uuid"), ==,
	    uuids->pdata[4]);

	page1 = api_request(fx, "GET", "/requests?limit=3", NULL, NULL, NULL);
	g_assert_cmpuint(json_array_get_length(arr(page1)), ==, 3);
	link = api_response_header(page1, "Link");
	g_assert_nonnull(link);
	g_assert_nonnull(strstr(link, "rel=\"next\""));
	start = strchr(link, '<');
	next = g_strndup(start + 1, strchr(link, '>') - start - 1);
	g_assert_nonnull(strstr(next, uuids->pdata[2]));
	page2 = api_request(fx, "GET", next, NULL, NULL, NULL);
	g_assert_cmpuint(page2->status, ==, 200);
	g_assert_cmpuint(json_array_get_length(arr(page2)), ==, 2);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(arr(page2), 1), "uuid"), ==,
	    uuids->pdata[0]);
	g_assert_null(api_response_header(page2, "Link"));

	h = qsim_store_set_status(fx->store, uuids->pdata[1], QSIM_STATUS_HOLD, &error);
	g_assert_no_error(error);
	held = api_request(fx, "GET", "/requests?status=hold&vm_name=tiny", NULL, NULL, NULL);
	g_assert_cmpuint(json_array_get_length(arr(held)), ==, 1);
	none = api_request(fx, "GET", "/requests?vm_name=other", NULL, NULL, NULL);
	g_assert_cmpuint(json_array_get_length(arr(none)), ==, 0);
}

static void
test_bad_query(ApiFixture *fx, gconstpointer data)
{
	const gchar *paths[] = {
	    "/requests?status=bogus",
	    "/requests?limit=0",
	    "/requests?limit=1001",
	    "/requests?limit=ten",
	    "/requests?before=123e4567-e89b-42d3-a456-426614174000",
	};

	for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
		g_autoptr(ApiResponse) r = api_request(fx, "GET", paths[i], NULL, NULL, NULL);
		g_test_message("%s", paths[i]);
		assert_error(r, 400, "bad_request");
	}
}

static void
test_not_found_and_methods(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) nopath = api_request(fx, "GET", "/nothing", NULL, NULL, NULL);
	g_autoptr(ApiResponse) noreq = api_request(
	    fx, "GET", "/requests/123e4567-e89b-42d3-a456-426614174000", NULL, NULL, NULL);
	g_autoptr(ApiResponse) nologs = api_request(
	    fx, "GET", "/requests/123e4567-e89b-42d3-a456-426614174000/logs", NULL, NULL, NULL);
	g_autoptr(ApiResponse) shortid = api_request(fx, "GET", "/requests/abc", NULL, NULL, NULL);
	g_autoptr(ApiResponse) notid =
	    api_request(fx, "GET", "/requests/zzzzzzzzzz", NULL, NULL, NULL);
	g_autoptr(ApiResponse) patch = api_request(fx, "PATCH", "/requests", JSON, "{}", NULL);
	g_autoptr(ApiResponse) posth = api_request(fx, "POST", "/health", JSON, "{}", NULL);
	g_autoptr(ApiResponse) options = api_request(fx, "OPTIONS", "/requests", NULL, NULL, NULL);
	g_autoptr(ApiResponse) slash = api_request(fx, "GET", "/requests/", NULL, NULL, NULL);

	assert_error(nopath, 404, "not_found");
	assert_error(noreq, 404, "not_found");
	assert_error(nologs, 404, "not_found");
	assert_error(shortid, 400, "bad_request");
	assert_error(notid, 400, "bad_request");
	assert_error(patch, 405, "method_not_allowed");
	g_assert_cmpstr(api_response_header(patch, "Allow"), ==,
	                "GET, HEAD, POST, DELETE, OPTIONS");
	assert_error(posth, 405, "method_not_allowed");
	g_assert_cmpstr(api_response_header(posth, "Allow"), ==, "GET, HEAD, OPTIONS");
	g_assert_cmpuint(options->status, ==, 204);
	g_assert_cmpstr(api_response_header(options, "Allow"), ==,
	                "GET, HEAD, POST, DELETE, OPTIONS");
	g_assert_cmpuint(slash->status, ==, 200);
}

/* A request with a chosen UUID, inserted through the backend, so that two
 * can share a prefix. */
static void
insert_with_uuid(ApiFixture *fx, const gchar *uuid)
{
	g_autoptr(QsimRequest) r = qsim_request_new();
	g_autoptr(GError) error = NULL;

	r->uuid = g_strdup(uuid);
	r->vm_name = g_strdup("tiny");
	r->commands = g_strdup("true");
	r->timeout_s = 10;
	r->created_at = r->updated_at = qsim_store_now_ms(fx->store);
	g_assert_true(QSIM_STORE_GET_CLASS(fx->store)->insert_request(fx->store, r, &error));
	g_assert_no_error(error);
}

static void
test_ambiguous(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = NULL;
	JsonObject *err;

	insert_with_uuid(fx, "abcdef12-0000-4000-8000-000000000001");
	insert_with_uuid(fx, "abcdef12-0000-4000-8000-000000000002");
	r = api_request(fx, "GET", "/requests/abcdef12", NULL, NULL, NULL);
	assert_error(r, 409, "ambiguous");
	err = json_object_get_object_member(obj(r), "error");
	g_assert_nonnull(strstr(json_object_get_string_member(err, "message"),
	                        "abcdef12-0000-4000-8000-000000000002"));
}

static ApiResponse *
put_status(ApiFixture *fx, const gchar *uuid, const gchar *status)
{
	g_autofree gchar *path = g_strdup_printf("/requests/%s/status", uuid);
	g_autofree gchar *body = g_strdup_printf("{\"status\":\"%s\"}", status);

	return api_request(fx, "PUT", path, JSON, body, NULL);
}

static void
test_set_status(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s/status", uuid);
	g_autoptr(ApiResponse) hold = put_status(fx, uuid, "hold");
	g_autoptr(ApiResponse) release = put_status(fx, uuid, "pending");
	g_autoptr(ApiResponse) run = put_status(fx, uuid, "running");
	g_autoptr(ApiResponse) bogus = put_status(fx, uuid, "done");
	g_autoptr(ApiResponse) notstr = api_request(fx, "PUT", path, JSON, "{\"status\":1}", NULL);
	g_autoptr(ApiResponse) cancel = NULL;
	g_autoptr(ApiResponse) again = NULL;
	JsonObject *err;

	g_assert_cmpuint(hold->status, ==, 200);
	g_assert_cmpstr(api_response_string(hold, "status"), ==, "hold");
	g_assert_cmpuint(release->status, ==, 200);
	g_assert_cmpstr(api_response_string(release, "status"), ==, "pending");
	assert_error(run, 409, "conflict");
	err = json_object_get_object_member(obj(run), "error");
	g_assert_nonnull(strstr(json_object_get_string_member(err, "message"), "pending"));
	assert_error(bogus, 422, "validation_error");
	assert_error(notstr, 422, "validation_error");
	cancel = put_status(fx, uuid, "cancelled");
	g_assert_cmpuint(cancel->status, ==, 200);
	g_assert_cmpstr(api_response_string(cancel, "status"), ==, "cancelled");
	again = put_status(fx, uuid, "hold");
	assert_error(again, 409, "conflict");
}

static void
test_delete(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);
	g_autofree gchar *logs = g_strdup_printf("/requests/%s/logs", uuid);
	g_autoptr(ApiResponse) cancel = api_request(fx, "DELETE", path, NULL, NULL, NULL);
	g_autoptr(ApiResponse) logs_kept = api_request(fx, "GET", logs, NULL, NULL, NULL);
	g_autoptr(ApiResponse) del = api_request(fx, "DELETE", path, NULL, NULL, NULL);
	g_autoptr(ApiResponse) gone = api_request(fx, "GET", path, NULL, NULL, NULL);
	g_autoptr(ApiResponse) logs_gone = api_request(fx, "GET", logs, NULL, NULL, NULL);

	g_assert_cmpuint(cancel->status, ==, 200);
	g_assert_cmpstr(api_response_string(cancel, "status"), ==, "cancelled");
	g_assert_cmpuint(logs_kept->status, ==, 200);
	g_assert_cmpuint(del->status, ==, 204);
	g_assert_cmpuint(g_bytes_get_size(del->body), ==, 0);
	assert_error(gone, 404, "not_found");
	assert_error(logs_gone, 404, "not_found");
}

static void
append_log(ApiFixture *fx, const gchar *uuid, QsimLogType type, const gchar *data, gsize len)
{
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(chunks, qsim_log_entry_new(type, 0, (const guint8 *)data, len));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), >, 0);
	g_assert_no_error(error);
}

static void
test_logs(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *base = g_strdup_printf("/requests/%s/logs", uuid);
	g_autofree gchar *q_type = g_strconcat(base, "?log_type=stderr", NULL);
	g_autofree gchar *q_after = g_strconcat(base, "?after_seq=2&limit=1", NULL);
	g_autofree gchar *q_bad_type = g_strconcat(base, "?log_type=bogus", NULL);
	g_autofree gchar *q_bad_limit = g_strconcat(base, "?limit=10001", NULL);
	g_autofree gchar *q_bad_after = g_strconcat(base, "?after_seq=-1", NULL);
	const guint8 binary[] = {'a', 0xff, 0x00, 'b', 0xc3};
	g_autoptr(ApiResponse) all = NULL;
	g_autoptr(ApiResponse) typed = NULL;
	g_autoptr(ApiResponse) after = NULL;
	g_autoptr(ApiResponse) bad = NULL;
	g_autoptr(ApiResponse) bad_limit = NULL;
	g_autoptr(ApiResponse) bad_after = NULL;
	g_autofree guchar *decoded = NULL;
	JsonObject *e;
	gsize len = 0;

	append_log(fx, uuid, QSIM_LOG_STDOUT, "héllo\n", strlen("héllo\n"));
	append_log(fx, uuid, QSIM_LOG_STDERR, "oops\n", 5);
	append_log(fx, uuid, QSIM_LOG_STDOUT, (const gchar *)binary, sizeof binary);
	all = api_request(fx, "GET", base, NULL, NULL, NULL);
	g_assert_cmpuint(all->status, ==, 200);
	g_assert_cmpuint(json_array_get_length(arr(all)), ==, 3);
	e = json_array_get_object_element(arr(all), 0);
	g_assert_cmpint(json_object_get_int_member(e, "seq"), ==, 1);
	g_assert_cmpstr(json_object_get_string_member(e, "log_type"), ==, "stdout");
	g_assert_cmpstr(json_object_get_string_member(e, "encoding"), ==, "utf-8");
	g_assert_cmpstr(json_object_get_string_member(e, "output"), ==, "héllo\n");
	assert_timestamp(json_object_get_string_member(e, "timestamp"));
	e = json_array_get_object_element(arr(all), 2);
	g_assert_cmpstr(json_object_get_string_member(e, "encoding"), ==, "base64");
	decoded = g_base64_decode(json_object_get_string_member(e, "output"), &len);
	g_assert_cmpmem(decoded, len, binary, sizeof binary);

	typed = api_request(fx, "GET", q_type, NULL, NULL, NULL);
	g_assert_cmpuint(json_array_get_length(arr(typed)), ==, 1);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(arr(typed), 0), "output"),
	    ==, "oops\n");
	after = api_request(fx, "GET", q_after, NULL, NULL, NULL);
	g_assert_cmpuint(json_array_get_length(arr(after)), ==, 1);
	g_assert_cmpint(
	    json_object_get_int_member(json_array_get_object_element(arr(after), 0), "seq"), ==, 3);
	bad = api_request(fx, "GET", q_bad_type, NULL, NULL, NULL);
	assert_error(bad, 400, "bad_request");
	bad_limit = api_request(fx, "GET", q_bad_limit, NULL, NULL, NULL);
	assert_error(bad_limit, 400, "bad_request");
	bad_after = api_request(fx, "GET", q_bad_after, NULL, NULL, NULL);
	assert_error(bad_after, 400, "bad_request");
}

/* Returns: (transfer full) (nullable): the target of a Link rel="next" */
static gchar *
next_link(ApiResponse *r)
{
	const gchar *link = api_response_header(r, "Link");
	const gchar *start;

	if (link == NULL)
		return NULL;
	g_assert_nonnull(strstr(link, "rel=\"next\""));
	start = strchr(link, '<');
	g_assert_nonnull(start);
	return g_strndup(start + 1, strchr(link, '>') - start - 1);
}

#define BUDGET (4 * 1024 * 1024)
#define CHUNK (64 * 1024)

/*
 * 10 MiB of output in 64 KiB chunks: plain text, control bytes (6 bytes of JSON
 * each, so the raw budget alone would let the JSON grow to 6x) and binary
 * (base64). Every page stays within the budget and says where to go on; the
 * pages together hold every chunk once, in order, byte for byte.
 */
static void
test_logs_byte_budget(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "yes", 60, &error);
	g_autofree gchar *next = NULL;
	g_autofree gchar *chunk = g_malloc(CHUNK);
	const guint n_chunks = 160;
	guint64 want_bytes = 0, got_bytes = 0;
	gint64 want_seq = 1;
	guint pages = 0;

	g_assert_no_error(error);
	for (guint i = 0; i < n_chunks; i++) {
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);

		memset(chunk, i % 3 == 0 ? 'y' : i % 3 == 1 ? '\x01' : '\xff', CHUNK);
		g_ptr_array_add(
		    chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)chunk, CHUNK));
		g_assert_cmpint(qsim_store_append_logs(fx->store, r->uuid, chunks, &error), ==,
		                i + 1);
		want_bytes += CHUNK;
	}
	next = g_strdup_printf("/requests/%s/logs?limit=10000", r->uuid);
	while (next != NULL) {
		g_autoptr(ApiResponse) page = api_request(fx, "GET", next, NULL, NULL, NULL);
		JsonArray *a;

		g_assert_cmpuint(page->status, ==, 200);
		g_assert_cmpuint(g_bytes_get_size(page->body), <=, BUDGET);
		a = arr(page);
		g_assert_cmpuint(json_array_get_length(a), >, 0);
		for (guint i = 0; i < json_array_get_length(a); i++) {
			JsonObject *e = json_array_get_object_element(a, i);
			const gchar *out = json_object_get_string_member(e, "output");

			g_assert_cmpint(json_object_get_int_member(e, "seq"), ==, want_seq);
			if (g_strcmp0(json_object_get_string_member(e, "encoding"), "base64") ==
			    0) {
				gsize len = 0;
				g_autofree guchar *bytes = g_base64_decode(out, &len);

				got_bytes += len;
			} else {
				got_bytes += strlen(out);
			}
			want_seq++;
		}
		g_clear_pointer(&next, g_free);
		next = next_link(page);
		pages++;
	}
	g_assert_cmpint(want_seq, ==, n_chunks + 1);
	g_assert_cmpuint(got_bytes, ==, want_bytes);
	/* 10 MiB of output as at least 10 MiB * 4/3 of JSON cannot fit in fewer */
	g_assert_cmpuint(pages, >=, 4);
}

/* 40 requests of 200 KiB of commands each: lists are cut by bytes too */
static void
test_list_byte_budget(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree gchar *commands = g_malloc(200 * 1024 + 1);
	g_autofree gchar *next = g_strdup("/requests?limit=1000");
	guint pages = 0;

	for (guint i = 0; i < 40; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimRequest) r = NULL;

		/* newlines escape to two bytes: the JSON outgrows the rows */
		memset(commands, i % 2 ? 'x' : '\n', 200 * 1024);
		commands[200 * 1024] = '\0';
		r = qsim_store_create_request(fx->store, "tiny", commands, 60, &error);
		g_assert_no_error(error);
	}
	while (next != NULL) {
		g_autoptr(ApiResponse) page = api_request(fx, "GET", next, NULL, NULL, NULL);
		JsonArray *a;

		g_assert_cmpuint(page->status, ==, 200);
		g_assert_cmpuint(g_bytes_get_size(page->body), <=, BUDGET);
		a = arr(page);
		g_assert_cmpuint(json_array_get_length(a), >, 0);
		for (guint i = 0; i < json_array_get_length(a); i++) {
			const gchar *uuid = json_object_get_string_member(
			    json_array_get_object_element(a, i), "uuid");

			g_assert_true(g_hash_table_add(seen, g_strdup(uuid)));
		}
		g_clear_pointer(&next, g_free);
		next = next_link(page);
		pages++;
	}
	g_assert_cmpuint(g_hash_table_size(seen), ==, 40);
	g_assert_cmpuint(pages, >=, 3);
}

static void
test_vms(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms", NULL, NULL, NULL);
	JsonObject *vm;

	g_assert_cmpuint(r->status, ==, 200);
	g_assert_cmpuint(json_array_get_length(arr(r)), ==, 1);
	vm = json_array_get_object_element(arr(r), 0);
	g_assert_cmpstr(json_object_get_string_member(vm, "name"), ==, "tiny");
	g_assert_cmpstr(json_object_get_string_member(vm, "image"), ==, "tiny.qcow2");
	g_assert_cmpint(json_object_get_int_member(vm, "size_bytes"), ==, 4);
	g_assert_true(json_object_get_boolean_member(vm, "valid"));
	g_assert_true(json_object_get_null_member(vm, "error"));
	g_assert_true(json_object_has_member(vm, "format"));
	g_assert_true(json_object_has_member(vm, "config"));
	/* no template yet */
	{
		JsonObject *tpl = json_object_get_object_member(vm, "template");

		g_assert_nonnull(tpl);
		g_assert_cmpstr(json_object_get_string_member(tpl, "state"), ==, "none");
		g_assert_true(json_object_get_null_member(tpl, "size_bytes"));
		g_assert_true(json_object_get_null_member(tpl, "age_s"));
		g_assert_true(json_object_get_null_member(tpl, "built_at"));
		g_assert_true(json_object_get_null_member(tpl, "reason"));
		g_assert_false(json_object_get_boolean_member(tpl, "prepare_requested"));
	}
	/* no agents in this process: the warm pool's counts come from the store */
	{
		JsonObject *warm = json_object_get_object_member(vm, "warm_pool");

		g_assert_nonnull(warm);
		g_assert_cmpint(json_object_get_int_member(warm, "size"), ==, 0);
		g_assert_cmpint(json_object_get_int_member(warm, "parked"), ==, 0);
		g_assert_cmpint(json_object_get_int_member(warm, "starting"), ==, 0);
	}
	/* one row per host that published the VM */
	{
		JsonArray *hosts = json_object_get_array_member(vm, "hosts");
		JsonObject *h;

		g_assert_cmpuint(json_array_get_length(hosts), ==, 1);
		h = json_array_get_object_element(hosts, 0);
		g_assert_cmpstr(json_object_get_string_member(h, "host"), ==, qsim_host_id_get());
		g_assert_false(json_object_get_boolean_member(h, "stale"));
		g_assert_true(json_object_get_boolean_member(h, "valid"));
		g_assert_cmpstr(json_object_get_string_member(
		                    json_object_get_object_member(h, "template"), "state"),
		                ==, "none");
	}
}

/* POST /requests checks vm_name against the catalogues in the store, not this
 * process's disk: a VM only another host has is accepted, one no host can run is not */
static void
test_submit_catalogue(ApiFixture *fx, gconstpointer data)
{
	static const gchar *const agents[] = {NULL};
	g_autoptr(QsimHostRecord) b = qsim_host_record_new("node-b");
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	g_autoptr(GError) error = NULL;
	QsimHostVm *remote = qsim_host_vm_new("node-b", "remote-only");
	QsimHostVm *broken = qsim_host_vm_new("node-b", "broken-there");

	b->version = g_strdup("test");
	b->stale_after_ms = 60000;
	g_strfreev(b->agent_ids);
	b->agent_ids = g_strdupv((gchar **)agents);
	remote->valid = TRUE;
	broken->valid = FALSE;
	broken->error = g_strdup("MEMORY: not a size");
	g_ptr_array_add(vms, remote);
	g_ptr_array_add(vms, broken);
	g_assert_true(qsim_store_publish_host(fx->store, b, vms, &error));
	g_assert_no_error(error);
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/requests", "application/json",
		                "{\"vm_name\":\"remote-only\",\"commands\":\"true\"}", NULL);

		g_assert_cmpuint(r->status, ==, 201);
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/requests", "application/json",
		                "{\"vm_name\":\"broken-there\",\"commands\":\"true\"}", NULL);

		assert_error(r, 422, "validation_error");
		g_assert_nonnull(
		    strstr(json_object_get_string_member(
		               json_object_get_object_member(obj(r), "error"), "message"),
		           "invalid configuration"));
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/requests", "application/json",
		                "{\"vm_name\":\"nowhere\",\"commands\":\"true\"}", NULL);

		assert_error(r, 422, "validation_error");
		g_assert_nonnull(
		    strstr(json_object_get_string_member(
		               json_object_get_object_member(obj(r), "error"), "message"),
		           "no VM named"));
	}
	/* an image on this process's disk that no agent published is no VM either */
	{
		g_autofree gchar *image =
		    g_build_filename(fx->tmpdir, "images", "local-only.qcow2", NULL);
		g_autoptr(ApiResponse) r = NULL;

		g_assert_true(g_file_set_contents(image, "QFI\xfb", 4, &error));
		r = api_request(fx, "POST", "/requests", "application/json",
		                "{\"vm_name\":\"local-only\",\"commands\":\"true\"}", NULL);
		assert_error(r, 422, "validation_error");
	}
}

/* GET /vms shows every host's row, a stale host as stale, warm counts per host */
static void
test_vms_hosts(ApiFixture *fx, gconstpointer data)
{
	static const gchar *const agents[] = {"node-b:42:0", NULL};
	g_autoptr(QsimHostRecord) b = qsim_host_record_new("node-b");
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	g_autoptr(GError) error = NULL;
	QsimHostVm *v = qsim_host_vm_new("node-b", "tiny");
	JsonArray *hosts;
	JsonObject *vm;

	b->version = g_strdup("test");
	b->accel = g_strdup("kvm");
	b->stale_after_ms = 1000;
	g_strfreev(b->agent_ids);
	b->agent_ids = g_strdupv((gchar **)agents);
	v->valid = TRUE;
	v->image = g_strdup("tiny.qcow2");
	v->accel_mode = g_strdup("auto");
	v->warm_size = 3;
	v->warm_parked = 2;
	v->warm_starting = 1;
	g_ptr_array_add(vms, v);
	g_assert_true(qsim_store_publish_host(fx->store, b, vms, &error));
	g_assert_no_error(error);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms", NULL, NULL, NULL);
		JsonObject *warm;
		JsonObject *nb;

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_cmpuint(json_array_get_length(arr(r)), ==, 1);
		vm = json_array_get_object_element(arr(r), 0);
		hosts = json_object_get_array_member(vm, "hosts");
		g_assert_cmpuint(json_array_get_length(hosts), ==, 2);
		nb = json_array_get_object_element(hosts, 0);
		g_assert_cmpstr(json_object_get_string_member(nb, "host"), ==, "node-b");
		g_assert_false(json_object_get_boolean_member(nb, "stale"));
		g_assert_cmpstr(json_object_get_string_member(nb, "accel"), ==, "kvm");
		warm = json_object_get_object_member(nb, "warm_pool");
		g_assert_cmpint(json_object_get_int_member(warm, "size"), ==, 3);
		g_assert_cmpint(json_object_get_int_member(warm, "parked"), ==, 2);
		/* the VM's totals: the live hosts' counts */
		warm = json_object_get_object_member(vm, "warm_pool");
		g_assert_cmpint(json_object_get_int_member(warm, "parked"), ==, 2);
		g_assert_cmpint(json_object_get_int_member(warm, "starting"), ==, 1);
	}
	/* node-b stops beating: stale, and its warm VMs no longer count */
	g_usleep(1100 * 1000);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/tiny", NULL, NULL, NULL);
		JsonObject *nb;

		g_assert_cmpuint(r->status, ==, 200);
		hosts = json_object_get_array_member(obj(r), "hosts");
		nb = json_array_get_object_element(hosts, 0);
		g_assert_true(json_object_get_boolean_member(nb, "stale"));
		g_assert_cmpint(json_object_get_int_member(
		                    json_object_get_object_member(obj(r), "warm_pool"), "parked"),
		                ==, 0);
	}
	/* a prepare without a host asks every live host that can run it: not node-b */
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare", NULL, NULL, NULL);
		g_autoptr(QsimTemplateRecord) row = NULL;

		g_assert_cmpuint(r->status, ==, 202);
		g_assert_cmpuint(
		    json_array_get_length(json_object_get_array_member(obj(r), "hosts")), ==, 1);
		row = qsim_store_get_template(fx->store, "tiny", "node-b", NULL);
		g_assert_null(row);
	}
	/* ... and with a host, that host */
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare", "application/json",
		                "{\"host\":\"node-b\"}", NULL);
		g_autoptr(QsimTemplateRecord) row = NULL;

		g_assert_cmpuint(r->status, ==, 202);
		row = qsim_store_get_template(fx->store, "tiny", "node-b", &error);
		g_assert_no_error(error);
		g_assert_cmpint(row->prepare_requested_at, !=, 0);
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare?host=node-c", NULL, NULL, NULL);

		assert_error(r, 404, "not_found");
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare?host=a:b", NULL, NULL, NULL);

		assert_error(r, 400, "bad_request");
	}
}

/* stands in for `qsimd all`'s warm pool: tiny has 2 parked and 1 starting */
static void
fake_warm_pool(const gchar *vm_name, guint *n_parked, guint *n_starting, gpointer user_data)
{
	guint *calls = user_data;

	(*calls)++;
	if (vm_name == NULL || g_strcmp0(vm_name, "tiny") == 0) {
		*n_parked = 2;
		*n_starting = 1;
	}
}

static void
test_vms_warm_pool(ApiFixture *fx, gconstpointer data)
{
	guint calls = 0;

	qsim_api_server_set_warm_pool_func(fx->server, fake_warm_pool, &calls);
	/* GET /vms reads the counts the agents published, not this process's pool */
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/tiny", NULL, NULL, NULL);
		JsonObject *warm;

		g_assert_cmpuint(r->status, ==, 200);
		warm = json_object_get_object_member(obj(r), "warm_pool");
		g_assert_cmpint(json_object_get_int_member(warm, "parked"), ==, 0);
		g_assert_cmpint(json_object_get_int_member(warm, "starting"), ==, 0);
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/stats", NULL, NULL, NULL);
		JsonObject *warm;

		g_assert_cmpuint(r->status, ==, 200);
		warm = json_object_get_object_member(obj(r), "warm_pool");
		g_assert_nonnull(warm);
		g_assert_cmpint(json_object_get_int_member(warm, "parked"), ==, 2);
		g_assert_cmpint(json_object_get_int_member(warm, "starting"), ==, 1);
	}
	g_assert_cmpuint(calls, ==, 1);
	qsim_api_server_set_warm_pool_func(fx->server, NULL, NULL);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/stats", NULL, NULL, NULL);

		g_assert_true(json_object_get_null_member(obj(r), "warm_pool"));
	}
}

static JsonObject *
vm_template(ApiResponse *r)
{
	g_assert_cmpuint(r->status, ==, 200);
	return json_object_get_object_member(obj(r), "template");
}

/* GET /vms/{name}: the template state is the row the template service (and the
 * host's publisher, from the files) wrote for this host; the API reads no file */
static void
test_vm_get(ApiFixture *fx, gconstpointer data)
{
	const gchar *host = qsim_store_get_local_host();
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateRecord) row = qsim_template_record_new("tiny", host);
	JsonObject *tpl;

	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/tiny", NULL, NULL, NULL);

		g_assert_cmpstr(json_object_get_string_member(obj(r), "name"), ==, "tiny");
		g_assert_cmpstr(json_object_get_string_member(vm_template(r), "state"), ==, "none");
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/nope", NULL, NULL, NULL);

		assert_error(r, 404, "not_found");
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/-bad", NULL, NULL, NULL);

		/* not a VM name at all: the store's validation error, as for a bad UUID */
		assert_error(r, 422, "validation_error");
	}
	/* the database says building: shown as building */
	row->state = QSIM_TEMPLATE_RECORD_BUILDING;
	row->build_started_at = qsim_store_now_ms(fx->store);
	g_assert_true(qsim_store_upsert_template(fx->store, row, &error));
	g_assert_no_error(error);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/tiny", NULL, NULL, NULL);

		g_assert_cmpstr(json_object_get_string_member(vm_template(r), "state"), ==,
		                "building");
	}
	/* ready, with its facts */
	row->state = QSIM_TEMPLATE_RECORD_READY;
	row->build_finished_at = row->build_started_at + 4000;
	row->build_ms = 4000;
	row->size_bytes = 1234;
	row->qemu_version = g_strdup("7.2.0");
	g_assert_true(qsim_store_upsert_template(fx->store, row, &error));
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/tiny", NULL, NULL, NULL);

		tpl = vm_template(r);
		g_assert_cmpstr(json_object_get_string_member(tpl, "state"), ==, "ready");
		g_assert_cmpfloat(json_object_get_double_member(tpl, "build_s"), ==, 4.0);
		g_assert_cmpint(json_object_get_int_member(tpl, "size_bytes"), ==, 1234);
		g_assert_cmpstr(json_object_get_string_member(tpl, "qemu_version"), ==, "7.2.0");
		g_assert_true(json_object_get_null_member(tpl, "reason"));
	}
	/* stale with the reason */
	row->state = QSIM_TEMPLATE_RECORD_STALE;
	row->reason = g_strdup("restore failed: boom");
	g_assert_true(qsim_store_upsert_template(fx->store, row, &error));
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms/tiny", NULL, NULL, NULL);

		tpl = vm_template(r);
		g_assert_cmpstr(json_object_get_string_member(tpl, "state"), ==, "stale");
		g_assert_cmpstr(json_object_get_string_member(tpl, "reason"), ==,
		                "restore failed: boom");
	}
	/* the last build failed: failed with its error */
	row->state = QSIM_TEMPLATE_RECORD_FAILED;
	g_free(row->reason);
	row->reason = g_strdup("guest did not answer SSH");
	g_assert_true(qsim_store_upsert_template(fx->store, row, &error));
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/vms", NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
		tpl = json_object_get_object_member(json_array_get_object_element(arr(r), 0),
		                                    "template");
		g_assert_cmpstr(json_object_get_string_member(tpl, "state"), ==, "failed");
		g_assert_cmpstr(json_object_get_string_member(tpl, "reason"), ==,
		                "guest did not answer SSH");
	}
}

/* POST /vms/{name}/prepare: 202 with the template, a prepare request in the database */
static void
test_vm_prepare(ApiFixture *fx, gconstpointer data)
{
	const gchar *host = qsim_store_get_local_host();
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateRecord) row = NULL;
	JsonObject *o;

	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare", NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 202);
		o = obj(r);
		g_assert_cmpstr(json_object_get_string_member(o, "name"), ==, "tiny");
		g_assert_false(json_object_get_boolean_member(o, "force"));
		g_assert_true(json_object_get_boolean_member(
		    json_object_get_object_member(o, "template"), "prepare_requested"));
	}
	row = qsim_store_get_template(fx->store, "tiny", host, &error);
	g_assert_no_error(error);
	g_assert_cmpint(row->prepare_requested_at, !=, 0);
	g_assert_false(row->prepare_force);
	g_clear_pointer(&row, qsim_template_record_free);
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare?force=true", NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 202);
		g_assert_true(json_object_get_boolean_member(obj(r), "force"));
	}
	row = qsim_store_get_template(fx->store, "tiny", host, &error);
	g_assert_true(row->prepare_force);
	{
		g_autoptr(ApiResponse) r = api_request(
		    fx, "POST", "/vms/tiny/prepare", "application/json", "{\"force\":true}", NULL);

		g_assert_cmpuint(r->status, ==, 202);
		g_assert_true(json_object_get_boolean_member(obj(r), "force"));
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare", "application/json", "{}", NULL);

		g_assert_cmpuint(r->status, ==, 202);
		g_assert_false(json_object_get_boolean_member(obj(r), "force"));
	}
	/* bad input */
	{
		static const struct {
			const gchar *path;
			const gchar *body;
		} bad[] = {
		    {"/vms/tiny/prepare?force=yes", NULL},
		    {"/vms/tiny/prepare?force=1", NULL},
		    {"/vms/tiny/prepare", "{\"force\":\"yes\"}"},
		    {"/vms/tiny/prepare", "{\"force\":1}"},
		    {"/vms/tiny/prepare", "{\"forse\":true}"},
		    {"/vms/tiny/prepare?force=false", "{\"force\":true}"},
		};

		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_autoptr(ApiResponse) r = api_request(
			    fx, "POST", bad[i].path,
			    bad[i].body != NULL ? "application/json" : NULL, bad[i].body, NULL);

			g_test_message("bad prepare %s %s", bad[i].path,
			               bad[i].body != NULL ? bad[i].body : "");
			assert_error(r, 400, "bad_request");
			g_assert_nonnull(json_object_get_string_member(
			    json_object_get_object_member(obj(r), "error"), "message"));
		}
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/tiny/prepare", "application/json", "{nope", NULL);

		assert_error(r, 400, "bad_request");
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/nope/prepare", NULL, NULL, NULL);

		assert_error(r, 404, "not_found");
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/vms/-x/prepare", NULL, NULL, NULL);

		assert_error(r, 422, "validation_error");
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "GET", "/vms/tiny/prepare", NULL, NULL, NULL);

		assert_error(r, 405, "method_not_allowed");
		g_assert_nonnull(strstr(api_response_header(r, "Allow"), "POST"));
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "DELETE", "/vms/tiny", NULL, NULL, NULL);

		assert_error(r, 405, "method_not_allowed");
	}
	/* a VM whose config is broken cannot have a template, and the answer says why */
	{
		g_autofree gchar *conf = g_build_filename(qsim_config_get_vm_config_dir(fx->config),
		                                          "broken.conf", NULL);
		g_autoptr(ApiResponse) r = NULL;
		const gchar *message;

		g_assert_true(g_file_set_contents(conf, "MEMORY=lots\n", -1, &error));
		/* the host's agents publish it as it is: invalid, and why */
		api_fixture_publish(fx);
		r = api_request(fx, "POST", "/vms/broken/prepare", NULL, NULL, NULL);
		assert_error(r, 409, "conflict");
		message = json_object_get_string_member(
		    json_object_get_object_member(obj(r), "error"), "message");
		g_test_message("409: %s", message);
		g_assert_nonnull(strstr(message, "cannot have a template"));
		g_assert_cmpint(g_unlink(conf), ==, 0);
	}
}

/* output_truncated: false until the agent records that OUTPUT_LIMIT cut the output,
 * the same in a single request and in a list */
static void
test_output_truncated(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "yes");
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);
	g_autoptr(GError) error = NULL;

	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/requests", NULL, NULL, NULL);

		g_assert_false(json_object_get_boolean_member(
		    json_array_get_object_element(arr(r), 0), "output_truncated"));
	}
	g_assert_true(qsim_store_set_output_truncated(fx->store, uuid, &error));
	g_assert_no_error(error);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", path, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_true(json_object_get_boolean_member(obj(r), "output_truncated"));
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/requests", NULL, NULL, NULL);

		g_assert_true(json_object_get_boolean_member(
		    json_array_get_object_element(arr(r), 0), "output_truncated"));
	}
}

/* start_mode: null until the VM started, then as the agent recorded it */
static void
test_start_mode(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(GError) error = NULL;

	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", path, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_true(json_object_get_null_member(obj(r), "start_mode"));
	}
	claimed = qsim_store_claim_next(fx->store, "agent-t", 60000, 0, &error);
	g_assert_nonnull(claimed);
	g_assert_true(qsim_store_set_start_mode(fx->store, uuid, "snapshot", &error));
	g_assert_true(qsim_store_mark_running(fx->store, uuid, "agent-t", &error));
	g_assert_true(qsim_store_finish_request(fx->store, uuid, "agent-t", QSIM_STATUS_DONE, TRUE,
	                                        0, NULL, NULL, &error));
	g_assert_no_error(error);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", path, NULL, NULL, NULL);

		g_assert_cmpstr(json_object_get_string_member(obj(r), "start_mode"), ==,
		                "snapshot");
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/requests", NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_cmpstr(json_object_get_string_member(
		                    json_array_get_object_element(arr(r), 0), "start_mode"),
		                ==, "snapshot");
	}
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", "/stats", NULL, NULL, NULL);
		JsonObject *modes = json_object_get_object_member(obj(r), "start_modes");
		JsonObject *snap = json_object_get_object_member(modes, "snapshot");
		JsonObject *cold = json_object_get_object_member(modes, "cold");

		g_assert_cmpuint(json_object_get_size(modes), ==, 3);
		g_assert_cmpint(json_object_get_int_member(snap, "count"), ==, 1);
		g_assert_false(json_object_get_null_member(snap, "submit_to_running_p50_s"));
		g_assert_cmpint(json_object_get_int_member(cold, "count"), ==, 0);
		g_assert_true(json_object_get_null_member(cold, "submit_to_running_p50_s"));
		g_assert_true(json_object_has_member(modes, "warm"));
	}
}

static void
test_stats(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *a = api_submit(fx, "true");
	g_autofree gchar *b = api_submit(fx, "true");
	g_autoptr(QsimRequest) c = NULL;
	g_autoptr(ApiResponse) r = NULL;
	g_autoptr(GError) error = NULL;
	JsonObject *o, *counts;

	c = qsim_store_cancel_request(fx->store, b, &error);
	g_assert_no_error(error);
	qsim_api_server_set_agent_count(fx->server, 3);
	r = api_request(fx, "GET", "/stats", NULL, NULL, NULL);
	g_assert_cmpuint(r->status, ==, 200);
	o = obj(r);
	counts = json_object_get_object_member(o, "counts");
	g_assert_cmpuint(json_object_get_size(counts), ==, QSIM_STATUS_COUNT);
	g_assert_cmpint(json_object_get_int_member(counts, "pending"), ==, 1);
	g_assert_cmpint(json_object_get_int_member(counts, "cancelled"), ==, 1);
	g_assert_cmpint(json_object_get_int_member(counts, "running"), ==, 0);
	g_assert_cmpint(json_object_get_int_member(o, "total"), ==, 2);
	g_assert_cmpint(json_object_get_int_member(o, "running_vms"), ==, 0);
	g_assert_cmpint(json_object_get_int_member(o, "agents"), ==, 3);
	g_assert_false(json_object_get_null_member(o, "oldest_pending_age_s"));
	g_assert_true(
	    json_object_has_member(json_object_get_object_member(o, "queue_latency_s"), "p95"));
	g_assert_true(
	    json_object_has_member(json_object_get_object_member(o, "run_latency_s"), "p50"));
}

static void
test_config(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r =
	    api_request(fx, "GET", "/config", NULL, NULL, "Authorization", "Bearer s3cret", NULL);
	JsonObject *o, *port, *tokens, *cors;
	g_autofree gchar *text = NULL;

	g_assert_cmpuint(r->status, ==, 200);
	o = obj(r);
	port = json_object_get_object_member(o, "API_PORT");
	g_assert_nonnull(port);
	g_assert_cmpstr(json_object_get_string_member(port, "source"), ==, "default");
	g_assert_cmpint(json_object_get_int_member(port, "value"), ==, 8000);
	tokens = json_object_get_object_member(o, "API_TOKENS");
	g_assert_nonnull(tokens);
	g_assert_cmpstr(json_object_get_string_member(tokens, "source"), ==, "environment");
	g_assert_cmpstr(json_object_get_string_member(tokens, "value"), ==, "***");
	cors = json_object_get_object_member(o, "ENABLE_CORS");
	g_assert_false(json_object_get_boolean_member(cors, "value"));
	text = g_strndup(g_bytes_get_data(r->body, NULL), g_bytes_get_size(r->body));
	g_assert_null(strstr(text, "s3cret"));
}

static void
test_openapi(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/openapi.json", NULL, NULL, NULL);
	JsonObject *doc, *paths, *schemas;
	const QsimApiRoute *routes;
	guint n = 0;

	g_assert_cmpuint(r->status, ==, 200);
	doc = obj(r);
	g_assert_true(g_str_has_prefix(json_object_get_string_member(doc, "openapi"), "3.0."));
	g_assert_cmpstr(
	    json_object_get_string_member(json_object_get_object_member(doc, "info"), "version"),
	    ==, PACKAGE_VERSION);
	paths = json_object_get_object_member(doc, "paths");
	routes = qsim_api_routes_get(&n);
	g_assert_cmpuint(n, >=, 12);
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *method = g_ascii_strdown(routes[i].method, -1);
		JsonObject *item = json_object_get_object_member(paths, routes[i].pattern);
		JsonObject *op;

		g_test_message("route %s %s", routes[i].method, routes[i].pattern);
		g_assert_nonnull(item);
		op = json_object_get_object_member(item, method);
		g_assert_nonnull(op);
		g_assert_nonnull(json_object_get_string_member(op, "summary"));
		g_assert_true(json_object_has_member(op, "responses"));
		/* /health is the one route open without a token */
		if (!routes[i].needs_auth)
			g_assert_cmpuint(
			    json_array_get_length(json_object_get_array_member(op, "security")), ==,
			    0);
		else
			g_assert_true(json_object_has_member(
			    json_object_get_object_member(op, "responses"), "401"));
	}
	/* the document describes no route the server does not serve */
	{
		g_autoptr(GList) names = json_object_get_members(paths);
		guint ops = 0;
		for (GList *l = names; l != NULL; l = l->next)
			ops += json_object_get_size(json_object_get_object_member(paths, l->data)) -
			       (json_object_has_member(
			            json_object_get_object_member(paths, l->data), "parameters")
			            ? 1
			            : 0);
		g_assert_cmpuint(ops, ==, n);
	}
	schemas = json_object_get_object_member(json_object_get_object_member(doc, "components"),
	                                        "schemas");
	g_assert_true(json_object_has_member(schemas, "Request"));
	g_assert_true(json_object_has_member(schemas, "LogEntry"));
	g_assert_true(json_object_has_member(schemas, "Error"));
}

static void
test_docs(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/docs", NULL, NULL, NULL);
	g_autofree gchar *html = NULL;
	g_autoptr(GRegex) external = NULL;

	g_assert_cmpuint(r->status, ==, 200);
	g_assert_cmpstr(soup_message_headers_get_content_type(r->headers, NULL), ==, "text/html");
	html = g_strndup(g_bytes_get_data(r->body, NULL), g_bytes_get_size(r->body));
	g_assert_true(g_str_has_prefix(html, "<!DOCTYPE html>"));
	g_assert_nonnull(strstr(html, "/requests/{uuid}/logs"));
	g_assert_nonnull(strstr(html, "id=\"schema-Request\""));
	/* self-contained: no asset is fetched from anywhere */
	external = g_regex_new("(src|href)\\s*=\\s*\"?(https?:)?//", G_REGEX_CASELESS, 0, NULL);
	g_assert_false(g_regex_match(external, html, 0, NULL));
	g_assert_null(strstr(html, "<script"));
	g_assert_null(strstr(html, "<link"));
	g_assert_null(strstr(html, "@import"));
}

static const ApiFixtureOptions auth_opts = {.tokens = "s3cret, other-token"};

static void
test_auth(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) none = api_request(fx, "GET", "/requests", NULL, NULL, NULL);
	g_autoptr(ApiResponse) wrong =
	    api_request(fx, "GET", "/requests", NULL, NULL, "Authorization", "Bearer s3cre", NULL);
	g_autoptr(ApiResponse) basic = api_request(fx, "GET", "/requests", NULL, NULL,
	                                           "Authorization", "Basic czNjcmV0", NULL);
	g_autoptr(ApiResponse) right =
	    api_request(fx, "GET", "/requests", NULL, NULL, "Authorization", "Bearer s3cret", NULL);
	g_autoptr(ApiResponse) second = api_request(fx, "GET", "/stats", NULL, NULL,
	                                            "Authorization", "Bearer other-token", NULL);
	g_autoptr(ApiResponse) health = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_autoptr(ApiResponse) post = api_request(
	    fx, "POST", "/requests", JSON, "{\"vm_name\":\"tiny\",\"commands\":\"x\"}", NULL);
	g_autoptr(ApiResponse) unknown = api_request(fx, "GET", "/nothing", NULL, NULL, NULL);

	assert_error(none, 401, "unauthorized");
	g_assert_nonnull(api_response_header(none, "WWW-Authenticate"));
	g_assert_true(g_str_has_prefix(api_response_header(none, "WWW-Authenticate"), "Bearer"));
	assert_error(wrong, 401, "unauthorized");
	assert_error(basic, 401, "unauthorized");
	g_assert_cmpuint(right->status, ==, 200);
	g_assert_cmpuint(second->status, ==, 200);
	g_assert_cmpuint(health->status, ==, 200);
	assert_error(post, 401, "unauthorized");
	/* unknown paths do not reveal themselves to anonymous clients */
	assert_error(unknown, 401, "unauthorized");
}

static void
test_refuse_non_loopback(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmpdir = g_dir_make_tmp("qsim-api-XXXXXX", &error);
	const gchar *open_env[] = {"QSIM_API_HOST=0.0.0.0", NULL};
	const gchar *insecure_env[] = {"QSIM_API_HOST=0.0.0.0", "QSIM_INSECURE_NO_AUTH=true", NULL};
	const gchar *token_env[] = {"QSIM_API_HOST=192.0.2.1", "QSIM_API_TOKENS=t", NULL};
	g_autoptr(QsimConfig) open_cfg = api_fixture_make_config(tmpdir, open_env);
	g_autoptr(QsimConfig) insecure_cfg = api_fixture_make_config(tmpdir, insecure_env);
	g_autoptr(QsimConfig) token_cfg = api_fixture_make_config(tmpdir, token_env);
	g_autofree gchar *db = g_build_filename(tmpdir, "qsim.db", NULL);
	g_autoptr(QsimStore) store = qsim_store_open(db, &error);
	g_autoptr(QsimApiServer) refused = NULL;
	g_autoptr(QsimApiServer) insecure = NULL;
	g_autoptr(QsimApiServer) with_tokens = NULL;

	g_assert_no_error(error);
	refused = qsim_api_server_new(open_cfg, store);
	qsim_api_server_set_port(refused, 0);
	g_assert_false(qsim_api_server_listen(refused, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "--insecure-no-auth"));
	g_clear_error(&error);

	/* the flag lets it start, loudly */
	insecure = qsim_api_server_new(insecure_cfg, store);
	qsim_api_server_set_port(insecure, 0);
	g_test_expect_message("qsim-api", G_LOG_LEVEL_WARNING, "*without API tokens*");
	g_assert_true(qsim_api_server_listen(insecure, &error));
	g_test_assert_expected_messages();
	g_assert_no_error(error);
	qsim_api_server_stop(insecure);

	/* tokens make a public address acceptable: the refusal must not be what fails */
	with_tokens = qsim_api_server_new(token_cfg, store);
	qsim_api_server_set_port(with_tokens, 0);
	if (!qsim_api_server_listen(with_tokens, &error)) {
		g_assert_null(strstr(error->message, "--insecure-no-auth"));
		g_clear_error(&error);
	}
	qsim_api_server_stop(with_tokens);
	g_clear_object(&store);
	g_unlink(db);
	{
		g_autofree gchar *wal = g_strconcat(db, "-wal", NULL);
		g_autofree gchar *shm = g_strconcat(db, "-shm", NULL);
		g_unlink(wal);
		g_unlink(shm);
	}
	g_rmdir(tmpdir);
}

static const ApiFixtureOptions cors_opts = {.origins = "http://app.example, http://b.example"};

static void
test_cors(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) pre =
	    api_request(fx, "OPTIONS", "/requests", NULL, NULL, "Origin", "http://app.example",
	                "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers",
	                "content-type", NULL);
	g_autoptr(ApiResponse) get =
	    api_request(fx, "GET", "/health", NULL, NULL, "Origin", "http://b.example", NULL);
	g_autoptr(ApiResponse) other =
	    api_request(fx, "GET", "/health", NULL, NULL, "Origin", "http://evil.example", NULL);

	g_assert_cmpuint(pre->status, ==, 204);
	g_assert_cmpstr(api_response_header(pre, "Access-Control-Allow-Origin"), ==,
	                "http://app.example");
	g_assert_nonnull(strstr(api_response_header(pre, "Access-Control-Allow-Methods"), "POST"));
	g_assert_nonnull(
	    strstr(api_response_header(pre, "Access-Control-Allow-Headers"), "Content-Type"));
	g_assert_cmpstr(api_response_header(get, "Access-Control-Allow-Origin"), ==,
	                "http://b.example");
	g_assert_null(api_response_header(other, "Access-Control-Allow-Origin"));
}

static void
test_cors_disabled(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) get =
	    api_request(fx, "GET", "/health", NULL, NULL, "Origin", "http://app.example", NULL);

	g_assert_cmpuint(get->status, ==, 200);
	g_assert_null(api_response_header(get, "Access-Control-Allow-Origin"));
}

static const ApiFixtureOptions cors_auth_opts = {.tokens = "t0k", .origins = "*"};

/* A preflight carries no credentials; it must pass even when tokens are set. */
static void
test_cors_preflight_with_auth(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) pre =
	    api_request(fx, "OPTIONS", "/requests", NULL, NULL, "Origin", "http://x.example",
	                "Access-Control-Request-Method", "GET", NULL);
	g_autoptr(ApiResponse) denied =
	    api_request(fx, "GET", "/requests", NULL, NULL, "Origin", "http://x.example", NULL);

	g_assert_cmpuint(pre->status, ==, 204);
	g_assert_cmpstr(api_response_header(pre, "Access-Control-Allow-Origin"), ==, "*");
	assert_error(denied, 401, "unauthorized");
	g_assert_cmpstr(api_response_header(denied, "Access-Control-Allow-Origin"), ==, "*");
}

typedef struct {
	gchar *out;
	gboolean done;
	GError *error;
} CurlRun;

static void
curl_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	CurlRun *run = user_data;

	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &run->out, NULL,
	                                     &run->error);
	run->done = TRUE;
}

static gboolean
curl_is_done(gpointer data)
{
	return ((CurlRun *)data)->done;
}

/* Runs curl as a separate process while this thread keeps serving. */
static gchar *
run_curl(const gchar *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
	CurlRun run = {0};

	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(p, NULL, NULL, curl_done, &run);
	api_wait_until(curl_is_done, &run);
	g_assert_no_error(run.error);
	g_assert_true(g_subprocess_get_if_exited(p));
	g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
	return run.out;
}

/* The seed README's examples, argument for argument; only the port differs. */
static void
test_seed_curl(ApiFixture *fx, gconstpointer data)
{
	const gchar *seed_body = "{\n"
	                         "    \"vm_name\": \"ubuntu-server\",\n"
	                         "    \"commands\": \"echo Hello World && uname -a\",\n"
	                         "    \"timeout\": 300\n"
	                         "  }";
	g_autofree gchar *image =
	    g_build_filename(fx->tmpdir, "images", "ubuntu-server.qcow2", NULL);
	g_autofree gchar *url =
	    g_strdup_printf("http://localhost:%u/requests", qsim_api_server_get_port(fx->server));
	const gchar *post[] = {
	    "curl", "-s",      "-X", "POST", url, "-H", "Content-Type: application/json",
	    "-d",   seed_body, NULL};
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *created = NULL;
	g_autofree gchar *one = NULL;
	g_autofree gchar *logs = NULL;
	g_autofree gchar *deleted = NULL;
	g_autofree gchar *req_url = NULL;
	g_autofree gchar *logs_url = NULL;
	JsonObject *o;
	const gchar *uuid;

	g_assert_true(g_file_set_contents(image, "QFI\xfb", 4, &error));
	api_fixture_publish(fx);
	created = run_curl(post);
	g_assert_true(json_parser_load_from_data(parser, created, -1, &error));
	o = json_node_get_object(json_parser_get_root(parser));
	g_assert_cmpuint(json_object_get_size(o), ==, 3);
	uuid = json_object_get_string_member(o, "uuid");
	g_assert_true(g_uuid_string_is_valid(uuid));
	g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "pending");
	g_assert_cmpstr(json_object_get_string_member(o, "message"), ==,
	                "Request created successfully");

	req_url = g_strdup_printf("%s/%s", url, uuid);
	logs_url = g_strdup_printf("%s/%s/logs", url, uuid);
	{
		const gchar *get[] = {"curl", "-s", req_url, NULL};
		const gchar *get_logs[] = {"curl", "-s", logs_url, NULL};
		const gchar *del[] = {"curl", "-s", "-X", "DELETE", req_url, NULL};
		g_autoptr(JsonParser) p2 = json_parser_new();

		one = run_curl(get);
		g_assert_true(json_parser_load_from_data(p2, one, -1, &error));
		o = json_node_get_object(json_parser_get_root(p2));
		g_assert_cmpstr(json_object_get_string_member(o, "vm_name"), ==, "ubuntu-server");
		g_assert_cmpstr(json_object_get_string_member(o, "commands"), ==,
		                "echo Hello World && uname -a");
		g_assert_cmpint(json_object_get_int_member(o, "timeout"), ==, 300);
		logs = run_curl(get_logs);
		g_assert_cmpstr(logs, ==, "[]");
		deleted = run_curl(del);
		g_assert_nonnull(strstr(deleted, "\"status\":\"cancelled\""));
	}
}

/* A backend whose database is gone: every call fails the way SQLite would. */
typedef struct {
	QsimStore parent_instance;
} BrokenStore;
typedef struct {
	QsimStoreClass parent_class;
} BrokenStoreClass;
static GType broken_store_get_type(void);
G_DEFINE_TYPE(BrokenStore, broken_store, QSIM_TYPE_STORE)

static gboolean
broken_ping(QsimStore *self, GError **error)
{
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE, "unable to open /secret/path/qsim.db");
	return FALSE;
}

static QsimStats *
broken_stats(QsimStore *self, GError **error)
{
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE, "disk I/O error on /secret/path");
	return NULL;
}

static GPtrArray *
broken_list(QsimStore *self, const QsimRequestFilter *f, gboolean *more, GError **error)
{
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_INTERNAL, "SELECT secret FROM requests: bug");
	return NULL;
}

static guint
broken_schema(QsimStore *self)
{
	return 0;
}

static void
broken_store_class_init(BrokenStoreClass *klass)
{
	QsimStoreClass *store_class = QSIM_STORE_CLASS(klass);

	store_class->ping = broken_ping;
	store_class->get_stats = broken_stats;
	store_class->list_requests = broken_list;
	store_class->get_schema_version = broken_schema;
}

static void
broken_store_init(BrokenStore *self)
{
}

static ApiFixtureOptions broken_opts;
static const ApiFixtureOptions no_writer_opts = {.no_writer = TRUE};

static void
assert_no_leak(ApiResponse *r)
{
	g_autofree gchar *text =
	    g_strndup(g_bytes_get_data(r->body, NULL), g_bytes_get_size(r->body));

	g_assert_null(strstr(text, "secret"));
	g_assert_null(strstr(text, "SELECT"));
}

static void
test_database_failures(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) health = NULL;
	g_autoptr(ApiResponse) stats = NULL;
	g_autoptr(ApiResponse) list = NULL;

	g_test_expect_message("qsim-api", G_LOG_LEVEL_WARNING, "*unreachable*");
	health = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_test_assert_expected_messages();
	assert_error(health, 503, "unavailable");
	/* the error of every 503, and the health contract's own words */
	g_assert_cmpstr(api_response_string(health, "status"), ==, "degraded");
	g_assert_cmpstr(api_response_string(health, "database"), ==, "unreachable");
	assert_no_leak(health);
	g_test_expect_message("qsim-api", G_LOG_LEVEL_WARNING, "*database unavailable*");
	stats = api_request(fx, "GET", "/stats", NULL, NULL, NULL);
	g_test_assert_expected_messages();
	assert_error(stats, 503, "unavailable");
	assert_no_leak(stats);
	g_test_expect_message("qsim-api", G_LOG_LEVEL_WARNING, "*internal error*");
	list = api_request(fx, "GET", "/requests", NULL, NULL, NULL);
	g_test_assert_expected_messages();
	assert_error(list, 500, "internal_error");
	assert_no_leak(list);
}

#define ADD(path, func, opts)                                                                      \
	g_test_add(path, ApiFixture, opts, api_fixture_setup, func, api_fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	broken_opts.store_type = broken_store_get_type();
	ADD("/qsim/api/health", test_health, NULL);
	ADD("/qsim/api/requests/create", test_create_and_get, NULL);
	ADD("/qsim/api/requests/default-timeout", test_default_timeout, NULL);
	ADD("/qsim/api/requests/create-concurrent", test_create_concurrent, NULL);
	ADD("/qsim/api/requests/create-on-main-loop", test_create_and_get, &no_writer_opts);
	ADD("/qsim/api/requests/validation", test_create_validation, NULL);
	ADD("/qsim/api/requests/media-type-size", test_media_type_and_size, NULL);
	ADD("/qsim/api/requests/list", test_list, NULL);
	ADD("/qsim/api/requests/bad-query", test_bad_query, NULL);
	ADD("/qsim/api/requests/ambiguous", test_ambiguous, NULL);
	ADD("/qsim/api/requests/status", test_set_status, NULL);
	ADD("/qsim/api/requests/delete", test_delete, NULL);
	ADD("/qsim/api/routing", test_not_found_and_methods, NULL);
	ADD("/qsim/api/logs", test_logs, NULL);
	ADD("/qsim/api/logs/byte-budget", test_logs_byte_budget, NULL);
	ADD("/qsim/api/requests/list-byte-budget", test_list_byte_budget, NULL);
	ADD("/qsim/api/vms", test_vms, NULL);
	ADD("/qsim/api/vms/get", test_vm_get, NULL);
	ADD("/qsim/api/vms/hosts", test_vms_hosts, NULL);
	ADD("/qsim/api/requests/catalogue", test_submit_catalogue, NULL);
	ADD("/qsim/api/vms/warm-pool", test_vms_warm_pool, NULL);
	ADD("/qsim/api/vms/prepare", test_vm_prepare, NULL);
	ADD("/qsim/api/start-mode", test_start_mode, NULL);
	ADD("/qsim/api/output-truncated", test_output_truncated, NULL);
	ADD("/qsim/api/stats", test_stats, NULL);
	ADD("/qsim/api/config", test_config, &auth_opts);
	ADD("/qsim/api/openapi", test_openapi, NULL);
	ADD("/qsim/api/docs", test_docs, NULL);
	ADD("/qsim/api/auth", test_auth, &auth_opts);
	g_test_add_func("/qsim/api/auth/refuse-non-loopback", test_refuse_non_loopback);
	ADD("/qsim/api/cors/preflight", test_cors, &cors_opts);
	ADD("/qsim/api/cors/disabled", test_cors_disabled, NULL);
	ADD("/qsim/api/cors/preflight-with-auth", test_cors_preflight_with_auth, &cors_auth_opts);
	ADD("/qsim/api/seed-curl", test_seed_curl, NULL);
	ADD("/qsim/api/database-failures", test_database_failures, &broken_opts);
	return g_test_run();
}
