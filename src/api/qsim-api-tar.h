#pragma once

#include <gio/gio.h>

#include "store/qsim-artifact-record.h"
#include "store/qsim-artifact-store.h"

G_BEGIN_DECLS

/*
 * A request's artifacts as a gzip-compressed POSIX (pax) tar stream, made a
 * piece at a time as the client reads it: never more than one chunk of any
 * file in memory. Files keep their modes; symlinks stay symlinks.
 */
typedef struct _QsimApiTar QsimApiTar;

/* Takes @artifacts and @records (element-type QsimArtifactRecord). */
QsimApiTar *qsim_api_tar_new(QsimArtifactStore *artifacts, const gchar *uuid, GPtrArray *records);

/* Returns (transfer full): the next compressed bytes, empty at the end, or NULL with @error */
GBytes *qsim_api_tar_read(QsimApiTar *self, gsize max, GError **error);

void qsim_api_tar_free(QsimApiTar *self);

G_END_DECLS
