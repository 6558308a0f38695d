#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-context.h"
#include "api/qsim-api-error.h"

/**
 * qsim_api_context_new:
 * @server: (not owned) the server
 * @msg: (not owned) the message
 * @path: (not owned) the normalised path; must outlive the context
 * @query: (transfer full) (nullable): decoded query parameters
 *
 * Returns: (transfer full): a new context, free with qsim_api_context_free()
 */
QsimApiContext *
qsim_api_context_new(QsimApiServer *server, SoupServerMessage *msg, const gchar *path,
                     GHashTable *query)
{
	QsimApiContext *ctx = g_new0(QsimApiContext, 1);

	ctx->server = server;
	ctx->msg = msg;
	ctx->path = path;
	ctx->query = query != NULL ? query : g_hash_table_new(g_str_hash, g_str_equal);
	return ctx;
}

void
qsim_api_context_free(QsimApiContext *ctx)
{
	if (ctx == NULL)
		return;
	g_free(ctx->param);
	g_hash_table_unref(ctx->query);
	g_free(ctx);
}

/**
 * qsim_api_context_get_query:
 *
 * Returns: (transfer none) (nullable): the query parameter @key; an empty
 * value counts as absent, so `?status=` means "no filter" as in the seed.
 */
const gchar *
qsim_api_context_get_query(QsimApiContext *ctx, const gchar *key)
{
	const gchar *v = g_hash_table_lookup(ctx->query, key);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/**
 * qsim_api_context_query_uint:
 * @out: (out): the value, or @default_value when the parameter is absent
 *
 * Parses a decimal query parameter within [@min, @max]. On failure it answers
 * 400 `bad_request` naming the parameter and returns %FALSE; the handler then
 * just returns.
 */
gboolean
qsim_api_context_query_uint(QsimApiContext *ctx, const gchar *key, guint64 min, guint64 max,
                            guint64 default_value, guint64 *out)
{
	const gchar *v = qsim_api_context_get_query(ctx, key);
	guint64 n = 0;

	if (v == NULL) {
		*out = default_value;
		return TRUE;
	}
	if (!g_ascii_string_to_unsigned(v, 10, min, max, &n, NULL)) {
		qsim_api_error_respond(
		    ctx->msg, SOUP_STATUS_BAD_REQUEST, "bad_request",
		    "Query parameter '%s' must be an integer from %" G_GUINT64_FORMAT
		    " to %" G_GUINT64_FORMAT ".",
		    key, min, max);
		return FALSE;
	}
	*out = n;
	return TRUE;
}
