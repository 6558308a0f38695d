#include "config.h"

#include <string.h>

#include "common/qsim-dotenv.h"
#include "common/qsim-error.h"
#include "test-util.h"

static void
test_dotenv_good(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = qsim_test_fixture("config", "good.env");
	g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_file(path, &error);
	guint line = 0;

	g_assert_no_error(error);
	g_assert_nonnull(env);
	g_assert_cmpstr(qsim_dotenv_get_path(env), ==, path);
	g_assert_cmpuint(qsim_dotenv_get_n_entries(env), ==, 6);
	g_assert_cmpstr(qsim_dotenv_get_key(env, 0), ==, "OTHER_TOOL_SETTING");
	g_assert_cmpuint(qsim_dotenv_get_line(env, 0), ==, 2);
	g_assert_cmpstr(qsim_dotenv_get_key(env, 1), ==, "SQLITE_SIM_API_PORT");
	g_assert_cmpstr(qsim_dotenv_get_value(env, 1), ==, "2222");
	g_assert_cmpuint(qsim_dotenv_get_line(env, 1), ==, 4);
	g_assert_cmpstr(qsim_dotenv_lookup(env, "SQLITE_SIM_API_WORKERS", &line), ==, "4");
	g_assert_cmpuint(line, ==, 5);
	g_assert_cmpstr(qsim_dotenv_lookup(env, "QSIM_AGENT_COUNT", NULL), ==, "5");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "QSIM_LOG_FILE", NULL), ==,
	                "/tmp/with \"quotes\" and\\backslash");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "SQLITE_SIM_ALLOWED_ORIGINS", NULL), ==,
	                "http://a.example, http://b.example");
	g_assert_null(qsim_dotenv_lookup(env, "NOPE", NULL));
}

static void
test_dotenv_syntax(void)
{
	const gchar *data = "A=1\r\n"
	                    "  export   B = two words  \n"
	                    "C='single # not a comment' # comment\n"
	                    "D=\"line\\nbreak \\$HOME \\\\ \\\"q\\\"\"\n"
	                    "E=\n"
	                    "F=a#b\n"
	                    "G=x # y\n"
	                    "export=5\n"
	                    "\t# indented comment\n"
	                    "A=last\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_data(data, strlen(data), "mem", &error);
	guint line = 0;

	g_assert_no_error(error);
	g_assert_cmpuint(qsim_dotenv_get_n_entries(env), ==, 9);
	g_assert_cmpstr(qsim_dotenv_get_value(env, 0), ==, "1");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "A", &line), ==, "last");
	g_assert_cmpuint(line, ==, 10);
	g_assert_cmpstr(qsim_dotenv_lookup(env, "B", NULL), ==, "two words");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "C", NULL), ==, "single # not a comment");
	/* parsed, never executed: $HOME stays literal */
	g_assert_cmpstr(qsim_dotenv_lookup(env, "D", NULL), ==, "line\nbreak \\$HOME \\ \"q\"");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "E", NULL), ==, "");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "F", NULL), ==, "a#b");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "G", NULL), ==, "x");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "export", NULL), ==, "5");
}

static void
test_dotenv_no_execution(void)
{
	const gchar *data = "A=$(touch /tmp/qsim-pwned)\nB=`id`\n";
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_data(data, strlen(data), "mem", &error);

	g_assert_no_error(error);
	g_assert_cmpstr(qsim_dotenv_lookup(env, "A", NULL), ==, "$(touch /tmp/qsim-pwned)");
	g_assert_cmpstr(qsim_dotenv_lookup(env, "B", NULL), ==, "`id`");
}

static void
test_dotenv_errors(void)
{
	const struct {
		const gchar *data;
		const gchar *message;
	} cases[] = {
	    {"A=1\nnot a pair\n", "f.env:2: expected KEY=VALUE"},
	    {"A=1\n\nB=\"open\n", "f.env:3: unterminated double quote"},
	    {"B=\"ends in backslash\\", "f.env:1: unterminated double quote"},
	    {"C='open\n", "f.env:1: unterminated single quote"},
	    {"D=\"x\"y\n", "f.env:1: unexpected text after the closing quote"},
	    {"E='x' y\n", "f.env:1: unexpected text after the closing quote"},
	    {"1A=x\n", "f.env:1: invalid key '1A' (use letters, digits and _)"},
	    {"A-B=x\n", "f.env:1: invalid key 'A-B' (use letters, digits and _)"},
	    {"=x\n", "f.env:1: invalid key '' (use letters, digits and _)"},
	    {"export\n", "f.env:1: expected KEY=VALUE"},
	    {"A=\xff\n", "f.env: not valid UTF-8"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_data(
		    cases[i].data, strlen(cases[i].data), "f.env", &error);
		g_assert_null(env);
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_assert_cmpstr(error->message, ==, cases[i].message);
	}
}

static void
test_dotenv_nul(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_data("A=1\0B=2", 7, "f.env", &error);

	g_assert_null(env);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, "f.env: contains a NUL byte");
}

static void
test_dotenv_fixture_errors(void)
{
	g_autofree gchar *malformed = qsim_test_fixture("config", "malformed.env");
	g_autofree gchar *unterminated = qsim_test_fixture("config", "unterminated.env");
	g_autofree gchar *want1 = g_strdup_printf("%s:4: expected KEY=VALUE", malformed);
	g_autofree gchar *want2 = g_strdup_printf("%s:1: unterminated double quote", unterminated);
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	g_autoptr(GError) e3 = NULL;
	g_autoptr(QsimDotenv) a = qsim_dotenv_new_from_file(malformed, &e1);
	g_autoptr(QsimDotenv) b = qsim_dotenv_new_from_file(unterminated, &e2);
	g_autoptr(QsimDotenv) c = qsim_dotenv_new_from_file("/nonexistent/qsim/.env", &e3);

	g_assert_null(a);
	g_assert_cmpstr(e1->message, ==, want1);
	g_assert_null(b);
	g_assert_cmpstr(e2->message, ==, want2);
	g_assert_null(c);
	g_assert_error(e3, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
}

/* random input never crashes, and every outcome is a result or an error with a line */
static void
test_dotenv_random(void)
{
	const gchar alphabet[] = "AB_1=\"'\\# \t\nexport\r$`x";

	for (guint round = 0; round < 2000; round++) {
		g_autoptr(GString) data = g_string_new(NULL);
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimDotenv) env = NULL;
		guint len = (guint)g_test_rand_int_range(0, 64);

		for (guint i = 0; i < len; i++)
			g_string_append_c(data,
			                  alphabet[g_test_rand_int_range(0, sizeof(alphabet) - 1)]);
		env = qsim_dotenv_new_from_data(data->str, data->len, "rnd", &error);
		if (env == NULL) {
			g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
			g_assert_true(g_str_has_prefix(error->message, "rnd:"));
			continue;
		}
		g_assert_no_error(error);
		for (guint i = 0; i < qsim_dotenv_get_n_entries(env); i++) {
			const gchar *key = qsim_dotenv_get_key(env, i);
			g_assert_true(g_ascii_isalpha(key[0]) || key[0] == '_');
			g_assert_cmpuint(qsim_dotenv_get_line(env, i), >=, 1);
			g_assert_nonnull(qsim_dotenv_get_value(env, i));
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/common/dotenv/good", test_dotenv_good);
	g_test_add_func("/qsim/common/dotenv/syntax", test_dotenv_syntax);
	g_test_add_func("/qsim/common/dotenv/no-execution", test_dotenv_no_execution);
	g_test_add_func("/qsim/common/dotenv/errors", test_dotenv_errors);
	g_test_add_func("/qsim/common/dotenv/nul", test_dotenv_nul);
	g_test_add_func("/qsim/common/dotenv/fixture-errors", test_dotenv_fixture_errors);
	g_test_add_func("/qsim/common/dotenv/random", test_dotenv_random);
	return g_test_run();
}
