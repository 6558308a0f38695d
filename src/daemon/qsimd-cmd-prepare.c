#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <stdio.h>

#include "agent/qsim-accel-resolver.h"
#include "agent/qsim-template-service.h"
#include "common/qsim-config.h"
#include "common/qsim-error.h"
#include "common/qsim-vm-config.h"
#include "common/qsim-vm-name.h"
#include "daemon/qsimd-commands.h"
#include "vm/qsim-template.h"
#include "store/qsim-store-factory.h"

typedef struct {
	GMainLoop *loop;
	gboolean ok;
	gboolean built;
	GError *error;
} Prepare;

static void
prepare_build_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Prepare *p = user_data;

	p->ok = qsim_template_service_prepare_finish(QSIM_TEMPLATE_SERVICE(source), res, &p->built,
	                                             &p->error);
	g_main_loop_quit(p->loop);
}

static gchar *
prepare_describe(QsimTemplate *tpl, QsimTemplateState state, const gchar *reason)
{
	g_autoptr(QsimTemplateManifest) m = NULL;

	if (state != QSIM_TEMPLATE_STATE_READY)
		return g_strdup_printf("%s (%s)", qsim_template_state_to_string(state),
		                       reason != NULL ? reason : "no reason recorded");
	m = qsim_template_load_manifest(tpl, NULL);
	return g_strdup_printf("ready, %.1f MiB, %" G_GINT64_FORMAT " s old, QEMU %s",
	                       qsim_template_get_size_bytes(tpl) / 1048576.0,
	                       m != NULL ? g_get_real_time() / G_USEC_PER_SEC - m->created_unix
	                                 : (gint64)0,
	                       m != NULL && m->qemu_version != NULL ? m->qemu_version : "?");
}

static gboolean
prepare_one(QsimdContext *ctx, QsimTemplateService *service, const gchar *vm_name, gboolean force,
            gboolean check_only, GError **error)
{
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(QsimTemplate) tpl = NULL;
	g_autofree gchar *reason = NULL;
	g_autofree gchar *text = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	QsimTemplateState state;
	Prepare p = {NULL, FALSE, FALSE, NULL};
	gint64 t0;

	if (!qsim_vm_name_validate(vm_name, error))
		return FALSE;
	config = qsim_vm_config_load(qsim_config_get_vm_images_dir(ctx->config),
	                             qsim_config_get_vm_config_dir(ctx->config), vm_name, error);
	if (config == NULL)
		return FALSE;
	tpl = qsim_template_new(qsim_config_get_state_dir(ctx->config), vm_name);
	qsim_template_set_qemu_binary(tpl, qsim_config_get_qemu(ctx->config));
	qsim_template_set_qemu_img_binary(tpl, qsim_config_get_qemu_img(ctx->config));
	qsim_accel_apply_template(tpl, config);
	state = qsim_template_check(tpl, config, &reason);
	if (check_only) {
		if (qsim_template_is_building(tpl))
			state = QSIM_TEMPLATE_STATE_BUILDING;
		text = prepare_describe(tpl, state, reason);
		g_print("%s: %s\n", vm_name, text);
		return TRUE;
	}
	if (state != QSIM_TEMPLATE_STATE_READY || force)
		g_print("%s: building the template (was %s)\n", vm_name,
		        qsim_template_state_to_string(state));
	loop = g_main_loop_new(NULL, FALSE);
	p.loop = loop;
	t0 = g_get_monotonic_time();
	/* through the service: the build is claimed and recorded in the database */
	qsim_template_service_prepare_async(service, vm_name, force, NULL, prepare_build_cb, &p);
	g_main_loop_run(loop);
	if (!p.ok) {
		g_propagate_error(error, p.error);
		return FALSE;
	}
	if (!p.built) {
		text = prepare_describe(tpl, QSIM_TEMPLATE_STATE_READY, NULL);
		g_print("%s: %s\n", vm_name, text);
		return TRUE;
	}
	g_print("%s: template ready in %.1f s, %.1f MiB in %s\n", vm_name,
	        (g_get_monotonic_time() - t0) / 1e6, qsim_template_get_size_bytes(tpl) / 1048576.0,
	        qsim_template_get_dir(tpl));
	return TRUE;
}

/**
 * qsimd_cmd_prepare:
 *
 * `qsimd prepare [--force] [--check] VM_NAME…`: builds each VM's fast-start template
 * (boot once, save the running guest) unless a fresh one exists; `--check` only prints
 * the template state. Returns 0 when every VM succeeded, 1 otherwise.
 */
gint
qsimd_cmd_prepare(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	gboolean force = FALSE;
	gboolean check_only = FALSE;
	GOptionEntry entries[] = {
	    {"force", 'f', 0, G_OPTION_ARG_NONE, &force, "Rebuild even a fresh template", NULL},
	    {"check", 'c', 0, G_OPTION_ARG_NONE, &check_only, "Only print each template's state",
	     NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("VM_NAME…");
	g_auto(GStrv) args = g_strdupv(argv);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimAccelResolver) accel = NULL;
	g_autoptr(QsimTemplateService) service = NULL;
	gint status = 0;

	g_option_context_set_summary(octx, "Build fast-start templates: boot each VM once, wait "
	                                   "until its SSH answers and save the running guest, so "
	                                   "requests restore it instead of booting.");
	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse_strv(octx, &args, error)) {
		qsim_error_convert(error);
		return QSIMD_EXIT_USAGE;
	}
	if (g_strv_length(args) < 2) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "prepare needs at least one VM name");
		return QSIMD_EXIT_USAGE;
	}
	store = qsim_store_open(qsim_config_get_store_location(ctx->config), error);
	if (store == NULL)
		return 1;
	/* built and checked under the accelerator the agents use on this host */
	accel = qsim_accel_resolver_new(ctx->config, store);
	if (!qsim_accel_resolver_prepare_sync(accel, error))
		return 1;
	qsim_accel_resolver_set_default(accel);
	service = qsim_template_service_new(ctx->config, store);
	for (guint i = 1; args[i] != NULL; i++) {
		g_autoptr(GError) local = NULL;

		if (!prepare_one(ctx, service, args[i], force, check_only, &local)) {
			g_printerr("qsimd: %s: %s\n", args[i], local->message);
			status = 1;
		}
	}
	qsim_accel_resolver_set_default(NULL);
	return status;
}
