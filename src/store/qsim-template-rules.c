#define G_LOG_DOMAIN "qsim-store"

#include "config.h"

#include "store/qsim-store.h"
#include "store/qsim-template-rules.h"

/*
 * For the backends' claim_prepare, on the row as locked. Returns: FALSE, with @r
 * and @out_force untouched, while another build runs and is not yet stale; else
 * TRUE with @r claimed for @builder and @out_force set from the prepare request
 * the claim takes (the backend clears that request with its write).
 */
gboolean
qsim_template_record_apply_build_claim(QsimTemplateRecord *r, const gchar *builder, gint64 now,
                                       gboolean *out_force)
{
	if (r->state == QSIM_TEMPLATE_RECORD_BUILDING &&
	    r->build_started_at > now - QSIM_STORE_TEMPLATE_BUILD_STALE_MS)
		return FALSE;
	*out_force = r->prepare_requested_at != 0 && r->prepare_force;
	r->state = QSIM_TEMPLATE_RECORD_BUILDING;
	r->build_started_at = now;
	r->build_finished_at = 0;
	g_clear_pointer(&r->reason, g_free);
	g_free(r->builder);
	r->builder = g_strdup(builder);
	r->updated_at = now;
	return TRUE;
}
