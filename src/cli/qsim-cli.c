#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qsim-cli-json.h"
#include "qsim-cli.h"

/* idle SSE streams get a keep-alive every 15 s, so this only fires on a dead server */
#define QSIM_CLI_IO_TIMEOUT_S 120

static const gchar *const qsim_cli_statuses[] = {"pending", "acknowledged", "running", "done",
                                                 "failed",  "cancelled",    "hold",    NULL};
static const gchar *const qsim_cli_log_types[] = {"boot",   "command", "stdout",
                                                  "stderr", "system",  NULL};

/**
 * qsim_cli_new:
 *
 * Returns: (transfer full): a client pointing at the default URL, free with qsim_cli_free()
 */
QsimCli *
qsim_cli_new(void)
{
	QsimCli *cli = g_new0(QsimCli, 1);
	g_autofree gchar *agent = g_strdup_printf("qsim-ctl/%s ", PACKAGE_VERSION);

	/* the trailing space makes libsoup append its own product token */
	cli->session = soup_session_new_with_options("user-agent", agent, "timeout",
	                                             QSIM_CLI_IO_TIMEOUT_S, NULL);
	cli->url = g_strdup(QSIM_CLI_DEFAULT_URL);
	return cli;
}

/**
 * qsim_cli_free:
 * @cli: (nullable): a client
 */
void
qsim_cli_free(QsimCli *cli)
{
	if (cli == NULL)
		return;
	g_clear_object(&cli->session);
	g_free(cli->url);
	g_free(cli->token);
	g_free(cli->opt_status);
	g_free(cli->opt_limit);
	g_free(cli->opt_log_type);
	g_free(cli->opt_timeout);
	g_free(cli->opt_before);
	g_strfreev(cli->opt_artifacts);
	g_free(cli->opt_output_dir);
	g_free(cli->opt_get);
	g_strfreev(cli->opt_uploads);
	g_free(cli->opt_host);
	g_free(cli);
}

/**
 * qsim_cli_usage_error:
 * @cli: a client
 * @error: return location for a #GError
 * @format: printf-style message, already translated
 *
 * Sets a %QSIM_ERROR_INVALID error and makes the process exit with status 2.
 *
 * Returns: %FALSE, so that callers can `return qsim_cli_usage_error(...)`
 */
gboolean
qsim_cli_usage_error(QsimCli *cli, GError **error, const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, message);
	cli->exit_code = QSIM_CLI_EXIT_USAGE;
	return FALSE;
}

/**
 * qsim_cli_printerr:
 * @format: printf-style message, already translated, without a newline
 *
 * Prints one "qsim-ctl: message" line on stderr, the only error format users see.
 */
void
qsim_cli_printerr(const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_printerr("qsim-ctl: %s\n", message);
}

/**
 * qsim_cli_set_exit_code:
 * @cli: a client
 * @exit_code: the process exit status to use
 */
void
qsim_cli_set_exit_code(QsimCli *cli, gint exit_code)
{
	cli->exit_code = exit_code;
}

/**
 * qsim_cli_set_url:
 * @cli: a client
 * @url: an http:// or https:// base URL, optionally with a path prefix
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @url was valid and is now used
 */
gboolean
qsim_cli_set_url(QsimCli *cli, const gchar *url, GError **error)
{
	g_autoptr(GUri) uri = NULL;
	const gchar *scheme;
	g_autofree gchar *base = NULL;

	uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	if (uri == NULL)
		return qsim_cli_usage_error(cli, error, _("invalid server URL “%s”"), url);
	scheme = g_uri_get_scheme(uri);
	if ((g_strcmp0(scheme, "http") != 0 && g_strcmp0(scheme, "https") != 0) ||
	    g_uri_get_host(uri) == NULL || g_uri_get_host(uri)[0] == '\0' ||
	    g_uri_get_query(uri) != NULL || g_uri_get_fragment(uri) != NULL) {
		/* TRANSLATORS: %s is what the user passed as --url or QSIM_URL */
		return qsim_cli_usage_error(
		    cli, error, _("invalid server URL “%s”: expected http://HOST[:PORT]"), url);
	}
	base = g_strdup(url);
	while (g_str_has_suffix(base, "/"))
		base[strlen(base) - 1] = '\0';
	g_free(cli->url);
	cli->url = g_steal_pointer(&base);
	return TRUE;
}

/**
 * qsim_cli_set_token:
 * @cli: a client
 * @token: a bearer token
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @token can be sent in a header and is now used
 */
gboolean
qsim_cli_set_token(QsimCli *cli, const gchar *token, GError **error)
{
	/* a token ends up in an HTTP header: no room for spaces or line breaks */
	if (token[0] == '\0')
		return qsim_cli_usage_error(cli, error, _("the API token is empty"));
	for (const gchar *p = token; *p != '\0'; p++) {
		if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f)
			return qsim_cli_usage_error(
			    cli, error, _("the API token contains spaces or control characters"));
	}
	g_free(cli->token);
	cli->token = g_strdup(token);
	return TRUE;
}

/**
 * qsim_cli_new_message:
 * @cli: a client
 * @method: an HTTP method
 * @path_and_query: an absolute path, already escaped, e.g. "/requests?limit=5"
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a message with the auth header set
 */
SoupMessage *
qsim_cli_new_message(QsimCli *cli, const gchar *method, const gchar *path_and_query, GError **error)
{
	g_autofree gchar *uri = g_strconcat(cli->url, path_and_query, NULL);
	g_autoptr(SoupMessage) msg = soup_message_new(method, uri);

	if (msg == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, _("invalid URL “%s”"), uri);
		return NULL;
	}
	if (cli->token != NULL) {
		g_autofree gchar *value = g_strdup_printf("Bearer %s", cli->token);
		soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
		                             value);
	}
	return g_steal_pointer(&msg);
}

static QsimError
qsim_cli_error_code_from_http(guint status, const gchar *code)
{
	if (g_strcmp0(code, "ambiguous") == 0)
		return QSIM_ERROR_AMBIGUOUS;
	switch (status) {
	case SOUP_STATUS_BAD_REQUEST:
	case SOUP_STATUS_UNPROCESSABLE_ENTITY:
	case SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE:
	case SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE:
		return QSIM_ERROR_INVALID;
	case SOUP_STATUS_UNAUTHORIZED:
	case SOUP_STATUS_FORBIDDEN:
		return QSIM_ERROR_UNAUTHORIZED;
	case SOUP_STATUS_NOT_FOUND:
		return QSIM_ERROR_NOT_FOUND;
	case SOUP_STATUS_CONFLICT:
		return QSIM_ERROR_CONFLICT;
	case SOUP_STATUS_SERVICE_UNAVAILABLE:
		return QSIM_ERROR_BUSY;
	default:
		return QSIM_ERROR_INTERNAL;
	}
}

/**
 * qsim_cli_error_from_reply:
 * @cli: a client
 * @msg: a sent message
 * @body: (nullable): the reply body
 * @error: return location for a #GError
 *
 * Turns a non-2xx reply into an error whose message is the server's one line
 * `{"error":{"message"}}`, or the HTTP status when the body is not in that shape.
 *
 * Returns: %TRUE if the reply was a success
 */
gboolean
qsim_cli_error_from_reply(QsimCli *cli, SoupMessage *msg, GBytes *body, GError **error)
{
	guint status = soup_message_get_status(msg);
	g_autoptr(JsonNode) root = NULL;
	JsonObject *err_obj = NULL;
	const gchar *code = NULL;
	const gchar *message = NULL;

	if (SOUP_STATUS_IS_SUCCESSFUL(status))
		return TRUE;
	if (body != NULL)
		root = qsim_cli_json_parse_bytes(body, NULL);
	if (root != NULL && JSON_NODE_HOLDS_OBJECT(root))
		err_obj = qsim_cli_json_get_object(json_node_get_object(root), "error");
	if (err_obj != NULL) {
		code = qsim_cli_json_get_string(err_obj, "code");
		message = qsim_cli_json_get_string(err_obj, "message");
	}
	if (message != NULL) {
		g_set_error_literal(error, QSIM_ERROR, qsim_cli_error_code_from_http(status, code),
		                    message);
	} else {
		/* TRANSLATORS: the server sent an HTTP error without a JSON error body;
		 * %u is the HTTP status code, %s its reason phrase */
		g_set_error(error, QSIM_ERROR, qsim_cli_error_code_from_http(status, NULL),
		            _("the server answered %u %s"), status,
		            soup_message_get_reason_phrase(msg) != NULL
		                ? soup_message_get_reason_phrase(msg)
		                : "");
	}
	return FALSE;
}

/* the transport failed before any HTTP status: name the URL, that is what users fix */
static void
qsim_cli_set_transport_error(QsimCli *cli, GError *transport, GError **error)
{
	if (g_error_matches(transport, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_CANCELLED, transport->message);
		return;
	}
	/* TRANSLATORS: %s is the server URL, the second %s the system's reason */
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot connect to %s: %s"), cli->url,
	            transport->message);
}

/* Link: </requests?status=done&limit=50&before=UUID>; rel="next" → UUID, or for a log
 * page cut by bytes </requests/UUID/logs?limit=1000&after_seq=N>; rel="next" → N */
static gchar *
qsim_cli_parse_link_before(const gchar *link)
{
	g_auto(GStrv) parts = NULL;

	if (link == NULL)
		return NULL;
	parts = g_strsplit(link, ",", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		const gchar *lt = strchr(parts[i], '<');
		const gchar *gt = lt != NULL ? strchr(lt, '>') : NULL;
		const gchar *query;
		g_autofree gchar *target = NULL;
		g_autoptr(GHashTable) params = NULL;

		if (gt == NULL || strstr(gt, "rel=\"next\"") == NULL)
			continue;
		target = g_strndup(lt + 1, gt - lt - 1);
		query = strchr(target, '?');
		if (query == NULL)
			continue;
		params = g_uri_parse_params(query + 1, -1, "&", G_URI_PARAMS_NONE, NULL);
		if (params != NULL && g_hash_table_lookup(params, "before") != NULL)
			return g_strdup(g_hash_table_lookup(params, "before"));
		if (params != NULL && g_hash_table_lookup(params, "after_seq") != NULL)
			return g_strdup(g_hash_table_lookup(params, "after_seq"));
	}
	return NULL;
}

/**
 * qsim_cli_call:
 * @cli: a client
 * @method: an HTTP method
 * @path_and_query: an absolute, escaped path
 * @body: (nullable): a JSON body to send
 * @reply: (out) (optional) (transfer full) (nullable): the parsed reply, %NULL for 204
 * @next_before: (out) (optional) (transfer full) (nullable): the cursor of a
 *   `Link: rel="next"` header, if any: its `before` (lists) or `after_seq` (log pages)
 * @error: return location for a #GError
 *
 * Sends one request synchronously and maps any failure to one human line.
 *
 * Returns: %TRUE on a 2xx reply with a parseable (or empty) body
 */
gboolean
qsim_cli_call(QsimCli *cli, const gchar *method, const gchar *path_and_query, JsonNode *body,
              JsonNode **reply, gchar **next_before, GError **error)
{
	g_autoptr(SoupMessage) msg = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error_local = NULL;
	g_autoptr(JsonNode) root = NULL;

	msg = qsim_cli_new_message(cli, method, path_and_query, error);
	if (msg == NULL)
		return FALSE;
	soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept",
	                             "application/json");
	if (body != NULL) {
		g_autofree gchar *text = json_to_string(body, FALSE);
		gsize len = strlen(text);
		g_autoptr(GBytes) req = g_bytes_new_take(g_steal_pointer(&text), len);
		soup_message_set_request_body_from_bytes(msg, "application/json", req);
	}
	g_debug("%s %s", method, path_and_query);
	bytes = soup_session_send_and_read(cli->session, msg, NULL, &error_local);
	if (bytes == NULL) {
		qsim_cli_set_transport_error(cli, error_local, error);
		return FALSE;
	}
	if (!qsim_cli_error_from_reply(cli, msg, bytes, error))
		return FALSE;
	if (g_bytes_get_size(bytes) > 0 && soup_message_get_status(msg) != SOUP_STATUS_NO_CONTENT) {
		root = qsim_cli_json_parse_bytes(bytes, &error_local);
		if (root == NULL) {
			/* TRANSLATORS: the reply was not JSON; %s is the parser's reason */
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            _("the server sent an invalid reply: %s"),
			            error_local->message);
			return FALSE;
		}
	}
	if (next_before != NULL) {
		*next_before = qsim_cli_parse_link_before(
		    soup_message_headers_get_one(soup_message_get_response_headers(msg), "Link"));
	}
	if (reply != NULL)
		*reply = g_steal_pointer(&root);
	return TRUE;
}

/**
 * qsim_cli_check_nargs:
 * @cli: a client, with the current command set
 * @args: (array zero-terminated=1): the positional arguments
 * @min: the fewest accepted
 * @max: the most accepted, G_MAXUINT for no limit
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the count fits; otherwise a usage error showing the synopsis
 */
gboolean
qsim_cli_check_nargs(QsimCli *cli, gchar **args, guint min, guint max, GError **error)
{
	guint n = g_strv_length(args);

	if (n >= min && n <= max)
		return TRUE;
	/* TRANSLATORS: usage line, the first %s is a command, the second its arguments */
	return qsim_cli_usage_error(cli, error, _("usage: qsim-ctl %s %s"),
	                            qsim_cli_cmd_get_name(cli->cmd),
	                            cli->cmd->arguments != NULL ? cli->cmd->arguments : "");
}

/**
 * qsim_cli_parse_positive:
 * @cli: a client
 * @option: the option name for the message, e.g. "--limit"
 * @text: what the user typed
 * @max: the largest value accepted
 * @value: (out): the parsed value
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @text is a decimal integer in 1..@max; otherwise a usage error
 */
gboolean
qsim_cli_parse_positive(QsimCli *cli, const gchar *option, const gchar *text, guint64 max,
                        guint64 *value, GError **error)
{
	guint64 v = 0;

	if (!g_ascii_string_to_unsigned(text, 10, 1, max, &v, NULL)) {
		g_autofree gchar *max_text = g_strdup_printf("%" G_GUINT64_FORMAT, max);
		/* TRANSLATORS: first %s is an option like --limit, then the largest accepted
		 * value, then the value typed */
		return qsim_cli_usage_error(
		    cli, error, _("%s must be a whole number between 1 and %s, not “%s”"), option,
		    max_text, text);
	}
	*value = v;
	return TRUE;
}

/**
 * qsim_cli_check_status:
 * @cli: a client
 * @status: a request status typed by the user
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @status is one of the request statuses
 */
gboolean
qsim_cli_check_status(QsimCli *cli, const gchar *status, GError **error)
{
	g_autofree gchar *known = NULL;

	if (g_strv_contains(qsim_cli_statuses, status))
		return TRUE;
	known = g_strjoinv(", ", (gchar **)qsim_cli_statuses);
	/* TRANSLATORS: %s is the word typed, then the list of valid statuses */
	return qsim_cli_usage_error(cli, error, _("unknown status “%s”, expected one of: %s"),
	                            status, known);
}

/**
 * qsim_cli_check_log_type:
 * @cli: a client
 * @log_type: a log type typed by the user
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @log_type is one of the log types
 */
gboolean
qsim_cli_check_log_type(QsimCli *cli, const gchar *log_type, GError **error)
{
	g_autofree gchar *known = NULL;

	if (g_strv_contains(qsim_cli_log_types, log_type))
		return TRUE;
	known = g_strjoinv(", ", (gchar **)qsim_cli_log_types);
	/* TRANSLATORS: %s is the word typed, then the list of valid log types */
	return qsim_cli_usage_error(cli, error, _("unknown log type “%s”, expected one of: %s"),
	                            log_type, known);
}

/**
 * qsim_cli_check_vm_name:
 * @cli: a client
 * @vm_name: a VM name typed by the user
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @vm_name matches `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`
 */
gboolean
qsim_cli_check_vm_name(QsimCli *cli, const gchar *vm_name, GError **error)
{
	gsize len = strlen(vm_name);
	gboolean ok = len >= 1 && len <= 64 && g_ascii_isalnum(vm_name[0]);

	for (gsize i = 1; ok && i < len; i++) {
		gchar c = vm_name[i];
		ok = g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
	}
	if (!ok) {
		return qsim_cli_usage_error(
		    cli, error,
		    /* TRANSLATORS: %s is the VM name typed by the user */
		    _("invalid VM name “%s”: use up to 64 letters, digits, “.”, “_” or “-”, "
		      "starting with a letter or digit"),
		    vm_name);
	}
	return TRUE;
}

static gboolean
qsim_cli_is_uuid_prefix(const gchar *text)
{
	for (const gchar *p = text; *p != '\0'; p++) {
		if (!g_ascii_isxdigit(*p) && *p != '-')
			return FALSE;
	}
	return TRUE;
}

/* prefixes shorter than the server's 8: scan the list, newest first, page by page */
static gchar *
qsim_cli_resolve_short_prefix(QsimCli *cli, const gchar *prefix, JsonNode **request, GError **error)
{
	g_autoptr(GPtrArray) matches = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(JsonNode) match = NULL;
	g_autofree gchar *before = NULL;

	do {
		g_autoptr(JsonNode) page = NULL;
		g_autofree gchar *path = NULL;
		g_autofree gchar *next = NULL;
		JsonArray *array;

		if (before != NULL) {
			g_autofree gchar *escaped = g_uri_escape_string(before, NULL, FALSE);
			path = g_strdup_printf("/requests?limit=1000&before=%s", escaped);
		} else {
			path = g_strdup("/requests?limit=1000");
		}
		if (!qsim_cli_call(cli, "GET", path, NULL, &page, &next, error))
			return NULL;
		if (page == NULL || !JSON_NODE_HOLDS_ARRAY(page)) {
			g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			                    _("the server sent an invalid reply"));
			return NULL;
		}
		array = json_node_get_array(page);
		for (guint i = 0; i < json_array_get_length(array); i++) {
			JsonNode *node = json_array_get_element(array, i);
			const gchar *uuid;
			if (!JSON_NODE_HOLDS_OBJECT(node))
				continue;
			uuid = qsim_cli_json_get_string(json_node_get_object(node), "uuid");
			if (uuid == NULL || !g_str_has_prefix(uuid, prefix))
				continue;
			g_ptr_array_add(matches, g_strdup(uuid));
			if (match == NULL)
				match = json_node_copy(node);
		}
		g_free(before);
		before = g_steal_pointer(&next);
		/* a few are enough to say "ambiguous" */
	} while (before != NULL && matches->len < 5);

	if (matches->len == 0) {
		/* TRANSLATORS: %s is the UUID or prefix the user typed */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, _("request %s not found"),
		            prefix);
		return NULL;
	}
	if (matches->len > 1) {
		g_autofree gchar *list = NULL;
		g_ptr_array_add(matches, NULL);
		list = g_strjoinv(", ", (gchar **)matches->pdata);
		/* TRANSLATORS: %s is a UUID prefix, then a list of full UUIDs */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_AMBIGUOUS,
		            _("prefix %s matches several requests: %s"), prefix, list);
		return NULL;
	}
	if (request != NULL)
		*request = g_steal_pointer(&match);
	return g_strdup(g_ptr_array_index(matches, 0));
}

/**
 * qsim_cli_resolve_request:
 * @cli: a client
 * @arg: a full request UUID or a prefix of at least 4 characters
 * @request: (out) (optional) (transfer full): the request object
 * @error: return location for a #GError
 *
 * Prefixes of 8 or more characters are resolved by the server; shorter ones (4 to
 * 7) by listing the requests here.
 *
 * Returns: (transfer full) (nullable): the full UUID
 */
gchar *
qsim_cli_resolve_request(QsimCli *cli, const gchar *arg, JsonNode **request, GError **error)
{
	g_autofree gchar *prefix = g_ascii_strdown(arg, -1);
	g_autofree gchar *path = NULL;
	g_autoptr(JsonNode) reply = NULL;
	const gchar *uuid;

	if (strlen(prefix) < 4 || strlen(prefix) > 36 || !qsim_cli_is_uuid_prefix(prefix)) {
		qsim_cli_usage_error(
		    cli, error,
		    /* TRANSLATORS: %s is what the user typed instead of a UUID */
		    _("“%s” is not a request UUID or a UUID prefix of at least 4 characters"), arg);
		return NULL;
	}
	if (strlen(prefix) == 36 && request == NULL)
		return g_steal_pointer(&prefix);
	if (strlen(prefix) < 8)
		return qsim_cli_resolve_short_prefix(cli, prefix, request, error);
	path = g_strdup_printf("/requests/%s", prefix);
	if (!qsim_cli_call(cli, "GET", path, NULL, &reply, NULL, error))
		return NULL;
	uuid = reply != NULL && JSON_NODE_HOLDS_OBJECT(reply)
	           ? qsim_cli_json_get_string(json_node_get_object(reply), "uuid")
	           : NULL;
	if (uuid == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return NULL;
	}
	if (request != NULL) {
		g_autofree gchar *copy = g_strdup(uuid);
		*request = g_steal_pointer(&reply);
		return g_steal_pointer(&copy);
	}
	return g_strdup(uuid);
}
