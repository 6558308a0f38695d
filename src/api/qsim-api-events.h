#pragma once

#include <libsoup/soup.h>

#include "api/qsim-api-server.h"

G_BEGIN_DECLS

#define QSIM_TYPE_API_EVENT_STREAM (qsim_api_event_stream_get_type())
G_DECLARE_FINAL_TYPE(QsimApiEventStream, qsim_api_event_stream, QSIM, API_EVENT_STREAM, GObject)

QsimApiEventStream *qsim_api_event_stream_new(QsimApiServer *server, SoupServerMessage *msg,
                                              gint64 after_id);

void qsim_api_event_stream_start(QsimApiEventStream *self);

void qsim_api_event_stream_close(QsimApiEventStream *self);

G_END_DECLS
