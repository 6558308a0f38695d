#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-text.h"
#include "guest/qsim-guest-sftp-write.h"

/*
 * Why this exists: libssh 0.10's sftp_write() sends one WRITE and waits for its
 * status, so an upload crossed the guest's network stack and its sftp-server once
 * per piece with nothing else in flight: raw scp (OpenSSH's sftp, 64 WRITEs of
 * 255 KiB in flight) was 1.45x faster into the tiny guest (tests/bench/artifacts).
 * libssh 0.11's sftp_aio_* would pipeline, but Debian 12 ships 0.10.
 *
 * The packets go on the channel of the libssh SFTP session that opened the file,
 * with its handle. That is safe because libssh reads that channel only inside its
 * own sftp_* calls, one whole packet at a time, and none runs while this does;
 * every reply to these requests is read here before a success returns, and no
 * byte past them. After a failure, replies may be left unread (libssh would queue
 * them under their ids): the caller drops the file without a CLOSE and gives the
 * SFTP session up.
 *
 * The session is non-blocking meanwhile: in blocking mode every ssh_channel_write()
 * ends in a flush that waits up to the session timeout (10 s) for a guest that
 * stopped reading TCP, with no look at the abort callback, and returns as if the
 * bytes were sent.
 */

/* SFTP v3 (draft-ietf-secsh-filexfer-02) and OpenSSH's PROTOCOL: the packet types
 * and the status used here */
#define FXP_WRITE 6
#define FXP_STATUS 101
#define FXP_EXTENDED 200
#define FXP_EXTENDED_REPLY 201
#define FX_OK 0
#define LIMITS_NAME "limits@openssh.com"
/* The smallest reply: type, id and a status code */
#define REPLY_MIN 9
/* A STATUS is an id, a code, a message and a language tag, the limits reply an id
 * and four numbers: a longer reply is neither, and a guest must not make us buffer
 * megabytes to find that out */
#define REPLY_MAX 4096
/* The limits reply: type, id, then max packet, read, write lengths and open handles */
#define LIMITS_LEN (1 + 4 + 4 * 8)
/* Ids of these requests: far above libssh's own (a counter from 1, and a session
 * here lives for one upload), so no reply is ever taken for the other's request;
 * one counter per session (the caller's), so neither is a late reply to an earlier
 * file's WRITE taken for a later file's */
#define ID_BASE 0x80000000u
/* stderr of the server read and dropped per turn, at most: a flood must not keep
 * the loop from the abort check */
#define STDERR_TURN_MAX (64 * 1024)
/* The longest refusal message of the guest kept in an error */
#define MESSAGE_MAX 200
#define WAIT_SLICE_MS 50
/* The longest file handle SFTP v3 allows: each WRITE repeats it */
#define HANDLE_MAX 256
/* A WRITE less its data: length, type, id, the handle string, offset, data length */
#define WRITE_HEADER_MAX (4 + 1 + 4 + 4 + HANDLE_MAX + 8 + 4)

typedef struct {
	ssh_session session;
	ssh_channel channel;
	ssh_event event;
	const gchar *what;
	QsimGuestAbortFunc abort_cb;
	gpointer abort_data;
	/* WRITEs sent and not answered, with their sizes */
	guint32 ids[QSIM_GUEST_SFTP_WRITE_WINDOW];
	guint32 sizes[QSIM_GUEST_SFTP_WRITE_WINDOW];
	guint n_ids;
	guint32 *next_id;
	/* the limits question, while it is not answered */
	gboolean asking;
	guint32 limits_id;
	guint64 limits[4];
	gboolean have_limits;
	GByteArray *out; /* requests queued for the channel, sent up to out_pos */
	gsize out_pos;
	guint8 in[4 + REPLY_MAX]; /* the reply coming in: length, then body */
	gsize in_len;
	gint64 acked; /* bytes the guest said it wrote */
	/* the last sign of life: reply bytes in, request bytes out, a request queued
	 * (stderr is no sign: a server could keep itself alive with a byte a minute) */
	gint64 last_us;
	gboolean was_blocking;
} Writer;

static void
append_be32(GByteArray *a, guint32 v)
{
	guint32 be = GUINT32_TO_BE(v);

	g_byte_array_append(a, (const guint8 *)&be, sizeof be);
}

static void
append_be64(GByteArray *a, guint64 v)
{
	guint64 be = GUINT64_TO_BE(v);

	g_byte_array_append(a, (const guint8 *)&be, sizeof be);
}

static guint32
read_be32(const guint8 *p)
{
	return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static guint64
read_be64(const guint8 *p)
{
	return ((guint64)read_be32(p) << 32) | read_be32(p + 4);
}

static void
set_lost(Writer *w, GError **error)
{
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session lost while writing %s: %s",
	            w->what, ssh_get_error(w->session));
}

static gboolean
writer_init(Writer *w, sftp_session sftp, guint32 *next_id, const gchar *what,
            QsimGuestAbortFunc abort_cb, gpointer abort_data, GError **error)
{
	*w = (Writer){
	    .session = sftp->session,
	    .channel = sftp->channel,
	    .next_id = next_id,
	    .what = what,
	    .abort_cb = abort_cb,
	    .abort_data = abort_data,
	    .last_us = g_get_monotonic_time(),
	};
	w->event = ssh_event_new();
	if (w->event == NULL || ssh_event_add_session(w->event, w->session) != SSH_OK) {
		g_clear_pointer(&w->event, ssh_event_free);
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INTERNAL,
		                    "cannot set up SSH event polling");
		return FALSE;
	}
	w->out = g_byte_array_new();
	w->was_blocking = ssh_is_blocking(w->session);
	ssh_set_blocking(w->session, 0);
	return TRUE;
}

static void
writer_clear(Writer *w)
{
	ssh_set_blocking(w->session, w->was_blocking);
	ssh_event_remove_session(w->event, w->session);
	g_clear_pointer(&w->event, ssh_event_free);
	g_clear_pointer(&w->out, g_byte_array_unref);
}

/* Starts a request of @type behind those not sent yet; returns its id.
 * Its length is filled in by end_request(). */
static guint32
begin_request(Writer *w, guint8 type)
{
	guint32 id = ID_BASE | ((*w->next_id)++ & ~ID_BASE);

	/* the sent head is dropped once it is half the buffer, not on every request */
	if (w->out_pos > 0 && w->out_pos >= w->out->len / 2) {
		g_byte_array_remove_range(w->out, 0, (guint)w->out_pos);
		w->out_pos = 0;
	}
	append_be32(w->out, 0);
	g_byte_array_append(w->out, &type, 1);
	append_be32(w->out, id);
	return id;
}

static void
end_request(Writer *w, gsize start)
{
	guint32 be = GUINT32_TO_BE((guint32)(w->out->len - start - 4));

	memcpy(w->out->data + start, &be, sizeof be);
	w->last_us = g_get_monotonic_time();
}

/* Queues the WRITE of @len bytes at @offset */
static void
queue_write(Writer *w, ssh_string handle, guint64 offset, const guint8 *data, guint32 len)
{
	guint32 handle_len = (guint32)ssh_string_len(handle);
	gsize start;
	guint32 id;

	id = begin_request(w, FXP_WRITE);
	start = w->out->len - 9;
	append_be32(w->out, handle_len);
	g_byte_array_append(w->out, ssh_string_data(handle), handle_len);
	append_be64(w->out, offset);
	append_be32(w->out, len);
	g_byte_array_append(w->out, data, len);
	end_request(w, start);
	w->ids[w->n_ids] = id;
	w->sizes[w->n_ids] = len;
	w->n_ids++;
}

/* The answer to the limits question: the numbers, or a STATUS (not supported after all) */
static gboolean
take_limits(Writer *w, GError **error)
{
	const guint8 *p = w->in + 4;
	gsize len = read_be32(w->in);

	if (p[0] == FXP_EXTENDED_REPLY && len >= LIMITS_LEN) {
		for (guint i = 0; i < G_N_ELEMENTS(w->limits); i++)
			w->limits[i] = read_be64(p + 5 + 8 * i);
		w->have_limits = TRUE;
	} else if (p[0] != FXP_STATUS) {
		g_set_error(
		    error, QSIM_ERROR, QSIM_ERROR_GUEST,
		    "the guest's SFTP server answered its limits question with a %" G_GSIZE_FORMAT
		    "-byte "
		    "packet of type %u",
		    len, p[0]);
		return FALSE;
	}
	w->asking = FALSE;
	return TRUE;
}

/* One whole reply in w->in: the limits, or the STATUS of a WRITE in flight, and OK */
static gboolean
take_reply(Writer *w, GError **error)
{
	const guint8 *p = w->in + 4;
	gsize len = read_be32(w->in);
	guint32 id = read_be32(p + 1);
	guint32 code = read_be32(p + 5);
	guint i;

	if (w->asking && id == w->limits_id)
		return take_limits(w, error);
	if (p[0] != FXP_STATUS) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "the guest's SFTP server answered a write of %s with a packet of type "
		            "%u, not a status",
		            w->what, p[0]);
		return FALSE;
	}
	for (i = 0; i < w->n_ids && w->ids[i] != id; i++)
		;
	if (i == w->n_ids) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "the guest's SFTP server answered request %u, which is no write in "
		            "flight, while %s was written",
		            id, w->what);
		return FALSE;
	}
	if (code != FX_OK) {
		g_autofree gchar *message = NULL;

		if (len >= REPLY_MIN + 4 && read_be32(p + 9) <= len - REPLY_MIN - 4)
			message = qsim_utf8_safe_dup((const gchar *)p + 13, read_be32(p + 9),
			                             MESSAGE_MAX);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "writing %s in the guest failed: %s (SFTP status %u)", w->what,
		            message != NULL && message[0] != '\0' ? message : "no message", code);
		return FALSE;
	}
	w->acked += w->sizes[i];
	w->n_ids--;
	w->ids[i] = w->ids[w->n_ids];
	w->sizes[i] = w->sizes[w->n_ids];
	return TRUE;
}

/* Takes in every reply the guest sent so far, in any order (the protocol lets a
 * server answer out of order), and nothing once no request waits for one: bytes
 * after the last reply belong to libssh's next request. stderr is dropped. */
static gboolean
take_replies(Writer *w, gboolean *progress, GError **error)
{
	gsize dropped = 0;
	gint n;

	while (dropped < STDERR_TURN_MAX) {
		guint8 drop[4096];

		n = ssh_channel_read_nonblocking(w->channel, drop, sizeof drop, 1);
		if (n == SSH_ERROR) {
			set_lost(w, error);
			return FALSE;
		}
		if (n <= 0)
			break;
		dropped += (gsize)n;
	}
	for (;;) {
		gsize want;

		if (w->in_len == 0 && w->n_ids == 0 && !w->asking)
			return TRUE;
		want = w->in_len < 4 ? 4 - w->in_len : 4 + read_be32(w->in) - w->in_len;
		n = ssh_channel_read_nonblocking(w->channel, w->in + w->in_len, (guint32)want, 0);
		if (n == SSH_ERROR) {
			set_lost(w, error);
			return FALSE;
		}
		if (n <= 0)
			return TRUE;
		*progress = TRUE;
		w->last_us = g_get_monotonic_time();
		w->in_len += (gsize)n;
		if (w->in_len == 4 &&
		    (read_be32(w->in) < REPLY_MIN || read_be32(w->in) > REPLY_MAX)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
			            "the guest's SFTP server sent a %u-byte reply while %s was "
			            "written; a reply here has %d to %d",
			            read_be32(w->in), w->what, REPLY_MIN, REPLY_MAX);
			return FALSE;
		}
		if (w->in_len > 4 && w->in_len == 4 + read_be32(w->in)) {
			if (!take_reply(w, error))
				return FALSE;
			w->in_len = 0;
		}
	}
}

/* Whether to go on: not aborted, and the session is there */
static gboolean
writer_check(Writer *w, GError **error)
{
	if (w->abort_cb(w->abort_data, error))
		return FALSE;
	if (!ssh_is_connected(w->session)) {
		set_lost(w, error);
		return FALSE;
	}
	return TRUE;
}

/* Sends what of the queue the channel's window takes, never waiting for it; then,
 * unless anything moved this turn, waits one slice for the guest (a reply or a
 * window adjust), up to the stall limit */
static gboolean
writer_flush(Writer *w, gboolean progress, GError **error)
{
	while (w->out_pos < w->out->len) {
		guint32 win = ssh_channel_window_size(w->channel);
		gint n;

		if (win == 0)
			break;
		n = ssh_channel_write(w->channel, w->out->data + w->out_pos,
		                      (guint32)MIN(w->out->len - w->out_pos, (gsize)win));
		if (n == SSH_ERROR) {
			set_lost(w, error);
			return FALSE;
		}
		if (n <= 0) /* SSH_AGAIN: nothing taken this turn */
			break;
		w->out_pos += (gsize)n;
		w->last_us = g_get_monotonic_time();
		progress = TRUE;
	}
	if (ssh_channel_is_eof(w->channel) || ssh_channel_is_closed(w->channel)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "the guest's SFTP server ended while %s was written", w->what);
		return FALSE;
	}
	if (progress)
		return TRUE;
	if (g_get_monotonic_time() - w->last_us > QSIM_GUEST_STALL_S * G_USEC_PER_SEC) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
		            "the guest's SFTP server took no data and answered nothing for %d s "
		            "while %s was written",
		            QSIM_GUEST_STALL_S, w->what);
		return FALSE;
	}
	if (ssh_event_dopoll(w->event, WAIT_SLICE_MS) == SSH_ERROR &&
	    !ssh_is_connected(w->session)) {
		set_lost(w, error);
		return FALSE;
	}
	return TRUE;
}

guint32
qsim_guest_sftp_write_piece(sftp_session sftp, guint32 *next_id, QsimGuestAbortFunc abort_cb,
                            gpointer abort_data, GError **error)
{
	Writer w;
	gsize start;
	guint64 piece = QSIM_GUEST_SFTP_WRITE_PIECE_DEFAULT;
	gboolean ok = TRUE;

	if (sftp_extension_supported(sftp, LIMITS_NAME, "1") != 1)
		return (guint32)piece;
	if (!writer_init(&w, sftp, next_id, "the limits question", abort_cb, abort_data, error))
		return 0;
	w.limits_id = begin_request(&w, FXP_EXTENDED);
	start = w.out->len - 9;
	append_be32(w.out, strlen(LIMITS_NAME));
	g_byte_array_append(w.out, (const guint8 *)LIMITS_NAME, strlen(LIMITS_NAME));
	end_request(&w, start);
	w.asking = TRUE;
	while (ok && w.asking) {
		gboolean progress = FALSE;

		ok = writer_check(&w, error) && take_replies(&w, &progress, error) &&
		     (!w.asking || writer_flush(&w, progress, error));
	}
	writer_clear(&w);
	if (!ok)
		return 0;
	/* limits[0]: the longest packet; [2]: the longest write; 0 means no limit stated */
	if (w.have_limits && w.limits[2] != 0)
		piece = w.limits[2];
	else if (w.have_limits && w.limits[0] != 0)
		piece = QSIM_GUEST_SFTP_WRITE_PIECE_MAX;
	if (w.have_limits && w.limits[0] != 0)
		piece =
		    MIN(piece, w.limits[0] > WRITE_HEADER_MAX ? w.limits[0] - WRITE_HEADER_MAX : 0);
	return (guint32)CLAMP(piece, QSIM_GUEST_SFTP_WRITE_PIECE_MIN,
	                      QSIM_GUEST_SFTP_WRITE_PIECE_MAX);
}

static gint64
write_stream(Writer *w, sftp_file file, guint32 piece, QsimGuestReadFunc read, gpointer read_data,
             GError **error)
{
	g_autoptr(GBytes) chunk = NULL;
	g_autoptr(GByteArray) stage = g_byte_array_sized_new(piece);
	const guint8 *data = NULL;
	gsize len = 0, pos = 0;
	guint64 offset = 0;
	gboolean eof = FALSE;

	for (;;) {
		gboolean progress = FALSE;

		if (!writer_check(w, error) || !take_replies(w, &progress, error))
			return -1;
		/* two WRITEs queued at most: they go out as one stream that libssh cuts into
		 * full SSH packets, where one channel write per WRITE added a tiny packet
		 * for each WRITE's last bytes */
		if (w->out->len - w->out_pos < 2 * (gsize)piece &&
		    w->n_ids < QSIM_GUEST_SFTP_WRITE_WINDOW && !eof) {
			/* a WRITE takes @piece bytes across the reader's chunks (the spool's
			 * are 1 MiB, which would leave a 4 KiB WRITE at each boundary) */
			while (stage->len < piece && !eof) {
				gsize n;

				if (pos == len) {
					g_clear_pointer(&chunk, g_bytes_unref);
					chunk = read(read_data, error);
					if (chunk == NULL)
						return -1;
					data = g_bytes_get_data(chunk, &len);
					pos = 0;
					eof = len == 0;
					continue;
				}
				n = MIN(len - pos, (gsize)piece - stage->len);
				g_byte_array_append(stage, data + pos, (guint)n);
				pos += n;
			}
			if (stage->len > 0) {
				queue_write(w, file->handle, offset, stage->data, stage->len);
				offset += stage->len;
				g_byte_array_set_size(stage, 0);
			}
			progress = TRUE;
		}
		if (eof && w->n_ids == 0 && w->out_pos == w->out->len) {
			if (w->in_len > 0) {
				g_set_error(
				    error, QSIM_ERROR, QSIM_ERROR_GUEST,
				    "the guest's SFTP server sent part of a reply nobody asked "
				    "for while %s was written",
				    w->what);
				return -1;
			}
			return w->acked;
		}
		if (!writer_flush(w, progress, error))
			return -1;
	}
}

gint64
qsim_guest_sftp_write_stream(sftp_file file, guint32 piece, guint32 *next_id, const gchar *what,
                             QsimGuestReadFunc read, gpointer read_data,
                             QsimGuestAbortFunc abort_cb, gpointer abort_data, GError **error)
{
	Writer w;
	gint64 total;

	if (ssh_string_len(file->handle) > HANDLE_MAX) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_GUEST,
		            "the guest's SFTP server gave %s a %" G_GSIZE_FORMAT
		            "-byte handle; SFTP allows %d",
		            what, ssh_string_len(file->handle), HANDLE_MAX);
		return -1;
	}
	piece = CLAMP(piece, QSIM_GUEST_SFTP_WRITE_PIECE_MIN, QSIM_GUEST_SFTP_WRITE_PIECE_MAX);
	if (!writer_init(&w, file->sftp, next_id, what, abort_cb, abort_data, error))
		return -1;
	total = write_stream(&w, file, piece, read, read_data, error);
	writer_clear(&w);
	return total;
}
