#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include "common/qsim-guest-path.h"
#include "common/qsim-text.h"
#include "guest/qsim-guest-entry.h"

gchar *
qsim_guest_entry_check_name(const gchar *path, GHashTable *seen)
{
	g_autoptr(GError) local = NULL;

	/* the message, not the path: a refused path may hold a newline or escape codes */
	if (path == NULL || path[0] != '/' || !qsim_artifact_name_validate(path + 1, &local))
		return g_strdup_printf("artifacts: a guest path was refused: %s",
		                       local != NULL ? local->message : "not absolute");
	if (g_hash_table_contains(seen, path + 1))
		return g_strdup("");
	return NULL;
}

gchar *
qsim_guest_entry_check_bytes(const gchar *path, guint64 size, guint64 taken,
                             const QsimGuestCollectLimits *limits)
{
	if (size <= limits->max_bytes && taken <= limits->max_bytes - size)
		return NULL;
	return g_strdup_printf("artifacts: %s (%" G_GUINT64_FORMAT " bytes) skipped: over "
	                       "MAX_ARTIFACT_BYTES=%" G_GUINT64_FORMAT " with %" G_GUINT64_FORMAT
	                       " bytes already collected",
	                       path, size, limits->max_bytes, taken);
}

gchar *
qsim_guest_entry_check_count(const gchar *path, guint n_taken, const QsimGuestCollectLimits *limits)
{
	if (n_taken < limits->max_files)
		return NULL;
	return g_strdup_printf("artifacts: stopped at MAX_ARTIFACT_FILES=%u; %s and anything "
	                       "after it not collected",
	                       limits->max_files, path);
}

gchar *
qsim_guest_entry_check_type(const gchar *path, guint raw_mode)
{
	guint type = raw_mode & 0170000;

	if (type == 0100000 || type == 0040000 || type == 0120000)
		return NULL;
	return g_strdup_printf("artifacts: %s is not a regular file, directory or symlink; skipped",
	                       path);
}

static void
notes_addv(QsimGuestNotes *notes, gboolean always, const gchar *format, va_list args)
{
	g_autofree gchar *text = NULL;

	if (!always && notes->lines->len >= QSIM_GUEST_MAX_NOTES) {
		notes->dropped++;
		return;
	}
	text = g_strdup_vprintf(format, args);
	/* one log line each, whatever bytes the guest put in a name */
	g_ptr_array_add(notes->lines, qsim_utf8_safe_dup(text, -1, QSIM_GUEST_NOTE_MAX));
}

void
qsim_guest_notes_add(QsimGuestNotes *notes, const gchar *format, ...)
{
	va_list args;

	va_start(args, format);
	notes_addv(notes, FALSE, format, args);
	va_end(args);
}

void
qsim_guest_notes_cut(QsimGuestNotes *notes, const gchar *format, ...)
{
	va_list args;

	va_start(args, format);
	notes_addv(notes, TRUE, format, args);
	va_end(args);
}

void
qsim_guest_notes_finish(QsimGuestNotes *notes)
{
	if (notes->dropped > 0)
		g_ptr_array_add(notes->lines, g_strdup_printf("artifacts: %u more notes not shown",
		                                              notes->dropped));
}
