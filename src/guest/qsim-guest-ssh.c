#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "common/qsim-error.h"
#include "guest/qsim-guest-ssh.h"

#define QSIM_GUEST_BACKOFF_START_MS 50
#define QSIM_GUEST_BACKOFF_CAP_MS 500
/* How often blocking waits look at the abort callback: keeps cancellation well under 1 s. */
#define QSIM_GUEST_SLICE_MS 50
#define QSIM_GUEST_READ_CHUNK 32768
/* Bounds libssh's own blocking calls (channel open, exec request) on a live session. */
#define QSIM_GUEST_SESSION_TIMEOUT_S 10L
/* Key exchange and auth once the guest's banner arrived (never past the deadline). */
#define QSIM_GUEST_HANDSHAKE_TIMEOUT_MS 10000
/* How long a cancelled command's channel may take to close on the guest side. */
#define QSIM_GUEST_CLOSE_WAIT_MS 500

struct _QsimGuestSsh {
	gchar *host;
	guint16 port;
	gchar *user;
	gchar *key_path;
	gchar *password;
	GInetAddress *address;
	ssh_key key;
	ssh_session session;
	gchar *fingerprint;
};

typedef struct {
	gboolean have_status;
	gboolean remote_closed;
	gint status;
	gchar *signal;
} QsimGuestExitState;

/**
 * qsim_guest_ssh_new:
 *
 * Returns: (transfer full): a disconnected session record
 */
QsimGuestSsh *
qsim_guest_ssh_new(const gchar *host, guint16 port, const gchar *user, const gchar *key_path,
                   const gchar *password)
{
	QsimGuestSsh *self = g_new0(QsimGuestSsh, 1);

	self->host = g_strdup(host);
	self->port = port;
	self->user = g_strdup(user);
	self->key_path = g_strdup(key_path);
	self->password = g_strdup(password);
	return self;
}

void
qsim_guest_ssh_disconnect(QsimGuestSsh *self)
{
	if (self->session == NULL)
		return;
	if (ssh_is_connected(self->session))
		ssh_disconnect(self->session);
	g_clear_pointer(&self->session, ssh_free);
	g_clear_pointer(&self->fingerprint, g_free);
	g_debug("disconnected from %s:%u", self->host, self->port);
}

void
qsim_guest_ssh_free(QsimGuestSsh *self)
{
	qsim_guest_ssh_disconnect(self);
	g_clear_pointer(&self->key, ssh_key_free);
	g_clear_object(&self->address);
	if (self->password != NULL)
		memset(self->password, 0, strlen(self->password));
	g_free(self->password);
	g_free(self->host);
	g_free(self->user);
	g_free(self->key_path);
	g_free(self);
}

gboolean
qsim_guest_ssh_is_connected(QsimGuestSsh *self)
{
	return self->session != NULL && ssh_is_connected(self->session);
}

/**
 * qsim_guest_ssh_get_fingerprint:
 *
 * Returns: (transfer none) (nullable): the current session's host key fingerprint
 */
const gchar *
qsim_guest_ssh_get_fingerprint(QsimGuestSsh *self)
{
	return self->fingerprint;
}

ssh_session
qsim_guest_ssh_get_session(QsimGuestSsh *self)
{
	return qsim_guest_ssh_is_connected(self) ? self->session : NULL;
}

static gint64
qsim_guest_ms_until(gint64 end_us)
{
	return (end_us - g_get_monotonic_time()) / G_TIME_SPAN_MILLISECOND;
}

/* Sleeps until @until_us in short slices; returns FALSE with @error when aborted. */
static gboolean
qsim_guest_sleep_until(gint64 until_us, QsimGuestAbortFunc abort_cb, gpointer abort_data,
                       GError **error)
{
	for (;;) {
		gint64 left_ms = qsim_guest_ms_until(until_us);
		if (abort_cb(abort_data, error))
			return FALSE;
		if (left_ms <= 0)
			return TRUE;
		g_usleep(MIN(left_ms, QSIM_GUEST_SLICE_MS) * G_TIME_SPAN_MILLISECOND);
	}
}

/* Waits for the session's socket to become ready in the direction libssh needs. */
static void
qsim_guest_wait_session_fd(ssh_session session, gint timeout_ms)
{
	struct pollfd pfd = {.fd = ssh_get_fd(session), .events = POLLIN};

	if (timeout_ms <= 0)
		return;
	if (pfd.fd < 0) {
		g_usleep((gulong)timeout_ms * G_TIME_SPAN_MILLISECOND);
		return;
	}
	if (ssh_get_poll_flags(session) & SSH_WRITE_PENDING)
		pfd.events |= POLLOUT;
	/* the result does not matter: libssh is asked again either way */
	(void)poll(&pfd, 1, timeout_ms);
}

static gboolean
qsim_guest_ssh_resolve(QsimGuestSsh *self, GError **error)
{
	g_autoptr(GResolver) resolver = NULL;
	g_autolist(GInetAddress) addresses = NULL;

	if (self->address != NULL)
		return TRUE;
	self->address = g_inet_address_new_from_string(self->host);
	if (self->address != NULL)
		return TRUE;
	resolver = g_resolver_get_default();
	addresses = g_resolver_lookup_by_name(resolver, self->host, NULL, error);
	if (addresses == NULL) {
		qsim_error_convert(error);
		g_prefix_error(error, "cannot resolve guest host %s: ", self->host);
		return FALSE;
	}
	self->address = g_object_ref(addresses->data);
	return TRUE;
}

static gboolean
qsim_guest_ssh_load_key(QsimGuestSsh *self, GError **error)
{
	ssh_key key = NULL;

	if (self->key_path == NULL || self->key != NULL)
		return TRUE;
	if (ssh_pki_import_privkey_file(self->key_path, NULL, NULL, NULL, &key) != SSH_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "cannot read SSH private key %s (missing, unreadable, encrypted or "
		            "not a private key)",
		            self->key_path);
		return FALSE;
	}
	self->key = key;
	return TRUE;
}

static gchar *
qsim_guest_describe_tcp_error(const GError *error)
{
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
		return g_strdup("connection refused");
	return g_strdup_printf("connect failed: %s", error->message);
}

/*
 * Opens the TCP connection ourselves rather than letting libssh do it, so that
 * a refused connection and a silent peer are told apart and the wait stays
 * abortable. Returns FALSE with @last_seen for a retryable failure, or with
 * @error to stop.
 */
static gboolean
qsim_guest_ssh_tcp_connect(QsimGuestSsh *self, gint64 attempt_end, QsimGuestAbortFunc abort_cb,
                           gpointer abort_data, gint *fd_out, gchar **last_seen, GError **error)
{
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(self->address, self->port);
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GError) local = NULL;
	gint fd;

	socket = g_socket_new(g_inet_address_get_family(self->address), G_SOCKET_TYPE_STREAM,
	                      G_SOCKET_PROTOCOL_TCP, error);
	if (socket == NULL) {
		qsim_error_convert(error);
		return FALSE;
	}
	g_socket_set_blocking(socket, FALSE);
	if (!g_socket_connect(socket, address, NULL, &local)) {
		if (!g_error_matches(local, G_IO_ERROR, G_IO_ERROR_PENDING)) {
			*last_seen = qsim_guest_describe_tcp_error(local);
			return FALSE;
		}
		g_clear_error(&local);
		for (;;) {
			gint64 left_ms = qsim_guest_ms_until(attempt_end);
			if (left_ms <= 0) {
				*last_seen = g_strdup("connect timeout");
				return FALSE;
			}
			if (g_socket_condition_timed_wait(socket, G_IO_OUT,
			                                  MIN(left_ms, QSIM_GUEST_SLICE_MS) *
			                                      G_TIME_SPAN_MILLISECOND,
			                                  NULL, &local))
				break;
			if (!g_error_matches(local, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
				*last_seen = qsim_guest_describe_tcp_error(local);
				return FALSE;
			}
			g_clear_error(&local);
			if (abort_cb(abort_data, error))
				return FALSE;
		}
		if (!g_socket_check_connect_result(socket, &local)) {
			*last_seen = qsim_guest_describe_tcp_error(local);
			return FALSE;
		}
	}
	/* libssh takes ownership of a duplicate; the GSocket closes its own fd */
	fd = fcntl(g_socket_get_fd(socket), F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot duplicate socket: %s",
		            g_strerror(errno));
		return FALSE;
	}
	*fd_out = fd;
	return TRUE;
}

static gboolean
qsim_guest_ssh_set_options(QsimGuestSsh *self, ssh_session session, GError **error)
{
	unsigned int port = self->port;
	long timeout = QSIM_GUEST_SESSION_TIMEOUT_S;
	bool process_config = false;

	/* never read ~/.ssh/config or /etc/ssh/ssh_config: the VM config is the only input */
	if (ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &process_config) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_HOST, self->host) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_PORT, &port) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_USER, self->user) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout) < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "invalid SSH options: %s",
		            ssh_get_error(session));
		return FALSE;
	}
	/* libssh's own tracing (to stderr), for debugging a guest by hand */
	if (g_getenv("QSIM_LIBSSH_VERBOSITY") != NULL) {
		int verbosity = (int)g_ascii_strtoll(g_getenv("QSIM_LIBSSH_VERBOSITY"), NULL, 10);
		ssh_options_set(session, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
	}
	return TRUE;
}

/* Calls an auth function until it stops saying "again"; returns its last answer. */
static gint
qsim_guest_ssh_auth_step(ssh_session session, gint method, const gchar *password, ssh_key key,
                         gint64 attempt_end, QsimGuestAbortFunc abort_cb, gpointer abort_data,
                         gboolean *timed_out, GError **error)
{
	for (;;) {
		gint rc;
		if (method == SSH_AUTH_METHOD_PUBLICKEY)
			rc = ssh_userauth_publickey(session, NULL, key);
		else if (method == SSH_AUTH_METHOD_PASSWORD)
			rc = ssh_userauth_password(session, NULL, password);
		else
			rc = ssh_userauth_none(session, NULL);
		if (rc != SSH_AUTH_AGAIN)
			return rc;
		if (abort_cb(abort_data, error))
			return SSH_AUTH_ERROR;
		if (qsim_guest_ms_until(attempt_end) <= 0) {
			*timed_out = TRUE;
			return SSH_AUTH_ERROR;
		}
		qsim_guest_wait_session_fd(
		    session, MIN(qsim_guest_ms_until(attempt_end), QSIM_GUEST_SLICE_MS));
	}
}

static gchar *
qsim_guest_describe_methods(ssh_session session)
{
	gint methods = ssh_userauth_list(session, NULL);
	g_autoptr(GString) str = g_string_new(NULL);

	if (methods & SSH_AUTH_METHOD_PUBLICKEY)
		g_string_append(str, "publickey,");
	if (methods & SSH_AUTH_METHOD_PASSWORD)
		g_string_append(str, "password,");
	if (methods & SSH_AUTH_METHOD_INTERACTIVE)
		g_string_append(str, "keyboard-interactive,");
	if (str->len == 0)
		return g_strdup("none known");
	g_string_truncate(str, str->len - 1);
	return g_string_free(g_steal_pointer(&str), FALSE);
}

/* Key first, then password; with neither, the "none" method (blank-password guests). */
static gboolean
qsim_guest_ssh_authenticate(QsimGuestSsh *self, ssh_session session, gint64 attempt_end,
                            QsimGuestAbortFunc abort_cb, gpointer abort_data, gchar **last_seen,
                            GError **error)
{
	gboolean timed_out = FALSE;
	g_autoptr(GString) tried = g_string_new(NULL);
	g_autofree gchar *offered = NULL;
	gint rc = SSH_AUTH_DENIED;
	g_autoptr(GError) local = NULL;

	if (self->key != NULL) {
		rc =
		    qsim_guest_ssh_auth_step(session, SSH_AUTH_METHOD_PUBLICKEY, NULL, self->key,
		                             attempt_end, abort_cb, abort_data, &timed_out, &local);
		g_string_append_printf(tried, "key %s", self->key_path);
	}
	if (rc != SSH_AUTH_SUCCESS && rc != SSH_AUTH_ERROR && self->password != NULL) {
		rc = qsim_guest_ssh_auth_step(session, SSH_AUTH_METHOD_PASSWORD, self->password,
		                              NULL, attempt_end, abort_cb, abort_data, &timed_out,
		                              &local);
		g_string_append_printf(tried, "%spassword", tried->len > 0 ? " and " : "");
	}
	if (self->key == NULL && self->password == NULL) {
		rc =
		    qsim_guest_ssh_auth_step(session, SSH_AUTH_METHOD_NONE, NULL, NULL, attempt_end,
		                             abort_cb, abort_data, &timed_out, &local);
		g_string_append(tried, "no credentials");
	}
	if (rc == SSH_AUTH_SUCCESS)
		return TRUE;
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	if (timed_out) {
		*last_seen = g_strdup("auth timeout");
		return FALSE;
	}
	if (rc == SSH_AUTH_ERROR) {
		*last_seen = g_strdup_printf("auth failed: %s", ssh_get_error(session));
		return FALSE;
	}
	offered = qsim_guest_describe_methods(session);
	*last_seen = g_strdup_printf("auth failed: %s rejected for user %s (server accepts: %s)",
	                             tried->str, self->user, offered);
	return FALSE;
}

static gboolean
qsim_guest_ssh_fingerprint(ssh_session session, gchar **fingerprint, GError **error)
{
	g_auto(ssh_key) server_key = NULL;
	unsigned char *hash = NULL;
	size_t hash_len = 0;
	g_autofree gchar *b64 = NULL;
	gsize len;

	if (ssh_get_server_publickey(session, &server_key) != SSH_OK ||
	    ssh_get_publickey_hash(server_key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "cannot read the guest's host key: %s", ssh_get_error(session));
		return FALSE;
	}
	b64 = g_base64_encode(hash, hash_len);
	ssh_clean_pubkey_hash(&hash);
	/* OpenSSH prints SHA256 fingerprints without base64 padding */
	len = strlen(b64);
	while (len > 0 && b64[len - 1] == '=')
		b64[--len] = '\0';
	*fingerprint = g_strdup_printf("SHA256:%s", b64);
	return TRUE;
}

static gboolean
qsim_guest_ssh_attempt(QsimGuestSsh *self, gint64 banner_end, gint64 deadline_us,
                       QsimGuestAbortFunc abort_cb, gpointer abort_data, gchar **last_seen,
                       GError **error)
{
	/* once the banner is in, the guest is up: give the handshake time, not a restart */
	gint64 attempt_end = banner_end;
	g_auto(ssh_session) session = ssh_new();
	g_autofree gchar *fingerprint = NULL;
	gint fd = -1;
	gint rc;

	if (session == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "cannot allocate an SSH session");
		return FALSE;
	}
	if (!qsim_guest_ssh_set_options(self, session, error))
		return FALSE;
	if (!qsim_guest_ssh_tcp_connect(self, banner_end, abort_cb, abort_data, &fd, last_seen,
	                                error))
		return FALSE;
	if (ssh_options_set(session, SSH_OPTIONS_FD, &fd) < 0) {
		close(fd);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		            "cannot hand socket to libssh: %s", ssh_get_error(session));
		return FALSE;
	}
	/* non-blocking so every wait below is bounded by the attempt and abortable */
	ssh_set_blocking(session, 0);
	rc = ssh_connect(session);
	while (rc == SSH_AGAIN) {
		if (abort_cb(abort_data, error))
			return FALSE;
		if (attempt_end == banner_end && ssh_get_serverbanner(session) != NULL)
			attempt_end = MAX(banner_end, MIN(g_get_monotonic_time() +
			                                      QSIM_GUEST_HANDSHAKE_TIMEOUT_MS *
			                                          G_TIME_SPAN_MILLISECOND,
			                                  deadline_us));
		if (qsim_guest_ms_until(attempt_end) <= 0) {
			*last_seen = g_strdup(ssh_get_serverbanner(session) == NULL
			                          ? "banner timeout"
			                          : "key exchange timeout");
			return FALSE;
		}
		qsim_guest_wait_session_fd(
		    session, MIN(qsim_guest_ms_until(attempt_end), QSIM_GUEST_SLICE_MS));
		rc = ssh_connect(session);
	}
	if (rc != SSH_OK) {
		if (ssh_get_serverbanner(session) == NULL)
			*last_seen = g_strdup_printf("connection closed before the SSH banner (%s)",
			                             ssh_get_error(session));
		else
			*last_seen =
			    g_strdup_printf("SSH handshake failed: %s", ssh_get_error(session));
		return FALSE;
	}
	if (attempt_end == banner_end)
		attempt_end =
		    MAX(banner_end, MIN(g_get_monotonic_time() + QSIM_GUEST_HANDSHAKE_TIMEOUT_MS *
		                                                     G_TIME_SPAN_MILLISECOND,
		                        deadline_us));
	if (!qsim_guest_ssh_authenticate(self, session, attempt_end, abort_cb, abort_data,
	                                 last_seen, error))
		return FALSE;
	if (!qsim_guest_ssh_fingerprint(session, &fingerprint, error))
		return FALSE;
	ssh_set_blocking(session, 1);
	self->session = g_steal_pointer(&session);
	self->fingerprint = g_steal_pointer(&fingerprint);
	return TRUE;
}

/*
 * How far an attempt got, from the messages this file writes: TCP < banner <
 * kex < auth timeout < auth failed (a rejection is the most telling answer).
 */
static gint
qsim_guest_seen_stage(const gchar *seen)
{
	if (g_str_has_prefix(seen, "auth failed"))
		return 4;
	if (g_str_has_prefix(seen, "auth"))
		return 3;
	if (g_str_has_prefix(seen, "SSH handshake") || g_str_has_prefix(seen, "key exchange"))
		return 2;
	if (strstr(seen, "banner") != NULL)
		return 1;
	return 0;
}

/**
 * qsim_guest_ssh_connect:
 * @fingerprint: (out) (transfer full): the host key fingerprint on success
 */
gboolean
qsim_guest_ssh_connect(QsimGuestSsh *self, gint64 deadline_us, guint attempt_timeout_ms,
                       QsimGuestAbortFunc abort_cb, gpointer abort_data, gchar **fingerprint,
                       GError **error)
{
	gint64 started = g_get_monotonic_time();
	guint delay_ms = QSIM_GUEST_BACKOFF_START_MS;
	guint attempts = 0;
	g_autofree gchar *furthest = NULL;

	if (qsim_guest_ssh_is_connected(self)) {
		*fingerprint = g_strdup(self->fingerprint);
		return TRUE;
	}
	/* a session that died under us is dropped and replaced */
	qsim_guest_ssh_disconnect(self);
	if (!qsim_guest_ssh_resolve(self, error) || !qsim_guest_ssh_load_key(self, error))
		return FALSE;
	for (;;) {
		g_autofree gchar *last_seen = NULL;
		g_autoptr(GError) local = NULL;
		gint64 now = g_get_monotonic_time();
		/* the first attempt gets a minimum slice even when the deadline is near */
		gint64 attempt_end =
		    MIN(now + (gint64)attempt_timeout_ms * G_TIME_SPAN_MILLISECOND,
		        MAX(deadline_us, attempts == 0 ? now + 100 * G_TIME_SPAN_MILLISECOND : 0));

		attempts++;
		if (qsim_guest_ssh_attempt(self, attempt_end, deadline_us, abort_cb, abort_data,
		                           &last_seen, &local)) {
			g_debug("connected to %s:%u as %s after %u attempts in %" G_GINT64_FORMAT
			        " ms, host key %s",
			        self->host, self->port, self->user, attempts,
			        (g_get_monotonic_time() - started) / G_TIME_SPAN_MILLISECOND,
			        self->fingerprint);
			*fingerprint = g_strdup(self->fingerprint);
			return TRUE;
		}
		if (local != NULL) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_debug("attempt %u to %s:%u: %s", attempts, self->host, self->port, last_seen);
		if (furthest == NULL ||
		    qsim_guest_seen_stage(last_seen) >= qsim_guest_seen_stage(furthest)) {
			g_free(furthest);
			furthest = g_strdup(last_seen);
		}
		if (g_get_monotonic_time() + delay_ms * G_TIME_SPAN_MILLISECOND >= deadline_us) {
			/* the final attempt may have been cut short by the deadline: an
			 * earlier one that got further says more (e.g. "auth failed") */
			g_set_error(
			    error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
			    "guest SSH at %s:%u not ready after %u attempts in %" G_GINT64_FORMAT
			    " ms; last seen: %s%s%s",
			    self->host, self->port, attempts,
			    (g_get_monotonic_time() - started) / G_TIME_SPAN_MILLISECOND, furthest,
			    g_strcmp0(furthest, last_seen) != 0 ? "; final attempt: " : "",
			    g_strcmp0(furthest, last_seen) != 0 ? last_seen : "");
			return FALSE;
		}
		if (!qsim_guest_sleep_until(g_get_monotonic_time() +
		                                delay_ms * G_TIME_SPAN_MILLISECOND,
		                            abort_cb, abort_data, error))
			return FALSE;
		delay_ms = MIN(delay_ms * 2, QSIM_GUEST_BACKOFF_CAP_MS);
	}
}

static void
qsim_guest_on_exit_status(ssh_session session, ssh_channel channel, int exit_status, void *userdata)
{
	QsimGuestExitState *state = userdata;

	state->have_status = TRUE;
	state->status = exit_status;
}

static void
qsim_guest_on_close(ssh_session session, ssh_channel channel, void *userdata)
{
	QsimGuestExitState *state = userdata;

	state->remote_closed = TRUE;
}

static void
qsim_guest_on_exit_signal(ssh_session session, ssh_channel channel, const char *signal, int core,
                          const char *errmsg, const char *lang, void *userdata)
{
	QsimGuestExitState *state = userdata;
	const gchar *name = signal != NULL && signal[0] != '\0' ? signal : "UNKNOWN";

	/* RFC 4254 names have no "SIG" prefix, but be lenient with servers that add it */
	if (g_str_has_prefix(name, "SIG"))
		name += 3;
	g_free(state->signal);
	state->signal = g_utf8_make_valid(name, -1);
}

/* Why an exec loop stopped early. */
typedef enum {
	QSIM_GUEST_EXEC_STOP_ABORT, /* cancelled, closed or timed out: close the channel */
	QSIM_GUEST_EXEC_STOP_LOST,  /* the session broke: drop it */
} QsimGuestExecStop;

static gboolean
qsim_guest_ssh_check_stop(gint64 deadline_us, gint64 started, QsimGuestAbortFunc abort_cb,
                          gpointer abort_data, GError **error)
{
	if (abort_cb(abort_data, error))
		return TRUE;
	if (deadline_us > 0 && g_get_monotonic_time() >= deadline_us) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
		            "guest command timed out after %" G_GINT64_FORMAT " ms",
		            (g_get_monotonic_time() - started) / G_TIME_SPAN_MILLISECOND);
		return TRUE;
	}
	return FALSE;
}

static gboolean
qsim_guest_ssh_lost(ssh_session session, const gchar *what, QsimGuestExecStop *stop, GError **error)
{
	*stop = QSIM_GUEST_EXEC_STOP_LOST;
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost while %s: %s", what,
	            ssh_get_error(session));
	return FALSE;
}

/*
 * Moves output from the channel into the sink, never reading more than the
 * sink has room for, so a slow consumer stalls the guest through the SSH
 * window instead of growing buffers here.
 */
static gboolean
qsim_guest_ssh_pump(ssh_session session, ssh_channel channel, ssh_event event,
                    const QsimGuestSink *sink, gint64 deadline_us, QsimGuestAbortFunc abort_cb,
                    gpointer abort_data, const QsimGuestExitState *state, QsimGuestExecStop *stop,
                    GError **error)
{
	gint64 started = g_get_monotonic_time();
	gchar buf[QSIM_GUEST_READ_CHUNK];

	*stop = QSIM_GUEST_EXEC_STOP_ABORT;
	for (;;) {
		gboolean got = FALSE;
		gsize room;

		if (qsim_guest_ssh_check_stop(deadline_us, started, abort_cb, abort_data, error))
			return FALSE;
		room = sink->wait_room(sink->data, 0);
		if (room == 0) {
			sink->wait_room(sink->data, 100);
			continue;
		}
		for (gint is_stderr = 0; is_stderr <= 1 && room > 0; is_stderr++) {
			gint n = ssh_channel_read_nonblocking(
			    channel, buf, (uint32_t)MIN(room, sizeof(buf)), is_stderr);
			if (n == SSH_ERROR)
				return qsim_guest_ssh_lost(session, "reading output", stop, error);
			if (n > 0) {
				g_autoptr(GBytes) chunk = g_bytes_new(buf, (gsize)n);
				sink->push(sink->data,
				           is_stderr ? QSIM_GUEST_STREAM_STDERR
				                     : QSIM_GUEST_STREAM_STDOUT,
				           chunk);
				room -= (gsize)n;
				got = TRUE;
			}
		}
		if (got)
			continue;
		if (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel))
			break;
		if (ssh_event_dopoll(event, 100) == SSH_ERROR && !ssh_is_connected(session))
			return qsim_guest_ssh_lost(session, "waiting for output", stop, error);
	}
	/* the status usually comes with the EOF, but may follow it */
	/* remote_closed too: with output still buffered at the close, libssh keeps
	 * the channel "open" (delayed close) */
	while (!state->have_status && state->signal == NULL && !state->remote_closed &&
	       !ssh_channel_is_closed(channel)) {
		if (qsim_guest_ssh_check_stop(deadline_us, started, abort_cb, abort_data, error))
			return FALSE;
		if (ssh_event_dopoll(event, 100) == SSH_ERROR && !ssh_is_connected(session))
			return qsim_guest_ssh_lost(session, "waiting for the exit status", stop,
			                           error);
	}
	if (!state->have_status && state->signal == NULL) {
		*stop = QSIM_GUEST_EXEC_STOP_ABORT;
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest closed the channel without an exit status");
		return FALSE;
	}
	return TRUE;
}

/*
 * After an aborted command: asks the guest to stop it, closes our side and
 * waits briefly for the guest's close. Waiting matters with dropbear 2022.83:
 * a channel opened while it is still reaping the old command can be closed by
 * it at once, which would break the next exec on this session.
 */
static void
qsim_guest_ssh_close_aborted(ssh_session session, ssh_channel channel, ssh_event event,
                             const QsimGuestExitState *state)
{
	gint64 end = g_get_monotonic_time() + QSIM_GUEST_CLOSE_WAIT_MS * G_TIME_SPAN_MILLISECOND;

	if (!ssh_is_connected(session) || !ssh_channel_is_open(channel))
		return;
	/* OpenSSH and dropbear both deliver the signal to the command */
	ssh_channel_request_send_signal(channel, "TERM");
	ssh_channel_close(channel);
	while (!state->remote_closed && ssh_is_connected(session) && g_get_monotonic_time() < end) {
		if (ssh_event_dopoll(event, QSIM_GUEST_SLICE_MS) == SSH_ERROR)
			break;
	}
}

/* dropbear 2022.83 may refuse or at once close a channel opened while it still
 * reaps the previous one (an SFTP session just closed, a command just ended):
 * seen as "cannot open an SSH channel" right after an SFTP upload. A refused open
 * changes nothing in the guest, so it is safe to ask again a moment later. */
#define QSIM_GUEST_CHANNEL_OPEN_TRIES 4
#define QSIM_GUEST_CHANNEL_OPEN_PAUSE_MS 100

ssh_channel
qsim_guest_ssh_open_channel(ssh_session session)
{
	for (guint i = 0; i < QSIM_GUEST_CHANNEL_OPEN_TRIES; i++) {
		ssh_channel channel;

		if (i > 0)
			g_usleep(QSIM_GUEST_CHANNEL_OPEN_PAUSE_MS * 1000);
		channel = ssh_channel_new(session);
		if (channel == NULL)
			return NULL;
		if (ssh_channel_open_session(channel) == SSH_OK)
			return channel;
		ssh_channel_free(channel);
		if (!ssh_is_connected(session))
			return NULL;
	}
	return NULL;
}

static void
qsim_guest_on_end_close(ssh_session session, ssh_channel channel, void *userdata)
{
	gboolean *closed = userdata;

	*closed = TRUE;
}

/* Reads and drops what the channel holds: unread output keeps libssh from
 * marking a closed channel closed (delayed close). */
static gboolean
qsim_guest_ssh_drop_output(ssh_channel channel)
{
	gchar buf[4096];

	for (gint is_stderr = 0; is_stderr <= 1; is_stderr++) {
		gint n;

		while ((n = ssh_channel_read_nonblocking(channel, buf, sizeof buf, is_stderr)) > 0)
			;
		if (n == SSH_ERROR)
			return FALSE;
	}
	return TRUE;
}

/* Polls until the guest closed @channel (*@closed or libssh says so), dropping its output. */
static gboolean
qsim_guest_ssh_wait_closed(ssh_session session, ssh_event event, ssh_channel channel,
                           const gboolean *closed, QsimGuestAbortFunc abort_cb, gpointer abort_data,
                           GError **error)
{
	gint64 end =
	    g_get_monotonic_time() + QSIM_GUEST_CHANNEL_END_WAIT_MS * G_TIME_SPAN_MILLISECOND;

	for (;;) {
		if (!qsim_guest_ssh_drop_output(channel) || !ssh_is_connected(session)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
			            ssh_get_error(session));
			return FALSE;
		}
		if (*closed || ssh_channel_is_closed(channel))
			return TRUE;
		if (abort_cb != NULL && abort_cb(abort_data, error))
			return FALSE;
		if (g_get_monotonic_time() >= end) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
			            "the guest did not close a finished channel within %d ms",
			            QSIM_GUEST_CHANNEL_END_WAIT_MS);
			return FALSE;
		}
		(void)ssh_event_dopoll(event, QSIM_GUEST_SLICE_MS);
	}
}

gboolean
qsim_guest_ssh_end_channel(ssh_session session, ssh_channel channel, QsimGuestAbortFunc abort_cb,
                           gpointer abort_data, GError **error)
{
	g_auto(ssh_event) event = NULL;
	gboolean closed = FALSE;
	struct ssh_channel_callbacks_struct callbacks = {
	    .userdata = &closed,
	    .channel_close_function = qsim_guest_on_end_close,
	};
	gboolean ok = FALSE;

	if (!ssh_is_connected(session)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
		            ssh_get_error(session));
		return FALSE;
	}
	/* closed by the guest already (its command ended before we were done) */
	if (ssh_channel_is_closed(channel))
		return TRUE;
	event = ssh_event_new();
	if (event == NULL || ssh_event_add_session(event, session) != SSH_OK) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "cannot set up SSH event polling");
		return FALSE;
	}
	ssh_callbacks_init(&callbacks);
	ssh_set_channel_callbacks(channel, &callbacks);
	if (ssh_channel_send_eof(channel) != SSH_OK && !ssh_is_connected(session))
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
		            ssh_get_error(session));
	else
		ok = qsim_guest_ssh_wait_closed(session, event, channel, &closed, abort_cb,
		                                abort_data, error);
	ssh_remove_channel_callbacks(channel, &callbacks);
	ssh_event_remove_session(event, session);
	return ok;
}

/* After the exit status: the close usually came with it, but wait for it (see
 * QSIM_GUEST_CHANNEL_END_WAIT_MS) so the next channel never overlaps this one. */
static void
qsim_guest_ssh_await_close(ssh_session session, ssh_event event, const QsimGuestExitState *state,
                           QsimGuestAbortFunc abort_cb, gpointer abort_data)
{
	gint64 end =
	    g_get_monotonic_time() + QSIM_GUEST_CHANNEL_END_WAIT_MS * G_TIME_SPAN_MILLISECOND;
	g_autoptr(GError) ignored = NULL;

	while (!state->remote_closed && ssh_is_connected(session) && g_get_monotonic_time() < end &&
	       !abort_cb(abort_data, &ignored)) {
		if (ssh_event_dopoll(event, QSIM_GUEST_SLICE_MS) == SSH_ERROR)
			break;
	}
	if (!state->remote_closed)
		g_debug("the guest did not close a finished exec channel");
}

/**
 * qsim_guest_ssh_exec:
 * @exit_signal: (out) (transfer full) (nullable): the signal name, or %NULL
 */
gboolean
qsim_guest_ssh_exec(QsimGuestSsh *self, const gchar *command, const QsimGuestSink *sink,
                    gint64 deadline_us, QsimGuestAbortFunc abort_cb, gpointer abort_data,
                    gint *exit_status, gchar **exit_signal, GError **error)
{
	g_auto(ssh_channel) channel = NULL;
	g_auto(ssh_event) event = NULL;
	QsimGuestExitState state = {0};
	struct ssh_channel_callbacks_struct callbacks = {
	    .userdata = &state,
	    .channel_close_function = qsim_guest_on_close,
	    .channel_exit_status_function = qsim_guest_on_exit_status,
	    .channel_exit_signal_function = qsim_guest_on_exit_signal,
	};
	QsimGuestExecStop stop = QSIM_GUEST_EXEC_STOP_ABORT;
	gboolean ok = FALSE;

	if (!qsim_guest_ssh_is_connected(self)) {
		qsim_guest_ssh_disconnect(self);
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session is not connected");
		return FALSE;
	}
	event = ssh_event_new();
	if (event == NULL || ssh_event_add_session(event, self->session) != SSH_OK) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "cannot set up SSH event polling");
		return FALSE;
	}
	channel = qsim_guest_ssh_open_channel(self->session);
	if (channel == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "cannot open an SSH channel: %s",
		            ssh_get_error(self->session));
		stop = ssh_is_connected(self->session) ? QSIM_GUEST_EXEC_STOP_ABORT
		                                       : QSIM_GUEST_EXEC_STOP_LOST;
	} else {
		ssh_callbacks_init(&callbacks);
		ssh_set_channel_callbacks(channel, &callbacks);
		if (ssh_channel_request_exec(channel, command) != SSH_OK) {
			stop = ssh_is_connected(self->session) ? QSIM_GUEST_EXEC_STOP_ABORT
			                                       : QSIM_GUEST_EXEC_STOP_LOST;
			/* a session that dropped here is no refusal: say which it was */
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "%s: %s",
			            stop == QSIM_GUEST_EXEC_STOP_LOST
			                ? "guest session lost while starting the command"
			                : "guest refused to run the command",
			            ssh_get_error(self->session));
		} else {
			ok = qsim_guest_ssh_pump(self->session, channel, event, sink, deadline_us,
			                         abort_cb, abort_data, &state, &stop, error);
			if (ok)
				qsim_guest_ssh_await_close(self->session, event, &state, abort_cb,
				                           abort_data);
		}
		if (!ok && stop == QSIM_GUEST_EXEC_STOP_ABORT)
			qsim_guest_ssh_close_aborted(self->session, channel, event, &state);
		/* libssh may keep the channel until the peer closes it: never leave our
		 * stack-allocated callbacks behind */
		ssh_remove_channel_callbacks(channel, &callbacks);
	}
	ssh_event_remove_session(event, self->session);
	/* the channel belongs to the session: free it before any disconnect */
	g_clear_pointer(&channel, ssh_channel_free);
	if (!ok) {
		g_free(state.signal);
		if (stop == QSIM_GUEST_EXEC_STOP_LOST || !ssh_is_connected(self->session))
			qsim_guest_ssh_disconnect(self);
		return FALSE;
	}
	if (state.signal != NULL) {
		*exit_status = -1;
		*exit_signal = state.signal;
	} else {
		*exit_status = state.status;
		*exit_signal = NULL;
	}
	return TRUE;
}
