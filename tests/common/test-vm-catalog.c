#include "config.h"

#include "common/qsim-error.h"
#include "common/qsim-vm-catalog.h"
#include "test-util.h"

typedef struct {
	gchar *dir;
	gchar *images;
	gchar *confs;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *path;
		const gchar *content;
	} files[] = {
	    {"images/alpha.qcow2", "QFI\xfb 10 bytes"},
	    {"images/beta.raw", "raw"},
	    {"images/gamma.img", "img!"},
	    /* helper files: referenced by delta.conf, or not images at all */
	    {"images/initrd.img", "initrd"},
	    {"images/vmlinuz", "kernel"},
	    {"images/id_ed25519", "key"},
	    /* not valid VM names: never listed */
	    {"images/bad name.qcow2", "x"},
	    {"images/.hidden.qcow2", "x"},
	    {"configs/delta.conf",
	     "IMAGE=alpha.qcow2\nKERNEL=vmlinuz\nINITRD=initrd.img\nSSH_KEY=id_ed25519\n"},
	    {"configs/broken.conf", "CPU=0\n"},
	    {"configs/orphan.conf", "CPU=2\n"},
	    {"configs/beta.conf", "MEMORY=1G\n"},
	    {"configs/README", "not a config"},
	};

	f->dir = qsim_test_tmpdir_new();
	f->images = g_build_filename(f->dir, "images", NULL);
	f->confs = g_build_filename(f->dir, "configs", NULL);
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree gchar *p = qsim_test_write(f->dir, files[i].path, files[i].content);
	}
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->images);
	g_free(f->confs);
}

static void
check_entry(const QsimVmCatalogEntry *e, const gchar *name, const gchar *image, const gchar *format,
            guint64 size, const gchar *config, gboolean valid)
{
	g_assert_cmpstr(e->name, ==, name);
	g_assert_cmpstr(e->image_path, ==, image);
	g_assert_cmpstr(e->format, ==, format);
	g_assert_cmpuint(e->size_bytes, ==, size);
	g_assert_cmpstr(e->config_path, ==, config);
	g_assert_cmpint(e->valid, ==, valid);
	if (valid)
		g_assert_null(e->error);
	else
		g_assert_nonnull(e->error);
}

static void
test_catalog_list(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) vms = qsim_vm_catalog_list(f->images, f->confs, &error);
	g_autofree gchar *alpha = g_build_filename(f->images, "alpha.qcow2", NULL);
	g_autofree gchar *beta = g_build_filename(f->images, "beta.raw", NULL);
	g_autofree gchar *gamma = g_build_filename(f->images, "gamma.img", NULL);
	g_autofree gchar *beta_conf = g_build_filename(f->confs, "beta.conf", NULL);
	g_autofree gchar *broken_conf = g_build_filename(f->confs, "broken.conf", NULL);
	g_autofree gchar *delta_conf = g_build_filename(f->confs, "delta.conf", NULL);
	g_autofree gchar *orphan_conf = g_build_filename(f->confs, "orphan.conf", NULL);
	g_autofree gchar *broken_err =
	    g_strdup_printf("%s:1: CPU='0': must be between 1 and 64", broken_conf);
	g_autofree gchar *orphan_err = g_strdup_printf(
	    "VM 'orphan': no image orphan.qcow2, orphan.raw or orphan.img in %s", f->images);
	const QsimVmCatalogEntry *e;

	g_assert_no_error(error);
	g_assert_cmpuint(vms->len, ==, 6);
	check_entry(vms->pdata[0], "alpha", alpha, "qcow2", 13, NULL, TRUE);
	check_entry(vms->pdata[1], "beta", beta, "raw", 3, beta_conf, TRUE);
	check_entry(vms->pdata[2], "broken", NULL, NULL, 0, broken_conf, FALSE);
	e = vms->pdata[2];
	g_assert_cmpstr(e->error, ==, broken_err);
	check_entry(vms->pdata[3], "delta", alpha, "qcow2", 13, delta_conf, TRUE);
	check_entry(vms->pdata[4], "gamma", gamma, "raw", 4, NULL, TRUE);
	check_entry(vms->pdata[5], "orphan", NULL, NULL, 0, orphan_conf, FALSE);
	e = vms->pdata[5];
	g_assert_cmpstr(e->error, ==, orphan_err);
}

static void
test_catalog_missing_dirs(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *nodir = g_build_filename(f->dir, "nope", NULL);
	g_autoptr(GPtrArray) vms = qsim_vm_catalog_list(nodir, nodir, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(vms->len, ==, 0);
}

static void
test_catalog_unreadable(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *file = g_build_filename(f->images, "alpha.qcow2", NULL);
	/* a file where a directory should be is an error, not an empty list */
	g_autoptr(GPtrArray) vms = qsim_vm_catalog_list(file, f->confs, &error);

	g_assert_null(vms);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_IO);
}

static void
test_catalog_lookup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmCatalogEntry) delta =
	    qsim_vm_catalog_lookup(f->images, f->confs, "delta", &error);
	g_autoptr(QsimVmCatalogEntry) broken = NULL;
	g_autoptr(QsimVmCatalogEntry) none = NULL;
	g_autoptr(QsimVmCatalogEntry) bad = NULL;

	g_assert_no_error(error);
	g_assert_true(delta->valid);
	broken = qsim_vm_catalog_lookup(f->images, f->confs, "broken", &error);
	g_assert_no_error(error);
	g_assert_false(broken->valid);
	none = qsim_vm_catalog_lookup(f->images, f->confs, "zeta", &error);
	g_assert_null(none);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "no VM named 'zeta'");
	g_clear_error(&error);
	bad = qsim_vm_catalog_lookup(f->images, f->confs, "../alpha", &error);
	g_assert_null(bad);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/common/vm-catalog/list", test_catalog_list);
	ADD("/qsim/common/vm-catalog/missing-dirs", test_catalog_missing_dirs);
	ADD("/qsim/common/vm-catalog/unreadable", test_catalog_unreadable);
	ADD("/qsim/common/vm-catalog/lookup", test_catalog_lookup);
	return g_test_run();
}
