#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include "api-fixture.h"
#include "store/qsim-log-entry.h"
#include "store/qsim-store.h"
#include "test-util.h"

/* Connection-level hardening of the API server: descriptor exhaustion, the
 * connection and stream caps, header timeouts, the Host check, preflights
 * that reveal nothing, and slow stream readers. Bounds on time are hang
 * guards only, generous for a loaded box. */

#define READ_LIMIT_S 30

/* ------------------------------------------------------------------------ */
/* raw clients: libsoup's client would add its own Host and retry on resets */

static GSocket *
raw_connect(guint16 port, gint rcvbuf)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(lo, port);
	g_autoptr(GSocket) sock =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

	g_assert_no_error(error);
	/* a small window makes a client that never reads fill up quickly */
	if (rcvbuf > 0)
		g_assert_true(g_socket_set_option(sock, SOL_SOCKET, SO_RCVBUF, rcvbuf, NULL));
	/* the kernel completes the handshake: no main loop needed */
	g_assert_true(g_socket_connect(sock, sa, NULL, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&sock);
}

static void
raw_send(GSocket *sock, const gchar *text)
{
	g_autoptr(GError) error = NULL;

	g_assert_cmpint(g_socket_send(sock, text, strlen(text), NULL, &error), ==,
	                (gssize)strlen(text));
	g_assert_no_error(error);
}

typedef struct {
	GString *data;
	gboolean closed;    /* EOF or reset from the server */
	gboolean timed_out; /* nothing more within READ_LIMIT_S */
} RawRead;

static gboolean
raw_readable(GSocket *sock, GIOCondition cond, gpointer user_data)
{
	RawRead *r = user_data;
	gchar buf[16384];

	for (;;) {
		g_autoptr(GError) error = NULL;
		gssize n =
		    g_socket_receive_with_blocking(sock, buf, sizeof buf, FALSE, NULL, &error);

		if (n > 0) {
			g_string_append_len(r->data, buf, n);
			continue;
		}
		if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
			return G_SOURCE_CONTINUE;
		r->closed = TRUE;
		return G_SOURCE_REMOVE;
	}
}

static gboolean
raw_expired(gpointer user_data)
{
	((RawRead *)user_data)->timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
raw_is_done(gpointer user_data)
{
	RawRead *r = user_data;

	return r->closed || r->timed_out;
}

/* Reads until the server closes, running the loop (an in-process server
 * lives on it). Returns: (transfer full): what was read */
static gchar *
raw_read_all(GSocket *sock, gboolean *closed)
{
	RawRead r = {g_string_new(NULL), FALSE, FALSE};
	g_autoptr(GSource) src = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
	guint guard = g_timeout_add_seconds(READ_LIMIT_S, raw_expired, &r);

	g_source_set_callback(src, G_SOURCE_FUNC(raw_readable), &r, NULL);
	g_source_attach(src, NULL);
	api_wait_until(raw_is_done, &r);
	g_source_destroy(src);
	if (!r.timed_out)
		g_source_remove(guard);
	*closed = r.closed;
	return g_string_free(r.data, FALSE);
}

/* One request on a fresh connection. Returns: (transfer full): the response */
static gchar *
raw_request(guint16 port, const gchar *request)
{
	g_autoptr(GSocket) sock = raw_connect(port, 0);
	gboolean closed = FALSE;
	gchar *resp;

	raw_send(sock, request);
	resp = raw_read_all(sock, &closed);
	g_assert_true(closed);
	return resp;
}

static guint
response_status(const gchar *resp)
{
	g_assert_true(g_str_has_prefix(resp, "HTTP/1."));
	return (guint)g_ascii_strtoull(resp + 9, NULL, 10);
}

/* Returns: the error code of a JSON error response, asserting the shape */
static gchar *
response_error_code(const gchar *resp)
{
	const gchar *body = strstr(resp, "\r\n\r\n");
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonObject *err;

	g_assert_nonnull(body);
	g_assert_nonnull(strstr(resp, "application/json"));
	g_assert_true(json_parser_load_from_data(parser, body + 4, -1, &error));
	g_assert_no_error(error);
	err = json_object_get_object_member(json_node_get_object(json_parser_get_root(parser)),
	                                    "error");
	g_assert_nonnull(err);
	g_assert_nonnull(json_object_get_string_member(err, "message"));
	return g_strdup(json_object_get_string_member(err, "code"));
}

static guint16
fx_port(ApiFixture *fx)
{
	return qsim_api_server_get_port(fx->server);
}

static void
assert_healthy(ApiFixture *fx)
{
	g_autoptr(ApiResponse) r = api_request(fx, "GET", "/health", NULL, NULL, NULL);

	g_assert_cmpuint(r->status, ==, 200);
}

typedef struct {
	ApiFixture *fx;
	guint n;
} CountWait;

static gboolean
connections_are(gpointer data)
{
	CountWait *w = data;

	return qsim_api_server_get_connection_count(w->fx->server) == w->n;
}

static void
wait_connections(ApiFixture *fx, guint n)
{
	CountWait w = {fx, n};

	api_wait_until(connections_are, &w);
}

/* ------------------------------------------------------------------------ */
/* descriptor exhaustion, against a real qsimd */

#define FD_LIMIT 256
#define FD_CLIENTS 400

static void
lower_nofile(gpointer user_data)
{
	/* the hard limit too: qsimd raises its soft limit to the hard one */
	struct rlimit rl = {.rlim_cur = FD_LIMIT, .rlim_max = FD_LIMIT};

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	setrlimit(RLIMIT_NOFILE, &rl);
}

static gboolean
port_is_up(guint16 port)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) conn =
	    g_socket_client_connect_to_host(client, "127.0.0.1", port, NULL, NULL);

	return conn != NULL;
}

/* The health check gets a blocking socket with a timeout: the daemon is in
 * another process, and a refused accept looks like a silent server. */
static guint
daemon_health(guint16 port)
{
	g_autoptr(GSocket) sock = raw_connect(port, 0);
	gboolean closed = FALSE;
	g_autofree gchar *resp = NULL;

	raw_send(sock, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	resp = raw_read_all(sock, &closed);
	if (!closed || resp[0] == '\0')
		return 0;
	return response_status(resp);
}

/* QSIM_BUILD_ROOT (set by meson test) lets the test run against another build */
static gchar *
qsimd_path(void)
{
	const gchar *root = g_getenv("QSIM_BUILD_ROOT");

	return root != NULL ? g_build_filename(root, "src", "daemon", "qsimd", NULL)
	                    : g_strdup(QSIMD);
}

static void
test_fd_exhaustion(void)
{
	g_autofree gchar *qsimd = qsimd_path();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmpdir = g_dir_make_tmp("qsim-conn-XXXXXX", &error);
	g_autofree gchar *images = g_build_filename(tmpdir, "images", NULL);
	g_autofree gchar *configs = g_build_filename(tmpdir, "configs", NULL);
	g_autofree gchar *keyfile = g_build_filename(tmpdir, "qsimd.conf", NULL);
	g_autofree gchar *db = g_build_filename(tmpdir, "qsim.db", NULL);
	g_autofree gchar *log = g_build_filename(tmpdir, "qsimd.log", NULL);
	guint16 port = qsim_test_free_port();
	g_autofree gchar *port_text = g_strdup_printf("%u", port);
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) daemon = NULL;
	g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func(g_object_unref);
	struct rlimit rl;
	guint i;

	g_assert_no_error(error);
	g_assert_cmpint(g_mkdir(images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(configs, 0700), ==, 0);
	g_assert_true(g_file_set_contents(keyfile, "", -1, &error));
	/* this test process holds all the clients: it needs the descriptors */
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &rl), ==, 0);
	if (rl.rlim_max < FD_CLIENTS + 64) {
		g_test_skip("the hard RLIMIT_NOFILE is too low for the clients");
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &rl), ==, 0);

	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
	g_subprocess_launcher_unsetenv(launcher, "QSIM_API_TOKENS");
	g_subprocess_launcher_setenv(launcher, "HOME", tmpdir, TRUE);
	g_subprocess_launcher_setenv(launcher, "XDG_CONFIG_HOME", tmpdir, TRUE);
	g_subprocess_launcher_set_cwd(launcher, tmpdir);
	g_subprocess_launcher_set_child_setup(launcher, lower_nofile, NULL, NULL);
	g_subprocess_launcher_set_stdout_file_path(launcher, log);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	daemon = g_subprocess_launcher_spawn(
	    launcher, &error, qsimd, "--config", keyfile, "--db", db, "--host", "127.0.0.1",
	    "--port", port_text, "--images-dir", images, "--configs-dir", configs, "api", NULL);
	g_assert_no_error(error);
	for (i = 0; i < 300 && !port_is_up(port); i++) {
		g_assert_nonnull(g_subprocess_get_identifier(daemon));
		g_usleep(100 * 1000);
	}
	g_assert_cmpuint(i, <, 300);
	g_assert_cmpuint(daemon_health(port), ==, 200);

	/* more idle clients than the daemon has descriptors: the kernel still
	 * completes every handshake, so accept() runs dry on EMFILE */
	for (i = 0; i < FD_CLIENTS; i++)
		g_ptr_array_add(clients, raw_connect(port, 0));
	/* long enough for the daemon to hit the limit; no timing is asserted */
	g_usleep(500 * 1000);
	g_ptr_array_set_size(clients, 0);

	g_assert_cmpuint(daemon_health(port), ==, 200);
	g_assert_nonnull(g_subprocess_get_identifier(daemon));
	g_subprocess_send_signal(daemon, SIGTERM);
	g_subprocess_wait(daemon, NULL, &error);
	g_assert_no_error(error);
	g_unlink(keyfile);
	g_unlink(log);
	g_unlink(db);
	{
		g_autofree gchar *wal = g_strconcat(db, "-wal", NULL);
		g_autofree gchar *shm = g_strconcat(db, "-shm", NULL);
		g_unlink(wal);
		g_unlink(shm);
	}
	g_rmdir(images);
	g_rmdir(configs);
	g_rmdir(tmpdir);
}

/* ------------------------------------------------------------------------ */
/* in-process cases */

static void
test_connection_cap(ApiFixture *fx, gconstpointer user_data)
{
	g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GSocket) extra = NULL;
	g_autofree gchar *resp = NULL;
	g_autofree gchar *code = NULL;
	gboolean closed = FALSE;

	assert_healthy(fx);
	/* the session's kept-alive connection would count: start from none */
	g_clear_object(&fx->session);
	fx->session = soup_session_new_with_options("timeout", 60, "proxy-resolver", NULL, NULL);
	wait_connections(fx, 0);
	qsim_api_server_set_limits(fx->server, 3, 0, 30, 30);
	for (guint i = 0; i < 3; i++)
		g_ptr_array_add(idle, raw_connect(fx_port(fx), 0));
	wait_connections(fx, 3);

	extra = raw_connect(fx_port(fx), 0);
	raw_send(extra, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
	resp = raw_read_all(extra, &closed);
	g_assert_true(closed);
	g_assert_cmpuint(response_status(resp), ==, 503);
	code = response_error_code(resp);
	g_assert_cmpstr(code, ==, "too_many_connections");
	/* the refused one never counted */
	g_assert_cmpuint(qsim_api_server_get_connection_count(fx->server), ==, 3);

	/* slots come back as clients leave */
	g_ptr_array_set_size(idle, 0);
	wait_connections(fx, 0);
	assert_healthy(fx);
}

static void
test_stream_cap(ApiFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *uuid = api_submit(fx, "echo hi");
	g_autofree gchar *req = g_strdup_printf("GET /requests/%s/logs?follow=1 HTTP/1.1\r\n"
	                                        "Host: localhost\r\n\r\n",
	                                        uuid);
	g_autofree gchar *closing = g_strdup_printf("GET /requests/%s/logs?follow=1 HTTP/1.1\r\n"
	                                            "Host: localhost\r\nConnection: close\r\n\r\n",
	                                            uuid);
	g_autoptr(GSocket) first = NULL;
	g_autofree gchar *resp = NULL;
	g_autofree gchar *code = NULL;

	qsim_api_server_set_limits(fx->server, 100, 1, 30, 30);
	first = raw_connect(fx_port(fx), 0);
	raw_send(first, req);
	while (qsim_api_server_get_stream_count(fx->server) < 1)
		g_main_context_iteration(NULL, TRUE);

	resp = raw_request(fx_port(fx), closing);
	g_assert_cmpuint(response_status(resp), ==, 503);
	code = response_error_code(resp);
	g_assert_cmpstr(code, ==, "too_many_streams");
	g_assert_cmpuint(qsim_api_server_get_stream_count(fx->server), ==, 1);
	assert_healthy(fx);
}

static void
test_header_timeout(ApiFixture *fx, gconstpointer user_data)
{
	g_autoptr(GSocket) silent = NULL;
	g_autoptr(GSocket) trickle = NULL;
	g_autoptr(GSocket) kept = NULL;
	g_autofree gchar *a = NULL;
	g_autofree gchar *b = NULL;
	g_autofree gchar *c = NULL;
	gboolean closed = FALSE;

	qsim_api_server_set_limits(fx->server, 100, 0, 1, 2);
	/* connects and never says anything */
	silent = raw_connect(fx_port(fx), 0);
	a = raw_read_all(silent, &closed);
	g_assert_true(closed);
	g_assert_cmpstr(a, ==, "");

	/* starts a request and never finishes its headers */
	trickle = raw_connect(fx_port(fx), 0);
	raw_send(trickle, "GET /health HTTP/1.1\r\nHost: loc");
	b = raw_read_all(trickle, &closed);
	g_assert_true(closed);
	g_assert_cmpstr(b, ==, "");

	/* a kept-alive connection is served, then closed once idle */
	kept = raw_connect(fx_port(fx), 0);
	raw_send(kept, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
	c = raw_read_all(kept, &closed);
	g_assert_true(closed);
	g_assert_cmpuint(response_status(c), ==, 200);
	assert_healthy(fx);
}

static void
test_keepalive(ApiFixture *fx, gconstpointer user_data)
{
	/* the connections we accept ourselves must still be kept alive */
	assert_healthy(fx);
	assert_healthy(fx);
	assert_healthy(fx);
	g_assert_cmpuint(qsim_api_server_get_connection_count(fx->server), ==, 1);
}

static void
assert_host(ApiFixture *fx, const gchar *host, guint status)
{
	g_autofree gchar *req =
	    host != NULL
	        ? g_strdup_printf("GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
	                          host)
	        : g_strdup("GET /health HTTP/1.0\r\n\r\n");
	g_autofree gchar *resp = raw_request(fx_port(fx), req);

	g_assert_cmpuint(response_status(resp), ==, status);
	if (status == 421) {
		g_autofree gchar *code = response_error_code(resp);
		g_assert_cmpstr(code, ==, "invalid_host");
	}
}

static void
test_host_header(ApiFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *with_port = g_strdup_printf("localhost:%u", fx_port(fx));
	g_autofree gchar *ip_port = g_strdup_printf("127.0.0.1:%u", fx_port(fx));

	assert_host(fx, "evil.example", 421);
	assert_host(fx, "evil.example:80", 421);
	assert_host(fx, "localhost.evil.example", 421);
	assert_host(fx, with_port, 200);
	assert_host(fx, "LocalHost", 200);
	assert_host(fx, "app.localhost", 200);
	assert_host(fx, ip_port, 200);
	assert_host(fx, "[::1]:8080", 200);
	assert_host(fx, NULL, 200);
	assert_healthy(fx);
}

static void
assert_same_answer(ApiFixture *fx, const gchar *method, const gchar *real, const gchar *fake,
                   const gchar *origin)
{
	g_autoptr(ApiResponse) a = NULL;
	g_autoptr(ApiResponse) b = NULL;
	const gchar *const headers[] = {"Allow", "Access-Control-Allow-Origin",
	                                "Access-Control-Allow-Methods", "WWW-Authenticate",
	                                "Content-Type"};

	if (origin != NULL) {
		a = api_request(fx, method, real, NULL, NULL, "Origin", origin,
		                "Access-Control-Request-Method", "GET", NULL);
		b = api_request(fx, method, fake, NULL, NULL, "Origin", origin,
		                "Access-Control-Request-Method", "GET", NULL);
	} else {
		a = api_request(fx, method, real, NULL, NULL, NULL);
		b = api_request(fx, method, fake, NULL, NULL, NULL);
	}
	g_assert_cmpuint(a->status, ==, b->status);
	for (guint i = 0; i < G_N_ELEMENTS(headers); i++)
		g_assert_cmpstr(api_response_header(a, headers[i]), ==,
		                api_response_header(b, headers[i]));
	g_assert_true(g_bytes_equal(a->body, b->body));
}

static void
test_unauthenticated_probe(ApiFixture *fx, gconstpointer user_data)
{
	g_autoptr(ApiResponse) post_health = NULL;

	assert_same_answer(fx, "OPTIONS", "/requests", "/no-such-route", "http://app.example");
	assert_same_answer(fx, "OPTIONS", "/requests", "/no-such-route", "http://other.example");
	assert_same_answer(fx, "OPTIONS", "/health", "/no-such-route", NULL);
	assert_same_answer(fx, "POST", "/health", "/no-such-route", NULL);
	assert_same_answer(fx, "DELETE", "/vms", "/no-such-route", NULL);
	post_health = api_request(fx, "POST", "/health", NULL, NULL, NULL);
	g_assert_cmpuint(post_health->status, ==, 401);
	/* monitors still probe without a token */
	assert_healthy(fx);
}

static gboolean
set_flag(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

static gboolean
flag_is_set(gpointer data)
{
	return *(gboolean *)data;
}

static void
run_loop_ms(guint ms)
{
	gboolean done = FALSE;

	g_timeout_add(ms, set_flag, &done);
	api_wait_until(flag_is_set, &done);
}

typedef struct {
	ApiFixture *fx;
} StreamWait;

static gboolean
stream_open(gpointer data)
{
	return qsim_api_server_get_stream_count(((StreamWait *)data)->fx->server) == 1;
}

static void
test_slow_reader(ApiFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *uuid = api_submit(fx, "yes");
	g_autofree gchar *req = g_strdup_printf("GET /requests/%s/logs?follow=1 HTTP/1.1\r\n"
	                                        "Host: localhost\r\n\r\n",
	                                        uuid);
	g_autoptr(GSocket) reader = NULL;
	g_autofree guint8 *blob = g_malloc(64 * 1024);
	StreamWait w = {fx};
	gsize total = 0;

	memset(blob, 'x', 64 * 1024);
	qsim_api_server_set_stream_buffer_limit(fx->server, 256 * 1024);
	reader = raw_connect(fx_port(fx), 4096);
	raw_send(reader, req);
	api_wait_until(stream_open, &w);

	/* the client never reads: kernel buffers fill, then the server's own
	 * queue; far more than both is written, with a hang guard */
	while (qsim_api_server_get_stream_count(fx->server) > 0) {
		g_autoptr(GPtrArray) chunks =
		    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
		g_autoptr(GError) error = NULL;

		g_assert_cmpuint(total, <, 256 * 1024 * 1024);
		for (guint i = 0; i < 16; i++)
			g_ptr_array_add(chunks,
			                qsim_log_entry_new(QSIM_LOG_STDOUT, 0, blob, 64 * 1024));
		g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), >, 0);
		g_assert_no_error(error);
		total += 16 * 64 * 1024;
		run_loop_ms(50);
		if (total % (8 * 1024 * 1024) == 0)
			assert_healthy(fx);
	}
	g_test_message("stream cut after %" G_GSIZE_FORMAT " bytes of logs", total);
	assert_healthy(fx);
}

/* A client that reads gets a backlog far above the bound whole and in order:
 * the bound holds logs back, it never drops them or cuts a reader. */
static void
test_backlog_reader(ApiFixture *fx, gconstpointer user_data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *req = g_strdup_printf("GET /requests/%s/logs?follow=1 HTTP/1.1\r\n"
	                                        "Host: localhost\r\nConnection: close\r\n\r\n",
	                                        uuid);
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autofree guint8 *blob = g_malloc(32 * 1024);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) claimed = NULL;
	g_autofree gchar *resp = NULL;
	g_autofree gchar *last = g_strdup_printf("id: %u\n", 64u);
	const gchar *p;
	guint n_logs = 0;

	memset(blob, 'y', 32 * 1024);
	for (guint i = 0; i < 64; i++)
		g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, blob, 32 * 1024));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), ==, 64);
	claimed = qsim_store_claim_next(fx->store, "agent-1", 60000, 0, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_mark_running(fx->store, uuid, "agent-1", &error));
	g_assert_true(qsim_store_finish_request(fx->store, uuid, "agent-1", QSIM_STATUS_DONE, TRUE,
	                                        0, NULL, NULL, &error));
	g_assert_no_error(error);
	qsim_api_server_set_stream_buffer_limit(fx->server, 64 * 1024);

	resp = raw_request(fx_port(fx), req);
	for (p = strstr(resp, "event: log\n"); p != NULL; p = strstr(p + 1, "event: log\n"))
		n_logs++;
	g_assert_cmpuint(n_logs, ==, 64);
	/* the end comes after the last log, not before the backlog is out */
	g_assert_nonnull(strstr(resp, last));
	g_assert_true(strstr(resp, "event: end\n") > strstr(resp, last));
	g_assert_cmpuint(qsim_api_server_get_stream_count(fx->server), ==, 0);
	assert_healthy(fx);
}

/* A PUT that must wait for the write lock (another process holds it) waits in a worker
 * thread: the main loop keeps answering meanwhile, and the PUT completes once the lock goes.
 * On the main loop it would stall every call for the busy timeout and then fail. */
static void
test_write_off_loop(ApiFixture *fx, gconstpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	g_autofree gchar *db = g_build_filename(fx->tmpdir, "qsim.db", NULL);
	g_autofree gchar *body = g_strdup("{\"status\":\"hold\"}");
	g_autofree gchar *put = NULL;
	g_autofree gchar *resp = NULL;
	g_autoptr(GSocket) sock = NULL;
	sqlite3 *blocker = NULL;
	gboolean closed = FALSE;

	g_assert_no_error(error);
	put = g_strdup_printf("PUT /requests/%s/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                      "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	                      "Connection: close\r\n\r\n%s",
	                      r->uuid, strlen(body), body);
	g_assert_cmpint(sqlite3_open(db, &blocker), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
	sock = raw_connect(fx_port(fx), 0);
	raw_send(sock, put);
	/* served while the PUT waits for the lock */
	assert_healthy(fx);
	assert_healthy(fx);
	g_assert_cmpint(sqlite3_exec(blocker, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(blocker);
	resp = raw_read_all(sock, &closed);
	g_assert_cmpuint(response_status(resp), ==, 200);
	g_assert_nonnull(strstr(resp, "\"status\":\"hold\""));
	assert_healthy(fx);
}

#define ADD(path, func, opts)                                                                      \
	g_test_add(path, ApiFixture, opts, api_fixture_setup, func, api_fixture_teardown)

int
main(int argc, char **argv)
{
	static const ApiFixtureOptions token_opts = {.tokens = "s3cret",
	                                             .origins = "http://app.example"};

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/api/conn/fd-exhaustion", test_fd_exhaustion);
	ADD("/qsim/api/conn/cap", test_connection_cap, NULL);
	ADD("/qsim/api/conn/stream-cap", test_stream_cap, NULL);
	ADD("/qsim/api/conn/header-timeout", test_header_timeout, NULL);
	ADD("/qsim/api/conn/keepalive", test_keepalive, NULL);
	ADD("/qsim/api/conn/host", test_host_header, NULL);
	ADD("/qsim/api/conn/unauthenticated-probe", test_unauthenticated_probe, &token_opts);
	ADD("/qsim/api/conn/slow-reader", test_slow_reader, NULL);
	ADD("/qsim/api/conn/backlog-reader", test_backlog_reader, NULL);
	ADD("/qsim/api/conn/write-off-loop", test_write_off_loop, NULL);
	return g_test_run();
}
