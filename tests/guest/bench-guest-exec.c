/*
 * Prints how fast QsimGuest moves a command's output, to compare with the
 * OpenSSH client against the same guest in the same minute:
 *
 *   bench-guest-exec PORT KEY 'seq 1 2700000'
 *   time ssh -i KEY -p PORT -o StrictHostKeyChecking=no root@127.0.0.1 'seq 1 2700000' >/dev/null
 *
 * Figures only, no assertions (see tests/bench/ for the product benchmarks).
 */
#include "config.h"

#include <stdlib.h>

#include "guest/qsim-guest.h"

#include "guest-test-util.h"

int
main(int argc, char **argv)
{
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(Result) connected = NULL;
	g_autoptr(Result) r = result_new(FALSE);
	gint64 t0, t1, t2;
	guint64 port;

	if (argc != 4 || !g_ascii_string_to_unsigned(argv[1], 10, 1, 65535, &port, NULL)) {
		g_printerr("usage: %s PORT KEY COMMAND\n", argv[0]);
		return 2;
	}
	guest = qsim_guest_new("127.0.0.1", (guint16)port, "root", argv[2], NULL);
	t0 = g_get_monotonic_time();
	connected = do_connect(guest, 60000, NULL);
	if (connected->error != NULL) {
		g_printerr("%s\n", connected->error->message);
		return 1;
	}
	t1 = g_get_monotonic_time();
	do_exec(guest, argv[3], r);
	t2 = g_get_monotonic_time();
	if (r->error != NULL) {
		g_printerr("%s\n", r->error->message);
		return 1;
	}
	g_print("connect+auth: %.1f ms\n", (t1 - t0) / 1000.0);
	g_print("exec: %" G_GSIZE_FORMAT " bytes stdout, exit %d, %.1f ms, %.2f MB/s\n", r->out_len,
	        r->exit_status, (t2 - t1) / 1000.0, r->out_len / ((t2 - t1) / 1e6) / 1e6);
	g_print("max bytes in flight: %" G_GSIZE_FORMAT "\n",
	        qsim_guest_get_max_bytes_in_flight(guest));
	return 0;
}
