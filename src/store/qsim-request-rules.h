#pragma once

/*
 * Private to src/store/: what a backend decides about a request row it has
 * loaded (and locked) inside its transaction. Pure: no SQL, no clock; each
 * function checks the call against the row and, when allowed, changes the row
 * in memory for the backend to write back with its one UPDATE. On error the
 * row may be half changed and must be dropped with the transaction.
 */

#include <glib.h>

#include "store/qsim-request.h"

G_BEGIN_DECLS

gboolean qsim_request_check_owner(const QsimRequest *r, const gchar *agent_id, GError **error);
gboolean qsim_request_check_deletable(const QsimRequest *r, GError **error);
gboolean qsim_request_check_vm_held(const QsimRequest *r, GError **error);
gboolean qsim_request_page_trim(GPtrArray *rows, guint limit, gboolean cut);
QsimRequest *qsim_request_pick_by_prefix(GPtrArray *rows, guint shown, const gchar *prefix,
                                         GError **error);

gboolean qsim_request_apply_user_status(QsimRequest *r, QsimStatus to, gint64 now, GError **error);
gboolean qsim_request_apply_claim(QsimRequest *r, const gchar *agent_id, gint64 lease_ms,
                                  gint64 now, GError **error);
gboolean qsim_request_apply_running(QsimRequest *r, const gchar *agent_id, gint64 now,
                                    GError **error);
gboolean qsim_request_apply_finish(QsimRequest *r, const gchar *agent_id, QsimStatus final,
                                   gboolean has_exit_code, gint exit_code, const gchar *error_msg,
                                   gint64 now, GError **error);
gboolean qsim_request_apply_recover(QsimRequest *r, const gchar *expected_agent_id, gboolean retry,
                                    const gchar *reason, gint64 now, GError **error);

G_END_DECLS
