#pragma once

#include "api/qsim-api-context.h"

G_BEGIN_DECLS

typedef void (*QsimApiHandler)(QsimApiContext *ctx);

/**
 * QsimApiRoute:
 * @method: the HTTP method
 * @pattern: the path, with at most one `{name}` segment
 * @handler: the function that answers it
 * @needs_auth: %FALSE for /health, which monitors probe without a token, and
 *   for the dashboard's static files (/, /ui), which hold no secret
 */
typedef struct {
	const gchar *method;
	const gchar *pattern;
	QsimApiHandler handler;
	gboolean needs_auth;
} QsimApiRoute;

const QsimApiRoute *qsim_api_routes_get(guint *n_routes);

const QsimApiRoute *qsim_api_routes_match(const gchar *method, const gchar *path, gchar **param,
                                          gchar **allow);

const gchar *qsim_api_routes_template(const gchar *path);

G_END_DECLS
