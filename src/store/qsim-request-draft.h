#pragma once

#include <glib.h>

#include "store/qsim-request.h"

G_BEGIN_DECLS

/**
 * QsimRequestDraft:
 *
 * One entry of a batch submission (qsim_store_create_requests()): what to
 * insert, and afterwards what became of it. Exactly one of @request and
 * @error is set once the batch has run.
 */
typedef struct {
	gchar *vm_name;
	gchar *commands;
	gint64 timeout_s;
	gchar **artifact_paths; /* nullable: see QsimRequest */
	gchar *upload_id;       /* nullable: see QsimRequest */
	QsimRequest *request;   /* out, owned: the committed pending row */
	GError *error;          /* out, owned: why this entry was not created */
} QsimRequestDraft;

/* Returns: (transfer full): a draft copying the three inputs, with no outcome yet */
QsimRequestDraft *qsim_request_draft_new(const gchar *vm_name, const gchar *commands,
                                         gint64 timeout_s);

void qsim_request_draft_free(QsimRequestDraft *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimRequestDraft, qsim_request_draft_free)

G_END_DECLS
