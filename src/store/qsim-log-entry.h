#pragma once

#include <glib.h>

#include "store/qsim-log-type.h"

G_BEGIN_DECLS

/**
 * QsimLogEntry:
 *
 * One chunk of a request's log. @output holds the bytes exactly as produced
 * (may contain NULs and invalid UTF-8).
 */
typedef struct {
	gint64 seq;          /* per request, from 1, strictly increasing; ignored on append */
	gint64 timestamp_ms; /* unix ms; 0 on append = the store's clock */
	QsimLogType log_type;
	GBytes *output;
} QsimLogEntry;

/* Returns: (transfer full): a new entry copying @len bytes of @data */
QsimLogEntry *qsim_log_entry_new(QsimLogType log_type, gint64 timestamp_ms, const guint8 *data,
                                 gsize len);

/* Returns: (transfer full): a new entry taking a reference on @output */
QsimLogEntry *qsim_log_entry_new_bytes(QsimLogType log_type, gint64 timestamp_ms, GBytes *output);

/* Returns: (transfer full): a copy sharing the same immutable bytes */
QsimLogEntry *qsim_log_entry_copy(const QsimLogEntry *self);

void qsim_log_entry_free(QsimLogEntry *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimLogEntry, qsim_log_entry_free)

G_END_DECLS
