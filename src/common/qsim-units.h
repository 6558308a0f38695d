#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* 100 years: far beyond any retention, and no overflow in unix ms arithmetic */
#define QSIM_DURATION_MAX_MS (100LL * 366 * 24 * 3600 * 1000)

gboolean qsim_duration_parse(const gchar *text, gint64 *out_ms, GError **error);
gboolean qsim_size_parse(const gchar *text, guint64 *out_bytes, GError **error);

G_END_DECLS
