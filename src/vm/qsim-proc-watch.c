#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "qsim-netns.h"
#include "qsim-proc-watch.h"

#define QSIM_PROC_WATCH_CHUNK 4096

struct _QsimProcWatch {
	gint refs; /* the owner's, plus one per read, wait or callback in flight */
	GSubprocess *proc;
	GInputStream *pipe;
	GCancellable *read_cancellable;
	GCancellable *wait_cancellable;
	guint drain_ms;
	guint drain_id;
	gboolean exited;
	gboolean eof;
	gboolean done;
	gboolean freed;
	QsimProcWatchOutputFunc output;
	QsimProcWatchFunc exited_func;
	QsimProcWatchFunc done_func;
	gpointer user_data;
	GDestroyNotify notify;
};

static QsimProcWatch *
watch_ref(QsimProcWatch *self)
{
	self->refs++;
	return self;
}

static void
watch_release_user_data(QsimProcWatch *self)
{
	GDestroyNotify notify = self->notify;

	/* cleared first: the notify may drop what owns this watch, which then frees it */
	self->notify = NULL;
	if (notify != NULL)
		notify(self->user_data);
}

static void
watch_unref(QsimProcWatch *self)
{
	if (--self->refs > 0)
		return;
	g_clear_handle_id(&self->drain_id, g_source_remove);
	g_clear_object(&self->proc);
	g_clear_object(&self->pipe);
	g_clear_object(&self->read_cancellable);
	g_clear_object(&self->wait_cancellable);
	g_free(self);
}

static void
watch_maybe_done(QsimProcWatch *self)
{
	if (self->freed || self->done || !self->exited || !self->eof)
		return;
	self->done = TRUE;
	g_clear_handle_id(&self->drain_id, g_source_remove);
	watch_ref(self);
	self->done_func(self->user_data);
	if (!self->freed)
		watch_release_user_data(self);
	watch_unref(self);
}

static gboolean
watch_drain_timeout_cb(gpointer user_data)
{
	QsimProcWatch *self = user_data;

	/* a child of the process may hold the pipe open: do not wait for it forever */
	self->drain_id = 0;
	self->eof = TRUE;
	watch_maybe_done(self);
	return G_SOURCE_REMOVE;
}

static void
watch_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QsimProcWatch *self = user_data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	if (self->freed) {
		watch_unref(self);
		return;
	}
	self->exited = TRUE;
	if (self->exited_func != NULL)
		self->exited_func(self->user_data);
	if (!self->freed && !self->eof && !self->done)
		self->drain_id = g_timeout_add(self->drain_ms, watch_drain_timeout_cb, self);
	watch_maybe_done(self);
	watch_unref(self);
}

static void watch_read(QsimProcWatch *self);

static void
watch_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QsimProcWatch *self = user_data;
	g_autoptr(GBytes) bytes =
	    g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, NULL);
	gsize len = 0;
	const guint8 *data = bytes != NULL ? g_bytes_get_data(bytes, &len) : NULL;

	if (self->freed || self->eof) {
		watch_unref(self);
		return;
	}
	if (len == 0) {
		/* EOF or a read error: either way the process is going, and its exit says why */
		self->eof = TRUE;
		watch_maybe_done(self);
		watch_unref(self);
		return;
	}
	self->output(data, len, self->user_data);
	if (!self->freed && !self->eof)
		watch_read(self);
	watch_unref(self);
}

static void
watch_read(QsimProcWatch *self)
{
	g_input_stream_read_bytes_async(self->pipe, QSIM_PROC_WATCH_CHUNK, G_PRIORITY_DEFAULT,
	                                self->read_cancellable, watch_read_cb, watch_ref(self));
}

/**
 * qsim_proc_watch_new:
 * @proc: the process, reaped by this watch
 * @pipe: one of its output pipes, read to EOF
 * @drain_ms: after the exit, how long @pipe gets to reach EOF
 * @output: gets what @pipe delivers, chunk by chunk
 * @exited: (nullable): called when the process was reaped, maybe before the last output
 * @done: called once, when the process was reaped and @pipe drained
 * @user_data: for the callbacks
 * @notify: (nullable): releases @user_data after @done, or on qsim_proc_watch_free()
 *
 * Returns: (transfer full): a watch, already running
 */
QsimProcWatch *
qsim_proc_watch_new(GSubprocess *proc, GInputStream *pipe, guint drain_ms,
                    QsimProcWatchOutputFunc output, QsimProcWatchFunc exited,
                    QsimProcWatchFunc done, gpointer user_data, GDestroyNotify notify)
{
	QsimProcWatch *self;

	g_return_val_if_fail(G_IS_SUBPROCESS(proc), NULL);
	g_return_val_if_fail(G_IS_INPUT_STREAM(pipe), NULL);
	self = g_new0(QsimProcWatch, 1);
	self->refs = 1;
	self->proc = g_object_ref(proc);
	self->pipe = g_object_ref(pipe);
	self->read_cancellable = g_cancellable_new();
	self->wait_cancellable = g_cancellable_new();
	self->drain_ms = drain_ms;
	self->output = output;
	self->exited_func = exited;
	self->done_func = done;
	self->user_data = user_data;
	self->notify = notify;
	watch_read(self);
	g_subprocess_wait_async(proc, self->wait_cancellable, watch_wait_cb, watch_ref(self));
	return self;
}

/**
 * qsim_proc_watch_stop_output:
 * @self: a #QsimProcWatch
 *
 * Stops reading the pipe (the caller has what it needed from it); @done then follows the
 * exit without waiting for the pipe.
 */
void
qsim_proc_watch_stop_output(QsimProcWatch *self)
{
	if (self->eof)
		return;
	self->eof = TRUE;
	g_cancellable_cancel(self->read_cancellable);
	watch_maybe_done(self);
}

/* Returns: whether the process was reaped */
gboolean
qsim_proc_watch_get_exited(QsimProcWatch *self)
{
	return self->exited;
}

/**
 * qsim_proc_watch_free:
 * @self: (nullable): a #QsimProcWatch
 *
 * Stops watching; no callback runs after this. Does not touch the process.
 */
void
qsim_proc_watch_free(QsimProcWatch *self)
{
	if (self == NULL)
		return;
	self->freed = TRUE;
	g_clear_handle_id(&self->drain_id, g_source_remove);
	g_cancellable_cancel(self->read_cancellable);
	g_cancellable_cancel(self->wait_cancellable);
	watch_release_user_data(self);
	watch_unref(self);
}

/**
 * qsim_proc_child_setup:
 * @user_data: a network namespace's fd + 1 (GINT_TO_POINTER) to run the child in, or
 *   %NULL to stay in qsimd's
 *
 * A #GSpawnChildSetupFunc for QEMU and its helpers. Runs in the child between fork and
 * exec, so only async-signal-safe calls. Its own process group keeps a terminal's Ctrl-C
 * away from QEMU (qsim shuts it down in order), and the parent-death signal stops a QEMU
 * whose daemon was killed outright. A child that cannot enter its namespace never runs:
 * for NETWORK=outbound that would be an unrestricted slirp with the host's loopback.
 */
void
qsim_proc_child_setup(gpointer user_data)
{
	gint netns_fd = GPOINTER_TO_INT(user_data) - 1;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (netns_fd >= 0 && !qsim_netns_enter(netns_fd)) {
		static const char msg[] = "qsim: cannot enter the VM's network namespace\n";

		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing left to tell */
		}
		_exit(127);
	}
}
