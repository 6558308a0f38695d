#pragma once

#include <libssh/sftp.h>

#include "guest/qsim-guest-ssh.h"
#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/* WRITE requests in flight at once: what OpenSSH's sftp keeps (its -R default) */
#define QSIM_GUEST_SFTP_WRITE_WINDOW 64
/* Data per WRITE when the server states no limit: what every server takes */
#define QSIM_GUEST_SFTP_WRITE_PIECE_DEFAULT (32 * 1024)
/* Data per WRITE at most: OpenSSH's sftp-server takes 255 KiB (its 256 KiB message
 * limit less room for the header), and says so in its limits@openssh.com reply */
#define QSIM_GUEST_SFTP_WRITE_PIECE_MAX (255 * 1024)
/* Data per WRITE at least, whatever a server states: one byte per WRITE would
 * only be a guest slowing its own upload to a crawl */
#define QSIM_GUEST_SFTP_WRITE_PIECE_MIN 1024

/*
 * The data one WRITE carries on @sftp: what the server's limits@openssh.com reply
 * allows (asked once per session), else QSIM_GUEST_SFTP_WRITE_PIECE_DEFAULT,
 * within the bounds above. Returns 0 with @error when aborted, the session is
 * lost, or the server answered with something that is not a reply to the question.
 */
guint32 qsim_guest_sftp_write_piece(sftp_session sftp, guint32 *next_id,
                                    QsimGuestAbortFunc abort_cb, gpointer abort_data,
                                    GError **error);

/*
 * Fills @file (open for writing at offset 0) with what @read gives until it gives
 * an empty GBytes, in WRITEs of @piece bytes, keeping up to
 * QSIM_GUEST_SFTP_WRITE_WINDOW of them in flight. Returns the bytes the guest
 * acknowledged, or -1 with @error: aborted, the session lost, the guest refused a
 * write, answered something that is not a WRITE's status, or showed no sign of
 * life for QSIM_GUEST_STALL_S. @what names the file in messages.
 *
 * @next_id: the request id counter of @file's session, shared by every call on it
 */
gint64 qsim_guest_sftp_write_stream(sftp_file file, guint32 piece, guint32 *next_id,
                                    const gchar *what, QsimGuestReadFunc read, gpointer read_data,
                                    QsimGuestAbortFunc abort_cb, gpointer abort_data,
                                    GError **error);

G_END_DECLS
