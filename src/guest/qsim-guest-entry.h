#pragma once

#include <glib.h>

#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/* The longest note (characters) a collector adds to the request's system log */
#define QSIM_GUEST_NOTE_MAX 1024
/* Directory entries or listing records read beyond MAX_ARTIFACT_FILES (refused names,
 * directories, names no pattern matches) before a collection is cut: a guest may hold
 * a million names, and a glob that matches none of them would read them all. */
#define QSIM_GUEST_EXTRA_ENTRIES 100000
/* Notes a collection keeps: a million bad names must not make a million log lines */
#define QSIM_GUEST_MAX_NOTES 50

/* The notes of one collection, for the request's system log */
typedef struct {
	GPtrArray *lines; /* gchar*, the caller's */
	guint dropped;    /* notes past QSIM_GUEST_MAX_NOTES, not kept */
} QsimGuestNotes;

/* Adds a note as one safe log line, unless QSIM_GUEST_MAX_NOTES are there already
 * (then it is counted as dropped) */
void qsim_guest_notes_add(QsimGuestNotes *notes, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

/* The note that the collection was cut short: kept past the note cap, or a guest's 50
 * refused names before it would hide that the rest was never read. Comes once at most:
 * the collection stops after it. */
void qsim_guest_notes_cut(QsimGuestNotes *notes, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

/* At the end of a collection: says how many notes were dropped, if any */
void qsim_guest_notes_finish(QsimGuestNotes *notes);

/*
 * The checks every collector (SFTP, exec) makes on one guest entry before it
 * takes it, in one place so that both refuse the same names with the same
 * notes. Each returns a note for the request's system log, or NULL to go on.
 */

/* @path: the guest path ("/..."); its name is @path + 1. @seen: names taken so
 * far. Returns: NULL when the name may be taken, else "" for a silent skip (a
 * name taken already) or a note (transfer full) saying why it was refused */
gchar *qsim_guest_entry_check_name(const gchar *path, GHashTable *seen);

/* Returns: (nullable): a note when a file of @size bytes would take the file
 * bytes past MAX_ARTIFACT_BYTES, @taken being what was taken before it */
gchar *qsim_guest_entry_check_bytes(const gchar *path, guint64 size, guint64 taken,
                                    const QsimGuestCollectLimits *limits);

/* Returns: (nullable): a note when @n_taken artifacts fill MAX_ARTIFACT_FILES
 * (then nothing more is taken) */
gchar *qsim_guest_entry_check_count(const gchar *path, guint n_taken,
                                    const QsimGuestCollectLimits *limits);

/* Returns: (nullable): a note when @raw_mode is not a regular file, directory or
 * symlink */
gchar *qsim_guest_entry_check_type(const gchar *path, guint raw_mode);

G_END_DECLS
