/* The ceiling of the HTTP layer: a libsoup server that answers every request
 * with the same small JSON and touches no database. tests/bench/api compares
 * qsimd against it. Listens on 127.0.0.1 only. */
#define G_LOG_DOMAIN "qsim-bench"

#include "config.h"

#include <glib-unix.h>
#include <libsoup/soup.h>
#include <signal.h>

static const gchar reply[] = "{\"uuid\":\"123e4567-e89b-42d3-a456-426614174000\",\"status\":"
                             "\"pending\",\"message\":\"Request created successfully\"}";

static void
handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
        gpointer user_data)
{
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC, reply,
	                                 sizeof reply - 1);
}

static gboolean
on_signal(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
	g_autoptr(SoupServer) server = soup_server_new(NULL, NULL);
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GInetAddress) addr = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GError) error = NULL;
	guint64 port = 0;

	if (argc != 2 || !g_ascii_string_to_unsigned(argv[1], 10, 1, 65535, &port, NULL)) {
		g_printerr("usage: %s PORT\n", argv[0]);
		return 2;
	}
	sa = g_inet_socket_address_new(addr, (guint16)port);
	soup_server_add_handler(server, NULL, handler, NULL, NULL);
	if (!soup_server_listen(server, sa, 0, &error)) {
		g_printerr("%s\n", error->message);
		return 1;
	}
	g_unix_signal_add(SIGTERM, on_signal, loop);
	g_unix_signal_add(SIGINT, on_signal, loop);
	g_main_loop_run(loop);
	return 0;
}
