#pragma once

#include <libsoup/soup.h>

#include "api/qsim-api-server.h"

G_BEGIN_DECLS

#define QSIM_TYPE_API_LOG_STREAM (qsim_api_log_stream_get_type())
G_DECLARE_FINAL_TYPE(QsimApiLogStream, qsim_api_log_stream, QSIM, API_LOG_STREAM, GObject)

QsimApiLogStream *qsim_api_log_stream_new(QsimApiServer *server, SoupServerMessage *msg,
                                          const gchar *uuid, gint64 after_seq, gint log_type);

void qsim_api_log_stream_start(QsimApiLogStream *self);

void qsim_api_log_stream_close(QsimApiLogStream *self);

G_END_DECLS
