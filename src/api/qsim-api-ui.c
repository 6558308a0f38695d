#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-resources.h"

/*
 * The web dashboard (issue 17): static files compiled into the binary
 * (src/api/ui/, GResource), so it needs no data dir, loads nothing from
 * elsewhere and works offline. The files hold no secret: they are served
 * without a token, and the page asks for one when the API wants it.
 */

#define UI_PREFIX "/org/qsim/api/ui/"

/* script only from here, no inline script or style, no framing, no plugins:
 * guest output that ever reached the DOM as markup still could not run */
#define UI_CSP                                                                                     \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "             \
	"frame-ancestors 'none'"

typedef struct {
	GBytes *data;
	gchar *etag;
	const gchar *type;
} UiFile;

static const gchar *
content_type_of(const gchar *name)
{
	static const struct {
		const gchar *ext;
		const gchar *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".json", "application/json; charset=utf-8"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		if (g_str_has_suffix(name, types[i].ext))
			return types[i].type;
	}
	return "application/octet-stream";
}

static void
ui_file_free(gpointer data)
{
	UiFile *f = data;

	g_bytes_unref(f->data);
	g_free(f->etag);
	g_free(f);
}

/* name -> UiFile, read once: the files cannot change while the process runs */
static GHashTable *
ui_files(void)
{
	static GHashTable *files = NULL;
	g_auto(GStrv) names = NULL;

	if (files != NULL)
		return files;
	files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ui_file_free);
	names = g_resource_enumerate_children(qsim_api_get_resource(), UI_PREFIX,
	                                      G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		g_autofree gchar *path = g_strconcat(UI_PREFIX, names[i], NULL);
		g_autofree gchar *hash = NULL;
		UiFile *f;
		GBytes *data = g_resource_lookup_data(qsim_api_get_resource(), path,
		                                      G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);

		if (data == NULL)
			continue;
		f = g_new0(UiFile, 1);
		f->data = data;
		hash = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, data);
		f->etag = g_strdup_printf("\"%.16s\"", hash);
		f->type = content_type_of(names[i]);
		g_hash_table_insert(files, g_strdup(names[i]), f);
	}
	return files;
}

/**
 * qsim_api_ui_total_bytes:
 *
 * Returns: the size of the dashboard's files as served (for the benchmark)
 */
gsize
qsim_api_ui_total_bytes(void)
{
	GHashTableIter it;
	gpointer value;
	gsize total = 0;

	g_hash_table_iter_init(&it, ui_files());
	while (g_hash_table_iter_next(&it, NULL, &value))
		total += g_bytes_get_size(((UiFile *)value)->data);
	return total;
}

static void
set_page_headers(SoupServerMessage *msg)
{
	SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);

	soup_message_headers_replace(h, "Content-Security-Policy", UI_CSP);
	soup_message_headers_replace(h, "X-Frame-Options", "DENY");
	soup_message_headers_replace(h, "Referrer-Policy", "no-referrer");
	soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
	soup_message_headers_replace(h, "Cross-Origin-Opener-Policy", "same-origin");
}

/* An ETag of the content and no-cache: a browser revalidates each file with one
 * cheap 304, so an upgraded qsimd is never run with yesterday's script. */
static void
respond_file(SoupServerMessage *msg, const gchar *name)
{
	UiFile *f = g_hash_table_lookup(ui_files(), name);
	SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
	const gchar *inm;
	gconstpointer data;
	gsize len = 0;

	set_page_headers(msg);
	if (f == NULL) {
		qsim_api_error_respond(msg, SOUP_STATUS_NOT_FOUND, "not_found",
		                       "There is no resource at this path.");
		return;
	}
	soup_message_headers_replace(h, "ETag", f->etag);
	soup_message_headers_replace(h, "Cache-Control", "no-cache");
	inm = soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
	                                   "If-None-Match");
	if (inm != NULL && strstr(inm, f->etag) != NULL) {
		soup_server_message_set_status(msg, SOUP_STATUS_NOT_MODIFIED, NULL);
		return;
	}
	data = g_bytes_get_data(f->data, &len);
	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, f->type, SOUP_MEMORY_STATIC, data, len);
}

/* GET /ui, /ui/ and /ui/{file} */
void
qsim_api_ui_get(QsimApiContext *ctx)
{
	respond_file(ctx->msg, ctx->param != NULL ? ctx->param : "index.html");
}

/* GET /: a browser pointed at the daemon lands on the dashboard */
void
qsim_api_ui_redirect(QsimApiContext *ctx)
{
	set_page_headers(ctx->msg);
	soup_server_message_set_redirect(ctx->msg, SOUP_STATUS_FOUND, "/ui/");
}
