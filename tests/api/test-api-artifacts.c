#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
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

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/api/artifacts/list-download", ApiFixture, NULL, api_fixture_setup,
	           test_list_and_download, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/tarball-delete", ApiFixture, NULL, api_fixture_setup,
	           test_tarball, api_fixture_teardown);
	g_test_add("/qsim/api/artifacts/submit", ApiFixture, NULL, api_fixture_setup, test_submit,
	           api_fixture_teardown);
	return g_test_run();
}
