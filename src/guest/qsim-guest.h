#pragma once

#include <gio/gio.h>

#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/* Bytes of output queued to the main context before the worker stops reading. */
#define QSIM_GUEST_DEFAULT_FLOW_BUDGET (1024 * 1024)
/*
 * Per-attempt bound on TCP connect + SSH banner while waiting for readiness.
 * Short on purpose: QEMU user networking accepts TCP before the guest can
 * answer, and a fresh attempt reaches a guest that just came up sooner than
 * the retransmissions of a stale one (tiny guest, loaded 2-core host:
 * start-to-ready 3.2 s with 600 ms vs 3.9-4.5 s with 1500 ms; noisy).
 */
#define QSIM_GUEST_DEFAULT_ATTEMPT_TIMEOUT_MS 800

#define QSIM_TYPE_GUEST (qsim_guest_get_type())
G_DECLARE_FINAL_TYPE(QsimGuest, qsim_guest, QSIM, GUEST, GObject)

/*
 * Threading: each QsimGuest owns one worker thread, started by
 * qsim_guest_new(), and the ssh_session lives only on that thread. Operations
 * (connect, exec, run_simple) are queued and run one at a time in call
 * order; their callbacks and output chunks are delivered on the thread-default
 * main context captured by qsim_guest_new(). The object may be unreffed at
 * any time: pending operations keep it alive until they complete, and the
 * last unref joins the idle worker after it sent the SSH disconnect.
 */

/**
 * qsim_guest_new:
 * @host: host name or IP literal of the guest's SSH endpoint (e.g. "127.0.0.1")
 * @port: TCP port, not 0
 * @user: login name
 * @key_path: (nullable): private key file (OpenSSH or PEM), tried first
 * @password: (nullable): password, tried after the key
 *
 * Creates a guest session object. Nothing is connected yet. Captures the
 * calling thread's default main context for all callbacks.
 *
 * Returns: (transfer full): a new #QsimGuest
 */
QsimGuest *qsim_guest_new(const gchar *host, guint16 port, const gchar *user, const gchar *key_path,
                          const gchar *password);

/**
 * qsim_guest_set_attempt_timeout:
 * @timeout_ms: per connection attempt timeout, at least 100 ms
 *
 * Bounds each readiness attempt's TCP connect and wait for the SSH banner.
 * Once the banner arrived the guest is up, and key exchange plus auth get up
 * to 10 s more (never past the connect deadline). Default
 * %QSIM_GUEST_DEFAULT_ATTEMPT_TIMEOUT_MS. Takes effect for the next connect.
 */
void qsim_guest_set_attempt_timeout(QsimGuest *self, guint timeout_ms);

/**
 * qsim_guest_set_flow_budget:
 * @bytes: maximum output bytes queued to the main context, at least 4096
 *
 * The worker never has more than @bytes of undelivered output in flight; when
 * the budget is used up it stops reading the channel (so the guest blocks on
 * the SSH window) until output_cb calls return. Default
 * %QSIM_GUEST_DEFAULT_FLOW_BUDGET.
 */
void qsim_guest_set_flow_budget(QsimGuest *self, gsize bytes);

/**
 * qsim_guest_set_flow_paused:
 * @paused: %TRUE to stop delivering output
 *
 * Backpressure for slow consumers (e.g. a log writer that is behind): while
 * paused, no output_cb is invoked and chunks already read stay queued (up to
 * the budget), after which the worker stops reading and the guest's writes
 * block. Unpausing resumes delivery from the main context. Cancellation and
 * qsim_guest_close() still work while paused; queued output is then
 * discarded. Must be called on the main context.
 */
void qsim_guest_set_flow_paused(QsimGuest *self, gboolean paused);

/**
 * qsim_guest_get_flow_paused:
 *
 * Returns: whether output delivery is paused
 */
gboolean qsim_guest_get_flow_paused(QsimGuest *self);

/**
 * qsim_guest_connect_async:
 * @deadline_us: absolute g_get_monotonic_time() value after which to give up
 * @cancellable: (nullable): cancels between attempts and within about
 *   100 ms during an attempt
 *
 * Connects and authenticates, retrying with backoff (50 ms doubling to
 * 500 ms) until success or @deadline_us. The host key is accepted without
 * verification (throwaway VMs); see qsim_guest_get_host_key_fingerprint().
 * Connecting an already connected guest succeeds at once.
 */
void qsim_guest_connect_async(QsimGuest *self, gint64 deadline_us, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);

/**
 * qsim_guest_connect_finish:
 *
 * Errors: %QSIM_ERROR_TIMED_OUT when the deadline passed, its message naming
 * what was last seen ("connection refused", "banner timeout", "auth failed:
 * ..."); %QSIM_ERROR_CANCELLED; %QSIM_ERROR_GUEST when the guest was closed;
 * %QSIM_ERROR_INVALID for an unreadable key file.
 *
 * Returns: %TRUE once connected and authenticated
 */
gboolean qsim_guest_connect_finish(QsimGuest *self, GAsyncResult *res, GError **error);

/**
 * qsim_guest_get_host_key_fingerprint:
 *
 * Returns: (transfer none) (nullable): the server's host key fingerprint as
 * "SHA256:<base64 without padding>" (as `ssh-keygen -l` prints it), set by a
 * successful qsim_guest_connect_finish() and cleared by qsim_guest_close();
 * valid until either is called again
 */
const gchar *qsim_guest_get_host_key_fingerprint(QsimGuest *self);

/**
 * qsim_guest_is_connected:
 *
 * Returns: %TRUE between a successful connect and qsim_guest_close() or a
 * session failure seen by an exec
 */
gboolean qsim_guest_is_connected(QsimGuest *self);

/**
 * qsim_guest_exec_async:
 * @command: command string, run by the guest's sshd through the user's login
 *   shell (like `ssh host command`); must be valid UTF-8 without NUL
 * @output_cb: (nullable): receives stdout and stderr chunks as they arrive;
 *   with %NULL the output is read and discarded
 * @output_data: data for @output_cb, must stay valid until @callback runs
 * @cancellable: (nullable): closes the channel within about a second
 *
 * Runs @command on one exec channel of the connected session. Every output
 * chunk is delivered before @callback runs.
 */
void qsim_guest_exec_async(QsimGuest *self, const gchar *command, QsimGuestOutputFunc output_cb,
                           gpointer output_data, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data);

/**
 * qsim_guest_exec_finish:
 * @exit_status: (out) (optional): the command's exit status, or -1 when it
 *   was killed by a signal
 * @exit_signal: (out) (optional) (transfer full) (nullable): the signal name
 *   without "SIG" (e.g. "TERM") when killed by a signal, else %NULL
 *
 * Errors: %QSIM_ERROR_CANCELLED (the channel was closed, the session stays
 * usable); %QSIM_ERROR_GUEST for a lost or closed session, or a guest that
 * closed the channel without an exit status.
 *
 * Returns: %TRUE when the command ran to an exit status or signal
 */
gboolean qsim_guest_exec_finish(QsimGuest *self, GAsyncResult *res, gint *exit_status,
                                gchar **exit_signal, GError **error);

/**
 * qsim_guest_run_simple_async:
 * @command: as for qsim_guest_exec_async()
 * @timeout_ms: bound on the whole command, 0 for none
 *
 * Runs a short system command (e.g. setting the clock) and collects its
 * output, at most 64 KiB per stream (more is discarded).
 */
void qsim_guest_run_simple_async(QsimGuest *self, const gchar *command, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);

/**
 * qsim_guest_run_simple_finish:
 * @stdout_text: (out) (optional) (transfer full): stdout, NUL-terminated
 * @stderr_text: (out) (optional) (transfer full): stderr, NUL-terminated
 *
 * Errors: as qsim_guest_exec_finish(), plus %QSIM_ERROR_TIMED_OUT; a
 * non-zero exit or a signal is %QSIM_ERROR_GUEST naming the status and
 * stderr.
 *
 * Returns: %TRUE when the command exited with status 0
 */
gboolean qsim_guest_run_simple_finish(QsimGuest *self, GAsyncResult *res, gchar **stdout_text,
                                      gchar **stderr_text, GError **error);

/**
 * qsim_guest_collect_async:
 * @patterns: absolute guest paths or globs (qsim_guest_path_validate()); a
 *   directory is collected whole
 * @limits: file count and byte caps
 * @sink: where the bytes go, called on the worker thread; must stay valid
 *   until @callback runs
 *
 * Fetches guest files over SFTP (libssh's, on the worker thread), streamed in
 * bounded chunks with reads pipelined. Symlinks are recorded, never followed;
 * a file growing meanwhile is cut at the size first seen. A guest without an
 * SFTP subsystem is read over exec instead (a fixed sh script lists, `head -c`
 * reads), which adds a note saying so.
 */
void qsim_guest_collect_async(QsimGuest *self, const gchar *const *patterns,
                              const QsimGuestCollectLimits *limits,
                              const QsimGuestCollectSink *sink, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);

/**
 * qsim_guest_collect_finish:
 * @notes: (out) (optional) (transfer container) (element-type utf8): what was
 *   missing, refused or over a limit, one line each
 *
 * Errors: %QSIM_ERROR_GUEST (a lost or closed session), %QSIM_ERROR_CANCELLED.
 *
 * Returns: (transfer container) (element-type QsimGuestArtifact): what was
 *   collected, in collection order
 */
GPtrArray *qsim_guest_collect_finish(QsimGuest *self, GAsyncResult *res, GPtrArray **notes,
                                     GError **error);

/**
 * qsim_guest_upload_async:
 * @puts: (array length=n_puts): the files, borrowed until @callback runs; their
 *   read functions are called on the worker thread
 *
 * Writes files into the guest over SFTP, streamed from their read functions in
 * pieces of at most 32 KiB, with their modes; parent directories are created.
 * A guest without an SFTP subsystem gets them over exec (`cat > 'path'` then
 * `chmod`); there a put with @unpack feeds the guest's `tar` instead.
 */
void qsim_guest_upload_async(QsimGuest *self, const QsimGuestPut *puts, guint n_puts,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);

/**
 * qsim_guest_upload_finish:
 *
 * @via_exec: (out) (optional): TRUE when the exec fallback was taken, so the
 *   puts with @unpack are already unpacked
 *
 * Errors: %QSIM_ERROR_GUEST (the guest refused, a lost session), a read
 * function's own error, %QSIM_ERROR_CANCELLED.
 *
 * Returns: the bytes written, or -1 with @error
 */
gint64 qsim_guest_upload_finish(QsimGuest *self, GAsyncResult *res, gboolean *via_exec,
                                GError **error);

/**
 * qsim_guest_close:
 *
 * Disconnects in the worker. Safe at any time: a running exec and queued
 * operations fail with %QSIM_ERROR_GUEST ("guest session closed"). Later
 * connects open a fresh session. Does not block.
 */
void qsim_guest_close(QsimGuest *self);

/**
 * qsim_guest_get_max_bytes_in_flight:
 *
 * For tests: the highest number of output bytes queued to the main context
 * at any moment since creation; never above the flow budget.
 *
 * Returns: a byte count
 */
gsize qsim_guest_get_max_bytes_in_flight(QsimGuest *self);

G_END_DECLS
