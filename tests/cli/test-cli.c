/*
 * qsim-ctl end to end: the real binary against a real `qsimd api` on 127.0.0.1,
 * with a temporary database. This process plays the agent through the store
 * (claim, logs, finish) so that run, follow and the exit codes are exercised
 * without a VM.
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>

#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"
#include "store/qsim-store-hosts.h"
#include "common/qsim-layout.h"
#include "test-util.h"

#define AGENT "test-agent"
/* generous bounds for waits on a shared 2-core machine; never asserted on */
#define WAIT_STEP_US (20 * 1000)
#define WAIT_STEPS 1500

typedef struct {
	gchar *tmpdir;
	gchar *db_path;
	gchar *url;
	gchar *tokens; /* nullable: QSIM_API_TOKENS of the server */
	guint16 port;
	guint starts;
	GSubprocess *daemon;
	QsimStore *store;
} Fixture;

typedef struct {
	gint status;
	gchar *out;
	gsize out_len;
	gchar *err;
} CtlResult;

static void
ctl_result_clear(CtlResult *r)
{
	g_free(r->out);
	g_free(r->err);
	memset(r, 0, sizeof(*r));
}

/* the environment of qsimd and qsim-ctl: ours minus anything qsim would read */
static gchar **
clean_environ(void)
{
	gchar **env = g_get_environ();
	g_auto(GStrv) keys = g_strdupv(env);

	for (guint i = 0; keys[i] != NULL; i++) {
		gchar *eq = strchr(keys[i], '=');
		if (eq != NULL)
			*eq = '\0';
		if (g_str_has_prefix(keys[i], "QSIM_") ||
		    g_str_has_prefix(keys[i], "SQLITE_SIM_") || g_str_equal(keys[i], "LANGUAGE") ||
		    g_str_has_prefix(keys[i], "LC_"))
			env = g_environ_unsetenv(env, keys[i]);
	}
	/* the host's free space must not decide the tests */
	env = g_environ_setenv(env, "QSIM_MIN_FREE_DISK", "0", TRUE);
	return g_environ_setenv(env, "LANG", "C.UTF-8", TRUE);
}

static gboolean
server_is_up(guint16 port)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) conn =
	    g_socket_client_connect_to_host(client, "127.0.0.1", port, NULL, NULL);

	return conn != NULL;
}

/* (re)starts qsimd on the fixture's port and database */
static void
daemon_spawn(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree gchar *images = g_build_filename(f->tmpdir, "images", NULL);
	g_autofree gchar *configs = g_build_filename(f->tmpdir, "configs", NULL);
	g_autofree gchar *keyfile = g_build_filename(f->tmpdir, "qsimd.conf", NULL);
	g_autofree gchar *log_name = g_strdup_printf("qsimd-%u.log", ++f->starts);
	g_autofree gchar *log = g_build_filename(f->tmpdir, log_name, NULL);
	g_autofree gchar *port_text = g_strdup_printf("%u", f->port);
	g_auto(GStrv) env = clean_environ();
	guint i;

	if (f->tokens != NULL)
		env = g_environ_setenv(env, "QSIM_API_TOKENS", f->tokens, TRUE);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
	g_subprocess_launcher_set_environ(launcher, env);
	g_subprocess_launcher_set_cwd(launcher, f->tmpdir);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_set_stdout_file_path(launcher, log);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	f->daemon = g_subprocess_launcher_spawn(
	    launcher, &error, QSIMD, "--config", keyfile, "--db", f->db_path, "--host", "127.0.0.1",
	    "--port", port_text, "--images-dir", images, "--configs-dir", configs, "api", NULL);
	g_assert_no_error(error);
	for (i = 0; i < WAIT_STEPS && !server_is_up(f->port); i++) {
		if (g_subprocess_get_identifier(f->daemon) == NULL) {
			g_autofree gchar *text = NULL;
			g_file_get_contents(log, &text, NULL, NULL);
			g_error("qsimd exited early: %s", text != NULL ? text : "(no log)");
		}
		g_usleep(WAIT_STEP_US);
	}
	g_assert_cmpuint(i, <, WAIT_STEPS);
}

static void
daemon_stop(Fixture *f)
{
	g_autoptr(GError) error = NULL;

	g_subprocess_send_signal(f->daemon, SIGTERM);
	g_subprocess_wait(f->daemon, NULL, &error);
	g_assert_no_error(error);
	g_clear_object(&f->daemon);
}

/* what the agents of this host would have published: `qsimd api` reads only the store */
static void
publish_dummy(QsimStore *store)
{
	static const gchar *const no_agents[] = {NULL};
	g_autoptr(QsimHostRecord) host = qsim_host_record_new(qsim_host_id_get());
	g_autoptr(GPtrArray) vms =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_host_vm_free);
	g_autoptr(GError) error = NULL;
	QsimHostVm *v = qsim_host_vm_new(host->host, "dummy");

	host->version = g_strdup("test");
	host->stale_after_ms = 3600 * 1000;
	g_strfreev(host->agent_ids);
	host->agent_ids = g_strdupv((gchar **)no_agents);
	v->valid = TRUE;
	v->image = g_strdup("dummy.qcow2");
	v->size_bytes = 17;
	v->config = g_strdup("dummy.conf");
	g_ptr_array_add(vms, v);
	g_assert_true(qsim_store_publish_host(store, host, vms, &error));
	g_assert_no_error(error);
}

static void
fixture_start(Fixture *f, const gchar *tokens)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *images = NULL;
	g_autofree gchar *configs = NULL;
	g_autofree gchar *image = NULL;
	g_autofree gchar *conf = NULL;
	g_autofree gchar *keyfile = NULL;

	f->tmpdir = g_dir_make_tmp("qsim-cli-XXXXXX", &error);
	g_assert_no_error(error);
	images = g_build_filename(f->tmpdir, "images", NULL);
	configs = g_build_filename(f->tmpdir, "configs", NULL);
	g_assert_cmpint(g_mkdir(images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(configs, 0700), ==, 0);
	image = g_build_filename(images, "dummy.qcow2", NULL);
	conf = g_build_filename(configs, "dummy.conf", NULL);
	g_file_set_contents(image, "not really a disk", -1, &error);
	g_assert_no_error(error);
	g_file_set_contents(conf, "MEMORY=256M\nCPU=1\n", -1, &error);
	g_assert_no_error(error);
	/* an empty keyfile of our own, so that no ~/.config or /etc one leaks in */
	keyfile = g_build_filename(f->tmpdir, "qsimd.conf", NULL);
	g_file_set_contents(keyfile, "", -1, &error);
	g_assert_no_error(error);
	f->db_path = g_build_filename(f->tmpdir, "qsim.db", NULL);
	f->port = qsim_test_free_port();
	f->url = g_strdup_printf("http://127.0.0.1:%u", f->port);
	f->tokens = g_strdup(tokens);
	daemon_spawn(f);
	f->store = qsim_store_open(f->db_path, &error);
	g_assert_no_error(error);
	publish_dummy(f->store);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	fixture_start(f, data);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_clear_object(&f->store);
	daemon_stop(f);
	qsim_test_rm_rf(f->tmpdir);
	g_free(f->tmpdir);
	g_free(f->db_path);
	g_free(f->url);
	g_free(f->tokens);
}

static GSubprocess *
ctl_spawn(Fixture *f, gchar **extra_env, const gchar *const *argv)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_auto(GStrv) env = clean_environ();
	g_autoptr(GError) error = NULL;
	GSubprocess *proc;

	env = g_environ_setenv(env, "QSIM_URL", f != NULL ? f->url : "http://127.0.0.1:9", TRUE);
	for (guint i = 0; extra_env != NULL && extra_env[i] != NULL; i += 2)
		env = g_environ_setenv(env, extra_env[i], extra_env[i + 1], TRUE);
	g_subprocess_launcher_set_environ(launcher, env);
	g_subprocess_launcher_set_child_setup(launcher, qsim_test_die_with_parent, NULL, NULL);
	g_ptr_array_add(args, (gpointer)QSIM_CTL);
	for (guint i = 0; argv[i] != NULL; i++)
		g_ptr_array_add(args, (gpointer)argv[i]);
	g_ptr_array_add(args, NULL);
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)args->pdata, &error);
	g_assert_no_error(error);
	return proc;
}

static void
ctl_finish(GSubprocess *proc, CtlResult *r)
{
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) err = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	const gchar *data;

	g_subprocess_communicate(proc, NULL, NULL, &out, &err, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	r->status = g_subprocess_get_exit_status(proc);
	data = g_bytes_get_data(out, &len);
	r->out = g_malloc(len + 1);
	if (len > 0)
		memcpy(r->out, data, len);
	r->out[len] = '\0';
	r->out_len = len;
	r->err = g_strndup(g_bytes_get_data(err, NULL), g_bytes_get_size(err));
	if (g_test_verbose())
		g_printerr("exit %d\nstdout: %s\nstderr: %s\n", r->status, r->out, r->err);
}

/* runs qsim-ctl ARGS... to completion */
static void
ctl_env(Fixture *f, CtlResult *r, gchar **extra_env, const gchar *first, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocess) proc = NULL;
	va_list ap;

	va_start(ap, first);
	for (const gchar *a = first; a != NULL; a = va_arg(ap, const gchar *))
		g_ptr_array_add(argv, (gpointer)a);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	ctl_result_clear(r);
	proc = ctl_spawn(f, extra_env, (const gchar *const *)argv->pdata);
	ctl_finish(proc, r);
}

#define ctl(f, r, ...) ctl_env(f, r, NULL, __VA_ARGS__, NULL)

/* an error is exactly one "qsim-ctl: ..." line on stderr and nothing on stdout */
static void
assert_error_line(CtlResult *r, gint status, const gchar *needle)
{
	g_assert_cmpint(r->status, ==, status);
	g_assert_true(g_str_has_prefix(r->err, "qsim-ctl: "));
	g_assert_true(g_str_has_suffix(r->err, "\n"));
	g_assert_true(strchr(r->err, '\n') == r->err + strlen(r->err) - 1);
	if (needle != NULL && strstr(r->err, needle) == NULL)
		g_error("“%s” not in “%s”", needle, r->err);
	g_assert_cmpstr(r->out, ==, "");
}

static JsonNode *
parse_json(const gchar *text)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;

	json_parser_load_from_data(parser, text, -1, &error);
	g_assert_no_error(error);
	g_assert_nonnull(json_parser_get_root(parser));
	return json_node_ref(json_parser_get_root(parser));
}

static gchar *
submit(Fixture *f, const gchar *commands)
{
	CtlResult r = {0};
	gchar *uuid;

	ctl(f, &r, "submit", "dummy", "--", commands);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_true(g_str_has_suffix(r.out, "\n"));
	uuid = g_strndup(r.out, strlen(r.out) - 1);
	g_assert_true(g_uuid_string_is_valid(uuid));
	ctl_result_clear(&r);
	return uuid;
}

static QsimStatus
store_status(Fixture *f, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) req = qsim_store_get_request(f->store, uuid, 36, &error);

	g_assert_no_error(error);
	return req->status;
}

/* the test is the agent: claim the oldest pending request and mark it running */
static gchar *
agent_claim(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) req = NULL;

	for (guint i = 0; i < WAIT_STEPS && req == NULL; i++) {
		req = qsim_store_claim_next(f->store, AGENT, 600000, 0, &error);
		g_assert_no_error(error);
		if (req == NULL)
			g_usleep(WAIT_STEP_US);
	}
	g_assert_nonnull(req);
	qsim_store_mark_running(f->store, req->uuid, AGENT, &error);
	g_assert_no_error(error);
	return g_strdup(req->uuid);
}

static void
agent_log(Fixture *f, const gchar *uuid, QsimLogType type, const gchar *data, gssize len)
{
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(chunks, qsim_log_entry_new(type, 0, (const guint8 *)data,
	                                           len < 0 ? strlen(data) : (gsize)len));
	g_assert_cmpint(qsim_store_append_logs(f->store, uuid, chunks, &error), >, 0);
	g_assert_no_error(error);
}

static void
agent_finish(Fixture *f, const gchar *uuid, QsimStatus status, gint exit_code, const gchar *msg)
{
	g_autoptr(GError) error = NULL;

	qsim_store_finish_request(f->store, uuid, AGENT, status, exit_code >= 0, exit_code, msg,
	                          NULL, &error);
	g_assert_no_error(error);
}

/* ---- tests without a server ---- */

static void
test_help_version(void)
{
	CtlResult r = {0};
	const gchar *commands[] = {
	    "list-requests", "show-request", "delete-request", "show-logs", "stats",
	    "status",        "config",       "submit",         "cancel",    "hold",
	    "resume",        "vms",          "prepare",        "run",       NULL};

	ctl(NULL, &r, "--help");
	g_assert_cmpint(r.status, ==, 0);
	for (guint i = 0; commands[i] != NULL; i++) {
		g_autofree gchar *needle = g_strdup_printf("\n  %s", commands[i]);
		g_assert_nonnull(strstr(r.out, needle));
	}
	ctl(NULL, &r, "--version");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "qsim-ctl " PACKAGE_VERSION "\n");
	ctl_result_clear(&r);
}

/* bad arguments fail with status 2 before any request is sent: the URL points at a
 * port nobody listens on, so any attempt would have failed with status 1 instead */
static void
test_usage_errors(void)
{
	CtlResult r = {0};

	ctl(NULL, &r, "list-requests", "--limit", "0");
	assert_error_line(&r, 2, "--limit");
	ctl(NULL, &r, "list-requests", "--limit", "ten");
	assert_error_line(&r, 2, "ten");
	ctl(NULL, &r, "list-requests", "--status", "sleeping");
	assert_error_line(&r, 2, "sleeping");
	ctl(NULL, &r, "show-logs", "0123abcd", "--log-type", "video");
	assert_error_line(&r, 2, "video");
	ctl(NULL, &r, "submit", "bad/vm", "--", "true");
	assert_error_line(&r, 2, "bad/vm");
	ctl(NULL, &r, "submit", "dummy", "--timeout", "-5", "--", "true");
	assert_error_line(&r, 2, "--timeout");
	ctl(NULL, &r, "submit", "dummy");
	assert_error_line(&r, 2, "usage: qsim-ctl submit");
	ctl(NULL, &r, "submit", "dummy", "--", "  ");
	assert_error_line(&r, 2, NULL);
	ctl(NULL, &r, "run", "dummy", "--timeout", "0", "--", "true");
	assert_error_line(&r, 2, "--timeout");
	ctl(NULL, &r, "show-request", "abc");
	assert_error_line(&r, 2, "abc");
	ctl(NULL, &r, "show-request", "../../etc");
	assert_error_line(&r, 2, NULL);
	ctl(NULL, &r, "stats", "--follow");
	assert_error_line(&r, 2, "--follow");
	ctl(NULL, &r, "stats", "extra");
	assert_error_line(&r, 2, "usage: qsim-ctl stats");
	ctl(NULL, &r, "frobnicate");
	assert_error_line(&r, 2, "frobnicate");
	ctl(NULL, &r, "--url", "ftp://example.com", "stats");
	assert_error_line(&r, 2, "ftp://example.com");
	ctl(NULL, &r, "--token", "two words", "stats");
	assert_error_line(&r, 2, NULL);
	ctl(NULL, &r, "--no-such-option");
	assert_error_line(&r, 2, "no-such-option");
	ctl(NULL, &r, NULL);
	assert_error_line(&r, 2, NULL);
	ctl_result_clear(&r);
}

static void
test_connection_refused(void)
{
	CtlResult r = {0};
	g_autofree gchar *url = g_strdup_printf("http://127.0.0.1:%u", qsim_test_free_port());

	ctl(NULL, &r, "--url", url, "list-requests");
	assert_error_line(&r, 1, url);
	ctl(NULL, &r, "--url", url, "status");
	assert_error_line(&r, 1, url);
	/* run reports a failure that is not the guest's as 125 */
	ctl(NULL, &r, "--url", url, "run", "dummy", "--", "true");
	assert_error_line(&r, 125, url);
	ctl_result_clear(&r);
}

/* LANG=C.UTF-8 with LANGUAGE=de: glibc honours LANGUAGE for C.UTF-8 (not for "C") */
static void
test_translation(void)
{
	CtlResult r = {0};
	gchar *env[] = {"LANGUAGE", "de", "QSIM_LOCALEDIR", QSIM_PO_DIR, NULL};

	ctl_env(NULL, &r, env, "frobnicate", NULL);
	assert_error_line(&r, 2, "unbekannter Befehl „frobnicate“");
	ctl_env(NULL, &r, env, "list-requests", "--limit", "0", NULL);
	assert_error_line(&r, 2, "muss eine ganze Zahl");
	ctl_env(NULL, &r, env, "--help", NULL);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "Befehle:"));
	ctl_result_clear(&r);
}

/* ---- tests against qsimd api ---- */

static void
test_status_vms_config(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autoptr(JsonNode) health = NULL;
	g_autoptr(JsonNode) vms = NULL;
	g_autoptr(JsonNode) config = NULL;
	JsonArray *array;

	ctl(f, &r, "status");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, f->url));
	g_assert_nonnull(strstr(r.out, "ok"));
	ctl(f, &r, "--json", "status");
	g_assert_cmpint(r.status, ==, 0);
	health = parse_json(r.out);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(health), "status"), ==,
	                "ok");

	ctl(f, &r, "vms");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_true(g_str_has_prefix(r.out, "NAME"));
	g_assert_nonnull(strstr(r.out, "\ndummy "));
	g_assert_nonnull(strstr(r.out, "TEMPLATE"));
	g_assert_nonnull(strstr(r.out, " none "));
	ctl(f, &r, "vms", "--json");
	g_assert_cmpint(r.status, ==, 0);
	vms = parse_json(r.out);
	array = json_node_get_array(vms);
	g_assert_cmpuint(json_array_get_length(array), ==, 1);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(array, 0), "name"), ==,
	    "dummy");
	g_assert_cmpstr(
	    json_object_get_string_member(
	        json_object_get_object_member(json_array_get_object_element(array, 0), "template"),
	        "state"),
	    ==, "none");

	ctl(f, &r, "config");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "DB_PATH"));
	g_assert_nonnull(strstr(r.out, f->db_path));
	ctl(f, &r, "-j", "config");
	g_assert_cmpint(r.status, ==, 0);
	config = parse_json(r.out);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(config));
	g_assert_true(json_object_has_member(json_node_get_object(config), "DB_PATH"));
	ctl_result_clear(&r);
}

static void
test_submit_list_show(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *u1 = submit(f, "echo one");
	g_autofree gchar *u2 = submit(f, "echo two");
	g_autofree gchar *u3 = NULL;
	g_autofree gchar *short_prefix = g_strndup(u1, 5);
	g_autofree gchar *prefix = g_strndup(u1, 8);
	g_autoptr(JsonNode) list = NULL;
	g_autoptr(JsonNode) one = NULL;
	g_autoptr(JsonNode) stats = NULL;
	g_autoptr(JsonNode) created = NULL;
	g_autofree gchar *missing = NULL;
	JsonObject *obj;

	/* submit --json prints the server's reply; --timeout reaches the server */
	ctl(f, &r, "--json", "submit", "dummy", "--timeout", "42", "--", "ls", "-l", "/");
	g_assert_cmpint(r.status, ==, 0);
	created = parse_json(r.out);
	obj = json_node_get_object(created);
	g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "pending");
	u3 = g_strdup(json_object_get_string_member(obj, "uuid"));
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimRequest) req = qsim_store_get_request(f->store, u3, 36, &error);
		g_assert_no_error(error);
		g_assert_cmpint(req->timeout_s, ==, 42);
		/* after "--" the words are joined, options included */
		g_assert_cmpstr(req->commands, ==, "ls -l /");
	}

	ctl(f, &r, "list-requests");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_true(g_str_has_prefix(r.out, "UUID"));
	g_assert_nonnull(strstr(r.out, u1));
	g_assert_nonnull(strstr(r.out, u2));
	/* newest first */
	g_assert_true(strstr(r.out, u2) < strstr(r.out, u1));
	ctl(f, &r, "list-requests", "--json", "--limit", "2");
	g_assert_cmpint(r.status, ==, 0);
	list = parse_json(r.out);
	g_assert_cmpuint(json_array_get_length(json_node_get_array(list)), ==, 2);
	ctl(f, &r, "list-requests", "--status", "done");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_null(strstr(r.out, u1));
	ctl(f, &r, "ls", "--status", "pending");
	g_assert_nonnull(strstr(r.out, u1));

	/* full UUID, server-side prefix, client-side short prefix */
	ctl(f, &r, "show-request", u1);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "echo one"));
	ctl(f, &r, "show-request", prefix);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, u1));
	ctl(f, &r, "show-request", "--json", short_prefix);
	g_assert_cmpint(r.status, ==, 0);
	one = parse_json(r.out);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(one), "uuid"), ==, u1);

	/* 404s are one line naming the request */
	missing = g_strdup("ffffffff-ffff-4fff-bfff-ffffffffffff");
	if (g_str_equal(missing, u1) || g_str_equal(missing, u2))
		g_assert_not_reached();
	ctl(f, &r, "show-request", missing);
	assert_error_line(&r, 1, missing);
	ctl(f, &r, "show-request", "ffff");
	assert_error_line(&r, 1, "ffff");
	ctl(f, &r, "show-logs", missing);
	assert_error_line(&r, 1, missing);
	/* the server's 422: an unknown VM */
	ctl(f, &r, "submit", "nosuchvm", "--", "true");
	assert_error_line(&r, 1, "nosuchvm");

	ctl(f, &r, "stats", "--json");
	g_assert_cmpint(r.status, ==, 0);
	stats = parse_json(r.out);
	g_assert_cmpint(
	    json_object_get_int_member(
	        json_object_get_object_member(json_node_get_object(stats), "counts"), "pending"),
	    ==, 3);
	ctl(f, &r, "stats");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "requests pending"));
	ctl_result_clear(&r);
}

static void
test_hold_resume_cancel_delete(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *queued = submit(f, "sleep 1");
	g_autofree gchar *running = NULL;
	g_autoptr(JsonNode) reply = NULL;

	/* held while pending: resume puts it back in the queue */
	ctl(f, &r, "hold", queued);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpint(store_status(f, queued), ==, QSIM_STATUS_HOLD);
	ctl(f, &r, "resume", queued);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpint(store_status(f, queued), ==, QSIM_STATUS_PENDING);
	ctl(f, &r, "resume", queued);
	assert_error_line(&r, 1, "not on hold");

	/* held while running: resume continues it */
	running = agent_claim(f);
	g_assert_cmpstr(running, ==, queued);
	ctl(f, &r, "hold", running);
	g_assert_cmpint(store_status(f, running), ==, QSIM_STATUS_HOLD);
	ctl(f, &r, "--json", "resume", running);
	g_assert_cmpint(r.status, ==, 0);
	reply = parse_json(r.out);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(reply), "status"), ==,
	                "running");
	g_assert_cmpint(store_status(f, running), ==, QSIM_STATUS_RUNNING);

	ctl(f, &r, "cancel", running);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpint(store_status(f, running), ==, QSIM_STATUS_CANCELLED);
	/* 409: the message names the current status */
	ctl(f, &r, "cancel", running);
	assert_error_line(&r, 1, "cancelled");
	ctl(f, &r, "hold", running);
	assert_error_line(&r, 1, "cancelled");

	/* delete-request: a final request and its logs go away */
	ctl(f, &r, "delete-request", running);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, running));
	ctl(f, &r, "show-request", running);
	assert_error_line(&r, 1, running);
	ctl_result_clear(&r);
}

static void
test_delete_active(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *uuid = submit(f, "true");
	g_autoptr(JsonNode) first = NULL;
	g_autoptr(JsonNode) second = NULL;

	/* an active request is cancelled (200), then deleted (204) */
	ctl(f, &r, "--json", "delete-request", uuid);
	g_assert_cmpint(r.status, ==, 0);
	first = parse_json(r.out);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(first), "status"), ==,
	                "cancelled");
	ctl(f, &r, "--json", "delete", uuid);
	g_assert_cmpint(r.status, ==, 0);
	second = parse_json(r.out);
	g_assert_true(json_object_get_boolean_member(json_node_get_object(second), "deleted"));
	ctl_result_clear(&r);
}

/* 10 MiB of output: the server cuts its pages at 4 MiB, short of the page size the
 * CLI asked for, and the CLI must follow the Link rather than stop at a short page */
static void
test_show_logs_byte_pages(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *uuid = submit(f, "yes");
	g_autofree gchar *claimed = agent_claim(f);
	g_autofree gchar *chunk = g_strnfill(64 * 1024 - 1, 'y');
	g_autoptr(JsonNode) all = NULL;
	JsonArray *array;

	for (guint i = 0; i < 160; i++)
		agent_log(f, uuid, QSIM_LOG_STDOUT, chunk, -1);
	agent_finish(f, uuid, QSIM_STATUS_DONE, 0, NULL);
	ctl(f, &r, "--json", "show-logs", uuid);
	g_assert_cmpint(r.status, ==, 0);
	all = parse_json(r.out);
	array = json_node_get_array(all);
	g_assert_cmpuint(json_array_get_length(array), ==, 160);
	for (guint i = 0; i < 160; i++)
		g_assert_cmpint(
		    json_object_get_int_member(json_array_get_object_element(array, i), "seq"), ==,
		    i + 1);
	ctl_result_clear(&r);
}

static gint64
count_rows(Fixture *f, const gchar *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	gint64 n;

	g_assert_cmpint(sqlite3_open(f->db_path, &db), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return n;
}

static void
raw_exec(Fixture *f, const gchar *sql)
{
	sqlite3 *db = NULL;

	g_assert_cmpint(sqlite3_open(f->db_path, &db), ==, SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
}

static void
create_many(Fixture *f, const gchar *commands, guint n)
{
	g_autoptr(GPtrArray) drafts =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_request_draft_free);
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(drafts, qsim_request_draft_new("tiny", commands, 30));
	g_assert_true(qsim_store_create_requests(f->store, drafts, &error));
	g_assert_no_error(error);
}

/* purge: bounded DELETE /requests calls until nothing more matches */
static void
test_purge(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autoptr(JsonNode) reply = NULL;

	/* 1,200 done long ago (more than one call's 1,000), 5 failed, 3 recent, 1 waiting */
	create_many(f, "old-done", 1200);
	create_many(f, "old-failed", 5);
	create_many(f, "recent", 3);
	create_many(f, "waiting", 1);
	raw_exec(f, "UPDATE requests SET status = 'done', finished_at = 1000000000000"
	            " WHERE commands = 'old-done';"
	            "UPDATE requests SET status = 'failed', finished_at = 1000000000000"
	            " WHERE commands = 'old-failed';"
	            "UPDATE requests SET status = 'done', finished_at = updated_at"
	            " WHERE commands = 'recent';");

	ctl(f, &r, "purge");
	assert_error_line(&r, 2, "--before");
	ctl(f, &r, "purge", "--before", "7d", "--status", "running");
	assert_error_line(&r, 2, "running");
	ctl(f, &r, "purge", "--before", "7d", "extra");
	g_assert_cmpint(r.status, ==, 2);
	ctl(f, &r, "list-requests", "--before", "7d");
	assert_error_line(&r, 2, "--before");
	/* the server checks the age: a 400 names the parameter */
	ctl(f, &r, "purge", "--before", "7x");
	assert_error_line(&r, 1, "before");
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM requests"), ==, 1209);

	ctl(f, &r, "purge", "--before", "7d", "--status", "failed");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "deleted 5 finished requests\n");
	ctl(f, &r, "--json", "purge", "--before", "7d");
	g_assert_cmpint(r.status, ==, 0);
	reply = parse_json(r.out);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(reply), "deleted"), ==,
	                1200);
	g_assert_cmpint(json_object_get_int_member(json_node_get_object(reply), "calls"), ==, 2);
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM requests"), ==, 4);
	g_assert_cmpint(count_rows(f, "SELECT count(*) FROM requests WHERE commands = 'recent'"),
	                ==, 3);
	ctl_result_clear(&r);
}

static const gchar binary_out[] = "bin\xff\xfe\x00tail\n";

static void
test_show_logs(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *uuid = submit(f, "echo hello");
	g_autofree gchar *claimed = agent_claim(f);
	g_autoptr(JsonNode) all = NULL;
	g_autoptr(JsonNode) some = NULL;
	JsonArray *array;

	g_assert_cmpstr(claimed, ==, uuid);
	agent_log(f, uuid, QSIM_LOG_BOOT, "booting...\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "hello\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDERR, "warning\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDOUT, binary_out, sizeof(binary_out) - 1);
	agent_finish(f, uuid, QSIM_STATUS_DONE, 0, NULL);

	ctl(f, &r, "show-logs", uuid);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "] [boot] booting...\n"));
	g_assert_nonnull(strstr(r.out, "] [stdout] hello\n"));
	g_assert_nonnull(strstr(r.out, "] [stderr] warning\n"));
	ctl(f, &r, "show-logs", uuid, "--log-type", "stderr");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_null(strstr(r.out, "hello"));
	g_assert_nonnull(strstr(r.out, "warning"));
	ctl(f, &r, "--json", "show-logs", uuid);
	g_assert_cmpint(r.status, ==, 0);
	all = parse_json(r.out);
	array = json_node_get_array(all);
	g_assert_cmpuint(json_array_get_length(array), ==, 4);
	g_assert_cmpstr(
	    json_object_get_string_member(json_array_get_object_element(array, 3), "encoding"), ==,
	    "base64");
	ctl(f, &r, "--json", "logs", uuid, "--limit", "2");
	some = parse_json(r.out);
	g_assert_cmpuint(json_array_get_length(json_node_get_array(some)), ==, 2);

	/* --follow on a finished request: every output raw, decoded, then the end */
	ctl(f, &r, "show-logs", uuid, "--follow", "--log-type", "stdout");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpuint(r.out_len, ==, strlen("hello\n") + sizeof(binary_out) - 1);
	g_assert_true(memcmp(r.out, "hello\n", 6) == 0);
	g_assert_true(memcmp(r.out + 6, binary_out, sizeof(binary_out) - 1) == 0);
	ctl_result_clear(&r);
}

/* --follow while the request runs: it ends when the request ends */
static void
test_follow_live(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *uuid = submit(f, "echo live");
	const gchar *argv[] = {"--json", "show-logs", uuid, "--follow", NULL};
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *claimed = agent_claim(f);
	g_auto(GStrv) lines = NULL;
	guint n;

	g_assert_cmpstr(claimed, ==, uuid);
	proc = ctl_spawn(f, NULL, argv);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "first\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "second\n", -1);
	agent_finish(f, uuid, QSIM_STATUS_FAILED, 3, "exit code 3");
	ctl_finish(proc, &r);
	g_assert_cmpint(r.status, ==, 0);
	/* JSON lines: every line parses, the last is the end event */
	lines = g_strsplit(g_strchomp(r.out), "\n", -1);
	n = g_strv_length(lines);
	g_assert_cmpuint(n, >=, 3);
	for (guint i = 0; i < n; i++) {
		g_autoptr(JsonNode) node = parse_json(lines[i]);
		JsonObject *obj = json_node_get_object(node);
		if (i + 1 == n) {
			JsonObject *end = json_object_get_object_member(obj, "data");
			g_assert_cmpstr(json_object_get_string_member(obj, "event"), ==, "end");
			g_assert_cmpstr(json_object_get_string_member(end, "status"), ==, "failed");
			g_assert_cmpint(json_object_get_int_member(end, "exit_code"), ==, 3);
		}
	}
	ctl_result_clear(&r);
}

/* Many requests: client-side prefixes (unique and ambiguous) and --limit beyond the
 * server's page size both page through the list with the `before` cursor. With 2000
 * random UUIDs, some 4-hex-digit prefix is shared (the birthday bound makes a miss
 * about e^-30) and most are unique. */
static void
test_prefix_and_paging(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autoptr(GHashTable) counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(JsonNode) page = NULL;
	g_autoptr(JsonNode) first = NULL;
	g_autoptr(JsonNode) one = NULL;
	g_autofree gchar *shared = NULL;
	g_autofree gchar *unique = NULL;
	g_autofree gchar *unique_uuid = NULL;
	GHashTableIter iter;
	gpointer key, value;
	JsonArray *array;

	for (guint i = 0; i < 2000; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimRequest) req =
		    qsim_store_create_request(f->store, "dummy", "true", 300, &error);
		g_assert_no_error(error);
		g_ptr_array_add(uuids, g_strdup(req->uuid));
		key = g_strndup(req->uuid, 4);
		value = g_hash_table_lookup(counts, key);
		g_hash_table_replace(counts, key, GUINT_TO_POINTER(GPOINTER_TO_UINT(value) + 1));
	}
	g_hash_table_iter_init(&iter, counts);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		if (GPOINTER_TO_UINT(value) > 1 && shared == NULL)
			shared = g_strdup(key);
		if (GPOINTER_TO_UINT(value) == 1 && unique == NULL)
			unique = g_strdup(key);
	}
	g_assert_nonnull(shared);
	g_assert_nonnull(unique);
	for (guint i = 0; i < uuids->len && unique_uuid == NULL; i++) {
		if (g_str_has_prefix(g_ptr_array_index(uuids, i), unique))
			unique_uuid = g_strdup(g_ptr_array_index(uuids, i));
	}

	ctl(f, &r, "show-request", shared);
	assert_error_line(&r, 1, shared);
	ctl(f, &r, "--json", "show-request", unique);
	g_assert_cmpint(r.status, ==, 0);
	one = parse_json(r.out);
	g_assert_cmpstr(json_object_get_string_member(json_node_get_object(one), "uuid"), ==,
	                unique_uuid);

	/* 1500 > the page size of 1000: two pages, newest first, no duplicates */
	ctl(f, &r, "--json", "list-requests", "--limit", "1500");
	g_assert_cmpint(r.status, ==, 0);
	page = parse_json(r.out);
	array = json_node_get_array(page);
	g_assert_cmpuint(json_array_get_length(array), ==, 1500);
	for (guint i = 0; i < 1500; i++) {
		const gchar *uuid =
		    json_object_get_string_member(json_array_get_object_element(array, i), "uuid");
		g_assert_cmpstr(uuid, ==, g_ptr_array_index(uuids, 1999 - i));
	}
	/* without --limit: the server's default page */
	ctl(f, &r, "--json", "list-requests");
	first = parse_json(r.out);
	g_assert_cmpuint(json_array_get_length(json_node_get_array(first)), ==, 50);
	ctl_result_clear(&r);
}

/* reads the child's stdout until it holds @expected; the rest is left in the pipe */
static void
read_until(GSubprocess *proc, GString *got, const gchar *expected)
{
	GInputStream *out = g_subprocess_get_stdout_pipe(proc);

	while (strstr(got->str, expected) == NULL) {
		gchar buf[256];
		g_autoptr(GError) error = NULL;
		gssize n = g_input_stream_read(out, buf, sizeof(buf), NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(n, >, 0);
		g_string_append_len(got, buf, n);
	}
}

/* the server goes away mid-stream and comes back: --follow resumes after the last
 * seq it saw (Last-Event-ID), so nothing is lost or printed twice */
static void
test_follow_resume(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *uuid = submit(f, "echo resume");
	g_autofree gchar *claimed = agent_claim(f);
	const gchar *argv[] = {"show-logs", uuid, "--follow", NULL};
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GString) got = g_string_new(NULL);

	g_assert_cmpstr(claimed, ==, uuid);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "before\n", -1);
	proc = ctl_spawn(f, NULL, argv);
	read_until(proc, got, "before\n");
	daemon_stop(f);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "during\n", -1);
	daemon_spawn(f);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "after\n", -1);
	agent_finish(f, uuid, QSIM_STATUS_DONE, 0, NULL);
	ctl_finish(proc, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_string_append(got, r.out);
	g_assert_cmpstr(got->str, ==, "before\nduring\nafter\n");
	ctl_result_clear(&r);
}

typedef struct {
	QsimStatus status;
	gint exit_code;
	const gchar *error;
	gint expected;
} RunCase;

static void
run_case(Fixture *f, const RunCase *c)
{
	CtlResult r = {0};
	const gchar *argv[] = {"run", "dummy", "--timeout", "60", "--", "printf", "hi", NULL};
	g_autoptr(GSubprocess) proc = ctl_spawn(f, NULL, argv);
	g_autofree gchar *uuid = agent_claim(f);

	agent_log(f, uuid, QSIM_LOG_BOOT, "console noise\n", -1);
	agent_log(f, uuid, QSIM_LOG_COMMAND, "printf hi\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDOUT, "out 1\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDERR, "err 1\n", -1);
	agent_log(f, uuid, QSIM_LOG_STDOUT, binary_out, sizeof(binary_out) - 1);
	agent_log(f, uuid, QSIM_LOG_SYSTEM, "agent note\n", -1);
	agent_finish(f, uuid, c->status, c->exit_code, c->error);
	ctl_finish(proc, &r);

	g_assert_cmpint(r.status, ==, c->expected);
	/* stdout byte-exact, nothing but the guest's stdout */
	g_assert_cmpuint(r.out_len, ==, strlen("out 1\n") + sizeof(binary_out) - 1);
	g_assert_true(memcmp(r.out, "out 1\n", 6) == 0);
	g_assert_true(memcmp(r.out + 6, binary_out, sizeof(binary_out) - 1) == 0);
	/* stderr: the guest's stderr first; a status line only when it was not the guest's */
	g_assert_true(g_str_has_prefix(r.err, "err 1\n"));
	if (c->expected == 0 || c->expected == 3)
		g_assert_cmpstr(r.err, ==, "err 1\n");
	else
		g_assert_true(g_str_has_prefix(r.err + 6, "qsim-ctl: "));
	ctl_result_clear(&r);
}

static void
test_run_exit_0(Fixture *f, gconstpointer data)
{
	RunCase c = {QSIM_STATUS_DONE, 0, NULL, 0};
	run_case(f, &c);
}

static void
test_run_exit_3(Fixture *f, gconstpointer data)
{
	RunCase c = {QSIM_STATUS_FAILED, 3, "exit code 3", 3};
	run_case(f, &c);
}

static void
test_run_timeout(Fixture *f, gconstpointer data)
{
	RunCase c = {QSIM_STATUS_FAILED, -1, "timed out after 60 s", 124};
	run_case(f, &c);
}

static void
test_run_infra(Fixture *f, gconstpointer data)
{
	RunCase c = {QSIM_STATUS_FAILED, -1, "QEMU exited during boot", 125};
	run_case(f, &c);
}

/* Ctrl-C cancels the request and exits 130 */
static void
test_run_sigint(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	const gchar *argv[] = {"run", "dummy", "--", "sleep", "100", NULL};
	g_autoptr(GSubprocess) proc = ctl_spawn(f, NULL, argv);
	g_autofree gchar *uuid = agent_claim(f);

	/* the handler is installed before the request is submitted, so it is in place */
	agent_log(f, uuid, QSIM_LOG_STDOUT, "started\n", -1);
	g_subprocess_send_signal(proc, SIGINT);
	ctl_finish(proc, &r);
	g_assert_cmpint(r.status, ==, 130);
	g_assert_nonnull(strstr(r.err, uuid));
	g_assert_cmpint(store_status(f, uuid), ==, QSIM_STATUS_CANCELLED);
	ctl_result_clear(&r);
}

static void
test_auth(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	gchar *env[] = {"QSIM_TOKEN", "sekrit", NULL};

	ctl(f, &r, "list-requests");
	assert_error_line(&r, 1, NULL);
	ctl(f, &r, "--token", "wrong", "list-requests");
	assert_error_line(&r, 1, NULL);
	ctl(f, &r, "--token", "sekrit", "list-requests");
	g_assert_cmpint(r.status, ==, 0);
	ctl_env(f, &r, env, "vms", NULL);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "dummy"));
	/* /health needs no token */
	ctl(f, &r, "status");
	g_assert_cmpint(r.status, ==, 0);
	ctl_result_clear(&r);
}

#define ADD(path, func, data) g_test_add(path, Fixture, data, fixture_setup, func, fixture_teardown)

/* prepare: the request reaches the database; --wait follows it to the end the
 * agent (played here through the store) records, and fails with one line */
static void
test_prepare(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	const gchar *host = qsim_store_get_local_host();
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimTemplateRecord) row = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	gboolean claimed = FALSE;
	gboolean force = FALSE;

	ctl(f, &r, "prepare", "dummy");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "prepare requested"));
	row = qsim_store_get_template(f->store, "dummy", host, &error);
	g_assert_no_error(error);
	g_assert_cmpint(row->prepare_requested_at, !=, 0);
	g_assert_false(row->prepare_force);
	g_clear_pointer(&row, qsim_template_record_free);

	ctl(f, &r, "--json", "prepare", "dummy", "--force");
	g_assert_cmpint(r.status, ==, 0);
	{
		g_autoptr(JsonNode) reply = parse_json(r.out);

		g_assert_true(json_object_get_boolean_member(json_node_get_object(reply), "force"));
	}
	g_assert_true(qsim_store_claim_prepare(f->store, "dummy", host, &claimed, &force, &error));
	g_assert_true(claimed);
	g_assert_true(force);
	/* that "build" ends */
	row = qsim_store_get_template(f->store, "dummy", host, &error);
	row->state = QSIM_TEMPLATE_RECORD_STALE;
	g_assert_true(qsim_store_upsert_template(f->store, row, &error));
	g_clear_pointer(&row, qsim_template_record_free);

	/* --wait: the build fails; the error is one line, exit status 1 */
	{
		const gchar *argv[] = {"prepare", "dummy", "--wait", NULL};

		proc = ctl_spawn(f, NULL, argv);
	}
	/* wait for the request the command makes, then play the agent's claim and failure */
	for (;;) {
		row = qsim_store_get_template(f->store, "dummy", host, &error);
		g_assert_no_error(error);
		if (row->prepare_requested_at != 0)
			break;
		g_clear_pointer(&row, qsim_template_record_free);
		g_usleep(20 * 1000);
	}
	g_clear_pointer(&row, qsim_template_record_free);
	g_assert_true(qsim_store_claim_prepare(f->store, "dummy", host, &claimed, NULL, &error));
	g_assert_true(claimed);
	row = qsim_store_get_template(f->store, "dummy", host, &error);
	row->state = QSIM_TEMPLATE_RECORD_FAILED;
	row->reason = g_strdup("guest did not answer SSH");
	g_assert_true(qsim_store_upsert_template(f->store, row, &error));
	g_assert_no_error(error);
	ctl_result_clear(&r);
	ctl_finish(proc, &r);
	assert_error_line(&r, 1, "template of dummy is failed: guest did not answer SSH");

	/* --wait --timeout: no agent takes the request here, so the wait ends in 124 with
	 * one line, and the request stays for an agent */
	ctl(f, &r, "prepare", "dummy", "--wait", "--timeout", "1");
	assert_error_line(&r, 124, "template of dummy not ready after 1 s");
	g_clear_pointer(&row, qsim_template_record_free);
	row = qsim_store_get_template(f->store, "dummy", host, &error);
	g_assert_no_error(error);
	g_assert_cmpint(row->prepare_requested_at, !=, 0);
	g_clear_pointer(&row, qsim_template_record_free);
	ctl(f, &r, "prepare", "dummy", "--timeout", "5");
	assert_error_line(&r, 2, "--wait");
	ctl(f, &r, "prepare", "dummy", "--wait", "--timeout", "0");
	assert_error_line(&r, 2, "--timeout");

	/* usage errors and an unknown VM */
	ctl(f, &r, "prepare");
	assert_error_line(&r, 2, NULL);
	ctl(f, &r, "prepare", "dummy", "--follow");
	assert_error_line(&r, 2, "--follow");
	ctl(f, &r, "vms", "--force");
	assert_error_line(&r, 2, "--force");
	ctl(f, &r, "prepare", "-bad");
	assert_error_line(&r, 2, "-bad");
	ctl(f, &r, "prepare", "nope");
	assert_error_line(&r, 1, "nope");

	/* --host: only that host's row is asked; a bad host id never leaves the CLI, and a
	 * host that does not publish the VM is the server's 4xx, in one line */
	ctl(f, &r, "--json", "prepare", "dummy", "--host", host);
	g_assert_cmpint(r.status, ==, 0);
	{
		g_autoptr(JsonNode) reply = parse_json(r.out);
		JsonArray *hosts =
		    json_object_get_array_member(json_node_get_object(reply), "hosts");

		g_assert_cmpuint(json_array_get_length(hosts), ==, 1);
	}
	ctl(f, &r, "prepare", "dummy", "--host", "../etc");
	assert_error_line(&r, 2, "--host");
	ctl(f, &r, "prepare", "dummy", "--host", "no-such-host");
	g_assert_cmpint(r.status, !=, 0);
	g_assert_cmpint(r.status, !=, 2);
	ctl_result_clear(&r);
}

/* show-request and stats show how the VM started */
static void
test_start_mode(Fixture *f, gconstpointer data)
{
	CtlResult r = {0};
	g_autofree gchar *uuid = submit(f, "true");
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(GError) error = NULL;

	claimed = qsim_store_claim_next(f->store, "agent-cli", 60000, 0, &error);
	g_assert_nonnull(claimed);
	g_assert_true(qsim_store_set_start_mode(f->store, uuid, "warm", &error));
	g_assert_true(qsim_store_mark_running(f->store, uuid, "agent-cli", &error));
	g_assert_no_error(error);
	ctl(f, &r, "show-request", uuid);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "Start mode:"));
	g_assert_nonnull(strstr(r.out, " warm\n"));
	g_assert_true(qsim_store_finish_request(f->store, uuid, "agent-cli", QSIM_STATUS_DONE, TRUE,
	                                        0, NULL, NULL, &error));
	ctl(f, &r, "stats");
	g_assert_cmpint(r.status, ==, 0);
	g_assert_nonnull(strstr(r.out, "started warm"));
	g_assert_nonnull(strstr(r.out, "started cold"));
	ctl_result_clear(&r);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/cli/help-version", test_help_version);
	g_test_add_func("/qsim/cli/usage-errors", test_usage_errors);
	g_test_add_func("/qsim/cli/connection-refused", test_connection_refused);
	g_test_add_func("/qsim/cli/translation", test_translation);
	ADD("/qsim/cli/status-vms-config", test_status_vms_config, NULL);
	ADD("/qsim/cli/prepare", test_prepare, NULL);
	ADD("/qsim/cli/start-mode", test_start_mode, NULL);
	ADD("/qsim/cli/submit-list-show", test_submit_list_show, NULL);
	ADD("/qsim/cli/hold-resume-cancel-delete", test_hold_resume_cancel_delete, NULL);
	ADD("/qsim/cli/delete-active", test_delete_active, NULL);
	ADD("/qsim/cli/purge", test_purge, NULL);
	ADD("/qsim/cli/show-logs", test_show_logs, NULL);
	ADD("/qsim/cli/show-logs-byte-pages", test_show_logs_byte_pages, NULL);
	ADD("/qsim/cli/prefix-and-paging", test_prefix_and_paging, NULL);
	ADD("/qsim/cli/follow-live", test_follow_live, NULL);
	ADD("/qsim/cli/follow-resume", test_follow_resume, NULL);
	ADD("/qsim/cli/run/exit-0", test_run_exit_0, NULL);
	ADD("/qsim/cli/run/exit-3", test_run_exit_3, NULL);
	ADD("/qsim/cli/run/timeout-124", test_run_timeout, NULL);
	ADD("/qsim/cli/run/infra-125", test_run_infra, NULL);
	ADD("/qsim/cli/run/sigint-130", test_run_sigint, NULL);
	ADD("/qsim/cli/auth", test_auth, "sekrit");
	return g_test_run();
}
