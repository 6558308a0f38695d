/*
 * QsimGuest against the real bundled tiny guest, booted here with a plain
 * QEMU argv (the VM layer has its own tests) so that only src/guest/ is under
 * test: readiness through QEMU user networking, exec, signals, 20 MB output
 * and cancellation. One VM serves all cases to keep the suite short.
 */
#include "config.h"

#include <signal.h>
#include <sys/prctl.h>

#include "common/qsim-error.h"
#include "guest/qsim-guest.h"

#include "guest-test-util.h"

/* Boot + readiness under TCG on a busy 2-core machine: generous but bounded. */
#define BOOT_DEADLINE_MS 120000

typedef struct {
	gchar *images;
	gchar *dir;
	gchar *key;
	gchar *fingerprint;
	guint16 port;
	GSubprocess *qemu;
	QsimGuest *guest;
	gchar *skip_reason;
	gint64 connect_ms;
	gint64 started;
} TestVm;

static TestVm vm;

static gboolean
skip_without_vm(void)
{
	if (vm.skip_reason == NULL)
		return FALSE;
	g_test_skip(vm.skip_reason);
	return TRUE;
}

/* Runs in the forked child: QEMU must not outlive a test that aborts. */
static void
die_with_parent(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static gchar *
image_path(const gchar *name)
{
	return g_build_filename(vm.images, name, NULL);
}

/* The guest's host key fingerprint as OpenSSH prints it, to compare with ours. */
static gchar *
expected_fingerprint(GError **error)
{
	g_autofree gchar *pub = image_path("tiny-hostkey.pub");
	const gchar *argv[] = {"ssh-keygen", "-l", "-E", "sha256", "-f", pub, NULL};
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *out = NULL;
	g_auto(GStrv) fields = NULL;

	proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, error);
	if (proc == NULL || !g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, error))
		return NULL;
	fields = g_strsplit(out, " ", 3);
	if (g_strv_length(fields) < 2 || !g_str_has_prefix(fields[1], "SHA256:")) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "ssh-keygen said: %s", out);
		return NULL;
	}
	return g_strdup(fields[1]);
}

static gboolean
vm_start(GError **error)
{
	g_autofree gchar *base = NULL;
	g_autofree gchar *kernel = NULL;
	g_autofree gchar *initrd = NULL;
	g_autofree gchar *drive = NULL;
	g_autofree gchar *netdev = NULL;
	g_autofree gchar *serial = NULL;
	g_autofree gchar *err_log = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	const gchar *qemu =
	    g_getenv("QSIM_QEMU") != NULL ? g_getenv("QSIM_QEMU") : QSIM_QEMU_BINARY;
	/* a /dev/kvm that exists may not run a guest (qsim decides with a probe, see
	 * test-accel): this guest-layer test runs under TCG unless told otherwise */
	const gboolean kvm = g_strcmp0(g_getenv("QSIM_TEST_ACCEL"), "kvm") == 0;
	const gchar *accel = kvm ? "kvm" : "tcg,tb-size=64";

	vm.images = g_strdup(g_getenv("QSIM_IMAGES_DIR"));
	if (vm.images == NULL)
		vm.images = g_build_filename(SOURCE_ROOT, "vm_images", NULL);
	base = image_path("tiny.qcow2");
	kernel = image_path("tiny-vmlinuz");
	initrd = image_path("tiny-initrd.img");
	vm.key = image_path("tiny-key");
	if (!g_file_test(base, G_FILE_TEST_EXISTS) || !g_file_test(kernel, G_FILE_TEST_EXISTS) ||
	    !g_file_test(initrd, G_FILE_TEST_EXISTS) || !g_file_test(vm.key, G_FILE_TEST_EXISTS)) {
		vm.skip_reason =
		    g_strdup_printf("tiny guest not built in %s: run 'meson compile -C "
		                    "build guest-image'",
		                    vm.images);
		return TRUE;
	}
	vm.fingerprint = expected_fingerprint(error);
	if (vm.fingerprint == NULL)
		return FALSE;
	vm.dir = g_dir_make_tmp("qsim-guest-vm-test-XXXXXX", error);
	if (vm.dir == NULL)
		return FALSE;
	vm.port = closed_port();
	/* snapshot=on: writes go to a temporary overlay, the base image stays untouched */
	drive = g_strdup_printf("file=%s,if=virtio,format=qcow2,snapshot=on", base);
	netdev = g_strdup_printf("user,id=n0,hostfwd=tcp:127.0.0.1:%u-:22", vm.port);
	serial = g_strdup_printf("file:%s/serial.log", vm.dir);
	err_log = g_build_filename(vm.dir, "qemu.err", NULL);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_stderr_file_path(launcher, err_log);
	g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
	{
		const gchar *argv[] = {qemu,
		                       "-machine",
		                       "q35",
		                       "-m",
		                       "256M",
		                       "-smp",
		                       "1",
		                       "-cpu",
		                       kvm ? "host" : "qemu64,+rdrand",
		                       "-accel",
		                       accel,
		                       "-nodefaults",
		                       "-no-user-config",
		                       "-display",
		                       "none",
		                       "-kernel",
		                       kernel,
		                       "-initrd",
		                       initrd,
		                       "-append",
		                       "console=ttyS0 quiet root=/dev/vda rw",
		                       "-drive",
		                       drive,
		                       "-netdev",
		                       netdev,
		                       "-device",
		                       "virtio-net-pci,netdev=n0",
		                       "-device",
		                       "virtio-rng-pci",
		                       "-serial",
		                       serial,
		                       NULL};
		vm.started = g_get_monotonic_time();
		vm.qemu = g_subprocess_launcher_spawnv(launcher, argv, error);
	}
	return vm.qemu != NULL;
}

static void
vm_stop(void)
{
	g_clear_object(&vm.guest);
	if (vm.qemu != NULL) {
		g_subprocess_force_exit(vm.qemu);
		g_subprocess_wait(vm.qemu, NULL, NULL);
		g_clear_object(&vm.qemu);
	}
	if (vm.dir != NULL && g_getenv("QSIM_TEST_KEEP") == NULL) {
		const gchar *argv[] = {"rm", "-rf", "--", vm.dir, NULL};
		g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
		             NULL, NULL, NULL);
	}
	g_free(vm.images);
	g_free(vm.dir);
	g_free(vm.key);
	g_free(vm.fingerprint);
	g_free(vm.skip_reason);
}

/*
 * The first caller connects while the guest is still booting, which exercises
 * readiness through QEMU user networking (TCP accepted before sshd answers).
 */
static QsimGuest *
connected_vm(void)
{
	g_autoptr(Result) r = NULL;

	if (vm.guest != NULL)
		return vm.guest;
	vm.guest = qsim_guest_new("127.0.0.1", vm.port, "root", vm.key, NULL);
	/* for measuring readiness with other per-attempt timeouts by hand */
	if (g_getenv("QSIM_TEST_ATTEMPT_TIMEOUT_MS") != NULL)
		qsim_guest_set_attempt_timeout(
		    vm.guest,
		    (guint)g_ascii_strtoull(g_getenv("QSIM_TEST_ATTEMPT_TIMEOUT_MS"), NULL, 10));
	r = do_connect(vm.guest, BOOT_DEADLINE_MS, NULL);
	g_assert_no_error(r->error);
	vm.connect_ms = (g_get_monotonic_time() - vm.started) / 1000;
	g_test_message("QEMU start to SSH ready: %" G_GINT64_FORMAT " ms", vm.connect_ms);
	return vm.guest;
}

static void
test_vm_connect(void)
{
	if (skip_without_vm())
		return;
	g_assert_cmpstr(qsim_guest_get_host_key_fingerprint(connected_vm()), ==, vm.fingerprint);
	g_assert_true(qsim_guest_is_connected(vm.guest));
}

static void
test_vm_exec_streams(void)
{
	g_autoptr(Result) r = result_new(TRUE);
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;

	if (skip_without_vm())
		return;
	do_exec(connected_vm(), "echo out; echo err >&2; exit 3", r);
	g_assert_no_error(r->error);
	out = result_out(r);
	err = result_err(r);
	g_assert_cmpstr(out, ==, "out\n");
	g_assert_cmpstr(err, ==, "err\n");
	g_assert_cmpint(r->exit_status, ==, 3);
	g_assert_null(r->exit_signal);
}

static void
test_vm_exec_signal(void)
{
	g_autoptr(Result) r = result_new(TRUE);

	if (skip_without_vm())
		return;
	do_exec(connected_vm(), "kill -TERM $$", r);
	g_assert_no_error(r->error);
	g_assert_cmpstr(r->exit_signal, ==, "TERM");
}

static void
test_vm_exec_large(void)
{
	const gsize budget = 256 * 1024;
	g_autoptr(Result) r = result_new(FALSE);
	g_autofree gchar *remote = NULL;
	gint64 started;

	if (skip_without_vm())
		return;
	qsim_guest_set_flow_budget(connected_vm(), budget);
	started = g_get_monotonic_time();
	/* random bytes (every byte value) staged on the guest's disk (a throwaway snapshot),
	 * checksummed there */
	do_exec(vm.guest,
	        "f=/root/qsim-big; head -c 20000000 /dev/urandom >$f && sha256sum $f >&2 && "
	        "cat $f; rc=$?; rm -f $f; exit $rc",
	        r);
	g_assert_no_error(r->error);
	remote = result_err(r);
	g_test_message("guest stderr: %s", remote);
	g_test_message("20 MB from the guest in %" G_GINT64_FORMAT " ms",
	               (g_get_monotonic_time() - started) / 1000);
	g_assert_cmpint(r->exit_status, ==, 0);
	g_assert_cmpuint(r->out_len, ==, 20000000);
	g_assert_true(g_str_has_prefix(remote, g_checksum_get_string(r->out_sum)));
	g_assert_cmpuint(qsim_guest_get_max_bytes_in_flight(vm.guest), <=, budget);
}

static void
test_vm_exec_cancel(void)
{
	g_autoptr(Result) r = result_new(TRUE);
	g_autoptr(Result) again = result_new(TRUE);
	g_autofree gchar *out = NULL;

	if (skip_without_vm())
		return;
	r->cancel_on_output = g_cancellable_new();
	do_exec(connected_vm(), "echo started; sleep 100", r);
	g_assert_error(r->error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	do_exec(vm.guest, "echo again", again);
	g_assert_no_error(again->error);
	out = result_out(again);
	g_assert_cmpstr(out, ==, "again\n");
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	if (!vm_start(&error)) {
		g_printerr("cannot start the tiny guest: %s\n", error->message);
		vm_stop();
		return 1;
	}
	g_test_add_func("/qsim/guest/vm/connect", test_vm_connect);
	g_test_add_func("/qsim/guest/vm/exec-streams", test_vm_exec_streams);
	g_test_add_func("/qsim/guest/vm/exec-signal", test_vm_exec_signal);
	g_test_add_func("/qsim/guest/vm/exec-large", test_vm_exec_large);
	g_test_add_func("/qsim/guest/vm/exec-cancel", test_vm_exec_cancel);
	rc = g_test_run();
	vm_stop();
	return rc;
}
