#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-text.h"
#include "qsim-net-outbound.h"
#include "qsim-netns.h"
#include "qsim-proc-watch.h"

/* NETWORK=outbound (docs/network.md): QEMU runs in a network namespace of its own, with
 * slirp unrestricted. slirp's 10.0.2.2 then maps to the namespace's loopback, where
 * nothing of the host listens, and a guest that routes 127.0.0.1 out reaches the same
 * empty loopback. pasta joins the namespace and gives it the host's outbound path, with
 * its gateway mapping off, and forwards the host's 127.0.0.1:<port> to QEMU's SSH forward
 * inside. */

/* pasta's own fd for the namespace, passed as /proc/self/fd/<n>: a path under
 * /proc/<pid>/ns needs ptrace rights that pasta has dropped by the time it opens it */
#define NETNS_CHILD_FD 3
#define LOG_TAIL_MAX 2048

struct _QsimNetOutbound {
	GObject parent_instance;

	gchar *run_dir;
	guint16 host_port;
	gint netns_fd;
	GSubprocess *proc;
	GPid pid;
	GCancellable *cancellable;
	gboolean exited;
	gboolean stopping;
};

G_DEFINE_TYPE(QsimNetOutbound, qsim_net_outbound, G_TYPE_OBJECT)

enum { SIGNAL_EXITED, SIGNAL_LAST };

static guint signals[SIGNAL_LAST];

static void
qsim_net_outbound_dispose(GObject *object)
{
	QsimNetOutbound *self = QSIM_NET_OUTBOUND(object);

	qsim_net_outbound_stop(self);
	g_clear_object(&self->proc);
	g_clear_object(&self->cancellable);
	G_OBJECT_CLASS(qsim_net_outbound_parent_class)->dispose(object);
}

static void
qsim_net_outbound_finalize(GObject *object)
{
	QsimNetOutbound *self = QSIM_NET_OUTBOUND(object);

	if (self->netns_fd >= 0)
		close(self->netns_fd);
	g_free(self->run_dir);
	G_OBJECT_CLASS(qsim_net_outbound_parent_class)->finalize(object);
}

static void
qsim_net_outbound_class_init(QsimNetOutboundClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_net_outbound_dispose;
	object_class->finalize = qsim_net_outbound_finalize;

	/**
	 * QsimNetOutbound::exited:
	 *
	 * pasta ended without qsim_net_outbound_stop(): the guest has lost its network and
	 * the host its SSH forward, so the VM is of no more use.
	 */
	signals[SIGNAL_EXITED] = g_signal_new("exited", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
	                                      0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
qsim_net_outbound_init(QsimNetOutbound *self)
{
	self->netns_fd = -1;
	self->cancellable = g_cancellable_new();
}

/**
 * qsim_net_outbound_new:
 * @run_dir: the VM start's run directory (pasta's log goes there)
 * @host_port: the host's 127.0.0.1 port to forward to the same port in the namespace
 *
 * Returns: (transfer full): a helper, not started
 */
QsimNetOutbound *
qsim_net_outbound_new(const gchar *run_dir, guint16 host_port)
{
	QsimNetOutbound *self = g_object_new(QSIM_TYPE_NET_OUTBOUND, NULL);

	self->run_dir = g_strdup(run_dir);
	self->host_port = host_port;
	return self;
}

static void
qsim_net_outbound_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimNetOutbound) self = user_data;
	g_autoptr(GError) error = NULL;

	if (!g_subprocess_wait_finish(G_SUBPROCESS(source), res, &error) &&
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return; /* disposed: the stop has already killed it */
	self->exited = TRUE;
	if (!self->stopping)
		g_signal_emit(self, signals[SIGNAL_EXITED], 0);
}

/**
 * qsim_net_outbound_start:
 * @self: a #QsimNetOutbound
 * @error: return location for a #GError
 *
 * Creates the namespace and starts pasta on it. QEMU enters the namespace with
 * qsim_netns_enter() on qsim_net_outbound_get_netns_fd(). pasta needs no time to be
 * ready first: QEMU's forward inside is bound before the guest can answer, and the
 * readiness probe retries until pasta's side is up too.
 *
 * Returns: %TRUE if pasta runs
 */
gboolean
qsim_net_outbound_start(QsimNetOutbound *self, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autofree gchar *pasta = g_find_program_in_path("pasta");
	g_autofree gchar *log = NULL;
	g_autofree gchar *forward = NULL;
	g_autofree gchar *netns_path = NULL;
	const gchar *ident;
	gint child_fd;

	g_return_val_if_fail(self->proc == NULL, FALSE);
	if (pasta == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
		                    "NETWORK=outbound needs pasta (Debian package passt) in PATH");
		return FALSE;
	}
	self->netns_fd = qsim_netns_new(error);
	if (self->netns_fd < 0)
		return FALSE;
	child_fd = fcntl(self->netns_fd, F_DUPFD_CLOEXEC, 0);
	if (child_fd < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot pass the namespace on: %s",
		            g_strerror(errno));
		return FALSE;
	}
	log = g_build_filename(self->run_dir, QSIM_NET_OUTBOUND_LOG, NULL);
	forward =
	    g_strdup_printf("127.0.0.1/%u:%u", (guint)self->host_port, (guint)self->host_port);
	netns_path = g_strdup_printf("/proc/self/fd/%d", NETNS_CHILD_FD);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	g_subprocess_launcher_set_cwd(launcher, self->run_dir);
	/* own process group (a stop reaches whatever pasta forks), killed with the daemon */
	g_subprocess_launcher_set_child_setup(launcher, qsim_proc_child_setup, NULL, NULL);
	g_subprocess_launcher_take_fd(launcher, child_fd, NETNS_CHILD_FD);
	/* --runas 0: this pasta drops to "nobody" before it opens the namespace, and then
	 * may not; it still gives up every capability it does not need.
	 * --no-map-gw: the gateway address is not the host's loopback.
	 * -T/-U none: nothing in the namespace is forwarded back to the host. */
	self->proc = g_subprocess_launcher_spawn(
	    launcher, error, pasta, "--runas", "0", "--config-net", "--no-map-gw", "--foreground",
	    "--quiet", "--ipv4-only", "--tcp-ports", forward, "--udp-ports", "none", "-T", "none",
	    "-U", "none", "--netns", netns_path, NULL);
	if (self->proc == NULL) {
		qsim_error_convert(error);
		g_prefix_error(error, "cannot run %s: ", pasta);
		return FALSE;
	}
	ident = g_subprocess_get_identifier(self->proc);
	self->pid = ident != NULL ? (GPid)g_ascii_strtoll(ident, NULL, 10) : 0;
	g_subprocess_wait_async(self->proc, self->cancellable, qsim_net_outbound_wait_cb,
	                        g_object_ref(self));
	return TRUE;
}

/**
 * qsim_net_outbound_get_netns_fd:
 * @self: a started #QsimNetOutbound
 *
 * Returns: the namespace's fd, owned by @self, or -1 before the start
 */
gint
qsim_net_outbound_get_netns_fd(QsimNetOutbound *self)
{
	g_return_val_if_fail(QSIM_IS_NET_OUTBOUND(self), -1);
	return self->netns_fd;
}

/**
 * qsim_net_outbound_get_pid:
 * @self: a #QsimNetOutbound
 *
 * Returns: pasta's pid once started (still set after it exited), else 0
 */
GPid
qsim_net_outbound_get_pid(QsimNetOutbound *self)
{
	g_return_val_if_fail(QSIM_IS_NET_OUTBOUND(self), 0);
	return self->pid;
}

/**
 * qsim_net_outbound_describe_exit:
 * @self: a #QsimNetOutbound whose pasta ended
 *
 * Returns: (transfer full): how pasta ended and the end of its log, as safe UTF-8
 */
gchar *
qsim_net_outbound_describe_exit(QsimNetOutbound *self)
{
	g_autofree gchar *log = g_build_filename(self->run_dir, QSIM_NET_OUTBOUND_LOG, NULL);
	g_autofree gchar *contents = NULL;
	g_autofree gchar *tail = NULL;
	gsize len = 0;
	const gchar *start;
	g_autofree gchar *how = NULL;

	if (self->proc != NULL && self->exited && g_subprocess_get_if_exited(self->proc))
		how = g_strdup_printf("exited with status %d",
		                      g_subprocess_get_exit_status(self->proc));
	else if (self->proc != NULL && self->exited && g_subprocess_get_if_signaled(self->proc))
		how = g_strdup_printf("was killed by signal %d",
		                      g_subprocess_get_term_sig(self->proc));
	else
		how = g_strdup("ended");
	if (!g_file_get_contents(log, &contents, &len, NULL) || len == 0)
		return g_strdup_printf("the network helper pasta %s", how);
	start = len > LOG_TAIL_MAX ? contents + len - LOG_TAIL_MAX : contents;
	tail = qsim_utf8_safe_dup(start, contents + len - start, LOG_TAIL_MAX);
	g_strstrip(tail);
	return g_strdup_printf("the network helper pasta %s: %s", how, tail);
}

/**
 * qsim_net_outbound_stop:
 * @self: a #QsimNetOutbound
 *
 * Kills pasta (one process: it forks nothing in this mode); the reaping happens on the
 * main loop. Safe to call more than once. Call it once QEMU is gone: the namespace goes
 * with the last of them.
 */
void
qsim_net_outbound_stop(QsimNetOutbound *self)
{
	g_return_if_fail(QSIM_IS_NET_OUTBOUND(self));
	if (self->stopping)
		return;
	self->stopping = TRUE;
	/* GSubprocess signals only a child it has not reaped yet: a kill() by pid could hit
	 * a process that reused the number after GLib's worker reaped pasta */
	if (self->proc != NULL && !self->exited)
		g_subprocess_send_signal(self->proc, SIGKILL);
}
