#include "config.h"

#include <glib/gstdio.h>
#include <stdint.h>

#include "common/qsim-dotenv.h"
#include "common/qsim-vm-config.h"

/* VM config files and `.env` (the same syntax, parsed and never sourced) from any bytes:
 * a VM config is whatever an operator (or a hostile local user with write access to the
 * config dir) put there. Files may only name files inside the images dir. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gchar *dir;
static gchar *images;
static gchar *conf;

static void
setup_once(void)
{
	if (dir != NULL)
		return;
	dir = g_dir_make_tmp("qsim-fuzz-vmconf-XXXXXX", NULL);
	g_assert_nonnull(dir);
	images = g_build_filename(dir, "images", NULL);
	g_mkdir(images, 0700);
	/* a few files the config may name */
	for (guint i = 0; i < 3; i++) {
		static const gchar *const names[] = {"fuzz.qcow2", "vmlinuz", "key"};
		g_autofree gchar *p = g_build_filename(images, names[i], NULL);
		g_file_set_contents(p, "x", 1, NULL);
	}
	conf = g_build_filename(dir, "fuzz.conf", NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimDotenv) env = NULL;
	g_autoptr(QsimVmConfig) config = NULL;

	setup_once();
	env = qsim_dotenv_new_from_data((const gchar *)data, size, "fuzz.env", &error);
	if (env != NULL) {
		for (guint i = 0; i < qsim_dotenv_get_n_entries(env); i++) {
			g_assert_nonnull(qsim_dotenv_get_key(env, i));
			g_assert_nonnull(qsim_dotenv_get_value(env, i));
		}
	}
	g_clear_error(&error);
	g_assert_true(g_file_set_contents(conf, (const gchar *)data, (gssize)size, NULL));
	config = qsim_vm_config_parse(images, conf, "fuzz", &error);
	if (config != NULL) {
		/* every path it accepted stays inside the images dir */
		g_assert_true(g_str_has_prefix(config->image_path, images));
		if (config->kernel_path != NULL)
			g_assert_true(g_str_has_prefix(config->kernel_path, images));
		if (config->ssh_key_path != NULL)
			g_assert_true(g_str_has_prefix(config->ssh_key_path, images));
		g_assert_nonnull(qsim_vm_config_hash(config));
	} else {
		g_assert_nonnull(error);
	}
	return 0;
}
