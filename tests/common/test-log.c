#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-log.h"
#include "test-util.h"

static void
test_log_levels(void)
{
	g_assert_true(qsim_log_level_enabled(QSIM_LOG_LEVEL_DEBUG, G_LOG_LEVEL_DEBUG));
	g_assert_false(qsim_log_level_enabled(QSIM_LOG_LEVEL_INFO, G_LOG_LEVEL_DEBUG));
	g_assert_true(qsim_log_level_enabled(QSIM_LOG_LEVEL_INFO, G_LOG_LEVEL_INFO));
	g_assert_true(qsim_log_level_enabled(QSIM_LOG_LEVEL_INFO, G_LOG_LEVEL_MESSAGE));
	g_assert_false(qsim_log_level_enabled(QSIM_LOG_LEVEL_WARNING, G_LOG_LEVEL_INFO));
	g_assert_true(qsim_log_level_enabled(QSIM_LOG_LEVEL_WARNING, G_LOG_LEVEL_WARNING));
	g_assert_false(qsim_log_level_enabled(QSIM_LOG_LEVEL_ERROR, G_LOG_LEVEL_WARNING));
	g_assert_true(qsim_log_level_enabled(QSIM_LOG_LEVEL_ERROR, G_LOG_LEVEL_CRITICAL));
}

static void
test_log_file(void)
{
	g_autofree gchar *dir = qsim_test_tmpdir_new();
	g_autofree gchar *path = g_build_filename(dir, "qsimd.log", NULL);
	g_autofree gchar *bad = g_build_filename(dir, "no", "such", "dir.log", NULL);
	g_autofree gchar *content = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_true(qsim_log_setup(QSIM_LOG_LEVEL_WARNING, path, &error));
	g_assert_no_error(error);
	g_message("dropped at WARNING");
	g_debug("dropped too");
	g_assert_true(qsim_log_setup(QSIM_LOG_LEVEL_INFO, path, &error));
	g_message("kept at INFO");
	g_info("info %d", 42);
	g_debug("dropped at INFO");
	g_assert_true(qsim_log_setup(QSIM_LOG_LEVEL_DEBUG, path, &error));
	g_debug("kept at DEBUG");
	/* a file that cannot be opened is an error, the old file stays */
	g_assert_false(qsim_log_setup(QSIM_LOG_LEVEL_DEBUG, bad, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_IO);
	g_assert_true(qsim_log_setup(QSIM_LOG_LEVEL_INFO, NULL, NULL));

	g_assert_true(g_file_get_contents(path, &content, NULL, NULL));
	lines = g_strsplit(content, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 4);
	/* `2026-11-26T10:30:00.123Z LEVEL domain: message` */
	g_assert_cmpuint(strlen(lines[0]), >, 25);
	g_assert_cmpint(lines[0][23], ==, 'Z');
	g_assert_true(g_str_has_suffix(lines[0], " MESSAGE qsim-test: kept at INFO"));
	g_assert_true(g_str_has_suffix(lines[1], " INFO qsim-test: info 42"));
	g_assert_true(g_str_has_suffix(lines[2], " DEBUG qsim-test: kept at DEBUG"));
	g_assert_cmpstr(lines[3], ==, "");
	qsim_test_rm_rf(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* GTest routes g_log() to its own handler; restore the path the daemon uses */
	g_log_set_default_handler(g_log_default_handler, NULL);
	g_test_add_func("/qsim/common/log/levels", test_log_levels);
	g_test_add_func("/qsim/common/log/file", test_log_file);
	return g_test_run();
}
