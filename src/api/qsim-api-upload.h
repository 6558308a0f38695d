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
gboolean qsim_api_upload_attach(SoupServerMessage *msg, QsimStore *store, guint64 max_bytes,
                                const gchar *const *origins);
QsimApiUpload *qsim_api_upload_get(SoupServerMessage *msg);
const gchar *qsim_api_upload_get_request(QsimApiUpload *u, gsize *len);
gboolean qsim_api_upload_is_complete(QsimApiUpload *u);
const gchar *qsim_api_upload_get_id(QsimApiUpload *u);
void qsim_api_upload_take(QsimApiUpload *u);

/* The parser alone, fed by hand (tests/fuzz/fuzz-multipart.c): a refusal is only
 * recorded, never answered. */
QsimApiUpload *qsim_api_upload_new(QsimStore *store, const gchar *boundary, guint64 max_bytes);
gboolean qsim_api_upload_feed(QsimApiUpload *u, const guint8 *data, gsize len);
guint qsim_api_upload_get_fail_status(QsimApiUpload *u);
void qsim_api_upload_free(QsimApiUpload *u);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimApiUpload, qsim_api_upload_free)

G_END_DECLS
