#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* deep enough for any document qsim exchanges, far below what overflows a recursive parser */
#define QSIM_JSON_GATE_MAX_DEPTH 64

gboolean qsim_json_gate_check(const gchar *data, gsize len, GError **error);

G_END_DECLS
