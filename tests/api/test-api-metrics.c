/*
 * GET /metrics over real HTTP: the text format, counters read from the
 * database (so another process's writes show), bounded labels, the auth rules
 * and METRICS_LOOPBACK_NO_AUTH, and the metrics-only server of `qsimd agents`.
 */
#include "config.h"

#include <string.h>

#include "api-fixture.h"
#include "api/qsim-api-metrics.h"
#include "common/qsim-metrics.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store.h"

#define LEASE_MS 30000

static gchar *
body_text(ApiResponse *r)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(r->body, &len);

	return g_strndup(data, len);
}

static gchar *
scrape(ApiFixture *fx)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/metrics", NULL, NULL, NULL);

	g_assert_cmpuint(r->status, ==, 200);
	return body_text(r);
}

/* the value of the one sample line that starts with @series followed by a space */
static gdouble
sample_value(const gchar *text, const gchar *series)
{
	g_autofree gchar *needle = g_strdup_printf("\n%s ", series);
	const gchar *p = strstr(text, needle);

	if (p == NULL) {
		g_test_message("no sample %s in:\n%s", series, text);
		g_assert_not_reached();
	}
	return g_ascii_strtod(p + strlen(needle), NULL);
}

static void
finish_one(QsimStore *store, const gchar *agent, QsimStatus final, gboolean has_exit, gint code,
           const gchar *reason)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_claim_next(store, agent, LEASE_MS, 0, &error);
	QsimStatus st;

	g_assert_no_error(error);
	g_assert_nonnull(r);
	g_assert_true(qsim_store_set_start_mode(store, r->uuid, "cold", &error));
	g_assert_true(qsim_store_mark_running(store, r->uuid, agent, &error));
	g_assert_true(qsim_store_finish_request(store, r->uuid, agent, final, has_exit, code,
	                                        reason, &st, &error));
	g_assert_no_error(error);
}

static void
test_format_and_store_counters(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) r = NULL;
	g_autoptr(QsimStore) other = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *db = g_build_filename(fx->tmpdir, "qsim.db", NULL);
	g_autofree gchar *text = NULL;
	const gchar *type;

	r = api_request(fx, "GET", "/metrics", NULL, NULL, NULL);
	g_assert_cmpuint(r->status, ==, 200);
	type = api_response_header(r, "Content-Type");
	g_assert_true(g_str_has_prefix(type, "text/plain; version=0.0.4"));
	text = body_text(r);
	g_assert_cmpfloat(sample_value(text, "qsim_requests_submitted_total"), ==, 0);
	g_assert_nonnull(strstr(text, "# TYPE qsim_requests_finished_total counter\n"));
	g_assert_nonnull(strstr(text, "# TYPE qsim_first_stdout_byte_seconds histogram\n"));
	g_assert_cmpfloat(sample_value(text, "qsim_vm_slots_max"), ==, 10);
	g_assert_cmpfloat(sample_value(text, "qsim_database_up"), ==, 1);
	g_assert_cmpfloat(sample_value(text, "qsim_database_size_bytes"), >, 0);
	g_assert_cmpfloat(sample_value(text, "qsim_process_resident_memory_bytes"), >, 0);
	g_assert_cmpfloat(sample_value(text, "qsim_process_open_fds"), >, 0);
	g_assert_nonnull(strstr(text, "qsim_build_info{version=\"" PACKAGE_VERSION "\""));
	/* `qsimd api` runs no agents: their gauges come from the agents' own endpoint */
	g_assert_null(strstr(text, "qsim_agents{"));
	g_clear_pointer(&text, g_free);

	/* two through this server, three through another connection (another process) */
	g_free(api_submit(fx, "true"));
	g_free(api_submit(fx, "false"));
	finish_one(fx->store, "a", QSIM_STATUS_DONE, TRUE, 0, NULL);
	finish_one(fx->store, "a", QSIM_STATUS_FAILED, TRUE, 3, "exit code 3");
	other = qsim_store_open(db, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < 3; i++) {
		g_autoptr(QsimRequest) q =
		    qsim_store_create_request(other, "tiny", "x", 60, &error);
		g_assert_no_error(error);
		g_assert_nonnull(q);
	}
	finish_one(other, "b", QSIM_STATUS_FAILED, FALSE, 0, "timed out after 60 s");
	finish_one(other, "b", QSIM_STATUS_FAILED, FALSE, 0,
	           "guest did not become ready within 6 s");

	text = scrape(fx);
	g_assert_cmpfloat(sample_value(text, "qsim_requests_submitted_total"), ==, 5);
	g_assert_cmpfloat(
	    sample_value(text, "qsim_requests_finished_total{status=\"done\",reason=\"success\"}"),
	    ==, 1);
	g_assert_cmpfloat(sample_value(text, "qsim_requests_finished_total{status=\"failed\","
	                                     "reason=\"exit_nonzero\"}"),
	                  ==, 1);
	g_assert_cmpfloat(
	    sample_value(text,
	                 "qsim_requests_finished_total{status=\"failed\",reason=\"timeout\"}"),
	    ==, 1);
	g_assert_cmpfloat(sample_value(text, "qsim_requests_finished_total{status=\"failed\","
	                                     "reason=\"boot_timeout\"}"),
	                  ==, 1);
	g_assert_cmpfloat(sample_value(text, "qsim_requests{status=\"failed\"}"), ==, 3);
	g_assert_cmpfloat(sample_value(text, "qsim_requests{status=\"pending\"}"), ==, 1);
	g_assert_cmpfloat(sample_value(text, "qsim_vm_starts_total{start_mode=\"cold\"}"), ==, 4);
	g_assert_cmpfloat(sample_value(text, "qsim_oldest_pending_age_seconds"), >=, 0);
	/* free text never becomes a label */
	g_assert_null(strstr(text, "timed out after"));
}

static void
test_http_labels(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *text = NULL;
	const gchar *uuid = "0badc0de-1111-4222-8333-444455556666";
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);

	g_clear_pointer(&text, g_free);
	api_response_free(api_request(fx, "GET", path, NULL, NULL, NULL));
	api_response_free(api_request(fx, "GET", "/no/such/secret-path", NULL, NULL, NULL));
	api_response_free(api_request(fx, "BREW", "/requests", NULL, NULL, NULL));
	api_response_free(api_request(fx, "GET", "/health/", NULL, NULL, NULL));
	text = scrape(fx);
	g_assert_nonnull(strstr(
	    text,
	    "qsim_http_requests_total{route=\"/requests/{uuid}\",method=\"GET\",code=\"4xx\"} "));
	g_assert_nonnull(strstr(
	    text, "qsim_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"4xx\"} "));
	g_assert_nonnull(strstr(
	    text, "qsim_http_requests_total{route=\"/requests\",method=\"other\",code=\"4xx\"} "));
	g_assert_nonnull(strstr(
	    text, "qsim_http_requests_total{route=\"/health\",method=\"GET\",code=\"2xx\"} "));
	g_assert_nonnull(
	    strstr(text, "qsim_http_request_duration_seconds_count{route=\"/health\"} "));
	/* neither the uuid nor the unknown path nor the method is a label value */
	g_assert_null(strstr(text, uuid));
	g_assert_null(strstr(text, "secret-path"));
	g_assert_null(strstr(text, "BREW"));
}

static void
test_auth(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) anon = api_request(fx, "GET", "/metrics", NULL, NULL, NULL);
	g_autoptr(ApiResponse) with =
	    api_request(fx, "GET", "/metrics", NULL, NULL, "Authorization", "Bearer s3cret", NULL);

	g_assert_cmpuint(anon->status, ==, 401);
	g_assert_cmpuint(with->status, ==, 200);
}

static void
test_loopback_no_auth(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(ApiResponse) anon = api_request(fx, "GET", "/metrics", NULL, NULL, NULL);
	g_autoptr(ApiResponse) head = api_request(fx, "HEAD", "/metrics", NULL, NULL, NULL);
	g_autoptr(ApiResponse) other = api_request(fx, "GET", "/requests", NULL, NULL, NULL);
	g_autoptr(ApiResponse) post = api_request(fx, "POST", "/metrics", NULL, NULL, NULL);

	/* from 127.0.0.1 without a token: only GET and HEAD of /metrics */
	g_assert_cmpuint(anon->status, ==, 200);
	g_assert_cmpuint(head->status, ==, 200);
	g_assert_cmpuint(other->status, ==, 401);
	g_assert_cmpuint(post->status, ==, 401);
}

static void
agents_counts(guint *n_agents, guint *n_busy, gpointer user_data)
{
	*n_agents = 3;
	*n_busy = 1;
}

static void
warm_counts(const gchar *vm_name, guint *n_parked, guint *n_starting, gpointer user_data)
{
	*n_parked = 2;
	*n_starting = 1;
}

static void
test_metrics_only(ApiFixture *fx, gconstpointer data)
{
	g_autoptr(QsimApiServer) server = qsim_api_server_new(fx->config, fx->store);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *base = g_strdup(fx->base);
	g_autofree gchar *text = NULL;
	g_autoptr(ApiResponse) requests = NULL;
	g_autoptr(ApiResponse) health = NULL;

	qsim_api_server_set_metrics_only(server, "127.0.0.1", 0);
	qsim_api_server_set_agents_func(server, agents_counts, NULL);
	qsim_api_server_set_warm_pool_func(server, warm_counts, NULL);
	g_assert_true(qsim_api_server_listen(server, &error));
	g_assert_no_error(error);
	/* the fixture's helpers talk to fx->base: point them at the metrics server */
	g_free(fx->base);
	fx->base = g_strdup_printf("http://127.0.0.1:%u", qsim_api_server_get_port(server));
	text = scrape(fx);
	requests = api_request(fx, "GET", "/requests", NULL, NULL, NULL);
	health = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_free(fx->base);
	fx->base = g_steal_pointer(&base);
	qsim_api_server_stop(server);

	g_assert_cmpuint(requests->status, ==, 404);
	g_assert_cmpuint(health->status, ==, 404);
	g_assert_cmpfloat(sample_value(text, "qsim_agents{state=\"busy\"}"), ==, 1);
	g_assert_cmpfloat(sample_value(text, "qsim_agents{state=\"idle\"}"), ==, 2);
	g_assert_cmpfloat(sample_value(text, "qsim_warm_vms{state=\"parked\"}"), ==, 2);
	g_assert_cmpfloat(sample_value(text, "qsim_vms_running"), ==, 4);
	g_assert_nonnull(strstr(text, "\nqsim_process_open_fds "));
	/* shared state is the API's to export, never twice */
	g_assert_null(strstr(text, "qsim_requests_submitted_total"));
	g_assert_null(strstr(text, "qsim_requests{"));
}

static void
test_qemu_version(void)
{
	g_autofree gchar *v = qsim_api_metrics_parse_qemu_version(
	    "QEMU emulator version 7.2.0 (Debian 1:7.2+dfsg-7+deb12u3)\nCopyright (c) ...\n");
	g_autofree gchar *none = qsim_api_metrics_parse_qemu_version("garbage");
	g_autofree gchar *evil = qsim_api_metrics_parse_qemu_version("version 1\"} 2\n");

	g_assert_cmpstr(v, ==, "7.2.0");
	g_assert_null(none);
	g_assert_cmpstr(evil, ==, "1");
}

int
main(int argc, char **argv)
{
	static const gchar *const loopback_env[] = {"QSIM_METRICS_LOOPBACK_NO_AUTH=true", NULL};
	static const ApiFixtureOptions with_token = {.tokens = "s3cret"};
	static const ApiFixtureOptions loopback = {.tokens = "s3cret", .env = loopback_env};

	g_test_init(&argc, &argv, NULL);
	g_test_add("/api/metrics/format-and-store-counters", ApiFixture, NULL, api_fixture_setup,
	           test_format_and_store_counters, api_fixture_teardown);
	g_test_add("/api/metrics/http-labels", ApiFixture, NULL, api_fixture_setup,
	           test_http_labels, api_fixture_teardown);
	g_test_add("/api/metrics/auth", ApiFixture, &with_token, api_fixture_setup, test_auth,
	           api_fixture_teardown);
	g_test_add("/api/metrics/loopback-no-auth", ApiFixture, &loopback, api_fixture_setup,
	           test_loopback_no_auth, api_fixture_teardown);
	g_test_add("/api/metrics/metrics-only", ApiFixture, NULL, api_fixture_setup,
	           test_metrics_only, api_fixture_teardown);
	g_test_add_func("/api/metrics/qemu-version", test_qemu_version);
	return g_test_run();
}
