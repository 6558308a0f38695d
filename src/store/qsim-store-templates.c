#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "common/qsim-error.h"
#include "store/qsim-store-private.h"

#define HOST_MAX 255
#define TEMPLATE_TEXT_MAX 4096

static gboolean
check_template_key(const gchar *vm_name, const gchar *host, GError **error)
{
	return qsim_store_check_text("vm_name", vm_name, VM_NAME_MAX, error) &&
	       qsim_store_check_text("host", host, HOST_MAX, error);
}

static gboolean
check_optional_text(const gchar *field, const gchar *value, GError **error)
{
	return value == NULL || qsim_store_check_text(field, value, TEMPLATE_TEXT_MAX, error);
}

static void
emit_template_changed(QsimStore *self, const gchar *vm_name, const gchar *host)
{
	g_signal_emit(self, qsim_store_signals[SIGNAL_TEMPLATE_CHANGED], 0, vm_name, host);
}

gboolean
qsim_store_upsert_template(QsimStore *self, const QsimTemplateRecord *record, GError **error)
{
	g_autoptr(QsimTemplateRecord) r = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(record != NULL, FALSE);
	if (!check_template_key(record->vm_name, record->host, error))
		return FALSE;
	if ((guint)record->state >= QSIM_TEMPLATE_RECORD_STATE_COUNT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown template state %d",
		            (gint)record->state);
		return FALSE;
	}
	if (!check_optional_text("dir", record->dir, error) ||
	    !check_optional_text("image_sha256", record->image_sha256, error) ||
	    !check_optional_text("config_hash", record->config_hash, error) ||
	    !check_optional_text("qemu_version", record->qemu_version, error))
		return FALSE;
	/* MACHINE may legitimately be "" (QEMU's default) */
	if (record->machine != NULL && !g_utf8_validate(record->machine, -1, NULL)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "machine is not valid UTF-8");
		return FALSE;
	}
	if (record->build_ms < 0 || record->size_bytes > G_MAXINT64 ||
	    record->image_size > G_MAXINT64) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "template sizes and build time must not be negative");
		return FALSE;
	}
	r = qsim_template_record_copy(record);
	g_free(r->reason);
	r->reason = qsim_store_sanitize_reason(record->reason);
	r->updated_at = qsim_store_now_ms(self);
	if (!QSIM_STORE_GET_CLASS(self)->upsert_template(self, r, error))
		return FALSE;
	emit_template_changed(self, r->vm_name, r->host);
	return TRUE;
}

/**
 * qsim_store_get_template:
 *
 * Returns: (transfer full): the row
 */
QsimTemplateRecord *
qsim_store_get_template(QsimStore *self, const gchar *vm_name, const gchar *host, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!check_template_key(vm_name, host, error))
		return NULL;
	return QSIM_STORE_GET_CLASS(self)->get_template(self, vm_name, host, error);
}

/**
 * qsim_store_list_templates:
 *
 * Returns: (transfer container) (element-type QsimTemplateRecord): the rows
 */
GPtrArray *
qsim_store_list_templates(QsimStore *self, const gchar *host, gboolean only_requested,
                          GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (host != NULL && !qsim_store_check_text("host", host, HOST_MAX, error))
		return NULL;
	return QSIM_STORE_GET_CLASS(self)->list_templates(self, host, only_requested, error);
}

/**
 * qsim_store_request_prepare:
 *
 * Returns: (transfer full): the row after the request
 */
QsimTemplateRecord *
qsim_store_request_prepare(QsimStore *self, const gchar *vm_name, const gchar *host, gboolean force,
                           GError **error)
{
	QsimTemplateRecord *r;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!check_template_key(vm_name, host, error))
		return NULL;
	r = QSIM_STORE_GET_CLASS(self)->request_prepare(self, vm_name, host, force != FALSE, error);
	if (r != NULL)
		emit_template_changed(self, vm_name, host);
	return r;
}

gboolean
qsim_store_claim_prepare(QsimStore *self, const gchar *vm_name, const gchar *host,
                         gboolean *out_claimed, gboolean *out_force, GError **error)
{
	g_autofree gchar *builder = qsim_store_dup_builder_id();
	gboolean claimed = FALSE;
	gboolean force = FALSE;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(out_claimed != NULL, FALSE);
	*out_claimed = FALSE;
	if (!check_template_key(vm_name, host, error))
		return FALSE;
	if (!QSIM_STORE_GET_CLASS(self)->claim_prepare(self, vm_name, host, builder, &claimed,
	                                               &force, error))
		return FALSE;
	*out_claimed = claimed;
	if (out_force != NULL)
		*out_force = claimed && force;
	if (claimed)
		emit_template_changed(self, vm_name, host);
	return TRUE;
}

/* ---- accelerator verdicts ------------------------------------------------- */

/**
 * qsim_store_put_accel_verdict:
 * @verdict: the KVM probe's verdict of its host (the row key)
 *
 * Replaces the host's verdict: a host has one accelerator answer at a time.
 *
 * Returns: FALSE with @error on bad fields or a database failure
 */
gboolean
qsim_store_put_accel_verdict(QsimStore *self, const QsimAccelVerdict *verdict, GError **error)
{
	g_autofree gchar *reason = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), FALSE);
	g_return_val_if_fail(verdict != NULL, FALSE);
	if (!qsim_store_check_text("host", verdict->host, HOST_MAX, error) ||
	    !qsim_store_check_text("cache_key", verdict->cache_key, 256, error))
		return FALSE;
	if (verdict->probe_ms < 0 || verdict->probed_at < 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "probe time and date must not be negative");
		return FALSE;
	}
	/* the reason quotes QEMU's stderr: bound it and make it valid UTF-8 */
	reason = qsim_store_sanitize_reason(verdict->reason != NULL ? verdict->reason : "");
	v = qsim_accel_verdict_copy(verdict);
	g_free(v->reason);
	v->reason = g_steal_pointer(&reason);
	if (v->reason == NULL)
		v->reason = g_strdup("");
	return QSIM_STORE_GET_CLASS(self)->put_accel_verdict(self, v, error);
}

/**
 * qsim_store_get_accel_verdict:
 *
 * Returns: (transfer full): the verdict of @host, or %NULL with NOT_FOUND or a database error
 */
QsimAccelVerdict *
qsim_store_get_accel_verdict(QsimStore *self, const gchar *host, GError **error)
{
	g_autoptr(GPtrArray) rows = NULL;

	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	if (!qsim_store_check_text("host", host, HOST_MAX, error))
		return NULL;
	rows = QSIM_STORE_GET_CLASS(self)->list_accel_verdicts(self, host, error);
	if (rows == NULL)
		return NULL;
	if (rows->len == 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
		            "no accelerator verdict for %s", host);
		return NULL;
	}
	return qsim_accel_verdict_copy(g_ptr_array_index(rows, 0));
}

/* Returns: (transfer container) (element-type QsimAccelVerdict): every host's, by host */
GPtrArray *
qsim_store_list_accel_verdicts(QsimStore *self, GError **error)
{
	g_return_val_if_fail(QSIM_IS_STORE(self), NULL);
	return QSIM_STORE_GET_CLASS(self)->list_accel_verdicts(self, NULL, error);
}
