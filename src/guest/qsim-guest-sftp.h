#pragma once

#include "guest/qsim-guest-ssh.h"
#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/*
 * File transfer over SFTP on a connected QsimGuestSsh, private to src/guest/.
 * Blocking: called on the session's worker thread only.
 */

/*
 * Expands @patterns in the guest (globs matched here with fnmatch over SFTP
 * directory listings: no shell on either side) and streams every match into
 * @sink in bounded chunks, within @limits. A directory is collected whole. A
 * symlink is recorded with its target, never followed. Anything missing, over
 * a limit or unsafe adds a line to @notes and never fails the call. Returns
 * (element-type QsimGuestArtifact) the artifacts, or NULL with @error when the
 * guest has no SFTP subsystem (then *@no_sftp is TRUE), the session broke or the
 * call was aborted.
 */
GPtrArray *qsim_guest_sftp_collect(QsimGuestSsh *ssh, const gchar *const *patterns,
                                   const QsimGuestCollectLimits *limits,
                                   const QsimGuestCollectSink *sink, QsimGuestAbortFunc abort_cb,
                                   gpointer abort_data, GPtrArray *notes, gboolean *no_sftp,
                                   GError **error);

/*
 * Writes @n files into the guest over SFTP, in order, streaming each from its
 * read function in pieces of at most 32 KiB. Returns the bytes written, or -1
 * with @error (no SFTP, then *@no_sftp is TRUE; a guest refusal, a read
 * failure, aborted). @unpack is ignored: a tar part is written to @guest_path.
 */
gint64 qsim_guest_sftp_put(QsimGuestSsh *ssh, const QsimGuestPut *puts, guint n,
                           QsimGuestAbortFunc abort_cb, gpointer abort_data, gboolean *no_sftp,
                           GError **error);

G_END_DECLS
