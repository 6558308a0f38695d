#include "config.h"

#include <stdint.h>
#include <string.h>

#include "api/qsim-api-json.h"
#include "api/qsim-api-upload.h"
#include "store/qsim-store-factory.h"

/*
 * The streaming multipart/form-data parser of POST /requests, with any body and
 * boundary, fed in pieces of random sizes: no crash, no leak, a refusal only with
 * a 4xx/5xx status, and the same outcome (refused or not, complete or not, the same
 * `request` part) as when the whole body arrives at once. File parts go to a real
 * SQLite store (in /dev/shm when it exists), discarded when the parser is freed.
 *
 * Input layout: byte 0 picks the boundary length (1..70), the next bytes are the
 * boundary (mapped onto RFC 2046's bchars), one byte seeds the piece sizes and one
 * picks MAX_UPLOAD_BYTES; the rest is the body.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static QsimStore *store;

static const gchar bchars[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?";

static QsimStore *
shared_store(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;

	if (store != NULL)
		return store;
	if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)) {
		dir = g_strdup("/dev/shm/qsim-fuzz-mp-XXXXXX");
		dir = g_mkdtemp(g_steal_pointer(&dir));
	}
	if (dir == NULL)
		dir = g_dir_make_tmp("qsim-fuzz-mp-XXXXXX", &error);
	g_assert_nonnull(dir);
	path = g_build_filename(dir, "db.sqlite", NULL);
	store = qsim_store_open(path, &error);
	g_assert_no_error(error);
	return store;
}

typedef struct {
	gboolean fed;
	guint status;
	gboolean complete;
	GBytes *request;
} Outcome;

static void
outcome_clear(Outcome *o)
{
	g_clear_pointer(&o->request, g_bytes_unref);
}

static void
run(const gchar *boundary, guint64 max_bytes, const guint8 *body, gsize len, guint32 seed,
    Outcome *o)
{
	g_autoptr(QsimApiUpload) u = qsim_api_upload_new(shared_store(), boundary, max_bytes);
	GRand *rand = seed != 0 ? g_rand_new_with_seed(seed) : NULL;
	gsize off = 0;
	const gchar *req;
	gsize req_len = 0;

	o->fed = TRUE;
	while (off < len || off == 0) {
		/* mostly small pieces, to split boundaries and headers everywhere */
		gsize piece = rand == NULL ? len
		              : g_rand_int_range(rand, 0, 4) == 0
		                  ? (gsize)g_rand_int_range(rand, 0, 4096)
		                  : (gsize)g_rand_int_range(rand, 0, 9);

		piece = MIN(piece, len - off);
		if (!qsim_api_upload_feed(u, body + off, piece)) {
			o->fed = FALSE;
			break;
		}
		off += piece;
		if (len == 0)
			break;
	}
	if (rand != NULL)
		g_rand_free(rand);
	o->status = qsim_api_upload_get_fail_status(u);
	g_assert_true(o->fed == (o->status == 0));
	g_assert_true(o->status == 0 || (o->status >= 400 && o->status < 600));
	o->complete = qsim_api_upload_is_complete(u);
	req = qsim_api_upload_get_request(u, &req_len);
	if (req != NULL) {
		g_assert_true(o->complete);
		g_assert_cmpuint(req_len, <=, QSIM_API_MAX_BODY);
		o->request = g_bytes_new(req, req_len);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gchar boundary[71];
	gsize blen, pos = 1;
	guint32 seed;
	guint64 max_bytes;
	Outcome whole = {0}, pieces = {0};

	if (size < 4)
		return 0;
	blen = 1 + data[0] % 70;
	if (size < 1 + blen + 2)
		return 0;
	for (gsize i = 0; i < blen; i++)
		boundary[i] = bchars[data[pos++] % (sizeof bchars - 1)];
	boundary[blen] = '\0';
	seed = 1u + data[pos++];
	max_bytes = 1u + ((guint64)data[pos++] << 8);
	run(boundary, max_bytes, data + pos, size - pos, 0, &whole);
	run(boundary, max_bytes, data + pos, size - pos, seed, &pieces);
	/* where the body was cut must not change what it means */
	g_assert_cmpuint(whole.status, ==, pieces.status);
	g_assert_cmpint(whole.complete, ==, pieces.complete);
	g_assert_true((whole.request == NULL) == (pieces.request == NULL));
	if (whole.request != NULL)
		g_assert_true(g_bytes_equal(whole.request, pieces.request));
	outcome_clear(&whole);
	outcome_clear(&pieces);
	return 0;
}
