#include "config.h"

#include <string.h>

#include "api-fixture.h"
#include "api/qsim-api-json.h"
#include "common/qsim-json-gate.h"

/*
 * Hostile clients: bodies that crashed or fooled qsimd, bodies that must be
 * refused before they are read, and input echoed into error messages. After
 * each case the server must still answer /health.
 */

#define JSON "application/json"
#define TOKEN "s3cret"

typedef struct {
	guint status;
	GBytes *body;
	gboolean done;
	GError *error;
} Reply;

static void
reply_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Reply *r = user_data;

	r->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &r->error);
	r->done = TRUE;
}

static gboolean
reply_is_done(gpointer data)
{
	return ((Reply *)data)->done;
}

/* Like api_request(), but keeps the raw body: the point is to check its bytes. */
static GBytes *
send_raw(ApiFixture *fx, const gchar *method, const gchar *path, const gchar *body, gsize len,
         const gchar *token, guint *status)
{
	g_autofree gchar *uri = g_strconcat(fx->base, path, NULL);
	g_autoptr(SoupMessage) msg = soup_message_new(method, uri);
	Reply r = {0};

	g_assert_nonnull(msg);
	if (body != NULL) {
		g_autoptr(GBytes) bytes = g_bytes_new(body, len);
		soup_message_set_request_body_from_bytes(msg, JSON, bytes);
	}
	if (token != NULL) {
		g_autofree gchar *auth = g_strconcat("Bearer ", token, NULL);
		soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
		                             auth);
	}
	soup_session_send_and_read_async(fx->session, msg, G_PRIORITY_DEFAULT, NULL, reply_done,
	                                 &r);
	api_wait_until(reply_is_done, &r);
	g_assert_no_error(r.error);
	*status = soup_message_get_status(msg);
	return r.body;
}

/* Asserts an error body of the one documented shape, in valid UTF-8 and strict JSON.
 * Returns: (transfer full): error.message */
static gchar *
assert_error_body(const gchar *data, gsize len, const gchar *code)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonObject *err;

	g_assert_true(g_utf8_validate(data, (gssize)len, NULL));
	g_assert_true(qsim_json_gate_check(data, len, &error));
	g_assert_no_error(error);
	g_assert_true(json_parser_load_from_data(parser, data, (gssize)len, &error));
	g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
	err = json_object_get_object_member(json_node_get_object(json_parser_get_root(parser)),
	                                    "error");
	g_assert_nonnull(err);
	g_assert_cmpstr(json_object_get_string_member(err, "code"), ==, code);
	g_assert_nonnull(json_object_get_string_member(err, "message"));
	return g_strdup(json_object_get_string_member(err, "message"));
}

static gchar *
expect_error(ApiFixture *fx, const gchar *method, const gchar *path, const gchar *body, gsize len,
             guint status, const gchar *code)
{
	guint got = 0;
	g_autoptr(GBytes) reply = send_raw(fx, method, path, body, len, NULL, &got);
	gsize n = 0;
	const gchar *data = g_bytes_get_data(reply, &n);

	g_assert_cmpuint(got, ==, status);
	return assert_error_body(data, n, code);
}

static void
assert_alive(ApiFixture *fx)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/health", NULL, NULL, NULL);

	g_assert_cmpuint(r->status, ==, 200);
}

static void
assert_no_requests(ApiFixture *fx)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/requests", NULL, NULL, NULL);

	g_assert_cmpuint(r->status, ==, 200);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(r->json));
	g_assert_cmpuint(json_array_get_length(json_node_get_array(r->json)), ==, 0);
}

/* 100,000 nested '[' made json-glib recurse until qsimd died with SIGSEGV. */
static void
test_deep_nesting(ApiFixture *fx, gconstpointer data)
{
	enum { DEEP = 100000 };
	g_autofree gchar *body = g_strnfill(DEEP, '[');
	g_autofree gchar *objs = g_strnfill(DEEP * 5, ' ');
	g_autofree gchar *msg = NULL;
	g_autofree gchar *msg2 = NULL;

	msg = expect_error(fx, "POST", "/requests", body, DEEP, 400, "bad_request");
	g_assert_nonnull(strstr(msg, "nested deeper than 64 levels"));
	assert_alive(fx);
	for (gsize i = 0; i < DEEP; i++)
		memcpy(objs + i * 5, "{\"a\":", 5);
	msg2 = expect_error(fx, "PUT", "/requests/00000000-0000-0000-0000-000000000000/status",
	                    objs, DEEP * 5, 400, "bad_request");
	g_assert_nonnull(strstr(msg2, "nested deeper than 64 levels"));
	assert_alive(fx);
}

/* Each was accepted by json-glib, most of them turned into a request that ran. */
static void
test_not_json(ApiFixture *fx, gconstpointer data)
{
	static const struct {
		const gchar *body;
		const gchar *reason;
	} cases[] = {
	    {"{'vm_name':'tiny','commands':'echo hi'}", "single-quoted strings"},
	    {"{\"vm_name\":\"tiny\",/* c */\"commands\":\"echo hi\"}", "comments"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"echo hi\"}{\"x\":1}", "unexpected data after"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"echo hi\",\"timeout\":0x10}", "hexadecimal"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"echo hi\",\"timeout\":010}", "leading zeros"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"echo hi\",}", "trailing comma"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"echo hi\",\"timeout\":NaN}", "unexpected"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"a\\u0000; rm -rf /\"}", "\\u0000 (NUL)"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"\\ud800 x\"}", "unpaired high surrogate"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"echo \xff\xfe\"}", "invalid UTF-8"},
	    {"{\"vm_name\":\"tiny\",\"commands\":\"tab\there\"}", "unescaped control"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *msg = expect_error(fx, "POST", "/requests", cases[i].body,
		                                     strlen(cases[i].body), 400, "bad_request");
		g_autofree gchar *shown = g_strescape(cases[i].body, NULL);

		g_test_message("%s -> %s", shown, msg);
		g_assert_nonnull(strstr(msg, "not valid JSON"));
		g_assert_nonnull(strstr(msg, cases[i].reason));
		g_assert_nonnull(strstr(msg, "at byte"));
	}
	/* none of them became a request */
	assert_no_requests(fx);
	assert_alive(fx);
}

/* What the gate lets through still works: escapes, astral characters, big numbers. */
static void
test_valid_json(ApiFixture *fx, gconstpointer data)
{
	const gchar *body = "{\"vm_name\":\"tiny\",\"commands\":\"echo \\u00e9 \\ud83d\\ude00 "
	                    "\xe2\x82\xac\",\"timeout\":  12 }";
	const gchar *big = "{\"vm_name\":\"tiny\",\"commands\":\"x\",\"timeout\":1e400}";
	guint status = 0;
	g_autoptr(GBytes) reply =
	    send_raw(fx, "POST", "/requests", body, strlen(body), NULL, &status);
	g_autoptr(GBytes) reply2 = NULL;
	g_autoptr(ApiResponse) list = NULL;
	g_autofree gchar *msg = NULL;
	JsonObject *row;

	g_assert_cmpuint(status, ==, 201);
	list = api_request(fx, "GET", "/requests", NULL, NULL, NULL);
	g_assert_true(JSON_NODE_HOLDS_ARRAY(list->json));
	row = json_array_get_object_element(json_node_get_array(list->json), 0);
	g_assert_cmpstr(json_object_get_string_member(row, "commands"), ==,
	                "echo \xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac");
	/* valid JSON, refused by validation (422), not by the syntax check (400) */
	reply2 = send_raw(fx, "POST", "/requests", big, strlen(big), NULL, &status);
	g_assert_cmpuint(status, ==, 422);
	msg = assert_error_body(g_bytes_get_data(reply2, NULL), g_bytes_get_size(reply2),
	                        "validation_error");
}

/* '%ff%fe' in a path was echoed as raw bytes: an error body that is not UTF-8. */
static void
test_invalid_utf8_path(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *msg = NULL;
	g_autofree gchar *long_msg = NULL;
	g_autoptr(GString) path = g_string_new("/requests/");

	msg = expect_error(fx, "GET", "/requests/%ff%fe%1b%5b31m", NULL, 0, 400, "bad_request");
	g_test_message("%s", msg);
	g_assert_null(strchr(msg, '\x1b'));
	assert_alive(fx);
	/* a long path of two-byte characters: cut between characters, with an ellipsis */
	for (guint i = 0; i < 200; i++)
		g_string_append(path, "%c3%a9");
	long_msg = expect_error(fx, "GET", path->str, NULL, 0, 400, "bad_request");
	g_test_message("%s", long_msg);
	g_assert_nonnull(strstr(long_msg, "\xe2\x80\xa6"));
	g_assert_null(strstr(long_msg, "\xef\xbf\xbd"));
	assert_alive(fx);
}

/* '%.64s' of a field name cut a two-byte character in half; the message must stay UTF-8. */
static void
test_cut_field_name(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(GString) body = g_string_new("{\"");
	g_autofree gchar *msg = NULL;

	/* 63 ASCII bytes, then 'é' straddling byte 64 */
	for (guint i = 0; i < 63; i++)
		g_string_append_c(body, 'a');
	g_string_append(body, "\xc3\xa9\xc3\xa9\":true}");
	msg =
	    expect_error(fx, "POST", "/vms/tiny/prepare", body->str, body->len, 400, "bad_request");
	g_assert_true(g_str_has_prefix(msg, "Unknown field 'aaaa"));
	assert_alive(fx);
}

/*
 * A raw HTTP client in its own thread: the server runs on this thread's main
 * loop. It sends @head, then @body_len bytes of body (as chunks when
 * @chunked), never the end of the body, and reads what comes back.
 */
typedef struct {
	guint16 port;
	gchar *head;
	gsize body_len;
	gboolean chunked;
	GString *answer;
	gsize sent;
	gint done;
} RawClient;

static gpointer
raw_client_thread(gpointer data)
{
	RawClient *c = data;
	g_autoptr(GSocket) sock =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, c->port);
	g_autofree gchar *block = g_strnfill(16384, 'a');
	gchar buf[4096];
	gssize n;

	g_assert_nonnull(sock);
	/* long enough for a loaded box; a server that waits for the body never answers */
	g_socket_set_timeout(sock, 10);
	g_assert_true(g_socket_connect(sock, addr, NULL, NULL));
	g_assert_cmpint(g_socket_send(sock, c->head, strlen(c->head), NULL, NULL), ==,
	                (gssize)strlen(c->head));
	while (c->sent < c->body_len) {
		gsize want = MIN(sizeof buf * 4, c->body_len - c->sent);
		g_autofree gchar *frame =
		    c->chunked ? g_strdup_printf("%" G_GSIZE_MODIFIER "x\r\n%.*s\r\n", want,
		                                 (int)want, block)
		               : g_strndup(block, want);

		/* the server may hang up once it has answered: stop sending then */
		if (g_socket_send(sock, frame, strlen(frame), NULL, NULL) < 0)
			break;
		c->sent += want;
	}
	while ((n = g_socket_receive(sock, buf, sizeof buf, NULL, NULL)) > 0)
		g_string_append_len(c->answer, buf, n);
	g_atomic_int_set(&c->done, 1);
	/* the test thread may be asleep in the main loop with nothing else to wake it */
	g_main_context_wakeup(NULL);
	return NULL;
}

static gboolean
raw_client_done(gpointer data)
{
	return g_atomic_int_get(&((RawClient *)data)->done) != 0;
}

/* Returns: (transfer full): everything the server sent back */
static GString *
raw_exchange(ApiFixture *fx, const gchar *head, gsize body_len, gboolean chunked, gsize *sent)
{
	RawClient c = {.port = qsim_api_server_get_port(fx->server),
	               .head = g_strdup(head),
	               .body_len = body_len,
	               .chunked = chunked,
	               .answer = g_string_new(NULL)};
	GThread *t = g_thread_new("raw-client", raw_client_thread, &c);

	api_wait_until(raw_client_done, &c);
	g_thread_join(t);
	g_free(c.head);
	*sent = c.sent;
	return c.answer;
}

/* Asserts "HTTP/1.1 <status>" and a JSON error body; returns the message. */
static gchar *
assert_raw_error(GString *answer, guint status, const gchar *code)
{
	g_autofree gchar *prefix = g_strdup_printf("HTTP/1.1 %u ", status);
	const gchar *body = strstr(answer->str, "\r\n\r\n");

	g_test_message("%.*s", (int)MIN(answer->len, 400), answer->str);
	g_assert_true(g_str_has_prefix(answer->str, prefix));
	g_assert_nonnull(body);
	body += 4;
	return assert_error_body(body, answer->len - (gsize)(body - answer->str), code);
}

static void
test_chunked_over_limit(ApiFixture *fx, gconstpointer data)
{
	const gchar *head = "POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	gsize sent = 0;
	/* past the limit, and never terminated: the answer must not wait for the end */
	g_autoptr(GString) answer =
	    raw_exchange(fx, head, QSIM_API_MAX_BODY + 256 * 1024, TRUE, &sent);
	g_autofree gchar *msg = assert_raw_error(answer, 413, "payload_too_large");

	g_assert_true(g_str_has_prefix(msg, "The request body is larger than"));
	assert_alive(fx);
}

static void
test_content_length_over_limit(ApiFixture *fx, gconstpointer data)
{
	const gchar *head = "POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                    "Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
	gsize sent = 0;
	/* 64 KiB of a declared GiB: the answer comes from the headers alone */
	g_autoptr(GString) answer = raw_exchange(fx, head, 64 * 1024, FALSE, &sent);
	g_autofree gchar *msg = assert_raw_error(answer, 413, "payload_too_large");

	assert_alive(fx);
}

static const ApiFixtureOptions auth_opts = {.tokens = TOKEN};

static void
test_unauthenticated_body(ApiFixture *fx, gconstpointer data)
{
	const gchar *huge = "POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                    "Authorization: Bearer wrong\r\n"
	                    "Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
	const gchar *small = "POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                     "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
	const gchar *chunked = "POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                       "Authorization: Bearer wrong\r\nContent-Type: application/json\r\n"
	                       "Transfer-Encoding: chunked\r\n\r\n";
	gsize sent = 0;
	g_autoptr(GString) a1 = NULL;
	g_autoptr(GString) a2 = NULL;
	g_autoptr(GString) a3 = NULL;
	g_autofree gchar *m1 = NULL;
	g_autofree gchar *m2 = NULL;
	g_autofree gchar *m3 = NULL;
	guint status = 0;
	g_autoptr(GBytes) ok = NULL;
	const gchar *body = "{\"vm_name\":\"tiny\",\"commands\":\"x\"}";

	/* a wrong token is told so, not that its (unread) body is too large */
	a1 = raw_exchange(fx, huge, 64 * 1024, FALSE, &sent);
	m1 = assert_raw_error(a1, 401, "unauthorized");
	g_assert_nonnull(strstr(a1->str, "WWW-Authenticate: Bearer"));
	/* below the limit too: 1 KiB of a declared 100,000 bytes is enough to be refused */
	a2 = raw_exchange(fx, small, 1024, FALSE, &sent);
	m2 = assert_raw_error(a2, 401, "unauthorized");
	a3 = raw_exchange(fx, chunked, 64 * 1024, TRUE, &sent);
	m3 = assert_raw_error(a3, 401, "unauthorized");
	assert_alive(fx);
	/* the right token still gets through */
	ok = send_raw(fx, "POST", "/requests", body, strlen(body), TOKEN, &status);
	g_assert_cmpuint(status, ==, 201);
}

#define ADD(path, func, opts)                                                                      \
	g_test_add(path, ApiFixture, opts, api_fixture_setup, func, api_fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/api/hostile/deep-nesting", test_deep_nesting, NULL);
	ADD("/qsim/api/hostile/not-json", test_not_json, NULL);
	ADD("/qsim/api/hostile/valid-json", test_valid_json, NULL);
	ADD("/qsim/api/hostile/invalid-utf8-path", test_invalid_utf8_path, NULL);
	ADD("/qsim/api/hostile/cut-field-name", test_cut_field_name, NULL);
	ADD("/qsim/api/hostile/chunked-over-limit", test_chunked_over_limit, NULL);
	ADD("/qsim/api/hostile/content-length-over-limit", test_content_length_over_limit, NULL);
	ADD("/qsim/api/hostile/unauthenticated-body", test_unauthenticated_body, &auth_opts);
	return g_test_run();
}
