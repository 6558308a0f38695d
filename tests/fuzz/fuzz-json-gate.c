#include "config.h"

#include <json-glib/json-glib.h>
#include <stdint.h>

#include "common/qsim-json-gate.h"
#include "common/qsim-text.h"

/* The request body gate, differentially: whatever it lets through, json-glib must parse to
 * one value (a gate that passes what the parser rejects, or crashes it, is a bug); and the
 * safe-message helper must turn any bytes into valid UTF-8. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *safe = qsim_utf8_safe_dup((const gchar *)data, (gssize)size, 200);

	g_assert_true(g_utf8_validate(safe, -1, NULL));
	if (qsim_json_gate_check((const gchar *)data, size, &error)) {
		g_autoptr(JsonParser) parser = json_parser_new_immutable();
		g_autoptr(GError) perr = NULL;

		if (!json_parser_load_from_data(parser, (const gchar *)data, (gssize)size, &perr))
			g_error("the gate passed what json-glib rejects: %s", perr->message);
		g_assert_nonnull(json_parser_get_root(parser));
	} else {
		g_assert_nonnull(error);
		g_assert_true(g_utf8_validate(error->message, -1, NULL));
	}
	return 0;
}
