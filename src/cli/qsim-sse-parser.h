#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimSseEventFunc:
 * @event: the event type, "message" when the server gave none
 * @data: the event's data lines joined with "\n"
 * @id: (nullable): the event's id, or %NULL when it had none
 * @user_data: closure
 *
 * Called once per complete event. Returning %FALSE stops the parser: the rest of
 * the fed bytes are dropped and qsim_sse_parser_feed() returns %FALSE.
 */
typedef gboolean (*QsimSseEventFunc)(const gchar *event, const gchar *data, const gchar *id,
                                     gpointer user_data);

/**
 * QsimSseParser:
 *
 * An incremental parser for text/event-stream (the WHATWG Server-Sent Events
 * framing): bytes are fed as they arrive, in chunks of any size.
 */
typedef struct _QsimSseParser QsimSseParser;

QsimSseParser *qsim_sse_parser_new(QsimSseEventFunc func, gpointer user_data);
void qsim_sse_parser_free(QsimSseParser *self);
gboolean qsim_sse_parser_feed(QsimSseParser *self, const guint8 *buf, gsize len);
const gchar *qsim_sse_parser_get_last_id(QsimSseParser *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimSseParser, qsim_sse_parser_free)

G_END_DECLS
