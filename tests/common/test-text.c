#include "config.h"

#include <string.h>

#include "common/qsim-text.h"

static void
assert_safe(const gchar *bytes, gssize len, gsize max_chars, const gchar *expected)
{
	g_autofree gchar *s = qsim_utf8_safe_dup(bytes, len, max_chars);

	g_assert_true(g_utf8_validate(s, -1, NULL));
	g_assert_cmpstr(s, ==, expected);
	if (max_chars > 0)
		g_assert_cmpuint(g_utf8_strlen(s, -1), <=, max_chars);
}

static void
test_plain(void)
{
	assert_safe(NULL, -1, 0, "");
	assert_safe("", -1, 0, "");
	assert_safe("abc", -1, 0, "abc");
	assert_safe("caf\xc3\xa9 \xf0\x9f\x98\x80", -1, 0, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	/* @len bounds the input: bytes past it are never read */
	assert_safe("abcdef", 3, 0, "abc");
}

static void
test_invalid(void)
{
	/* what `/requests/%ff%fe` decodes to */
	assert_safe("\xff\xfe", -1, 0, "\xef\xbf\xbd\xef\xbf\xbd");
	assert_safe("a\xc3", -1, 0, "a\xef\xbf\xbd");
	assert_safe("\xc0\xaf", -1, 0, "\xef\xbf\xbd\xef\xbf\xbd");
	assert_safe("\xed\xa0\x80x", -1, 0, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
	/* a NUL inside @len is a control character, not the end */
	assert_safe("a\0b", 3, 0, "a\\x00b");
}

static void
test_controls(void)
{
	assert_safe("a\nb\rc\td", -1, 0, "a\\nb\\rc\\td");
	assert_safe("\x1b[31mred", -1, 0, "\\x1b[31mred");
	assert_safe("\x7f", -1, 0, "\\x7f");
	/* C1 NEL, LINE SEPARATOR and the bidi override of "Trojan Source" */
	assert_safe("\xc2\x85", -1, 0, "\\u0085");
	assert_safe("\xe2\x80\xa8", -1, 0, "\\u2028");
	assert_safe("x\xe2\x80\xaey", -1, 0, "x\\u202ey");
}

static void
test_truncate(void)
{
	assert_safe("abcdef", -1, 6, "abcdef");
	assert_safe("abcdefg", -1, 6, "abcde\xe2\x80\xa6");
	assert_safe("abcdefg", -1, 1, "\xe2\x80\xa6");
	/* counted in characters, and never cut inside one */
	assert_safe("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", -1, 3, "\xc3\xa9\xc3\xa9\xe2\x80\xa6");
	assert_safe("\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", -1, 2,
	            "\xf0\x9f\x98\x80\xe2\x80\xa6");
	/* nor inside an escape: "\x1b" does not fit in what is left */
	assert_safe("abc\x1b", -1, 5, "abc\xe2\x80\xa6");
	assert_safe("ab\x1b", -1, 6, "ab\\x1b");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/text/plain", test_plain);
	g_test_add_func("/qsim/text/invalid", test_invalid);
	g_test_add_func("/qsim/text/controls", test_controls);
	g_test_add_func("/qsim/text/truncate", test_truncate);
	return g_test_run();
}
