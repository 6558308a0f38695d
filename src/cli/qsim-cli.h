#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "qsim-cli-cmd.h"

G_BEGIN_DECLS

#define QSIM_CLI_DEFAULT_URL "http://127.0.0.1:8000"

/* exit statuses, see docs/api.md and qsim-ctl(1) */
#define QSIM_CLI_EXIT_OK 0
#define QSIM_CLI_EXIT_ERROR 1
#define QSIM_CLI_EXIT_USAGE 2
#define QSIM_CLI_EXIT_TIMEOUT 124
#define QSIM_CLI_EXIT_INFRA 125
#define QSIM_CLI_EXIT_INTERRUPTED 130

/**
 * QsimCli:
 *
 * The state of one qsim-ctl invocation: the HTTP session, the server URL and
 * token, and the parsed options. A plain record: the command files read the
 * option fields directly.
 */
struct _QsimCli {
	SoupSession *session;
	gchar *url;   /* base URL without a trailing slash */
	gchar *token; /* nullable */
	gboolean json;
	/* per-command options, as typed; validated by the commands */
	gchar *opt_status;
	gchar *opt_limit;
	gchar *opt_log_type;
	gchar *opt_timeout;
	gchar *opt_before;
	gchar *opt_host;
	gchar **opt_artifacts; /* --artifact, repeatable */
	gchar *opt_output_dir;
	gchar *opt_get;
	gchar **opt_uploads; /* --upload LOCAL:/GUEST, repeatable */
	gboolean opt_follow;
	gboolean opt_force;
	gboolean opt_wait;
	gint exit_code;
	const QsimCliCmd *cmd; /* the command being run, for usage messages */
};

QsimCli *qsim_cli_new(void);
void qsim_cli_free(QsimCli *cli);
gboolean qsim_cli_set_url(QsimCli *cli, const gchar *url, GError **error);
gboolean qsim_cli_set_token(QsimCli *cli, const gchar *token, GError **error);
void qsim_cli_printerr(const gchar *format, ...) G_GNUC_PRINTF(1, 2);
void qsim_cli_set_exit_code(QsimCli *cli, gint exit_code);
gboolean qsim_cli_usage_error(QsimCli *cli, GError **error, const gchar *format, ...)
    G_GNUC_PRINTF(3, 4);

SoupMessage *qsim_cli_new_message(QsimCli *cli, const gchar *method, const gchar *path_and_query,
                                  GError **error);
gboolean qsim_cli_error_from_reply(QsimCli *cli, SoupMessage *msg, GBytes *body, GError **error);
gboolean qsim_cli_call(QsimCli *cli, const gchar *method, const gchar *path_and_query,
                       JsonNode *body, JsonNode **reply, gchar **next_before, GError **error);

gboolean qsim_cli_check_nargs(QsimCli *cli, gchar **args, guint min, guint max, GError **error);
gboolean qsim_cli_parse_positive(QsimCli *cli, const gchar *option, const gchar *text, guint64 max,
                                 guint64 *value, GError **error);
gboolean qsim_cli_check_status(QsimCli *cli, const gchar *status, GError **error);
gboolean qsim_cli_check_log_type(QsimCli *cli, const gchar *log_type, GError **error);
gboolean qsim_cli_check_vm_name(QsimCli *cli, const gchar *vm_name, GError **error);
gchar *qsim_cli_resolve_request(QsimCli *cli, const gchar *arg, JsonNode **request, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimCli, qsim_cli_free)

G_END_DECLS
