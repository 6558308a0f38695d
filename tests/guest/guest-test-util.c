#include "config.h"

#include "guest-test-util.h"

Result *
result_new(gboolean keep_out)
{
	Result *r = g_new0(Result, 1);
	r->out = g_byte_array_new();
	r->err = g_byte_array_new();
	r->out_sum = g_checksum_new(G_CHECKSUM_SHA256);
	r->keep_out = keep_out;
	r->exit_status = G_MININT;
	return r;
}

void
result_free(Result *r)
{
	g_clear_error(&r->error);
	g_free(r->exit_signal);
	g_free(r->simple_out);
	g_free(r->simple_err);
	g_byte_array_unref(r->out);
	g_byte_array_unref(r->err);
	g_checksum_free(r->out_sum);
	g_clear_object(&r->cancel_on_output);
	g_free(r);
}

gchar *
result_out(Result *r)
{
	return g_strndup((const gchar *)r->out->data, r->out->len);
}

gchar *
result_err(Result *r)
{
	return g_strndup((const gchar *)r->err->data, r->err->len);
}

void
wait_done(Result *r)
{
	while (!r->done)
		g_main_context_iteration(NULL, TRUE);
}

void
output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	Result *r = user_data;
	gsize size = 0;
	const guint8 *data = g_bytes_get_data(chunk, &size);

	g_assert_cmpuint(size, >, 0);
	g_assert_false(r->done);
	r->chunks++;
	if (stream == QSIM_GUEST_STREAM_STDOUT) {
		g_checksum_update(r->out_sum, data, size);
		r->out_len += size;
		if (r->keep_out)
			g_byte_array_append(r->out, data, size);
	} else {
		g_assert_cmpint(stream, ==, QSIM_GUEST_STREAM_STDERR);
		g_byte_array_append(r->err, data, size);
	}
	if (r->cancel_on_output != NULL)
		g_cancellable_cancel(r->cancel_on_output);
	if (r->close_on_output != NULL)
		qsim_guest_close(g_steal_pointer(&r->close_on_output));
}

void
connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->ok = qsim_guest_connect_finish(QSIM_GUEST(source), res, &r->error);
	r->done = TRUE;
}

void
exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->ok = qsim_guest_exec_finish(QSIM_GUEST(source), res, &r->exit_status, &r->exit_signal,
	                               &r->error);
	r->done = TRUE;
}

void
simple_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Result *r = user_data;
	r->ok = qsim_guest_run_simple_finish(QSIM_GUEST(source), res, &r->simple_out,
	                                     &r->simple_err, &r->error);
	r->done = TRUE;
}

Result *
do_connect(QsimGuest *guest, gint64 timeout_ms, GCancellable *cancellable)
{
	Result *r = result_new(TRUE);
	qsim_guest_connect_async(guest, g_get_monotonic_time() + timeout_ms * 1000, cancellable,
	                         connect_cb, r);
	wait_done(r);
	return r;
}

Result *
do_exec(QsimGuest *guest, const gchar *command, Result *r)
{
	qsim_guest_exec_async(guest, command, output_cb, r, r->cancel_on_output, exec_cb, r);
	wait_done(r);
	return r;
}

guint16
closed_port(void)
{
	g_autoptr(GSocket) socket = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;

	socket =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, address, FALSE, &error));
	bound = g_socket_get_local_address(socket, &error);
	g_assert_no_error(error);
	/* closing without listen leaves the port refusing connections */
	return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}
