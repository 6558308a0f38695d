#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "api/qsim-api-server.h"

G_BEGIN_DECLS

/* What a test wants from its server; NULL fields mean the defaults. */
typedef struct {
	const gchar *tokens;     /* QSIM_API_TOKENS */
	const gchar *origins;    /* enables CORS with these ALLOWED_ORIGINS */
	GType store_type;        /* 0: the real SQLite store */
	gboolean no_writer;      /* insert on the main loop instead of the writer thread */
	const gchar *const *env; /* more NAME=value settings, NULL-terminated */
} ApiFixtureOptions;

typedef struct {
	gchar *tmpdir;
	QsimConfig *config;
	QsimStore *store;
	QsimApiServer *server;
	SoupSession *session;
	gchar *base; /* http://127.0.0.1:<port> */
} ApiFixture;

typedef struct {
	guint status;
	SoupMessageHeaders *headers;
	GBytes *body;
	JsonNode *json; /* NULL unless the body is JSON */
} ApiResponse;

void api_fixture_setup(ApiFixture *fx, gconstpointer user_data);
/* Publishes the fixture's VM dirs as this host's catalogue, as an agent would */
void api_fixture_publish(ApiFixture *fx);
void api_fixture_teardown(ApiFixture *fx, gconstpointer user_data);
QsimConfig *api_fixture_make_config(const gchar *tmpdir, const gchar *const *extra_env);

ApiResponse *api_request(ApiFixture *fx, const gchar *method, const gchar *path,
                         const gchar *content_type, const gchar *body, ...) G_GNUC_NULL_TERMINATED;
void api_response_free(ApiResponse *r);
const gchar *api_response_header(ApiResponse *r, const gchar *name);
const gchar *api_response_error_code(ApiResponse *r);
const gchar *api_response_string(ApiResponse *r, const gchar *member);
gchar *api_submit(ApiFixture *fx, const gchar *commands);

void api_wait_until(gboolean (*cond)(gpointer), gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiResponse, api_response_free)

G_END_DECLS
