#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-pg-store-private.h"

/* Inputs spooled until an agent puts them into the guest (schema step 8) */

/* Inside the caller's transaction: the request takes the spooled parts */
gboolean
qsim_pg_link_uploads(QsimPgStore *self, const gchar *uuid, const gchar *upload_id, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, uuid);
	qsim_pg_args_text(a, upload_id);
	return qsim_pg_store_exec(self,
	                          "UPDATE uploads SET request_uuid = $1 WHERE upload_id = $2"
	                          " AND request_uuid IS NULL AND sha256 IS NOT NULL",
	                          a, error);
}

gboolean
qsim_pg_upload_add_file(QsimStore *store, const gchar *upload_id, guint idx, QsimUploadKind kind,
                        const gchar *guest_path, guint mode, GError **error)
{
	QsimPgStore *self = QSIM_PG_STORE(store);
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, upload_id);
	qsim_pg_args_int(a, idx);
	qsim_pg_args_text(a, qsim_upload_kind_to_string(kind));
	qsim_pg_args_text(a, guest_path);
	qsim_pg_args_int(a, mode);
	qsim_pg_args_int(a, qsim_pg_now_ms(self));
	return qsim_pg_store_exec(self,
	                          "INSERT INTO uploads (upload_id, idx, kind, guest_path, mode,"
	                          " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
	                          a, error);
}

gboolean
qsim_pg_upload_put_chunk(QsimStore *store, const gchar *upload_id, guint idx, guint seq,
                         GBytes *data, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	gsize len = 0;
	gconstpointer bytes = g_bytes_get_data(data, &len);

	qsim_pg_args_text(a, upload_id);
	qsim_pg_args_int(a, idx);
	qsim_pg_args_int(a, seq);
	/* binary: no hex escaping of up to a chunk's bytes on either side */
	qsim_pg_args_bytes(a, bytes, len);
	return qsim_pg_store_exec(QSIM_PG_STORE(store),
	                          "INSERT INTO upload_chunks (upload_id, idx, seq, data)"
	                          " VALUES ($1, $2, $3, $4)",
	                          a, error);
}

gboolean
qsim_pg_upload_finish_file(QsimStore *store, const gchar *upload_id, guint idx, guint64 size,
                           const gchar *sha256, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, upload_id);
	qsim_pg_args_int(a, idx);
	qsim_pg_args_int(a, (gint64)size);
	qsim_pg_args_text(a, sha256);
	return qsim_pg_store_exec(QSIM_PG_STORE(store),
	                          "UPDATE uploads SET size = $3, sha256 = $4"
	                          " WHERE upload_id = $1 AND idx = $2",
	                          a, error);
}

gboolean
qsim_pg_upload_discard(QsimStore *store, const gchar *upload_id, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, upload_id);
	return qsim_pg_store_exec(
	    QSIM_PG_STORE(store),
	    "DELETE FROM uploads WHERE upload_id = $1 AND request_uuid IS NULL", a, error);
}

gboolean
qsim_pg_delete_uploads(QsimStore *store, const gchar *uuid, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();

	qsim_pg_args_text(a, uuid);
	return qsim_pg_store_exec(QSIM_PG_STORE(store),
	                          "DELETE FROM uploads WHERE request_uuid = $1", a, error);
}

GPtrArray *
qsim_pg_list_uploads(QsimStore *store, const gchar *uuid, GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	g_autoptr(GPtrArray) out = NULL;

	qsim_pg_args_text(a, uuid);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT upload_id, idx, kind, guest_path, mode, size, sha256"
	                          " FROM uploads WHERE request_uuid = $1 ORDER BY idx",
	                          a, error);
	if (res == NULL)
		return NULL;
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_upload_record_free);
	for (gint i = 0; i < PQntuples(res); i++) {
		g_autoptr(QsimUploadRecord) r = g_new0(QsimUploadRecord, 1);

		r->upload_id = qsim_pg_dup(res, i, 0);
		r->idx = (guint)qsim_pg_int(res, i, 1);
		if (!qsim_upload_kind_from_string(PQgetvalue(res, i, 2), &r->kind)) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_STORE,
			                    "an upload has an unknown kind");
			return NULL;
		}
		r->guest_path = qsim_pg_dup(res, i, 3);
		r->mode = (guint)qsim_pg_int(res, i, 4);
		r->size = (guint64)qsim_pg_int(res, i, 5);
		r->sha256 = qsim_pg_dup(res, i, 6);
		g_ptr_array_add(out, g_steal_pointer(&r));
	}
	return g_steal_pointer(&out);
}

GBytes *
qsim_pg_upload_read_chunk(QsimStore *store, const gchar *upload_id, guint idx, guint seq,
                          GError **error)
{
	g_autoptr(QsimPgArgs) a = qsim_pg_args_new();
	g_autoptr(PGresult) res = NULL;
	guchar *data;
	gsize len = 0;
	GBytes *out;

	qsim_pg_args_text(a, upload_id);
	qsim_pg_args_int(a, idx);
	qsim_pg_args_int(a, seq);
	res = qsim_pg_store_query(QSIM_PG_STORE(store),
	                          "SELECT data FROM upload_chunks"
	                          " WHERE upload_id = $1 AND idx = $2 AND seq = $3",
	                          a, error);
	if (res == NULL)
		return NULL;
	/* past the last chunk */
	if (PQntuples(res) == 0)
		return g_bytes_new(NULL, 0);
	data = PQunescapeBytea((const guchar *)PQgetvalue(res, 0, 0), &len);
	if (data == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_STORE,
		                    "cannot decode an upload chunk");
		return NULL;
	}
	out = g_bytes_new(data, len);
	PQfreemem(data);
	return out;
}
