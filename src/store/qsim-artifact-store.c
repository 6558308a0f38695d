#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "store/qsim-artifact-store.h"

G_DEFINE_INTERFACE(QsimArtifactStore, qsim_artifact_store, G_TYPE_OBJECT)

static void
qsim_artifact_store_default_init(QsimArtifactStoreInterface *iface)
{
}

/* The last line of defence: a backend never sees a name that could leave its place. */
static gboolean
check_args(const gchar *uuid, const gchar *name, GError **error)
{
	if (uuid == NULL || strlen(uuid) != 36 || strspn(uuid, "0123456789abcdef-") != 36) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "an artifact's request ID must be a full lowercase UUID");
		return FALSE;
	}
	return name == NULL || qsim_artifact_name_validate(name, error);
}

GOutputStream *
qsim_artifact_store_create(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
                           GError **error)
{
	g_return_val_if_fail(QSIM_IS_ARTIFACT_STORE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);
	if (!check_args(uuid, name, error))
		return NULL;
	return QSIM_ARTIFACT_STORE_GET_IFACE(self)->create(self, uuid, name, error);
}

GInputStream *
qsim_artifact_store_open(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
                         guint64 offset, guint64 *out_size, GError **error)
{
	guint64 size = 0;
	GInputStream *stream;

	g_return_val_if_fail(QSIM_IS_ARTIFACT_STORE(self), NULL);
	g_return_val_if_fail(name != NULL, NULL);
	if (!check_args(uuid, name, error))
		return NULL;
	stream = QSIM_ARTIFACT_STORE_GET_IFACE(self)->open(self, uuid, name, offset, &size, error);
	if (stream != NULL && out_size != NULL)
		*out_size = size;
	return stream;
}

gboolean
qsim_artifact_store_remove(QsimArtifactStore *self, const gchar *uuid, const gchar *name,
                           GError **error)
{
	g_return_val_if_fail(QSIM_IS_ARTIFACT_STORE(self), FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	if (!check_args(uuid, name, error))
		return FALSE;
	return QSIM_ARTIFACT_STORE_GET_IFACE(self)->remove(self, uuid, name, error);
}

gboolean
qsim_artifact_store_delete_request(QsimArtifactStore *self, const gchar *uuid, GError **error)
{
	g_return_val_if_fail(QSIM_IS_ARTIFACT_STORE(self), FALSE);
	if (!check_args(uuid, NULL, error))
		return FALSE;
	return QSIM_ARTIFACT_STORE_GET_IFACE(self)->delete_request(self, uuid, error);
}
