#include "config.h"

#include "cli/qsim-cli-table.h"

static void
test_table_align(void)
{
	g_autoptr(QsimCliTable) table = qsim_cli_table_new("NAME", "STATUS", "NOTE", NULL);
	g_autofree gchar *text = NULL;

	qsim_cli_table_add_row(table, "a", "running", "x");
	qsim_cli_table_add_row(table, "longer-name", "ok", "");
	/* wide characters take two cells; line breaks must not break the table */
	qsim_cli_table_add_row(table, "日本", "two\nlines", "z");
	text = qsim_cli_table_to_string(table);
	g_assert_cmpstr(text, ==,
	                "NAME         STATUS     NOTE\n"
	                "a            running    x\n"
	                "longer-name  ok\n"
	                "日本         two lines  z\n");
}

static void
test_text_sanitize(void)
{
	g_autofree gchar *escaped = qsim_cli_text_sanitize("a\033[31mred\t", 0);
	g_autofree gchar *cut = qsim_cli_text_sanitize("abcdefghij", 5);
	g_autofree gchar *fits = qsim_cli_text_sanitize("abcde", 5);
	g_autofree gchar *wide = qsim_cli_text_sanitize("日本語です", 5);
	g_autofree gchar *invalid = qsim_cli_text_sanitize("a\xff"
	                                                   "b",
	                                                   0);

	g_assert_cmpstr(escaped, ==, "a [31mred ");
	g_assert_cmpstr(cut, ==, "abcd…");
	g_assert_cmpstr(fits, ==, "abcde");
	g_assert_cmpstr(wide, ==, "日本…");
	g_assert_true(g_utf8_validate(invalid, -1, NULL));
	g_assert_cmpuint(qsim_cli_text_width("日本"), ==, 4);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/cli/table/align", test_table_align);
	g_test_add_func("/qsim/cli/table/sanitize", test_text_sanitize);
	return g_test_run();
}
