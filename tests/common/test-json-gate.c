#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-json-gate.h"

static void
assert_ok(const gchar *doc)
{
	g_autoptr(GError) error = NULL;

	if (!qsim_json_gate_check(doc, strlen(doc), &error))
		g_error("refused %s: %s", doc, error->message);
}

/* @message: the whole expected message, offset included, so a test pins both */
static void
assert_refused_len(const gchar *doc, gsize len, const gchar *message)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_json_gate_check(doc, len, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, message);
	g_assert_true(g_utf8_validate(error->message, -1, NULL));
}

static void
assert_refused(const gchar *doc, const gchar *message)
{
	assert_refused_len(doc, strlen(doc), message);
}

static void
test_valid(void)
{
	assert_ok("{}");
	assert_ok("[]");
	assert_ok(" \t\r\n{ \"a\" : [ 1 , -2.5e+10 , 0 , 0.0 , -0 , 1E-3 ] }\n");
	assert_ok("{\"vm_name\":\"tiny\",\"commands\":\"echo hi\",\"timeout\":42}");
	assert_ok("\"just a string\"");
	assert_ok("true");
	assert_ok("false");
	assert_ok("null");
	assert_ok("[true,false,null,{},[],\"\"]");
	/* every escape, BMP and astral characters as escapes and as UTF-8 */
	assert_ok("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u20AC \\uD83D\\uDE00\"");
	assert_ok("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* numbers past gint64 and double are still JSON: range is the caller's business */
	assert_ok("[123456789012345678901234567890, -1e400, 1.7976931348623157e309]");
	assert_ok("{\"a\":{\"b\":{\"c\":[[[[]]]]}}}");
}

static void
test_depth(void)
{
	enum { DEEP = 100000 };
	g_autoptr(GString) ok = g_string_new(NULL);
	g_autoptr(GString) over = g_string_new(NULL);
	g_autofree gchar *deep = g_malloc(DEEP);
	g_autofree gchar *objs = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < QSIM_JSON_GATE_MAX_DEPTH; i++)
		g_string_append_c(ok, '[');
	for (guint i = 0; i < QSIM_JSON_GATE_MAX_DEPTH; i++)
		g_string_append_c(ok, ']');
	assert_ok(ok->str);
	for (guint i = 0; i <= QSIM_JSON_GATE_MAX_DEPTH; i++)
		g_string_append_c(over, '[');
	for (guint i = 0; i <= QSIM_JSON_GATE_MAX_DEPTH; i++)
		g_string_append_c(over, ']');
	assert_refused(over->str, "nested deeper than 64 levels at byte 64");

	/* the body that crashed qsimd: refused at once, without recursion */
	memset(deep, '[', DEEP);
	assert_refused_len(deep, DEEP, "nested deeper than 64 levels at byte 64");
	objs = g_strnfill(DEEP, '{');
	for (gsize i = 0; i + 5 < DEEP; i += 5)
		memcpy(objs + i, "{\"a\":", 5);
	g_assert_false(qsim_json_gate_check(objs, DEEP, &error));
	g_assert_nonnull(strstr(error->message, "nested deeper than 64 levels"));
}

static void
test_not_json(void)
{
	assert_refused("", "empty document at byte 0");
	assert_refused("   ", "unexpected end at byte 3");
	assert_refused("{'a':1}", "single-quoted strings are not JSON at byte 1");
	assert_refused("['a']", "single-quoted strings are not JSON at byte 1");
	assert_refused("{\"a\":1 /* c */}", "comments are not JSON at byte 7");
	assert_refused("// c\n{}", "comments are not JSON at byte 0");
	assert_refused("{\"a\":1}{\"b\":2}", "unexpected data after the JSON value at byte 7");
	assert_refused("{} x", "unexpected data after the JSON value at byte 3");
	assert_refused("{\"a\":0x10}", "hexadecimal numbers are not JSON at byte 5");
	assert_refused("{\"a\":010}", "numbers must not have leading zeros at byte 5");
	assert_refused("-01", "numbers must not have leading zeros at byte 1");
	assert_refused("[NaN]", "unexpected character 'N' at byte 1");
	assert_refused("[Infinity]", "unexpected character 'I' at byte 1");
	assert_refused("[-Infinity]", "expected a digit at byte 2");
	assert_refused("[1,]", "trailing comma at byte 3");
	assert_refused("{\"a\":1,}", "trailing comma at byte 7");
	assert_refused("[,1]", "unexpected character ',' at byte 1");
	assert_refused("[1 2]", "unexpected character '2' at byte 3");
	assert_refused("{\"a\" 1}", "expected ':' after an object key at byte 5");
	assert_refused("{a:1}", "expected a string as object key at byte 1");
	assert_refused("{\"a\":}", "unexpected character '}' at byte 5");
	assert_refused("[1}", "mismatched '}' at byte 2");
	assert_refused("{\"a\":1]", "mismatched ']' at byte 6");
	assert_refused("[1", "unexpected end at byte 2");
	assert_refused("\"abc", "unterminated string at byte 0");
	assert_refused("[1.]", "expected a digit after the decimal point at byte 3");
	assert_refused("[.5]", "unexpected character '.' at byte 1");
	assert_refused("[1e]", "expected a digit in the exponent at byte 3");
	assert_refused("[+1]", "unexpected character '+' at byte 1");
	assert_refused("[tru]", "unexpected character 't' at byte 1");
	assert_refused("[True]", "unexpected character 'T' at byte 1");
	assert_refused("[nulls]", "unexpected character 's' at byte 5");
	assert_refused("\"a\\x41\"", "invalid escape in a string at byte 2");
	assert_refused("\"a\\u12\"", "\\u must be followed by four hexadecimal digits at byte 2");
	assert_refused("\"tab\there\"", "unescaped control character 0x09 in a string at byte 4");
	assert_refused("\"nl\nhere\"", "unescaped control character 0x0a in a string at byte 3");
	/* a byte-order mark is not whitespace */
	assert_refused("\xef\xbb\xbf{}", "unexpected byte 0xef at byte 0");
}

static void
test_nul(void)
{
	/* json-glib stored this as "a": the command that ran was not the one sent */
	assert_refused("{\"commands\":\"a\\u0000; rm -rf /\"}",
	               "\\u0000 (NUL) is not allowed in strings at byte 14");
	assert_refused("{\"\\u0000\":1}", "\\u0000 (NUL) is not allowed in strings at byte 2");
	/* a raw NUL byte is an unescaped control character */
	assert_refused_len("\"a\0b\"", 5, "unescaped control character 0x00 in a string at byte 2");
	assert_refused_len("{}\0", 3, "unexpected data after the JSON value at byte 2");
}

static void
test_surrogates(void)
{
	assert_refused("\"\\uD83D\"", "unpaired high surrogate \\uD83D at byte 1");
	assert_refused("\"\\uD83Dx\"", "unpaired high surrogate \\uD83D at byte 1");
	assert_refused("\"\\uD83D\\u0041\"", "unpaired high surrogate \\uD83D at byte 1");
	assert_refused("\"\\uD83D\\uD83D\"", "unpaired high surrogate \\uD83D at byte 1");
	assert_refused("\"\\uDE00\"", "unpaired low surrogate \\uDE00 at byte 1");
	assert_refused("\"\\uDE00\\uD83D\"", "unpaired low surrogate \\uDE00 at byte 1");
}

static void
test_utf8(void)
{
	assert_refused("\"\xff\"", "invalid UTF-8 in a string at byte 1");
	assert_refused("\"a\xc3\"", "invalid UTF-8 in a string at byte 2");
	/* overlong '/' and an encoded surrogate are not UTF-8 either */
	assert_refused("\"\xc0\xaf\"", "invalid UTF-8 in a string at byte 1");
	assert_refused("\"\xed\xa0\x80\"", "invalid UTF-8 in a string at byte 1");
	assert_refused("\"\xf4\x90\x80\x80\"", "invalid UTF-8 in a string at byte 1");
	assert_refused("[\xfe]", "invalid UTF-8 at byte 1");
	assert_refused("[\xc3\xa9]", "unexpected byte 0xc3 at byte 1");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/json-gate/valid", test_valid);
	g_test_add_func("/qsim/json-gate/depth", test_depth);
	g_test_add_func("/qsim/json-gate/not-json", test_not_json);
	g_test_add_func("/qsim/json-gate/nul", test_nul);
	g_test_add_func("/qsim/json-gate/surrogates", test_surrogates);
	g_test_add_func("/qsim/json-gate/utf8", test_utf8);
	return g_test_run();
}
