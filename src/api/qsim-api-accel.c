#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include "api/qsim-api-accel.h"
#include "api/qsim-api-json.h"
#include "common/qsim-accel-mode.h"

/**
 * qsim_api_accel_add:
 * @b: a builder inside an object
 * @server: the API server (its config and store)
 * @vm: (nullable): a VM of a host's catalogue, whose ACCEL (its own or that host's) is
 *   shown; %NULL for this process's ACCEL setting
 *
 * Adds "accelerator": the ACCEL setting in force and where it came from, and for each host
 * whose agents recorded a KVM probe verdict in the store, the accelerator VMs get there and
 * why. The store is the source: a `qsimd api` on another host shows the agents' hosts.
 */
void
qsim_api_accel_add(JsonBuilder *b, QsimApiServer *server, const QsimHostVm *vm)
{
	QsimConfig *config = qsim_api_server_get_config(server);
	QsimStore *store = qsim_api_server_get_store(server);
	QsimAccelMode mode = qsim_config_get_accel(config);
	g_autofree gchar *source = NULL;
	g_autoptr(GPtrArray) verdicts = NULL;
	g_autoptr(GError) error = NULL;

	if (vm != NULL && vm->accel_mode != NULL &&
	    qsim_accel_mode_from_string(vm->accel_mode, &mode)) {
		source = g_strdup(vm->accel_source != NULL ? vm->accel_source : "unknown");
	} else {
		source =
		    g_strdup(qsim_config_source_to_string(qsim_config_get_source(config, "ACCEL")));
	}
	verdicts = qsim_store_list_accel_verdicts(store, &error);
	if (verdicts == NULL)
		g_warning("cannot read the accelerator verdicts: %s", error->message);

	json_builder_set_member_name(b, "accelerator");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "setting");
	json_builder_add_string_value(b, qsim_accel_mode_to_string(mode));
	json_builder_set_member_name(b, "source");
	json_builder_add_string_value(b, source);
	json_builder_set_member_name(b, "hosts");
	json_builder_begin_array(b);
	for (guint i = 0; verdicts != NULL && i < verdicts->len; i++) {
		const QsimAccelVerdict *v = g_ptr_array_index(verdicts, i);
		gboolean kvm =
		    mode == QSIM_ACCEL_MODE_KVM || (mode == QSIM_ACCEL_MODE_AUTO && v->kvm);

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "host");
		json_builder_add_string_value(b, v->host);
		json_builder_set_member_name(b, "accel");
		json_builder_add_string_value(b, kvm ? "kvm" : "tcg");
		json_builder_set_member_name(b, "kvm_works");
		json_builder_add_boolean_value(b, v->kvm);
		json_builder_set_member_name(b, "probe");
		json_builder_add_string_value(b, v->reason);
		json_builder_set_member_name(b, "probe_s");
		json_builder_add_double_value(b, v->probe_ms / 1000.0);
		qsim_api_json_add_timestamp(b, "probed_at", v->probed_at);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
}
