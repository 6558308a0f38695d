#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <signal.h>

#include "agent/qsim-lease-watchdog.h"

struct _QsimLeaseWatchdog {
	GMutex lock;
	GCond cond;
	gchar *name;
	gint64 margin_us;
	gint64 deadline_us; /* monotonic */
	GPid pid;
	gboolean stop;
	gint fired; /* atomic */
	GThread *thread;
};

static gpointer
watchdog_thread(gpointer user_data)
{
	QsimLeaseWatchdog *self = user_data;

	g_mutex_lock(&self->lock);
	while (!self->stop) {
		gint64 fire_at = self->deadline_us - self->margin_us;

		if (g_get_monotonic_time() < fire_at) {
			g_cond_wait_until(&self->cond, &self->lock, fire_at);
			continue;
		}
		/* no QEMU yet (still starting): the main loop fences the start; a QEMU
		 * reported after the deadline is killed at once */
		if (self->pid <= 0) {
			g_cond_wait(&self->cond, &self->lock);
			continue;
		}
		/* only a signal from here: the rest of the job belongs to the main loop. Fired
		 * first: the main loop may see QEMU's exit before this thread runs again */
		g_atomic_int_set(&self->fired, 1);
		kill(self->pid, SIGKILL);
		break;
	}
	g_mutex_unlock(&self->lock);
	return NULL;
}

QsimLeaseWatchdog *
qsim_lease_watchdog_new(const gchar *name, gint64 left_ms, gint64 margin_ms)
{
	QsimLeaseWatchdog *self = g_new0(QsimLeaseWatchdog, 1);

	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	self->name = g_strdup(name);
	self->margin_us = margin_ms * 1000;
	self->deadline_us = g_get_monotonic_time() + left_ms * 1000;
	self->thread = g_thread_new("lease-watchdog", watchdog_thread, self);
	return self;
}

void
qsim_lease_watchdog_renewed(QsimLeaseWatchdog *self, gint64 left_ms, GPid pid)
{
	g_mutex_lock(&self->lock);
	self->deadline_us = g_get_monotonic_time() + left_ms * 1000;
	self->pid = pid;
	g_cond_signal(&self->cond);
	g_mutex_unlock(&self->lock);
}

void
qsim_lease_watchdog_set_pid(QsimLeaseWatchdog *self, GPid pid)
{
	g_mutex_lock(&self->lock);
	self->pid = pid;
	g_cond_signal(&self->cond);
	g_mutex_unlock(&self->lock);
}

gboolean
qsim_lease_watchdog_fired(QsimLeaseWatchdog *self)
{
	return g_atomic_int_get(&self->fired) != 0;
}

void
qsim_lease_watchdog_free(QsimLeaseWatchdog *self)
{
	if (self == NULL)
		return;
	g_mutex_lock(&self->lock);
	self->stop = TRUE;
	g_cond_signal(&self->cond);
	g_mutex_unlock(&self->lock);
	g_thread_join(self->thread);
	if (qsim_lease_watchdog_fired(self))
		g_debug("%s: the lease watchdog fired", self->name);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
	g_free(self->name);
	g_free(self);
}
