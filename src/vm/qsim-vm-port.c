#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <gio/gio.h>

#include "common/qsim-error.h"
#include "qsim-vm-port.h"

/* Ports handed out in this process and not yet released: the kernel may give the
 * same ephemeral port to two bind(0) calls once the first probe socket is closed,
 * and two VMs of one daemon must never race for it. Other processes are covered by
 * QsimVm retrying when QEMU cannot set up the forwarding rule. */
static GMutex reserved_lock;
static GHashTable *reserved;

static guint16
qsim_vm_port_probe(GError **error)
{
	g_autoptr(GSocket) sock = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
	g_autoptr(GSocketAddress) bound = NULL;

	sock =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
	if (sock == NULL)
		return 0;
	if (!g_socket_bind(sock, any, FALSE, error))
		return 0;
	bound = g_socket_get_local_address(sock, error);
	if (bound == NULL)
		return 0;
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

/**
 * qsim_vm_port_reserve:
 * @error: return location for a #GError
 *
 * Picks a TCP port on 127.0.0.1 that the kernel reports free and that no other
 * caller in this process holds. The port is not kept bound (QEMU binds it), so a
 * different process may still take it: callers retry on a forwarding failure.
 *
 * Returns: the port, to give back with qsim_vm_port_release(); 0 on error
 */
guint16
qsim_vm_port_reserve(GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&reserved_lock);

	if (reserved == NULL)
		reserved = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (guint attempt = 0; attempt < 32; attempt++) {
		guint16 port = qsim_vm_port_probe(error);

		if (port == 0) {
			qsim_error_convert(error);
			g_prefix_error(error, "cannot pick a free host port: ");
			return 0;
		}
		if (g_hash_table_contains(reserved, GUINT_TO_POINTER(port)))
			continue;
		g_hash_table_add(reserved, GUINT_TO_POINTER(port));
		return port;
	}
	g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_BUSY,
	                    "cannot pick a free host port: every probe returned a reserved one");
	return 0;
}

/**
 * qsim_vm_port_reserve_exact:
 * @port: a port the caller wants, not 0
 *
 * Reserves @port in this process without probing it: whether it is free on the host
 * shows when QEMU binds it.
 *
 * Returns: %TRUE if nobody in this process holds @port; release it as usual
 */
gboolean
qsim_vm_port_reserve_exact(guint16 port)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&reserved_lock);

	g_return_val_if_fail(port != 0, FALSE);
	if (reserved == NULL)
		reserved = g_hash_table_new(g_direct_hash, g_direct_equal);
	if (g_hash_table_contains(reserved, GUINT_TO_POINTER(port)))
		return FALSE;
	g_hash_table_add(reserved, GUINT_TO_POINTER(port));
	return TRUE;
}

/**
 * qsim_vm_port_release:
 * @port: a port from qsim_vm_port_reserve(), or 0 (ignored)
 *
 * Makes @port available to qsim_vm_port_reserve() again.
 */
void
qsim_vm_port_release(guint16 port)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&reserved_lock);

	if (port != 0 && reserved != NULL)
		g_hash_table_remove(reserved, GUINT_TO_POINTER(port));
}
