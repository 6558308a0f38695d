#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "qsim-kvm-probe.h"
#include "qsim-proc-watch.h"

/* What the probe keeps of QEMU's output: enough for the marker and a last error line. */
#define PROBE_OUTPUT_MAX 8192
/* after QEMU exits, how long its output pipe gets to deliver the last bytes */
#define PROBE_DRAIN_MS 1000

/* ---- cache key ------------------------------------------------------------ */

static void
key_add_file(GChecksum *sum, const gchar *label, const gchar *path)
{
	g_autofree gchar *line = NULL;
	GStatBuf st;

	if (path != NULL && g_stat(path, &st) == 0)
		line = g_strdup_printf("%s=%s:%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT
		                       ":%" G_GUINT64_FORMAT ":%ld\n",
		                       label, path, (gint64)st.st_dev, (gint64)st.st_ino,
		                       (guint64)st.st_size, (long)st.st_mtime);
	else
		line = g_strdup_printf("%s=%s:absent\n", label, path != NULL ? path : "");
	g_checksum_update(sum, (const guchar *)line, -1);
}

static void
key_add_text_file(GChecksum *sum, const gchar *label, const gchar *path)
{
	g_autofree gchar *text = NULL;

	g_checksum_update(sum, (const guchar *)label, -1);
	if (g_file_get_contents(path, &text, NULL, NULL))
		g_checksum_update(sum, (const guchar *)text, -1);
	g_checksum_update(sum, (const guchar *)"\n", 1);
}

/* the loaded KVM modules (kvm_intel, kvm_amd, kvm_pvm...) say which hypervisor answers */
static void
key_add_kvm_modules(GChecksum *sum)
{
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;

	g_checksum_update(sum, (const guchar *)"modules=", -1);
	if (!g_file_get_contents("/proc/modules", &text, NULL, NULL))
		return;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *sp = strchr(lines[i], ' ');

		if (!g_str_has_prefix(lines[i], "kvm") || sp == NULL)
			continue;
		g_checksum_update(sum, (const guchar *)lines[i], sp - lines[i]);
		g_checksum_update(sum, (const guchar *)",", 1);
	}
	g_checksum_update(sum, (const guchar *)"\n", 1);
}

/**
 * qsim_kvm_probe_cache_key:
 * @params: what the probe would run
 *
 * Names everything that can change the probe's answer: the QEMU binary (a new version is
 * a new file), the host kernel and this boot of it (a nested hypervisor below may differ
 * after a reboot), the KVM device and modules, the probe kernel and initrd, and the
 * deadline. Cheap: a few stat() calls and small /proc reads.
 *
 * Returns: (transfer full): "v1:" and a sha256 in hex
 */
gchar *
qsim_kvm_probe_cache_key(const QsimKvmProbeParams *params)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree gchar *qemu = NULL;
	g_autofree gchar *misc = NULL;
	struct utsname uts;

	qemu = g_path_is_absolute(params->qemu) ? g_strdup(params->qemu)
	                                        : g_find_program_in_path(params->qemu);
	key_add_file(sum, "qemu", qemu != NULL ? qemu : params->qemu);
	if (uname(&uts) == 0) {
		g_autofree gchar *k = g_strdup_printf("kernel=%s %s %s %s\n", uts.sysname,
		                                      uts.release, uts.version, uts.machine);
		g_checksum_update(sum, (const guchar *)k, -1);
	}
	key_add_text_file(sum, "boot=", "/proc/sys/kernel/random/boot_id");
	key_add_file(sum, "device", params->device);
	{
		GStatBuf st;
		if (g_stat(params->device, &st) == 0) {
			g_autofree gchar *rdev =
			    g_strdup_printf("rdev=%u:%u\n", major(st.st_rdev), minor(st.st_rdev));
			g_checksum_update(sum, (const guchar *)rdev, -1);
		}
	}
	key_add_kvm_modules(sum);
	key_add_file(sum, "probe_kernel", params->kernel);
	key_add_file(sum, "probe_initrd", params->initrd);
	misc = g_strdup_printf("timeout=%u\n", params->timeout_ms);
	g_checksum_update(sum, (const guchar *)misc, -1);
	return g_strconcat("v1:", g_checksum_get_string(sum), NULL);
}

/**
 * qsim_kvm_probe_check_device:
 * @device: normally /dev/kvm
 *
 * The cheap half of the answer: the device must open read-write and speak the KVM API.
 * Opening is not enough (a nested hypervisor may accept the open and then fail to run a
 * guest), which is why the probe boots a kernel after this.
 *
 * Returns: %TRUE when @device looks like a usable KVM
 */
gboolean
qsim_kvm_probe_check_device(const gchar *device, GError **error)
{
	gint fd = g_open(device, O_RDWR | O_CLOEXEC, 0);
	gint version;

	if (fd < 0) {
		gint err = errno;
		g_set_error(error, QSIM_ERROR, err == ENOENT ? QSIM_ERROR_NOT_FOUND : QSIM_ERROR_IO,
		            err == ENOENT ? "no KVM device at %s" : "cannot open %s: %s", device,
		            g_strerror(err));
		return FALSE;
	}
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (version != KVM_API_VERSION) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
		            "%s is not a KVM device (KVM_GET_API_VERSION answered %d)", device,
		            version);
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_kvm_probe_argv:
 *
 * A VM as small as a Linux kernel allows, with nothing but the serial console: no disk,
 * no network, no reboot (a panic ends QEMU). `-cpu host` is what VMs get under KVM, so
 * the probe tests what they will use.
 *
 * Returns: (transfer full): the probe's QEMU argv
 */
gchar **
qsim_kvm_probe_argv(const QsimKvmProbeParams *params)
{
	const gchar *argv[] = {params->qemu,
	                       "-accel",
	                       "kvm",
	                       "-cpu",
	                       "host",
	                       "-m",
	                       "128M",
	                       "-smp",
	                       "1",
	                       "-nodefaults",
	                       "-no-user-config",
	                       "-display",
	                       "none",
	                       "-no-reboot",
	                       "-kernel",
	                       params->kernel,
	                       "-initrd",
	                       params->initrd,
	                       "-append",
	                       "console=ttyS0 quiet panic=-1 qsim.probe=1",
	                       "-serial",
	                       "stdio",
	                       NULL};

	return g_strdupv((gchar **)argv);
}

/* ---- the probe ------------------------------------------------------------ */

typedef struct {
	GSubprocess *proc;
	GString *output;
	gchar *device;
	gchar *host;
	gchar *cache_key;
	guint timeout_ms;
	gint64 started_us;
	guint timeout_id;
	QsimProcWatch *watch;      /* QEMU and its console, until QEMU is reaped */
	QsimAccelVerdict *verdict; /* decided, waiting for QEMU to be reaped */
	gboolean exited;
	gboolean decided; /* d->verdict is handed over once: this stays set */
} ProbeData;

static void
probe_data_free(ProbeData *d)
{
	g_clear_handle_id(&d->timeout_id, g_source_remove);
	g_clear_pointer(&d->watch, qsim_proc_watch_free);
	if (d->proc != NULL && !d->exited)
		g_subprocess_force_exit(d->proc);
	g_clear_object(&d->proc);
	if (d->output != NULL)
		g_string_free(d->output, TRUE);
	g_free(d->device);
	g_free(d->host);
	g_free(d->cache_key);
	qsim_accel_verdict_free(d->verdict);
	g_free(d);
}

static gint64
probe_elapsed_ms(ProbeData *d)
{
	return (g_get_monotonic_time() - d->started_us) / 1000;
}

static void
probe_complete_if_done(GTask *task)
{
	ProbeData *d = g_task_get_task_data(task);

	if (d->verdict == NULL || !d->exited)
		return;
	g_task_return_pointer(task, g_steal_pointer(&d->verdict),
	                      (GDestroyNotify)qsim_accel_verdict_free);
}

/* Decides once; QEMU is killed and the task returns when QEMU has been reaped. */
static void
probe_decide(GTask *task, gboolean kvm, gchar *reason)
{
	ProbeData *d = g_task_get_task_data(task);
	g_autofree gchar *owned = reason;

	if (d->decided)
		return;
	d->decided = TRUE;
	g_clear_handle_id(&d->timeout_id, g_source_remove);
	if (d->watch != NULL)
		qsim_proc_watch_stop_output(d->watch);
	d->verdict = qsim_accel_verdict_new(d->host, d->cache_key, kvm, owned, probe_elapsed_ms(d),
	                                    g_get_real_time() / 1000);
	if (!d->exited)
		g_subprocess_force_exit(d->proc);
	probe_complete_if_done(task);
}

/* Returns: (transfer full): the last non-empty line QEMU printed, for a reason */
static gchar *
probe_last_line(ProbeData *d)
{
	g_auto(GStrv) lines = g_strsplit(d->output->str, "\n", -1);
	guint n = g_strv_length(lines);

	for (guint i = n; i > 0; i--) {
		gchar *line = g_strstrip(lines[i - 1]);
		if (line[0] != '\0') {
			/* bounded and printable: it ends up in logs, the store and /health */
			g_autofree gchar *valid = g_utf8_make_valid(line, MIN(strlen(line), 300));
			for (gchar *p = valid; *p != '\0'; p++)
				if ((guchar)*p < 0x20 || *p == 0x7f)
					*p = ' ';
			return g_steal_pointer(&valid);
		}
	}
	return g_strdup("no output");
}

/* QEMU exited before the marker: decided once its output is read to the end, so the
 * reason quotes its last words (the exit is often seen before the pipe's final bytes) */
static void
probe_done_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	ProbeData *d = g_task_get_task_data(task);
	g_autofree gchar *last = NULL;
	g_autofree gchar *status = NULL;

	if (d->decided)
		return;
	last = probe_last_line(d);
	status =
	    g_subprocess_get_if_signaled(d->proc)
	        ? g_strdup_printf("was killed by signal %d", g_subprocess_get_term_sig(d->proc))
	        : g_strdup_printf("exited with status %d", g_subprocess_get_exit_status(d->proc));
	probe_decide(
	    task, FALSE,
	    g_strdup_printf("QEMU under KVM %s before the test kernel booted: %s", status, last));
}

static void
probe_exited_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	ProbeData *d = g_task_get_task_data(task);

	d->exited = TRUE;
	probe_complete_if_done(task);
}

static void
probe_output_cb(const guint8 *data, gsize len, gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	ProbeData *d = g_task_get_task_data(task);

	if (d->decided)
		return;
	g_string_append_len(d->output, (const gchar *)data, (gssize)len);
	if (strstr(d->output->str, QSIM_KVM_PROBE_MARKER) != NULL) {
		probe_decide(task, TRUE,
		             g_strdup_printf("KVM at %s booted a test kernel in %.2f s", d->device,
		                             probe_elapsed_ms(d) / 1000.0));
		return;
	}
	/* keep the tail: the marker is one short line and errors come last */
	if (d->output->len > PROBE_OUTPUT_MAX)
		g_string_erase(d->output, 0, (gssize)(d->output->len - PROBE_OUTPUT_MAX / 2));
}

static gboolean
probe_timeout_cb(gpointer user_data)
{
	GTask *task = G_TASK(user_data);
	ProbeData *d = g_task_get_task_data(task);

	d->timeout_id = 0;
	probe_decide(task, FALSE,
	             g_strdup_printf("KVM at %s did not boot a test kernel within %.1f s",
	                             d->device, d->timeout_ms / 1000.0));
	return G_SOURCE_REMOVE;
}

static GTask *
probe_task_new(const QsimKvmProbeParams *params, GCancellable *cancellable,
               GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(NULL, cancellable, callback, user_data);
	ProbeData *d = g_new0(ProbeData, 1);

	g_task_set_source_tag(task, qsim_kvm_probe_run_async);
	g_task_set_task_data(task, d, (GDestroyNotify)probe_data_free);
	d->device = g_strdup(params->device);
	d->host = g_strdup(qsim_host_id_get());
	d->cache_key = qsim_kvm_probe_cache_key(params);
	d->timeout_ms = params->timeout_ms;
	d->output = g_string_new(NULL);
	d->started_us = g_get_monotonic_time();
	return task;
}

/* The kernel's half: QEMU under KVM, the marker within the deadline. */
static void
probe_boot(GTask *task, const QsimKvmProbeParams *params)
{
	ProbeData *d = g_task_get_task_data(task);
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;

	if (!g_file_test(params->kernel, G_FILE_TEST_IS_REGULAR) ||
	    !g_file_test(params->initrd, G_FILE_TEST_IS_REGULAR)) {
		d->exited = TRUE;
		probe_decide(task, FALSE,
		             g_strdup_printf("no probe kernel at %s and %s to test KVM with (build "
		                             "the tiny guest, or set KVM_PROBE_KERNEL and "
		                             "KVM_PROBE_INITRD)",
		                             params->kernel, params->initrd));
		return;
	}
	argv = qsim_kvm_probe_argv(params);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDERR_MERGE);
	/* the probe dies with its parent, like a VM's QEMU */
	g_subprocess_launcher_set_child_setup(launcher, qsim_proc_child_setup, NULL, NULL);
	d->proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv, &error);
	if (d->proc == NULL) {
		d->exited = TRUE;
		probe_decide(task, FALSE,
		             g_strdup_printf("cannot run %s for the KVM probe: %s", params->qemu,
		                             error->message));
		return;
	}
	g_debug("KVM probe: QEMU pid %s", g_subprocess_get_identifier(d->proc));
	d->timeout_id = g_timeout_add(params->timeout_ms, probe_timeout_cb, task);
	/* the watch keeps the task until QEMU is reaped: the verdict waits for that */
	d->watch = qsim_proc_watch_new(d->proc, g_subprocess_get_stdout_pipe(d->proc),
	                               PROBE_DRAIN_MS, probe_output_cb, probe_exited_cb,
	                               probe_done_cb, g_object_ref(task), g_object_unref);
}

/**
 * qsim_kvm_probe_run_async:
 * @params: what to check and run; copied
 *
 * Checks the device (qsim_kvm_probe_check_device()), then boots @params->kernel under KVM
 * to its qsim.probe=1 marker. The answer is always a verdict (KVM or not, and why). It
 * never takes longer than the deadline plus the time to reap QEMU, and it leaves no
 * process behind.
 */
void
qsim_kvm_probe_run_async(const QsimKvmProbeParams *params, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = probe_task_new(params, cancellable, callback, user_data);
	ProbeData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;

	if (!qsim_kvm_probe_check_device(params->device, &error)) {
		d->exited = TRUE;
		probe_decide(task, FALSE, g_strdup(error->message));
		return;
	}
	probe_boot(task, params);
}

/**
 * qsim_kvm_probe_boot_async:
 *
 * Only the boot half of qsim_kvm_probe_run_async(), without the device check: the test
 * suite runs it with stand-in QEMU binaries on hosts without KVM.
 */
void
qsim_kvm_probe_boot_async(const QsimKvmProbeParams *params, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = probe_task_new(params, cancellable, callback, user_data);

	probe_boot(task, params);
}

/**
 * qsim_kvm_probe_run_finish:
 *
 * Returns: (transfer full): the verdict, or %NULL with @error when cancelled
 */
QsimAccelVerdict *
qsim_kvm_probe_run_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}
