/*
 * The dashboard's HTTP side (issue 17): the embedded files with their
 * headers, the redirect, what stays public when tokens are on, GET
 * /stats/history and GET /requests?q=.
 */
#include "config.h"

#include <string.h>

#include "api-fixture.h"
#include "api/qsim-api-handlers.h"
#include "store/qsim-store.h"

static void
assert_page_headers(ApiResponse *r)
{
	const gchar *csp = api_response_header(r, "Content-Security-Policy");

	g_assert_nonnull(csp);
	g_assert_nonnull(strstr(csp, "default-src 'self'"));
	g_assert_nonnull(strstr(csp, "frame-ancestors 'none'"));
	g_assert_null(strstr(csp, "unsafe"));
	g_assert_cmpstr(api_response_header(r, "X-Frame-Options"), ==, "DENY");
	g_assert_cmpstr(api_response_header(r, "Referrer-Policy"), ==, "no-referrer");
	g_assert_cmpstr(api_response_header(r, "X-Content-Type-Options"), ==, "nosniff");
}

static gboolean
body_has(ApiResponse *r, const gchar *needle)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(r->body, &len);
	g_autofree gchar *text = g_strndup(data, len);

	return strstr(text, needle) != NULL;
}

static void
test_files(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) index = api_request(fx, "GET", "/ui/", NULL, NULL, NULL);
	g_autoptr(ApiResponse) bare = api_request(fx, "GET", "/ui", NULL, NULL, NULL);
	g_autoptr(ApiResponse) js = api_request(fx, "GET", "/ui/app.js", NULL, NULL, NULL);
	g_autoptr(ApiResponse) css = api_request(fx, "GET", "/ui/app.css", NULL, NULL, NULL);
	g_autoptr(ApiResponse) again = NULL;
	g_autoptr(ApiResponse) missing = api_request(fx, "GET", "/ui/nope.js", NULL, NULL, NULL);
	g_autoptr(ApiResponse) root = api_request(fx, "GET", "/", NULL, NULL, NULL);
	const gchar *etag;

	g_assert_cmpuint(index->status, ==, 200);
	g_assert_cmpstr(api_response_header(index, "Content-Type"), ==, "text/html; charset=utf-8");
	g_assert_true(body_has(index, "<script type=\"module\" src=\"/ui/app.js\"></script>"));
	/* nothing inline: the CSP would block it */
	g_assert_false(body_has(index, "style="));
	g_assert_false(body_has(index, "<style"));
	assert_page_headers(index);
	g_assert_cmpuint(bare->status, ==, 200);
	g_assert_cmpuint(js->status, ==, 200);
	g_assert_cmpstr(api_response_header(js, "Content-Type"), ==,
	                "text/javascript; charset=utf-8");
	assert_page_headers(js);
	g_assert_cmpstr(api_response_header(css, "Content-Type"), ==, "text/css; charset=utf-8");
	etag = api_response_header(js, "ETag");
	g_assert_nonnull(etag);
	g_assert_cmpstr(api_response_header(js, "Cache-Control"), ==, "no-cache");
	g_assert_cmpstr(etag, !=, api_response_header(css, "ETag"));
	again = api_request(fx, "GET", "/ui/app.js", NULL, NULL, "If-None-Match", etag, NULL);
	g_assert_cmpuint(again->status, ==, 304);
	g_assert_cmpuint(g_bytes_get_size(again->body), ==, 0);
	g_assert_cmpuint(missing->status, ==, 404);
	/* the session follows the redirect from / to the page */
	g_assert_cmpuint(root->status, ==, 200);
	g_assert_true(body_has(root, "/ui/app.js"));
	g_assert_cmpuint(qsim_api_ui_total_bytes(), >, g_bytes_get_size(index->body));
}

static const ApiFixtureOptions auth_opts = {.tokens = "s3cret"};

/* The page loads without a token (it holds the login form); the data does not */
static void
test_auth(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) page = api_request(fx, "GET", "/ui/", NULL, NULL, NULL);
	g_autoptr(ApiResponse) js = api_request(fx, "GET", "/ui/api.js", NULL, NULL, NULL);
	g_autoptr(ApiResponse) events = api_request(fx, "GET", "/events", NULL, NULL, NULL);
	g_autoptr(ApiResponse) history = api_request(fx, "GET", "/stats/history", NULL, NULL, NULL);
	g_autoptr(ApiResponse) other = api_request(fx, "POST", "/ui/", NULL, NULL, NULL);

	g_assert_cmpuint(page->status, ==, 200);
	g_assert_cmpuint(js->status, ==, 200);
	g_assert_cmpuint(events->status, ==, 401);
	g_assert_cmpuint(history->status, ==, 401);
	/* only GET and HEAD are public */
	g_assert_cmpuint(other->status, ==, 401);
}

static void
test_history(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autoptr(QsimRequest) claimed = NULL;
	JsonObject *o;
	JsonArray *buckets;
	gint64 done = 0;

	claimed = qsim_store_claim_next(fx->store, "agent-1", 60000, 0, &error);
	g_assert_nonnull(claimed);
	g_assert_true(qsim_store_mark_running(fx->store, uuid, "agent-1", &error));
	g_assert_true(qsim_store_finish_request(fx->store, uuid, "agent-1", QSIM_STATUS_DONE, TRUE,
	                                        0, NULL, NULL, &error));
	r = api_request(fx, "GET", "/stats/history", NULL, NULL, NULL);
	g_assert_cmpuint(r->status, ==, 200);
	o = json_node_get_object(r->json);
	g_assert_cmpint(json_object_get_int_member(o, "bucket_s"), ==, 60);
	g_assert_false(json_object_get_boolean_member(o, "partial"));
	buckets = json_object_get_array_member(o, "buckets");
	g_assert_cmpuint(json_array_get_length(buckets), ==, 60);
	for (guint i = 0; i < 60; i++)
		done +=
		    json_object_get_int_member(json_array_get_object_element(buckets, i), "done");
	g_assert_cmpint(done, ==, 1);
	/* the newest bucket holds it; no output, so no first-byte latency */
	g_assert_cmpint(
	    json_object_get_int_member(json_array_get_object_element(buckets, 59), "done"), ==, 1);
	g_assert_true(json_object_get_null_member(json_array_get_object_element(buckets, 59),
	                                          "first_byte_p50_s"));
}

static void
test_search(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *a = api_submit(fx, "echo needle-one");
	g_autofree gchar *b = api_submit(fx, "echo hay");
	g_autoptr(ApiResponse) hit = api_request(fx, "GET", "/requests?q=NEEDLE", NULL, NULL, NULL);
	g_autoptr(ApiResponse) short_q = api_request(fx, "GET", "/requests?q=ne", NULL, NULL, NULL);
	g_autoptr(ApiResponse) paged = NULL;
	g_autofree gchar *c = api_submit(fx, "echo needle-two");
	JsonArray *rows;

	g_assert_cmpuint(hit->status, ==, 200);
	rows = json_node_get_array(hit->json);
	g_assert_cmpuint(json_array_get_length(rows), ==, 1);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(rows, 0), "uuid"), ==, a);
	g_assert_cmpuint(short_q->status, ==, 400);
	g_assert_cmpstr(api_response_error_code(short_q), ==, "bad_request");
	/* the next page keeps the search */
	paged = api_request(fx, "GET", "/requests?q=needle&limit=1", NULL, NULL, NULL);
	g_assert_cmpuint(paged->status, ==, 200);
	g_assert_cmpstr(
	    json_object_get_string_member(
	        json_array_get_object_element(json_node_get_array(paged->json), 0), "uuid"),
	    ==, c);
	g_assert_nonnull(strstr(api_response_header(paged, "Link"), "q=needle&"));
	(void)b;
}

#define ADD(path, opts, func)                                                                      \
	g_test_add(path, ApiFixture, opts, api_fixture_setup, func, api_fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/api/ui/files", NULL, test_files);
	ADD("/qsim/api/ui/auth", &auth_opts, test_auth);
	ADD("/qsim/api/ui/history", NULL, test_history);
	ADD("/qsim/api/ui/search", NULL, test_search);
	return g_test_run();
}
