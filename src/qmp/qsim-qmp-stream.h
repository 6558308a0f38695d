#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* QEMU's own monitor caps nothing, so a runaway or hostile peer could make us buffer forever;
 * 10 MiB is libvirt's QEMU_MONITOR_MAX_RESPONSE and far above any real reply. */
#define QSIM_QMP_STREAM_MAX_BUFFER (10 * 1024 * 1024)

#define QSIM_TYPE_QMP_STREAM (qsim_qmp_stream_get_type())
G_DECLARE_FINAL_TYPE(QsimQmpStream, qsim_qmp_stream, QSIM, QMP_STREAM, GObject)

/*
 * QsimQmpStream is the QMP transport: it frames a GIOStream into one JSON object per line
 * (QEMU ends each with "\r\n"), caps buffered input, and queues writes in order. It knows
 * nothing about ids, commands or events; QsimQmpClient does the dispatch.
 *
 * Signals (all emitted on the thread-default main context of the creator):
 *   "message" (JsonObject *msg): one complete JSON object received; transfer none.
 *   "closed"  (GError *error):   emitted exactly once when the stream ends: error is NULL
 *                                 after qsim_qmp_stream_close(), otherwise a QSIM_ERROR_QMP
 *                                 (EOF, malformed JSON, buffer cap) or QSIM_ERROR_IO.
 *
 * Pending I/O holds a reference: call qsim_qmp_stream_close() before dropping the last
 * reference, or the stream lives on until the peer closes. QsimQmpClient does so.
 */

QsimQmpStream *qsim_qmp_stream_new(GIOStream *stream);

void qsim_qmp_stream_set_max_buffer(QsimQmpStream *self, gsize max_buffer);

void qsim_qmp_stream_start(QsimQmpStream *self);

void qsim_qmp_stream_send(QsimQmpStream *self, JsonObject *msg);

void qsim_qmp_stream_send_with_fd(QsimQmpStream *self, JsonObject *msg, gint fd);

gboolean qsim_qmp_stream_can_pass_fds(QsimQmpStream *self);

gboolean qsim_qmp_stream_is_open(QsimQmpStream *self);

gboolean qsim_qmp_stream_get_eof(QsimQmpStream *self);

void qsim_qmp_stream_close(QsimQmpStream *self);

G_END_DECLS
