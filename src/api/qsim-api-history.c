#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-error.h"
#include "api/qsim-api-handlers.h"
#include "api/qsim-api-json.h"

/* GET /stats/history: the last hour by minute, for the dashboard's charts. */

#define HISTORY_BUCKETS 60
#define HISTORY_BUCKET_MS (60 * 1000)
/* past this many finished requests in the hour the oldest buckets are partial */
#define HISTORY_MAX_SAMPLES 10000

static gint
cmp_gint64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return x < y ? -1 : x > y;
}

static void
add_seconds_or_null(JsonBuilder *b, const gchar *name, GArray *ms, gdouble quantile)
{
	json_builder_set_member_name(b, name);
	if (ms->len == 0) {
		json_builder_add_null_value(b);
		return;
	}
	g_array_sort(ms, cmp_gint64);
	json_builder_add_double_value(
	    b, g_array_index(ms, gint64, (guint)(quantile * (ms->len - 1))) / 1000.0);
}

void
qsim_api_history_get(QsimApiContext *ctx)
{
	QsimStore *store = qsim_api_server_get_store(ctx->server);
	gint64 now = qsim_store_now_ms(store);
	/* whole minutes, so a chart redrawn later lines up with the one before */
	gint64 end = (now / HISTORY_BUCKET_MS + 1) * HISTORY_BUCKET_MS;
	gint64 start = end - (gint64)HISTORY_BUCKETS * HISTORY_BUCKET_MS;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) samples =
	    qsim_store_list_finished_since(store, start, HISTORY_MAX_SAMPLES, &error);
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonNode) root = NULL;
	guint done[HISTORY_BUCKETS] = {0}, other[HISTORY_BUCKETS] = {0};
	GArray *first_byte[HISTORY_BUCKETS];

	if (samples == NULL) {
		qsim_api_error_respond_gerror(ctx->msg, error);
		return;
	}
	for (guint i = 0; i < HISTORY_BUCKETS; i++)
		first_byte[i] = g_array_new(FALSE, FALSE, sizeof(gint64));
	for (guint i = 0; i < samples->len; i++) {
		const QsimFinishedSample *s = samples->pdata[i];
		gint64 k = (s->finished_at - start) / HISTORY_BUCKET_MS;

		if (k < 0 || k >= HISTORY_BUCKETS)
			continue;
		if (s->status == QSIM_STATUS_DONE)
			done[k]++;
		else
			other[k]++;
		if (s->first_output_at > 0 && s->first_output_at >= s->created_at) {
			gint64 d = s->first_output_at - s->created_at;
			g_array_append_val(first_byte[k], d);
		}
	}
	b = json_builder_new_immutable();
	json_builder_begin_object(b);
	qsim_api_json_add_timestamp(b, "start", start);
	json_builder_set_member_name(b, "bucket_s");
	json_builder_add_int_value(b, HISTORY_BUCKET_MS / 1000);
	json_builder_set_member_name(b, "partial");
	json_builder_add_boolean_value(b, samples->len >= HISTORY_MAX_SAMPLES);
	json_builder_set_member_name(b, "buckets");
	json_builder_begin_array(b);
	for (guint i = 0; i < HISTORY_BUCKETS; i++) {
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "done");
		json_builder_add_int_value(b, done[i]);
		json_builder_set_member_name(b, "failed");
		json_builder_add_int_value(b, other[i]);
		add_seconds_or_null(b, "first_byte_p50_s", first_byte[i], 0.5);
		add_seconds_or_null(b, "first_byte_max_s", first_byte[i], 1.0);
		json_builder_end_object(b);
		g_array_unref(first_byte[i]);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	qsim_api_json_respond(ctx->msg, SOUP_STATUS_OK, root);
}
