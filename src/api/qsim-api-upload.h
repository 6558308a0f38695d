#pragma once

#include <libsoup/soup.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

/*
 * A multipart/form-data POST /requests, parsed while it streams in: a JSON part
 * named `request` (the usual fields) and parts named `file` whose filename is the
 * guest path (a file, or with Content-Type application/x-tar or application/gzip
 * a tar unpacked into that directory; `X-Qsim-Mode: 0755` sets a file's mode).
 * File bytes are spooled in the store (qsim_store_upload_put_chunk()) and never
 * held whole; the spool is discarded with the message unless a request took it.
 */
typedef struct _QsimApiUpload QsimApiUpload;

gboolean qsim_api_upload_is_multipart(SoupServerMessage *msg);
gboolean qsim_api_upload_attach(SoupServerMessage *msg, QsimStore *store, guint64 max_bytes);
QsimApiUpload *qsim_api_upload_get(SoupServerMessage *msg);
const gchar *qsim_api_upload_get_request(QsimApiUpload *u, gsize *len);
gboolean qsim_api_upload_is_complete(QsimApiUpload *u);
const gchar *qsim_api_upload_get_id(QsimApiUpload *u);
void qsim_api_upload_take(QsimApiUpload *u);

G_END_DECLS
