#pragma once

#include <gio/gio.h>

#include "guest/qsim-guest-types.h"

G_BEGIN_DECLS

/*
 * QsimGuestFlow: the thread-safe hand-over from a guest worker thread to the
 * main context. It keeps output and completions in one FIFO (so every chunk
 * of an operation is delivered before its completion) and enforces the
 * in-flight byte budget that gives the SSH channel its backpressure.
 * Private to src/guest/.
 */
typedef struct _QsimGuestFlow QsimGuestFlow;

/* Returns (transfer full): a flow dispatching on @context (must not be NULL). */
QsimGuestFlow *qsim_guest_flow_new(GMainContext *context, gsize budget);

/* Returns (transfer full): @self with one more reference. */
QsimGuestFlow *qsim_guest_flow_ref(QsimGuestFlow *self);

void qsim_guest_flow_unref(QsimGuestFlow *self);

void qsim_guest_flow_set_budget(QsimGuestFlow *self, gsize budget);

void qsim_guest_flow_set_paused(QsimGuestFlow *self, gboolean paused);

gboolean qsim_guest_flow_get_paused(QsimGuestFlow *self);

gsize qsim_guest_flow_get_max_in_flight(QsimGuestFlow *self);

/*
 * Worker side: waits up to @timeout_ms for budget to be free and returns how
 * many bytes may be pushed now (0 when none became free in time).
 */
gsize qsim_guest_flow_wait_room(QsimGuestFlow *self, guint timeout_ms);

/*
 * Worker side: queues @chunk (must fit the room returned by
 * qsim_guest_flow_wait_room()) for @output_cb. @op identifies the operation so
 * that its chunks can be dropped when it fails while delivery is paused.
 */
void qsim_guest_flow_push_chunk(QsimGuestFlow *self, gconstpointer op, QsimGuestStream stream,
                                GBytes *chunk, QsimGuestOutputFunc output_cb, gpointer output_data);

/*
 * Worker side: queues the completion of @task (transfer full). With @error
 * (transfer full) the task returns it; else it returns @result (transfer
 * full, freed with @result_free if never taken).
 */
void qsim_guest_flow_push_done(QsimGuestFlow *self, gconstpointer op, GTask *task, gpointer result,
                               GDestroyNotify result_free, GError *error);

/* Main side: drops everything queued and stops dispatching. */
void qsim_guest_flow_shutdown(QsimGuestFlow *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimGuestFlow, qsim_guest_flow_unref)

G_END_DECLS
