#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-vm-name.h"
#include "store/qsim-store-hosts.h"

#define OWNER_MAX 128

/* A backend without hosts (a test double) says so instead of crashing */
#define CHECK_VFUNC(self, name, error, ret)                                                        \
	G_STMT_START                                                                               \
	{                                                                                          \
		if (QSIM_STORE_GET_CLASS(self)->name == NULL) {                                    \
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_STORE,                   \
			                    "this store has no " #name);                           \
			return ret;                                                                \
		}                                                                                  \
	}                                                                                          \
	G_STMT_END

static gboolean
check_host(const gchar *host, GError **error)
{
	if (!qsim_host_id_validate(host, error)) {
		g_prefix_error(error, "host: ");
		return FALSE;
	}
	return TRUE;
}

/* Returns: (transfer full): the host part of @owner, or NULL with INVALID */
static gchar *
owner_host(const gchar *owner, GError **error)
{
	g_autofree gchar *host = NULL;

	if (owner == NULL || strlen(owner) > OWNER_MAX ||
	    !qsim_agent_id_parse(owner, &host, NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "owner must be an agent id (host:pid:n)");
		return NULL;
	}
	return g_steal_pointer(&host);
}

gboolean
qsim_store_publish_host(QsimStore *self, const QsimHostRecord *host, GPtrArray *vms, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(host != NULL, FALSE);
	if (!check_host(host->host, error))
		return FALSE;
	for (guint i = 0; vms != NULL && i < vms->len; i++) {
		const QsimHostVm *v = g_ptr_array_index(vms, i);

		if (!qsim_vm_name_validate(v->vm_name, error))
			return FALSE;
	}
	for (guint i = 0; host->agent_ids != NULL && host->agent_ids[i] != NULL; i++) {
		g_autofree gchar *agent_host = owner_host(host->agent_ids[i], error);

		if (agent_host == NULL)
			return FALSE;
		if (g_strcmp0(agent_host, host->host) != 0) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "agent %s does not belong to host %s", host->agent_ids[i],
			            host->host);
			return FALSE;
		}
	}
	CHECK_VFUNC(self, publish_host, error, FALSE);
	return QSIM_STORE_GET_CLASS(self)->publish_host(self, host, vms, error);
}

GPtrArray *
qsim_store_list_hosts(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	CHECK_VFUNC(self, list_hosts, error, NULL);
	return QSIM_STORE_GET_CLASS(self)->list_hosts(self, error);
}

GPtrArray *
qsim_store_list_host_vms(QsimStore *self, const gchar *vm_name, const gchar *host, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (vm_name != NULL && !qsim_vm_name_validate(vm_name, error))
		return NULL;
	if (host != NULL && !check_host(host, error))
		return NULL;
	CHECK_VFUNC(self, list_host_vms, error, NULL);
	return QSIM_STORE_GET_CLASS(self)->list_host_vms(self, vm_name, host, error);
}

gboolean
qsim_store_claim_slot(QsimStore *self, const gchar *owner, QsimVmSlotKind kind, const gchar *ref,
                      guint max_total, guint max_host, gint64 *out_id, GError **error)
{
	g_autofree gchar *host = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_id != NULL, FALSE);
	*out_id = 0;
	host = owner_host(owner, error);
	if (host == NULL)
		return FALSE;
	if (kind != QSIM_VM_SLOT_WARM && kind != QSIM_VM_SLOT_BUILD) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "a request's slot comes with its claim");
		return FALSE;
	}
	if (!qsim_vm_name_validate(ref, error))
		return FALSE;
	CHECK_VFUNC(self, claim_slot, error, FALSE);
	return QSIM_STORE_GET_CLASS(self)->claim_slot(self, host, owner, kind, ref, max_total,
	                                              max_host, out_id, error);
}

gboolean
qsim_store_release_slot(QsimStore *self, gint64 id, gint kind, gboolean *out_released,
                        GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (out_released != NULL)
		*out_released = FALSE;
	if (id <= 0 || kind >= QSIM_VM_SLOT_KIND_COUNT) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "no such VM slot");
		return FALSE;
	}
	CHECK_VFUNC(self, release_slot, error, FALSE);
	return QSIM_STORE_GET_CLASS(self)->release_slot(self, id, kind, out_released, error);
}

gboolean
qsim_store_adopt_slot(QsimStore *self, gint64 warm_id, const gchar *uuid, const gchar *agent_id,
                      gboolean *out_adopted, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_adopted != NULL, FALSE);
	*out_adopted = FALSE;
	if (warm_id <= 0 || uuid == NULL || strlen(uuid) != 36 || agent_id == NULL ||
	    agent_id[0] == '\0') {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "a slot hand-over needs a slot, a request UUID and an agent");
		return FALSE;
	}
	CHECK_VFUNC(self, adopt_slot, error, FALSE);
	return QSIM_STORE_GET_CLASS(self)->adopt_slot(self, warm_id, uuid, agent_id, out_adopted,
	                                              error);
}

gboolean
qsim_store_release_process_slots(QsimStore *self, const gchar *agent_id, guint *out_n,
                                 GError **error)
{
	g_autofree gchar *host = NULL;
	g_autofree gchar *prefix = NULL;
	GPid pid = 0;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (out_n != NULL)
		*out_n = 0;
	if (!qsim_agent_id_parse(agent_id, &host, &pid)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "owner must be an agent id (host:pid:n)");
		return FALSE;
	}
	/* every id of that process: its agents' and its builder's */
	prefix = g_strdup_printf("%s:%d:", host, (gint)pid);
	CHECK_VFUNC(self, release_owner_slots, error, FALSE);
	return QSIM_STORE_GET_CLASS(self)->release_owner_slots(self, prefix, out_n, error);
}

gboolean
qsim_store_release_stale_host_slots(QsimStore *self, guint *out_n, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	if (out_n != NULL)
		*out_n = 0;
	CHECK_VFUNC(self, release_stale_host_slots, error, FALSE);
	return QSIM_STORE_GET_CLASS(self)->release_stale_host_slots(self, out_n, error);
}

GPtrArray *
qsim_store_list_slots(QsimStore *self, const gchar *host, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (host != NULL && !check_host(host, error))
		return NULL;
	CHECK_VFUNC(self, list_slots, error, NULL);
	return QSIM_STORE_GET_CLASS(self)->list_slots(self, host, error);
}
