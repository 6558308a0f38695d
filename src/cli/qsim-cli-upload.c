#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "common/qsim-tar.h"
#include "qsim-cli-commands.h"
#include "qsim-cli-json.h"

#define COPY_CHUNK (64 * 1024)

/*
 * `--upload SRC:DEST`: the request goes out as multipart/form-data, its body
 * written to an unlinked temporary file first (a directory as a tar made here,
 * a file as it is), so memory stays bounded whatever the size, and sent with
 * its Content-Length.
 */

typedef struct {
	GOutputStream *out;
	guint64 written;
	GError *error;
} Body;

static gboolean
body_write(Body *b, const void *data, gsize len)
{
	if (b->error != NULL)
		return FALSE;
	if (!g_output_stream_write_all(b->out, data, len, NULL, NULL, &b->error))
		return FALSE;
	b->written += len;
	return TRUE;
}

static gboolean
body_write_string(Body *b, GString *s)
{
	return body_write(b, s->str, s->len);
}

static gboolean
copy_file(Body *b, const gchar *path, guint64 size)
{
	g_autoptr(GFile) file = g_file_new_for_path(path);
	g_autoptr(GFileInputStream) in = g_file_read(file, NULL, &b->error);
	g_autofree guint8 *buf = g_malloc(COPY_CHUNK);
	guint64 left = size;

	if (in == NULL)
		return FALSE;
	/* exactly the size the header said: a file that grows is cut, one that shrinks fails */
	while (left > 0) {
		gssize n = g_input_stream_read(G_INPUT_STREAM(in), buf, MIN(left, COPY_CHUNK), NULL,
		                               &b->error);
		if (n <= 0) {
			if (n == 0)
				g_set_error(&b->error, QSIM_ERROR, QSIM_ERROR_IO,
				            _("%s shrank while it was read"), path);
			return FALSE;
		}
		if (!body_write(b, buf, (gsize)n))
			return FALSE;
		left -= (guint64)n;
	}
	return TRUE;
}

/* Appends @path (named @name in the archive) and, for a directory, what is below it. */
static gboolean
tar_add(Body *b, const gchar *path, const gchar *name, guint depth)
{
	g_autoptr(GString) h = g_string_new(NULL);
	struct stat st;

	if (lstat(path, &st) != 0) {
		g_set_error(&b->error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot read %s: %s"), path,
		            g_strerror(errno));
		return FALSE;
	}
	if (S_ISLNK(st.st_mode)) {
		g_autofree gchar *target = g_file_read_link(path, &b->error);

		if (target == NULL)
			return FALSE;
		qsim_tar_header(h, name, QSIM_TAR_SYMLINK, 0777, 0, st.st_mtime, target);
		return body_write_string(b, h);
	}
	if (S_ISREG(st.st_mode)) {
		qsim_tar_header(h, name, QSIM_TAR_FILE, st.st_mode & 07777, (guint64)st.st_size,
		                st.st_mtime, NULL);
		if (!body_write_string(b, h) || !copy_file(b, path, (guint64)st.st_size))
			return FALSE;
		g_string_truncate(h, 0);
		qsim_tar_pad(h, (guint64)st.st_size);
		return body_write_string(b, h);
	}
	if (S_ISDIR(st.st_mode)) {
		g_autoptr(GDir) dir = NULL;
		g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
		const gchar *entry;

		if (depth > 64) {
			g_set_error(&b->error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            _("%s is nested too deep"), path);
			return FALSE;
		}
		if (name[0] != '\0') {
			g_autofree gchar *dname = g_strconcat(name, "/", NULL);

			qsim_tar_header(h, dname, QSIM_TAR_DIR, st.st_mode & 07777, 0, st.st_mtime,
			                NULL);
			if (!body_write_string(b, h))
				return FALSE;
		}
		dir = g_dir_open(path, 0, &b->error);
		if (dir == NULL)
			return FALSE;
		while ((entry = g_dir_read_name(dir)) != NULL)
			g_ptr_array_add(names, g_strdup(entry));
		g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
		for (guint i = 0; i < names->len; i++) {
			g_autofree gchar *child = g_build_filename(path, names->pdata[i], NULL);
			g_autofree gchar *child_name =
			    name[0] != '\0' ? g_strconcat(name, "/", names->pdata[i], NULL)
			                    : g_strdup(names->pdata[i]);

			if (!tar_add(b, child, child_name, depth + 1))
				return FALSE;
		}
		return TRUE;
	}
	/* devices, sockets, FIFOs: nothing a build needs, and nothing to read safely */
	return TRUE;
}

/* A quoted-string for a part header: the path was validated (no control characters) */
static gchar *
quote(const gchar *text)
{
	GString *s = g_string_new("\"");

	for (const gchar *p = text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	g_string_append_c(s, '"');
	return g_string_free(s, FALSE);
}

static gboolean
add_upload(QsimCli *cli, Body *b, const gchar *boundary, const gchar *spec, GError **error)
{
	const gchar *sep = strstr(spec, ":/");
	g_autofree gchar *src = NULL;
	g_autofree gchar *dest_q = NULL;
	g_autoptr(GString) h = g_string_new(NULL);
	g_autoptr(GError) local = NULL;
	const gchar *dest;
	struct stat st;

	if (sep == NULL || sep == spec) {
		/* TRANSLATORS: %s is what the user gave to --upload */
		return qsim_cli_usage_error(cli, error,
		                            _("--upload takes LOCAL:/GUEST/PATH, not “%s”"), spec);
	}
	src = g_strndup(spec, (gsize)(sep - spec));
	dest = sep + 1;
	if (!qsim_guest_path_validate(dest, &local))
		return qsim_cli_usage_error(cli, error, "--upload: %s", local->message);
	if (stat(src, &st) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, _("cannot read %s: %s"), src,
		            g_strerror(errno));
		return FALSE;
	}
	dest_q = quote(dest);
	if (S_ISDIR(st.st_mode)) {
		g_autoptr(GString) end = g_string_new(NULL);

		g_string_append_printf(h,
		                       "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
		                       "filename=%s\r\nContent-Type: application/x-tar\r\n\r\n",
		                       boundary, dest_q);
		if (!body_write_string(b, h) || !tar_add(b, src, "", 0))
			goto fail;
		g_string_set_size(end, 2 * QSIM_TAR_BLOCK);
		memset(end->str, 0, end->len);
		g_string_append(end, "\r\n");
		if (!body_write_string(b, end))
			goto fail;
		return TRUE;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            _("%s is neither a file nor a directory"), src);
		return FALSE;
	}
	g_string_append_printf(h,
	                       "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
	                       "filename=%s\r\nContent-Type: application/octet-stream\r\n"
	                       "X-Qsim-Mode: %04o\r\n\r\n",
	                       boundary, dest_q, (guint)(st.st_mode & 07777));
	if (!body_write_string(b, h) || !copy_file(b, src, (guint64)st.st_size) ||
	    !body_write(b, "\r\n", 2))
		goto fail;
	return TRUE;
fail:
	g_propagate_error(error, g_steal_pointer(&b->error));
	return FALSE;
}

/**
 * qsim_cli_submit_multipart:
 * @request: the JSON fields
 * @uploads: (array zero-terminated=1): `LOCAL:/GUEST/PATH` specs
 *
 * Returns: (transfer full) (nullable): the server's reply, or NULL with @error
 */
JsonNode *
qsim_cli_submit_multipart(QsimCli *cli, JsonNode *request, gchar **uploads, GError **error)
{
	g_autofree gchar *tmpl = g_build_filename(g_get_tmp_dir(), "qsim-upload-XXXXXX", NULL);
	g_autofree gchar *boundary = NULL;
	g_autofree gchar *json = json_to_string(request, FALSE);
	g_autofree gchar *content_type = NULL;
	g_autoptr(GString) head = g_string_new(NULL);
	g_autoptr(SoupMessage) msg = NULL;
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(GError) local = NULL;
	Body b = {0};
	gint fd;

	{
		g_autofree gchar *uuid = g_uuid_string_random();
		boundary = g_strdup_printf("qsim-%s", uuid);
	}
	fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, _("cannot create %s: %s"), tmpl,
		            g_strerror(errno));
		return NULL;
	}
	/* gone from the directory at once: only this process holds it */
	g_unlink(tmpl);
	b.out = g_unix_output_stream_new(fd, FALSE);
	g_string_append_printf(head,
	                       "--%s\r\nContent-Disposition: form-data; name=\"request\"\r\n"
	                       "Content-Type: application/json\r\n\r\n%s\r\n",
	                       boundary, json);
	body_write_string(&b, head);
	for (guint i = 0; uploads[i] != NULL; i++) {
		if (!add_upload(cli, &b, boundary, uploads[i], error)) {
			g_object_unref(b.out);
			close(fd);
			return NULL;
		}
	}
	g_string_printf(head, "--%s--\r\n", boundary);
	if (!body_write_string(&b, head)) {
		g_propagate_error(error, g_steal_pointer(&b.error));
		g_object_unref(b.out);
		close(fd);
		return NULL;
	}
	g_object_unref(b.out);
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "%s", g_strerror(errno));
		return NULL;
	}
	in = g_unix_input_stream_new(fd, TRUE);
	msg = qsim_cli_new_message(cli, "POST", "/requests", error);
	if (msg == NULL)
		return NULL;
	content_type = g_strdup_printf("multipart/form-data; boundary=%s", boundary);
	soup_message_set_request_body(msg, content_type, in, (gssize)b.written);
	soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept",
	                             "application/json");
	reply = soup_session_send_and_read(cli->session, msg, NULL, &local);
	if (reply == NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	if (!qsim_cli_error_from_reply(cli, msg, reply, error))
		return NULL;
	return qsim_cli_json_parse_bytes(reply, error);
}
