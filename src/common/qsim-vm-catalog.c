#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "common/qsim-vm-catalog.h"
#include "common/qsim-vm-config.h"
#include "common/qsim-vm-name.h"

static const gchar *const image_exts[] = {".qcow2", ".raw", ".img"};

/* Returns: (transfer full) (nullable): the VM name an image file stands for */
static gchar *
catalog_name_for_image(const gchar *fn)
{
	for (guint i = 0; i < G_N_ELEMENTS(image_exts); i++) {
		if (g_str_has_suffix(fn, image_exts[i])) {
			g_autofree gchar *name = g_strndup(fn, strlen(fn) - strlen(image_exts[i]));
			return qsim_vm_name_validate(name, NULL) ? g_steal_pointer(&name) : NULL;
		}
	}
	return NULL;
}

/* a missing directory is an empty catalog, any other failure is an error */
static gboolean
catalog_scan(const gchar *dir, gboolean images, GHashTable *names, GError **error)
{
	g_autoptr(GDir) d = NULL;
	g_autoptr(GError) local = NULL;
	const gchar *fn;

	d = g_dir_open(dir, 0, &local);
	if (d == NULL) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		qsim_error_convert(&local);
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	while ((fn = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, fn, NULL);
		g_autofree gchar *name = NULL;

		if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
			continue;
		if (images) {
			name = catalog_name_for_image(fn);
		} else if (g_str_has_suffix(fn, ".conf")) {
			name = g_strndup(fn, strlen(fn) - 5);
			if (!qsim_vm_name_validate(name, NULL))
				g_clear_pointer(&name, g_free);
		}
		if (name != NULL)
			g_hash_table_replace(names, g_steal_pointer(&name), g_steal_pointer(&path));
	}
	return TRUE;
}

static QsimVmCatalogEntry *
catalog_entry_for(const gchar *images_dir, const gchar *config_dir, const gchar *name,
                  QsimVmConfig **config_out)
{
	g_autoptr(QsimVmCatalogEntry) entry = qsim_vm_catalog_entry_new(name);
	g_autoptr(QsimVmConfig) cfg = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf_fn = g_strconcat(name, ".conf", NULL);
	g_autofree gchar *conf = g_build_filename(config_dir, conf_fn, NULL);
	GStatBuf st;

	cfg = qsim_vm_config_load(images_dir, config_dir, name, &error);
	if (cfg != NULL) {
		entry->valid = TRUE;
		entry->image_path = g_strdup(cfg->image_path);
		entry->format = g_strdup(cfg->format);
		entry->config_path = g_strdup(cfg->config_path);
	} else {
		entry->error = g_strdup(error->message);
		if (g_file_test(conf, G_FILE_TEST_EXISTS))
			entry->config_path = g_canonicalize_filename(conf, NULL);
		/* still show the default image, so a broken config is easy to spot */
		for (guint i = 0; i < G_N_ELEMENTS(image_exts); i++) {
			g_autofree gchar *fn = g_strconcat(name, image_exts[i], NULL);
			g_autofree gchar *p = g_build_filename(images_dir, fn, NULL);
			if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
				entry->image_path = g_canonicalize_filename(p, NULL);
				entry->format = g_strdup(i == 0 ? "qcow2" : "raw");
				break;
			}
		}
	}
	if (entry->image_path != NULL && g_stat(entry->image_path, &st) == 0)
		entry->size_bytes = (guint64)st.st_size;
	if (config_out != NULL)
		*config_out = g_steal_pointer(&cfg);
	return g_steal_pointer(&entry);
}

static gint
catalog_cmp(gconstpointer a, gconstpointer b)
{
	const QsimVmCatalogEntry *ea = *(QsimVmCatalogEntry *const *)a;
	const QsimVmCatalogEntry *eb = *(QsimVmCatalogEntry *const *)b;
	return g_strcmp0(ea->name, eb->name);
}

/**
 * qsim_vm_catalog_list:
 * @images_dir: VM_IMAGES_DIR
 * @config_dir: VM_CONFIG_DIR
 * @error: return location for an error if a directory cannot be read
 *
 * Lists every VM: each `<name>.qcow2|.raw|.img` image and each `<name>.conf`.
 * Image files that some config uses as KERNEL, INITRD or SSH_KEY are helper
 * files, not VMs. Broken configs are listed with @valid %FALSE. Sorted by name.
 *
 * Returns: (transfer container) (element-type QsimVmCatalogEntry): the VMs
 */
GPtrArray *
qsim_vm_catalog_list(const gchar *images_dir, const gchar *config_dir, GError **error)
{
	g_autoptr(GHashTable) images =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GHashTable) confs =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GHashTable) helpers =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) out =
	    g_ptr_array_new_with_free_func((GDestroyNotify)qsim_vm_catalog_entry_free);
	GHashTableIter it;
	gpointer key;
	gpointer value;

	if (!catalog_scan(images_dir, TRUE, images, error) ||
	    !catalog_scan(config_dir, FALSE, confs, error))
		return NULL;
	g_hash_table_iter_init(&it, confs);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		g_autoptr(QsimVmConfig) cfg = NULL;
		QsimVmCatalogEntry *entry = catalog_entry_for(images_dir, config_dir, key, &cfg);
		const gchar *paths[4] = {NULL};

		g_ptr_array_add(out, entry);
		if (cfg == NULL)
			continue;
		paths[0] = cfg->kernel_path;
		paths[1] = cfg->initrd_path;
		paths[2] = cfg->ssh_key_path;
		paths[3] = cfg->data_disk_path;
		for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
			if (paths[i] != NULL)
				g_hash_table_add(helpers, g_strdup(paths[i]));
		}
	}
	g_hash_table_iter_init(&it, images);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		g_autofree gchar *abs = g_canonicalize_filename(value, NULL);
		if (g_hash_table_contains(confs, key) || g_hash_table_contains(helpers, abs))
			continue;
		g_ptr_array_add(out, catalog_entry_for(images_dir, config_dir, key, NULL));
	}
	g_ptr_array_sort(out, catalog_cmp);
	return g_steal_pointer(&out);
}

/**
 * qsim_vm_catalog_lookup:
 * @name: a VM name
 * @error: %QSIM_ERROR_INVALID for a bad name, %QSIM_ERROR_NOT_FOUND when
 *   there is neither an image nor a config for it
 *
 * Returns: (transfer full) (nullable): the entry, which may be invalid
 */
QsimVmCatalogEntry *
qsim_vm_catalog_lookup(const gchar *images_dir, const gchar *config_dir, const gchar *name,
                       GError **error)
{
	g_autoptr(QsimVmCatalogEntry) entry = NULL;
	g_autofree gchar *conf_fn = NULL;
	g_autofree gchar *conf = NULL;

	if (!qsim_vm_name_validate(name, error))
		return NULL;
	entry = catalog_entry_for(images_dir, config_dir, name, NULL);
	conf_fn = g_strconcat(name, ".conf", NULL);
	conf = g_build_filename(config_dir, conf_fn, NULL);
	if (!entry->valid && entry->image_path == NULL && !g_file_test(conf, G_FILE_TEST_EXISTS)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "no VM named '%s'", name);
		return NULL;
	}
	return g_steal_pointer(&entry);
}
