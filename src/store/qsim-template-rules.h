#pragma once

/*
 * Private to src/store/: what a backend decides about a template row it has
 * loaded under its lock. Pure: no SQL, no clock.
 */

#include <glib.h>

#include "store/qsim-template-record.h"

G_BEGIN_DECLS

gboolean qsim_template_record_apply_build_claim(QsimTemplateRecord *r, const gchar *builder,
                                                gint64 now, gboolean *out_force);

G_END_DECLS
