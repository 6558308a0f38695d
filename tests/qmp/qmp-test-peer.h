#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "qmp/qsim-qmp-client.h"

G_BEGIN_DECLS

/*
 * A fake QEMU monitor for unit tests: the far end of a socketpair, driven synchronously by
 * the test while the code under test runs asynchronously on the same main context. It can
 * replay a transcript recorded from a real QEMU (the .jsonl files in tests/data/qmp/), rewriting
 * the reply ids to the ones the client chose.
 */
typedef struct {
	GSocketConnection *conn;
	GDataInputStream *in;
	GOutputStream *out;
	GPtrArray *script; /* of JsonObject, one per transcript line */
	guint pos;
	gboolean eof; /* the client closed its end */
} QmpTestPeer;

QmpTestPeer *qmp_test_peer_new(GIOStream **client_side);
QmpTestPeer *qmp_test_peer_new_for_connection(GSocketConnection *conn);
void qmp_test_peer_free(QmpTestPeer *peer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpTestPeer, qmp_test_peer_free)

void qmp_test_peer_load(QmpTestPeer *peer, const gchar *name);
void qmp_test_peer_send_line(QmpTestPeer *peer, const gchar *line);
void qmp_test_peer_send_bytes(QmpTestPeer *peer, const void *data, gsize len);
JsonObject *qmp_test_peer_read_command(QmpTestPeer *peer);
void qmp_test_peer_reply(QmpTestPeer *peer, JsonObject *command, const gchar *return_json);
void qmp_test_peer_play_greeting(QmpTestPeer *peer);
void qmp_test_peer_serve(QmpTestPeer *peer);
const gchar *qmp_test_peer_find_recv(QmpTestPeer *peer, const gchar *needle, guint nth);
void qmp_test_peer_close(QmpTestPeer *peer);

/* A ready client on @client_io, after the transcript's greeting and qmp_capabilities. */
QsimQmpClient *qmp_test_connect(QmpTestPeer *peer, GIOStream *client_io);

/* Runs the thread-default main context until *slot is set by qmp_test_store_result(). */
void qmp_test_store_result(GObject *source, GAsyncResult *res, gpointer slot);
GAsyncResult *qmp_test_wait(GAsyncResult **slot);
void qmp_test_iterate_idle(void);

G_END_DECLS
