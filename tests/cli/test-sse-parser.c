#include "config.h"

#include <string.h>

#include "cli/qsim-sse-parser.h"

typedef struct {
	GPtrArray *events; /* "event|id|data" strings */
	guint stop_after;  /* 0 = never stop */
} Collect;

static gboolean
collect_cb(const gchar *event, const gchar *data, const gchar *id, gpointer user_data)
{
	Collect *c = user_data;

	g_ptr_array_add(c->events, g_strdup_printf("%s|%s|%s", event, id != NULL ? id : "-", data));
	return c->stop_after == 0 || c->events->len < c->stop_after;
}

static const gchar *stream = ": keep-alive\r\n"
                             "event: log\r\n"
                             "id: 1\r\n"
                             "data: {\"seq\":1}\r\n"
                             "\r\n"
                             "event: status\n"
                             "data: {\"status\":\"running\"}\n"
                             "\n"
                             "data: line one\r"
                             "data:line two\r"
                             "\r"
                             "retry: 100\n"
                             "id\n"
                             "unknown: field\n"
                             "\n"
                             "event: end\n"
                             "id: 7\n"
                             "data: {\"status\":\"done\"}\n"
                             "\n"
                             "data: incomplete at the end";

static void
check_events(Collect *c)
{
	g_assert_cmpuint(c->events->len, ==, 4);
	g_assert_cmpstr(g_ptr_array_index(c->events, 0), ==, "log|1|{\"seq\":1}");
	g_assert_cmpstr(g_ptr_array_index(c->events, 1), ==, "status|-|{\"status\":\"running\"}");
	g_assert_cmpstr(g_ptr_array_index(c->events, 2), ==, "message|-|line one\nline two");
	g_assert_cmpstr(g_ptr_array_index(c->events, 3), ==, "end|7|{\"status\":\"done\"}");
}

/* the whole stream at once: every line ending, comments, multi-line data, defaults */
static void
test_sse_whole(void)
{
	Collect c = {.events = g_ptr_array_new_with_free_func(g_free)};
	g_autoptr(QsimSseParser) parser = qsim_sse_parser_new(collect_cb, &c);

	g_assert_true(qsim_sse_parser_feed(parser, (const guint8 *)stream, strlen(stream)));
	check_events(&c);
	g_assert_cmpstr(qsim_sse_parser_get_last_id(parser), ==, "7");
	g_ptr_array_unref(c.events);
}

/* one byte at a time, as a slow network delivers it: "\r" and "\n" split across
 * reads must still count as one line ending */
static void
test_sse_bytewise(void)
{
	Collect c = {.events = g_ptr_array_new_with_free_func(g_free)};
	g_autoptr(QsimSseParser) parser = qsim_sse_parser_new(collect_cb, &c);

	for (gsize i = 0; i < strlen(stream); i++)
		g_assert_true(qsim_sse_parser_feed(parser, (const guint8 *)stream + i, 1));
	check_events(&c);
	g_ptr_array_unref(c.events);
}

/* the callback stops the parser: the rest is not delivered */
static void
test_sse_stop(void)
{
	Collect c = {.events = g_ptr_array_new_with_free_func(g_free), .stop_after = 2};
	g_autoptr(QsimSseParser) parser = qsim_sse_parser_new(collect_cb, &c);

	g_assert_false(qsim_sse_parser_feed(parser, (const guint8 *)stream, strlen(stream)));
	g_assert_cmpuint(c.events->len, ==, 2);
	g_assert_false(qsim_sse_parser_feed(parser, (const guint8 *)"data: x\n\n", 9));
	g_assert_cmpuint(c.events->len, ==, 2);
	g_ptr_array_unref(c.events);
}

/* an "id" with an empty value resets the last id, as the spec says */
static void
test_sse_empty_id(void)
{
	Collect c = {.events = g_ptr_array_new_with_free_func(g_free)};
	g_autoptr(QsimSseParser) parser = qsim_sse_parser_new(collect_cb, &c);
	const gchar *text = "id: 3\ndata: a\n\nid\ndata: b\n\n";

	g_assert_true(qsim_sse_parser_feed(parser, (const guint8 *)text, strlen(text)));
	g_assert_cmpuint(c.events->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(c.events, 1), ==, "message||b");
	g_assert_cmpstr(qsim_sse_parser_get_last_id(parser), ==, "");
	g_ptr_array_unref(c.events);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/cli/sse/whole", test_sse_whole);
	g_test_add_func("/qsim/cli/sse/bytewise", test_sse_bytewise);
	g_test_add_func("/qsim/cli/sse/stop", test_sse_stop);
	g_test_add_func("/qsim/cli/sse/empty-id", test_sse_empty_id);
	return g_test_run();
}
