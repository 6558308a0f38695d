/*
 * QsimGuest against a real SSH server: dropbear on 127.0.0.1, started by this
 * test in a private mount namespace (see dropbear-ns.sh).
 */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "guest/qsim-guest.h"

#include "guest-test-util.h"

typedef struct {
	gchar *dir;
	gchar *home;
	gchar *key;
	gchar *wrong_key;
	gchar *fingerprint;
	gchar *password;
	guint16 port;
	GSubprocess *sshd;
	gchar *skip_reason;
	gchar *sftp_running; /* exists while the SFTP server runs, NULL without one */
	gchar *sftp_linger;  /* seconds the SFTP server lingers before it exits */
	gchar *sftp_fake;    /* a fake-sftp-server mode: runs it instead while not empty */
	gchar *sftp_stats;   /* what the fake wrote: "writes N max M bytes B" */
} TestServer;

static TestServer server;

static gboolean
skip_without_server(void)
{
	if (server.skip_reason == NULL)
		return FALSE;
	g_test_skip(server.skip_reason);
	return TRUE;
}

/* skip_without_server(), and a skip without the SFTP server the wrapper runs */
static gboolean
skip_without_sftp(void)
{
	if (skip_without_server())
		return TRUE;
	if (server.sftp_running != NULL)
		return FALSE;
	g_test_skip("no /usr/lib/openssh/sftp-server (openssh-sftp-server)");
	return TRUE;
}

static QsimGuest *
connected_guest(void)
{
	g_autoptr(QsimGuest) guest =
	    qsim_guest_new("127.0.0.1", server.port, "root", server.key, NULL);
	g_autoptr(Result) r = do_connect(guest, 20000, NULL);

	g_assert_no_error(r->error);
	g_assert_true(r->ok);
	g_assert_true(qsim_guest_is_connected(guest));
	return g_steal_pointer(&guest);
}

static void
test_exec_streams(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;

	if (skip_without_server())
		return;
	guest = connected_guest();
	/* the fingerprint is the one dropbearkey reports for the host key */
	g_assert_cmpstr(qsim_guest_get_host_key_fingerprint(guest), ==, server.fingerprint);
	do_exec(guest, "echo out; echo err >&2; exit 3", r);
	g_assert_no_error(r->error);
	g_assert_true(r->ok);
	out = result_out(r);
	err = result_err(r);
	g_assert_cmpstr(out, ==, "out\n");
	g_assert_cmpstr(err, ==, "err\n");
	g_assert_cmpint(r->exit_status, ==, 3);
	g_assert_null(r->exit_signal);
}

static void
test_exec_signal(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) r2 = result_new(TRUE);
	g_autofree gchar *out = NULL;

	if (skip_without_server())
		return;
	guest = connected_guest();
	do_exec(guest, "echo before; kill -TERM $$; echo after", r);
	g_assert_no_error(r->error);
	g_assert_true(r->ok);
	g_assert_cmpstr(r->exit_signal, ==, "TERM");
	g_assert_cmpint(r->exit_status, ==, -1);
	out = result_out(r);
	g_assert_cmpstr(out, ==, "before\n");

	/* a clean exit on the same session reports no signal */
	do_exec(guest, "true", r2);
	g_assert_true(r2->ok);
	g_assert_cmpint(r2->exit_status, ==, 0);
	g_assert_null(r2->exit_signal);
}

typedef struct {
	QsimGuest *guest;
	gsize budget;
	gboolean unpaused;
} UnpauseWatch;

/* Unpauses once the worker has filled the whole budget, proving it stopped reading there. */
static gboolean
unpause_when_full_cb(gpointer user_data)
{
	UnpauseWatch *watch = user_data;

	if (qsim_guest_get_max_bytes_in_flight(watch->guest) < watch->budget)
		return G_SOURCE_CONTINUE;
	watch->unpaused = TRUE;
	qsim_guest_set_flow_paused(watch->guest, FALSE);
	return G_SOURCE_REMOVE;
}

static void
test_exec_large(void)
{
	const gsize budget = 256 * 1024;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(FALSE);
	g_autofree gchar *remote = NULL;
	UnpauseWatch watch = {0};
	guint source_id;

	if (skip_without_server())
		return;
	guest = connected_guest();
	qsim_guest_set_flow_budget(guest, budget);
	/* start paused: the worker must stop at the budget instead of buffering 20 MB */
	qsim_guest_set_flow_paused(guest, TRUE);
	g_assert_true(qsim_guest_get_flow_paused(guest));
	watch.guest = guest;
	watch.budget = budget;
	source_id = g_timeout_add(10, unpause_when_full_cb, &watch);
	/* seq 1 2700000 prints 20,488,896 bytes; the checksum is computed by the server */
	do_exec(guest, "seq 1 2700000; seq 1 2700000 | sha256sum >&2", r);
	if (!watch.unpaused)
		g_source_remove(source_id);
	g_assert_no_error(r->error);
	g_assert_true(watch.unpaused);
	g_assert_cmpint(r->exit_status, ==, 0);
	g_assert_cmpuint(r->out_len, ==, 20488896);
	remote = result_err(r);
	g_assert_true(g_str_has_prefix(remote, g_checksum_get_string(r->out_sum)));
	g_assert_cmpuint(qsim_guest_get_max_bytes_in_flight(guest), ==, budget);
}

typedef struct {
	QsimGuest *guest;
	gsize budget;
	GCancellable *cancellable;
} CancelWatch;

static gboolean
cancel_when_full_cb(gpointer user_data)
{
	CancelWatch *watch = user_data;

	if (qsim_guest_get_max_bytes_in_flight(watch->guest) < watch->budget)
		return G_SOURCE_CONTINUE;
	g_cancellable_cancel(watch->cancellable);
	return G_SOURCE_REMOVE;
}

static void
test_exec_cancel_paused(void)
{
	const gsize budget = 64 * 1024;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) again = result_new(TRUE);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	CancelWatch watch = {0};

	if (skip_without_server())
		return;
	guest = connected_guest();
	qsim_guest_set_flow_budget(guest, budget);
	qsim_guest_set_flow_paused(guest, TRUE);
	watch.guest = guest;
	watch.budget = budget;
	watch.cancellable = cancellable;
	g_timeout_add(10, cancel_when_full_cb, &watch);
	/* a consumer that paused and then cancels still gets its completion, and the
	 * queued output is dropped rather than delivered */
	qsim_guest_exec_async(guest, "while :; do seq 1 10000; done", output_cb, r, cancellable,
	                      exec_cb, r);
	wait_done(r);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_assert_cmpuint(r->chunks, ==, 0);
	g_assert_cmpuint(qsim_guest_get_max_bytes_in_flight(guest), ==, budget);

	/* unpaused, the session works again */
	qsim_guest_set_flow_paused(guest, FALSE);
	do_exec(guest, "echo again", again);
	g_assert_no_error(again->error);
	g_assert_cmpint(again->exit_status, ==, 0);
	g_assert_cmpuint(again->out->len, ==, 6);
}

static void
test_exec_cancel(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) again = result_new(TRUE);
	g_autofree gchar *out = NULL;

	if (skip_without_server())
		return;
	guest = connected_guest();
	r->cancel_on_output = g_cancellable_new();
	/* the loop writes regularly so it dies of SIGPIPE once the channel closes
	 * (dropbear does not kill commands of closed channels) */
	do_exec(guest, "echo started; while :; do sleep 0.1; echo tick; done", r);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_assert_false(r->ok);
	g_assert_true(qsim_guest_is_connected(guest));

	/* the session stays usable */
	do_exec(guest, "echo again", again);
	g_assert_no_error(again->error);
	out = result_out(again);
	g_assert_cmpstr(out, ==, "again\n");
	g_assert_cmpint(again->exit_status, ==, 0);
}

static void
test_exec_close(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) queued = result_new(TRUE);
	g_autoptr(Result) reconnect = NULL;
	g_autoptr(Result) again = result_new(TRUE);

	if (skip_without_server())
		return;
	guest = connected_guest();
	r->close_on_output = guest;
	qsim_guest_exec_async(guest, "echo started; while :; do sleep 0.1; echo tick; done",
	                      output_cb, r, NULL, exec_cb, r);
	/* queued behind the running command: fails too once the session is closed */
	qsim_guest_exec_async(guest, "echo never", output_cb, queued, NULL, exec_cb, queued);
	wait_done(r);
	wait_done(queued);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_GUEST);
	g_assert_error(queued->error, QSIM_ERROR, QSIM_ERROR_GUEST);
	g_assert_cmpuint(queued->out->len, ==, 0);
	g_assert_false(qsim_guest_is_connected(guest));
	g_assert_null(qsim_guest_get_host_key_fingerprint(guest));

	/* a later connect opens a fresh session */
	reconnect = do_connect(guest, 20000, NULL);
	g_assert_no_error(reconnect->error);
	g_assert_cmpstr(qsim_guest_get_host_key_fingerprint(guest), ==, server.fingerprint);
	do_exec(guest, "exit 7", again);
	g_assert_no_error(again->error);
	g_assert_cmpint(again->exit_status, ==, 7);
}

static void
test_exec_not_connected(void)
{
	g_autoptr(QsimGuest) guest = qsim_guest_new("127.0.0.1", 9, "root", NULL, NULL);
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) bad = result_new(TRUE);

	do_exec(guest, "true", r);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_GUEST);
	g_assert_false(qsim_guest_is_connected(guest));
	/* invalid input is rejected before it reaches the worker */
	do_exec(guest, "", bad);
	g_assert_error(bad->error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

static void
test_run_simple(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) failed = result_new(TRUE);
	g_autoptr(Result) slow = result_new(TRUE);

	if (skip_without_server())
		return;
	guest = connected_guest();
	qsim_guest_run_simple_async(guest, "echo hi; echo warn >&2", 10000, NULL, simple_cb, r);
	wait_done(r);
	g_assert_no_error(r->error);
	g_assert_cmpstr(r->simple_out, ==, "hi\n");
	g_assert_cmpstr(r->simple_err, ==, "warn\n");

	qsim_guest_run_simple_async(guest, "echo broken clock >&2; exit 4", 10000, NULL, simple_cb,
	                            failed);
	wait_done(failed);
	g_assert_error(failed->error, QSIM_ERROR, QSIM_ERROR_GUEST);
	assert_error_mentions(failed->error, "status 4");
	assert_error_mentions(failed->error, "broken clock");

	qsim_guest_run_simple_async(guest, "while :; do echo x; sleep 0.1; done", 300, NULL,
	                            simple_cb, slow);
	wait_done(slow);
	g_assert_error(slow->error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	g_assert_true(qsim_guest_is_connected(guest));
}

static void
test_connect_refused(void)
{
	g_autoptr(QsimGuest) guest = qsim_guest_new("127.0.0.1", closed_port(), "root", NULL, NULL);
	g_autoptr(Result) r = do_connect(guest, 2000, NULL);

	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	assert_error_mentions(r->error, "connection refused");
	g_assert_false(qsim_guest_is_connected(guest));
	g_assert_null(qsim_guest_get_host_key_fingerprint(guest));
}

/* A peer that accepts TCP (through the kernel backlog) but never sends a banner, like
 * QEMU's user networking before the guest's sshd is up. */
static GSocket *
silent_listener(guint16 *port)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, address, FALSE, &error));
	g_socket_set_listen_backlog(socket, 16);
	g_assert_true(g_socket_listen(socket, &error));
	bound = g_socket_get_local_address(socket, &error);
	*port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	return g_steal_pointer(&socket);
}

static void
test_connect_banner_timeout(void)
{
	guint16 port = 0;
	g_autoptr(GSocket) listener = silent_listener(&port);
	g_autoptr(QsimGuest) guest = qsim_guest_new("127.0.0.1", port, "root", NULL, NULL);
	g_autoptr(Result) r = NULL;

	qsim_guest_set_attempt_timeout(guest, 300);
	r = do_connect(guest, 1000, NULL);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	assert_error_mentions(r->error, "banner timeout");
}

static gboolean
cancel_later_cb(gpointer user_data)
{
	g_cancellable_cancel(user_data);
	return G_SOURCE_REMOVE;
}

static void
test_connect_cancel(void)
{
	guint16 port = 0;
	g_autoptr(GSocket) listener = silent_listener(&port);
	g_autoptr(QsimGuest) guest = qsim_guest_new("127.0.0.1", port, "root", NULL, NULL);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(Result) r = NULL;

	/* the deadline is far away: only the cancellation can end this */
	g_idle_add(cancel_later_cb, cancellable);
	r = do_connect(guest, 600000, cancellable);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_assert_false(qsim_guest_is_connected(guest));
}

static void
test_connect_auth_failed(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = NULL;

	if (skip_without_server())
		return;
	guest = qsim_guest_new("127.0.0.1", server.port, "root", server.wrong_key, NULL);
	r = do_connect(guest, 3000, NULL);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	assert_error_mentions(r->error, "auth failed");
	g_assert_false(qsim_guest_is_connected(guest));
}

static void
test_connect_password(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(QsimGuest) fallback = NULL;
	g_autoptr(Result) r = NULL;
	g_autoptr(Result) r2 = NULL;
	g_autoptr(Result) out = result_new(TRUE);

	if (skip_without_server())
		return;
	guest = qsim_guest_new("127.0.0.1", server.port, "root", NULL, server.password);
	r = do_connect(guest, 20000, NULL);
	g_assert_no_error(r->error);
	do_exec(guest, "echo pw", out);
	g_assert_cmpint(out->exit_status, ==, 0);

	/* a rejected key falls back to the password */
	fallback =
	    qsim_guest_new("127.0.0.1", server.port, "root", server.wrong_key, server.password);
	r2 = do_connect(fallback, 20000, NULL);
	g_assert_no_error(r2->error);
	g_assert_true(qsim_guest_is_connected(fallback));
}

static void
test_connect_wrong_password(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = NULL;

	if (skip_without_server())
		return;
	guest = qsim_guest_new("127.0.0.1", server.port, "root", server.wrong_key, "not-it");
	r = do_connect(guest, 3000, NULL);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	assert_error_mentions(r->error, "auth failed");
	assert_error_mentions(r->error, "password");
	/* the secret never appears in errors */
	g_assert_null(strstr(r->error->message, "not-it"));
}

static void
test_exec_session_lost(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) reconnect = NULL;
	g_autoptr(Result) again = result_new(TRUE);

	if (skip_without_server())
		return;
	guest = connected_guest();
	/* the shell's parent is dropbear's process for this connection */
	do_exec(guest, "echo bye; kill -9 $PPID; sleep 1", r);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_GUEST);
	g_assert_false(qsim_guest_is_connected(guest));
	reconnect = do_connect(guest, 20000, NULL);
	g_assert_no_error(reconnect->error);
	do_exec(guest, "exit 0", again);
	g_assert_no_error(again->error);
}

static void
test_connect_bad_key_file(void)
{
	g_autofree gchar *path = g_build_filename(server.dir, "no-such-key", NULL);
	g_autoptr(QsimGuest) guest = qsim_guest_new("127.0.0.1", closed_port(), "root", path, NULL);
	g_autoptr(Result) r = do_connect(guest, 60000, NULL);

	/* a configuration error is not retried until the deadline */
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_INVALID);
	assert_error_mentions(r->error, "no-such-key");
}

static void
test_connect_twice(void)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) r = NULL;

	if (skip_without_server())
		return;
	guest = connected_guest();
	/* already connected: succeeds at once even with a deadline in the past */
	r = do_connect(guest, -1000, NULL);
	g_assert_no_error(r->error);
	g_assert_cmpstr(qsim_guest_get_host_key_fingerprint(guest), ==, server.fingerprint);
}

/* ---- the test server ---- */

static gboolean
run_tool(const gchar *const *argv, gchar **stdout_text, GError **error)
{
	g_autoptr(GSubprocess) proc = NULL;

	proc = g_subprocess_newv(
	    argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, error);
	if (proc == NULL)
		return FALSE;
	if (!g_subprocess_communicate_utf8(proc, NULL, NULL, stdout_text, NULL, error))
		return FALSE;
	if (!g_subprocess_get_if_exited(proc) || g_subprocess_get_exit_status(proc) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed: %s", argv[0],
		            stdout_text != NULL && *stdout_text != NULL ? *stdout_text : "");
		return FALSE;
	}
	return TRUE;
}

static gboolean
make_client_key(const gchar *path, GError **error)
{
	const gchar *argv[] = {"ssh-keygen", "-q",        "-t", "ed25519", "-N", "",
	                       "-C",         "qsim-test", "-f", path,      NULL};
	return run_tool(argv, NULL, error);
}

static gboolean
port_answers(guint16 port)
{
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, port);
	g_autoptr(GSocket) socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

	/* a plain socket: GSocketClient would start GIO's proxy resolver threads */
	return socket != NULL && g_socket_connect(socket, address, NULL, NULL);
}

static gboolean
wait_for_port(guint16 port, GError **error)
{
	/* bounded: dropbear binds within milliseconds, or has failed */
	for (guint i = 0; i < 500; i++) {
		if (g_subprocess_get_identifier(server.sshd) == NULL) {
			g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			                    "dropbear exited");
			return FALSE;
		}
		if (port_answers(port))
			return TRUE;
		g_usleep(20 * 1000);
	}
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "dropbear did not listen");
	return FALSE;
}

/* Runs in the forked child: dropbear must not outlive a test that aborts. */
static void
die_with_parent(gpointer user_data)
{
	/* SIGKILL: unshare --fork blocks SIGTERM while it waits */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/*
 * The SFTP server dropbear runs: the real one (a copy), then a linger before
 * it exits, as a loaded TCG guest takes a while to reap it, with a marker file
 * while it runs. Dropbear closes the channel only once this has exited.
 */
static gboolean
sftp_wrapper_write(const gchar *wrapper, GError **error)
{
	g_autofree gchar *real = g_build_filename(server.dir, "sftp-server.real", NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *bytes = NULL;
	gsize len = 0;

	if (!g_file_get_contents("/usr/lib/openssh/sftp-server", &bytes, &len, error) ||
	    !g_file_set_contents_full(real, bytes, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
	                              0755, error))
		return FALSE;
	server.sftp_running = g_build_filename(server.dir, "sftp-running", NULL);
	server.sftp_linger = g_build_filename(server.dir, "sftp-linger", NULL);
	server.sftp_fake = g_build_filename(server.dir, "sftp-fake", NULL);
	server.sftp_stats = g_build_filename(server.dir, "sftp-stats", NULL);
	if (!g_file_set_contents(server.sftp_linger, "1", -1, error) ||
	    !g_file_set_contents(server.sftp_fake, "", -1, error))
		return FALSE;
	/* dash runs the TERM trap once the real server (stdin at EOF) ended */
	text = g_strdup_printf(
	    "#!/bin/sh\n"
	    "touch '%s'\n"
	    "trap \"rm -f '%s'; exit 143\" TERM\n"
	    "if [ -s '%s' ]; then '%s' \"$(cat '%s')\" '%s'; else '%s' \"$@\"; fi\n"
	    "sleep \"$(cat '%s')\"\n"
	    "rm -f '%s'\n",
	    server.sftp_running, server.sftp_running, server.sftp_fake, QSIM_FAKE_SFTP_SERVER,
	    server.sftp_fake, server.sftp_stats, real, server.sftp_linger, server.sftp_running);
	return g_file_set_contents_full(wrapper, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0755,
	                                error);
}

static gboolean
server_start(GError **error)
{
	g_autofree gchar *ssh_dir = NULL;
	g_autofree gchar *hostkey = NULL;
	g_autofree gchar *pub = NULL;
	g_autofree gchar *auth = NULL;
	g_autofree gchar *pubkey_text = NULL;
	g_autofree gchar *y_out = NULL;
	g_autofree gchar *log = NULL;
	g_autofree gchar *script =
	    g_test_build_filename(G_TEST_DIST, "guest", "dropbear-ns.sh", NULL);
	g_autofree gchar *port_str = NULL;
	g_autofree gchar *shadow = NULL;
	g_autofree gchar *sftp_wrapper = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	const gchar *fp;

	if (getuid() != 0) {
		server.skip_reason = g_strdup("needs root to run dropbear in a mount namespace");
		return TRUE;
	}
	if (!g_file_test("/usr/sbin/dropbear", G_FILE_TEST_IS_EXECUTABLE)) {
		server.skip_reason = g_strdup("dropbear is not installed");
		return TRUE;
	}
	server.dir = g_dir_make_tmp("qsim-guest-test-XXXXXX", error);
	if (server.dir == NULL)
		return FALSE;
	server.home = g_build_filename(server.dir, "home", NULL);
	ssh_dir = g_build_filename(server.home, ".ssh", NULL);
	if (g_mkdir_with_parents(ssh_dir, 0700) != 0 || g_chmod(server.home, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "mkdir %s failed", ssh_dir);
		return FALSE;
	}
	hostkey = g_build_filename(server.dir, "hostkey", NULL);
	{
		const gchar *argv[] = {"dropbearkey", "-t", "ed25519", "-f", hostkey, NULL};
		if (!run_tool(argv, NULL, error))
			return FALSE;
	}
	{
		const gchar *argv[] = {"dropbearkey", "-y", "-f", hostkey, NULL};
		if (!run_tool(argv, &y_out, error))
			return FALSE;
	}
	fp = strstr(y_out, "Fingerprint: ");
	if (fp == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "no fingerprint in: %s", y_out);
		return FALSE;
	}
	server.fingerprint = g_strstrip(g_strdup(fp + strlen("Fingerprint: ")));
	server.key = g_build_filename(server.dir, "client_key", NULL);
	server.wrong_key = g_build_filename(server.dir, "wrong_key", NULL);
	if (!make_client_key(server.key, error) || !make_client_key(server.wrong_key, error))
		return FALSE;
	pub = g_strconcat(server.key, ".pub", NULL);
	if (!g_file_get_contents(pub, &pubkey_text, NULL, error))
		return FALSE;
	auth = g_build_filename(ssh_dir, "authorized_keys", NULL);
	if (!g_file_set_contents_full(auth, pubkey_text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
	                              error))
		return FALSE;

	/* a shadow file of our own with a known password, bound over /etc/shadow
	 * inside dropbear's mount namespace only */
	server.password = g_strdup("qsim-test-password");
	{
		const gchar *argv[] = {"openssl",  "passwd",        "-6", "-salt",
		                       "qsimtest", server.password, NULL};
		g_autofree gchar *hash = NULL;
		g_autofree gchar *line = NULL;
		if (!run_tool(argv, &hash, error))
			return FALSE;
		line = g_strdup_printf("root:%s:19000:0:99999:7:::\n", g_strstrip(hash));
		shadow = g_build_filename(server.dir, "shadow", NULL);
		if (!g_file_set_contents_full(shadow, line, -1, G_FILE_SET_CONTENTS_CONSISTENT,
		                              0600, error))
			return FALSE;
	}

	sftp_wrapper = g_build_filename(server.dir, "sftp-server", NULL);
	if (!g_file_test("/usr/lib/openssh/sftp-server", G_FILE_TEST_IS_EXECUTABLE))
		g_clear_pointer(&sftp_wrapper, g_free);
	else if (!sftp_wrapper_write(sftp_wrapper, error))
		return FALSE;

	server.port = closed_port();
	port_str = g_strdup_printf("%u", server.port);
	log = g_build_filename(server.dir, "dropbear.log", NULL);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
	{
		/* own mount namespace for the fake /root; own pid namespace so that
		 * every command the tests leave behind dies with dropbear */
		const gchar *argv[] = {"unshare", "--mount", "--pid", "--kill-child=SIGTERM",
		                       "--",      "/bin/sh", script,  server.home,
		                       hostkey,   port_str,  shadow,  sftp_wrapper,
		                       NULL};
		server.sshd = g_subprocess_launcher_spawnv(launcher, argv, error);
	}
	if (server.sshd == NULL)
		return FALSE;
	if (!wait_for_port(server.port, error)) {
		g_autofree gchar *text = NULL;
		g_file_get_contents(log, &text, NULL, NULL);
		g_prefix_error(error, "%s: ", text != NULL ? text : "");
		return FALSE;
	}
	return TRUE;
}

static void
server_stop(void)
{
	if (server.sshd != NULL) {
		/* unshare passes SIGTERM on to dropbear (--kill-child) */
		g_subprocess_force_exit(server.sshd);
		g_subprocess_wait(server.sshd, NULL, NULL);
		g_clear_object(&server.sshd);
	}
	if (server.dir != NULL && g_getenv("QSIM_TEST_KEEP") == NULL) {
		const gchar *argv[] = {"rm", "-rf", "--", server.dir, NULL};
		/* the tree is ours alone; rm keeps this short */
		g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
		             NULL, NULL, NULL);
	}
	g_free(server.dir);
	g_free(server.home);
	g_free(server.key);
	g_free(server.wrong_key);
	g_free(server.fingerprint);
	g_free(server.password);
	g_free(server.skip_reason);
	g_free(server.sftp_running);
	g_free(server.sftp_linger);
	g_free(server.sftp_fake);
	g_free(server.sftp_stats);
}

typedef struct {
	gboolean done;
	gint64 total;
	GPtrArray *artifacts;
	GError *error;
	GBytes *content; /* handed out once by put_read, then the end */
	GMutex lock;
	GOutputStream *collected;
} FileOp;

static GBytes *
put_read(gpointer data, GError **error)
{
	FileOp *op = data;

	if (op->content == NULL)
		return g_bytes_new(NULL, 0);
	return g_steal_pointer(&op->content);
}

static void
upload_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	FileOp *op = user_data;

	op->total = qsim_guest_upload_finish(QSIM_GUEST(source), res, NULL, &op->error);
	op->done = TRUE;
}

static GOutputStream *
collect_open(gpointer data, const gchar *name, GError **error)
{
	FileOp *op = data;
	GOutputStream *os = g_memory_output_stream_new_resizable();

	g_mutex_lock(&op->lock);
	g_set_object(&op->collected, os);
	g_mutex_unlock(&op->lock);
	return os;
}

static void
collect_discard(gpointer data, const gchar *name)
{
}

static void
collect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	FileOp *op = user_data;

	op->artifacts = qsim_guest_collect_finish(QSIM_GUEST(source), res, NULL, &op->error);
	op->done = TRUE;
}

/* Fails unless the guest's SFTP server is gone, i.e. dropbear closed its channel. */
static void
assert_sftp_server_gone(QsimGuest *guest)
{
	g_autofree gchar *cmd =
	    g_strdup_printf("test -e '%s' && echo overlap || echo alone", server.sftp_running);
	g_autoptr(Result) r = result_new(TRUE);

	qsim_guest_run_simple_async(guest, cmd, 10000, NULL, simple_cb, r);
	wait_done(r);
	g_assert_no_error(r->error);
	g_assert_cmpstr(r->simple_out, ==, "alone\n");
}

static void
test_sftp_no_overlap(void)
{
	/* dropbear 2022.83 can drop the whole session when it reaps the SFTP server
	 * of a channel we closed while it starts the next command ("Socket error:
	 * disconnected" in /artifacts-vm/inputs, 1 run in 4): an upload and a
	 * collection must only end once the guest closed their channel, so the
	 * next command never overlaps the server (which lingers 1 s here) */
	static const gchar text[] = "sftp, then exec\n";
	g_autofree gchar *path = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	FileOp up = {0};
	FileOp got = {0};
	QsimGuestPut put = {0};
	const QsimGuestCollectLimits limits = {.max_files = 10, .max_bytes = 1 << 20};
	const QsimGuestCollectSink sink = {collect_open, collect_discard, &got};
	const gchar *patterns[] = {NULL, NULL};

	if (skip_without_sftp())
		return;
	guest = connected_guest();
	path = g_build_filename(server.dir, "up", "file.txt", NULL);
	up.content = g_bytes_new_static(text, strlen(text));
	put.guest_path = path;
	put.mode = 0640;
	put.read = put_read;
	put.data = &up;
	qsim_guest_upload_async(guest, &put, 1, NULL, upload_cb, &up);
	while (!up.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_no_error(up.error);
	g_assert_cmpint(up.total, ==, (gint64)strlen(text));
	assert_sftp_server_gone(guest);

	g_mutex_init(&got.lock);
	patterns[0] = path;
	qsim_guest_collect_async(guest, patterns, &limits, &sink, NULL, collect_cb, &got);
	while (!got.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_no_error(got.error);
	g_assert_cmpuint(got.artifacts->len, ==, 1);
	g_assert_nonnull(got.collected);
	g_assert_cmpmem(g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(got.collected)),
	                g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(got.collected)),
	                text, strlen(text));
	assert_sftp_server_gone(guest);
	g_assert_true(qsim_guest_is_connected(guest));
	g_ptr_array_unref(got.artifacts);
	g_clear_object(&got.collected);
	g_mutex_clear(&got.lock);
}

static void
test_sftp_reap_stress(void)
{
	/* the crash itself: uploads, each followed by a command, while the SFTP
	 * server lingers 0-19 ms, so dropbear reaps it around the time the command
	 * starts. Before the fix dropbear 2022.83 died within 6-13 rounds ("Failed
	 * assertion (common-channel.c:705): `!channel->sent_close'") */
	static const gchar text[] = "x";
	g_autofree gchar *path = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GError) error = NULL;

	if (skip_without_sftp())
		return;
	guest = connected_guest();
	path = g_build_filename(server.dir, "up", "stress.txt", NULL);
	for (guint i = 0; i < 20; i++) {
		g_autofree gchar *linger = g_strdup_printf("0.%03u", i);
		g_autoptr(Result) r = result_new(TRUE);
		FileOp up = {0};
		QsimGuestPut put = {
		    .guest_path = path, .mode = 0600, .read = put_read, .data = &up};

		g_assert_true(g_file_set_contents(server.sftp_linger, linger, -1, &error));
		up.content = g_bytes_new_static(text, strlen(text));
		qsim_guest_upload_async(guest, &put, 1, NULL, upload_cb, &up);
		while (!up.done)
			g_main_context_iteration(NULL, TRUE);
		g_assert_no_error(up.error);
		qsim_guest_run_simple_async(guest, "true", 10000, NULL, simple_cb, r);
		wait_done(r);
		g_assert_no_error(r->error);
	}
	g_assert_true(g_file_set_contents(server.sftp_linger, "1", -1, &error));
}

/* Hands out its bytes in odd-sized chunks, so WRITEs straddle them */
typedef struct {
	GBytes *all;
	gsize pos;
} Chunked;

static GBytes *
chunked_read(gpointer data, GError **error)
{
	Chunked *c = data;
	gsize n = MIN(g_bytes_get_size(c->all) - c->pos, 100003);
	GBytes *piece = g_bytes_new_from_bytes(c->all, c->pos, n);

	c->pos += n;
	return piece;
}

static GBytes *
random_bytes(gsize len)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(16);
	guint8 *data = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)g_rand_int(rand);
	return g_bytes_new_take(data, len);
}

typedef struct {
	GCancellable *cancellable;
	gboolean fired;
} LateCancel;

static gboolean
late_cancel_cb(gpointer user_data)
{
	LateCancel *late = user_data;

	late->fired = TRUE;
	g_cancellable_cancel(late->cancellable);
	return G_SOURCE_REMOVE;
}

/* Uploads @all to @path; returns what the upload returned. @cancel_ms > 0: cancels then. */
static gint64
upload_bytes(QsimGuest *guest, const gchar *path, GBytes *all, guint cancel_ms, GError **error)
{
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	Chunked c = {.all = all};
	QsimGuestPut put = {
	    .guest_path = (gchar *)path, .mode = 0640, .read = chunked_read, .data = &c};
	FileOp up = {0};
	LateCancel late = {.cancellable = cancellable};
	guint timer = 0;

	if (cancel_ms > 0)
		timer = g_timeout_add(cancel_ms, late_cancel_cb, &late);
	qsim_guest_upload_async(guest, &put, 1, cancellable, upload_cb, &up);
	while (!up.done)
		g_main_context_iteration(NULL, TRUE);
	if (timer != 0 && !late.fired)
		g_source_remove(timer);
	if (up.error != NULL)
		g_propagate_error(error, up.error);
	return up.total;
}

/* After a failed transfer: the SSH session still runs a command */
static void
assert_session_works(QsimGuest *guest)
{
	g_autoptr(Result) r = result_new(TRUE);

	qsim_guest_run_simple_async(guest, "echo alive", 10000, NULL, simple_cb, r);
	wait_done(r);
	g_assert_no_error(r->error);
	g_assert_cmpstr(r->simple_out, ==, "alive\n");
}

static void
assert_same_file(const gchar *path, GBytes *want)
{
	g_autofree gchar *got = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_get_contents(path, &got, &len, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(got, len, g_bytes_get_data(want, NULL), g_bytes_get_size(want));
}

static void
test_sftp_pipelined(void)
{
	/* the real sftp-server: many WRITEs in flight, of the size its limits allow */
	g_autoptr(GBytes) all = random_bytes(3 * 1024 * 1024 + 17);
	g_autofree gchar *path = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GError) error = NULL;

	if (skip_without_sftp())
		return;
	guest = connected_guest();
	path = g_build_filename(server.dir, "up", "pipelined.bin", NULL);
	g_assert_cmpint(upload_bytes(guest, path, all, 0, &error), ==,
	                (gint64)g_bytes_get_size(all));
	g_assert_no_error(error);
	assert_same_file(path, all);
}

typedef struct {
	const gchar *mode;
	const gchar *error; /* NULL: the upload succeeds */
	guint64 max_write;  /* the largest WRITE the server saw, when it succeeds */
} HostileCase;

/* A number the fake SFTP server wrote in its stats, after @key */
static guint64
fake_stat(const gchar *key)
{
	g_autofree gchar *stats = NULL;
	g_autofree gchar *pattern = g_strdup_printf("%s ", key);
	const gchar *at;

	g_assert_true(g_file_get_contents(server.sftp_stats, &stats, NULL, NULL));
	at = strstr(stats, pattern);
	g_assert_nonnull(at);
	return g_ascii_strtoull(at + strlen(pattern), NULL, 10);
}

static void
test_sftp_hostile(void)
{
	/* what a guest's SFTP server may answer to the pipelined WRITEs: each lie is
	 * an error that names it (never a crash, a hang or a huge allocation), and
	 * the SSH session stays usable; honest variations still upload every byte */
	static const HostileCase cases[] = {
	    {"ok", NULL, 255 * 1024},
	    {"no-limits", NULL, 32 * 1024},
	    {"limits-refused", NULL, 32 * 1024},
	    {"small-limits", NULL, 1024},
	    /* a 64 KiB packet less the longest WRITE header */
	    {"packet-limits", NULL, 64 * 1024 - 281},
	    {"reorder", NULL, 255 * 1024},
	    {"refuse", "No space left", 0},
	    {"wrong-id", "no write in flight", 0},
	    {"wrong-type", "not a status", 0},
	    {"huge", "2147483392-byte reply", 0},
	    {"tiny-reply", "5-byte reply", 0},
	    {"bad-message", "failed: no message (SFTP status 4)", 0},
	    {"exit", "ended while", 0},
	    {"bad-limits", "limits question", 0},
	    {"short-limits", "limits question", 0},
	};
	g_autoptr(GBytes) all = random_bytes(1024 * 1024 + 5);
	g_autofree gchar *path = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	GError *error = NULL;

	if (skip_without_sftp())
		return;
	guest = connected_guest();
	path = g_build_filename(server.dir, "up", "hostile.bin", NULL);
	/* no linger: the reap tests need it, these would only wait for it */
	g_assert_true(g_file_set_contents(server.sftp_linger, "0", -1, NULL));
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		gint64 total;

		g_test_message("mode %s", cases[i].mode);
		g_assert_true(g_file_set_contents(server.sftp_fake, cases[i].mode, -1, NULL));
		(void)g_unlink(server.sftp_stats);
		total = upload_bytes(guest, path, all, 0, &error);
		if (cases[i].error == NULL) {
			g_assert_no_error(error);
			g_assert_cmpint(total, ==, (gint64)g_bytes_get_size(all));
			assert_same_file(path, all);
			g_assert_cmpuint(fake_stat("max"), ==, cases[i].max_write);
			/* pipelined: more than one WRITE reached the server before an answer */
			g_assert_cmpuint(fake_stat("inflight"), >, 1);
		} else {
			g_assert_nonnull(error);
			g_assert_cmpint(total, ==, -1);
			g_assert_nonnull(strstr(error->message, cases[i].error));
			g_assert_null(strchr(error->message, '\x1b'));
			g_clear_error(&error);
		}
		assert_session_works(guest);
	}
	/* an empty file: one OPEN and CLOSE, no WRITE */
	{
		g_autoptr(GBytes) none = g_bytes_new(NULL, 0);

		g_assert_true(g_file_set_contents(server.sftp_fake, "ok", -1, NULL));
		g_assert_cmpint(upload_bytes(guest, path, none, 0, &error), ==, 0);
		g_assert_no_error(error);
		assert_same_file(path, none);
		g_assert_cmpuint(fake_stat("writes"), ==, 0);
	}
	g_assert_true(g_file_set_contents(server.sftp_fake, "", -1, NULL));
	g_assert_true(g_file_set_contents(server.sftp_linger, "1", -1, NULL));
}

static void
test_sftp_silent_cancel(void)
{
	/* a server that takes the WRITEs and never answers them, nor a CLOSE: the
	 * upload ends when it is cancelled (it would give up by itself after
	 * QSIM_GUEST_STALL_S), without a CLOSE that would wait for ever */
	g_autoptr(GBytes) all = random_bytes(512 * 1024);
	g_autofree gchar *path = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GError) error = NULL;

	if (skip_without_sftp())
		return;
	guest = connected_guest();
	path = g_build_filename(server.dir, "up", "silent.bin", NULL);
	g_assert_true(g_file_set_contents(server.sftp_linger, "0", -1, NULL));
	g_assert_true(g_file_set_contents(server.sftp_fake, "silent", -1, NULL));
	g_assert_cmpint(upload_bytes(guest, path, all, 500, &error), ==, -1);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_assert_true(g_file_set_contents(server.sftp_fake, "", -1, NULL));
	g_assert_true(g_file_set_contents(server.sftp_linger, "1", -1, NULL));
	assert_session_works(guest);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	if (!server_start(&error)) {
		g_printerr("cannot start the test SSH server: %s\n", error->message);
		server_stop();
		return 1;
	}
	g_test_add_func("/qsim/guest/exec/streams", test_exec_streams);
	g_test_add_func("/qsim/guest/exec/signal", test_exec_signal);
	g_test_add_func("/qsim/guest/exec/large", test_exec_large);
	g_test_add_func("/qsim/guest/exec/cancel", test_exec_cancel);
	g_test_add_func("/qsim/guest/exec/cancel-paused", test_exec_cancel_paused);
	g_test_add_func("/qsim/guest/exec/close", test_exec_close);
	g_test_add_func("/qsim/guest/exec/not-connected", test_exec_not_connected);
	g_test_add_func("/qsim/guest/run-simple", test_run_simple);
	g_test_add_func("/qsim/guest/sftp/no-overlap", test_sftp_no_overlap);
	g_test_add_func("/qsim/guest/sftp/reap-stress", test_sftp_reap_stress);
	g_test_add_func("/qsim/guest/sftp/pipelined", test_sftp_pipelined);
	g_test_add_func("/qsim/guest/sftp/hostile", test_sftp_hostile);
	g_test_add_func("/qsim/guest/sftp/silent-cancel", test_sftp_silent_cancel);
	g_test_add_func("/qsim/guest/connect/refused", test_connect_refused);
	g_test_add_func("/qsim/guest/connect/banner-timeout", test_connect_banner_timeout);
	g_test_add_func("/qsim/guest/connect/cancel", test_connect_cancel);
	g_test_add_func("/qsim/guest/connect/auth-failed", test_connect_auth_failed);
	g_test_add_func("/qsim/guest/connect/bad-key-file", test_connect_bad_key_file);
	g_test_add_func("/qsim/guest/connect/password", test_connect_password);
	g_test_add_func("/qsim/guest/connect/wrong-password", test_connect_wrong_password);
	g_test_add_func("/qsim/guest/exec/session-lost", test_exec_session_lost);
	g_test_add_func("/qsim/guest/connect/twice", test_connect_twice);
	rc = g_test_run();
	server_stop();
	return rc;
}
