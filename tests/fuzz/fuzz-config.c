#include "config.h"

#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

#include "common/qsim-config.h"

/* qsimd's own configuration from any bytes, as a keyfile (`--config`) and as a `.env` in
 * the working directory: parsed, never sourced; a bad value is an error naming its source,
 * and a secret never comes back out of the dump. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gchar *dir;
static gchar *envdir;
static gchar *keyfile;
static gchar *dotenv;

static void
setup_once(void)
{
	if (dir != NULL)
		return;
	dir = g_dir_make_tmp("qsim-fuzz-config-XXXXXX", NULL);
	g_assert_nonnull(dir);
	envdir = g_build_filename(dir, "env", NULL);
	g_mkdir(envdir, 0700);
	keyfile = g_build_filename(dir, "qsimd.conf", NULL);
	dotenv = g_build_filename(envdir, ".env", NULL);
}

static void
check(QsimConfig *config)
{
	g_autoptr(GPtrArray) entries = qsim_config_list_entries(config);

	for (guint i = 0; i < entries->len; i++) {
		const QsimConfigEntry *e = g_ptr_array_index(entries, i);

		g_assert_nonnull(e->name);
		g_assert_nonnull(e->value);
		if (e->secret)
			g_assert_true(e->value[0] == '\0' || strcmp(e->value, "***") == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* no variable of the fuzzing process may steer the run */
	gchar *envp[] = {NULL};

	setup_once();
	g_assert_true(g_file_set_contents(keyfile, (const gchar *)data, (gssize)size, NULL));
	{
		g_autoptr(QsimConfig) config = qsim_config_new();
		g_autoptr(GError) error = NULL;

		if (qsim_config_load(config, keyfile, envp, dir, &error))
			check(config);
		else
			g_assert_true(error != NULL && g_utf8_validate(error->message, -1, NULL));
	}
	g_assert_true(g_file_set_contents(dotenv, (const gchar *)data, (gssize)size, NULL));
	{
		g_autoptr(QsimConfig) config = qsim_config_new();
		g_autoptr(GError) error = NULL;

		if (qsim_config_load(config, NULL, envp, envdir, &error))
			check(config);
		else
			g_assert_nonnull(error);
	}
	return 0;
}
