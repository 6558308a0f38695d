#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "api-fixture.h"
#include "store/qsim-store.h"
#include "store/qsim-store-factory.h"

/* One Server-Sent Event as read off the wire; a comment has event ":". */
typedef struct {
	gchar *event;
	gint64 id;
	gchar *data;
} SseEvent;

static void
sse_event_free(SseEvent *e)
{
	g_free(e->event);
	g_free(e->data);
	g_free(e);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SseEvent, sse_event_free)

typedef struct {
	SoupMessage *msg;
	GInputStream *body;
	GDataInputStream *lines;
	GCancellable *cancel;
	GError *error;
	gboolean opened;
	/* one pending line read */
	gchar *line;
	gboolean line_done;
} SseClient;

static void
opened_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SseClient *c = user_data;

	c->body = soup_session_send_finish(SOUP_SESSION(source), res, &c->error);
	c->opened = TRUE;
}

static gboolean
is_opened(gpointer data)
{
	return ((SseClient *)data)->opened;
}

static SseClient *
sse_open(ApiFixture *fx, const gchar *path, const gchar *last_event_id, gboolean use_accept)
{
	g_autofree gchar *uri = g_strconcat(fx->base, path, NULL);
	SseClient *c = g_new0(SseClient, 1);

	c->msg = soup_message_new("GET", uri);
	c->cancel = g_cancellable_new();
	if (last_event_id != NULL)
		soup_message_headers_replace(soup_message_get_request_headers(c->msg),
		                             "Last-Event-ID", last_event_id);
	if (use_accept)
		soup_message_headers_replace(soup_message_get_request_headers(c->msg), "Accept",
		                             "text/event-stream");
	soup_session_send_async(fx->session, c->msg, G_PRIORITY_DEFAULT, c->cancel, opened_cb, c);
	api_wait_until(is_opened, c);
	g_assert_no_error(c->error);
	g_assert_cmpuint(soup_message_get_status(c->msg), ==, 200);
	g_assert_cmpstr(
	    soup_message_headers_get_content_type(soup_message_get_response_headers(c->msg), NULL),
	    ==, "text/event-stream");
	c->lines = g_data_input_stream_new(c->body);
	return c;
}

static void
sse_close(SseClient *c)
{
	g_cancellable_cancel(c->cancel);
	g_clear_object(&c->lines);
	g_clear_object(&c->body);
	g_clear_object(&c->msg);
	g_clear_object(&c->cancel);
	g_clear_error(&c->error);
	g_free(c);
}

static void
line_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SseClient *c = user_data;

	c->line = g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), res, NULL,
	                                                    &c->error);
	c->line_done = TRUE;
}

static gboolean
line_is_done(gpointer data)
{
	return ((SseClient *)data)->line_done;
}

/* Returns: (transfer full) (nullable): the next line, NULL at the end */
static gchar *
sse_read_line(SseClient *c)
{
	c->line_done = FALSE;
	c->line = NULL;
	g_data_input_stream_read_line_async(c->lines, G_PRIORITY_DEFAULT, c->cancel, line_cb, c);
	api_wait_until(line_is_done, c);
	g_assert_no_error(c->error);
	return g_steal_pointer(&c->line);
}

/* Returns: (transfer full) (nullable): the next event, NULL when the server closed */
static SseEvent *
sse_next(SseClient *c)
{
	g_autoptr(SseEvent) e = g_new0(SseEvent, 1);

	for (;;) {
		g_autofree gchar *line = sse_read_line(c);

		if (line == NULL)
			return NULL;
		if (line[0] == '\0') {
			if (e->event != NULL)
				return g_steal_pointer(&e);
			continue;
		}
		if (line[0] == ':') {
			g_free(e->event);
			e->event = g_strdup(":");
			e->data = g_strdup(line + 1);
		} else if (g_str_has_prefix(line, "event: ")) {
			g_free(e->event);
			e->event = g_strdup(line + 7);
		} else if (g_str_has_prefix(line, "id: ")) {
			e->id = g_ascii_strtoll(line + 4, NULL, 10);
		} else if (g_str_has_prefix(line, "data: ")) {
			g_free(e->data);
			e->data = g_strdup(line + 6);
		} else {
			g_error("unexpected SSE line '%s'", line);
		}
	}
}

/* Skips keep-alive comments. */
static SseEvent *
sse_next_event(SseClient *c)
{
	for (;;) {
		SseEvent *e = sse_next(c);
		if (e == NULL || g_strcmp0(e->event, ":") != 0)
			return e;
		sse_event_free(e);
	}
}

static JsonObject *
parse_data(JsonParser *parser, const SseEvent *e)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(json_parser_load_from_data(parser, e->data, -1, &error));
	return json_node_get_object(json_parser_get_root(parser));
}

static void
assert_log_event(SseEvent *e, gint64 seq, const gchar *output)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonObject *o;

	g_assert_nonnull(e);
	g_assert_cmpstr(e->event, ==, "log");
	g_assert_cmpint(e->id, ==, seq);
	o = parse_data(p, e);
	g_assert_cmpint(json_object_get_int_member(o, "seq"), ==, seq);
	g_assert_cmpstr(json_object_get_string_member(o, "output"), ==, output);
}

static void
assert_status_event(SseEvent *e, const gchar *status)
{
	g_autoptr(JsonParser) p = json_parser_new();

	g_assert_nonnull(e);
	g_assert_cmpstr(e->event, ==, "status");
	g_assert_cmpint(e->id, ==, 0);
	g_assert_cmpstr(json_object_get_string_member(parse_data(p, e), "status"), ==, status);
}

static void
append_text(ApiFixture *fx, const gchar *uuid, const gchar *text)
{
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(chunks,
	                qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)text, strlen(text)));
	g_assert_cmpint(qsim_store_append_logs(fx->store, uuid, chunks, &error), >, 0);
	g_assert_no_error(error);
}

/* What an agent does, driven straight through the store. */
static void
agent_start(ApiFixture *fx, const gchar *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) claimed =
	    qsim_store_claim_next(fx->store, "agent-1", 60000, 0, &error);

	g_assert_no_error(error);
	g_assert_nonnull(claimed);
	g_assert_cmpstr(claimed->uuid, ==, uuid);
	g_assert_true(qsim_store_mark_running(fx->store, uuid, "agent-1", &error));
	g_assert_no_error(error);
}

static void
agent_finish(ApiFixture *fx, const gchar *uuid, gint exit_code)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *why = g_strdup_printf("exit code %d", exit_code);

	g_assert_true(qsim_store_finish_request(
	    fx->store, uuid, "agent-1", exit_code == 0 ? QSIM_STATUS_DONE : QSIM_STATUS_FAILED,
	    TRUE, exit_code, exit_code == 0 ? NULL : why, NULL, &error));
	g_assert_no_error(error);
}

static gboolean
no_streams(gpointer data)
{
	return qsim_api_server_get_stream_count(((ApiFixture *)data)->server) == 0;
}

static void
test_live(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "echo hi; exit 3");
	g_autofree gchar *path = g_strdup_printf("/requests/%s/logs?follow=1", uuid);
	g_autoptr(JsonParser) p = json_parser_new();
	SseClient *c;
	JsonObject *end;

	append_text(fx, uuid, "before\n");
	c = sse_open(fx, path, NULL, FALSE);
	g_assert_cmpuint(qsim_api_server_get_stream_count(fx->server), ==, 1);
	{
		g_autoptr(SseEvent) e1 = sse_next_event(c);
		g_autoptr(SseEvent) e2 = sse_next_event(c);
		assert_log_event(e1, 1, "before\n");
		assert_status_event(e2, "pending");
	}
	agent_start(fx, uuid);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		/* acknowledged may be skipped when both changes land in one pump */
		if (g_strcmp0(e->data, "{\"status\":\"acknowledged\"}") == 0) {
			g_autoptr(SseEvent) e2 = sse_next_event(c);
			assert_status_event(e2, "running");
		} else {
			assert_status_event(e, "running");
		}
	}
	append_text(fx, uuid, "live 1\n");
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_log_event(e, 2, "live 1\n");
	}
	append_text(fx, uuid, "live 2\n");
	append_text(fx, uuid, "live 3\n");
	{
		g_autoptr(SseEvent) e2 = sse_next_event(c);
		g_autoptr(SseEvent) e3 = sse_next_event(c);
		assert_log_event(e2, 3, "live 2\n");
		assert_log_event(e3, 4, "live 3\n");
	}
	agent_finish(fx, uuid, 3);
	{
		g_autoptr(SseEvent) st = sse_next_event(c);
		g_autoptr(SseEvent) e = sse_next_event(c);
		g_autoptr(SseEvent) eof = NULL;

		assert_status_event(st, "failed");
		g_assert_nonnull(e);
		g_assert_cmpstr(e->event, ==, "end");
		end = parse_data(p, e);
		g_assert_cmpstr(json_object_get_string_member(end, "status"), ==, "failed");
		g_assert_cmpint(json_object_get_int_member(end, "exit_code"), ==, 3);
		g_assert_cmpstr(json_object_get_string_member(end, "error"), ==, "exit code 3");
		eof = sse_next(c);
		g_assert_null(eof);
	}
	sse_close(c);
	api_wait_until(no_streams, fx);
}

static void
test_resume(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s/logs", uuid);
	g_autofree gchar *after = g_strdup_printf("/requests/%s/logs?follow=1&after_seq=3", uuid);
	g_autofree gchar *bad = g_strdup_printf("/requests/%s/logs?follow=1", uuid);
	g_autofree gchar *bad_follow = g_strdup_printf("/requests/%s/logs?follow=maybe", uuid);
	SseClient *c;

	for (guint i = 1; i <= 4; i++) {
		g_autofree gchar *t = g_strdup_printf("line %u\n", i);
		append_text(fx, uuid, t);
	}
	agent_start(fx, uuid);
	agent_finish(fx, uuid, 0);

	/* Last-Event-ID with Accept instead of ?follow, as an EventSource reconnects */
	c = sse_open(fx, path, "2", TRUE);
	{
		g_autoptr(SseEvent) e3 = sse_next_event(c);
		g_autoptr(SseEvent) e4 = sse_next_event(c);
		g_autoptr(SseEvent) st = sse_next_event(c);
		g_autoptr(SseEvent) end = sse_next_event(c);
		g_autoptr(SseEvent) eof = sse_next(c);
		g_autoptr(JsonParser) p = json_parser_new();

		assert_log_event(e3, 3, "line 3\n");
		assert_log_event(e4, 4, "line 4\n");
		assert_status_event(st, "done");
		g_assert_cmpstr(end->event, ==, "end");
		g_assert_cmpint(json_object_get_int_member(parse_data(p, end), "exit_code"), ==, 0);
		g_assert_true(json_object_get_null_member(parse_data(p, end), "error"));
		g_assert_null(eof);
	}
	sse_close(c);

	c = sse_open(fx, after, NULL, FALSE);
	{
		g_autoptr(SseEvent) e4 = sse_next_event(c);
		assert_log_event(e4, 4, "line 4\n");
	}
	sse_close(c);
	api_wait_until(no_streams, fx);

	{
		g_autoptr(ApiResponse) r =
		    api_request(fx, "GET", bad, NULL, NULL, "Last-Event-ID", "abc", NULL);
		g_autoptr(ApiResponse) f = api_request(fx, "GET", bad_follow, NULL, NULL, NULL);
		g_assert_cmpuint(r->status, ==, 400);
		g_assert_cmpstr(api_response_error_code(r), ==, "bad_request");
		g_assert_cmpuint(f->status, ==, 400);
	}
}

static void
test_keepalive(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s/logs?follow=true", uuid);
	SseClient *c = sse_open(fx, path, NULL, FALSE);
	g_autoptr(SseEvent) st = sse_next(c);
	g_autoptr(SseEvent) ka = sse_next(c);

	assert_status_event(st, "pending");
	g_assert_nonnull(ka);
	g_assert_cmpstr(ka->event, ==, ":");
	g_assert_cmpstr(ka->data, ==, " keep-alive");
	sse_close(c);
	api_wait_until(no_streams, fx);
}

/* The client leaves mid-stream: the server notices, drops the stream and
 * keeps serving; nothing touches the dead message (fatal criticals). */
static void
test_disconnect(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s/logs?follow=1", uuid);
	SseClient *c = sse_open(fx, path, NULL, FALSE);
	g_autoptr(ApiResponse) health = NULL;
	g_autoptr(ApiResponse) logs = NULL;
	g_autofree gchar *logs_path = g_strdup_printf("/requests/%s/logs", uuid);

	{
		g_autoptr(SseEvent) st = sse_next_event(c);
		assert_status_event(st, "pending");
	}
	g_assert_cmpuint(qsim_api_server_get_stream_count(fx->server), ==, 1);
	sse_close(c);
	/* output keeps coming; writes to the dead connection reveal the loss */
	append_text(fx, uuid, "nobody listens\n");
	api_wait_until(no_streams, fx);
	append_text(fx, uuid, "still nobody\n");
	health = api_request(fx, "GET", "/health", NULL, NULL, NULL);
	g_assert_cmpuint(health->status, ==, 200);
	logs = api_request(fx, "GET", logs_path, NULL, NULL, NULL);
	g_assert_cmpuint(logs->status, ==, 200);
	g_assert_cmpuint(json_array_get_length(json_node_get_array(logs->json)), ==, 2);
}

/* Deleting the request ends its stream; stopping the server ends the rest. */
static void
test_delete_and_stop(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *a = api_submit(fx, "true");
	g_autofree gchar *b = api_submit(fx, "true");
	g_autofree gchar *pa = g_strdup_printf("/requests/%s/logs?follow=1", a);
	g_autofree gchar *pb = g_strdup_printf("/requests/%s/logs?follow=1", b);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) cancelled = NULL;
	SseClient *ca = sse_open(fx, pa, NULL, FALSE);
	SseClient *cb = sse_open(fx, pb, NULL, FALSE);

	{
		g_autoptr(SseEvent) sa = sse_next_event(ca);
		g_autoptr(SseEvent) sb = sse_next_event(cb);
		assert_status_event(sa, "pending");
		assert_status_event(sb, "pending");
	}
	cancelled = qsim_store_cancel_request(fx->store, a, &error);
	g_assert_no_error(error);
	{
		g_autoptr(SseEvent) st = sse_next_event(ca);
		g_autoptr(SseEvent) end = sse_next_event(ca);
		assert_status_event(st, "cancelled");
		g_assert_cmpstr(end->event, ==, "end");
		g_assert_null(sse_next(ca));
	}
	qsim_api_server_stop(fx->server);
	g_assert_cmpuint(qsim_api_server_get_stream_count(fx->server), ==, 0);
	{
		g_autoptr(SseEvent) eof = sse_next(cb);
		g_assert_null(eof);
	}
	sse_close(ca);
	sse_close(cb);
}

/* An agent in another process: its commits reach the server only through the
 * database, so the stream must find them by polling. */
static void
test_other_process(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = api_submit(fx, "true");
	g_autofree gchar *path = g_strdup_printf("/requests/%s/logs?follow=1", uuid);
	g_autofree gchar *db = g_build_filename(fx->tmpdir, "qsim.db", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) other = qsim_store_open(db, &error);
	g_autoptr(GPtrArray) chunks =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_log_entry_free);
	g_autoptr(QsimRequest) claimed = NULL;
	SseClient *c;

	g_assert_no_error(error);
	c = sse_open(fx, path, NULL, FALSE);
	{
		g_autoptr(SseEvent) st = sse_next_event(c);
		assert_status_event(st, "pending");
	}
	g_ptr_array_add(chunks, qsim_log_entry_new(QSIM_LOG_STDOUT, 0, (const guint8 *)"far\n", 4));
	g_assert_cmpint(qsim_store_append_logs(other, uuid, chunks, &error), ==, 1);
	g_assert_no_error(error);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_log_event(e, 1, "far\n");
	}
	claimed = qsim_store_claim_next(other, "agent-9", 60000, 0, &error);
	g_assert_nonnull(claimed);
	g_assert_true(qsim_store_mark_running(other, uuid, "agent-9", &error));
	g_assert_true(qsim_store_finish_request(other, uuid, "agent-9", QSIM_STATUS_DONE, TRUE, 0,
	                                        NULL, NULL, &error));
	g_assert_no_error(error);
	for (;;) {
		g_autoptr(SseEvent) e = sse_next_event(c);
		g_assert_nonnull(e);
		if (g_strcmp0(e->event, "end") == 0)
			break;
		g_assert_cmpstr(e->event, ==, "status");
	}
	g_assert_null(sse_next(c));
	sse_close(c);
	api_wait_until(no_streams, fx);
}

static void
assert_request_event(SseEvent *e, const gchar *event, const gchar *uuid, const gchar *status)
{
	g_autoptr(JsonParser) p = json_parser_new();
	JsonObject *o;

	g_assert_nonnull(e);
	g_assert_cmpstr(e->event, ==, event);
	g_assert_cmpint(e->id, >, 0);
	o = parse_data(p, e);
	g_assert_cmpstr(json_object_get_string_member(o, "uuid"), ==, uuid);
	if (status != NULL)
		g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, status);
	else
		g_assert_true(json_object_get_null_member(o, "status"));
	g_assert_cmpint(json_object_get_int_member(o, "at"), >, 0);
}

/* GET /events: created and status events from this process (the store's
 * signals) and from the writer thread's own connection (the journal, found
 * through changed-elsewhere); then a resume with Last-Event-ID. */
static void
test_events(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *uuid = NULL;
	g_autofree gchar *resume = NULL;
	g_autoptr(ApiResponse) bad = NULL;
	SseClient *c = sse_open(fx, "/events", NULL, FALSE);
	gint64 created_id;
	g_autoptr(GError) error = NULL;

	uuid = api_submit(fx, "true");
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_request_event(e, "request-created", uuid, "pending");
		created_id = e->id;
	}
	agent_start(fx, uuid);
	{
		g_autoptr(SseEvent) a = sse_next_event(c);
		g_autoptr(SseEvent) r = NULL;
		assert_request_event(a, "request-status", uuid, "acknowledged");
		r = sse_next_event(c);
		assert_request_event(r, "request-status", uuid, "running");
		g_assert_cmpint(r->id, ==, a->id + 1);
	}
	agent_finish(fx, uuid, 0);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_request_event(e, "request-status", uuid, "done");
	}
	g_assert_true(qsim_store_delete_request(fx->store, uuid, &error));
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_request_event(e, "request-deleted", uuid, NULL);
	}
	sse_close(c);

	/* resumed: exactly what came after the id given */
	resume = g_strdup_printf("%" G_GINT64_FORMAT, created_id);
	c = sse_open(fx, "/events", resume, FALSE);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_request_event(e, "request-status", uuid, "acknowledged");
		g_assert_cmpint(e->id, ==, created_id + 1);
	}
	sse_close(c);
	c = sse_open(fx, "/events?after=0", NULL, FALSE);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_request_event(e, "request-created", uuid, "pending");
	}
	sse_close(c);
	api_wait_until(no_streams, fx);

	bad = api_request(fx, "GET", "/events", NULL, NULL, "Last-Event-ID", "12abc", NULL);
	g_assert_cmpuint(bad->status, ==, 400);
}

/* A resume point the journal no longer reaches back to: `reset` comes first */
static void
test_events_reset(ApiFixture *fx, gconstpointer data)
{
	g_autofree gchar *db = g_build_filename(fx->tmpdir, "qsim.db", NULL);
	g_autofree gchar *last = NULL;
	sqlite3 *raw = NULL;
	SseClient *c;

	for (guint i = 0; i < 3; i++)
		g_free(api_submit(fx, "true"));
	last = api_submit(fx, "true");
	/* as the trim does: the oldest events are gone */
	g_assert_cmpint(sqlite3_open(db, &raw), ==, SQLITE_OK);
	g_assert_cmpint(
	    sqlite3_exec(raw, "DELETE FROM request_events WHERE id <= 2", NULL, NULL, NULL), ==,
	    SQLITE_OK);
	sqlite3_close(raw);
	c = sse_open(fx, "/events", "1", FALSE);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		g_autoptr(SseEvent) next = NULL;
		g_assert_nonnull(e);
		g_assert_cmpstr(e->event, ==, "reset");
		next = sse_next_event(c);
		g_assert_nonnull(next);
		g_assert_cmpstr(next->event, ==, "request-created");
		g_assert_cmpint(next->id, ==, 3);
	}
	sse_close(c);
	/* no gap after 3: no reset */
	c = sse_open(fx, "/events", "3", FALSE);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		assert_request_event(e, "request-created", last, "pending");
		g_assert_cmpint(e->id, ==, 4);
	}
	sse_close(c);
	/* an id past the newest (another database's journal): reset, then what comes next */
	c = sse_open(fx, "/events", "999", FALSE);
	{
		g_autoptr(SseEvent) e = sse_next_event(c);
		g_autoptr(SseEvent) next = NULL;
		g_autofree gchar *later = NULL;

		g_assert_nonnull(e);
		g_assert_cmpstr(e->event, ==, "reset");
		later = api_submit(fx, "true");
		next = sse_next_event(c);
		assert_request_event(next, "request-created", later, "pending");
		g_assert_cmpint(next->id, ==, 5);
	}
	sse_close(c);
	api_wait_until(no_streams, fx);
}

/* /events shares the stream cap with the log streams */
static const gchar *const one_stream_env[] = {"QSIM_API_MAX_STREAMS=1", NULL};
static const ApiFixtureOptions one_stream_opts = {.env = one_stream_env};

static void
test_events_cap(ApiFixture *fx, gconstpointer data)
{
	SseClient *c = sse_open(fx, "/events", NULL, FALSE);
	g_autoptr(ApiResponse) second = api_request(fx, "GET", "/events", NULL, NULL, NULL);

	g_assert_cmpuint(second->status, ==, 503);
	g_assert_cmpstr(api_response_error_code(second), ==, "too_many_streams");
	sse_close(c);
	api_wait_until(no_streams, fx);
}

#define ADD(path, func)                                                                            \
	g_test_add(path, ApiFixture, NULL, api_fixture_setup, func, api_fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/api/sse/live", test_live);
	ADD("/qsim/api/sse/resume", test_resume);
	ADD("/qsim/api/sse/keepalive", test_keepalive);
	ADD("/qsim/api/sse/disconnect", test_disconnect);
	ADD("/qsim/api/sse/delete-and-stop", test_delete_and_stop);
	ADD("/qsim/api/sse/other-process", test_other_process);
	ADD("/qsim/api/sse/events", test_events);
	ADD("/qsim/api/sse/events-reset", test_events_reset);
	g_test_add("/qsim/api/sse/events-cap", ApiFixture, &one_stream_opts, api_fixture_setup,
	           test_events_cap, api_fixture_teardown);
	return g_test_run();
}
