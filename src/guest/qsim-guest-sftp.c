#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <libssh/sftp.h>
#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-guest-path.h"
#include "common/qsim-text.h"
#include "guest/qsim-guest-entry.h"
#include "guest/qsim-guest-sftp-write.h"
#include "guest/qsim-guest-sftp.h"

/* One read request; SFTP servers answer up to 64 KiB, OpenSSH's sftp-server 256 KiB. */
#define SFTP_CHUNK (64 * 1024)
/* Read requests in flight per file: hides the round trip (what scp gets from
 * streaming). Bounds memory: at most SFTP_WINDOW * SFTP_CHUNK per transfer. */
#define SFTP_WINDOW 16
/* A directory tree deeper than this is not walked further (a loop of bind mounts). */
#define SFTP_MAX_DEPTH 32

/* An SFTP session that, when done, waits for the guest's close of its channel
 * (sftp-server reaped) before it is freed: see QSIM_GUEST_CHANNEL_END_WAIT_MS. */
typedef struct {
	sftp_session sftp;
	QsimGuestAbortFunc abort_cb;
	gpointer abort_data;
} Sftp;

static void
sftp_end(Sftp *s)
{
	g_autoptr(GError) error = NULL;

	if (s->sftp == NULL)
		return;
	if (s->sftp->channel != NULL &&
	    !qsim_guest_ssh_end_channel(s->sftp->session, s->sftp->channel, s->abort_cb,
	                                s->abort_data, &error))
		g_debug("SFTP channel not closed by the guest: %s", error->message);
	g_clear_pointer(&s->sftp, sftp_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Sftp, sftp_end)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(sftp_attributes, sftp_attributes_free, NULL)

void
qsim_guest_artifact_free(QsimGuestArtifact *self)
{
	if (self == NULL)
		return;
	g_free(self->name);
	g_free(self->sha256);
	g_free(self->target);
	g_free(self);
}

typedef struct {
	ssh_session session;
	sftp_session sftp;
	const QsimGuestCollectLimits *limits;
	const QsimGuestCollectSink *sink;
	QsimGuestAbortFunc abort_cb;
	gpointer abort_data;
	QsimGuestNotes notes;
	GPtrArray *out;   /* QsimGuestArtifact */
	GHashTable *seen; /* names collected */
	guint64 bytes;    /* file bytes so far */
	guint64 entries;  /* directory entries read, of every directory */
	gboolean full;    /* a cap was reached: stop everything */
	GError *error;    /* fatal: aborted or the session broke */
} Collect;

/* One more directory entry read: FALSE (and the collection stops) past the bound */
static gboolean
count_entry(Collect *c)
{
	guint64 max = (guint64)c->limits->max_files + QSIM_GUEST_EXTRA_ENTRIES;

	if (++c->entries <= max)
		return TRUE;
	qsim_guest_notes_cut(&c->notes,
	                     "artifacts: stopped after reading %" G_GUINT64_FORMAT
	                     " directory entries; the rest was not read",
	                     max);
	c->full = TRUE;
	return FALSE;
}

/* Whether to stop: aborted, session gone, or the cap reached. */
static gboolean
stopped(Collect *c)
{
	if (c->error != NULL || c->full)
		return TRUE;
	if (c->abort_cb(c->abort_data, &c->error))
		return TRUE;
	if (!ssh_is_connected(c->session)) {
		g_set_error_literal(&c->error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session lost while collecting artifacts");
		return TRUE;
	}
	return FALSE;
}

static gchar *
join(const gchar *dir, const gchar *name)
{
	return g_str_has_suffix(dir, "/") ? g_strconcat(dir, name, NULL)
	                                  : g_strconcat(dir, "/", name, NULL);
}

/* Counts one more artifact; FALSE (and stop) once the cap is reached. */
static gboolean
take_slot(Collect *c, const gchar *path)
{
	g_autofree gchar *why = qsim_guest_entry_check_count(path, c->out->len, c->limits);

	if (why == NULL)
		return TRUE;
	qsim_guest_notes_cut(&c->notes, "%s", why);
	c->full = TRUE;
	return FALSE;
}

static void
add_symlink(Collect *c, const gchar *path, const gchar *name, guint mode)
{
	g_autofree gchar *target = sftp_readlink(c->sftp, path);
	QsimGuestArtifact *a;

	if (target == NULL) {
		qsim_guest_notes_add(&c->notes, "artifacts: cannot read symlink %s: %s", path,
		                     ssh_get_error(c->session));
		return;
	}
	if (!g_utf8_validate(target, -1, NULL) || strlen(target) > QSIM_GUEST_PATH_MAX) {
		qsim_guest_notes_add(
		    &c->notes, "artifacts: symlink %s has an unusable target; not collected", path);
		return;
	}
	if (!take_slot(c, path))
		return;
	a = g_new0(QsimGuestArtifact, 1);
	a->name = g_strdup(name);
	a->is_symlink = TRUE;
	a->target = g_strdup(target);
	a->size = strlen(target);
	a->sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, target, -1);
	a->mode = mode & 07777;
	g_hash_table_add(c->seen, g_strdup(name));
	g_ptr_array_add(c->out, a);
}

/*
 * Streams one file with up to SFTP_WINDOW reads in flight, stopping at
 * @size (what lstat said: a file that grows meanwhile is cut there).
 * Returns the bytes written, or -1 after a note or a fatal error.
 */
static gint64
pump_file(Collect *c, sftp_file f, guint64 size, GOutputStream *os, GChecksum *sum,
          const gchar *path)
{
	guint64 asked = 0, got = 0;
	gint ids[SFTP_WINDOW];
	guint32 lens[SFTP_WINDOW];
	guint head = 0, inflight = 0;
	g_autofree guint8 *buf = g_malloc(SFTP_CHUNK);
	gboolean eof = FALSE;
	g_autoptr(GError) local = NULL;

	sftp_file_set_blocking(f);
	while (!eof && (got < size || inflight > 0)) {
		gint n;
		guint32 want;

		while (inflight < SFTP_WINDOW && asked < size && !eof) {
			guint32 len = (guint32)MIN((guint64)SFTP_CHUNK, size - asked);
			gint id = sftp_async_read_begin(f, len);

			if (id < 0)
				break;
			ids[(head + inflight) % SFTP_WINDOW] = id;
			lens[(head + inflight) % SFTP_WINDOW] = len;
			inflight++;
			asked += len;
		}
		if (inflight == 0)
			break;
		want = lens[head];
		n = sftp_async_read(f, buf, want, (uint32_t)ids[head]);
		head = (head + 1) % SFTP_WINDOW;
		inflight--;
		if (n < 0) {
			qsim_guest_notes_add(&c->notes, "artifacts: reading %s failed: %s", path,
			                     ssh_get_error(c->session));
			goto drain;
		}
		if (n == 0) {
			/* the file shrank: keep what was read */
			eof = TRUE;
			break;
		}
		/* a short read in the middle would misplace later chunks: treat as the end */
		if ((guint32)n < want)
			eof = TRUE;
		g_checksum_update(sum, buf, (gsize)n);
		if (!g_output_stream_write_all(os, buf, (gsize)n, NULL, NULL, &local)) {
			qsim_guest_notes_add(&c->notes, "artifacts: cannot store %s: %s", path,
			                     local->message);
			goto drain;
		}
		got += (guint64)n;
		if (stopped(c) && c->error != NULL)
			goto drain;
	}
drain:
	/* every request sent must be answered, or libssh keeps its reply forever */
	while (inflight > 0 && ssh_is_connected(c->session)) {
		(void)sftp_async_read(f, buf, lens[head], (uint32_t)ids[head]);
		head = (head + 1) % SFTP_WINDOW;
		inflight--;
	}
	if (local != NULL || c->error != NULL || (!eof && got < size))
		return -1;
	return (gint64)got;
}

static void
add_file(Collect *c, const gchar *path, const gchar *name, guint64 size, guint mode)
{
	g_autoptr(GOutputStream) os = NULL;
	g_autoptr(GChecksum) sum = NULL;
	g_autoptr(GError) local = NULL;
	sftp_file f;
	gint64 got;
	QsimGuestArtifact *a;

	g_autofree gchar *why = qsim_guest_entry_check_bytes(path, size, c->bytes, c->limits);

	if (why != NULL) {
		qsim_guest_notes_add(&c->notes, "%s", why);
		return;
	}
	if (!take_slot(c, path))
		return;
	f = sftp_open(c->sftp, path, O_RDONLY, 0);
	if (f == NULL) {
		qsim_guest_notes_add(&c->notes, "artifacts: cannot open %s: %s", path,
		                     ssh_get_error(c->session));
		return;
	}
	os = c->sink->open(c->sink->data, name, &local);
	if (os == NULL) {
		qsim_guest_notes_add(&c->notes, "artifacts: %s not collected: %s", path,
		                     local->message);
		sftp_close(f);
		return;
	}
	sum = g_checksum_new(G_CHECKSUM_SHA256);
	got = pump_file(c, f, size, os, sum, path);
	sftp_close(f);
	if (got < 0 || !g_output_stream_close(os, NULL, &local)) {
		if (local != NULL)
			qsim_guest_notes_add(&c->notes, "artifacts: cannot store %s: %s", path,
			                     local->message);
		c->sink->discard(c->sink->data, name);
		return;
	}
	a = g_new0(QsimGuestArtifact, 1);
	a->name = g_strdup(name);
	a->size = (guint64)got;
	a->sha256 = g_strdup(g_checksum_get_string(sum));
	a->mode = mode & 07777;
	c->bytes += (guint64)got;
	g_hash_table_add(c->seen, g_strdup(name));
	g_ptr_array_add(c->out, a);
}

static void visit(Collect *c, const gchar *path, guint depth, gboolean named);

static void
walk_dir(Collect *c, const gchar *path, guint depth)
{
	sftp_dir dir;

	if (depth >= SFTP_MAX_DEPTH) {
		qsim_guest_notes_add(&c->notes, "artifacts: %s is nested too deep; not walked",
		                     path);
		return;
	}
	dir = sftp_opendir(c->sftp, path);
	if (dir == NULL) {
		qsim_guest_notes_add(&c->notes, "artifacts: cannot list %s: %s", path,
		                     ssh_get_error(c->session));
		return;
	}
	while (!stopped(c)) {
		g_auto(sftp_attributes) attr = sftp_readdir(c->sftp, dir);
		g_autofree gchar *child = NULL;

		if (attr == NULL || !count_entry(c))
			break;
		if (g_strcmp0(attr->name, ".") == 0 || g_strcmp0(attr->name, "..") == 0)
			continue;
		child = join(path, attr->name);
		visit(c, child, depth + 1, FALSE);
	}
	sftp_closedir(dir);
}

/* One guest path: a file, a symlink or a directory (walked). @named: the user
 * named it (a missing path is worth a note; a vanished directory entry is not). */
static void
visit(Collect *c, const gchar *path, guint depth, gboolean named)
{
	g_auto(sftp_attributes) attr = NULL;
	g_autofree gchar *why = NULL;
	const gchar *name = path + 1;
	guint type;

	if (stopped(c))
		return;
	why = qsim_guest_entry_check_name(path, c->seen);
	if (why != NULL) {
		if (why[0] != '\0')
			qsim_guest_notes_add(&c->notes, "%s", why);
		return;
	}
	attr = sftp_lstat(c->sftp, path);
	if (attr == NULL) {
		if (named)
			qsim_guest_notes_add(&c->notes, "artifacts: %s: no such file in the guest",
			                     path);
		return;
	}
	type = attr->permissions & 0170000;
	if (type == 0120000)
		add_symlink(c, path, name, attr->permissions);
	else if (type == 0100000)
		add_file(c, path, name, attr->size, attr->permissions);
	else if (type == 0040000)
		walk_dir(c, path, depth);
	else
		why = qsim_guest_entry_check_type(path, type);
	if (why != NULL)
		qsim_guest_notes_add(&c->notes, "%s", why);
}

/* Matches the pattern's components from @i on below @dir. */
static void
expand(Collect *c, const gchar *dir, gchar **parts, guint i, guint *matches)
{
	sftp_dir d;

	if (stopped(c))
		return;
	if (parts[i] == NULL) {
		(*matches)++;
		visit(c, dir, 0, TRUE);
		return;
	}
	if (!qsim_guest_path_has_glob(parts[i])) {
		g_autofree gchar *next = join(dir, parts[i]);
		expand(c, next, parts, i + 1, matches);
		return;
	}
	d = sftp_opendir(c->sftp, dir);
	if (d == NULL)
		return;
	while (!stopped(c)) {
		g_auto(sftp_attributes) attr = sftp_readdir(c->sftp, d);
		g_autofree gchar *next = NULL;

		if (attr == NULL || !count_entry(c))
			break;
		if (g_strcmp0(attr->name, ".") == 0 || g_strcmp0(attr->name, "..") == 0 ||
		    fnmatch(parts[i], attr->name, FNM_PERIOD) != 0)
			continue;
		next = join(dir, attr->name);
		expand(c, next, parts, i + 1, matches);
	}
	sftp_closedir(d);
}

/**
 * qsim_guest_sftp_collect:
 *
 * Returns: (transfer container) (element-type QsimGuestArtifact): what was collected
 */
GPtrArray *
qsim_guest_sftp_collect(QsimGuestSsh *ssh, const gchar *const *patterns,
                        const QsimGuestCollectLimits *limits, const QsimGuestCollectSink *sink,
                        QsimGuestAbortFunc abort_cb, gpointer abort_data, GPtrArray *notes,
                        gboolean *no_sftp, GError **error)
{
	ssh_session session = qsim_guest_ssh_get_session(ssh);
	g_auto(Sftp) s = {.abort_cb = abort_cb, .abort_data = abort_data};
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GHashTable) seen = NULL;
	Collect c = {0};

	if (session == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session is not connected");
		return NULL;
	}
	s.sftp = sftp_new(session);
	if (s.sftp == NULL || sftp_init(s.sftp) != SSH_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "the guest has no SFTP subsystem: %s", ssh_get_error(session));
		*no_sftp = ssh_is_connected(session);
		return NULL;
	}
	out = g_ptr_array_new_with_free_func((GDestroyNotify)qsim_guest_artifact_free);
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c = (Collect){.session = session,
	              .sftp = s.sftp,
	              .limits = limits,
	              .sink = sink,
	              .abort_cb = abort_cb,
	              .abort_data = abort_data,
	              .notes = {.lines = notes},
	              .out = out,
	              .seen = seen};
	for (guint i = 0; patterns[i] != NULL && !stopped(&c); i++) {
		g_auto(GStrv) parts = g_strsplit(patterns[i] + 1, "/", -1);
		guint matches = 0;

		expand(&c, "/", parts, 0, &matches);
		if (matches == 0 && c.error == NULL && qsim_guest_path_has_glob(patterns[i]))
			qsim_guest_notes_add(&c.notes, "artifacts: %s matched nothing",
			                     patterns[i]);
	}
	qsim_guest_notes_finish(&c.notes);
	if (c.error != NULL) {
		g_propagate_error(error, c.error);
		return NULL;
	}
	return g_steal_pointer(&out);
}

/* mkdir -p of @path's parents; failures show up when the file is opened */
static void
make_parents(sftp_session sftp, const gchar *path)
{
	g_autofree gchar *dir = g_path_get_dirname(path);
	g_auto(GStrv) parts = g_strsplit(dir + 1, "/", -1);
	g_autoptr(GString) at = g_string_new(NULL);

	for (guint i = 0; parts[i] != NULL && parts[i][0] != '\0'; i++) {
		g_string_append_printf(at, "/%s", parts[i]);
		(void)sftp_mkdir(sftp, at->str, 0755);
	}
}

static gint64
put_one(ssh_session session, sftp_session sftp, guint32 piece, guint32 *next_id,
        const QsimGuestPut *put, QsimGuestAbortFunc abort_cb, gpointer abort_data, GError **error)
{
	sftp_file f;
	gint64 total = 0;
	gboolean ok = TRUE;

	make_parents(sftp, put->guest_path);
	f = sftp_open(sftp, put->guest_path, O_WRONLY | O_CREAT | O_TRUNC, put->mode & 07777);
	if (f == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "cannot create %s in the guest: %s", put->guest_path,
		            ssh_get_error(session));
		return -1;
	}
	total = qsim_guest_sftp_write_stream(f, piece, next_id, put->guest_path, put->read,
	                                     put->data, abort_cb, abort_data, error);
	ok = total >= 0;
	/* after a failure the guest may never answer a CLOSE (libssh would wait for it
	 * without end) and replies to the WRITEs may still be on their way: without its
	 * handle, sftp_close() only frees the file, and the session is given up */
	if (!ok)
		g_clear_pointer(&f->handle, ssh_string_free);
	if (sftp_close(f) != SSH_NO_ERROR && ok) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "closing %s in the guest failed: %s", put->guest_path,
		            ssh_get_error(session));
		ok = FALSE;
	}
	/* the umask of the guest's sftp-server applied at creation: say the mode again */
	if (ok && sftp_chmod(sftp, put->guest_path, put->mode & 07777) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "cannot chmod %s in the guest: %s",
		            put->guest_path, ssh_get_error(session));
		ok = FALSE;
	}
	return ok ? total : -1;
}

/**
 * qsim_guest_sftp_put:
 *
 * Returns: the bytes written, or -1 with @error
 */
gint64
qsim_guest_sftp_put(QsimGuestSsh *ssh, const QsimGuestPut *puts, guint n,
                    QsimGuestAbortFunc abort_cb, gpointer abort_data, gboolean *no_sftp,
                    GError **error)
{
	ssh_session session = qsim_guest_ssh_get_session(ssh);
	g_auto(Sftp) s = {.abort_cb = abort_cb, .abort_data = abort_data};
	gint64 total = 0;
	guint32 piece;
	guint32 next_id = 0;

	if (session == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		                    "guest session is not connected");
		return -1;
	}
	s.sftp = sftp_new(session);
	if (s.sftp == NULL || sftp_init(s.sftp) != SSH_OK) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "the guest has no SFTP subsystem: %s", ssh_get_error(session));
		*no_sftp = ssh_is_connected(session);
		return -1;
	}
	piece = qsim_guest_sftp_write_piece(s.sftp, &next_id, abort_cb, abort_data, error);
	if (piece == 0)
		return -1;
	for (guint i = 0; i < n; i++) {
		gint64 one = put_one(session, s.sftp, piece, &next_id, &puts[i], abort_cb,
		                     abort_data, error);

		if (one < 0)
			return -1;
		total += one;
	}
	return total;
}
