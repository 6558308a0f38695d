#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "api-fixture.h"
#include "store/qsim-file-artifact-store.h"
#include "store/qsim-store.h"

/*
 * The artifact routes over real HTTP: what an agent stored (bytes in the file
 * artifact store, metadata in the SQLite file) listed, downloaded whole, by
 * Range and as a tar.gz, and removed with the request.
 */

static gchar *
finished_request(ApiFixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) r = qsim_store_create_request(fx->store, "tiny", "true", 30, &error);
	g_autoptr(QsimRequest) claimed = NULL;
	QsimStatus stored;

	g_assert_no_error(error);
	claimed = qsim_store_claim_next(fx->store, "agent", 60000, 0, &error);
	g_assert_no_error(error);
	g_assert_true(qsim_store_mark_running(fx->store, r->uuid, "agent", &error));
	g_assert_true(qsim_store_finish_request(fx->store, r->uuid, "agent", QSIM_STATUS_DONE, TRUE,
	                                        0, NULL, &stored, &error));
	g_assert_no_error(error);
	return g_strdup(r->uuid);
}

/* Stores @data as artifact @name of @uuid, as the agent would. */
static QsimArtifactRecord *
put_file(QsimArtifactStore *artifacts, const gchar *uuid, const gchar *name, const gchar *data,
         gsize len, guint mode)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GOutputStream) os = qsim_artifact_store_create(artifacts, uuid, name, &error);
	QsimArtifactRecord *r = qsim_artifact_record_new();

	g_assert_no_error(error);
	g_assert_true(g_output_stream_write_all(os, data, len, NULL, NULL, &error));
	g_assert_true(g_output_stream_close(os, NULL, &error));
	r->name = g_strdup(name);
	r->kind = QSIM_ARTIFACT_FILE;
	r->size = len;
	r->sha256 = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
	r->mode = mode;
	return r;
}

typedef struct {
	gchar *uuid;
	gchar *big; /* 300 000 bytes of a pattern */
	gsize big_len;
	gchar *long_name;
	gchar *dir; /* STATE_DIR/artifacts/<uuid> */
} Stored;

static void
stored_clear(Stored *s)
{
	g_free(s->uuid);
	g_free(s->big);
	g_free(s->long_name);
	g_free(s->dir);
}

static void
store_some(ApiFixture *fx, Stored *s)
{
	g_autoptr(QsimArtifactStore) artifacts = qsim_artifact_store_new_for_config(fx->config);
	g_autoptr(GPtrArray) rows =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	g_autoptr(GError) error = NULL;
	QsimArtifactRecord *link = qsim_artifact_record_new();
	g_autoptr(GString) long_name = g_string_new("out/");

	s->uuid = finished_request(fx);
	s->big_len = 300000;
	s->big = g_malloc(s->big_len);
	for (gsize i = 0; i < s->big_len; i++)
		s->big[i] = (gchar)(i * 7 % 251);
	while (long_name->len < 150)
		g_string_append(long_name, "long-name-part/");
	g_string_append(long_name, "report.xml");
	s->long_name = g_strdup(long_name->str);
	g_ptr_array_add(rows,
	                put_file(artifacts, s->uuid, "out/big.bin", s->big, s->big_len, 0640));
	g_ptr_array_add(rows, put_file(artifacts, s->uuid, "out/run.sh", "#!/bin/sh\n", 10, 0755));
	g_ptr_array_add(rows, put_file(artifacts, s->uuid, s->long_name, "<xml/>", 6, 0644));
	link->name = g_strdup("out/shadow");
	link->kind = QSIM_ARTIFACT_SYMLINK;
	link->target = g_strdup("/etc/shadow");
	link->size = strlen(link->target);
	link->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, link->target, -1);
	link->mode = 0777;
	g_ptr_array_add(rows, link);
	g_assert_true(qsim_store_add_artifacts(fx->store, s->uuid, rows, &error));
	g_assert_no_error(error);
	s->dir =
	    g_build_filename(qsim_config_get_state_dir(fx->config), "artifacts", s->uuid, NULL);
}

static void
test_list_and_download(ApiFixture *fx, gconstpointer data)
{
	Stored s = {0};
	g_autofree gchar *path = NULL;
	g_autofree gchar *list_path = NULL;
	JsonArray *list;
	JsonObject *first;

	store_some(fx, &s);
	list_path = g_strdup_printf("/requests/%s/artifacts", s.uuid);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", list_path, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
		list = json_node_get_array(r->json);
		g_assert_cmpuint(json_array_get_length(list), ==, 4);
		first = json_array_get_object_element(list, 0);
		g_assert_cmpstr(json_object_get_string_member(first, "name"), ==, "out/big.bin");
		g_assert_cmpint(json_object_get_int_member(first, "size"), ==, 300000);
		g_assert_cmpstr(json_object_get_string_member(first, "mode"), ==, "0640");
		g_assert_cmpstr(json_object_get_string_member(first, "kind"), ==, "file");
	}

	/* whole: the bytes, their length and the headers that keep a browser off them */
	path = g_strdup_printf("/requests/%s/artifacts/out/big.bin", s.uuid);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", path, NULL, NULL, NULL);
		gsize len = 0;
		const gchar *body = g_bytes_get_data(r->body, &len);

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_cmpuint(len, ==, s.big_len);
		g_assert_true(memcmp(body, s.big, len) == 0);
		g_assert_cmpstr(api_response_header(r, "Content-Length"), ==, "300000");
		g_assert_cmpstr(api_response_header(r, "X-Content-Type-Options"), ==, "nosniff");
		g_assert_cmpstr(api_response_header(r, "Accept-Ranges"), ==, "bytes");
		g_assert_true(
		    g_str_has_prefix(api_response_header(r, "Content-Disposition"), "attachment"));
		g_assert_nonnull(strstr(api_response_header(r, "Content-Disposition"), "big.bin"));
	}
	/* ranges: a middle slice, an open end, a suffix, and one past the end */
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "GET", path, NULL, NULL, "Range", "bytes=1000-1999", NULL);
		gsize len = 0;
		const gchar *body = g_bytes_get_data(r->body, &len);

		g_assert_cmpuint(r->status, ==, 206);
		g_assert_cmpuint(len, ==, 1000);
		g_assert_true(memcmp(body, s.big + 1000, 1000) == 0);
		g_assert_cmpstr(api_response_header(r, "Content-Range"), ==,
		                "bytes 1000-1999/300000");
		g_assert_cmpstr(api_response_header(r, "Content-Length"), ==, "1000");
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "GET", path, NULL, NULL, "Range", "bytes=299990-", NULL);
		gsize len = 0;
		const gchar *body = g_bytes_get_data(r->body, &len);

		g_assert_cmpuint(r->status, ==, 206);
		g_assert_cmpuint(len, ==, 10);
		g_assert_true(memcmp(body, s.big + 299990, 10) == 0);
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "GET", path, NULL, NULL, "Range", "bytes=-7", NULL);

		g_assert_cmpuint(r->status, ==, 206);
		g_assert_cmpuint(g_bytes_get_size(r->body), ==, 7);
		g_assert_cmpstr(api_response_header(r, "Content-Range"), ==,
		                "bytes 299993-299999/300000");
	}
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "GET", path, NULL, NULL, "Range", "bytes=300000-", NULL);

		g_assert_cmpuint(r->status, ==, 416);
		g_assert_cmpstr(api_response_error_code(r), ==, "range_not_satisfiable");
		g_assert_cmpstr(api_response_header(r, "Content-Range"), ==, "bytes */300000");
	}
	/* a long name (pax header in the tarball) downloads like any other */
	{
		g_autofree gchar *p =
		    g_strdup_printf("/requests/%s/artifacts/%s", s.uuid, s.long_name);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", p, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_cmpuint(g_bytes_get_size(r->body), ==, 6);
	}
	/* a symlink has no bytes; unknown and escaping names are refused */
	{
		g_autofree gchar *p = g_strdup_printf("/requests/%s/artifacts/out/shadow", s.uuid);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", p, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 409);
		g_assert_cmpstr(api_response_error_code(r), ==, "symlink");
	}
	{
		g_autofree gchar *p = g_strdup_printf("/requests/%s/artifacts/out/nope", s.uuid);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", p, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 404);
	}
	{
		/* dot segments are removed before routing: this one leaves the route */
		g_autofree gchar *p =
		    g_strdup_printf("/requests/%s/artifacts/out/%%2e%%2e/%%2e%%2e/etc", s.uuid);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", p, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 404);
	}
	{
		/* an encoded slash: libsoup refuses the URI before any handler */
		g_autofree gchar *p =
		    g_strdup_printf("/requests/%s/artifacts/out/..%%2F..%%2Fbig.bin", s.uuid);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", p, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 400);
		g_assert_cmpuint(g_bytes_get_size(r->body), <, 1000);
	}
	{
		/* a name that would leave the request's directory never reaches the store */
		g_autofree gchar *p =
		    g_strdup_printf("/requests/%s/artifacts/out//big.bin", s.uuid);
		g_autoptr(ApiResponse) r = api_request(fx, "GET", p, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 400);
		g_assert_cmpstr(api_response_error_code(r), ==, "bad_request");
	}
	stored_clear(&s);
}

static void
test_tarball(ApiFixture *fx, gconstpointer data)
{
	Stored s = {0};
	g_autofree gchar *path = NULL;
	g_autofree gchar *tgz = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *listing = NULL;
	g_autofree gchar *big = NULL;
	g_autofree gchar *big_path = NULL;
	g_autofree gchar *link = NULL;
	g_autofree gchar *link_path = NULL;
	g_autoptr(GError) error = NULL;
	gsize big_len = 0;
	gint status = -1;

	store_some(fx, &s);
	path = g_strdup_printf("/requests/%s/artifacts.tar.gz", s.uuid);
	{
		g_autoptr(ApiResponse) r = api_request(fx, "GET", path, NULL, NULL, NULL);
		gsize len = 0;
		const gchar *body = g_bytes_get_data(r->body, &len);

		g_assert_cmpuint(r->status, ==, 200);
		g_assert_cmpstr(api_response_header(r, "X-Content-Type-Options"), ==, "nosniff");
		tgz = g_build_filename(fx->tmpdir, "a.tar.gz", NULL);
		g_assert_true(g_file_set_contents(tgz, body, (gssize)len, &error));
	}
	/* GNU tar reads it back: names (a long one), modes, bytes and the symlink */
	out = g_build_filename(fx->tmpdir, "unpacked", NULL);
	g_assert_cmpint(g_mkdir(out, 0700), ==, 0);
	{
		const gchar *argv[] = {"tar", "-xzf", tgz, "-C", out, NULL};
		g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
		                           NULL, NULL, NULL, &status, &error));
		g_assert_no_error(error);
		g_assert_true(g_spawn_check_wait_status(status, NULL));
	}
	{
		const gchar *argv[] = {"tar", "-tvzf", tgz, NULL};
		g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
		                           NULL, &listing, NULL, &status, &error));
		g_test_message("%s", listing);
		g_assert_nonnull(strstr(listing, "-rwxr-xr-x"));
		g_assert_nonnull(strstr(listing, "out/shadow -> /etc/shadow"));
	}
	big_path = g_build_filename(out, "out/big.bin", NULL);
	g_assert_true(g_file_get_contents(big_path, &big, &big_len, NULL));
	g_assert_cmpuint(big_len, ==, s.big_len);
	g_assert_true(memcmp(big, s.big, big_len) == 0);
	link_path = g_build_filename(out, "out/shadow", NULL);
	link = g_file_read_link(link_path, &error);
	g_assert_cmpstr(link, ==, "/etc/shadow");
	{
		g_autofree gchar *p = g_build_filename(out, s.long_name, NULL);
		g_assert_true(g_file_test(p, G_FILE_TEST_IS_REGULAR));
	}

	/* deleting the request (through the API) removes the files with the rows */
	{
		g_autofree gchar *del = g_strdup_printf("/requests/%s", s.uuid);
		g_autoptr(ApiResponse) r = api_request(fx, "DELETE", del, NULL, NULL, NULL);

		g_assert_cmpuint(r->status, ==, 204);
		g_assert_false(g_file_test(s.dir, G_FILE_TEST_EXISTS));
	}
	/* a purge (what RETENTION runs) removes another request's files the same way */
	{
		Stored other = {0};
		g_autoptr(ApiResponse) r = NULL;

		store_some(fx, &other);
		g_assert_true(g_file_test(other.dir, G_FILE_TEST_IS_DIR));
		r = api_request(fx, "DELETE", "/requests?before=0", NULL, NULL, NULL);
		g_assert_cmpuint(r->status, ==, 200);
		g_assert_false(g_file_test(other.dir, G_FILE_TEST_EXISTS));
		stored_clear(&other);
	}
	stored_clear(&s);
}

static void
test_submit(ApiFixture *fx, gconstpointer data)
{
	static const gchar *bad[] = {
	    "\"artifacts\": \"/out\"",
	    "\"artifacts\": [\"out/x\"]",
	    "\"artifacts\": [\"/out/../etc/shadow\"]",
	    "\"artifacts\": [\"/out/./x\"]",
	    "\"artifacts\": [\"/\"]",
	    "\"artifacts\": [\"/out\\nx\"]",
	    "\"artifacts\": [1]",
	};
	g_autoptr(GString) many = g_string_new("{\"vm_name\":\"tiny\",\"commands\":\"true\","
	                                       "\"artifacts\":[");

	api_fixture_publish(fx);
	{
		g_autoptr(ApiResponse) r = api_request(
		    fx, "POST", "/requests", "application/json",
		    "{\"vm_name\":\"tiny\",\"commands\":\"true\",\"artifacts\":[\"/out/*.xml\","
		    "\"/root/report.html\"]}",
		    NULL);
		g_autofree gchar *get = NULL;

		g_assert_cmpuint(r->status, ==, 201);
		get = g_strdup_printf("/requests/%s", api_response_string(r, "uuid"));
		{
			g_autoptr(ApiResponse) g = api_request(fx, "GET", get, NULL, NULL, NULL);
			JsonArray *a = json_object_get_array_member(json_node_get_object(g->json),
			                                            "artifacts");

			g_assert_cmpuint(json_array_get_length(a), ==, 2);
			g_assert_cmpstr(json_array_get_string_element(a, 0), ==, "/out/*.xml");
		}
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *body =
		    g_strdup_printf("{\"vm_name\":\"tiny\",\"commands\":\"true\",%s}", bad[i]);
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/requests", "application/json", body, NULL);

		g_test_message("%s", body);
		g_assert_cmpuint(r->status, ==, 422);
		g_assert_cmpstr(api_response_error_code(r), ==, "validation_error");
	}
	for (guint i = 0; i < 65; i++)
		g_string_append_printf(many, "%s\"/out/%u\"", i > 0 ? "," : "", i);
	g_string_append(many, "]}");
	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "POST", "/requests", "application/json", many->str, NULL);
		g_assert_cmpuint(r->status, ==, 422);
	}
}

typedef struct {
	gboolean done;
	GBytes *body;
	GError *error;
} Sent;

static void
sent_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Sent *st = user_data;

	st->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res, &st->error);
	st->done = TRUE;
}

static gboolean
sent_done(gpointer data)
{
	return ((Sent *)data)->done;
}

static void
add_part(SoupMultipart *mp, const gchar *name, const gchar *filename, const gchar *type,
         const gchar *mode, GBytes *data)
{
	g_autoptr(SoupMessageHeaders) h = soup_message_headers_new(SOUP_MESSAGE_HEADERS_MULTIPART);
	g_autoptr(GHashTable) params = g_hash_table_new(g_str_hash, g_str_equal);

	g_hash_table_insert(params, "name", (gpointer)name);
	if (filename != NULL)
		g_hash_table_insert(params, "filename", (gpointer)filename);
	soup_message_headers_set_content_disposition(h, "form-data", params);
	if (type != NULL)
		soup_message_headers_replace(h, "Content-Type", type);
	if (mode != NULL)
		soup_message_headers_replace(h, "X-Qsim-Mode", mode);
	soup_multipart_append_part(mp, h, data);
}

/* POSTs @mp to /requests with @origin (nullable); returns the status, with the
 * reply's JSON in @json and its headers in @headers (nullable) */
static guint
post_multipart_from(ApiFixture *fx, SoupMultipart *mp, const gchar *origin, JsonNode **json,
                    SoupMessageHeaders **headers)
{
	g_autofree gchar *uri = g_strconcat(fx->base, "/requests", NULL);
	g_autoptr(SoupMessage) msg = soup_message_new("POST", uri);
	g_autoptr(GBytes) body = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	Sent st = {0};

	soup_multipart_to_message(mp, soup_message_get_request_headers(msg), &body);
	if (origin != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(msg), "Origin",
		                             origin);
	soup_message_set_request_body_from_bytes(msg, NULL, body);
	soup_session_send_and_read_async(fx->session, msg, G_PRIORITY_DEFAULT, NULL, sent_cb, &st);
	api_wait_until(sent_done, &st);
	g_assert_no_error(st.error);
	if (g_bytes_get_size(st.body) > 0 &&
	    json_parser_load_from_data(parser, g_bytes_get_data(st.body, NULL),
	                               (gssize)g_bytes_get_size(st.body), NULL))
		*json = json_node_copy(json_parser_get_root(parser));
	g_bytes_unref(st.body);
	if (headers != NULL)
		*headers = soup_message_headers_ref(soup_message_get_response_headers(msg));
	return soup_message_get_status(msg);
}

static guint
post_multipart(ApiFixture *fx, SoupMultipart *mp, JsonNode **json)
{
	return post_multipart_from(fx, mp, NULL, json, NULL);
}

static void
test_upload(ApiFixture *fx, gconstpointer data)
{
	static const gchar *request = "{\"vm_name\":\"tiny\",\"commands\":\"sh /root/in/run.sh\"}";
	gsize big_len = 3 * QSIM_UPLOAD_CHUNK_MAX + 777;
	g_autofree guint8 *big = g_malloc(big_len);
	g_autoptr(GBytes) big_bytes = NULL;
	g_autoptr(GBytes) req = g_bytes_new_static(request, strlen(request));
	g_autoptr(GBytes) script = g_bytes_new_static("echo hi\n", 8);
	g_autoptr(GError) error = NULL;

	api_fixture_publish(fx);
	for (gsize i = 0; i < big_len; i++)
		big[i] = (guint8)(i * 13 % 256);
	big_bytes = g_bytes_new(big, big_len);
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new("multipart/form-data");
		g_autoptr(JsonNode) json = NULL;
		g_autoptr(GPtrArray) ups = NULL;
		g_autofree gchar *sum =
		    g_compute_checksum_for_data(G_CHECKSUM_SHA256, big, big_len);
		const QsimUploadRecord *u;
		guint seq = 0;
		gsize got = 0;

		add_part(mp, "request", NULL, "application/json", NULL, req);
		add_part(mp, "file", "/root/in/run.sh", NULL, "0755", script);
		add_part(mp, "file", "/root/in/big.bin", "application/octet-stream", NULL,
		         big_bytes);
		add_part(mp, "file", "/root/tree", "application/gzip", NULL, script);
		g_assert_cmpuint(post_multipart(fx, mp, &json), ==, 201);
		ups = qsim_store_list_uploads(
		    fx->store, json_object_get_string_member(json_node_get_object(json), "uuid"),
		    &error);
		g_assert_no_error(error);
		g_assert_cmpuint(ups->len, ==, 3);
		u = ups->pdata[0];
		g_assert_cmpstr(u->guest_path, ==, "/root/in/run.sh");
		g_assert_cmpuint(u->mode, ==, 0755);
		g_assert_cmpint(u->kind, ==, QSIM_UPLOAD_FILE);
		u = ups->pdata[2];
		g_assert_cmpint(u->kind, ==, QSIM_UPLOAD_TAR_GZ);
		u = ups->pdata[1];
		g_assert_cmpuint(u->size, ==, big_len);
		g_assert_cmpstr(u->sha256, ==, sum);
		/* chunk by chunk, as an agent reads it */
		for (;;) {
			g_autoptr(GBytes) chunk = qsim_store_upload_read_chunk(
			    fx->store, u->upload_id, u->idx, seq++, &error);

			g_assert_no_error(error);
			if (g_bytes_get_size(chunk) == 0)
				break;
			g_assert_cmpuint(g_bytes_get_size(chunk), <=, QSIM_UPLOAD_CHUNK_MAX);
			g_assert_true(memcmp(g_bytes_get_data(chunk, NULL), big + got,
			                     g_bytes_get_size(chunk)) == 0);
			got += g_bytes_get_size(chunk);
		}
		g_assert_cmpuint(got, ==, big_len);
	}
	/* over MAX_UPLOAD_BYTES (4M here): 413 with a JSON error, whatever was declared */
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new("multipart/form-data");
		g_autoptr(JsonNode) json = NULL;

		add_part(mp, "request", NULL, "application/json", NULL, req);
		g_autoptr(GBytes) more = g_bytes_new(big, QSIM_UPLOAD_CHUNK_MAX + 300000);

		/* the declared length passes the early check: the count while streaming does not */
		add_part(mp, "file", "/root/a", NULL, NULL, big_bytes);
		add_part(mp, "file", "/root/b", NULL, NULL, more);
		g_assert_cmpuint(post_multipart(fx, mp, &json), ==, 413);
		g_assert_cmpstr(
		    json_object_get_string_member(
		        json_object_get_object_member(json_node_get_object(json), "error"), "code"),
		    ==, "payload_too_large");
	}
	/* a relative guest path, a path with .., an unknown part, no request part */
	{
		const gchar *bad[][2] = {
		    {"file", "root/x"}, {"file", "/root/../etc/shadow"}, {"other", "/root/x"}};

		for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
			g_autoptr(SoupMultipart) mp = soup_multipart_new("multipart/form-data");
			g_autoptr(JsonNode) json = NULL;
			guint status;

			add_part(mp, "request", NULL, "application/json", NULL, req);
			add_part(mp, bad[i][0], bad[i][1], NULL, NULL, script);
			status = post_multipart(fx, mp, &json);
			g_assert_true(status == 400 || status == 422);
			g_assert_nonnull(json);
		}
	}
	{
		g_autoptr(SoupMultipart) mp = soup_multipart_new("multipart/form-data");
		g_autoptr(JsonNode) json = NULL;

		add_part(mp, "file", "/root/x", NULL, NULL, script);
		g_assert_cmpuint(post_multipart(fx, mp, &json), ==, 400);
	}
}

static const gchar *const cors_origin = "https://ui.example";
static const gchar *const cors_headers[] = {"Access-Control-Allow-Origin",
                                            "Access-Control-Expose-Headers", "Vary"};

static const gchar *
error_code_of(JsonNode *json)
{
	g_assert_nonnull(json);
	return json_object_get_string_member(
	    json_object_get_object_member(json_node_get_object(json), "error"), "code");
}

typedef struct {
	const gchar *db;
	gint64 min; /* wait until the spool has at least min rows, or none when -1 */
} SpoolWait;

static gint64
spool_rows(const gchar *db)
{
	sqlite3 *conn = NULL;
	sqlite3_stmt *st = NULL;
	gint64 n;

	g_assert_cmpint(sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(conn, "SELECT count(*) FROM uploads", -1, &st, NULL), ==,
	                SQLITE_OK);
	g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(conn);
	return n;
}

static gboolean
spool_reached(gpointer data)
{
	SpoolWait *w = data;
	gint64 n = spool_rows(w->db);

	return w->min < 0 ? n == 0 : n >= w->min;
}

static gboolean
write_done(gpointer data)
{
	return *(gboolean *)data;
}

static void
wrote_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_assert_true(g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), res, NULL, NULL));
	*(gboolean *)user_data = TRUE;
}

typedef struct {
	GSocket *socket;
	GString *got;
} RawRead;

static gboolean
raw_read_some(gpointer data)
{
	RawRead *r = data;
	gchar buf[4096];
	gssize n = g_socket_receive(r->socket, buf, sizeof buf, NULL, NULL);

	if (n > 0)
		g_string_append_len(r->got, buf, n);
	/* 0: the server closed; -1: would block (or reset, which ends it too) */
	return n == 0 || (n < 0 && !g_socket_condition_check(r->socket, G_IO_IN) &&
	                  !g_socket_is_connected(r->socket));
}

/* Sends @text on a fresh connection and returns all the server answers before closing.
 * Raw: a client library would fail on the refused body instead of reading the answer. */
static gchar *
raw_exchange(ApiFixture *fx, const gchar *text)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GError) error = NULL;
	RawRead r;

	conn = g_socket_client_connect_to_host(
	    client, "127.0.0.1", (guint16)qsim_api_server_get_port(fx->server), NULL, &error);
	g_assert_no_error(error);
	r.socket = g_socket_connection_get_socket(conn);
	g_assert_cmpint(g_socket_send(r.socket, text, strlen(text), NULL, &error), ==,
	                (gssize)strlen(text));
	g_socket_set_blocking(r.socket, FALSE);
	r.got = g_string_new(NULL);
	api_wait_until(raw_read_some, &r);
	return g_string_free(r.got, FALSE);
}

/*
 * A multipart upload refused while it streams in (declared or counted size over
 * MAX_UPLOAD_BYTES, a bad part) is answered like every other API error: JSON
 * {"error":{"code","message"}}, the right status, and the same CORS headers as a
 * normal reply, or a browser could not read why. A client that goes away midway
 * leaves no spooled bytes behind, and the server goes on serving.
 */
static void
test_upload_refusals(ApiFixture *fx, gconstpointer data)
{
	static const gchar *request = "{\"vm_name\":\"tiny\",\"commands\":\"true\"}";
	g_autoptr(GBytes) req = g_bytes_new_static(request, strlen(request));
	g_autoptr(GBytes) small = g_bytes_new_static("x", 1);
	gsize big_len = 3 * 1024 * 1024;
	g_autofree guint8 *big = g_malloc0(big_len);
	g_autoptr(GBytes) big_bytes = g_bytes_new(big, big_len);
	g_autoptr(ApiResponse) normal = NULL;
	g_autofree gchar *db = g_build_filename(fx->tmpdir, "qsim.db", NULL);

	normal = api_request(fx, "GET", "/requests", NULL, NULL, "Origin", cors_origin, NULL);
	g_assert_cmpuint(normal->status, ==, 200);
	g_assert_cmpstr(api_response_header(normal, "Access-Control-Allow-Origin"), ==,
	                cors_origin);
	for (guint c = 0; c < 4; c++) {
		g_autoptr(SoupMultipart) mp = soup_multipart_new("multipart/form-data");
		g_autoptr(JsonNode) json = NULL;
		g_autoptr(SoupMessageHeaders) h = NULL;
		guint status;

		add_part(mp, "request", NULL, "application/json", NULL, req);
		if (c == 0) {
			/* the declared length is refused before the body is read: raw_refusal() */
			continue;
		} else if (c == 1) {
			/* counted while streaming: the second file passes 4M (the declared
			 * length passes the early check, which allows 1 MiB for the JSON) */
			g_autoptr(GBytes) more = g_bytes_new(big, 1300000);

			add_part(mp, "file", "/root/a", NULL, NULL, big_bytes);
			add_part(mp, "file", "/root/b", NULL, NULL, more);
		} else if (c == 2) {
			add_part(mp, "file", "/root/../etc/shadow", NULL, NULL, small);
		} else {
			add_part(mp, "surprise", "/root/x", NULL, NULL, small);
		}
		status = post_multipart_from(fx, mp, cors_origin, &json, &h);
		g_test_message("case %u: %u %s", c, status, error_code_of(json));
		if (c < 2) {
			g_assert_cmpuint(status, ==, 413);
			g_assert_cmpstr(error_code_of(json), ==, "payload_too_large");
		} else {
			g_assert_true(status == 400 || status == 422);
			g_assert_nonnull(error_code_of(json));
		}
		g_assert_true(json_object_has_member(
		    json_object_get_object_member(json_node_get_object(json), "error"), "message"));
		g_assert_true(g_str_has_prefix(soup_message_headers_get_content_type(h, NULL),
		                               "application/json"));
		for (guint i = 0; i < G_N_ELEMENTS(cors_headers); i++)
			g_assert_cmpstr(soup_message_headers_get_one(h, cors_headers[i]), ==,
			                api_response_header(normal, cors_headers[i]));
	}
	{
		g_autofree gchar *head =
		    g_strdup_printf("POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\n"
		                    "Content-Type: multipart/form-data; boundary=XyZ\r\n"
		                    "Content-Length: 900000000\r\n\r\n",
		                    cors_origin);
		g_autofree gchar *reply = raw_exchange(fx, head);
		g_autofree gchar *acao =
		    g_strdup_printf("\r\nAccess-Control-Allow-Origin: %s\r\n", cors_origin);

		g_test_message("declared: %s", reply);
		g_assert_true(g_str_has_prefix(reply, "HTTP/1.1 413 "));
		g_assert_nonnull(strstr(reply, acao));
		g_assert_nonnull(strstr(reply, "\r\nAccess-Control-Expose-Headers: "));
		g_assert_nonnull(strstr(reply, "\r\nContent-Type: application/json"));
		g_assert_nonnull(strstr(reply, "{\"error\":{\"code\":\"payload_too_large\""));
	}
	/* the client goes away in the middle of a file part */
	{
		g_autoptr(GSocketClient) client = g_socket_client_new();
		g_autoptr(GSocketConnection) conn = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(ApiResponse) after = NULL;
		g_autofree gchar *head = g_strdup_printf(
		    "POST /requests HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: %s\r\n"
		    "Content-Type: multipart/form-data; boundary=XyZ\r\n"
		    "Content-Length: 2000000\r\n\r\n"
		    "--XyZ\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n%s\r\n"
		    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
		    "filename=\"/root/half\"\r\n\r\n",
		    cors_origin, request);
		gsize partial = 100000;
		g_autofree gchar *body = g_malloc0(strlen(head) + partial);
		gboolean written = FALSE;
		SpoolWait w = {db, 1};

		memcpy(body, head, strlen(head));
		g_assert_cmpint(spool_rows(db), ==, 0);
		conn = g_socket_client_connect_to_host(
		    client, "127.0.0.1", (guint16)qsim_api_server_get_port(fx->server), NULL,
		    &error);
		g_assert_no_error(error);
		g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(conn)),
		                                body, strlen(head) + partial, G_PRIORITY_DEFAULT,
		                                NULL, wrote_cb, &written);
		api_wait_until(write_done, &written);
		/* the file part was seen and spooled: there is something to leave behind */
		api_wait_until(spool_reached, &w);
		g_assert_true(g_io_stream_close(G_IO_STREAM(conn), NULL, &error));
		w.min = -1;
		api_wait_until(spool_reached, &w);
		after =
		    api_request(fx, "GET", "/requests", NULL, NULL, "Origin", cors_origin, NULL);
		g_assert_cmpuint(after->status, ==, 200);
	}
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN TRUE
#define UPLOAD_LARGE_MB 32
#else
#define UNDER_ASAN FALSE
#define UPLOAD_LARGE_MB 200
#endif

static guint64
vm_hwm_kib(void)
{
	g_autofree gchar *status = NULL;
	const gchar *line;

	g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
	line = strstr(status, "VmHWM:");
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + 6, NULL, 10);
}

/*
 * A large upload streams through with bounded memory: the body is sent from a file
 * (the client holds none of it), parsed as it arrives and spooled in 1 MiB rows, so
 * this process's peak RSS (server and client both) grows by far less than the upload.
 * QSIM_TEST_UPLOAD_MB sets the size (default 200).
 */
static void
test_upload_large(ApiFixture *fx, gconstpointer data)
{
	const gchar *env = g_getenv("QSIM_TEST_UPLOAD_MB");
	guint64 mb = env != NULL ? g_ascii_strtoull(env, NULL, 10) : UPLOAD_LARGE_MB;
	g_autofree gchar *path = g_build_filename(fx->tmpdir, "body", NULL);
	g_autofree gchar *uri = g_strconcat(fx->base, "/requests", NULL);
	g_autoptr(SoupMessage) msg = soup_message_new("POST", uri);
	g_autoptr(GFile) file = g_file_new_for_path(path);
	g_autoptr(GFileInputStream) in = NULL;
	g_autoptr(GFileOutputStream) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autoptr(GPtrArray) ups = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autofree guint8 *block = g_malloc(1024 * 1024);
	const gchar *head =
	    "--B0undary\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n"
	    "{\"vm_name\":\"tiny\",\"commands\":\"true\"}\r\n--B0undary\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename=\"/root/big\"\r\n"
	    "\r\n";
	const gchar *tail = "\r\n--B0undary--\r\n";
	guint64 before, after, size;
	Sent st = {0};

	api_fixture_publish(fx);
	out = g_file_replace(file, NULL, FALSE, G_FILE_CREATE_PRIVATE, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_output_stream_write_all(G_OUTPUT_STREAM(out), head, strlen(head), NULL,
	                                        NULL, &error));
	for (guint64 i = 0; i < mb; i++) {
		for (gsize j = 0; j < 1024 * 1024; j += 4)
			*(guint32 *)(block + j) = g_random_int();
		g_checksum_update(sum, block, 1024 * 1024);
		g_assert_true(g_output_stream_write_all(G_OUTPUT_STREAM(out), block, 1024 * 1024,
		                                        NULL, NULL, &error));
	}
	g_assert_true(g_output_stream_write_all(G_OUTPUT_STREAM(out), tail, strlen(tail), NULL,
	                                        NULL, &error));
	g_assert_true(g_output_stream_close(G_OUTPUT_STREAM(out), NULL, &error));
	size = strlen(head) + mb * 1024 * 1024 + strlen(tail);
	in = g_file_read(file, NULL, &error);
	g_assert_no_error(error);
	soup_message_set_request_body(msg, "multipart/form-data; boundary=B0undary",
	                              G_INPUT_STREAM(in), (gssize)size);
	before = vm_hwm_kib();
	soup_session_send_and_read_async(fx->session, msg, G_PRIORITY_DEFAULT, NULL, sent_cb, &st);
	api_wait_until(sent_done, &st);
	after = vm_hwm_kib();
	g_assert_no_error(st.error);
	g_test_message("%" G_GUINT64_FORMAT " MiB upload: peak RSS %" G_GUINT64_FORMAT
	               " -> %" G_GUINT64_FORMAT " KiB",
	               mb, before, after);
	g_assert_cmpuint(soup_message_get_status(msg), ==, 201);
	/* bounded: a few chunk buffers, never the upload (ASan's quarantine keeps every
	 * freed buffer for a while, so there only the transfer itself is checked) */
	if (!UNDER_ASAN)
		g_assert_cmpuint(after - before, <, 48 * 1024);
	g_assert_true(json_parser_load_from_data(parser, g_bytes_get_data(st.body, NULL),
	                                         (gssize)g_bytes_get_size(st.body), NULL));
	ups =
	    qsim_store_list_uploads(fx->store,
	                            json_object_get_string_member(
	                                json_node_get_object(json_parser_get_root(parser)), "uuid"),
	                            &error);
	g_bytes_unref(st.body);
	g_assert_no_error(error);
	g_assert_cmpuint(ups->len, ==, 1);
	g_assert_cmpuint(((QsimUploadRecord *)ups->pdata[0])->size, ==, mb * 1024 * 1024);
	g_assert_cmpstr(((QsimUploadRecord *)ups->pdata[0])->sha256, ==,
	                g_checksum_get_string(sum));
}

int
main(int argc, char **argv)
{
	static const gchar *const upload_env[] = {"QSIM_MAX_UPLOAD_BYTES=4M", NULL};
	static const ApiFixtureOptions upload_opts = {.env = upload_env};
	static const gchar *const large_env[] = {"QSIM_MAX_UPLOAD_BYTES=1G", "QSIM_MIN_FREE_DISK=0",
	                                         NULL};
	static const ApiFixtureOptions large_opts = {.env = large_env};
	static const ApiFixtureOptions cors_opts = {.env = upload_env,
	                                            .origins = "https://ui.example"};

	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/api/artifacts/list-download", ApiFixture, NULL, api_fixture_setup,
	           test_list_and_download, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/tarball-delete", ApiFixture, NULL, api_fixture_setup,
	           test_tarball, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/upload", ApiFixture, &upload_opts, api_fixture_setup,
	           test_upload, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/upload-refusals", ApiFixture, &cors_opts, api_fixture_setup,
	           test_upload_refusals, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/upload-large", ApiFixture, &large_opts, api_fixture_setup,
	           test_upload_large, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/submit", ApiFixture, NULL, api_fixture_setup, test_submit,
	           api_fixture_teardown);
	return g_test_run();
}
