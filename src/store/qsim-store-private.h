#pragma once

/*
 * Private to src/store/: what the qsim-store*.c files implementing QsimStore's
 * public wrappers share.
 */

#include <glib-object.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

#define VM_NAME_MAX 64

enum {
	SIGNAL_REQUEST_CHANGED,
	SIGNAL_REQUEST_DELETED,
	SIGNAL_LOGS_APPENDED,
	SIGNAL_TEMPLATE_CHANGED,
	SIGNAL_CHANGED_ELSEWHERE,
	SIGNAL_LAST
};

/* Filled by qsim_store_class_init() */
extern guint qsim_store_signals[SIGNAL_LAST];

void qsim_store_emit_changed(QsimStore *self, const gchar *uuid, QsimStatus status);
gchar *qsim_store_normalize_uuid(const gchar *uuid, GError **error);
gboolean qsim_store_check_text(const gchar *field, const gchar *value, gsize max_len,
                               GError **error);
gchar *qsim_store_sanitize_reason(const gchar *reason);
void qsim_store_delete_artifact_files(QsimStore *self, const gchar *uuid);
void qsim_store_changes_heard(QsimStore *self);
gboolean qsim_store_check_lease_renewable(const QsimRequest *r, gint64 now_ms, GError **error);

G_END_DECLS
