/*
 * The store side of artifacts and uploads (schema v8), on either backend
 * (test-store-artifacts-pg): the paths a request asks for, the metadata of
 * what was collected, and the spooled inputs read back byte for byte.
 */
#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store-test-fixture.h"
#include "store/qsim-store.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static QsimArtifactRecord *
record(const gchar *name, QsimArtifactKind kind, guint64 size, const gchar *sha,
       const gchar *target)
{
	QsimArtifactRecord *r = qsim_artifact_record_new();

	r->name = g_strdup(name);
	r->kind = kind;
	r->size = size;
	r->sha256 = g_strdup(sha);
	r->mode = 0640;
	r->target = g_strdup(target);
	return r;
}

static void
cancel_and_delete(QsimStore *store, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) c = qsim_store_cancel_request(store, uuid, &error);

	g_assert_no_error(error);
	g_assert_true(qsim_store_delete_request(store, uuid, &error));
	g_assert_no_error(error);
}

/* The paths survive a reload; records list by name; duplicates and strangers are refused */
static void
test_artifacts(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const gchar *paths[] = {"/out/a.txt", "/var/log/*.log", NULL};
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) loaded = NULL;
	g_autoptr(QsimRequest) plain = NULL;
	g_autoptr(GPtrArray) batch =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	g_autoptr(GPtrArray) dup =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_artifact_record_free);
	g_autoptr(GPtrArray) list = NULL;
	const QsimArtifactRecord *a;
	QsimRequestFilter filter;
	gboolean more = FALSE;

	r = qsim_store_create_request_full(fx->store, "tiny", "true", 60, (gchar **)paths, NULL,
	                                   &error);
	g_assert_no_error(error);
	loaded = qsim_store_get_request(fx->store, r->uuid, 36, &error);
	g_assert_no_error(error);
	g_assert_nonnull(loaded->artifact_paths);
	g_assert_cmpstrv(loaded->artifact_paths, paths);
	plain = qsim_store_create_request(fx->store, "tiny", "true", 60, &error);
	g_assert_no_error(error);
	g_clear_pointer(&plain, qsim_request_free);
	qsim_request_filter_init(&filter);
	list = qsim_store_list_requests(fx->store, &filter, &more, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 2);
	g_assert_null(((QsimRequest *)list->pdata[0])->artifact_paths);
	g_assert_cmpstrv(((QsimRequest *)list->pdata[1])->artifact_paths, paths);
	g_clear_pointer(&list, g_ptr_array_unref);

	list = qsim_store_list_artifacts(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 0);
	g_clear_pointer(&list, g_ptr_array_unref);

	fx->now += 500;
	g_ptr_array_add(batch, record("z/file", QSIM_ARTIFACT_FILE, 1234, SHA_A, NULL));
	g_ptr_array_add(batch, record("a/link", QSIM_ARTIFACT_SYMLINK, 5, SHA_B, "../z"));
	g_assert_true(qsim_store_add_artifacts(fx->store, r->uuid, batch, &error));
	g_assert_no_error(error);
	list = qsim_store_list_artifacts(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 2);
	a = list->pdata[0];
	g_assert_cmpstr(a->name, ==, "a/link");
	g_assert_cmpint(a->kind, ==, QSIM_ARTIFACT_SYMLINK);
	g_assert_cmpstr(a->target, ==, "../z");
	g_assert_cmpuint(a->size, ==, 5);
	a = list->pdata[1];
	g_assert_cmpstr(a->name, ==, "z/file");
	g_assert_cmpint(a->kind, ==, QSIM_ARTIFACT_FILE);
	g_assert_cmpuint(a->size, ==, 1234);
	g_assert_cmpstr(a->sha256, ==, SHA_A);
	g_assert_cmpuint(a->mode, ==, 0640);
	g_assert_null(a->target);
	g_assert_cmpint(a->created_at, ==, fx->now);
	g_clear_pointer(&list, g_ptr_array_unref);

	/* a batch with one name already recorded stores nothing */
	g_ptr_array_add(dup, record("new", QSIM_ARTIFACT_FILE, 1, SHA_A, NULL));
	g_ptr_array_add(dup, record("z/file", QSIM_ARTIFACT_FILE, 1, SHA_A, NULL));
	g_assert_false(qsim_store_add_artifacts(fx->store, r->uuid, dup, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);
	list = qsim_store_list_artifacts(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 2);
	g_clear_pointer(&list, g_ptr_array_unref);

	/* the rows go with their request */
	cancel_and_delete(fx->store, r->uuid);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT count(*) FROM artifacts"), ==, 0);
	g_assert_null(qsim_store_list_artifacts(fx->store, r->uuid, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_false(qsim_store_add_artifacts(fx->store, r->uuid, batch, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
}

static GBytes *
pattern_bytes(gsize len, guint salt)
{
	guint8 *data = g_malloc(len);

	/* every byte value, NULs included: the chunk path must be binary-clean */
	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)((i * 31 + salt) & 0xff);
	return g_bytes_new_take(data, len);
}

static void
put(QsimStore *store, const gchar *id, guint idx, guint seq, GBytes *data)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(qsim_store_upload_put_chunk(store, id, idx, seq, data, &error));
	g_assert_no_error(error);
}

static void
assert_chunk(QsimStore *store, const gchar *id, guint idx, guint seq, GBytes *expected)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) got = qsim_store_upload_read_chunk(store, id, idx, seq, &error);

	g_assert_no_error(error);
	g_assert_nonnull(got);
	g_assert_true(g_bytes_equal(got, expected));
}

/* Spooled, taken by the request that names them, read back exactly, deleted */
static void
test_uploads(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *id = g_uuid_string_random();
	g_autofree gchar *partial = g_uuid_string_random();
	g_autoptr(GBytes) full = pattern_bytes(QSIM_UPLOAD_CHUNK_MAX, 7);
	g_autoptr(GBytes) tail = pattern_bytes(1000, 3);
	g_autoptr(GBytes) tarball = pattern_bytes(4096, 11);
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimRequest) other = NULL;
	g_autoptr(GPtrArray) list = NULL;
	const QsimUploadRecord *u;

	g_assert_true(qsim_store_upload_add_file(fx->store, id, 0, QSIM_UPLOAD_FILE, "/tmp/in.bin",
	                                         0755, &error));
	g_assert_true(qsim_store_upload_add_file(fx->store, id, 1, QSIM_UPLOAD_TAR_GZ, "/opt/tree",
	                                         0644, &error));
	g_assert_no_error(error);
	put(fx->store, id, 0, 0, full);
	put(fx->store, id, 0, 1, tail);
	put(fx->store, id, 1, 0, tarball);
	g_assert_true(qsim_store_upload_finish_file(fx->store, id, 0, QSIM_UPLOAD_CHUNK_MAX + 1000,
	                                            SHA_A, &error));
	g_assert_true(qsim_store_upload_finish_file(fx->store, id, 1, 4096, SHA_B, &error));
	g_assert_no_error(error);
	/* the same (id, idx, seq) twice is refused */
	g_assert_false(qsim_store_upload_put_chunk(fx->store, id, 1, 0, tarball, &error));
	g_assert_nonnull(error);
	g_clear_error(&error);

	/* an incomplete part (no sha256 yet) is not taken */
	g_assert_true(qsim_store_upload_add_file(fx->store, partial, 0, QSIM_UPLOAD_FILE, "/tmp/p",
	                                         0600, &error));
	put(fx->store, partial, 0, 0, tail);
	other =
	    qsim_store_create_request_full(fx->store, "tiny", "true", 60, NULL, partial, &error);
	g_assert_no_error(error);
	list = qsim_store_list_uploads(fx->store, other->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 0);
	g_clear_pointer(&list, g_ptr_array_unref);
	g_assert_true(qsim_store_upload_discard(fx->store, partial, &error));
	g_assert_no_error(error);

	r = qsim_store_create_request_full(fx->store, "tiny", "cat /tmp/in.bin", 60, NULL, id,
	                                   &error);
	g_assert_no_error(error);
	list = qsim_store_list_uploads(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 2);
	u = list->pdata[0];
	g_assert_cmpstr(u->upload_id, ==, id);
	g_assert_cmpuint(u->idx, ==, 0);
	g_assert_cmpint(u->kind, ==, QSIM_UPLOAD_FILE);
	g_assert_cmpstr(u->guest_path, ==, "/tmp/in.bin");
	g_assert_cmpuint(u->mode, ==, 0755);
	g_assert_cmpuint(u->size, ==, QSIM_UPLOAD_CHUNK_MAX + 1000);
	g_assert_cmpstr(u->sha256, ==, SHA_A);
	u = list->pdata[1];
	g_assert_cmpint(u->kind, ==, QSIM_UPLOAD_TAR_GZ);
	g_assert_cmpstr(u->guest_path, ==, "/opt/tree");
	g_clear_pointer(&list, g_ptr_array_unref);

	assert_chunk(fx->store, id, 0, 0, full);
	assert_chunk(fx->store, id, 0, 1, tail);
	assert_chunk(fx->store, id, 1, 0, tarball);
	/* past the last chunk: empty */
	assert_chunk(fx->store, id, 0, 2, empty);

	/* a taken spool is no longer discardable */
	g_assert_true(qsim_store_upload_discard(fx->store, id, &error));
	list = qsim_store_list_uploads(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 2);
	g_clear_pointer(&list, g_ptr_array_unref);

	g_assert_true(qsim_store_delete_uploads(fx->store, r->uuid, &error));
	g_assert_no_error(error);
	list = qsim_store_list_uploads(fx->store, r->uuid, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(list->len, ==, 0);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT count(*) FROM uploads"), ==, 0);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT count(*) FROM upload_chunks"), ==, 0);
}

/* Deleting the request deletes its spooled inputs */
static void
test_uploads_cascade(StoreFixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *id = g_uuid_string_random();
	g_autoptr(GBytes) bytes = pattern_bytes(10, 1);
	g_autoptr(QsimRequest) r = NULL;

	g_assert_true(
	    qsim_store_upload_add_file(fx->store, id, 0, QSIM_UPLOAD_TAR, "/srv/x", 0644, &error));
	put(fx->store, id, 0, 0, bytes);
	g_assert_true(qsim_store_upload_finish_file(fx->store, id, 0, 10, SHA_A, &error));
	r = qsim_store_create_request_full(fx->store, "tiny", "true", 60, NULL, id, &error);
	g_assert_no_error(error);
	cancel_and_delete(fx->store, r->uuid);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT count(*) FROM uploads"), ==, 0);
	g_assert_cmpint(store_test_raw_int(fx->path, "SELECT count(*) FROM upload_chunks"), ==, 0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                                              \
	g_test_add(path, StoreFixture, NULL, store_fixture_setup, fn, store_fixture_teardown)
	ADD("/qsim/store/artifacts/records", test_artifacts);
	ADD("/qsim/store/uploads/round-trip", test_uploads);
	ADD("/qsim/store/uploads/cascade", test_uploads_cascade);
	return g_test_run();
}
