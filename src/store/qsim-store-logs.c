#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-store-private.h"

gint64
qsim_store_append_logs(QsimStore *self, const gchar *uuid, GPtrArray *chunks, GError **error)
{
	g_autofree gchar *id = NULL;
	gint64 last_seq;

	g_return_val_if_fail(QSIM_IS_STORE(self), -1);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return -1;
	if (chunks == NULL || chunks->len == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "no log chunks given");
		return -1;
	}
	for (guint i = 0; i < chunks->len; i++) {
		const QsimLogEntry *entry = g_ptr_array_index(chunks, i);

		if (entry == NULL || entry->output == NULL ||
		    (guint)entry->log_type >= QSIM_LOG_TYPE_COUNT || entry->timestamp_ms < 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "log chunk %u is malformed", i);
			return -1;
		}
	}
	last_seq = QSIM_STORE_GET_CLASS(self)->append_logs(self, id, chunks, error);
	if (last_seq < 0)
		return -1;
	g_signal_emit(self, qsim_store_signals[SIGNAL_LOGS_APPENDED], 0, id, last_seq);
	return last_seq;
}

/**
 * qsim_store_read_logs:
 *
 * Returns: (transfer container) (element-type QsimLogEntry): chunks in seq order
 */
GPtrArray *
qsim_store_read_logs(QsimStore *self, const gchar *uuid, gint64 after_seq, guint limit,
                     gint log_type, GError **error)
{
	return qsim_store_read_logs_page(self, uuid, after_seq, limit, log_type, 0, NULL, error);
}

/**
 * qsim_store_read_logs_page:
 *
 * Returns: (transfer container) (element-type QsimLogEntry): chunks in seq order
 */
GPtrArray *
qsim_store_read_logs_page(QsimStore *self, const gchar *uuid, gint64 after_seq, guint limit,
                          gint log_type, gsize max_bytes, gboolean *out_cut, GError **error)
{
	g_autofree gchar *id = NULL;
	gboolean cut = FALSE;
	GPtrArray *logs;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return NULL;
	if (log_type < -1 || log_type >= QSIM_LOG_TYPE_COUNT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown log type %d", log_type);
		return NULL;
	}
	if (limit == 0)
		limit = QSIM_STORE_LOGS_DEFAULT_LIMIT;
	if (limit > QSIM_STORE_LOGS_MAX_LIMIT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "limit must be 1..%d",
		            QSIM_STORE_LOGS_MAX_LIMIT);
		return NULL;
	}
	logs = QSIM_STORE_GET_CLASS(self)->read_logs(self, id, MAX(after_seq, 0), limit, log_type,
	                                             max_bytes, &cut, error);
	if (out_cut != NULL)
		*out_cut = logs != NULL && cut;
	return logs;
}
