#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "vm/qsim-vm-argv.h"

typedef struct {
	gchar *dir;
} Fixture;

static void
write_file(const gchar *dir, const gchar *name, const gchar *content)
{
	g_autofree gchar *p = g_build_filename(dir, name, NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(p, content, -1, &error));
	g_assert_no_error(error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("qsim-argv-XXXXXX", &error);
	g_assert_no_error(error);
	write_file(f->dir, "disk.qcow2", "not really an image");
	write_file(f->dir, "vmlinuz", "k");
	write_file(f->dir, "initrd.img", "i");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
	const gchar *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *p = g_build_filename(f->dir, name, NULL);
		g_unlink(p);
	}
	g_rmdir(f->dir);
	g_free(f->dir);
}

static QsimVmConfig *
parse(Fixture *f, const gchar *content)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = g_build_filename(f->dir, "t.conf", NULL);
	QsimVmConfig *config;

	write_file(f->dir, "t.conf", content);
	config = qsim_vm_config_parse(f->dir, conf, "t", &error);
	g_assert_no_error(error);
	g_assert_nonnull(config);
	return config;
}

static void
assert_argv(gchar **got, const gchar *const *want)
{
	g_autofree gchar *got_s = g_strjoinv("\n", got);
	g_autofree gchar *want_s = g_strjoinv("\n", (gchar **)want);

	g_assert_cmpstr(got_s, ==, want_s);
}

static void
test_argv_full(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) config =
	    parse(f, "IMAGE=disk.qcow2\nMEMORY=512M\nCPU=2\nKERNEL=vmlinuz\nINITRD=initrd.img\n"
	             "APPEND=\"console=ttyS0 quiet\"\nSSH_PORT=2222\nTB_SIZE=32\n"
	             "ADDITIONAL_ARGS=\"-device virtio-balloon-pci -rtc base=utc\"\n");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *kernel = g_build_filename(f->dir, "vmlinuz", NULL);
	g_autofree gchar *initrd = g_build_filename(f->dir, "initrd.img", NULL);
	g_auto(GStrv) argv =
	    qsim_vm_argv_build("qemu-system-x86_64", config, "/run/q/t-abc", 40022, FALSE, &error);
	const gchar *want[] = {
	    "qemu-system-x86_64",
	    "-name",
	    "qsim-t",
	    "-accel",
	    "tcg,tb-size=32",
	    "-machine",
	    "q35",
	    "-m",
	    "512M",
	    "-smp",
	    "2",
	    "-cpu",
	    "qemu64,+rdrand",
	    "-nodefaults",
	    "-no-user-config",
	    "-display",
	    "none",
	    "-drive",
	    "file=/run/q/t-abc/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe",
	    "-kernel",
	    kernel,
	    "-initrd",
	    initrd,
	    "-append",
	    "console=ttyS0 quiet",
	    "-chardev",
	    "socket,id=qmp0,path=/run/q/t-abc/qmp.sock,server=on,wait=off",
	    "-mon",
	    "chardev=qmp0,mode=control",
	    "-chardev",
	    "stdio,id=ser0,signal=off",
	    "-serial",
	    "chardev:ser0",
	    "-netdev",
	    "user,id=n0,hostfwd=tcp:127.0.0.1:40022-:2222",
	    "-device",
	    "virtio-net-pci,netdev=n0",
	    "-device",
	    "virtio-rng-pci",
	    "-pidfile",
	    "/run/q/t-abc/qemu.pid",
	    "-device",
	    "virtio-balloon-pci",
	    "-rtc",
	    "base=utc",
	    NULL};

	g_assert_no_error(error);
	assert_argv(argv, want);
}

static void
test_argv_minimal_kvm(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) config =
	    parse(f, "IMAGE=disk.qcow2\nMACHINE=pc\nCPU_MODEL=max\nTB_SIZE=0\n");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_auto(GStrv) argv_tcg = NULL;
	const gchar *want[] = {"qemu",
	                       "-name",
	                       "qsim-t",
	                       "-accel",
	                       "kvm",
	                       "-machine",
	                       "pc",
	                       "-m",
	                       "256M",
	                       "-smp",
	                       "1",
	                       "-cpu",
	                       "max",
	                       "-nodefaults",
	                       "-no-user-config",
	                       "-display",
	                       "none",
	                       "-drive",
	                       "file=/r/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe",
	                       "-chardev",
	                       "socket,id=qmp0,path=/r/qmp.sock,server=on,wait=off",
	                       "-mon",
	                       "chardev=qmp0,mode=control",
	                       "-chardev",
	                       "stdio,id=ser0,signal=off",
	                       "-serial",
	                       "chardev:ser0",
	                       "-netdev",
	                       "user,id=n0,hostfwd=tcp:127.0.0.1:1-:22",
	                       "-device",
	                       "virtio-net-pci,netdev=n0",
	                       "-device",
	                       "virtio-rng-pci",
	                       "-pidfile",
	                       "/r/qemu.pid",
	                       NULL};

	argv = qsim_vm_argv_build("qemu", config, "/r", 1, TRUE, &error);
	g_assert_no_error(error);
	assert_argv(argv, want);

	/* TB_SIZE=0 means QEMU's own default: no tb-size option at all */
	argv_tcg = qsim_vm_argv_build("qemu", config, "/r", 1, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(argv_tcg[4], ==, "tcg");
}

static void
test_argv_escapes_commas(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) config = parse(f, "IMAGE=disk.qcow2\n");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = qsim_vm_argv_build("qemu", config, "/tmp/a,if=none", 5, FALSE, &error);

	g_assert_no_error(error);
	/* a comma in a path must not inject drive or chardev options */
	g_assert_true(g_strv_contains(
	    (const gchar *const *)argv,
	    "file=/tmp/a,,if=none/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe"));
	g_assert_true(g_strv_contains((const gchar *const *)argv,
	                              "socket,id=qmp0,path=/tmp/a,,if=none/qmp.sock,server=on,"
	                              "wait=off"));
	/* -pidfile is a plain path */
	g_assert_true(g_strv_contains((const gchar *const *)argv, "/tmp/a,if=none/qemu.pid"));
}

static gint
index_of(gchar **argv, const gchar *arg)
{
	for (gint i = 0; argv[i] != NULL; i++) {
		if (g_strcmp0(argv[i], arg) == 0)
			return i;
	}
	return -1;
}

/* Fast start: guest RAM in a file (MACHINE unset, bare, or with options), QMP on an
 * inherited socket, the build's stream without run state, and -incoming for a restore. */
static void
test_argv_fast_start(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) bare = parse(f, "IMAGE=disk.qcow2\nMEMORY=1G\n");
	g_autoptr(QsimVmConfig) q35 = parse(f, "IMAGE=disk.qcow2\nMACHINE=q35\n");
	g_autoptr(QsimVmConfig) opts = parse(f, "IMAGE=disk.qcow2\nMACHINE=q35\n");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) build = NULL;
	g_auto(GStrv) restore = NULL;
	g_auto(GStrv) with_opts = NULL;
	QsimVmArgvOptions o = {
	    .qmp_fd = 3, .ram_path = "/s/t,x/ram", .ram_shared = TRUE, .save_running = TRUE};
	gint i;

	/* no MACHINE at all: QEMU's default machine, which still needs the backend */
	g_clear_pointer(&bare->machine, g_free);
	build = qsim_vm_argv_build_with("qemu", bare, "/r", 7, FALSE, &o, &error);
	g_assert_no_error(error);
	i = index_of(build, "-machine");
	g_assert_cmpint(i, >, 0);
	g_assert_cmpstr(build[i + 1], ==, "memory-backend=qsim-ram");
	/* MEMORY's unit is resolved to MiB by the config; a comma in the path is escaped */
	g_assert_true(g_strv_contains(
	    (const gchar *const *)build,
	    "memory-backend-file,id=qsim-ram,size=1024M,mem-path=/s/t,,x/ram,share=on"));
	g_assert_true(g_strv_contains((const gchar *const *)build, "1024M"));
	g_assert_true(
	    g_strv_contains((const gchar *const *)build, "socket,id=qmp0,fd=3,server=off"));
	g_assert_true(
	    g_strv_contains((const gchar *const *)build, "migration.store-global-state=off"));
	g_assert_cmpint(index_of(build, "-incoming"), ==, -1);

	o.ram_shared = FALSE;
	o.save_running = FALSE;
	o.incoming = TRUE;
	restore = qsim_vm_argv_build_with("qemu", q35, "/r", 7, FALSE, &o, &error);
	g_assert_no_error(error);
	i = index_of(restore, "-machine");
	g_assert_cmpstr(restore[i + 1], ==, "q35,memory-backend=qsim-ram");
	g_assert_cmpint(index_of(restore, "q35"), ==, -1);
	g_assert_true(g_strv_contains((const gchar *const *)restore,
	                              "memory-backend-file,id=qsim-ram,size=256M,"
	                              "mem-path=/s/t,,x/ram,share=off"));
	g_assert_cmpint(index_of(restore, "migration.store-global-state=off"), ==, -1);
	g_assert_cmpint(index_of(restore, "migration.announce-rounds=0"), >, 0);
	g_assert_cmpint(index_of(build, "migration.announce-rounds=0"), ==, -1);
	i = index_of(restore, "-incoming");
	g_assert_cmpint(i, >, 0);
	g_assert_cmpstr(restore[i + 1], ==, "defer");

	/* the config refuses options in MACHINE today; the argv would still be right */
	g_free(opts->machine);
	opts->machine = g_strdup("q35,smm=off");
	with_opts = qsim_vm_argv_build_with("qemu", opts, "/r", 7, FALSE, &o, &error);
	g_assert_no_error(error);
	i = index_of(with_opts, "-machine");
	g_assert_cmpstr(with_opts[i + 1], ==, "q35,smm=off,memory-backend=qsim-ram");
}

static void
test_argv_invalid(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) config = parse(f, "IMAGE=disk.qcow2\n");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;

	argv = qsim_vm_argv_build("qemu", config, "relative/dir", 5, FALSE, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_null(argv);
	g_clear_error(&error);
	argv = qsim_vm_argv_build("qemu", config, "/r", 0, FALSE, &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_null(argv);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/vm/argv/full", Fixture, NULL, fixture_setup, test_argv_full,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/minimal-kvm", Fixture, NULL, fixture_setup, test_argv_minimal_kvm,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/escapes-commas", Fixture, NULL, fixture_setup,
	           test_argv_escapes_commas, fixture_teardown);
	g_test_add("/qsim/vm/argv/invalid", Fixture, NULL, fixture_setup, test_argv_invalid,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/fast-start", Fixture, NULL, fixture_setup, test_argv_fast_start,
	           fixture_teardown);
	return g_test_run();
}
