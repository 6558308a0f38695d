#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include <fnmatch.h>
#include <libssh/callbacks.h>
#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "common/qsim-text.h"
#include "guest/qsim-guest-entry.h"
#include "guest/qsim-guest-exec-fs.h"
#include "guest/qsim-guest-ssh.h"

/* What one channel read or write moves: bounds memory per transfer. */
#define EXEC_PIECE (32 * 1024)
/* How long one wait for the guest lasts before the abort callback is asked again. */
#define EXEC_POLL_MS 100
/* How long a channel whose command may still run (it may ignore the TERM) waits
 * for the guest's close; see QSIM_GUEST_CHANNEL_END_WAIT_MS for why we wait. */
#define EXEC_CLOSE_WAIT_MS 500
/* stderr (and unexpected stdout) kept for an error message; the rest is dropped. */
#define EXEC_ERR_KEEP 512
/* A listing header: "E ffff 9223372036854775807 4096 4096". */
#define EXEC_LINE_MAX 64

/*
 * The listing script, run by the guest's /bin/sh with the patterns as its
 * arguments. IFS= keeps `$p` from splitting while still globbing it. stat
 * (busybox's, lstat by default) prints the raw mode in hex and the size; the
 * names are length-prefixed (byte lengths under LC_ALL=C), so any byte in a
 * name keeps the framing. Directories are walked to depth 32, symlinks never.
 */
static const gchar list_script[] =
    "exec 2>/dev/null\n"
    "IFS=\n"
    "emit() {\n"
    "\ts=$(stat -c '%f %s' -- \"$1\") || return 0\n"
    "\tt=\n"
    "\t[ ! -L \"$1\" ] || t=$(readlink -- \"$1\")\n"
    "\tprintf 'E %s %d %d\\n%s%s\\n' \"$s\" \"${#1}\" \"${#t}\" \"$1\" \"$t\"\n"
    "\t[ -d \"$1\" ] && [ ! -L \"$1\" ] || return 0\n"
    "\tif [ \"$2\" -ge 32 ]; then\n"
    "\t\tprintf 'D 0 0 %d 0\\n%s\\n' \"${#1}\" \"$1\"\n"
    "\t\treturn 0\n"
    "\tfi\n"
    "\td=$1\n"
    "\t[ \"$d\" != / ] || d=\n"
    "\tfor c in \"$d\"/* \"$d\"/.[!.]* \"$d\"/..?*; do\n"
    "\t\t[ -e \"$c\" ] || [ -L \"$c\" ] || continue\n"
    "\t\temit \"$c\" $(($2 + 1))\n"
    "\tdone\n"
    "}\n"
    "for p in \"$@\"; do\n"
    "\tn=0\n"
    "\tfor f in $p; do\n"
    "\t\t[ -e \"$f\" ] || [ -L \"$f\" ] || continue\n"
    "\t\tn=1\n"
    "\t\temit \"$f\" 0\n"
    "\tdone\n"
    "\t[ \"$n\" = 1 ] || printf 'M 0 0 %d 0\\n%s\\n' \"${#p}\" \"$p\"\n"
    "done\n";

/**
 * qsim_guest_sh_quote:
 *
 * Returns: (transfer full): @s in single quotes, each ' written as '\''
 */
gchar *
qsim_guest_sh_quote(const gchar *s)
{
	GString *out = g_string_sized_new(strlen(s) + 2);

	g_string_append_c(out, '\'');
	for (const gchar *p = s; *p != '\0'; p++) {
		if (*p == '\'')
			g_string_append(out, "'\\''");
		else
			g_string_append_c(out, *p);
	}
	g_string_append_c(out, '\'');
	return g_string_free(out, FALSE);
}

/* One exec channel with its exit state and a bounded stdout buffer. */
typedef struct {
	ssh_session session;
	ssh_channel channel;
	ssh_event event;
	struct ssh_channel_callbacks_struct callbacks;
	QsimGuestAbortFunc abort_cb;
	gpointer abort_data;
	gboolean have_status;
	gint status;
	gboolean remote_closed;
	GString *err; /* the first EXEC_ERR_KEEP bytes of stderr */
	guint8 buf[EXEC_PIECE];
	gsize len, pos;
	gboolean eof;
	gboolean subsystem; /* the SFTP probe: its server ends at our EOF */
	gint64 last_us;     /* the last sign of life: data in or out, or the open */
	gboolean stalled;   /* given up after QSIM_GUEST_STALL_S without one */
} Chan;

static void
on_exit_status(ssh_session session, ssh_channel channel, int exit_status, void *userdata)
{
	Chan *ch = userdata;

	ch->have_status = TRUE;
	ch->status = exit_status;
}

static void
on_exit_signal(ssh_session session, ssh_channel channel, const char *signal, int core,
               const char *errmsg, const char *lang, void *userdata)
{
	Chan *ch = userdata;

	ch->have_status = TRUE;
	ch->status = -1;
}

static void
on_close(ssh_session session, ssh_channel channel, void *userdata)
{
	Chan *ch = userdata;

	ch->remote_closed = TRUE;
}

/* Whether to give up: aborted, or the session is gone (sets @error). */
static gboolean
chan_stop(Chan *ch, GError **error)
{
	if (ch->abort_cb(ch->abort_data, error))
		return TRUE;
	if (!ssh_is_connected(ch->session)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
		            ssh_get_error(ch->session));
		return TRUE;
	}
	return FALSE;
}

/* Waits one slice for the guest, letting libssh take in window adjusts and data;
 * FALSE once the guest has shown no sign of life for QSIM_GUEST_STALL_S. */
static gboolean
chan_wait(Chan *ch, gint timeout_ms, GError **error)
{
	if (g_get_monotonic_time() - ch->last_us > QSIM_GUEST_STALL_S * G_USEC_PER_SEC) {
		ch->stalled = TRUE;
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
		            "the guest command sent nothing for %d s", QSIM_GUEST_STALL_S);
		return FALSE;
	}
	if (ssh_event_dopoll(ch->event, timeout_ms) == SSH_ERROR &&
	    !ssh_is_connected(ch->session)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
		            ssh_get_error(ch->session));
		return FALSE;
	}
	return TRUE;
}

/* Opens a channel running @command, or the subsystem @command when @subsystem. */
static Chan *
chan_open_full(ssh_session session, const gchar *command, gboolean subsystem,
               QsimGuestAbortFunc abort_cb, gpointer abort_data, GError **error)
{
	Chan *ch = g_new0(Chan, 1);

	ch->session = session;
	ch->subsystem = subsystem;
	ch->abort_cb = abort_cb;
	ch->abort_data = abort_data;
	ch->err = g_string_new(NULL);
	ch->last_us = g_get_monotonic_time();
	ch->event = ssh_event_new();
	if (ch->event == NULL || ssh_event_add_session(ch->event, session) != SSH_OK) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "cannot set up SSH event polling");
		g_clear_pointer(&ch->event, ssh_event_free);
		g_string_free(ch->err, TRUE);
		g_free(ch);
		return NULL;
	}
	ch->callbacks = (struct ssh_channel_callbacks_struct){
	    .userdata = ch,
	    .channel_close_function = on_close,
	    .channel_exit_status_function = on_exit_status,
	    .channel_exit_signal_function = on_exit_signal,
	};
	ssh_callbacks_init(&ch->callbacks);
	ch->channel = qsim_guest_ssh_open_channel(session);
	if (ch->channel != NULL)
		ssh_set_channel_callbacks(ch->channel, &ch->callbacks);
	if (ch->channel == NULL ||
	    (subsystem ? ssh_channel_request_subsystem(ch->channel, command)
	               : ssh_channel_request_exec(ch->channel, command)) != SSH_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "cannot run a command in the guest: %s", ssh_get_error(session));
		if (ch->channel != NULL) {
			ssh_remove_channel_callbacks(ch->channel, &ch->callbacks);
			ssh_channel_free(ch->channel);
		}
		ssh_event_remove_session(ch->event, session);
		ssh_event_free(ch->event);
		g_string_free(ch->err, TRUE);
		g_free(ch);
		return NULL;
	}
	return ch;
}

static Chan *
chan_open(ssh_session session, const gchar *command, QsimGuestAbortFunc abort_cb,
          gpointer abort_data, GError **error)
{
	return chan_open_full(session, command, FALSE, abort_cb, abort_data, error);
}

/*
 * Closes the channel (stopping the guest's command first if it still runs).
 * A command that ended, or the SFTP probe's server, is waited for until the
 * guest closed the channel too (see QSIM_GUEST_CHANNEL_END_WAIT_MS); one that
 * may ignore the TERM only briefly.
 */
static void
chan_close(Chan *ch)
{
	gint wait_ms =
	    ch->have_status || ch->subsystem ? QSIM_GUEST_CHANNEL_END_WAIT_MS : EXEC_CLOSE_WAIT_MS;
	gint64 end = g_get_monotonic_time() + wait_ms * G_TIME_SPAN_MILLISECOND;

	if (ssh_is_connected(ch->session) && ssh_channel_is_open(ch->channel)) {
		if (!ch->have_status)
			ssh_channel_request_send_signal(ch->channel, "TERM");
		ssh_channel_close(ch->channel);
		while (!ch->remote_closed && ssh_is_connected(ch->session) &&
		       g_get_monotonic_time() < end) {
			if (ssh_event_dopoll(ch->event, 50) == SSH_ERROR)
				break;
		}
	}
	ssh_remove_channel_callbacks(ch->channel, &ch->callbacks);
	ssh_event_remove_session(ch->event, ch->session);
	ssh_channel_free(ch->channel);
	ssh_event_free(ch->event);
	g_string_free(ch->err, TRUE);
	g_free(ch);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Chan, chan_close)

/* Takes in stderr (kept up to EXEC_ERR_KEEP, the rest dropped) without waiting. */
static gboolean
chan_drain_stderr(Chan *ch, GError **error)
{
	gchar tmp[4096];

	for (;;) {
		gint n = ssh_channel_read_nonblocking(ch->channel, tmp, sizeof tmp, 1);

		if (n == SSH_ERROR) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
			            ssh_get_error(ch->session));
			return FALSE;
		}
		if (n <= 0)
			return TRUE;
		if (ch->err->len < EXEC_ERR_KEEP)
			g_string_append_len(ch->err, tmp,
			                    MIN((gsize)n, EXEC_ERR_KEEP - ch->err->len));
	}
}

/* Refills the stdout buffer once it is used up; ch->eof at the end of stdout. */
static gboolean
chan_fill(Chan *ch, GError **error)
{
	while (ch->pos >= ch->len && !ch->eof) {
		gint n;

		if (chan_stop(ch, error) || !chan_drain_stderr(ch, error))
			return FALSE;
		n = ssh_channel_read_nonblocking(ch->channel, ch->buf, sizeof ch->buf, 0);
		if (n == SSH_ERROR) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
			            ssh_get_error(ch->session));
			return FALSE;
		}
		if (n > 0) {
			ch->pos = 0;
			ch->len = (gsize)n;
			ch->last_us = g_get_monotonic_time();
			return TRUE;
		}
		if (ssh_channel_is_eof(ch->channel) || ssh_channel_is_closed(ch->channel)) {
			ch->eof = TRUE;
			return TRUE;
		}
		if (!chan_wait(ch, EXEC_POLL_MS, error))
			return FALSE;
	}
	return TRUE;
}

/* Sends @len bytes to the command's stdin, never more than the window takes. */
static gboolean
chan_write_some(Chan *ch, const guint8 *data, gsize len, GError **error)
{
	gsize off = 0;

	while (off < len) {
		guint32 win;
		gint n;

		if (chan_stop(ch, error) || !chan_drain_stderr(ch, error))
			return FALSE;
		/* a command writing to stdout here is not expected: keep a little, drop the rest */
		while (ssh_channel_poll(ch->channel, 0) > 0) {
			gchar tmp[4096];
			gint got = ssh_channel_read_nonblocking(ch->channel, tmp, sizeof tmp, 0);

			if (got <= 0)
				break;
			if (ch->err->len < EXEC_ERR_KEEP)
				g_string_append_len(ch->err, tmp,
				                    MIN((gsize)got, EXEC_ERR_KEEP - ch->err->len));
		}
		if (ssh_channel_is_eof(ch->channel) || ssh_channel_is_closed(ch->channel) ||
		    ch->have_status) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
			            "the guest command stopped reading its input: %s",
			            ch->err->len > 0 ? ch->err->str : "no message");
			return FALSE;
		}
		win = ssh_channel_window_size(ch->channel);
		if (win == 0) {
			if (!chan_wait(ch, EXEC_POLL_MS, error))
				return FALSE;
			continue;
		}
		n = ssh_channel_write(ch->channel, data + off,
		                      (guint32)MIN(len - off, MIN((gsize)win, (gsize)EXEC_PIECE)));
		if (n == SSH_ERROR) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
			            "writing to the guest failed: %s", ssh_get_error(ch->session));
			return FALSE;
		}
		if (n <= 0) { /* SSH_AGAIN */
			if (!chan_wait(ch, EXEC_POLL_MS, error))
				return FALSE;
			continue;
		}
		off += (gsize)n;
		ch->last_us = g_get_monotonic_time();
	}
	return TRUE;
}

/*
 * chan_write_some() with the session non-blocking: in blocking mode every
 * ssh_channel_write() ends in a flush that waits up to the session timeout (10 s)
 * for a guest that stopped reading TCP, with no look at the abort callback, and
 * returns as if the bytes were sent, which also kept the stall limit away.
 */
static gboolean
chan_write_all(Chan *ch, const guint8 *data, gsize len, GError **error)
{
	gboolean was_blocking = ssh_is_blocking(ch->session);
	gboolean ok;

	ssh_set_blocking(ch->session, 0);
	ok = chan_write_some(ch, data, len, error);
	ssh_set_blocking(ch->session, was_blocking);
	return ok;
}

/*
 * Waits for the end of the command, dropping at most @max_extra bytes of
 * stdout (more ends the wait: the command is then stopped at the close).
 * Returns FALSE on abort or a lost session; @status is -1 without an exit status.
 */
static gboolean
chan_finish(Chan *ch, gsize max_extra, gint *status, GError **error)
{
	gsize extra = 0;

	*status = -1;
	while (!ch->eof) {
		ch->pos = ch->len;
		if (!chan_fill(ch, error))
			return FALSE;
		extra += ch->len - ch->pos;
		if (extra > max_extra)
			return TRUE;
	}
	while (!ch->have_status && !ch->remote_closed && !ssh_channel_is_closed(ch->channel)) {
		if (chan_stop(ch, error) || !chan_wait(ch, EXEC_POLL_MS, error))
			return FALSE;
	}
	if (!chan_drain_stderr(ch, error))
		return FALSE;
	*status = ch->have_status ? ch->status : -1;
	return TRUE;
}

/**
 * qsim_guest_exec_probe_sftp:
 *
 * Returns: FALSE with @error when aborted or the session broke
 */
gboolean
qsim_guest_exec_probe_sftp(QsimGuestSsh *ssh, QsimGuestAbortFunc abort_cb, gpointer abort_data,
                           gboolean *present, GError **error)
{
	/* SSH_FXP_INIT, version 3: a length of 5, type 1, version 3 */
	static const guint8 init[] = {0, 0, 0, 5, 1, 0, 0, 0, 3};
	ssh_session session = qsim_guest_ssh_get_session(ssh);
	g_autoptr(GError) local = NULL;
	g_autoptr(Chan) ch = NULL;
	gboolean ok;

	*present = FALSE;
	if (session == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session is not connected");
		return FALSE;
	}
	ch = chan_open_full(session, "sftp", TRUE, abort_cb, abort_data, &local);
	ok = ch != NULL && chan_write_all(ch, init, sizeof init, &local) && chan_fill(ch, &local);
	if (abort_cb(abort_data, error))
		return FALSE;
	if (!ssh_is_connected(session)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost: %s",
		            local != NULL ? local->message : ssh_get_error(session));
		return FALSE;
	}
	/* any reply means a server; a refusal, or an end without a byte, means none */
	*present = ok && !ch->eof && ch->len > 0;
	return TRUE;
}

static gint64
put_one(ssh_session session, const QsimGuestPut *put, QsimGuestAbortFunc abort_cb,
        gpointer abort_data, GError **error)
{
	g_autofree gchar *cmd = NULL;
	g_autoptr(Chan) ch = NULL;
	const gchar *what =
	    put->unpack != QSIM_GUEST_UNPACK_NONE ? put->unpack_dir : put->guest_path;
	gint64 total = 0;
	gint status;

	if (put->unpack != QSIM_GUEST_UNPACK_NONE) {
		g_autofree gchar *qdir = qsim_guest_sh_quote(put->unpack_dir);

		cmd = g_strdup_printf("mkdir -p %s && exec tar -x%sf - -C %s", qdir,
		                      put->unpack == QSIM_GUEST_UNPACK_TAR_GZ ? "z" : "", qdir);
	} else {
		g_autofree gchar *parent = g_path_get_dirname(put->guest_path);
		g_autofree gchar *qparent = qsim_guest_sh_quote(parent);
		g_autofree gchar *qpath = qsim_guest_sh_quote(put->guest_path);

		/* umask 077 until the chmod: the file is never readable by others meanwhile */
		cmd = g_strdup_printf("mkdir -p %s && umask 077 && cat > %s && chmod %o %s",
		                      qparent, qpath, put->mode & 07777, qpath);
	}
	ch = chan_open(session, cmd, abort_cb, abort_data, error);
	if (ch == NULL)
		return -1;
	for (;;) {
		g_autoptr(GBytes) chunk = NULL;
		const guint8 *data;
		gsize len = 0;

		if (abort_cb(abort_data, error))
			return -1;
		chunk = put->read(put->data, error);
		if (chunk == NULL)
			return -1;
		data = g_bytes_get_data(chunk, &len);
		if (len == 0)
			break;
		if (!chan_write_all(ch, data, len, error)) {
			g_prefix_error(error, "cannot write %s in the guest: ", what);
			return -1;
		}
		total += (gint64)len;
	}
	if (ssh_channel_send_eof(ch->channel) != SSH_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "writing %s in the guest failed: %s", what, ssh_get_error(session));
		return -1;
	}
	if (!chan_finish(ch, EXEC_ERR_KEEP, &status, error))
		return -1;
	if (status != 0) {
		g_autofree gchar *msg = g_utf8_make_valid(g_strchomp(ch->err->str), -1);

		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "%s %s in the guest failed (exit status %d): %s",
		            put->unpack != QSIM_GUEST_UNPACK_NONE ? "unpacking into" : "writing",
		            what, status, msg);
		return -1;
	}
	return total;
}

/**
 * qsim_guest_exec_put:
 *
 * Returns: the bytes written, or -1 with @error
 */
gint64
qsim_guest_exec_put(QsimGuestSsh *ssh, const QsimGuestPut *puts, guint n,
                    QsimGuestAbortFunc abort_cb, gpointer abort_data, GError **error)
{
	ssh_session session = qsim_guest_ssh_get_session(ssh);
	gint64 total = 0;

	if (session == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session is not connected");
		return -1;
	}
	for (guint i = 0; i < n; i++) {
		gint64 one = put_one(session, &puts[i], abort_cb, abort_data, error);

		if (one < 0)
			return -1;
		total += one;
	}
	return total;
}

/* A regular file the listing found, fetched after it. */
typedef struct {
	gchar *path;
	guint64 size;
	guint mode;
} Pending;

static void
pending_free(Pending *p)
{
	g_free(p->path);
	g_free(p);
}

typedef struct {
	ssh_session session;
	const QsimGuestCollectLimits *limits;
	const QsimGuestCollectSink *sink;
	QsimGuestAbortFunc abort_cb;
	gpointer abort_data;
	const gchar *const *patterns;
	QsimGuestNotes notes;
	GPtrArray *out;     /* QsimGuestArtifact */
	GPtrArray *pending; /* Pending */
	GHashTable *seen;   /* names taken */
	guint64 planned;    /* file bytes taken so far, as listed */
	guint64 bytes;      /* file bytes collected */
	GError *error;      /* fatal: aborted or the session broke */
} Collect;

/* A guest command that went silent costs what it was fetching, not the collection:
 * its fatal-looking error becomes a note. */
static void
forgive_stall(Collect *c, Chan *ch, const gchar *what)
{
	if (ch == NULL || !ch->stalled || c->error == NULL)
		return;
	qsim_guest_notes_add(&c->notes, "artifacts: %s: %s; given up", what, c->error->message);
	g_clear_error(&c->error);
}

/* Reads one header line of at most EXEC_LINE_MAX bytes; FALSE at EOF or when too long. */
static gboolean
read_line(Chan *ch, gchar *line, gboolean *fatal, GError **error)
{
	gsize n = 0;

	for (;;) {
		if (!chan_fill(ch, error)) {
			*fatal = TRUE;
			return FALSE;
		}
		if (ch->eof)
			return FALSE;
		while (ch->pos < ch->len) {
			guint8 b = ch->buf[ch->pos++];

			if (b == '\n') {
				line[n] = '\0';
				return TRUE;
			}
			if (n >= EXEC_LINE_MAX)
				return FALSE;
			line[n++] = (gchar)b;
		}
	}
}

/* Reads exactly @n bytes into @dst (NUL-terminated by the caller's size + 1). */
static gboolean
read_exact(Chan *ch, gchar *dst, gsize n, gboolean *fatal, GError **error)
{
	gsize got = 0;

	while (got < n) {
		gsize take;

		if (!chan_fill(ch, error)) {
			*fatal = TRUE;
			return FALSE;
		}
		if (ch->eof)
			return FALSE;
		take = MIN(n - got, ch->len - ch->pos);
		memcpy(dst + got, ch->buf + ch->pos, take);
		ch->pos += take;
		got += take;
	}
	return TRUE;
}

/* A decimal or hex number, digits only, within @max. */
static gboolean
parse_number(const gchar *text, guint base, guint64 max, guint64 *out)
{
	return text[0] != '\0' && text[0] != '-' && text[0] != '+' &&
	       g_ascii_string_to_unsigned(text, base, 0, max, out, NULL);
}

/*
 * Whether @path is one the request asked for: matched by a pattern, or below a
 * match (a directory walked). The listing comes from the guest's own tools,
 * which the request's commands may have replaced: it may name anything.
 */
static gboolean
asked_for(Collect *c, const gchar *path)
{
	g_autofree gchar *prefix = g_strdup(path);

	for (;;) {
		gchar *slash;

		for (guint i = 0; c->patterns[i] != NULL; i++) {
			if (fnmatch(c->patterns[i], prefix, FNM_PATHNAME | FNM_PERIOD) == 0)
				return TRUE;
		}
		slash = strrchr(prefix, '/');
		if (slash == NULL || slash == prefix)
			return FALSE;
		*slash = '\0';
	}
}

/* Takes one listed entry; FALSE once MAX_ARTIFACT_FILES is reached. */
static gboolean
take_entry(Collect *c, const gchar *path, guint raw_mode, guint64 size, const gchar *target)
{
	const gchar *name = path + 1;
	guint type = raw_mode & 0170000;
	g_autofree gchar *why = qsim_guest_entry_check_name(path, c->seen);

	if (why == NULL && !asked_for(c, path))
		why = g_strdup_printf("artifacts: the guest listed %s, which no artifact path "
		                      "names; skipped",
		                      path);
	if (why == NULL)
		why = qsim_guest_entry_check_type(path, raw_mode);
	if (why == NULL && type == 0100000)
		why = qsim_guest_entry_check_bytes(path, size, c->planned, c->limits);
	if (why != NULL) {
		if (why[0] != '\0')
			qsim_guest_notes_add(&c->notes, "%s", why);
		return TRUE;
	}
	if (type == 0040000)
		return TRUE;
	why = qsim_guest_entry_check_count(path, c->out->len + c->pending->len, c->limits);
	if (why != NULL) {
		qsim_guest_notes_cut(&c->notes, "%s", why);
		return FALSE;
	}
	if (type == 0120000) {
		QsimGuestArtifact *a;

		if (!g_utf8_validate(target, -1, NULL)) {
			qsim_guest_notes_add(
			    &c->notes,
			    "artifacts: symlink %s has an unusable target; not collected", path);
			return TRUE;
		}
		a = g_new0(QsimGuestArtifact, 1);
		a->name = g_strdup(name);
		a->is_symlink = TRUE;
		a->target = g_strdup(target);
		a->size = strlen(target);
		a->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, target, -1);
		a->mode = raw_mode & 07777;
		g_ptr_array_add(c->out, a);
	} else {
		Pending *p = g_new0(Pending, 1);

		p->path = g_strdup(path);
		p->size = size;
		p->mode = raw_mode & 07777;
		c->planned += size;
		g_ptr_array_add(c->pending, p);
	}
	g_hash_table_add(c->seen, g_strdup(name));
	return TRUE;
}

/*
 * Parses the listing: "<tag> <hex mode> <size> <name length> <target length>\n"
 * then the name and target bytes and "\n". Anything else ends the listing.
 */
static void
read_listing(Collect *c, Chan *ch)
{
	guint64 records = 0;
	guint64 max_records = (guint64)c->limits->max_files + QSIM_GUEST_EXTRA_ENTRIES;
	gchar line[EXEC_LINE_MAX + 1];
	gboolean fatal = FALSE;
	g_autofree gchar *text = g_malloc(2 * QSIM_GUEST_PATH_MAX + 2);

	while (read_line(ch, line, &fatal, &c->error)) {
		g_auto(GStrv) f = g_strsplit(line, " ", 0);
		guint64 mode, size, name_len, target_len;
		const gchar *path, *target;

		if (g_strv_length(f) != 5 || strlen(f[0]) != 1 || !strchr("EMD", f[0][0]) ||
		    !parse_number(f[1], 16, 0xffff, &mode) ||
		    !parse_number(f[2], 10, G_MAXINT64, &size) ||
		    !parse_number(f[3], 10, QSIM_GUEST_PATH_MAX, &name_len) || name_len == 0 ||
		    !parse_number(f[4], 10, QSIM_GUEST_PATH_MAX, &target_len))
			goto malformed;
		if (!read_exact(ch, text, name_len + target_len + 1, &fatal, &c->error) ||
		    text[name_len + target_len] != '\n')
			goto malformed;
		text[name_len + target_len] = '\0';
		target = text + name_len + 1;
		/* the target moves one byte up so that the name ends in a NUL */
		memmove(text + name_len + 1, text + name_len, target_len + 1);
		text[name_len] = '\0';
		path = text;
		if (strlen(path) != name_len || strlen(target) != target_len || path[0] != '/')
			goto malformed;
		if (++records > max_records) {
			qsim_guest_notes_cut(
			    &c->notes,
			    "artifacts: the guest listed more than %" G_GUINT64_FORMAT
			    " entries; the rest was not read",
			    max_records);
			return;
		}
		if (f[0][0] == 'M') {
			if (!g_strv_contains(c->patterns, path))
				goto malformed;
			if (qsim_guest_path_has_glob(path))
				qsim_guest_notes_add(&c->notes, "artifacts: %s matched nothing",
				                     path);
			else
				qsim_guest_notes_add(
				    &c->notes, "artifacts: %s: no such file in the guest", path);
		} else if (f[0][0] == 'D') {
			if (qsim_artifact_name_validate(path + 1, NULL))
				qsim_guest_notes_add(&c->notes,
				                     "artifacts: %s is nested too deep; not walked",
				                     path);
		} else if (!take_entry(c, path, (guint)mode, size, target)) {
			return;
		}
	}
	if (fatal || ch->eof)
		return;
malformed:
	if (!fatal)
		qsim_guest_notes_add(
		    &c->notes,
		    "artifacts: the guest's listing is malformed; the rest was not read");
}

/* Fetches one listed file with `head -c SIZE`, reading never more than SIZE bytes. */
static void
fetch_file(Collect *c, const Pending *p)
{
	g_autofree gchar *qpath = qsim_guest_sh_quote(p->path);
	g_autofree gchar *cmd =
	    g_strdup_printf("exec head -c %" G_GUINT64_FORMAT " -- %s", p->size, qpath);
	g_autoptr(GOutputStream) os = NULL;
	g_autoptr(GChecksum) sum = NULL;
	g_autoptr(GError) local = NULL;
	g_autoptr(Chan) ch = NULL;
	const gchar *name = p->path + 1;
	guint64 got = 0;
	gint status = 0;
	QsimGuestArtifact *a;

	os = c->sink->open(c->sink->data, name, &local);
	if (os == NULL) {
		qsim_guest_notes_add(&c->notes, "artifacts: %s not collected: %s", p->path,
		                     local->message);
		return;
	}
	sum = g_checksum_new(G_CHECKSUM_SHA256);
	if (p->size > 0) {
		ch = chan_open(c->session, cmd, c->abort_cb, c->abort_data, &local);
		if (ch == NULL) {
			/* a refused channel on a live session costs this file, not the rest */
			if (!c->abort_cb(c->abort_data, &c->error) && ssh_is_connected(c->session))
				qsim_guest_notes_add(&c->notes, "artifacts: %s not collected: %s",
				                     p->path, local->message);
			else if (c->error == NULL)
				g_propagate_error(&c->error, g_steal_pointer(&local));
			goto failed;
		}
		while (got < p->size) {
			gsize take;

			if (!chan_fill(ch, &c->error)) {
				forgive_stall(c, ch, p->path);
				goto failed;
			}
			if (ch->eof)
				break;
			take = (gsize)MIN((guint64)(ch->len - ch->pos), p->size - got);
			g_checksum_update(sum, ch->buf + ch->pos, take);
			if (!g_output_stream_write_all(os, ch->buf + ch->pos, take, NULL, NULL,
			                               &local)) {
				qsim_guest_notes_add(&c->notes, "artifacts: cannot store %s: %s",
				                     p->path, local->message);
				goto failed;
			}
			ch->pos += take;
			got += take;
		}
		/* past SIZE the guest is lying: nothing more is read, the close stops it */
		if (ch->pos < ch->len)
			qsim_guest_notes_add(
			    &c->notes,
			    "artifacts: the guest sent more than the %" G_GUINT64_FORMAT
			    " bytes it listed for %s; the rest was dropped",
			    p->size, p->path);
		ch->pos = ch->len;
		if (got < p->size) {
			if (!chan_finish(ch, 0, &status, &c->error)) {
				forgive_stall(c, ch, p->path);
				goto failed;
			}
			if (status != 0) {
				qsim_guest_notes_add(&c->notes, "artifacts: reading %s failed",
				                     p->path);
				goto failed;
			}
			qsim_guest_notes_add(&c->notes,
			                     "artifacts: the guest sent %" G_GUINT64_FORMAT
			                     " of the %" G_GUINT64_FORMAT
			                     " bytes it listed for %s; stored what came",
			                     got, p->size, p->path);
		}
	}
	if (!g_output_stream_close(os, NULL, &local)) {
		qsim_guest_notes_add(&c->notes, "artifacts: cannot store %s: %s", p->path,
		                     local->message);
		goto failed;
	}
	a = g_new0(QsimGuestArtifact, 1);
	a->name = g_strdup(name);
	a->size = got;
	a->sha256 = g_strdup(g_checksum_get_string(sum));
	a->mode = p->mode;
	c->bytes += got;
	g_ptr_array_add(c->out, a);
	return;
failed:
	g_clear_object(&os);
	c->sink->discard(c->sink->data, name);
}

/**
 * qsim_guest_exec_collect:
 *
 * Returns: (transfer container) (element-type QsimGuestArtifact): what was collected
 */
GPtrArray *
qsim_guest_exec_collect(QsimGuestSsh *ssh, const gchar *const *patterns,
                        const QsimGuestCollectLimits *limits, const QsimGuestCollectSink *sink,
                        QsimGuestAbortFunc abort_cb, gpointer abort_data, GPtrArray *notes,
                        GError **error)
{
	ssh_session session = qsim_guest_ssh_get_session(ssh);
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GPtrArray) pending = NULL;
	g_autoptr(GHashTable) seen = NULL;
	g_autoptr(GString) cmd = NULL;
	g_autofree gchar *qscript = NULL;
	Collect c = {0};

	if (session == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session is not connected");
		return NULL;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_guest_artifact_free);
	pending = g_ptr_array_new_with_free_func((GDestroyNotify)pending_free);
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c = (Collect){.session = session,
	              .limits = limits,
	              .sink = sink,
	              .abort_cb = abort_cb,
	              .abort_data = abort_data,
	              .patterns = patterns,
	              .notes = {.lines = notes},
	              .out = out,
	              .pending = pending,
	              .seen = seen};
	/* LC_ALL=C: ${#name} counts bytes, as the parser does */
	qscript = qsim_guest_sh_quote(list_script);
	cmd = g_string_new("exec env LC_ALL=C LANG=C sh -c ");
	g_string_append_printf(cmd, "%s qsim-list", qscript);
	for (guint i = 0; patterns[i] != NULL; i++) {
		g_autofree gchar *q = qsim_guest_sh_quote(patterns[i]);

		g_string_append_printf(cmd, " %s", q);
	}
	{
		g_autoptr(Chan) ch = chan_open(session, cmd->str, abort_cb, abort_data, &c.error);

		if (ch != NULL) {
			read_listing(&c, ch);
			forgive_stall(&c, ch, "listing");
		}
	}
	for (guint i = 0; i < pending->len && c.error == NULL; i++) {
		if (abort_cb(abort_data, &c.error))
			break;
		fetch_file(&c, pending->pdata[i]);
	}
	qsim_guest_notes_finish(&c.notes);
	if (c.error != NULL) {
		g_propagate_error(error, c.error);
		return NULL;
	}
	return g_steal_pointer(&out);
}
