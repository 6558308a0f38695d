#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixoutputstream.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "qsim-cli-commands.h"
#include "qsim-cli-json.h"
#include "qsim-cli-table.h"

#define DOWNLOAD_CHUNK (64 * 1024)

/*
 * Opens the directory that will hold @name below @dir, creating what is
 * missing, one component at a time and never through a symlink: whatever the
 * server (or a guest, through it) names, nothing is written outside @dir.
 * Returns a directory fd, or -1 with @error.
 */
static gint
open_parent(const gchar *dir, const gchar *name, const gchar **out_base, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(name, "/", -1);
	guint n = g_strv_length(parts);
	gint fd;

	if (g_mkdir_with_parents(dir, 0755) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot create %s: %s"), dir,
		            g_strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (guint i = 0; fd >= 0 && i + 1 < n; i++) {
		gint next;

		if (mkdirat(fd, parts[i], 0755) != 0 && errno != EEXIST)
			break;
		next = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
	}
	if (fd < 0) {
		/* TRANSLATORS: an artifact name, then the reason */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot make a place for %s: %s"),
		            name, g_strerror(errno));
		return -1;
	}
	*out_base = strrchr(name, '/') != NULL ? strrchr(name, '/') + 1 : name;
	return fd;
}

static gboolean
download_file(QsimCli *cli, const gchar *uuid, JsonObject *a, const gchar *dir, GError **error)
{
	const gchar *name = qsim_cli_json_get_string(a, "name");
	const gchar *sha = qsim_cli_json_get_string(a, "sha256");
	const gchar *mode_text = qsim_cli_json_get_string(a, "mode");
	g_autofree gchar *escaped = g_uri_escape_string(name, "/", FALSE);
	g_autofree gchar *path = g_strdup_printf("/requests/%s/artifacts/%s", uuid, escaped);
	g_autoptr(SoupMessage) msg = NULL;
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree guint8 *buf = g_malloc(DOWNLOAD_CHUNK);
	g_autofree gchar *tmp = NULL;
	const gchar *base = NULL;
	guint64 mode = 0644;
	gint dirfd, fd;

	dirfd = open_parent(dir, name, &base, error);
	if (dirfd < 0)
		return FALSE;
	if (mode_text != NULL)
		g_ascii_string_to_unsigned(mode_text, 8, 0, 07777, &mode, NULL);
	msg = qsim_cli_new_message(cli, "GET", path, error);
	if (msg == NULL) {
		close(dirfd);
		return FALSE;
	}
	in = soup_session_send(cli->session, msg, NULL, error);
	if (in == NULL || !SOUP_STATUS_IS_SUCCESSFUL(soup_message_get_status(msg))) {
		g_autoptr(GBytes) body =
		    in != NULL ? g_input_stream_read_bytes(in, 65536, NULL, NULL) : NULL;
		close(dirfd);
		if (in != NULL)
			qsim_cli_error_from_reply(cli, msg, body, error);
		return FALSE;
	}
	/* into a temporary name first: a cut download never looks like a whole file */
	tmp = g_strdup_printf(".%s.part", base);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot write %s: %s"), name,
		            g_strerror(errno));
		close(dirfd);
		return FALSE;
	}
	out = g_unix_output_stream_new(fd, TRUE);
	for (;;) {
		gssize n = g_input_stream_read(in, buf, DOWNLOAD_CHUNK, NULL, error);

		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		g_checksum_update(sum, buf, (gsize)n);
		if (!g_output_stream_write_all(out, buf, (gsize)n, NULL, NULL, error))
			goto fail;
	}
	if (!g_output_stream_close(out, NULL, error))
		goto fail;
	if (sha != NULL && g_strcmp0(sha, g_checksum_get_string(sum)) != 0) {
		/* TRANSLATORS: an artifact name */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
		            _("%s arrived damaged (its sha256 does not match)"), name);
		goto fail;
	}
	if (fchmodat(dirfd, tmp, (mode_t)(mode & 0777), 0) != 0 ||
	    renameat(dirfd, tmp, dirfd, base) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot write %s: %s"), name,
		            g_strerror(errno));
		goto fail;
	}
	close(dirfd);
	return TRUE;
fail:
	unlinkat(dirfd, tmp, 0);
	close(dirfd);
	return FALSE;
}

static gboolean
make_symlink(JsonObject *a, const gchar *dir, GError **error)
{
	const gchar *name = qsim_cli_json_get_string(a, "name");
	const gchar *target = qsim_cli_json_get_string(a, "target");
	const gchar *base = NULL;
	gint dirfd = open_parent(dir, name, &base, error);
	gint rc;

	if (dirfd < 0)
		return FALSE;
	if (target == NULL || target[0] == '\0') {
		close(dirfd);
		return TRUE;
	}
	unlinkat(dirfd, base, 0);
	/* made as a symlink, never followed here: the target is the guest's text */
	rc = symlinkat(target, dirfd, base);
	close(dirfd);
	if (rc != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot write %s: %s"), name,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_cli_artifacts_download:
 * @only: (nullable): one artifact's name, else all of them
 * @count: (out) (optional): how many were written
 *
 * Downloads a request's artifacts into @dir, keeping their names (guest
 * paths without the leading `/`), modes and symlinks, each checked against
 * its sha256. A name that could leave @dir is refused.
 */
gboolean
qsim_cli_artifacts_download(QsimCli *cli, const gchar *uuid, const gchar *dir, const gchar *only,
                            guint *count, GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/requests/%s/artifacts", uuid);
	g_autoptr(JsonNode) reply = NULL;
	JsonArray *list;
	guint n = 0;

	if (!qsim_cli_call(cli, "GET", path, NULL, &reply, NULL, error))
		return FALSE;
	if (reply == NULL || !JSON_NODE_HOLDS_ARRAY(reply)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	list = json_node_get_array(reply);
	for (guint i = 0; i < json_array_get_length(list); i++) {
		JsonNode *node = json_array_get_element(list, i);
		JsonObject *a = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
		const gchar *name = a != NULL ? qsim_cli_json_get_string(a, "name") : NULL;
		g_autoptr(GError) local = NULL;

		if (only != NULL && g_strcmp0(name, only) != 0)
			continue;
		if (!qsim_artifact_name_validate(name, &local)) {
			/* TRANSLATORS: the reason an artifact name is refused */
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            _("refusing to write an artifact: %s"), local->message);
			return FALSE;
		}
		if (g_strcmp0(qsim_cli_json_get_string(a, "kind"), "symlink") == 0) {
			if (!make_symlink(a, dir, error))
				return FALSE;
		} else if (!download_file(cli, uuid, a, dir, error)) {
			return FALSE;
		}
		n++;
	}
	if (only != NULL && n == 0) {
		/* TRANSLATORS: a request UUID, then an artifact name */
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
		            _("request %s has no artifact %s"), uuid, only);
		return FALSE;
	}
	if (count != NULL)
		*count = n;
	return TRUE;
}

static gboolean
qsim_cli_cmd_artifacts(QsimCli *cli, gchar **args, GError **error)
{
	g_autoptr(JsonNode) request = NULL;
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *path = NULL;
	g_autoptr(JsonNode) reply = NULL;
	g_autoptr(QsimCliTable) table = NULL;
	JsonArray *list;

	if (!qsim_cli_check_nargs(cli, args, 1, 1, error))
		return FALSE;
	uuid = qsim_cli_resolve_request(cli, args[0], &request, error);
	if (uuid == NULL)
		return FALSE;
	if (cli->opt_get != NULL || cli->opt_output_dir != NULL) {
		guint n = 0;
		const gchar *dir = cli->opt_output_dir != NULL ? cli->opt_output_dir : ".";

		if (!qsim_cli_artifacts_download(cli, uuid, dir, cli->opt_get, &n, error))
			return FALSE;
		/* TRANSLATORS: a count, then a directory */
		qsim_cli_printerr(
		    ngettext("%u artifact written to %s", "%u artifacts written to %s", n), n, dir);
		return TRUE;
	}
	path = g_strdup_printf("/requests/%s/artifacts", uuid);
	if (!qsim_cli_call(cli, "GET", path, NULL, &reply, NULL, error))
		return FALSE;
	if (cli->json) {
		qsim_cli_json_print(reply, TRUE);
		return TRUE;
	}
	if (reply == NULL || !JSON_NODE_HOLDS_ARRAY(reply)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    _("the server sent an invalid reply"));
		return FALSE;
	}
	list = json_node_get_array(reply);
	/* TRANSLATORS: table headers of `qsim-ctl artifacts` */
	table = qsim_cli_table_new(_("NAME"), _("KIND"), _("SIZE"), _("MODE"), _("SHA256"), NULL);
	for (guint i = 0; i < json_array_get_length(list); i++) {
		JsonObject *a = json_array_get_object_element(list, i);
		gint64 size = 0;
		g_autofree gchar *size_text = NULL;
		g_autofree gchar *name = NULL;
		const gchar *target = qsim_cli_json_get_string(a, "target");

		qsim_cli_json_get_int(a, "size", &size);
		size_text = g_strdup_printf("%" G_GINT64_FORMAT, size);
		name = target != NULL ? g_strdup_printf("%s -> %s",
		                                        qsim_cli_json_get_string(a, "name"), target)
		                      : g_strdup(qsim_cli_json_get_string(a, "name"));
		qsim_cli_table_add_row(table, name, qsim_cli_json_get_string(a, "kind"), size_text,
		                       qsim_cli_json_get_string(a, "mode"),
		                       qsim_cli_json_get_string(a, "sha256"), NULL);
	}
	qsim_cli_table_print(table);
	return TRUE;
}

/**
 * qsim_cli_artifacts_register:
 * @cmds: (element-type QsimCliCmd): the command table, which takes ownership
 *
 * Adds artifacts.
 */
void
qsim_cli_artifacts_register(GPtrArray *cmds)
{
	g_ptr_array_add(
	    cmds,
	    qsim_cli_cmd_new("artifacts", _("ID [--get NAME] [-o DIR]"),
	                     /* TRANSLATORS: command description */
	                     _("List a request's artifacts, or download them (all, or the one "
	                       "named by --get) into DIR"),
	                     QSIM_CLI_OPT_GET | QSIM_CLI_OPT_OUTPUT_DIR, qsim_cli_cmd_artifacts));
}
