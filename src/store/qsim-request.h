#pragma once

#include <glib.h>

#include "store/qsim-start-mode.h"
#include "store/qsim-status.h"

G_BEGIN_DECLS

/**
 * QsimRequest:
 *
 * One row of the requests table, as a plain record owned by the caller.
 * Times are unix milliseconds (UTC); 0 means unset (NULL in the API).
 */
typedef struct {
	gchar *uuid; /* lowercase v4 UUID */
	gchar *vm_name;
	gchar *commands;
	gint64 timeout_s;
	QsimStatus status;
	gint64 created_at;
	gint64 updated_at;
	gint64 started_at;
	gint64 finished_at;
	gboolean has_exit_code;
	gint exit_code;
	gchar *error;              /* nullable: why it failed or was cancelled */
	gchar *agent_id;           /* nullable: the agent that claimed it last */
	gint64 lease_expires_at;   /* 0 = no lease: no agent holds a VM for it */
	guint attempts;            /* number of claims */
	QsimStatus held_from;      /* status before hold; only meaningful while status is hold */
	QsimStartMode start_mode;  /* none until the VM started */
	gboolean output_truncated; /* OUTPUT_LIMIT cut its stored output */
	gchar **artifact_paths; /* nullable: guest paths or globs to collect after the commands */
	gchar *upload_id;       /* nullable, creation only: the spooled uploads it takes */
} QsimRequest;

/* Returns: (transfer full): a zeroed request with status pending */
QsimRequest *qsim_request_new(void);

/* Returns: (transfer full): a deep copy */
QsimRequest *qsim_request_copy(const QsimRequest *self);

void qsim_request_free(QsimRequest *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimRequest, qsim_request_free)

G_END_DECLS
