#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "test-util.h"
#include "vm-test-util.h"
#include "common/qsim-error.h"
#include "vm/qsim-kvm-probe.h"

/*
 * The accelerator on the three kinds of host: no /dev/kvm (the QSIM_KVM_DEVICE hook), a
 * broken KVM (stand-in QEMU binaries that fail or hang), and whatever this machine's
 * /dev/kvm really does, checked end to end through `qsimd run-vm`.
 */

typedef struct {
	gchar *dir;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	f->dir = qsim_test_tmpdir_new();
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
}

static gchar *
write_script(Fixture *f, const gchar *name, const gchar *body)
{
	gchar *path = qsim_test_write(f->dir, name, body);

	g_assert_cmpint(g_chmod(path, 0755), ==, 0);
	return path;
}

typedef struct {
	gboolean done;
	QsimAccelVerdict *verdict;
	GError *error;
} ProbeResult;

static void
probe_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ProbeResult *r = user_data;

	r->verdict = qsim_kvm_probe_run_finish(res, &r->error);
	r->done = TRUE;
}

static QsimAccelVerdict *
boot(const QsimKvmProbeParams *p, gboolean with_device_check)
{
	ProbeResult r = {FALSE};

	if (with_device_check)
		qsim_kvm_probe_run_async(p, NULL, probe_cb, &r);
	else
		qsim_kvm_probe_boot_async(p, NULL, probe_cb, &r);
	vm_test_iterate_until(&r.done, 60);
	g_assert_true(r.done);
	g_assert_no_error(r.error);
	g_assert_nonnull(r.verdict);
	g_test_message("verdict: kvm=%d after %" G_GINT64_FORMAT " ms: %s", r.verdict->kvm,
	               r.verdict->probe_ms, r.verdict->reason);
	return r.verdict;
}

static void
params_for_tiny(QsimKvmProbeParams *p, gchar **kernel, gchar **initrd)
{
	g_autofree gchar *images = vm_test_images_dir();

	*kernel = g_build_filename(images, "tiny-vmlinux", NULL);
	*initrd = g_build_filename(images, "tiny-initrd.img", NULL);
	p->kernel = *kernel;
	p->initrd = *initrd;
	p->device = QSIM_KVM_DEFAULT_DEVICE;
	p->qemu = QSIM_QEMU_BINARY;
	p->timeout_ms = 5000;
}

/* A host with no /dev/kvm: TCG at once, no QEMU run, and the reason says so. */
static void
test_no_device(Fixture *f, gconstpointer data)
{
	g_autofree gchar *missing = g_build_filename(f->dir, "no-kvm", NULL);
	g_autofree gchar *kernel = NULL;
	g_autofree gchar *initrd = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;
	QsimKvmProbeParams p;

	params_for_tiny(&p, &kernel, &initrd);
	p.device = missing;
	g_assert_false(qsim_kvm_probe_check_device(missing, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	v = boot(&p, TRUE);
	g_assert_false(v->kvm);
	g_assert_nonnull(strstr(v->reason, "no KVM device at"));
	g_assert_true(g_str_has_prefix(v->cache_key, "v1:"));
}

/* A device that opens but is no KVM (here /dev/null) is refused by the API check. */
static void
test_not_kvm_device(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(qsim_kvm_probe_check_device("/dev/null", &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "is not a KVM device"));
}

/* A KVM that hangs (QEMU "running", nothing on the console): the deadline decides, and
 * the stand-in QEMU is gone when the verdict is in. */
static void
test_hang(Fixture *f, gconstpointer data)
{
	g_autofree gchar *pidfile = g_build_filename(f->dir, "pid", NULL);
	g_autofree gchar *body =
	    g_strdup_printf("#!/bin/sh\necho $$ > '%s'\nexec sleep 60\n", pidfile);
	g_autofree gchar *qemu = write_script(f, "hang-qemu", body);
	g_autofree gchar *kernel = NULL;
	g_autofree gchar *initrd = NULL;
	g_autofree gchar *pid_text = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;
	QsimKvmProbeParams p;

	params_for_tiny(&p, &kernel, &initrd);
	if (!g_file_test(kernel, G_FILE_TEST_EXISTS)) {
		/* the probe needs the files to exist, not to work: any will do */
		g_free(kernel);
		g_free(initrd);
		kernel = qsim_test_write(f->dir, "k", "x");
		initrd = qsim_test_write(f->dir, "i", "x");
		p.kernel = kernel;
		p.initrd = initrd;
	}
	p.qemu = qemu;
	p.timeout_ms = 500;
	v = boot(&p, FALSE);
	g_assert_false(v->kvm);
	g_assert_nonnull(strstr(v->reason, "did not boot a test kernel within 0.5 s"));
	g_assert_cmpint(v->probe_ms, >=, 500);
	g_assert_true(g_file_get_contents(pidfile, &pid_text, NULL, NULL));
	/* reaped: no such process any more */
	g_assert_cmpint(kill((pid_t)g_ascii_strtoll(pid_text, NULL, 10), 0), ==, -1);
	g_assert_cmpint(errno, ==, ESRCH);
}

/* A KVM that fails (QEMU aborts, as on a nested PVM host): QEMU's last words are the reason. */
static void
test_fail(Fixture *f, gconstpointer data)
{
	g_autofree gchar *qemu = write_script(
	    f, "fail-qemu",
	    "#!/bin/sh\necho 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\n"
	    "exit 1\n");
	g_autofree gchar *kernel = qsim_test_write(f->dir, "k", "x");
	g_autofree gchar *initrd = qsim_test_write(f->dir, "i", "x");
	g_autoptr(QsimAccelVerdict) v = NULL;
	QsimKvmProbeParams p = {qemu, "/dev/kvm", kernel, initrd, 5000};

	v = boot(&p, FALSE);
	g_assert_false(v->kvm);
	g_assert_nonnull(strstr(v->reason, "exited with status 1"));
	g_assert_nonnull(strstr(v->reason, "failed to set MSR 0x10a"));
}

/* No probe kernel: TCG, and the reason says how to get one. */
static void
test_no_kernel(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kernel = g_build_filename(f->dir, "none", NULL);
	g_autoptr(QsimAccelVerdict) v = NULL;
	QsimKvmProbeParams p = {"/bin/false", "/dev/kvm", kernel, kernel, 5000};

	v = boot(&p, FALSE);
	g_assert_false(v->kvm);
	g_assert_nonnull(strstr(v->reason, "no probe kernel at"));
}

/* The probe's whole path with a real kernel: a stand-in that runs the probe's own argv
 * under TCG proves the marker, the argv and the kill after the marker. */
static void
test_boots_marker(Fixture *f, gconstpointer data)
{
	g_autofree gchar *body =
	    g_strdup_printf("#!/bin/sh\n"
	                    "# the probe's argv with KVM swapped for TCG\n"
	                    "n=0\nfor a in \"$@\"; do\n  n=$((n+1))\n"
	                    "  case \"$a\" in kvm) a=tcg ;; host) a=qemu64 ;; esac\n"
	                    "  set -- \"$@\" \"$a\"\ndone\nshift $n\nexec %s \"$@\"\n",
	                    QSIM_QEMU_BINARY);
	g_autofree gchar *qemu = write_script(f, "tcg-qemu", body);
	g_autofree gchar *kernel = NULL;
	g_autofree gchar *initrd = NULL;
	g_autoptr(QsimAccelVerdict) v = NULL;
	QsimKvmProbeParams p;

	if (vm_test_skip_without_image())
		return;
	params_for_tiny(&p, &kernel, &initrd);
	p.qemu = qemu;
	p.timeout_ms = 60000;
	v = boot(&p, FALSE);
	g_assert_true(v->kvm);
	g_assert_nonnull(strstr(v->reason, "booted a test kernel in"));
}

/* The key follows what could change the answer, and only that. */
static void
test_cache_key(Fixture *f, gconstpointer data)
{
	g_autofree gchar *kernel = qsim_test_write(f->dir, "k", "kernel");
	g_autofree gchar *initrd = qsim_test_write(f->dir, "i", "initrd");
	QsimKvmProbeParams p = {QSIM_QEMU_BINARY, "/dev/kvm", kernel, initrd, 5000};
	g_autofree gchar *k1 = qsim_kvm_probe_cache_key(&p);
	g_autofree gchar *k2 = qsim_kvm_probe_cache_key(&p);
	g_autofree gchar *k3 = NULL;
	g_autofree gchar *k4 = NULL;
	g_autofree gchar *k5 = NULL;

	g_assert_cmpstr(k1, ==, k2);
	p.timeout_ms = 3000;
	k3 = qsim_kvm_probe_cache_key(&p);
	g_assert_cmpstr(k1, !=, k3);
	p.timeout_ms = 5000;
	g_free(kernel);
	kernel = qsim_test_write(f->dir, "k", "another kernel");
	p.kernel = kernel;
	k4 = qsim_kvm_probe_cache_key(&p);
	g_assert_cmpstr(k1, !=, k4);
	p.device = "/nonexistent/kvm";
	k5 = qsim_kvm_probe_cache_key(&p);
	g_assert_cmpstr(k4, !=, k5);
}

/* ---- end to end through `qsimd run-vm` -------------------------------------------- */

typedef struct {
	gint status;
	gchar *out;
	gchar *err;
	gdouble seconds;
} RunVm;

static void
run_vm_clear(RunVm *r)
{
	g_free(r->out);
	g_free(r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RunVm, run_vm_clear)

/* Runs @argv0 (qsimd, or a wrapper of it) with @env_extra ("NAME=value" pairs) and @args. */
static void
run_vm_argv0(Fixture *f, const gchar *const *env_extra, const gchar *argv0,
             const gchar *const *args, RunVm *r)
{
	g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *images = vm_test_images_dir();
	g_autofree gchar *configs = g_build_filename(f->dir, "configs", NULL);
	g_autofree gchar *run = g_build_filename(f->dir, "run", NULL);
	g_autofree gchar *db = g_build_filename(f->dir, "no.db", NULL);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	gint64 start = g_get_monotonic_time();

	g_mkdir_with_parents(configs, 0700);
	g_subprocess_launcher_setenv(l, "QSIM_VM_IMAGES_DIR", images, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_VM_CONFIG_DIR", configs, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_RUN_DIR", run, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_STATE_DIR", f->dir, TRUE);
	g_subprocess_launcher_setenv(l, "QSIM_DB_PATH", db, TRUE);
	g_subprocess_launcher_unsetenv(l, "QSIM_ACCEL");
	g_subprocess_launcher_unsetenv(l, "SQLITE_SIM_ACCEL");
	for (guint i = 0; env_extra != NULL && env_extra[i] != NULL; i++) {
		g_auto(GStrv) kv = g_strsplit(env_extra[i], "=", 2);
		g_subprocess_launcher_setenv(l, kv[0], kv[1], TRUE);
	}
	g_subprocess_launcher_set_cwd(l, f->dir);
	g_ptr_array_add(argv, (gpointer)argv0);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	proc = g_subprocess_launcher_spawnv(l, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_communicate_utf8(proc, NULL, NULL, &r->out, &r->err, &error));
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(proc));
	r->status = g_subprocess_get_exit_status(proc);
	r->seconds = (g_get_monotonic_time() - start) / 1e6;
	g_test_message("exit %d after %.1f s; stderr tail: %s", r->status, r->seconds,
	               strlen(r->err) > 600 ? r->err + strlen(r->err) - 600 : r->err);
}

static void
run_vm(Fixture *f, const gchar *const *env_extra, const gchar *const *args, RunVm *r)
{
	run_vm_argv0(f, env_extra, qsim_test_qsimd_path(), args, r);
}

static void
write_conf(Fixture *f, const gchar *name, const gchar *extra)
{
	g_autofree gchar *src = g_build_filename(SOURCE_ROOT, "vm_configs", "tiny.conf", NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *all = NULL;
	g_autofree gchar *fn = g_strdup_printf("configs/%s.conf", name);
	g_autofree gchar *path = NULL;

	g_assert_true(g_file_get_contents(src, &text, NULL, NULL));
	all = g_strconcat(text, extra, NULL);
	/* tiny.conf names its image (IMAGE=tiny.qcow2), so any name boots the tiny guest */
	path = qsim_test_write(f->dir, fn, all);
}

/* ACCEL=bogus is refused by name and source before anything runs. */
static void
test_bogus_refused(Fixture *f, gconstpointer data)
{
	const gchar *env[] = {"QSIM_ACCEL=bogus", NULL};
	const gchar *args[] = {"run-vm", "tiny", "--", "echo", "ok", NULL};
	g_auto(RunVm) r = {0};

	run_vm(f, env, args, &r);
	g_assert_cmpint(r.status, !=, 0);
	g_assert_nonnull(strstr(r.err, "QSIM_ACCEL='bogus' (from environment): not an "
	                               "accelerator (use auto, kvm or tcg)"));
}

/* ACCEL=tcg always works, whatever the host's KVM does. */
static void
test_tcg_works(Fixture *f, gconstpointer data)
{
	const gchar *args[] = {"--accel", "tcg", "run-vm", "tiny", "--", "echo", "ok", NULL};
	g_auto(RunVm) r = {0};

	if (vm_test_skip_without_image())
		return;
	write_conf(f, "tiny", "");
	run_vm(f, NULL, args, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "ok\n");
	g_assert_nonnull(strstr(r.err, "accelerator: tcg (ACCEL=tcg from flag --accel)"));
}

/* No /dev/kvm (the hook stands in a missing one): auto picks TCG, says why, and works. */
static void
test_auto_without_kvm(Fixture *f, gconstpointer data)
{
	const gchar *env[] = {"QSIM_KVM_DEVICE=/nonexistent/kvm", NULL};
	const gchar *args[] = {"run-vm", "tiny", "--", "echo", "ok", NULL};
	g_auto(RunVm) r = {0};

	if (vm_test_skip_without_image())
		return;
	write_conf(f, "tiny", "");
	run_vm(f, env, args, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "ok\n");
	g_assert_nonnull(strstr(r.err, "accelerator: tcg (ACCEL=auto from default: no KVM device "
	                               "at /nonexistent/kvm"));
}

/* A host whose /dev has no kvm at all: a private mount namespace with a /dev of its own
 * (needs root and unshare(1); the QSIM_KVM_DEVICE case above covers the rest). */
static void
test_auto_hidden_kvm(Fixture *f, gconstpointer data)
{
	const gchar *script =
	    "mount -t tmpfs -o mode=755 none /dev && "
	    "mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 && "
	    "mknod -m 666 /dev/urandom c 1 9 && mknod -m 666 /dev/random c 1 8 && "
	    "exec \"$0\" run-vm tiny -- echo ok";
	g_autofree gchar *unshare = g_find_program_in_path("unshare");
	const gchar *args[] = {"--mount", "--propagation",        "private", "--", "sh", "-c",
	                       script,    qsim_test_qsimd_path(), NULL};
	g_auto(RunVm) r = {0};

	if (vm_test_skip_without_image())
		return;
	if (getuid() != 0 || unshare == NULL) {
		g_test_skip("needs root and unshare(1) for a private /dev");
		return;
	}
	write_conf(f, "tiny", "");
	run_vm_argv0(f, NULL, unshare, args, &r);
	if (r.status != 0 && strstr(r.err, "unshare failed") != NULL) {
		g_test_skip("this sandbox forbids mount namespaces");
		return;
	}
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "ok\n");
	g_assert_nonnull(strstr(r.err, "accelerator: tcg (ACCEL=auto from default: no KVM device "
	                               "at /dev/kvm)"));
}

/* A hanging KVM under auto: the probe's deadline, then TCG. */
static void
test_auto_with_hanging_kvm(Fixture *f, gconstpointer data)
{
	g_autofree gchar *qemu = write_script(f, "hang-qemu", "#!/bin/sh\nexec sleep 60\n");
	g_autofree gchar *hook = g_strdup_printf("QSIM_KVM_PROBE_QEMU=%s", qemu);
	const gchar *env[] = {hook, "QSIM_KVM_PROBE_TIMEOUT=1", NULL};
	const gchar *args[] = {"run-vm", "tiny", "--", "echo", "ok", NULL};
	g_auto(RunVm) r = {0};

	if (vm_test_skip_without_image())
		return;
	if (!qsim_kvm_probe_check_device("/dev/kvm", NULL)) {
		g_test_skip("no usable /dev/kvm here: the device check decides before any QEMU "
		            "(see /qsim/vm/accel/probe-hang for the deadline itself)");
		return;
	}
	write_conf(f, "tiny", "");
	run_vm(f, env, args, &r);
	g_assert_cmpint(r.status, ==, 0);
	g_assert_cmpstr(r.out, ==, "ok\n");
	g_assert_nonnull(strstr(r.err, "did not boot a test kernel within 1.0 s"));
}

/* This host's real KVM, whatever it is: auto must pick what really runs, and a forced
 * ACCEL=kvm must either work (KVM works) or fail fast naming KVM (it does not). */
static void
test_real_host(Fixture *f, gconstpointer data)
{
	const gchar *auto_args[] = {"run-vm", "tiny", "--", "echo", "ok", NULL};
	const gchar *kvm_args[] = {"--accel", "kvm", "run-vm", "tiny", "--", "echo", "ok", NULL};
	const gchar *silent_args[] = {"run-vm", "silent", "--", "echo", "ok", NULL};
	const gchar *env[] = {"QSIM_KVM_CONSOLE_TIMEOUT=8", NULL};
	g_auto(RunVm) a = {0};
	g_auto(RunVm) k = {0};
	g_auto(RunVm) s = {0};
	gboolean kvm_works;

	if (vm_test_skip_without_image())
		return;
	write_conf(f, "tiny", "");
	run_vm(f, NULL, auto_args, &a);
	g_assert_cmpint(a.status, ==, 0);
	g_assert_cmpstr(a.out, ==, "ok\n");
	kvm_works = strstr(a.err, "accelerator: kvm (ACCEL=auto") != NULL;
	g_assert_true(kvm_works || strstr(a.err, "accelerator: tcg (ACCEL=auto") != NULL);
	if (!kvm_works && qsim_kvm_probe_check_device("/dev/kvm", NULL))
		g_test_message("this host's /dev/kvm opens but cannot run a guest");

	run_vm(f, env, kvm_args, &k);
	if (kvm_works) {
		g_assert_cmpint(k.status, ==, 0);
		g_assert_cmpstr(k.out, ==, "ok\n");
	} else {
		g_assert_cmpint(k.status, !=, 0);
		g_assert_nonnull(strstr(k.err, "KVM"));
		g_assert_nonnull(strstr(k.err, "ACCEL=kvm"));
		/* fails fast: the console watchdog (8 s here) or QEMU's own death, not
		 * BOOT_TIMEOUT (60 s) */
		g_assert_cmpfloat(k.seconds, <, 45);
	}

	/* a CPU model the host's KVM cannot run silently (qemu64 on a nested PVM host):
	 * the console watchdog names KVM */
	write_conf(f, "silent", "ACCEL=kvm\nCPU_MODEL=qemu64\n");
	if (!kvm_works && qsim_kvm_probe_check_device("/dev/kvm", NULL)) {
		run_vm(f, env, silent_args, &s);
		g_assert_cmpint(s.status, !=, 0);
		g_assert_nonnull(strstr(s.err, "KVM"));
		g_assert_nonnull(strstr(s.err, "ACCEL=kvm from silent.conf"));
	} else if (!kvm_works) {
		g_test_message("no /dev/kvm: the forced-KVM case above failed at QEMU's start");
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("/qsim/vm/accel/probe-no-device", test_no_device);
	ADD("/qsim/vm/accel/probe-not-kvm-device", test_not_kvm_device);
	ADD("/qsim/vm/accel/probe-hang", test_hang);
	ADD("/qsim/vm/accel/probe-fail", test_fail);
	ADD("/qsim/vm/accel/probe-no-kernel", test_no_kernel);
	ADD("/qsim/vm/accel/probe-cache-key", test_cache_key);
	ADD("/qsim/vm/accel/probe-boots-marker", test_boots_marker);
	ADD("/qsim/vm/accel/bogus-refused", test_bogus_refused);
	ADD("/qsim/vm/accel/tcg-works", test_tcg_works);
	ADD("/qsim/vm/accel/auto-without-kvm", test_auto_without_kvm);
	ADD("/qsim/vm/accel/auto-hidden-kvm", test_auto_hidden_kvm);
	ADD("/qsim/vm/accel/auto-with-hanging-kvm", test_auto_with_hanging_kvm);
	ADD("/qsim/vm/accel/real-host", test_real_host);
	return g_test_run();
}
