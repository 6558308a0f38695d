#include "config.h"

#include <stdint.h>

#include "cli/qsim-sse-parser.h"

/* qsim-ctl's Server-Sent Events parser against any server bytes, fed in uneven chunks as a
 * network would deliver them. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gboolean
on_event(const gchar *event, const gchar *data, const gchar *id, gpointer user_data)
{
	guint *n = user_data;

	g_assert_nonnull(data);
	(*n)++;
	/* the callback may stop the parser, as qsim-ctl does on "end" */
	return g_strcmp0(event, "end") != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	guint n = 0;
	g_autoptr(QsimSseParser) p = qsim_sse_parser_new(on_event, &n);
	size_t off = 0;
	size_t step = size > 0 ? (data[0] % 17) + 1 : 1;

	while (off < size) {
		size_t len = MIN(step, size - off);

		if (!qsim_sse_parser_feed(p, data + off, len))
			break;
		off += len;
		step = (step * 7 + 3) % 97 + 1;
	}
	return 0;
}
