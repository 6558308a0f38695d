#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "store/qsim-store-private.h"

/* Every upload call checks its spool id the same way: a UUID, lowercase. */
static gboolean
check_id(const gchar *upload_id, GError **error)
{
	if (upload_id == NULL || !g_uuid_string_is_valid(upload_id)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "an upload id must be a UUID");
		return FALSE;
	}
	return TRUE;
}

#define CALL(self, vfunc, error, ...)                                                              \
	(QSIM_STORE_GET_CLASS(self)->vfunc != NULL                                                 \
	     ? QSIM_STORE_GET_CLASS(self)->vfunc(self, __VA_ARGS__)                                \
	     : (g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,                        \
	                            "this store cannot spool uploads"),                            \
	        FALSE))

gboolean
qsim_store_upload_add_file(QsimStore *self, const gchar *upload_id, guint idx, QsimUploadKind kind,
                           const gchar *guest_path, guint mode, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (!check_id(upload_id, error) || !qsim_guest_path_validate(guest_path, error))
		return FALSE;
	return CALL(self, upload_add_file, error, upload_id, idx, kind, guest_path, mode & 07777,
	            error);
}

gboolean
qsim_store_upload_put_chunk(QsimStore *self, const gchar *upload_id, guint idx, guint seq,
                            GBytes *data, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(data != NULL && g_bytes_get_size(data) <= QSIM_UPLOAD_CHUNK_MAX,
	                     FALSE);
	if (!check_id(upload_id, error))
		return FALSE;
	return CALL(self, upload_put_chunk, error, upload_id, idx, seq, data, error);
}

gboolean
qsim_store_upload_finish_file(QsimStore *self, const gchar *upload_id, guint idx, guint64 size,
                              const gchar *sha256, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(sha256 != NULL, FALSE);
	if (!check_id(upload_id, error))
		return FALSE;
	return CALL(self, upload_finish_file, error, upload_id, idx, size, sha256, error);
}

gboolean
qsim_store_upload_discard(QsimStore *self, const gchar *upload_id, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (!check_id(upload_id, error))
		return FALSE;
	return CALL(self, upload_discard, error, upload_id, error);
}

gboolean
qsim_store_delete_uploads(QsimStore *self, const gchar *uuid, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	return CALL(self, delete_uploads, error, id, error);
}

GPtrArray *
qsim_store_list_uploads(QsimStore *self, const gchar *uuid, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return NULL;
	if (QSIM_STORE_GET_CLASS(self)->list_uploads == NULL)
		return g_ptr_array_new_with_free_func((GDestroyNotify)qsim_upload_record_free);
	return QSIM_STORE_GET_CLASS(self)->list_uploads(self, id, error);
}

GBytes *
qsim_store_upload_read_chunk(QsimStore *self, const gchar *upload_id, guint idx, guint seq,
                             GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!check_id(upload_id, error))
		return NULL;
	if (QSIM_STORE_GET_CLASS(self)->upload_read_chunk == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "this store cannot spool uploads");
		return NULL;
	}
	return QSIM_STORE_GET_CLASS(self)->upload_read_chunk(self, upload_id, idx, seq, error);
}
