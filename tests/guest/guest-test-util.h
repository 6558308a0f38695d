#pragma once

/* Helpers shared by the guest tests: drive QsimGuest's async calls to completion. */

#include <gio/gio.h>

#include "guest/qsim-guest.h"

/* Collects everything one exec or connect reports. */
typedef struct {
	gboolean done;
	gboolean ok;
	GError *error;
	gint exit_status;
	gchar *exit_signal;
	GByteArray *out;
	GByteArray *err;
	GChecksum *out_sum;
	gsize out_len;
	gboolean keep_out; /* FALSE: only checksum stdout (large outputs) */
	gchar *simple_out;
	gchar *simple_err;
	/* actions taken from the output callback */
	GCancellable *cancel_on_output;
	QsimGuest *close_on_output;
	guint chunks;
} Result;

Result *result_new(gboolean keep_out);
void result_free(Result *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Result, result_free)

/* Returns (transfer full): what was received on stdout / stderr, NUL-terminated. */
gchar *result_out(Result *r);
gchar *result_err(Result *r);

/* Iterates the thread-default main context until @r's operation completed. */
void wait_done(Result *r);

/* QsimGuestOutputFunc: appends to @user_data (a Result) and runs its on-output actions. */
void output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data);
void connect_cb(GObject *source, GAsyncResult *res, gpointer user_data);
void exec_cb(GObject *source, GAsyncResult *res, gpointer user_data);
void simple_cb(GObject *source, GAsyncResult *res, gpointer user_data);

/* Returns (transfer full): the finished connect. */
Result *do_connect(QsimGuest *guest, gint64 timeout_ms, GCancellable *cancellable);

/* Runs @command to completion, collecting into @r; returns @r (transfer none). */
Result *do_exec(QsimGuest *guest, const gchar *command, Result *r);

/* Fails the test, showing the whole message, unless @err's message contains @needle. */
#define assert_error_mentions(err, needle)                                                         \
	G_STMT_START                                                                               \
	{                                                                                          \
		g_assert_nonnull(err);                                                             \
		if (strstr((err)->message, (needle)) == NULL)                                      \
			g_error("error \"%s\" does not mention \"%s\"", (err)->message, (needle)); \
	}                                                                                          \
	G_STMT_END

/* A loopback TCP port that refuses connections (bound, then closed). */
guint16 closed_port(void);
