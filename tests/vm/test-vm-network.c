#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "vm-test-util.h"

/* NETWORK=none against the real tiny guest: the guest must not reach anything on the
 * host's loopback through slirp's 10.0.2.2 (qsimd's API, any other service, the SSH
 * forwards of VMs), while SSH into it keeps working. */

typedef struct {
	gchar *run_root;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->run_root = g_dir_make_tmp("qsim-nettest-XXXXXX", &error);
	g_assert_no_error(error);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_rmdir(f->run_root);
	g_free(f->run_root);
}

/* A listener on the host's 127.0.0.1, like qsimd's API; nobody accepts, so a connection
 * that got through stays queued for connection_count(). */
static GSocket *
listen_loopback(guint16 *port)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	GSocket *sock =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(sock, any, TRUE, &error));
	g_assert_no_error(error);
	g_assert_true(g_socket_listen(sock, &error));
	g_assert_no_error(error);
	g_socket_set_blocking(sock, FALSE);
	bound = g_socket_get_local_address(sock, &error);
	g_assert_no_error(error);
	*port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	return sock;
}

/* How many connections reached @sock (accepted here and closed). */
static guint
connection_count(GSocket *sock)
{
	guint n = 0;

	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GSocket) conn = g_socket_accept(sock, NULL, &error);

		if (conn == NULL) {
			g_assert_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
			return n;
		}
		n++;
	}
}

static gint
guest_run(QsimGuest *guest, const gchar *command, gchar **out)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) o = g_byte_array_new();
	g_autoptr(GByteArray) e = g_byte_array_new();
	gint status = -1;

	g_assert_true(vm_test_exec(guest, command, o, e, &status, &error));
	g_assert_no_error(error);
	g_test_message("guest: %s -> %d, stdout '%.*s', stderr '%.*s'", command, status,
	               (gint)o->len, (const gchar *)o->data, (gint)e->len, (const gchar *)e->data);
	if (out != NULL)
		*out = o->len > 0 ? g_strndup((const gchar *)o->data, o->len) : g_strdup("");
	return status;
}

static void
test_no_host(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GSocket) plain = NULL;
	g_autoptr(GSocket) api = NULL;
	g_autofree gchar *hostname = NULL;
	guint16 plain_port = 0;
	guint16 api_port = 0;
	guint16 targets[3];
	GSocket *listeners[2];

	if (vm_test_skip_without_image())
		return;
	plain = listen_loopback(&plain_port);
	api = listen_loopback(&api_port);
	config = vm_test_load_config("tiny", &error);
	g_assert_no_error(error);
	/* the default, with no NETWORK line in the .conf */
	g_assert_cmpint(config->network, ==, QSIM_VM_NETWORK_NONE);
	vm = qsim_vm_new(g_steal_pointer(&config), f->run_root);
	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(vm, &error));
	g_assert_no_error(error);

	/* SSH through the forward works in this mode */
	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);
	g_assert_cmpint(guest_run(guest, "hostname", &hostname), ==, 0);
	g_assert_cmpstr(hostname, !=, "");

	/* a plain listener, an API-like one spoken to in HTTP, and the VM's own SSH
	 * forward on the host, which stands for every other VM's */
	targets[0] = plain_port;
	targets[1] = api_port;
	targets[2] = qsim_vm_get_ssh_port(vm);
	listeners[0] = plain;
	listeners[1] = api;
	for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
		g_autofree gchar *cmd = g_strdup_printf(
		    "printf 'GET /requests HTTP/1.0\\r\\n\\r\\n' | timeout 10 nc 10.0.2.2 %u",
		    (guint)targets[i]);
		g_autofree gchar *out = NULL;

		g_assert_cmpint(guest_run(guest, cmd, &out), !=, 0);
		/* nothing came back: not the SSH banner of the forward, no HTTP answer */
		g_assert_cmpstr(out, ==, "");
		/* and the listener saw no connection */
		if (i < G_N_ELEMENTS(listeners))
			g_assert_cmpuint(connection_count(listeners[i]), ==, 0);
	}
	/* nothing else from 10.0.2.x either: slirp's DNS and the outside are cut too */
	g_assert_cmpint(guest_run(guest, "timeout 10 nc 10.0.2.3 53 </dev/null", NULL), !=, 0);

	g_assert_cmpuint(connection_count(plain), ==, 0);
	g_assert_cmpuint(connection_count(api), ==, 0);

	/* the forward still answers after the attempts */
	g_clear_object(&guest);
	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);
	g_assert_cmpint(guest_run(guest, "true", NULL), ==, 0);
	g_clear_object(&guest);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/vm/network/none-no-host", Fixture, NULL, fixture_setup, test_no_host,
	           fixture_teardown);
	return g_test_run();
}
