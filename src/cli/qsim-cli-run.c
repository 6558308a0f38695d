#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qsim-cli-commands.h"
#include "qsim-cli-follow.h"
#include "qsim-cli-json.h"

typedef struct {
	QsimCli *cli;
	gchar *vm_name;
	GCancellable *cancellable;
	GError *error;
	gboolean interrupted;
	gboolean tty;          /* stderr is a terminal: show progress */
	gboolean progress_on;  /* a progress line is on screen */
	gboolean output_begun; /* the guest wrote something: no more progress */
	gchar *phase;
	gint64 started_us;
	guint tick_id;
} QsimCliRun;

static void
qsim_cli_run_progress_clear(QsimCliRun *ctx)
{
	if (!ctx->progress_on)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	ctx->progress_on = FALSE;
}

static void
qsim_cli_run_progress_draw(QsimCliRun *ctx)
{
	gint64 secs;

	if (!ctx->tty || ctx->output_begun || ctx->phase == NULL)
		return;
	secs = (g_get_monotonic_time() - ctx->started_us) / G_USEC_PER_SEC;
	fputs("\r\033[K", stderr);
	/* TRANSLATORS: progress line while a VM starts: VM name, phase, seconds elapsed */
	fprintf(stderr, _("%s: %s… %d s"), ctx->vm_name, ctx->phase, (gint)secs);
	fflush(stderr);
	ctx->progress_on = TRUE;
}

static gboolean
qsim_cli_run_tick_cb(gpointer user_data)
{
	qsim_cli_run_progress_draw(user_data);
	return G_SOURCE_CONTINUE;
}

static void
qsim_cli_run_set_phase(QsimCliRun *ctx, const gchar *phase)
{
	g_free(ctx->phase);
	ctx->phase = g_strdup(phase);
	qsim_cli_run_progress_draw(ctx);
}

static void
qsim_cli_run_write(QsimCliRun *ctx, FILE *out, JsonObject *entry)
{
	g_autoptr(GBytes) output = NULL;
	gsize len = 0;
	const guint8 *data;

	if (ctx->error != NULL)
		return;
	output = qsim_cli_json_log_output(entry, &ctx->error);
	if (output == NULL)
		return;
	data = g_bytes_get_data(output, &len);
	if (len == 0)
		return;
	qsim_cli_run_progress_clear(ctx);
	ctx->output_begun = TRUE;
	fwrite(data, 1, len, out);
	fflush(out);
}

static void
qsim_cli_run_event_cb(const gchar *event, JsonObject *data, gpointer user_data)
{
	QsimCliRun *ctx = user_data;

	if (g_strcmp0(event, "status") == 0) {
		const gchar *status = qsim_cli_json_get_string(data, "status");
		if (g_strcmp0(status, "acknowledged") == 0)
			/* TRANSLATORS: progress phase */
			qsim_cli_run_set_phase(ctx, _("starting the VM"));
		else if (g_strcmp0(status, "running") == 0)
			/* TRANSLATORS: progress phase */
			qsim_cli_run_set_phase(ctx, _("booting"));
		else if (g_strcmp0(status, "hold") == 0)
			/* TRANSLATORS: progress phase */
			qsim_cli_run_set_phase(ctx, _("on hold"));
		else if (g_strcmp0(status, "pending") == 0)
			/* TRANSLATORS: progress phase */
			qsim_cli_run_set_phase(ctx, _("waiting for an agent"));
		return;
	}
	if (g_strcmp0(event, "log") != 0)
		return;
	{
		const gchar *log_type = qsim_cli_json_get_string(data, "log_type");
		if (g_strcmp0(log_type, "stdout") == 0)
			qsim_cli_run_write(ctx, stdout, data);
		else if (g_strcmp0(log_type, "stderr") == 0)
			qsim_cli_run_write(ctx, stderr, data);
		else if (g_strcmp0(log_type, "boot") == 0 && !ctx->output_begun &&
		         g_strcmp0(ctx->phase, _("booting")) != 0)
			qsim_cli_run_set_phase(ctx, _("booting"));
		else if (g_strcmp0(log_type, "command") == 0)
			/* TRANSLATORS: progress phase */
			qsim_cli_run_set_phase(ctx, _("running the commands"));
	}
}

static gboolean
qsim_cli_run_sigint_cb(gpointer user_data)
{
	QsimCliRun *ctx = user_data;

	ctx->interrupted = TRUE;
	g_cancellable_cancel(ctx->cancellable);
	return G_SOURCE_CONTINUE;
}

static gboolean
qsim_cli_error_says_timeout(const gchar *error)
{
	g_autofree gchar *lower = NULL;

	if (error == NULL)
		return FALSE;
	lower = g_ascii_strdown(error, -1);
	return strstr(lower, "timeout") != NULL || strstr(lower, "timed out") != NULL ||
	       strstr(lower, "timed_out") != NULL;
}

/* the end event decides the exit status: the guest's own, or 124/125/130 */
static gint
qsim_cli_run_exit_status(QsimCli *cli, const gchar *uuid, JsonObject *end)
{
	const gchar *status = qsim_cli_json_get_string(end, "status");
	const gchar *error = qsim_cli_json_get_string(end, "error");
	gint64 exit_code = -1;
	gboolean has_exit = qsim_cli_json_get_int(end, "exit_code", &exit_code);

	if (g_strcmp0(status, "done") == 0)
		return has_exit && exit_code >= 0 && exit_code <= 255 ? (gint)exit_code : 0;
	if (g_strcmp0(status, "cancelled") == 0) {
		/* TRANSLATORS: %s is a request UUID */
		qsim_cli_printerr(_("request %s was cancelled"), uuid);
		return QSIM_CLI_EXIT_INTERRUPTED;
	}
	if (g_strcmp0(status, "failed") == 0 && qsim_cli_error_says_timeout(error)) {
		/* TRANSLATORS: %s is a request UUID */
		qsim_cli_printerr(_("request %s timed out"), uuid);
		return QSIM_CLI_EXIT_TIMEOUT;
	}
	if (g_strcmp0(status, "failed") == 0 && has_exit && exit_code > 0 && exit_code <= 255)
		return (gint)exit_code;
	/* TRANSLATORS: %s is a request UUID, then the server's reason */
	qsim_cli_printerr(_("request %s failed: %s"), uuid,
	                  error != NULL ? error : (status != NULL ? status : "?"));
	return QSIM_CLI_EXIT_INFRA;
}

static void
qsim_cli_run_cancel_request(QsimCli *cli, const gchar *uuid)
{
	g_autofree gchar *path = g_strdup_printf("/requests/%s", uuid);
	g_autoptr(GError) error_local = NULL;
	g_autoptr(JsonNode) reply = NULL;

	if (!qsim_cli_call(cli, "DELETE", path, NULL, &reply, NULL, &error_local)) {
		/* TRANSLATORS: %s is a request UUID, then the reason */
		qsim_cli_printerr(_("could not cancel request %s: %s"), uuid, error_local->message);
		return;
	}
	/* TRANSLATORS: shown after Ctrl-C; %s is a request UUID */
	qsim_cli_printerr(_("request %s cancelled"), uuid);
}

static gboolean
qsim_cli_cmd_run(QsimCli *cli, gchar **args, GError **error)
{
	QsimCliRun ctx = {.cli = cli};
	g_autofree gchar *uuid = NULL;
	g_autoptr(JsonNode) end = NULL;
	g_autoptr(GError) error_local = NULL;
	guint sigint_id;
	gboolean ok;

	/* Ctrl-C during the submit itself is handled once the stream runs the loop */
	ctx.cancellable = g_cancellable_new();
	sigint_id = g_unix_signal_add(SIGINT, qsim_cli_run_sigint_cb, &ctx);
	uuid = qsim_cli_submit(cli, args, NULL, &error_local);
	if (uuid == NULL) {
		g_source_remove(sigint_id);
		g_object_unref(ctx.cancellable);
		if (cli->exit_code != QSIM_CLI_EXIT_USAGE)
			cli->exit_code = QSIM_CLI_EXIT_INFRA;
		g_propagate_error(error, g_steal_pointer(&error_local));
		return FALSE;
	}
	g_debug("submitted %s", uuid);
	ctx.vm_name = g_strdup(args[0]);
	ctx.tty = isatty(STDERR_FILENO);
	ctx.started_us = g_get_monotonic_time();
	if (ctx.tty)
		ctx.tick_id = g_timeout_add_seconds(1, qsim_cli_run_tick_cb, &ctx);
	qsim_cli_run_set_phase(&ctx, _("waiting for an agent"));

	ok = qsim_cli_follow(cli, uuid, NULL, qsim_cli_run_event_cb, &ctx, ctx.cancellable, &end,
	                     &error_local);
	if (ctx.tick_id != 0)
		g_source_remove(ctx.tick_id);
	qsim_cli_run_progress_clear(&ctx);
	g_source_remove(sigint_id);

	if (!ok && ctx.interrupted) {
		qsim_cli_run_cancel_request(cli, uuid);
		cli->exit_code = QSIM_CLI_EXIT_INTERRUPTED;
	} else if (!ok) {
		g_prefix_error(&error_local, _("lost request %s: "), uuid);
		cli->exit_code = QSIM_CLI_EXIT_INFRA;
		g_propagate_error(error, g_steal_pointer(&error_local));
	} else if (ctx.error != NULL) {
		cli->exit_code = QSIM_CLI_EXIT_INFRA;
		g_propagate_error(error, g_steal_pointer(&ctx.error));
		ok = FALSE;
	} else {
		cli->exit_code = qsim_cli_run_exit_status(cli, uuid, json_node_get_object(end));
		/* the outputs, whatever the status: a failed test's report matters most */
		if (cli->opt_output_dir != NULL &&
		    !qsim_cli_artifacts_download(cli, uuid, cli->opt_output_dir, NULL, NULL,
		                                 &error_local)) {
			/* TRANSLATORS: the reason artifacts could not be downloaded */
			g_prefix_error(&error_local, _("cannot download the artifacts: "));
			cli->exit_code = QSIM_CLI_EXIT_INFRA;
			g_propagate_error(error, g_steal_pointer(&error_local));
			ok = FALSE;
		}
	}
	g_clear_error(&ctx.error);
	g_object_unref(ctx.cancellable);
	g_free(ctx.vm_name);
	g_free(ctx.phase);
	/* interrupted is not an error line of its own: the cancel message said it */
	return ok || ctx.interrupted;
}

/**
 * qsim_cli_run_register:
 * @cmds: (element-type QsimCliCmd): the command table, which takes ownership
 *
 * Adds run.
 */
void
qsim_cli_run_register(GPtrArray *cmds)
{
	g_ptr_array_add(
	    cmds,
	    qsim_cli_cmd_new(
	        "run",
	        _("VM [--timeout S] [--upload LOCAL:/GUEST]... [--artifact PATH]... [-o DIR] -- "
	          "COMMANDS"),
	        /* TRANSLATORS: command description */
	        _("Run commands in a VM, stream their output and exit with their "
	          "status"),
	        QSIM_CLI_OPT_TIMEOUT | QSIM_CLI_OPT_ARTIFACT | QSIM_CLI_OPT_OUTPUT_DIR |
	            QSIM_CLI_OPT_UPLOAD,
	        qsim_cli_cmd_run));
}
