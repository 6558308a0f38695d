#define G_LOG_DOMAIN "qsim-daemon"

#include "config.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/qsim-accel-resolver.h"
#include "common/qsim-config.h"
#include "common/qsim-dir-check.h"
#include "common/qsim-error.h"
#include "common/qsim-vm-config.h"
#include "common/qsim-vm-name.h"
#include "daemon/qsimd-commands.h"
#include "guest/qsim-guest.h"
#include "vm/qsim-vm.h"
#include "store/qsim-store-factory.h"

/* the conventions of timeout(1) and env(1): 124 timed out, 125 the tool itself failed */
#define RUN_VM_EXIT_TIMEOUT 124
#define RUN_VM_EXIT_INFRA 125

typedef struct {
	GMainLoop *loop;
	QsimVm *vm;
	QsimGuest *guest;
	GCancellable *cancellable;
	gchar *command;
	gboolean show_console;
	gboolean dim_console;
	gboolean console_at_line_start;
	guint grace_ms;
	gint exit_status;
	GError *error;
	guint timeout_id;
	guint sigint_id;
	guint sigterm_id;
	guint sighup_id;
	gboolean stopping;
} RunVm;

static void run_vm_stop(RunVm *r, gint exit_status, GError *error);

static void
run_vm_console_cb(QsimVm *vm, GBytes *chunk, gpointer user_data)
{
	RunVm *r = user_data;
	gsize len = 0;
	const gchar *data = g_bytes_get_data(chunk, &len);

	if (!r->show_console)
		return;
	/* raw bytes, so a UTF-8 sequence split across chunks reaches the terminal whole */
	if (r->dim_console)
		fputs("\033[2m", stderr);
	fwrite(data, 1, len, stderr);
	if (r->dim_console)
		fputs("\033[0m", stderr);
	fflush(stderr);
}

static void
run_vm_output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	FILE *f = stream == QSIM_GUEST_STREAM_STDOUT ? stdout : stderr;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(chunk, &len);

	fwrite(data, 1, len, f);
	fflush(f);
}

static gint
run_vm_signal_status(const gchar *name)
{
	const struct {
		const gchar *name;
		gint num;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},
	            {"ABRT", SIGABRT}, {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"SEGV", SIGSEGV},
	            {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
	            {"USR2", SIGUSR2}, {"BUS", SIGBUS}};

	for (guint i = 0; name != NULL && i < G_N_ELEMENTS(sigs); i++) {
		if (g_strcmp0(sigs[i].name, name) == 0)
			return 128 + sigs[i].num;
	}
	return RUN_VM_EXIT_INFRA;
}

static void
run_vm_shutdown_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	RunVm *r = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_shutdown_finish(QSIM_VM(source), res, &error))
		g_warning("%s", error->message);
	g_main_loop_quit(r->loop);
}

/* Ends the run with @exit_status (and @error to print), shutting the VM down first. */
static void
run_vm_stop(RunVm *r, gint exit_status, GError *error)
{
	if (r->stopping) {
		g_clear_error(&error);
		return;
	}
	r->stopping = TRUE;
	r->exit_status = exit_status;
	r->error = error;
	g_clear_handle_id(&r->timeout_id, g_source_remove);
	g_cancellable_cancel(r->cancellable);
	if (r->guest != NULL)
		qsim_guest_close(r->guest);
	qsim_vm_shutdown_async(r->vm, exit_status == 0 || r->error == NULL ? r->grace_ms : 0, NULL,
	                       run_vm_shutdown_cb, r);
}

static void
run_vm_exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	RunVm *r = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *sig = NULL;
	gint status = -1;

	if (!qsim_guest_exec_finish(QSIM_GUEST(source), res, &status, &sig, &error)) {
		if (qsim_vm_get_exit_message(r->vm) != NULL)
			g_prefix_error(&error, "%s; ", qsim_vm_get_exit_message(r->vm));
		run_vm_stop(r, RUN_VM_EXIT_INFRA, g_steal_pointer(&error));
		return;
	}
	if (sig != NULL) {
		run_vm_stop(r, run_vm_signal_status(sig),
		            g_error_new(QSIM_ERROR, QSIM_ERROR_GUEST,
		                        "the command was killed by SIG%s", sig));
		return;
	}
	run_vm_stop(r, status, NULL);
}

static void
run_vm_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	RunVm *r = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_guest_connect_finish(QSIM_GUEST(source), res, &error)) {
		run_vm_stop(r, RUN_VM_EXIT_INFRA, g_steal_pointer(&error));
		return;
	}
	if (r->stopping)
		return;
	g_info("guest host key %s", qsim_guest_get_host_key_fingerprint(r->guest));
	qsim_guest_exec_async(r->guest, r->command, run_vm_output_cb, r, r->cancellable,
	                      run_vm_exec_cb, r);
}

static void
run_vm_ready_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	RunVm *r = user_data;
	g_autoptr(GError) error = NULL;
	const QsimVmConfig *config = qsim_vm_get_config(r->vm);

	if (!qsim_vm_wait_ready_finish(r->vm, res, &error)) {
		run_vm_stop(r, RUN_VM_EXIT_INFRA, g_steal_pointer(&error));
		return;
	}
	if (r->stopping)
		return;
	r->guest = qsim_guest_new(qsim_vm_get_ssh_host(r->vm), qsim_vm_get_ssh_port(r->vm),
	                          config->ssh_user, config->ssh_key_path, config->ssh_password);
	qsim_guest_connect_async(r->guest, g_get_monotonic_time() + 30 * G_USEC_PER_SEC,
	                         r->cancellable, run_vm_connect_cb, r);
}

static void
run_vm_start_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	RunVm *r = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_start_finish(r->vm, res, &error)) {
		run_vm_stop(r, RUN_VM_EXIT_INFRA, g_steal_pointer(&error));
		return;
	}
	if (r->stopping)
		return;
	qsim_vm_wait_ready_async(r->vm, 0, r->cancellable, run_vm_ready_cb, r);
}

static gboolean
run_vm_timeout_cb(gpointer user_data)
{
	RunVm *r = user_data;

	r->timeout_id = 0;
	run_vm_stop(r, RUN_VM_EXIT_TIMEOUT,
	            g_error_new_literal(QSIM_ERROR, QSIM_ERROR_TIMED_OUT, "timed out (--timeout)"));
	return G_SOURCE_REMOVE;
}

static gboolean
run_vm_sigint_cb(gpointer user_data)
{
	RunVm *r = user_data;

	r->sigint_id = 0;
	run_vm_stop(r, 128 + SIGINT,
	            g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED, "interrupted"));
	return G_SOURCE_REMOVE;
}

static gboolean
run_vm_sigterm_cb(gpointer user_data)
{
	RunVm *r = user_data;

	r->sigterm_id = 0;
	run_vm_stop(r, 128 + SIGTERM,
	            g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED, "terminated"));
	return G_SOURCE_REMOVE;
}

static gboolean
run_vm_sighup_cb(gpointer user_data)
{
	RunVm *r = user_data;

	/* like SIGTERM: the VM is shut down and its overlay removed */
	r->sighup_id = 0;
	run_vm_stop(r, 128 + SIGHUP,
	            g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED, "hung up"));
	return G_SOURCE_REMOVE;
}

/* The same decision as the agents': the cached verdict when the database exists (opening
 * one would create it), else a probe of our own. */
static gboolean
run_vm_choose_accel(QsimdContext *ctx, QsimVm *vm, GError **error)
{
	const gchar *db = qsim_config_get_store_location(ctx->config);
	g_autoptr(QsimStore) store = NULL;
	g_autoptr(QsimAccelResolver) accel = NULL;
	g_autoptr(GError) local = NULL;
	g_autofree gchar *why = NULL;

	if (!qsim_config_store_is_sqlite(ctx->config)) {
		store = qsim_store_open(db, &local);
		if (store == NULL)
			g_info("not using the accelerator cache: %s", local->message);
	} else if (g_file_test(db, G_FILE_TEST_IS_REGULAR)) {
		if (!qsim_dir_check_db_path(db, error)) {
			g_prefix_error(error, "DB_PATH: ");
			return FALSE;
		}
		store = qsim_store_open(db, &local);
		if (store == NULL)
			g_info("not using the accelerator cache in %s: %s", db, local->message);
	}
	accel = qsim_accel_resolver_new(ctx->config, store);
	if (!qsim_accel_resolver_prepare_sync(accel, error))
		return FALSE;
	qsim_accel_resolver_set_default(accel);
	qsim_accel_apply_vm(vm, &why);
	qsim_accel_resolver_set_default(NULL);
	g_printerr("qsimd: accelerator: %s\n", why);
	return TRUE;
}

/**
 * qsimd_cmd_run_vm:
 *
 * `qsimd run-vm [--timeout S] [--no-console] <vm_name> [--] <command...>`: boots the VM on
 * a throwaway overlay, streams its console to stderr and the command's stdout/stderr to
 * ours, and exits with the command's status (124 on --timeout, 125 when qsim itself
 * failed, 128+N when the command or qsimd got signal N). No database, no API.
 */
gint
qsimd_cmd_run_vm(QsimdContext *ctx, gint argc, gchar **argv, GError **error)
{
	g_autoptr(GOptionContext) octx = g_option_context_new("VM_NAME [--] COMMAND…");
	g_autoptr(QsimVmConfig) config = NULL;
	g_auto(GStrv) args = g_strdupv(argv);
	gint timeout_s = 0;
	gboolean no_console = FALSE;
	const GOptionEntry entries[] = {
	    {"timeout", 't', 0, G_OPTION_ARG_INT, &timeout_s,
	     "Give up after this many seconds (exit 124)", "SECONDS"},
	    {"no-console", 0, 0, G_OPTION_ARG_NONE, &no_console, "Do not print the serial console",
	     NULL},
	    {NULL},
	};
	RunVm r = {0};
	guint first_cmd;
	gdouble grace;

	g_option_context_set_summary(octx, "Boot a VM on a throwaway overlay, run a command in "
	                                   "it, print its output and exit with its status.");
	g_option_context_add_main_entries(octx, entries, NULL);
	/* options end at the VM name: the command's own flags must reach the guest */
	g_option_context_set_strict_posix(octx, TRUE);
	if (!g_option_context_parse_strv(octx, &args, error)) {
		qsim_error_convert(error);
		return QSIMD_EXIT_USAGE;
	}
	if (args[1] == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "run-vm needs a VM name and a command");
		return QSIMD_EXIT_USAGE;
	}
	first_cmd = 2;
	if (g_strcmp0(args[first_cmd], "--") == 0)
		first_cmd++;
	if (args[first_cmd - 1] == NULL || args[first_cmd] == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "run-vm needs a command to run in the VM");
		return QSIMD_EXIT_USAGE;
	}
	if (timeout_s < 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "--timeout must be positive");
		return QSIMD_EXIT_USAGE;
	}
	if (!qsim_vm_name_validate(args[1], error))
		return QSIMD_EXIT_USAGE;
	config = qsim_vm_config_load(qsim_config_get_vm_images_dir(ctx->config),
	                             qsim_config_get_vm_config_dir(ctx->config), args[1], error);
	if (config == NULL)
		return RUN_VM_EXIT_INFRA;

	/* like ssh(1): the words form one command line for the guest's shell */
	r.command = g_strjoinv(" ", args + first_cmd);
	if (!g_utf8_validate(r.command, -1, NULL)) {
		g_free(r.command);
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "the command is not valid UTF-8");
		return QSIMD_EXIT_USAGE;
	}
	if (!qsim_dir_check_private(qsim_config_get_run_dir(ctx->config), TRUE, error)) {
		g_prefix_error(error, "RUN_DIR: ");
		g_free(r.command);
		return RUN_VM_EXIT_INFRA;
	}
	grace = qsim_config_get_shutdown_grace(ctx->config);
	r.grace_ms = grace > 0 ? (guint)(grace * 1000) : QSIM_VM_DEFAULT_SHUTDOWN_GRACE_MS;
	r.show_console = !no_console;
	r.dim_console = isatty(STDERR_FILENO);
	r.loop = g_main_loop_new(NULL, FALSE);
	r.cancellable = g_cancellable_new();
	r.vm = qsim_vm_new(g_steal_pointer(&config), qsim_config_get_run_dir(ctx->config));
	qsim_vm_set_qemu_binary(r.vm, qsim_config_get_qemu(ctx->config));
	qsim_vm_set_qemu_img_binary(r.vm, qsim_config_get_qemu_img(ctx->config));
	if (!run_vm_choose_accel(ctx, r.vm, error)) {
		g_clear_object(&r.vm);
		g_clear_object(&r.cancellable);
		g_main_loop_unref(r.loop);
		g_free(r.command);
		return RUN_VM_EXIT_INFRA;
	}
	g_signal_connect(r.vm, "console-output", G_CALLBACK(run_vm_console_cb), &r);
	r.sigint_id = g_unix_signal_add(SIGINT, run_vm_sigint_cb, &r);
	r.sigterm_id = g_unix_signal_add(SIGTERM, run_vm_sigterm_cb, &r);
	r.sighup_id = g_unix_signal_add(SIGHUP, run_vm_sighup_cb, &r);
	if (timeout_s > 0)
		r.timeout_id = g_timeout_add_seconds((guint)timeout_s, run_vm_timeout_cb, &r);

	qsim_vm_start_async(r.vm, r.cancellable, run_vm_start_cb, &r);
	g_main_loop_run(r.loop);

	g_clear_handle_id(&r.timeout_id, g_source_remove);
	g_clear_handle_id(&r.sigint_id, g_source_remove);
	g_clear_handle_id(&r.sigterm_id, g_source_remove);
	g_clear_handle_id(&r.sighup_id, g_source_remove);
	g_signal_handlers_disconnect_by_data(r.vm, &r);
	if (r.guest != NULL) {
		/* let the worker finish closing so no callback outlives @r */
		qsim_guest_close(r.guest);
		g_clear_object(&r.guest);
	}
	g_clear_object(&r.vm);
	g_clear_object(&r.cancellable);
	g_main_loop_unref(r.loop);
	g_free(r.command);
	if (r.error != NULL)
		g_propagate_error(error, r.error);
	return r.exit_status;
}
