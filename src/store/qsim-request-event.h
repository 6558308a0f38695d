#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimRequestEvent:
 *
 * One row of the store's request journal (GET /events): a request was
 * created, changed status or was deleted. @id orders the journal across every
 * process writing the database and is what an SSE client resumes from.
 */
typedef struct {
	gint64 id;
	gchar *uuid;
	gchar *kind;   /* "created", "status" or "deleted" */
	gchar *status; /* the status after the event; NULL for "deleted" */
	gint64 at_ms;  /* unix ms */
} QsimRequestEvent;

QsimRequestEvent *qsim_request_event_new(gint64 id, const gchar *uuid, const gchar *kind,
                                         const gchar *status, gint64 at_ms);

void qsim_request_event_free(QsimRequestEvent *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimRequestEvent, qsim_request_event_free)

G_END_DECLS
