#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "store/qsim-store-import.h"
#include "store/qsim-store-private.h"

#define EXPORT_MAX_LIMIT 1000

QsimImportRow *
qsim_import_row_new(QsimRequest *request, const gchar *end_reason)
{
	QsimImportRow *self = g_new0(QsimImportRow, 1);

	self->request = request;
	self->end_reason = g_strdup(end_reason);
	return self;
}

void
qsim_import_row_free(QsimImportRow *self)
{
	if (self == NULL)
		return;
	qsim_request_free(self->request);
	g_free(self->end_reason);
	g_free(self);
}

static gboolean
check_supported(QsimStore *self, gconstpointer vfunc, GError **error)
{
	if (vfunc != NULL)
		return TRUE;
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_STORE, "the %s backend cannot copy databases",
	            G_OBJECT_TYPE_NAME(self));
	return FALSE;
}

GPtrArray *
qsim_store_export_requests(QsimStore *self, gint64 after_id, guint limit, gsize max_bytes,
                           gint64 *out_last_id, GError **error)
{
	QsimStoreClass *klass;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	g_return_val_if_fail(out_last_id != NULL, NULL);
	klass = QSIM_STORE_GET_CLASS(self);
	if (!check_supported(self, klass->export_requests, error))
		return NULL;
	if (after_id < 0 || limit < 1 || limit > EXPORT_MAX_LIMIT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "an export takes 1 to %u rows after a cursor >= 0", EXPORT_MAX_LIMIT);
		return NULL;
	}
	return klass->export_requests(self, after_id, limit, max_bytes, out_last_id, error);
}

/* What insert_request and the transition table would guarantee, checked again:
 * the source may be a database an older or a broken qsim wrote */
static gboolean
check_row(const QsimImportRow *row, GError **error)
{
	const QsimRequest *r = row->request;

	if (r == NULL || r->uuid == NULL || !g_uuid_string_is_valid(r->uuid)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "a row has no valid UUID");
		return FALSE;
	}
	if (!qsim_store_check_text("vm_name", r->vm_name, VM_NAME_MAX, error) ||
	    !qsim_store_check_text("commands", r->commands, G_MAXINT, error))
		goto bad;
	if (r->timeout_s <= 0 || r->created_at <= 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "timeout and created_at must be > 0");
		goto bad;
	}
	if ((guint)r->status >= QSIM_STATUS_COUNT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown status");
		goto bad;
	}
	return TRUE;
bad:
	g_prefix_error(error, "request %s: ", r->uuid);
	return FALSE;
}

gboolean
qsim_store_import_requests(QsimStore *self, GPtrArray *rows, guint *out_inserted, GError **error)
{
	QsimStoreClass *klass;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(rows != NULL && out_inserted != NULL, FALSE);
	klass = QSIM_STORE_GET_CLASS(self);
	*out_inserted = 0;
	if (!check_supported(self, klass->import_requests, error))
		return FALSE;
	for (guint i = 0; i < rows->len; i++) {
		if (!check_row(rows->pdata[i], error))
			return FALSE;
	}
	if (rows->len == 0)
		return TRUE;
	return klass->import_requests(self, rows, out_inserted, error);
}

gboolean
qsim_store_import_logs(QsimStore *self, const gchar *uuid, GPtrArray *entries, guint *out_inserted,
                       GError **error)
{
	QsimStoreClass *klass;
	g_autofree gchar *lower = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(entries != NULL && out_inserted != NULL, FALSE);
	klass = QSIM_STORE_GET_CLASS(self);
	*out_inserted = 0;
	if (!check_supported(self, klass->import_logs, error))
		return FALSE;
	lower = qsim_store_normalize_uuid(uuid, error);
	if (lower == NULL)
		return FALSE;
	for (guint i = 0; i < entries->len; i++) {
		const QsimLogEntry *e = entries->pdata[i];

		if (e->seq < 1 || (guint)e->log_type >= QSIM_LOG_TYPE_COUNT) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "log chunk %" G_GINT64_FORMAT " of %s: bad seq or type", e->seq,
			            lower);
			return FALSE;
		}
	}
	if (entries->len == 0)
		return TRUE;
	return klass->import_logs(self, lower, entries, out_inserted, error);
}

gboolean
qsim_store_count_rows(QsimStore *self, guint64 *out_requests, guint64 *out_logs, GError **error)
{
	QsimStoreClass *klass;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_requests != NULL && out_logs != NULL, FALSE);
	klass = QSIM_STORE_GET_CLASS(self);
	if (!check_supported(self, klass->count_rows, error))
		return FALSE;
	return klass->count_rows(self, out_requests, out_logs, error);
}

gboolean
qsim_store_import_artifacts(QsimStore *self, const gchar *uuid, GPtrArray *records,
                            guint *out_inserted, GError **error)
{
	QsimStoreClass *klass;
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(records != NULL && out_inserted != NULL, FALSE);
	klass = QSIM_STORE_GET_CLASS(self);
	if (!check_supported(self, klass->import_artifacts, error))
		return FALSE;
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	for (guint i = 0; i < records->len; i++) {
		const QsimArtifactRecord *r = records->pdata[i];

		/* what the source holds passed qsim_store_add_artifacts()'s checks once */
		if (r->name == NULL || r->name[0] == '\0' || r->sha256 == NULL ||
		    strlen(r->sha256) != 64 || r->mode > 07777 || r->size > G_MAXINT64) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "request %s: artifact '%s' is incomplete", id,
			            r->name != NULL ? r->name : "");
			return FALSE;
		}
	}
	*out_inserted = 0;
	if (records->len == 0)
		return TRUE;
	return klass->import_artifacts(self, id, records, out_inserted, error);
}

gboolean
qsim_store_count_artifacts(QsimStore *self, guint64 *out_count, GError **error)
{
	QsimStoreClass *klass;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_count != NULL, FALSE);
	klass = QSIM_STORE_GET_CLASS(self);
	if (!check_supported(self, klass->count_artifacts, error))
		return FALSE;
	return klass->count_artifacts(self, out_count, error);
}
