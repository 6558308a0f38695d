#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <string.h>

#include "qsim-sse-parser.h"

/* a stream that never sends a newline must not eat all memory */
#define QSIM_SSE_MAX_LINE (16 * 1024 * 1024)

struct _QsimSseParser {
	QsimSseEventFunc func;
	gpointer user_data;
	GString *line;
	GString *data;
	gchar *event;
	gchar *id;
	gchar *last_id;
	gboolean has_data;
	gboolean after_cr; /* a "\r" ended the last line: a following "\n" is part of it */
	gboolean stopped;
};

/**
 * qsim_sse_parser_new:
 * @func: called for each complete event
 * @user_data: passed to @func
 *
 * Returns: (transfer full): a new parser, free with qsim_sse_parser_free()
 */
QsimSseParser *
qsim_sse_parser_new(QsimSseEventFunc func, gpointer user_data)
{
	QsimSseParser *self = g_new0(QsimSseParser, 1);

	self->func = func;
	self->user_data = user_data;
	self->line = g_string_new(NULL);
	self->data = g_string_new(NULL);
	return self;
}

/**
 * qsim_sse_parser_free:
 * @self: (nullable): a parser
 */
void
qsim_sse_parser_free(QsimSseParser *self)
{
	if (self == NULL)
		return;
	g_string_free(self->line, TRUE);
	g_string_free(self->data, TRUE);
	g_free(self->event);
	g_free(self->id);
	g_free(self->last_id);
	g_free(self);
}

/**
 * qsim_sse_parser_get_last_id:
 * @self: a parser
 *
 * Returns: (transfer none) (nullable): the id of the last dispatched event that had
 * one, the value to send as `Last-Event-ID` when reconnecting
 */
const gchar *
qsim_sse_parser_get_last_id(QsimSseParser *self)
{
	return self->last_id;
}

static void
qsim_sse_parser_reset_event(QsimSseParser *self)
{
	g_string_truncate(self->data, 0);
	g_clear_pointer(&self->event, g_free);
	g_clear_pointer(&self->id, g_free);
	self->has_data = FALSE;
}

static void
qsim_sse_parser_dispatch(QsimSseParser *self)
{
	if (self->id != NULL) {
		g_free(self->last_id);
		self->last_id = g_strdup(self->id);
	}
	/* the spec drops events without data lines */
	if (self->has_data) {
		const gchar *event = self->event != NULL ? self->event : "message";
		if (!self->func(event, self->data->str, self->id, self->user_data))
			self->stopped = TRUE;
	}
	qsim_sse_parser_reset_event(self);
}

static void
qsim_sse_parser_process_line(QsimSseParser *self, const gchar *line)
{
	const gchar *colon;
	const gchar *value = "";
	g_autofree gchar *field = NULL;

	if (line[0] == '\0') {
		qsim_sse_parser_dispatch(self);
		return;
	}
	if (line[0] == ':')
		return; /* comment, e.g. keep-alive */
	colon = strchr(line, ':');
	if (colon != NULL) {
		field = g_strndup(line, colon - line);
		value = colon + 1;
		if (value[0] == ' ')
			value++;
	} else {
		field = g_strdup(line);
	}
	if (g_strcmp0(field, "data") == 0) {
		if (self->has_data)
			g_string_append_c(self->data, '\n');
		g_string_append(self->data, value);
		self->has_data = TRUE;
	} else if (g_strcmp0(field, "event") == 0) {
		g_free(self->event);
		self->event = g_strdup(value);
	} else if (g_strcmp0(field, "id") == 0) {
		/* ids with NUL are ignored by the spec; our lines cannot hold one anyway */
		g_free(self->id);
		self->id = g_strdup(value);
	}
	/* "retry" and unknown fields are ignored: we reconnect on our own schedule */
}

/**
 * qsim_sse_parser_feed:
 * @self: a parser
 * @buf: (array length=len): bytes from the stream
 * @len: the number of bytes
 *
 * Parses @buf, calling the event function for each event it completes.
 *
 * Returns: %FALSE if the event function asked to stop or a line grew too long
 */
gboolean
qsim_sse_parser_feed(QsimSseParser *self, const guint8 *buf, gsize len)
{
	for (gsize i = 0; i < len && !self->stopped; i++) {
		guint8 c = buf[i];

		if (c == '\n' && self->after_cr) {
			self->after_cr = FALSE;
			continue;
		}
		self->after_cr = FALSE;
		if (c == '\r' || c == '\n') {
			self->after_cr = (c == '\r');
			qsim_sse_parser_process_line(self, self->line->str);
			g_string_truncate(self->line, 0);
			continue;
		}
		if (c == '\0')
			continue; /* would truncate the line; valid streams never contain it */
		if (self->line->len >= QSIM_SSE_MAX_LINE) {
			self->stopped = TRUE;
			break;
		}
		g_string_append_c(self->line, (gchar)c);
	}
	return !self->stopped;
}
