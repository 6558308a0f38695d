#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <glib/gstdio.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "qsim-vm-argv.h"
#include "qsim-vm-rundir.h"

#define QSIM_VM_ARGV_RAM_ID "qsim-ram"

/* The CPU model an unset CPU_MODEL means: what the host has under KVM; under TCG a plain
 * 64-bit model plus rdrand, which TCG emulates and which seeds the guest's RNG at once. */
#define QSIM_VM_ARGV_CPU_KVM "host"
#define QSIM_VM_ARGV_CPU_TCG "qemu64,+rdrand"

static gboolean
qsim_vm_argv_host_has_rdrand_once(void)
{
	g_autofree gchar *cpuinfo = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL))
		return FALSE;
	lines = g_strsplit(cpuinfo, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) words = NULL;

		if (!g_str_has_prefix(lines[i], "flags"))
			continue;
		words = g_strsplit_set(lines[i], " \t", -1);
		return g_strv_contains((const gchar *const *)words, "rdrand");
	}
	return FALSE;
}

/**
 * qsim_vm_argv_host_has_rdrand:
 *
 * Read once: the CPU flags do not change while the process runs.
 *
 * Returns: whether the host CPU offers RDRAND, which KVM can only pass through
 */
gboolean
qsim_vm_argv_host_has_rdrand(void)
{
	static gsize once = 0;
	static gboolean has = FALSE;

	if (g_once_init_enter(&once)) {
		has = qsim_vm_argv_host_has_rdrand_once();
		g_once_init_leave(&once, 1);
	}
	return has;
}

/**
 * qsim_vm_argv_cpu_model:
 * @config: the VM's configuration
 * @use_kvm: the VM runs under KVM
 * @host_has_rdrand: the host CPU has RDRAND
 *
 * KVM cannot emulate a CPU feature the host lacks (QEMU then warns and drops it, or
 * refuses with `enforce`), so "+rdrand" is left out under KVM on such a host; TCG
 * emulates it everywhere.
 *
 * Returns: (transfer full): the `-cpu` value for this start
 */
gchar *
qsim_vm_argv_cpu_model(const QsimVmConfig *config, gboolean use_kvm, gboolean host_has_rdrand)
{
	g_auto(GStrv) parts = NULL;
	g_autoptr(GStrvBuilder) kept = NULL;
	g_auto(GStrv) out = NULL;

	if (config->cpu_model == NULL)
		return g_strdup(use_kvm ? QSIM_VM_ARGV_CPU_KVM : QSIM_VM_ARGV_CPU_TCG);
	if (!use_kvm || host_has_rdrand)
		return g_strdup(config->cpu_model);
	parts = g_strsplit(config->cpu_model, ",", -1);
	kept = g_strv_builder_new();
	for (guint i = 0; parts[i] != NULL; i++) {
		if (g_strcmp0(parts[i], "+rdrand") == 0 || g_strcmp0(parts[i], "rdrand=on") == 0)
			continue;
		g_strv_builder_add(kept, parts[i]);
	}
	out = g_strv_builder_end(kept);
	return g_strjoinv(",", out);
}

/* QEMU's option parser splits on ',' and reads ",," as a literal comma; paths go into
 * option values, so double every comma rather than let a path inject options. */
static gchar *
qsim_vm_argv_escape(const gchar *value)
{
	GString *s = g_string_new(NULL);

	for (const gchar *p = value; *p != '\0'; p++) {
		if (*p == ',')
			g_string_append_c(s, ',');
		g_string_append_c(s, *p);
	}
	return g_string_free(s, FALSE);
}

static void
add(GPtrArray *argv, const gchar *arg)
{
	g_ptr_array_add(argv, g_strdup(arg));
}

static void
add_take(GPtrArray *argv, gchar *arg)
{
	g_ptr_array_add(argv, arg);
}

/**
 * qsim_vm_argv_netdev:
 * @config: the VM's configuration
 * @ssh_host_port: the 127.0.0.1 port forwarded to the guest's SSH_PORT
 *
 * NETWORK=none: slirp with restrict=on. The guest can then open no connection and send
 * no packet outside itself: not to the internet, and not to 10.0.2.2, which slirp
 * otherwise maps to the host's 127.0.0.1 (qsimd's API, other VMs' SSH forwards).
 * The hostfwd is set up from the host side, so SSH into the guest still works.
 *
 * NETWORK=outbound: slirp unrestricted, which is only safe because QEMU then runs in a
 * network namespace of its own (qsim-net-outbound.c): 10.0.2.2 and the forward's
 * 127.0.0.1 are that namespace's loopback, not the host's.
 *
 * Returns: (transfer full): the `-netdev` value
 */
gchar *
qsim_vm_argv_netdev(const QsimVmConfig *config, guint16 ssh_host_port)
{
	return g_strdup_printf("user,id=n0,%shostfwd=tcp:127.0.0.1:%u-:%u",
	                       config->network == QSIM_VM_NETWORK_OUTBOUND ? "" : "restrict=on,",
	                       (guint)ssh_host_port, config->ssh_port);
}

/* MACHINE may be unset, a bare type ("q35") or carry options ("q35,accel=tcg"). */
static gchar *
machine_with_backend(const gchar *machine)
{
	if (machine == NULL || machine[0] == '\0')
		return g_strdup("memory-backend=" QSIM_VM_ARGV_RAM_ID);
	return g_strdup_printf("%s,memory-backend=" QSIM_VM_ARGV_RAM_ID, machine);
}

/**
 * qsim_vm_argv_build:
 * @qemu_binary: argv[0], e.g. "qemu-system-x86_64"
 * @config: the VM's configuration
 * @run_dir: absolute path of this start's run directory (holds overlay, QMP socket, pidfile)
 * @ssh_host_port: the 127.0.0.1 port forwarded to the guest's SSH_PORT, not 0
 * @use_kvm: use `-accel kvm` instead of TCG
 * @error: return location for a #GError
 *
 * Builds QEMU's full argv for one start, without any shell: the drive is the overlay
 * `<run_dir>/overlay.qcow2`, QMP listens on `<run_dir>/qmp.sock`, the serial console
 * goes to QEMU's stdout (a pipe the caller reads, so no early boot byte is lost to a
 * socket nobody has connected yet), and the config's ADDITIONAL_ARGS come last.
 *
 * Returns: (transfer full): a %NULL-terminated argv, or %NULL with @error set
 */
gchar **
qsim_vm_argv_build(const gchar *qemu_binary, const QsimVmConfig *config, const gchar *run_dir,
                   guint16 ssh_host_port, gboolean use_kvm, GError **error)
{
	const QsimVmArgvOptions defaults = {.qmp_fd = -1};

	return qsim_vm_argv_build_with(qemu_binary, config, run_dir, ssh_host_port, use_kvm,
	                               &defaults, error);
}

/**
 * qsim_vm_argv_build_with:
 * @qemu_binary: argv[0]
 * @config: the VM's configuration
 * @run_dir: absolute path of this start's run directory
 * @ssh_host_port: the 127.0.0.1 port forwarded to the guest's SSH_PORT, not 0
 * @use_kvm: use `-accel kvm` instead of TCG
 * @options: QMP on an inherited socket, RAM in a file, waiting for an incoming migration
 * @error: return location for a #GError
 *
 * Like qsim_vm_argv_build(), with @options.
 *
 * Returns: (transfer full): a %NULL-terminated argv, or %NULL with @error set
 */
gchar **
qsim_vm_argv_build_with(const gchar *qemu_binary, const QsimVmConfig *config, const gchar *run_dir,
                        guint16 ssh_host_port, gboolean use_kvm, const QsimVmArgvOptions *options,
                        GError **error)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *dir = NULL;
	g_autofree gchar *overlay = NULL;
	g_autofree gchar *qmp = NULL;
	g_autofree gchar *pidfile = NULL;
	g_autofree gchar *genid = NULL;

	if (run_dir == NULL || !g_path_is_absolute(run_dir)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "run dir must be an absolute path");
		return NULL;
	}
	if (ssh_host_port == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID, "no SSH host port");
		return NULL;
	}
	if (config->ssh_port == 0 || config->ssh_port > 65535) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "SSH_PORT %u is out of range",
		            config->ssh_port);
		return NULL;
	}
	if (config->memory_mib == 0 || config->cpus == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "MEMORY and CPU must be positive");
		return NULL;
	}
	dir = qsim_vm_argv_escape(run_dir);
	overlay = g_build_filename(dir, QSIM_VM_RUNDIR_OVERLAY, NULL);
	qmp = g_build_filename(dir, QSIM_VM_RUNDIR_QMP, NULL);
	/* -pidfile takes a plain path, not an option string */
	pidfile = g_build_filename(run_dir, QSIM_VM_RUNDIR_QEMU_PID, NULL);

	add(argv, qemu_binary);
	add(argv, "-name");
	add_take(argv, g_strdup_printf("qsim-%s", config->name));
	add(argv, "-accel");
	if (use_kvm)
		add(argv, "kvm");
	else if (config->tb_size_mib > 0)
		add_take(argv, g_strdup_printf("tcg,tb-size=%u", config->tb_size_mib));
	else
		add(argv, "tcg");
	if (options->ram_path != NULL) {
		g_autofree gchar *ram = qsim_vm_argv_escape(options->ram_path);

		add(argv, "-machine");
		add_take(argv, machine_with_backend(config->machine));
		add(argv, "-object");
		add_take(argv, g_strdup_printf("memory-backend-file,id=" QSIM_VM_ARGV_RAM_ID
		                               ",size=%" G_GUINT64_FORMAT "M,mem-path=%s,share=%s",
		                               config->memory_mib, ram,
		                               options->ram_shared ? "on" : "off"));
	} else if (config->machine != NULL) {
		add(argv, "-machine");
		add(argv, config->machine);
	}
	add(argv, "-m");
	add_take(argv, g_strdup_printf("%" G_GUINT64_FORMAT "M", config->memory_mib));
	add(argv, "-smp");
	add_take(argv, g_strdup_printf("%u", config->cpus));
	add(argv, "-cpu");
	add_take(argv, qsim_vm_argv_cpu_model(config, use_kvm, qsim_vm_argv_host_has_rdrand()));
	add(argv, "-nodefaults");
	add(argv, "-no-user-config");
	add(argv, "-display");
	add(argv, "none");
	add(argv, "-drive");
	/* cache=unsafe: the overlay is thrown away, so flushing it only costs boot time */
	add_take(argv, g_strdup_printf("file=%s,if=virtio,format=qcow2,cache=unsafe", overlay));
	if (config->data_disk_path != NULL) {
		g_autofree gchar *data = qsim_vm_argv_escape(config->data_disk_path);

		/* readonly=on: QEMU opens the file O_RDONLY and the guest sees a read-only
		 * disk, so one file serves any number of VMs at once unchanged */
		add(argv, "-drive");
		add_take(argv, g_strdup_printf("file=%s,if=virtio,format=raw,readonly=on", data));
	}
	if (config->kernel_path != NULL) {
		add(argv, "-kernel");
		add(argv, config->kernel_path);
	}
	if (config->initrd_path != NULL) {
		add(argv, "-initrd");
		add(argv, config->initrd_path);
	}
	if (config->append != NULL) {
		add(argv, "-append");
		add(argv, config->append);
	}
	add(argv, "-chardev");
	/* server=off on a connected socket: QEMU greets at once, nobody polls for a path */
	if (options->qmp_fd >= 0)
		add_take(argv, g_strdup_printf("socket,id=qmp0,fd=%d,server=off", options->qmp_fd));
	else
		add_take(argv, g_strdup_printf("socket,id=qmp0,path=%s,server=on,wait=off", qmp));
	add(argv, "-mon");
	add(argv, "chardev=qmp0,mode=control");
	add(argv, "-chardev");
	add(argv, "stdio,id=ser0,signal=off");
	add(argv, "-serial");
	add(argv, "chardev:ser0");
	add(argv, "-netdev");
	add_take(argv, qsim_vm_argv_netdev(config, ssh_host_port));
	add(argv, "-device");
	add(argv, "virtio-net-pci,netdev=n0");
	add(argv, "-device");
	add(argv, "virtio-rng-pci");
	/* a new VM generation ID on every start: QEMU does not migrate the guid, it writes
	 * the new one into guest memory after an incoming migration and notifies the guest,
	 * so each restore of a template is told it is a new instance */
	genid = options->vmgenid != NULL ? g_strdup(options->vmgenid) : g_uuid_string_random();
	add(argv, "-device");
	add_take(argv, g_strdup_printf("vmgenid,guid=%s", genid));
	add(argv, "-pidfile");
	add(argv, pidfile);
	if (options->save_running) {
		add(argv, "-global");
		add(argv, "migration.store-global-state=off");
	}
	if (options->incoming) {
		/* no self-announce after the load: with user-mode networking there is no switch
		 * to tell, and the guest's announce work delays its first SSH answer */
		add(argv, "-global");
		add(argv, "migration.announce-rounds=0");
		add(argv, "-incoming");
		add(argv, "defer");
	}
	for (guint i = 0; config->additional_args != NULL && config->additional_args[i] != NULL;
	     i++)
		add(argv, config->additional_args[i]);
	g_ptr_array_add(argv, NULL);
	return (gchar **)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
}
