#pragma once

#include <gio/gio.h>
#include <libssh/libssh.h>

#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/*
 * QsimGuestSsh: the libssh side of a guest session, private to src/guest/.
 * Every function here blocks and must only be called from the one worker
 * thread that owns the record (created, used and freed on that thread).
 */
typedef struct _QsimGuestSsh QsimGuestSsh;

/*
 * libssh's handle types are pointer typedefs, so g_autoptr() would declare a
 * pointer to a pointer: use g_auto(ssh_session) etc. instead.
 */
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(ssh_session, ssh_free, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(ssh_channel, ssh_channel_free, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(ssh_key, ssh_key_free, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(ssh_event, ssh_event_free, NULL)

/*
 * Polled about every 50-100 ms during blocking work; returns TRUE and sets
 * @error (CANCELLED, or GUEST for a closed session) to stop it.
 */
typedef gboolean (*QsimGuestAbortFunc)(gpointer data, GError **error);

/* Where exec output goes. */
typedef struct {
	/* bytes that may be pushed now, waiting at most @timeout_ms for room */
	gsize (*wait_room)(gpointer data, guint timeout_ms);
	void (*push)(gpointer data, QsimGuestStream stream, GBytes *chunk);
	gpointer data;
} QsimGuestSink;

/* Returns (transfer full): a disconnected session record; arguments are copied. */
QsimGuestSsh *qsim_guest_ssh_new(const gchar *host, guint16 port, const gchar *user,
                                 const gchar *key_path, const gchar *password);

void qsim_guest_ssh_free(QsimGuestSsh *self);

/*
 * Connects and authenticates with backoff until @deadline_us (monotonic).
 * Each attempt is bounded by @attempt_timeout_ms. On success, returns TRUE
 * and the host key fingerprint in @fingerprint (transfer full).
 */
gboolean qsim_guest_ssh_connect(QsimGuestSsh *self, gint64 deadline_us, guint attempt_timeout_ms,
                                QsimGuestAbortFunc abort_cb, gpointer abort_data,
                                gchar **fingerprint, GError **error);

gboolean qsim_guest_ssh_is_connected(QsimGuestSsh *self);

/* Returns (transfer none) (nullable): the fingerprint of the current session. */
const gchar *qsim_guest_ssh_get_fingerprint(QsimGuestSsh *self);

/* Returns (transfer none) (nullable): the live session, for SFTP on the same thread */
ssh_session qsim_guest_ssh_get_session(QsimGuestSsh *self);

/*
 * Runs @command on a new exec channel, streaming output into @sink until the
 * command ends. @deadline_us (0 for none) bounds the whole command.
 * @exit_signal (transfer full) is NULL unless the command died of a signal.
 * A lost session is disconnected; a cancelled command leaves it usable.
 */
gboolean qsim_guest_ssh_exec(QsimGuestSsh *self, const gchar *command, const QsimGuestSink *sink,
                             gint64 deadline_us, QsimGuestAbortFunc abort_cb, gpointer abort_data,
                             gint *exit_status, gchar **exit_signal, GError **error);

/* Sends a disconnect message and frees the session; a no-op when disconnected. */
void qsim_guest_ssh_disconnect(QsimGuestSsh *self);

/*
 * A new session channel, opened; NULL when the guest refused it (the session's
 * error says why). Retried a few times while the session stays connected.
 */
ssh_channel qsim_guest_ssh_open_channel(ssh_session session);

/*
 * A transfer whose guest side shows no sign of life (takes no data, sends none)
 * for this long is given up: the request's commands may have replaced the
 * guest's tools, or its SFTP server, with ones that sleep.
 */
#define QSIM_GUEST_STALL_S 20

/*
 * How long a channel we are done with may take to be closed by the guest.
 * dropbear 2022.83 (the tiny guest's) can drop the whole session when it reaps
 * the command of one channel while it starts the command of the next: a
 * channel is therefore only let go once the guest closed it (its command was
 * reaped), so that channels never overlap. Generous for a loaded TCG guest;
 * a guest that keeps a channel open past it only gets the old overlap.
 */
#define QSIM_GUEST_CHANNEL_END_WAIT_MS 5000

/*
 * Sends EOF on @channel (the guest's command sees the end of its stdin) and
 * waits until the guest closes the channel, its output dropped. Returns FALSE
 * when aborted (with @error), the session broke, or the wait passed
 * %QSIM_GUEST_CHANNEL_END_WAIT_MS; the channel is neither closed nor freed.
 */
gboolean qsim_guest_ssh_end_channel(ssh_session session, ssh_channel channel,
                                    QsimGuestAbortFunc abort_cb, gpointer abort_data,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimGuestSsh, qsim_guest_ssh_free)

G_END_DECLS
