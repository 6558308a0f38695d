#define G_LOG_DOMAIN "qsim-vm"

/* unshare() and setns() */
#define _GNU_SOURCE

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qsim-netns.h"

/* A network namespace is a per-thread attribute, so a short-lived thread can make one
 * and hand out a reference to it (an fd) without moving the daemon itself; unsharing the
 * user namespace would need a single-threaded process, which qsimd is not. */

typedef struct {
	gint fd;
	gint saved_errno;
	const gchar *what;
} NetnsResult;

/* The loopback of a new namespace is down and has no 127.0.0.1: QEMU's SSH forward binds
 * there, and pasta's forward from the host connects to it. */
static gboolean
loopback_up(void)
{
	struct ifreq ifr = {0};
	gint sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	gboolean ok;

	if (sock < 0)
		return FALSE;
	g_strlcpy(ifr.ifr_name, "lo", sizeof(ifr.ifr_name));
	ok = ioctl(sock, SIOCGIFFLAGS, &ifr) == 0;
	if (ok) {
		ifr.ifr_flags |= IFF_UP;
		ok = ioctl(sock, SIOCSIFFLAGS, &ifr) == 0;
	}
	close(sock);
	return ok;
}

static gpointer
netns_thread(gpointer user_data)
{
	NetnsResult *result = user_data;

	if (unshare(CLONE_NEWNET) != 0) {
		result->saved_errno = errno;
		result->what = "cannot create a network namespace";
		return NULL;
	}
	if (!loopback_up()) {
		result->saved_errno = errno;
		result->what = "cannot bring up the loopback of a new network namespace";
		return NULL;
	}
	result->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (result->fd < 0) {
		result->saved_errno = errno;
		result->what = "cannot open a new network namespace";
	}
	/* the thread ends here, still inside the namespace: the fd keeps it alive */
	return NULL;
}

/**
 * qsim_netns_new:
 * @error: return location for a #GError
 *
 * Creates a network namespace with only its loopback, up. It needs root (CAP_SYS_ADMIN).
 *
 * Returns: an fd on the namespace (close-on-exec), or -1 with @error set
 */
gint
qsim_netns_new(GError **error)
{
	NetnsResult result = {.fd = -1};
	GThread *thread;
	gint high;
	gint saved_errno;

	if (geteuid() != 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "NETWORK=outbound needs qsimd to run as root: each VM gets a "
		                    "network namespace of its own (see docs/network.md)");
		return -1;
	}
	thread = g_thread_try_new("qsim-netns", netns_thread, &result, error);
	if (thread == NULL) {
		qsim_error_convert(error);
		return -1;
	}
	g_thread_join(thread);
	if (result.fd < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "%s: %s", result.what,
		            g_strerror(result.saved_errno));
		return -1;
	}
	/* above the fds a spawn puts in place before the child setup runs (stdio, QMP, the
	 * incoming state): setns on one of those would fail, and the child with it */
	high = fcntl(result.fd, F_DUPFD_CLOEXEC, QSIM_NETNS_MIN_FD);
	saved_errno = errno;
	close(result.fd);
	if (high < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot keep a network namespace: %s",
		            g_strerror(saved_errno));
		return -1;
	}
	return high;
}

/**
 * qsim_netns_enter:
 * @netns_fd: an fd from qsim_netns_new()
 *
 * Moves the calling thread into the namespace. Async-signal-safe, for a child between
 * fork and exec.
 *
 * Returns: %TRUE on success, else errno is set
 */
gboolean
qsim_netns_enter(gint netns_fd)
{
	return setns(netns_fd, CLONE_NEWNET) == 0;
}
