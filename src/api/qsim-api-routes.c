#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <string.h>

#include "api/qsim-api-handlers.h"
#include "api/qsim-api-routes.h"

/* The single list of what the server answers; the OpenAPI test walks it. */
static const QsimApiRoute routes[] = {
    {"GET", "/requests", qsim_api_requests_list, TRUE},
    {"POST", "/requests", qsim_api_requests_create, TRUE},
    {"DELETE", "/requests", qsim_api_requests_purge, TRUE},
    {"GET", "/requests/{uuid}", qsim_api_requests_get, TRUE},
    {"DELETE", "/requests/{uuid}", qsim_api_requests_delete, TRUE},
    {"GET", "/requests/{uuid}/logs", qsim_api_logs_get, TRUE},
    {"PUT", "/requests/{uuid}/status", qsim_api_requests_set_status, TRUE},
    {"GET", "/requests/{uuid}/artifacts", qsim_api_artifacts_list, TRUE},
    {"GET", "/requests/{uuid}/artifacts.tar.gz", qsim_api_artifacts_tarball, TRUE},
    {"GET", "/requests/{uuid}/artifacts/{name}", qsim_api_artifacts_get, TRUE},
    {"GET", "/vms", qsim_api_vms_list, TRUE},
    {"GET", "/vms/{name}", qsim_api_vms_get, TRUE},
    {"POST", "/vms/{name}/prepare", qsim_api_vms_prepare, TRUE},
    {"GET", "/stats", qsim_api_stats_get, TRUE},
    {"GET", "/stats/history", qsim_api_history_get, TRUE},
    {"GET", "/health", qsim_api_health_get, FALSE},
    {"GET", "/metrics", qsim_api_metrics_get, TRUE},
    {"GET", "/config", qsim_api_config_get, TRUE},
    {"GET", "/openapi.json", qsim_api_openapi_get, TRUE},
    {"GET", "/docs", qsim_api_docs_get, TRUE},
    {"GET", "/events", qsim_api_events_get, TRUE},
    /* the dashboard's files hold no secret; its API calls carry the token */
    {"GET", "/", qsim_api_ui_redirect, FALSE},
    {"GET", "/ui", qsim_api_ui_get, FALSE},
    {"GET", "/ui/{file}", qsim_api_ui_get, FALSE},
};

/**
 * qsim_api_routes_get:
 * @n_routes: (out): the number of routes
 *
 * Returns: (transfer none) (array length=n_routes): the static route table
 */
const QsimApiRoute *
qsim_api_routes_get(guint *n_routes)
{
	*n_routes = G_N_ELEMENTS(routes);
	return routes;
}

/* Segment-wise match without allocating (it runs for every route on every
 * request); a `{x}` segment takes any non-empty segment, except the one after
 * `artifacts/`, which takes the rest of the path (an artifact name has slashes).
 * Only the first parameter is returned: a handler reads `{name}` from the path. */
static gboolean
pattern_matches(const gchar *pattern, const gchar *path, const gchar **param, gsize *param_len)
{
	const gchar *p = pattern;
	const gchar *q = path;

	while (*p != '\0' && *q != '\0') {
		if (*p == '{') {
			const gchar *seg_end = strchr(q, '/');

			if (seg_end == NULL ||
			    (p - pattern >= 10 && strncmp(p - 10, "artifacts/", 10) == 0))
				seg_end = q + strlen(q);
			if (seg_end == q)
				return FALSE;
			if (*param == NULL) {
				*param = q;
				*param_len = (gsize)(seg_end - q);
			}
			p = strchr(p, '}') + 1;
			q = seg_end;
			continue;
		}
		if (*p != *q)
			return FALSE;
		p++;
		q++;
	}
	return *p == '\0' && *q == '\0';
}

/**
 * qsim_api_routes_match:
 * @method: the request method (HEAD is served by the GET route)
 * @path: the normalised path
 * @param: (out) (transfer full) (nullable): the `{uuid}` segment, if any
 * @allow: (out) (transfer full) (nullable): when the path exists but not for
 *   @method, the comma list for the `Allow` header; %NULL otherwise
 *
 * Returns: (transfer none) (nullable): the route, or %NULL (404 when @allow
 * is %NULL, 405 otherwise)
 */
const QsimApiRoute *
qsim_api_routes_match(const gchar *method, const gchar *path, gchar **param, gchar **allow)
{
	g_autoptr(GString) methods = NULL;
	const gchar *m = g_strcmp0(method, "HEAD") == 0 ? "GET" : method;

	*param = NULL;
	*allow = NULL;
	for (guint i = 0; i < G_N_ELEMENTS(routes); i++) {
		const gchar *seg = NULL;
		gsize seg_len = 0;

		if (!pattern_matches(routes[i].pattern, path, &seg, &seg_len))
			continue;
		if (g_strcmp0(routes[i].method, m) == 0) {
			*param = seg != NULL ? g_strndup(seg, seg_len) : NULL;
			return &routes[i];
		}
		if (methods == NULL)
			methods = g_string_new(NULL);
		if (methods->len > 0)
			g_string_append(methods, ", ");
		g_string_append(methods, routes[i].method);
		if (g_strcmp0(routes[i].method, "GET") == 0)
			g_string_append(methods, ", HEAD");
	}
	if (methods != NULL) {
		g_string_append(methods, ", OPTIONS");
		*allow = g_string_free(g_steal_pointer(&methods), FALSE);
	}
	return NULL;
}

/**
 * qsim_api_routes_template:
 * @path: the normalised path
 *
 * The route template a path falls under, whatever the method: the bounded
 * `route` label of the HTTP metrics.
 *
 * Returns: (transfer none) (nullable): the pattern, or %NULL for no route
 */
const gchar *
qsim_api_routes_template(const gchar *path)
{
	for (guint i = 0; i < G_N_ELEMENTS(routes); i++) {
		const gchar *seg = NULL;
		gsize seg_len = 0;

		if (pattern_matches(routes[i].pattern, path, &seg, &seg_len))
			return routes[i].pattern;
	}
	return NULL;
}
