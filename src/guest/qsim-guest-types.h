#pragma once

/*
 * The types qsim-guest-flow.h and qsim-guest-ssh.h share with qsim-guest.h, kept in a
 * leaf so that those private headers need not include qsim-guest.h (issue 13: no
 * include cycles).
 */

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * QsimGuestStream:
 *
 * Which stream of a guest command a chunk of output came from.
 */
typedef enum {
	QSIM_GUEST_STREAM_STDOUT = 1,
	QSIM_GUEST_STREAM_STDERR = 2,
} QsimGuestStream;

/**
 * QsimGuestOutputFunc:
 * @stream: where @chunk came from
 * @chunk: (transfer none): the bytes as they arrived, never empty, not
 *   NUL-terminated, possibly cut in the middle of a line or a UTF-8 sequence;
 *   take a ref to keep them
 * @user_data: the output_data given to qsim_guest_exec_async()
 *
 * Receives command output, always on the main context the #QsimGuest was
 * created on, in arrival order per stream. The bytes of @chunk count against
 * the in-flight budget until this function returns.
 */
typedef void (*QsimGuestOutputFunc)(QsimGuestStream stream, GBytes *chunk, gpointer user_data);

G_END_DECLS
