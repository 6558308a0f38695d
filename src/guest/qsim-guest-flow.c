#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include "guest/qsim-guest-flow.h"

/* Events delivered per main-loop iteration, so a flood of output never starves other sources. */
#define QSIM_GUEST_FLOW_EVENTS_PER_DISPATCH 64

typedef struct {
	gconstpointer op;
	/* chunk */
	QsimGuestStream stream;
	GBytes *chunk;
	QsimGuestOutputFunc output_cb;
	gpointer output_data;
	/* completion, when task != NULL */
	GTask *task;
	gpointer result;
	GDestroyNotify result_free;
	GError *error;
} QsimGuestFlowEvent;

struct _QsimGuestFlow {
	gint refcount;
	GMainContext *context;
	GMutex lock;
	GCond cond;
	GQueue events; /* of QsimGuestFlowEvent, FIFO */
	GSource *source;
	gsize budget;
	gsize in_flight;
	gsize max_in_flight;
	gboolean paused;
	gboolean shut_down;
};

static void
qsim_guest_flow_event_free(QsimGuestFlowEvent *event)
{
	g_clear_pointer(&event->chunk, g_bytes_unref);
	if (event->result != NULL && event->result_free != NULL)
		event->result_free(event->result);
	g_clear_error(&event->error);
	g_clear_object(&event->task);
	g_free(event);
}

/**
 * qsim_guest_flow_new:
 * @context: the main context output and completions are delivered on
 * @budget: bytes of output allowed in flight
 *
 * Returns: (transfer full): a new flow
 */
QsimGuestFlow *
qsim_guest_flow_new(GMainContext *context, gsize budget)
{
	QsimGuestFlow *self;

	g_return_val_if_fail(context != NULL, NULL);
	self = g_new0(QsimGuestFlow, 1);
	self->refcount = 1;
	self->context = g_main_context_ref(context);
	self->budget = budget;
	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	g_queue_init(&self->events);
	return self;
}

/**
 * qsim_guest_flow_ref:
 *
 * Returns: (transfer full): @self
 */
QsimGuestFlow *
qsim_guest_flow_ref(QsimGuestFlow *self)
{
	g_atomic_int_inc(&self->refcount);
	return self;
}

void
qsim_guest_flow_unref(QsimGuestFlow *self)
{
	if (!g_atomic_int_dec_and_test(&self->refcount))
		return;
	/* the source holds a reference, so it is gone by now */
	g_queue_clear_full(&self->events, (GDestroyNotify)qsim_guest_flow_event_free);
	g_main_context_unref(self->context);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
	g_free(self);
}

void
qsim_guest_flow_set_budget(QsimGuestFlow *self, gsize budget)
{
	g_mutex_lock(&self->lock);
	self->budget = budget;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
}

gsize
qsim_guest_flow_get_max_in_flight(QsimGuestFlow *self)
{
	gsize value;

	g_mutex_lock(&self->lock);
	value = self->max_in_flight;
	g_mutex_unlock(&self->lock);
	return value;
}

gboolean
qsim_guest_flow_get_paused(QsimGuestFlow *self)
{
	gboolean value;

	g_mutex_lock(&self->lock);
	value = self->paused;
	g_mutex_unlock(&self->lock);
	return value;
}

/* Called with the lock held. Picks the next event that may be delivered now. */
static QsimGuestFlowEvent *
qsim_guest_flow_take_next_locked(QsimGuestFlow *self)
{
	GList *failed = NULL;
	gconstpointer op;

	if (!self->paused)
		return g_queue_pop_head(&self->events);

	/*
	 * While paused only a failed operation completes, so that a consumer that
	 * paused and then cancelled is not left waiting; its undelivered output is
	 * discarded, as documented in qsim_guest_set_flow_paused().
	 */
	for (GList *l = self->events.head; l != NULL; l = l->next) {
		QsimGuestFlowEvent *event = l->data;
		if (event->task != NULL && event->error != NULL) {
			failed = l;
			break;
		}
	}
	if (failed == NULL)
		return NULL;
	op = ((QsimGuestFlowEvent *)failed->data)->op;
	for (GList *l = self->events.head; l != failed;) {
		GList *next = l->next;
		QsimGuestFlowEvent *event = l->data;
		if (event->task == NULL && event->op == op) {
			self->in_flight -= g_bytes_get_size(event->chunk);
			g_queue_delete_link(&self->events, l);
			qsim_guest_flow_event_free(event);
		}
		l = next;
	}
	g_cond_broadcast(&self->cond);
	{
		QsimGuestFlowEvent *event = failed->data;
		g_queue_delete_link(&self->events, failed);
		return event;
	}
}

static void
qsim_guest_flow_deliver(QsimGuestFlow *self, QsimGuestFlowEvent *event)
{
	if (event->task == NULL) {
		gsize size = g_bytes_get_size(event->chunk);
		if (event->output_cb != NULL)
			event->output_cb(event->stream, event->chunk, event->output_data);
		/* the budget is released only now: the consumer has processed the bytes */
		g_mutex_lock(&self->lock);
		self->in_flight -= size;
		g_cond_broadcast(&self->cond);
		g_mutex_unlock(&self->lock);
	} else if (event->error != NULL) {
		g_task_return_error(event->task, g_steal_pointer(&event->error));
	} else {
		g_task_return_pointer(event->task, g_steal_pointer(&event->result),
		                      event->result_free);
	}
	qsim_guest_flow_event_free(event);
}

static gboolean
qsim_guest_flow_dispatch_cb(gpointer user_data)
{
	QsimGuestFlow *self = user_data;

	for (guint i = 0; i < QSIM_GUEST_FLOW_EVENTS_PER_DISPATCH; i++) {
		QsimGuestFlowEvent *event;

		g_mutex_lock(&self->lock);
		if (self->shut_down) {
			g_mutex_unlock(&self->lock);
			return G_SOURCE_REMOVE;
		}
		event = qsim_guest_flow_take_next_locked(self);
		if (event == NULL) {
			/* the worker attaches a new source for the next event */
			g_clear_pointer(&self->source, g_source_unref);
			g_mutex_unlock(&self->lock);
			return G_SOURCE_REMOVE;
		}
		g_mutex_unlock(&self->lock);
		qsim_guest_flow_deliver(self, event);
	}
	return G_SOURCE_CONTINUE;
}

/* Called with the lock held. */
static void
qsim_guest_flow_schedule_locked(QsimGuestFlow *self)
{
	if (self->source != NULL || self->shut_down || self->events.length == 0)
		return;
	self->source = g_idle_source_new();
	g_source_set_priority(self->source, G_PRIORITY_DEFAULT);
	g_source_set_static_name(self->source, "qsim-guest-flow");
	g_source_set_callback(self->source, qsim_guest_flow_dispatch_cb, qsim_guest_flow_ref(self),
	                      (GDestroyNotify)qsim_guest_flow_unref);
	g_source_attach(self->source, self->context);
}

void
qsim_guest_flow_set_paused(QsimGuestFlow *self, gboolean paused)
{
	g_mutex_lock(&self->lock);
	self->paused = paused;
	qsim_guest_flow_schedule_locked(self);
	g_mutex_unlock(&self->lock);
}

gsize
qsim_guest_flow_wait_room(QsimGuestFlow *self, guint timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
	gsize room = 0;

	g_mutex_lock(&self->lock);
	while (!self->shut_down) {
		if (self->in_flight < self->budget) {
			room = self->budget - self->in_flight;
			break;
		}
		if (!g_cond_wait_until(&self->cond, &self->lock, end))
			break;
	}
	g_mutex_unlock(&self->lock);
	return room;
}

void
qsim_guest_flow_push_chunk(QsimGuestFlow *self, gconstpointer op, QsimGuestStream stream,
                           GBytes *chunk, QsimGuestOutputFunc output_cb, gpointer output_data)
{
	QsimGuestFlowEvent *event = g_new0(QsimGuestFlowEvent, 1);

	event->op = op;
	event->stream = stream;
	event->chunk = g_bytes_ref(chunk);
	event->output_cb = output_cb;
	event->output_data = output_data;
	g_mutex_lock(&self->lock);
	self->in_flight += g_bytes_get_size(chunk);
	self->max_in_flight = MAX(self->max_in_flight, self->in_flight);
	g_queue_push_tail(&self->events, event);
	qsim_guest_flow_schedule_locked(self);
	g_mutex_unlock(&self->lock);
}

void
qsim_guest_flow_push_done(QsimGuestFlow *self, gconstpointer op, GTask *task, gpointer result,
                          GDestroyNotify result_free, GError *error)
{
	QsimGuestFlowEvent *event = g_new0(QsimGuestFlowEvent, 1);

	event->op = op;
	event->task = task;
	event->result = result;
	event->result_free = result_free;
	event->error = error;
	g_mutex_lock(&self->lock);
	g_queue_push_tail(&self->events, event);
	qsim_guest_flow_schedule_locked(self);
	g_mutex_unlock(&self->lock);
}

void
qsim_guest_flow_shutdown(QsimGuestFlow *self)
{
	g_autoptr(GSource) source = NULL;
	GQueue events = G_QUEUE_INIT;

	g_mutex_lock(&self->lock);
	self->shut_down = TRUE;
	source = g_steal_pointer(&self->source);
	events = self->events;
	g_queue_init(&self->events);
	self->in_flight = 0;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	if (source != NULL)
		g_source_destroy(source);
	/* freed outside the lock: dropping a task may run arbitrary finalizers */
	g_queue_clear_full(&events, (GDestroyNotify)qsim_guest_flow_event_free);
}
