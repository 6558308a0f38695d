#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm/qsim-netns.h"

#include "vm-test-util.h"

/* NETWORK=none and NETWORK=outbound against the real tiny guest: the guest must not
 * reach anything on the host's loopback (qsimd's API, any other service, the SSH forwards
 * of VMs), while SSH into it keeps working; outbound must also reach the outside, which
 * a network namespace made here, behind a veth pair, stands in for. */

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

/* Boots the tiny guest with @network and waits until its SSH forward answers. */
static QsimVm *
boot_tiny(Fixture *f, QsimVmNetwork network)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = vm_test_load_config("tiny", &error);
	QsimVm *vm;

	g_assert_no_error(error);
	config->network = network;
	vm = qsim_vm_new(g_steal_pointer(&config), f->run_root);
	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(vm, &error));
	g_assert_no_error(error);
	return vm;
}

/* From the guest, 10.0.2.2 at each port, spoken to in HTTP like qsimd's API: refused,
 * nothing comes back (no SSH banner of a forward, no HTTP answer), and none of
 * @listeners (one per port, or NULL) sees a connection. */
static void
assert_gateway_refused(QsimGuest *guest, const guint16 *ports, GSocket *const *listeners, guint n)
{
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *cmd = g_strdup_printf(
		    "printf 'GET /requests HTTP/1.0\\r\\n\\r\\n' | timeout 10 nc 10.0.2.2 %u",
		    (guint)ports[i]);
		g_autofree gchar *out = NULL;

		g_assert_cmpint(guest_run(guest, cmd, &out), !=, 0);
		g_assert_cmpstr(out, ==, "");
		if (listeners[i] != NULL)
			g_assert_cmpuint(connection_count(listeners[i]), ==, 0);
	}
}

/* The forward still answers after the attempts; then the VM goes. */
static void
reconnect_and_stop(QsimVm *vm)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimGuest) guest = vm_test_guest_connect(vm, &error);

	g_assert_no_error(error);
	g_assert_cmpint(guest_run(guest, "true", NULL), ==, 0);
	g_clear_object(&guest);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
}

static void
test_no_host(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) def = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GSocket) plain = NULL;
	g_autoptr(GSocket) api = NULL;
	g_autofree gchar *hostname = NULL;
	guint16 plain_port = 0;
	guint16 api_port = 0;
	guint16 targets[3];
	GSocket *listeners[3];

	if (vm_test_skip_without_image())
		return;
	plain = listen_loopback(&plain_port);
	api = listen_loopback(&api_port);
	/* the default, with no NETWORK line in the .conf */
	def = vm_test_load_config("tiny", &error);
	g_assert_no_error(error);
	g_assert_cmpint(def->network, ==, QSIM_VM_NETWORK_NONE);
	vm = boot_tiny(f, QSIM_VM_NETWORK_NONE);

	/* SSH through the forward works in this mode */
	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);
	g_assert_cmpint(guest_run(guest, "hostname", &hostname), ==, 0);
	g_assert_cmpstr(hostname, !=, "");

	/* a plain listener, an API-like one, and the VM's own SSH forward on the host,
	 * which stands for every other VM's */
	targets[0] = plain_port;
	targets[1] = api_port;
	targets[2] = qsim_vm_get_ssh_port(vm);
	listeners[0] = plain;
	listeners[1] = api;
	listeners[2] = NULL;
	assert_gateway_refused(guest, targets, listeners, G_N_ELEMENTS(targets));
	/* nothing else from 10.0.2.x either: slirp's DNS and the outside are cut too */
	g_assert_cmpint(guest_run(guest, "timeout 10 nc 10.0.2.3 53 </dev/null", NULL), !=, 0);

	g_assert_cmpuint(connection_count(plain), ==, 0);
	g_assert_cmpuint(connection_count(api), ==, 0);
	g_clear_object(&guest);
	reconnect_and_stop(vm);
}

/* ---- NETWORK=outbound ---------------------------------------------------- */

/* The outside world: a namespace of the test's own, reached from the host through a veth
 * pair with addresses in 198.18.0.0/15 (set aside for benchmarks, never routed). */
typedef struct {
	gchar *netns;
	gchar *veth_host;
	gchar *addr_host;
	gchar *addr_far;
} Upstream;

static gboolean
run_ip(GError **error, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree gchar *err = NULL;
	gint status = 0;
	va_list ap;
	const gchar *arg;

	g_ptr_array_add(argv, (gpointer) "ip");
	va_start(ap, error);
	while ((arg = va_arg(ap, const gchar *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	if (!g_spawn_sync(NULL, (gchar **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
	                  &err, &status, error))
		return FALSE;
	if (!g_spawn_check_wait_status(status, error)) {
		g_prefix_error(error, "ip %s: %s: ", (const gchar *)argv->pdata[1], err);
		return FALSE;
	}
	return TRUE;
}

static void
upstream_free(Upstream *up)
{
	/* deleting the namespace takes the veth pair with it */
	if (up->netns != NULL && !run_ip(NULL, "netns", "del", up->netns, NULL))
		g_test_message("could not delete netns %s", up->netns);
	g_free(up->netns);
	g_free(up->veth_host);
	g_free(up->addr_host);
	g_free(up->addr_far);
	g_free(up);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Upstream, upstream_free)

static Upstream *
upstream_new(void)
{
	g_autoptr(GError) error = NULL;
	Upstream *up = g_new0(Upstream, 1);
	guint id = (guint)getpid() % 100000;
	g_autofree gchar *peer = g_strdup_printf("qsu%ub", id);
	g_autofree gchar *host_cidr = NULL;
	g_autofree gchar *far_cidr = NULL;

	up->netns = g_strdup_printf("qsim-up-%u", id);
	up->veth_host = g_strdup_printf("qsu%ua", id);
	up->addr_host = g_strdup_printf("198.18.%u.%u", (id / 64) % 256, (id % 64) * 4 + 1);
	up->addr_far = g_strdup_printf("198.18.%u.%u", (id / 64) % 256, (id % 64) * 4 + 2);
	host_cidr = g_strdup_printf("%s/30", up->addr_host);
	far_cidr = g_strdup_printf("%s/30", up->addr_far);
	run_ip(NULL, "netns", "del", up->netns, NULL); /* a leftover of a crashed run */
	g_assert_true(run_ip(&error, "netns", "add", up->netns, NULL));
	g_assert_no_error(error);
	g_assert_true(run_ip(&error, "link", "add", up->veth_host, "type", "veth", "peer", "name",
	                     peer, "netns", up->netns, NULL));
	g_assert_no_error(error);
	g_assert_true(run_ip(&error, "addr", "add", host_cidr, "dev", up->veth_host, NULL));
	g_assert_true(run_ip(&error, "link", "set", up->veth_host, "up", NULL));
	g_assert_true(run_ip(&error, "-n", up->netns, "addr", "add", far_cidr, "dev", peer, NULL));
	g_assert_true(run_ip(&error, "-n", up->netns, "link", "set", peer, "up", NULL));
	g_assert_true(run_ip(&error, "-n", up->netns, "link", "set", "lo", "up", NULL));
	g_assert_no_error(error);
	return up;
}

typedef struct {
	const gchar *netns_path;
	const gchar *addr;
	gint fd;
	guint16 port;
} FarListen;

/* A socket keeps the namespace it was made in, so a thread that enters the upstream
 * namespace can open a listener there for the test to accept on. */
static gpointer
far_listen_thread(gpointer user_data)
{
	FarListen *l = user_data;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	gint ns = open(l->netns_path, O_RDONLY | O_CLOEXEC);

	if (ns < 0 || !qsim_netns_enter(ns))
		return NULL;
	close(ns);
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, l->addr, &sin.sin_addr);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(l->fd, 8) != 0 || getsockname(l->fd, (struct sockaddr *)&sin, &len) != 0)
		return NULL;
	l->port = ntohs(sin.sin_port);
	return NULL;
}

static GSocket *
listen_upstream(Upstream *up, guint16 *port)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = g_strdup_printf("/run/netns/%s", up->netns);
	FarListen l = {.netns_path = path, .addr = up->addr_far, .fd = -1};
	GSocket *sock;

	g_thread_join(g_thread_new("far-listen", far_listen_thread, &l));
	g_assert_cmpint(l.fd, >=, 0);
	g_assert_cmpuint(l.port, !=, 0);
	sock = g_socket_new_from_fd(l.fd, &error);
	g_assert_no_error(error);
	g_socket_set_blocking(sock, FALSE);
	*port = l.port;
	return sock;
}

/* The interface of the host's default route, from /proc/net/route. */
static gchar *
default_route_interface(void)
{
	g_autofree gchar *table = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_true(g_file_get_contents("/proc/net/route", &table, NULL, NULL));
	lines = g_strsplit(table, "\n", -1);
	for (guint i = 1; lines[i] != NULL; i++) {
		g_auto(GStrv) cols = g_strsplit_set(lines[i], " \t", -1);
		g_autoptr(GPtrArray) f = g_ptr_array_new();

		for (guint k = 0; cols[k] != NULL; k++)
			if (cols[k][0] != '\0')
				g_ptr_array_add(f, cols[k]);
		if (f->len > 2 && g_strcmp0(f->pdata[1], "00000000") == 0)
			return g_strdup(f->pdata[0]);
	}
	return NULL;
}

/* The host's own IPv4 addresses on @iface (or on every other interface), loopback and
 * the test's veth aside. */
static GPtrArray *
host_addresses(const Upstream *up, const gchar *iface, gboolean on_iface)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	struct ifaddrs *ifa = NULL;

	g_assert_cmpint(getifaddrs(&ifa), ==, 0);
	for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
		gchar buf[INET_ADDRSTRLEN];

		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET)
			continue;
		if ((g_strcmp0(i->ifa_name, iface) == 0) != on_iface)
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
		          sizeof(buf));
		if (g_str_has_prefix(buf, "127.") || g_strcmp0(buf, up->addr_host) == 0)
			continue;
		g_ptr_array_add(out, g_strdup(buf));
	}
	freeifaddrs(ifa);
	return out;
}

/* A listener on every host address (0.0.0.0): whatever of it the guest reaches counts. */
static GSocket *
listen_any(guint16 *port)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GInetAddress) any = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(any, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	GSocket *sock =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(sock, addr, TRUE, &error));
	g_assert_true(g_socket_listen(sock, &error));
	g_assert_no_error(error);
	g_socket_set_blocking(sock, FALSE);
	bound = g_socket_get_local_address(sock, &error);
	g_assert_no_error(error);
	*port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
	return sock;
}

static gboolean
outbound_skip(void)
{
	g_autofree gchar *pasta = g_find_program_in_path("pasta");
	g_autofree gchar *ip = g_find_program_in_path("ip");

	if (vm_test_skip_without_image())
		return TRUE;
	if (geteuid() == 0 && pasta != NULL && ip != NULL)
		return FALSE;
	/* CI runs as root with passt installed: there a skip would hide a broken mode */
	if (g_getenv("QSIM_REQUIRE_VM") != NULL)
		g_error("QSIM_REQUIRE_VM is set but NETWORK=outbound cannot be tested: it needs "
		        "root, pasta (package passt) and ip (package iproute2)");
	g_test_skip("NETWORK=outbound needs root, pasta and ip");
	return TRUE;
}

static void
test_outbound(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GSocket) plain = NULL;
	g_autoptr(GSocket) api = NULL;
	g_autoptr(GSocket) any = NULL;
	g_autoptr(GSocket) far = NULL;
	g_autoptr(Upstream) up = NULL;
	g_autoptr(GPtrArray) addrs = NULL;
	g_autoptr(GPtrArray) others = NULL;
	g_autofree gchar *iface = NULL;
	g_autofree gchar *cmd = NULL;
	g_autofree gchar *out = NULL;
	guint16 plain_port = 0, api_port = 0, any_port = 0, far_port = 0, ssh_port;
	guint16 targets[2];
	GSocket *listeners[2];

	if (outbound_skip())
		return;
	up = upstream_new();
	far = listen_upstream(up, &far_port);
	plain = listen_loopback(&plain_port);
	api = listen_loopback(&api_port);
	any = listen_any(&any_port);
	iface = default_route_interface();
	g_assert_nonnull(iface);
	addrs = host_addresses(up, iface, TRUE);
	g_assert_cmpuint(addrs->len, >, 0);
	others = host_addresses(up, iface, FALSE);
	vm = boot_tiny(f, QSIM_VM_NETWORK_OUTBOUND);
	ssh_port = qsim_vm_get_ssh_port(vm);

	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);

	/* the outside is reached: the far listener gets the connection and the guest's
	 * bytes (nobody answers, so nc waits until timeout ends it) */
	cmd = g_strdup_printf("echo qsim-outbound | timeout 5 nc %s %u", up->addr_far,
	                      (guint)far_port);
	guest_run(guest, cmd, NULL);
	{
		g_autoptr(GSocket) conn = g_socket_accept(far, NULL, &error);
		gchar buf[64] = {0};
		gssize n;

		g_assert_no_error(error);
		g_socket_set_blocking(conn, TRUE);
		g_socket_set_timeout(conn, 10);
		n = g_socket_receive(conn, buf, sizeof(buf) - 1, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpint(n, >, 0);
		g_assert_cmpstr(buf, ==, "qsim-outbound\n");
	}

	/* the host's loopback is not: not through the gateway, which plain slirp maps
	 * there, for a plain listener (as another VM's SSH forward would be) and an
	 * API-like one. The gateway is the namespace's loopback here, where the one
	 * listener is QEMU's own forward back to this guest's sshd. */
	targets[0] = plain_port;
	targets[1] = api_port;
	listeners[0] = plain;
	listeners[1] = api;
	assert_gateway_refused(guest, targets, listeners, G_N_ELEMENTS(targets));
	/* nor the host's own address on its outbound interface: the namespace holds a copy
	 * of it, so the connection ends there */
	for (guint i = 0; i < addrs->len; i++) {
		g_autofree gchar *c =
		    g_strdup_printf("timeout 10 nc %s %u </dev/null",
		                    (const gchar *)addrs->pdata[i], (guint)any_port);

		g_assert_cmpint(guest_run(guest, c, NULL), !=, 0);
	}
	g_assert_cmpuint(connection_count(any), ==, 0);
	/* the host's other addresses are the outside as the guest sees it (docs/network.md
	 * says so): logged, not asserted */
	for (guint i = 0; i < others->len; i++) {
		g_autofree gchar *c =
		    g_strdup_printf("timeout 5 nc %s %u </dev/null",
		                    (const gchar *)others->pdata[i], (guint)any_port);

		g_test_message("other host address %s: %s", (const gchar *)others->pdata[i],
		               guest_run(guest, c, NULL) == 0 ? "reached" : "not reached");
	}
	connection_count(any);
	/* nor a root guest that routes 127.0.0.1 out through the gateway: that packet meets
	 * the namespace's loopback, where nothing of the host listens (with passt this
	 * reached the host, docs/network.md). First the route must really be in place. */
	g_assert_cmpint(
	    guest_run(guest,
	              "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && "
	              "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && "
	              "ip route del local 127.0.0.0/8 table local; "
	              "ip route del local 127.0.0.1 table local; "
	              "ip route add 127.0.0.1/32 via 10.0.2.2 && ip route get 127.0.0.1",
	              &out),
	    ==, 0);
	g_assert_nonnull(strstr(out, "via 10.0.2.2"));
	g_free(cmd);
	/* nc must have run and failed: its status is printed, and nothing else came back
	 * (slirp drops a packet for 127.0.0.1 outright; in the host's namespace it would
	 * not matter either, since 10.0.2.2 is the namespace's own loopback) */
	cmd = g_strdup_printf("timeout -s KILL 10 nc 127.0.0.1 %u </dev/null; echo \"rc=$?\"",
	                      (guint)plain_port);
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(guest_run(guest, cmd, &out), ==, 0);
	g_assert_true(g_str_has_prefix(out, "rc="));
	g_assert_cmpstr(out, !=, "rc=0\n");

	g_assert_cmpuint(connection_count(plain), ==, 0);
	g_assert_cmpuint(connection_count(api), ==, 0);

	g_clear_object(&guest);
	reconnect_and_stop(vm);

	/* pasta went with QEMU: its port on the host is free again */
	{
		g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
		g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, ssh_port);
		g_autoptr(GSocket) probe = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
		                                        G_SOCKET_PROTOCOL_TCP, &error);
		gboolean bound = FALSE;

		g_assert_no_error(error);
		/* the reaping happens on the main loop: give it a moment */
		for (guint i = 0; i < 100 && !bound; i++) {
			g_autoptr(GError) e = NULL;

			bound = g_socket_bind(probe, addr, TRUE, &e);
			while (!bound && g_main_context_iteration(NULL, FALSE))
				;
			if (!bound)
				g_usleep(50000);
		}
		g_assert_true(bound);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/vm/network/none-no-host", Fixture, NULL, fixture_setup, test_no_host,
	           fixture_teardown);
	g_test_add("/qsim/vm/network/outbound", Fixture, NULL, fixture_setup, test_outbound,
	           fixture_teardown);
	return g_test_run();
}
