#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Writing POSIX (pax) tar streams a piece at a time: shared by the API's
 * artifacts.tar.gz and qsim-ctl's --upload of a directory.
 */
#define QSIM_TAR_BLOCK 512
#define QSIM_TAR_FILE '0'
#define QSIM_TAR_SYMLINK '2'
#define QSIM_TAR_DIR '5'

void qsim_tar_header(GString *out, const gchar *name, gchar type, guint mode, guint64 size,
                     gint64 mtime, const gchar *linkname);
/* Zeroes after @size bytes of content, up to the next block */
void qsim_tar_pad(GString *out, guint64 size);

G_END_DECLS
