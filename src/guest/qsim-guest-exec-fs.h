#pragma once

#include "guest/qsim-guest-ssh.h"
#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/*
 * File transfer over plain exec channels, for guests without an SFTP
 * subsystem; private to src/guest/. Blocking: called on the session's worker
 * thread only. Everything the guest prints is parsed strictly and read in
 * bounded amounts: the guest may lie.
 */

/* Returns (transfer full): @s quoted for a POSIX shell ('...' with ' as '\''). */
gchar *qsim_guest_sh_quote(const gchar *s);

/*
 * Whether the guest answers on the "sftp" subsystem, asked with bounded,
 * abortable waits: libssh 0.10's sftp_init() spins forever when the subsystem
 * starts but exits at once (dropbear with sftp-server missing or unusable).
 * Returns FALSE with @error only when aborted or the session broke.
 */
gboolean qsim_guest_exec_probe_sftp(QsimGuestSsh *ssh, QsimGuestAbortFunc abort_cb,
                                    gpointer abort_data, gboolean *present, GError **error);

/*
 * Same contract as qsim_guest_sftp_put(), over `cat > 'path'` then `chmod`
 * (or, for a put with @unpack, the guest's `tar -x` reading stdin), one exec
 * channel per file, streamed in bounded pieces.
 */
gint64 qsim_guest_exec_put(QsimGuestSsh *ssh, const QsimGuestPut *puts, guint n,
                           QsimGuestAbortFunc abort_cb, gpointer abort_data, GError **error);

/*
 * Same contract as qsim_guest_sftp_collect(): a fixed POSIX sh script lists the
 * matches (globs expanded by the guest's shell, symlinks never followed), then
 * each regular file is read with `head -c SIZE`, never more than SIZE bytes.
 */
GPtrArray *qsim_guest_exec_collect(QsimGuestSsh *ssh, const gchar *const *patterns,
                                   const QsimGuestCollectLimits *limits,
                                   const QsimGuestCollectSink *sink, QsimGuestAbortFunc abort_cb,
                                   gpointer abort_data, GPtrArray *notes, GError **error);

G_END_DECLS
