#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "store/qsim-store-private.h"

static gboolean
check_record(const QsimArtifactRecord *r, GError **error)
{
	if (!qsim_artifact_name_validate(r->name, error))
		return FALSE;
	if (r->sha256 == NULL || strlen(r->sha256) != 64 || r->mode > 07777 ||
	    r->size > G_MAXINT64 || (r->kind == QSIM_ARTIFACT_SYMLINK && r->target == NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "artifact '%s' is incomplete",
		            r->name);
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_store_add_artifacts:
 *
 * Returns: %TRUE once every record is stored
 */
gboolean
qsim_store_add_artifacts(QsimStore *self, const gchar *uuid, GPtrArray *records, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(records != NULL, FALSE);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return FALSE;
	for (guint i = 0; i < records->len; i++) {
		if (!check_record(records->pdata[i], error))
			return FALSE;
	}
	if (QSIM_STORE_GET_CLASS(self)->add_artifacts == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "this store cannot record artifacts");
		return FALSE;
	}
	if (records->len == 0)
		return TRUE;
	return QSIM_STORE_GET_CLASS(self)->add_artifacts(self, id, records, error);
}

/**
 * qsim_store_list_artifacts:
 *
 * Returns: (transfer container) (element-type QsimArtifactRecord): by name
 */
GPtrArray *
qsim_store_list_artifacts(QsimStore *self, const gchar *uuid, GError **error)
{
	g_autofree gchar *id = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	id = qsim_store_normalize_uuid(uuid, error);
	if (id == NULL)
		return NULL;
	if (QSIM_STORE_GET_CLASS(self)->list_artifacts == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "this store cannot list artifacts");
		return NULL;
	}
	return QSIM_STORE_GET_CLASS(self)->list_artifacts(self, id, error);
}
