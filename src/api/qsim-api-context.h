#pragma once

#include <libsoup/soup.h>

#include "api/qsim-api-server.h"

G_BEGIN_DECLS

/**
 * QsimApiContext:
 * @server: (not owned) the server that routed the request
 * @msg: (not owned) the message; only valid until the handler returns unless
 *   the handler pauses it and holds a reference
 * @path: (not owned) the request path, without a trailing slash
 * @param: (owned) (nullable) the `{uuid}` path segment when the route has one
 * @query: (owned) the decoded query parameters, never %NULL
 *
 * What a route handler receives. Built by the dispatcher, freed after the
 * handler returns.
 */
typedef struct {
	QsimApiServer *server;
	SoupServerMessage *msg;
	const gchar *path;
	gchar *param;
	GHashTable *query;
} QsimApiContext;

QsimApiContext *qsim_api_context_new(QsimApiServer *server, SoupServerMessage *msg,
                                     const gchar *path, GHashTable *query);

void qsim_api_context_free(QsimApiContext *ctx);

const gchar *qsim_api_context_get_query(QsimApiContext *ctx, const gchar *key);

gboolean qsim_api_context_query_uint(QsimApiContext *ctx, const gchar *key, guint64 min,
                                     guint64 max, guint64 default_value, guint64 *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimApiContext, qsim_api_context_free)

G_END_DECLS
