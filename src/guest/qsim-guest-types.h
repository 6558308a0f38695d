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

/**
 * QsimGuestArtifact:
 *
 * One guest path collected by qsim_guest_collect_async(): a regular file (its
 * bytes went to the sink) or a symlink (recorded, never followed).
 */
typedef struct {
	gchar *name; /* the guest path without its leading '/' */
	gboolean is_symlink;
	guint64 size;  /* bytes written to the sink (a symlink: its target's length) */
	gchar *sha256; /* lowercase hex of those bytes (a symlink: of its target) */
	guint mode;    /* permission bits */
	gchar *target; /* a symlink's target, else NULL */
} QsimGuestArtifact;

void qsim_guest_artifact_free(QsimGuestArtifact *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimGuestArtifact, qsim_guest_artifact_free)

/**
 * QsimGuestCollectSink:
 *
 * Where collected bytes go. Called on the guest's worker thread: both
 * functions must be thread-safe. @open returns a stream for one artifact (or
 * NULL with @error, which skips it); @discard drops what a failed or cut
 * transfer left.
 */
typedef struct {
	GOutputStream *(*open)(gpointer data, const gchar *name, GError **error);
	void (*discard)(gpointer data, const gchar *name);
	gpointer data;
} QsimGuestCollectSink;

/**
 * QsimGuestCollectLimits:
 *
 * @max_files: most artifacts (files and symlinks), at least 1
 * @max_bytes: most file bytes together; a file that would pass it is skipped
 */
typedef struct {
	guint max_files;
	guint64 max_bytes;
} QsimGuestCollectLimits;

/**
 * QsimGuestReadFunc:
 *
 * Hands the next bytes of an upload to the guest's worker thread (so it must be
 * thread-safe): an empty GBytes at the end, NULL with @error to give up.
 */
typedef GBytes *(*QsimGuestReadFunc)(gpointer data, GError **error);

/* What the exec fallback does with a put's bytes (SFTP always writes @guest_path). */
typedef enum {
	QSIM_GUEST_UNPACK_NONE = 0,
	QSIM_GUEST_UNPACK_TAR,
	QSIM_GUEST_UNPACK_TAR_GZ,
} QsimGuestUnpack;

/**
 * QsimGuestPut:
 *
 * One file to write into the guest: created (with its parent directories)
 * or truncated, filled from @read, then given @mode. Over the exec fallback a
 * put with @unpack is not written anywhere: its bytes feed the guest's `tar`,
 * which unpacks them into @unpack_dir (borrowed).
 */
typedef struct {
	gchar *guest_path;
	guint mode;
	QsimGuestUnpack unpack;
	const gchar *unpack_dir;
	QsimGuestReadFunc read;
	gpointer data;
} QsimGuestPut;

G_END_DECLS
