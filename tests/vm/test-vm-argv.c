#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

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

/* every start gets a fresh VM generation ID: it is checked for being a UUID, then
 * compared as "vmgenid,guid=UUID" */
static void
assert_argv(gchar **got, const gchar *const *want)
{
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_auto(GStrv) norm = NULL;
	g_autofree gchar *got_s = NULL;
	g_autofree gchar *want_s = g_strjoinv("\n", (gchar **)want);

	for (guint i = 0; got[i] != NULL; i++) {
		if (g_str_has_prefix(got[i], "vmgenid,guid=")) {
			g_assert_true(g_uuid_string_is_valid(got[i] + strlen("vmgenid,guid=")));
			g_strv_builder_add(b, "vmgenid,guid=UUID");
		} else {
			g_strv_builder_add(b, got[i]);
		}
	}
	norm = g_strv_builder_end(b);
	got_s = g_strjoinv("\n", norm);
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
	    "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:2222",
	    "-device",
	    "virtio-net-pci,netdev=n0",
	    "-device",
	    "virtio-rng-pci",
	    "-device",
	    "vmgenid,guid=UUID",
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
	                       "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:1-:22",
	                       "-device",
	                       "virtio-net-pci,netdev=n0",
	                       "-device",
	                       "virtio-rng-pci",
	                       "-device",
	                       "vmgenid,guid=UUID",
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

/* An unset CPU_MODEL follows the accelerator; under KVM no TB_SIZE and no rdrand the host
 * cannot give. */
static void
test_argv_cpu_model(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) unset = parse(f, "IMAGE=disk.qcow2\nTB_SIZE=32\n");
	g_autoptr(QsimVmConfig) set =
	    parse(f, "IMAGE=disk.qcow2\nCPU_MODEL=qemu64,+rdrand,+sse4.2\n");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) kvm = NULL;
	g_autofree gchar *m1 = qsim_vm_argv_cpu_model(unset, TRUE, FALSE);
	g_autofree gchar *m2 = qsim_vm_argv_cpu_model(unset, FALSE, FALSE);
	g_autofree gchar *m3 = qsim_vm_argv_cpu_model(set, TRUE, FALSE);
	g_autofree gchar *m4 = qsim_vm_argv_cpu_model(set, TRUE, TRUE);
	g_autofree gchar *m5 = qsim_vm_argv_cpu_model(set, FALSE, FALSE);

	g_assert_cmpstr(m1, ==, "host");
	g_assert_cmpstr(m2, ==, "qemu64,+rdrand");
	g_assert_cmpstr(m3, ==, "qemu64,+sse4.2");
	g_assert_cmpstr(m4, ==, "qemu64,+rdrand,+sse4.2");
	g_assert_cmpstr(m5, ==, "qemu64,+rdrand,+sse4.2");

	kvm = qsim_vm_argv_build("qemu", unset, "/r", 1, TRUE, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(kvm[3], ==, "-accel");
	g_assert_cmpstr(kvm[4], ==, "kvm");
	for (guint i = 0; kvm[i] != NULL; i++)
		g_assert_null(strstr(kvm[i], "tb-size"));
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

/* DATA_DISK: a second virtio disk right after the overlay, read-only and raw, its path
 * escaped like the others */
static void
test_argv_data_disk(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) plain = parse(f, "IMAGE=disk.qcow2\n");
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_auto(GStrv) plain_argv = NULL;
	g_autofree gchar *path = g_build_filename(f->dir, "d,if=none.sqfs", NULL);
	g_autofree gchar *want = NULL;
	gint overlay;

	write_file(f->dir, "d,if=none.sqfs", "hsqs");
	config = parse(f, "IMAGE=disk.qcow2\nDATA_DISK=d,if=none.sqfs\n");
	argv = qsim_vm_argv_build("qemu", config, "/run/q/t", 40022, FALSE, &error);
	g_assert_no_error(error);
	plain_argv = qsim_vm_argv_build("qemu", plain, "/run/q/t", 40022, FALSE, &error);
	g_assert_no_error(error);
	/* the temporary dir's name has no comma: only the file's is doubled */
	g_assert_null(strchr(f->dir, ','));
	want = g_strdup_printf("file=%s/d,,if=none.sqfs,if=virtio,format=raw,readonly=on", f->dir);
	overlay = index_of(argv, "file=/run/q/t/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe");
	g_assert_cmpint(overlay, >, 0);
	g_assert_cmpstr(argv[overlay + 1], ==, "-drive");
	g_assert_cmpstr(argv[overlay + 2], ==, want);
	/* exactly two more arguments than without it */
	g_assert_cmpuint(g_strv_length(argv), ==, g_strv_length(plain_argv) + 2);
	g_assert_cmpint(index_of(plain_argv, want), ==, -1);
	g_unlink(path);
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

static gchar *
vmgenid_of(gchar **argv)
{
	gint i = index_of(argv, "-device");

	for (; i >= 0 && argv[i] != NULL; i++) {
		if (g_str_has_prefix(argv[i], "vmgenid,guid="))
			return g_strdup(argv[i] + strlen("vmgenid,guid="));
	}
	return NULL;
}

/* NETWORK: none (the default) is slirp with restrict=on plus the SSH forward; outbound
 * is slirp without restrict (safe only inside the VM's own namespace, which QsimVm
 * gives it); anything else is a config error. */
static void
test_argv_network(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) def = parse(f, "IMAGE=disk.qcow2\n");
	g_autoptr(QsimVmConfig) none = parse(f, "IMAGE=disk.qcow2\nNETWORK=none\n");
	g_autoptr(QsimVmConfig) out = parse(f, "IMAGE=disk.qcow2\nNETWORK=outbound\n");
	g_autoptr(QsimVmConfig) bad = NULL;
	g_autofree gchar *conf = g_build_filename(f->dir, "t.conf", NULL);
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_auto(GStrv) out_argv = NULL;
	g_autofree gchar *netdev = NULL;
	g_autofree gchar *out_netdev = NULL;
	const gchar *refused[] = {"user", "", "NONE", "Outbound", "outbound,restrict=off", NULL};
	gint i;

	g_assert_cmpint(def->network, ==, QSIM_VM_NETWORK_NONE);
	g_assert_cmpint(none->network, ==, QSIM_VM_NETWORK_NONE);
	g_assert_cmpint(out->network, ==, QSIM_VM_NETWORK_OUTBOUND);
	g_assert_cmpstr(qsim_vm_network_to_string(def->network), ==, "none");
	g_assert_cmpstr(qsim_vm_network_to_string(out->network), ==, "outbound");
	/* NETWORK is part of the .conf, so of the hash that makes templates stale */
	g_assert_cmpstr(def->hash, !=, none->hash);
	g_assert_cmpstr(none->hash, !=, out->hash);
	netdev = qsim_vm_argv_netdev(def, 40022);
	g_assert_cmpstr(netdev, ==, "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22");
	argv = qsim_vm_argv_build("qemu", none, "/r", 40022, FALSE, &error);
	g_assert_no_error(error);
	i = index_of(argv, "-netdev");
	g_assert_cmpstr(argv[i + 1], ==, netdev);
	/* exactly one network device, on that netdev */
	g_assert_cmpint(index_of(argv + i + 2, "-netdev"), ==, -1);

	out_netdev = qsim_vm_argv_netdev(out, 40023);
	g_assert_cmpstr(out_netdev, ==, "user,id=n0,hostfwd=tcp:127.0.0.1:40023-:22");
	out_argv = qsim_vm_argv_build("qemu", out, "/r", 40023, FALSE, &error);
	g_assert_no_error(error);
	i = index_of(out_argv, "-netdev");
	g_assert_cmpstr(out_argv[i + 1], ==, out_netdev);
	g_assert_cmpint(index_of(out_argv + i + 2, "-netdev"), ==, -1);

	for (guint k = 0; refused[k] != NULL; k++) {
		g_autofree gchar *text =
		    g_strdup_printf("IMAGE=disk.qcow2\nNETWORK=%s\n", refused[k]);

		write_file(f->dir, "t.conf", text);
		bad = qsim_vm_config_parse(f->dir, conf, "t", &error);
		g_assert_null(bad);
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_test_message("NETWORK=%s: %s", refused[k], error->message);
		g_assert_nonnull(strstr(error->message, "must be none or outbound"));
		g_clear_error(&error);
	}
}

/* Every start, a template build and each restore alike, gets its own VM generation ID;
 * a given one is passed through. */
static void
test_argv_vmgenid(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVmConfig) config = parse(f, "IMAGE=disk.qcow2\n");
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) a = NULL;
	g_auto(GStrv) b = NULL;
	g_auto(GStrv) fixed = NULL;
	g_autofree gchar *ga = NULL;
	g_autofree gchar *gb = NULL;
	g_autofree gchar *gf = NULL;
	QsimVmArgvOptions o = {.qmp_fd = 3, .ram_path = "/s/ram", .incoming = TRUE};

	a = qsim_vm_argv_build_with("qemu", config, "/r", 7, FALSE, &o, &error);
	g_assert_no_error(error);
	b = qsim_vm_argv_build_with("qemu", config, "/r", 7, FALSE, &o, &error);
	g_assert_no_error(error);
	ga = vmgenid_of(a);
	gb = vmgenid_of(b);
	g_assert_nonnull(ga);
	g_assert_nonnull(gb);
	g_assert_true(g_uuid_string_is_valid(ga));
	g_assert_cmpstr(ga, !=, gb);
	o.vmgenid = "6b1f5a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
	fixed = qsim_vm_argv_build_with("qemu", config, "/r", 7, FALSE, &o, &error);
	g_assert_no_error(error);
	gf = vmgenid_of(fixed);
	g_assert_cmpstr(gf, ==, o.vmgenid);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/vm/argv/full", Fixture, NULL, fixture_setup, test_argv_full,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/cpu-model", Fixture, NULL, fixture_setup, test_argv_cpu_model,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/minimal-kvm", Fixture, NULL, fixture_setup, test_argv_minimal_kvm,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/escapes-commas", Fixture, NULL, fixture_setup,
	           test_argv_escapes_commas, fixture_teardown);
	g_test_add("/qsim/vm/argv/data-disk", Fixture, NULL, fixture_setup, test_argv_data_disk,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/invalid", Fixture, NULL, fixture_setup, test_argv_invalid,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/fast-start", Fixture, NULL, fixture_setup, test_argv_fast_start,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/network", Fixture, NULL, fixture_setup, test_argv_network,
	           fixture_teardown);
	g_test_add("/qsim/vm/argv/vmgenid", Fixture, NULL, fixture_setup, test_argv_vmgenid,
	           fixture_teardown);
	return g_test_run();
}
