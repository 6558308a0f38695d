#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QSIM_REQUEST_FILTER_DEFAULT_LIMIT 50
#define QSIM_REQUEST_FILTER_MAX_LIMIT 10000
#define QSIM_REQUEST_FILTER_TEXT_MIN 3
#define QSIM_REQUEST_FILTER_TEXT_MAX 256

/**
 * QsimRequestFilter:
 *
 * Arguments of qsim_store_list_requests(), on the stack; the strings are
 * borrowed. Initialise with qsim_request_filter_init().
 */
typedef struct {
	gint status;              /* a QsimStatus, or -1 for all */
	const gchar *vm_name;     /* nullable */
	guint limit;              /* 1..QSIM_REQUEST_FILTER_MAX_LIMIT; 0 = default (50) */
	const gchar *before_uuid; /* nullable: only requests submitted before this one */
	const gchar *agent_id;    /* nullable: only requests last claimed by this agent */
	/* nullable: only requests whose commands contain this text, ignoring case;
	 * QSIM_REQUEST_FILTER_TEXT_MIN..MAX bytes (the index is of trigrams) */
	const gchar *text;
	/* 0 = no cap; else the page stops (with has_more) once the rows' text passes
	 * this many bytes, always after at least one row: a caller answering over
	 * HTTP bounds its memory and its response by bytes, not only rows */
	gsize max_bytes;
} QsimRequestFilter;

/* Sets all to "no filter", limit 0 (default) */
void qsim_request_filter_init(QsimRequestFilter *self);

G_END_DECLS
