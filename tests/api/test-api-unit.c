#include "config.h"

#include "api/qsim-api-auth.h"
#include "api/qsim-api-error.h"
#include "api/qsim-api-json.h"
#include "api/qsim-api-mapping.h"
#include "api/qsim-api-openapi.h"
#include "api/qsim-api-routes.h"
#include "common/qsim-error.h"

static void
test_routes(void)
{
	g_autofree gchar *param = NULL;
	g_autofree gchar *allow = NULL;
	const QsimApiRoute *r;

	r = qsim_api_routes_match("GET", "/requests/abc/logs", &param, &allow);
	g_assert_nonnull(r);
	g_assert_cmpstr(r->pattern, ==, "/requests/{uuid}/logs");
	g_assert_cmpstr(param, ==, "abc");
	g_assert_null(allow);
	g_clear_pointer(&param, g_free);

	r = qsim_api_routes_match("HEAD", "/health", &param, &allow);
	g_assert_nonnull(r);
	g_assert_false(r->needs_auth);

	r = qsim_api_routes_match("POST", "/requests/abc", &param, &allow);
	g_assert_null(r);
	g_assert_cmpstr(allow, ==, "GET, HEAD, DELETE, OPTIONS");
	g_clear_pointer(&allow, g_free);

	r = qsim_api_routes_match("GET", "/requests/abc/nothing", &param, &allow);
	g_assert_null(r);
	g_assert_null(allow);
	r = qsim_api_routes_match("GET", "/requests//logs", &param, &allow);
	g_assert_null(r);
	g_assert_null(allow);
}

static void
test_auth_check(void)
{
	const gchar *tokens[] = {"alpha", "beta-token", NULL};

	g_assert_true(qsim_api_auth_check(tokens, "Bearer alpha"));
	g_assert_true(qsim_api_auth_check(tokens, "bearer beta-token"));
	g_assert_false(qsim_api_auth_check(tokens, "Bearer alph"));
	g_assert_false(qsim_api_auth_check(tokens, "Bearer alphaa"));
	g_assert_false(qsim_api_auth_check(tokens, "Bearer "));
	g_assert_false(qsim_api_auth_check(tokens, "alpha"));
	g_assert_false(qsim_api_auth_check(tokens, NULL));
	g_assert_false(qsim_api_auth_check(NULL, "Bearer alpha"));
}

static void
test_loopback(void)
{
	g_assert_true(qsim_api_auth_host_is_loopback("127.0.0.1"));
	g_assert_true(qsim_api_auth_host_is_loopback("127.1.2.3"));
	g_assert_true(qsim_api_auth_host_is_loopback("::1"));
	g_assert_true(qsim_api_auth_host_is_loopback("localhost"));
	g_assert_false(qsim_api_auth_host_is_loopback("0.0.0.0"));
	g_assert_false(qsim_api_auth_host_is_loopback("::"));
	g_assert_false(qsim_api_auth_host_is_loopback("192.168.1.10"));
	g_assert_false(qsim_api_auth_host_is_loopback("example.org"));
}

static void
test_timestamp(void)
{
	g_autofree gchar *ts = qsim_api_json_timestamp(1795689000123);

	g_assert_cmpstr(ts, ==, "2026-11-26T10:30:00.123Z");
	g_assert_null(qsim_api_json_timestamp(0));
}

/* The reference: what the formatter replaced, through GDateTime */
static gchar *
timestamp_via_gdatetime(gint64 unix_ms)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(unix_ms / 1000);
	g_autofree gchar *base = NULL;

	if (dt == NULL)
		return NULL;
	base = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
	return g_strdup_printf("%s.%03dZ", base, (gint)(unix_ms % 1000));
}

static void
check_timestamp(gint64 unix_ms)
{
	g_autofree gchar *got = qsim_api_json_timestamp(unix_ms);
	g_autofree gchar *want = timestamp_via_gdatetime(unix_ms);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autofree gchar *quoted = g_strdup_printf("\"%s\"", want);

	g_assert_cmpstr(got, ==, want);
	qsim_api_json_append_timestamp(text, unix_ms);
	g_assert_cmpstr(text->str, ==, quoted);
}

static void
test_timestamp_calendar(void)
{
	const gint64 edges[] = {
	    1,                                  /* 1970-01-01T00:00:00.001Z */
	    86399999,                           /* the last ms of the first day */
	    951782400000,                       /* 2000-02-29, a leap day in a /400 year */
	    4107456000000,                      /* 2100-02-28: 2100 is no leap year */
	    4107542400000,                      /* 2100-03-01 */
	    1709164800000,                      /* 2024-02-29 */
	    1735689599999,                      /* 2024-12-31T23:59:59.999Z */
	    G_GINT64_CONSTANT(253402300799999), /* 9999-12-31T23:59:59.999Z, the last one */
	};
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261126);
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(edges); i++)
		check_timestamp(edges[i]);
	/* every day of several centuries, at a varying time of day */
	for (gint64 day = 0; day < 200 * 366; day += 1)
		check_timestamp(day * 86400000 + (day * 7919) % 86400000 + 1);
	for (guint i = 0; i < 20000; i++)
		check_timestamp((gint64)(g_rand_double(rand) * 253402300799999.0) + 1);
	/* unset and out of range: no timestamp, JSON null */
	g_assert_null(qsim_api_json_timestamp(-5));
	g_assert_null(qsim_api_json_timestamp(G_GINT64_CONSTANT(253402300800000)));
	g_assert_null(qsim_api_json_timestamp(G_MAXINT64));
	qsim_api_json_append_timestamp(text, 0);
	g_assert_cmpstr(text->str, ==, "null");
}

static void
test_json_append(void)
{
	const gint64 ints[] = {0,    1,          -1,         9,          10,        42,
	                       -300, G_MAXINT32, G_MININT32, G_MAXINT64, G_MININT64};
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(ints); i++) {
		g_autofree gchar *want = g_strdup_printf("%" G_GINT64_FORMAT, ints[i]);

		g_string_truncate(text, 0);
		qsim_api_json_append_int(text, ints[i]);
		g_assert_cmpstr(text->str, ==, want);
	}
	/* escapes at the start, the end, between runs, and control characters */
	g_string_truncate(text, 0);
	qsim_api_json_append_string(text, "\"a\\b\nc\rd\te\x01"
	                                  "f\x1f\"");
	g_assert_cmpstr(text->str, ==, "\"\\\"a\\\\b\\nc\\rd\\te\\u0001f\\u001f\\\"\"");
	g_string_truncate(text, 0);
	qsim_api_json_append_string(text, "plain text, h\xc3\xa9");
	g_assert_cmpstr(text->str, ==, "\"plain text, h\xc3\xa9\"");
	g_string_truncate(text, 0);
	qsim_api_json_append_string(text, "");
	g_assert_cmpstr(text->str, ==, "\"\"");
	g_string_truncate(text, 0);
	qsim_api_json_append_string(text, NULL);
	g_assert_cmpstr(text->str, ==, "null");
	/* invalid UTF-8 is replaced, never emitted */
	g_string_truncate(text, 0);
	qsim_api_json_append_string(text, "a\xff"
	                                  "b");
	g_assert_true(g_utf8_validate(text->str, -1, NULL));
	g_assert_cmpstr(text->str, ==,
	                "\"a\xef\xbf\xbd"
	                "b\"");
}

static void
test_error_status(void)
{
	const struct {
		QsimError code;
		guint status;
	} map[] = {
	    {QSIM_ERROR_NOT_FOUND, 404}, {QSIM_ERROR_INVALID, 422},      {QSIM_ERROR_CONFLICT, 409},
	    {QSIM_ERROR_AMBIGUOUS, 409}, {QSIM_ERROR_BUSY, 503},         {QSIM_ERROR_STORE, 503},
	    {QSIM_ERROR_INTERNAL, 500},  {QSIM_ERROR_UNAUTHORIZED, 401}, {QSIM_ERROR_QMP, 500},
	};

	for (guint i = 0; i < G_N_ELEMENTS(map); i++) {
		g_autoptr(GError) e = g_error_new_literal(QSIM_ERROR, map[i].code, "x");
		g_assert_cmpuint(qsim_api_error_status_for(e), ==, map[i].status);
	}
}

static void
test_log_mapping(void)
{
	const guint8 bytes[] = {'o', 'k', 0x00, 0xfe};
	g_autoptr(QsimLogEntry) text =
	    qsim_log_entry_new(QSIM_LOG_STDERR, 1795689000000, (const guint8 *)"é\n", 3);
	g_autoptr(QsimLogEntry) bin =
	    qsim_log_entry_new(QSIM_LOG_STDOUT, 1795689000000, bytes, sizeof bytes);
	g_autoptr(JsonNode) t = NULL;
	g_autoptr(JsonNode) b = NULL;
	g_autofree gchar *ts = NULL;
	g_autofree gchar *bs = NULL;

	text->seq = 7;
	bin->seq = 8;
	t = qsim_api_mapping_log(text);
	b = qsim_api_mapping_log(bin);
	ts = json_to_string(t, FALSE);
	bs = json_to_string(b, FALSE);
	g_assert_cmpstr(ts, ==,
	                "{\"seq\":7,\"timestamp\":\"2026-11-26T10:30:00.000Z\",\"log_type\":"
	                "\"stderr\",\"encoding\":\"utf-8\",\"output\":\"é\\n\"}");
	g_assert_cmpstr(bs, ==,
	                "{\"seq\":8,\"timestamp\":\"2026-11-26T10:30:00.000Z\",\"log_type\":"
	                "\"stdout\",\"encoding\":\"base64\",\"output\":\"b2sA/g==\"}");
}

/* The hand-written JSON of the hot paths must say exactly what json-glib says. */
static void
test_request_text_matches_builder(void)
{
	g_autoptr(QsimRequest) r = qsim_request_new();
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(JsonNode) built = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonObject *a, *b;

	r->uuid = g_strdup("123e4567-e89b-42d3-a456-426614174000");
	r->vm_name = g_strdup("tiny");
	r->commands = g_strdup("echo \"hi\" \\ there\n\ttab \x01 \xc3\xa9 </script>");
	r->timeout_s = 300;
	r->status = QSIM_STATUS_FAILED;
	r->created_at = 1795689000123;
	r->updated_at = 1795689000456;
	r->started_at = 1795689001000;
	r->has_exit_code = TRUE;
	r->exit_code = -3;
	r->error = g_strdup("bad \xff byte");
	r->attempts = 2;
	qsim_api_mapping_append_request(text, r);
	g_assert_true(json_parser_load_from_data(parser, text->str, (gssize)text->len, &error));
	g_assert_no_error(error);
	built = qsim_api_mapping_request(r);
	a = json_node_get_object(json_parser_get_root(parser));
	b = json_node_get_object(built);
	g_assert_cmpuint(json_object_get_size(a), ==, json_object_get_size(b));
	g_assert_cmpstr(json_object_get_string_member(a, "commands"), ==, r->commands);
	g_assert_cmpstr(json_object_get_string_member(a, "created_at"), ==,
	                json_object_get_string_member(b, "created_at"));
	g_assert_cmpstr(json_object_get_string_member(a, "started_at"), ==,
	                "2026-11-26T10:30:01.000Z");
	g_assert_true(json_object_get_null_member(a, "finished_at"));
	g_assert_true(json_object_get_null_member(a, "agent_id"));
	g_assert_cmpint(json_object_get_int_member(a, "exit_code"), ==, -3);
	g_assert_cmpint(json_object_get_int_member(a, "attempts"), ==, 2);
	g_assert_cmpstr(json_object_get_string_member(a, "status"), ==, "failed");
	/* invalid UTF-8 in a row still yields valid JSON */
	g_assert_true(g_utf8_validate(json_object_get_string_member(a, "error"), -1, NULL));
}

static void
test_openapi_document(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) doc = qsim_api_openapi_load(&error);
	g_autofree gchar *html = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(doc);
	html = qsim_api_openapi_render_html(doc);
	g_assert_true(g_str_has_prefix(html, "<!DOCTYPE html>"));
	g_assert_nonnull(g_strstr_len(html, -1, "<code>/requests/{uuid}/status</code>"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/api/unit/routes", test_routes);
	g_test_add_func("/qsim/api/unit/auth-check", test_auth_check);
	g_test_add_func("/qsim/api/unit/loopback", test_loopback);
	g_test_add_func("/qsim/api/unit/timestamp", test_timestamp);
	g_test_add_func("/qsim/api/unit/timestamp-calendar", test_timestamp_calendar);
	g_test_add_func("/qsim/api/unit/json-append", test_json_append);
	g_test_add_func("/qsim/api/unit/error-status", test_error_status);
	g_test_add_func("/qsim/api/unit/log-mapping", test_log_mapping);
	g_test_add_func("/qsim/api/unit/openapi-document", test_openapi_document);
	g_test_add_func("/qsim/api/unit/request-text", test_request_text_matches_builder);
	return g_test_run();
}
