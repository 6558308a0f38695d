/*
 * The man pages must keep up with the binaries: every command and long option
 * that --help lists must appear in docs/qsim-ctl.1 (and qsimd's in qsimd.8).
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

/* g_spawn_sync rather than GSubprocess: no GLib worker threads, so valgrind stays quiet */
static gchar *
help_of(const gchar *binary)
{
	const gchar *argv[] = {binary, "--help", NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	gint status = 0;

	g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
	             &status, &error);
	g_assert_no_error(error);
	g_spawn_check_wait_status(status, &error);
	g_assert_no_error(error);
	return g_steal_pointer(&out);
}

static gchar *
read_man(const gchar *name)
{
	g_autofree gchar *path = g_build_filename(SOURCE_ROOT, "docs", name, NULL);
	g_autoptr(GError) error = NULL;
	gchar *text = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

/* "  name ..." lines after "Commands:" up to the next blank line */
static GPtrArray *
commands_of(const gchar *help)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) lines = g_strsplit(help, "\n", -1);
	gboolean in_commands = FALSE;

	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *l = lines[i];
		gsize n = 0;
		if (g_str_has_suffix(l, "Commands:")) {
			in_commands = TRUE;
			continue;
		}
		if (!in_commands)
			continue;
		if (l[0] == '\0')
			break;
		if (l[0] != ' ' || l[1] != ' ' || !g_ascii_islower(l[2]))
			continue;
		while (g_ascii_islower(l[2 + n]) || l[2 + n] == '-')
			n++;
		g_ptr_array_add(names, g_strndup(l + 2, n));
	}
	return names;
}

static GPtrArray *
long_options_of(const gchar *help)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

	for (const gchar *p = strstr(help, "--"); p != NULL; p = strstr(p + 2, "--")) {
		gsize n = 0;
		while (g_ascii_islower(p[2 + n]) || p[2 + n] == '-')
			n++;
		if (n > 1 && !g_str_has_prefix(p + 2, "help"))
			g_ptr_array_add(names, g_strndup(p + 2, n));
	}
	return names;
}

/* roff writes a dash as "\-": accept both spellings */
static gboolean
man_mentions(const gchar *man, const gchar *word, gboolean option)
{
	g_autofree gchar *plain = g_strdup_printf("%s%s", option ? "--" : "", word);
	g_autofree gchar *roff_word = NULL;
	g_autofree gchar *roff = NULL;
	g_auto(GStrv) parts = g_strsplit(word, "-", -1);

	roff_word = g_strjoinv("\\-", parts);
	roff = g_strdup_printf("%s%s", option ? "\\-\\-" : "", roff_word);
	return strstr(man, plain) != NULL || strstr(man, roff) != NULL;
}

static void
check_binary(const gchar *binary, const gchar *page, guint min_commands)
{
	g_autofree gchar *help = help_of(binary);
	g_autofree gchar *man = read_man(page);
	g_autoptr(GPtrArray) commands = commands_of(help);
	g_autoptr(GPtrArray) options = long_options_of(help);

	g_assert_cmpuint(commands->len, >=, min_commands);
	for (guint i = 0; i < commands->len; i++) {
		const gchar *c = g_ptr_array_index(commands, i);
		if (!man_mentions(man, c, FALSE))
			g_error("%s does not document the command %s", page, c);
	}
	for (guint i = 0; i < options->len; i++) {
		const gchar *o = g_ptr_array_index(options, i);
		if (!man_mentions(man, o, TRUE))
			g_error("%s does not document the option --%s", page, o);
	}
	/* the page is roff with the expected header */
	g_assert_true(g_str_has_prefix(man, ".TH ") || strstr(man, "\n.TH ") != NULL);
}

static void
test_qsim_ctl_page(void)
{
	g_autofree gchar *man = read_man("qsim-ctl.1");

	check_binary(QSIM_CTL, "qsim-ctl.1", 14);
	/* every exit status of run is explained */
	for (guint i = 0; i < 4; i++) {
		const gchar *codes[] = {"124", "125", "130", "QSIM_URL"};
		g_assert_nonnull(strstr(man, codes[i]));
	}
}

#ifdef QSIMD
static void
test_qsimd_page(void)
{
	check_binary(QSIMD, "qsimd.8", 8);
}
#endif

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/cli/man/qsim-ctl", test_qsim_ctl_page);
#ifdef QSIMD
	g_test_add_func("/qsim/cli/man/qsimd", test_qsimd_page);
#endif
	return g_test_run();
}
