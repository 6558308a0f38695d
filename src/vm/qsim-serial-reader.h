#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QSIM_TYPE_SERIAL_READER (qsim_serial_reader_get_type())
G_DECLARE_FINAL_TYPE(QsimSerialReader, qsim_serial_reader, QSIM, SERIAL_READER, GObject)

/*
 * QsimSerialReader reads a guest's serial console from a stream and hands out the bytes as
 * they arrive: never waiting for a line end, never decoding (a UTF-8 sequence split across
 * two reads arrives split; consumers that need text decode per their needs).
 *
 * Signals:
 *   "data"   (GBytes *chunk): bytes read, transfer none.
 *   "marker" ():              the ready marker was seen (once); it may span chunks.
 *   "eof"    ():              the stream ended or failed; emitted once.
 *
 * qsim_serial_reader_set_paused() stops reading (backpressure) without losing bytes.
 */

QsimSerialReader *qsim_serial_reader_new(GInputStream *stream, const gchar *marker);
void qsim_serial_reader_start(QsimSerialReader *self);
void qsim_serial_reader_stop(QsimSerialReader *self);
void qsim_serial_reader_set_paused(QsimSerialReader *self, gboolean paused);
gboolean qsim_serial_reader_get_paused(QsimSerialReader *self);
gboolean qsim_serial_reader_get_marker_seen(QsimSerialReader *self);
gboolean qsim_serial_reader_get_eof(QsimSerialReader *self);
gchar *qsim_serial_reader_get_tail(QsimSerialReader *self);
guint64 qsim_serial_reader_get_n_bytes(QsimSerialReader *self);

G_END_DECLS
