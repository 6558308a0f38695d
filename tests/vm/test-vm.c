#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-commands.h"
#include "vm-test-util.h"
#include "vm/qsim-vm-argv.h"
#include "vm/qsim-vm-overlay.h"
#include "vm/qsim-vm-port.h"
#include "vm/qsim-vm-rundir.h"

/* Each test boots its own VM in its own temporary RUN_DIR. */
typedef struct {
	gchar *run_root;
	GByteArray *console;
	guint exited_reason;
	gchar *exited_message;
	gboolean exited;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->run_root = g_dir_make_tmp("qsim-vmtest-XXXXXX", &error);
	g_assert_no_error(error);
	f->console = g_byte_array_new();
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_autoptr(GDir) dir = g_dir_open(f->run_root, 0, NULL);

	/* every VM removes its run dir whichever way it ended: the root must be empty */
	g_assert_nonnull(dir);
	g_assert_null(g_dir_read_name(dir));
	g_rmdir(f->run_root);
	g_free(f->run_root);
	g_free(f->exited_message);
	g_byte_array_unref(f->console);
}

static void
console_cb(QsimVm *vm, GBytes *chunk, gpointer user_data)
{
	Fixture *f = user_data;
	gsize len = 0;
	const guint8 *d = g_bytes_get_data(chunk, &len);

	g_byte_array_append(f->console, d, len);
}

static void
exited_cb(QsimVm *vm, guint reason, const gchar *message, gpointer user_data)
{
	Fixture *f = user_data;

	g_assert_false(f->exited); /* emitted once */
	f->exited = TRUE;
	f->exited_reason = reason;
	f->exited_message = g_strdup(message);
}

static QsimVm *
new_vm(Fixture *f, const gchar *conf)
{
	g_autoptr(GError) error = NULL;
	QsimVmConfig *config = vm_test_load_config(conf, &error);
	QsimVm *vm;

	g_assert_no_error(error);
	vm = qsim_vm_new(config, f->run_root);
	g_signal_connect(vm, "console-output", G_CALLBACK(console_cb), f);
	g_signal_connect(vm, "exited", G_CALLBACK(exited_cb), f);
	return vm;
}

static QsimVm *
boot_vm(Fixture *f, const gchar *conf, QsimGuest **guest)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) vm = new_vm(f, conf);

	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_RUNNING);
	g_assert_true(g_file_test(qsim_vm_get_run_dir(vm), G_FILE_TEST_IS_DIR));
	g_assert_true(vm_test_wait_ready(vm, &error));
	g_assert_no_error(error);
	if (guest != NULL) {
		*guest = vm_test_guest_connect(vm, &error);
		g_assert_no_error(error);
		g_assert_nonnull(*guest);
	}
	return g_steal_pointer(&vm);
}

static gchar *
sha256_file(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GMappedFile) map = g_mapped_file_new(path, FALSE, &error);

	g_assert_no_error(error);
	return g_compute_checksum_for_data(G_CHECKSUM_SHA256,
	                                   (const guchar *)g_mapped_file_get_contents(map),
	                                   g_mapped_file_get_length(map));
}

static void
assert_exited_and_clean(Fixture *f, QsimVm *vm, gchar *run_dir, QsimVmExitReason reason)
{
	g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_EXITED);
	g_assert_true(f->exited);
	g_assert_cmpuint(f->exited_reason, ==, reason);
	g_assert_cmpint(qsim_vm_get_exit_reason(vm), ==, reason);
	g_assert_cmpstr(qsim_vm_get_exit_message(vm), ==, f->exited_message);
	g_assert_false(g_file_test(run_dir, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(qsim_vm_get_ssh_port(vm), ==, 0);
}

static void
test_exec_status(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GByteArray) err = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *run_dir = NULL;
	g_autofree gchar *state = NULL;
	gint status = -1;

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny", &guest);
	run_dir = g_strdup(qsim_vm_get_run_dir(vm));
	/* the pidfiles an orphan recovery needs are there while it runs */
	state = g_build_filename(run_dir, QSIM_VM_RUNDIR_STATE, NULL);
	g_assert_true(g_file_test(state, G_FILE_TEST_IS_REGULAR));
	/* the console was delivered, including the readiness marker */
	g_assert_nonnull(
	    g_strstr_len((const gchar *)f->console->data, f->console->len, "QSIM-READY"));

	g_assert_true(
	    vm_test_exec(guest, "echo out; echo err >&2; exit 3", out, err, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(out->data, out->len, "out\n", 4);
	g_assert_cmpmem(err->data, err->len, "err\n", 4);
	g_assert_cmpint(status, ==, 3);

	/* the guest has acpid: the power button ends it cleanly */
	g_assert_true(vm_test_shutdown(vm, 20000, &error));
	g_assert_no_error(error);
	assert_exited_and_clean(f, vm, run_dir, QSIM_VM_EXIT_POWEROFF);
}

static void
test_big_output(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GByteArray) err = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *got = NULL;
	g_autofree gchar *want = NULL;
	gint status = -1;

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny", &guest);
	g_assert_true(vm_test_exec(guest,
	                           "head -c 20000000 /dev/urandom > /tmp/big && "
	                           "sha256sum /tmp/big >&2 && cat /tmp/big",
	                           out, err, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, 0);
	g_assert_cmpuint(out->len, ==, 20000000);
	got = g_compute_checksum_for_data(G_CHECKSUM_SHA256, out->data, out->len);
	g_assert_cmpuint(err->len, >=, 64);
	want = g_strndup((const gchar *)err->data, 64);
	g_assert_cmpstr(got, ==, want);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
}

typedef struct {
	GByteArray *out;
	gboolean done;
	gint status;
	GError *error;
} BgExec;

static void
bg_output_cb(QsimGuestStream stream, GBytes *chunk, gpointer user_data)
{
	BgExec *b = user_data;
	gsize len = 0;
	const guint8 *d = g_bytes_get_data(chunk, &len);

	if (stream == QSIM_GUEST_STREAM_STDOUT)
		g_byte_array_append(b->out, d, len);
}

static void
bg_exec_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	BgExec *b = user_data;

	qsim_guest_exec_finish(QSIM_GUEST(source), res, &b->status, NULL, &b->error);
	b->done = TRUE;
}

typedef struct {
	gboolean done;
	gchar *status;
	GError *error;
} StatusWait;

static void
query_status_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StatusWait *s = user_data;

	qsim_qmp_client_query_status_finish(QSIM_QMP_CLIENT(source), res, NULL, &s->status,
	                                    &s->error);
	s->done = TRUE;
}

static gchar *
query_status(QsimVm *vm)
{
	StatusWait s = {FALSE, NULL, NULL};

	qsim_qmp_client_query_status_async(qsim_vm_get_qmp(vm), 10000, NULL, query_status_cb, &s);
	vm_test_iterate_until(&s.done, 60);
	g_assert_true(s.done);
	g_assert_no_error(s.error);
	return s.status;
}

static void
test_pause_resume(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *paused = NULL;
	g_autofree gchar *running = NULL;
	BgExec b = {g_byte_array_new(), FALSE, -1, NULL};
	gboolean never = FALSE;

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny", &guest);
	qsim_guest_exec_async(guest, "echo start; sleep 1; echo end", bg_output_cb, &b, NULL,
	                      bg_exec_cb, &b);
	while (b.out->len == 0 && !b.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(b.done);

	g_assert_true(vm_test_pause(vm, TRUE, &error));
	g_assert_no_error(error);
	g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_PAUSED);
	paused = query_status(vm);
	g_assert_cmpstr(paused, ==, "paused");
	/* let the host run a while: a paused guest cannot finish its command */
	vm_test_iterate_until(&never, 2);
	g_assert_false(b.done);

	g_assert_true(vm_test_pause(vm, FALSE, &error));
	g_assert_no_error(error);
	g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_RUNNING);
	running = query_status(vm);
	g_assert_cmpstr(running, ==, "running");
	vm_test_iterate_until(&b.done, 60);
	g_assert_true(b.done);
	g_assert_no_error(b.error);
	g_assert_cmpint(b.status, ==, 0);
	g_assert_cmpmem(b.out->data, b.out->len, "start\nend\n", 10);
	g_byte_array_unref(b.out);

	/* a paused VM skips ACPI on shutdown: its CPUs could not react */
	g_assert_true(vm_test_pause(vm, TRUE, &error));
	g_assert_true(vm_test_shutdown(vm, 20000, &error));
	g_assert_no_error(error);
	g_assert_cmpint(qsim_vm_get_exit_reason(vm), ==, QSIM_VM_EXIT_QUIT);
	g_assert_nonnull(strstr(qsim_vm_get_exit_message(vm), "paused"));
}

static gsize
count_byte(GByteArray *a, gsize from, guint8 c)
{
	gsize n = 0;

	for (gsize i = from; i < a->len; i++)
		n += a->data[i] == c;
	return n;
}

/* A paused console is not read: QEMU's stdout pipe fills, its serial chardev waits and so
 * does the guest writing to ttyS0. Unpaused, every byte arrives. */
static void
test_console_paused(Fixture *f, gconstpointer data)
{
	const gsize total = 300000;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *cmd = g_strdup_printf(
	    "head -c %" G_GSIZE_FORMAT " /dev/zero | tr '\\0' x >/dev/ttyS0; echo wrote", total);
	BgExec b = {g_byte_array_new(), FALSE, -1, NULL};
	gboolean never = FALSE;
	gsize before;

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny", &guest);
	qsim_vm_set_console_paused(vm, TRUE);
	before = f->console->len;
	qsim_guest_exec_async(guest, cmd, bg_output_cb, &b, NULL, bg_exec_cb, &b);
	vm_test_iterate_until(&never, 5);
	/* more than a pipe's 64 KiB: the writer cannot be done, and at most the one read in
	 * flight arrived */
	g_assert_false(b.done);
	g_assert_cmpuint(f->console->len - before, <=, 4096);

	qsim_vm_set_console_paused(vm, FALSE);
	vm_test_iterate_until(&b.done, 120);
	g_assert_true(b.done);
	g_assert_no_error(b.error);
	g_assert_cmpint(b.status, ==, 0);
	g_assert_cmpmem(b.out->data, b.out->len, "wrote\n", 6);
	g_byte_array_unref(b.out);
	g_assert_cmpuint(count_byte(f->console, before, 'x'), >=, total);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
}

static void
test_powerdown_escalation(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *run_dir = NULL;

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny-noacpi", NULL);
	run_dir = g_strdup(qsim_vm_get_run_dir(vm));
	g_assert_true(vm_test_shutdown(vm, 1500, &error));
	g_assert_no_error(error);
	assert_exited_and_clean(f, vm, run_dir, QSIM_VM_EXIT_QUIT);
	g_assert_nonnull(strstr(f->exited_message, "ignored the ACPI power button"));
}

static void
test_kill_mid_command(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autofree gchar *run_dir = NULL;
	BgExec b = {g_byte_array_new(), FALSE, -1, NULL};

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny", &guest);
	run_dir = g_strdup(qsim_vm_get_run_dir(vm));
	qsim_guest_exec_async(guest, "echo started; sleep 60", bg_output_cb, &b, NULL, bg_exec_cb,
	                      &b);
	while (b.out->len == 0 && !b.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpint(kill(qsim_vm_get_pid(vm), SIGKILL), ==, 0);
	vm_test_iterate_until(&f->exited, 60);
	vm_test_iterate_until(&b.done, 60);
	assert_exited_and_clean(f, vm, run_dir, QSIM_VM_EXIT_CRASHED);
	g_assert_nonnull(strstr(f->exited_message, "signal 9"));
	g_assert_true(b.done);
	g_assert_error(b.error, QSIM_ERROR, QSIM_ERROR_GUEST);
	g_clear_error(&b.error);
	g_byte_array_unref(b.out);
}

static void
test_base_unchanged(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *base = NULL;
	gint status = -1;

	if (vm_test_skip_without_image())
		return;
	vm = boot_vm(f, "tiny", &guest);
	base = g_strdup(qsim_vm_get_config(vm)->image_path);
	before = sha256_file(base);
	g_assert_true(vm_test_exec(guest,
	                           "dd if=/dev/urandom of=/root/scribble bs=1M count=4 2>/dev/null"
	                           " && sync && ls -l /root/scribble | wc -l",
	                           out, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, 0);
	g_assert_cmpmem(out->data, out->len, "1\n", 2);
	g_assert_true(vm_test_shutdown(vm, 20000, &error));
	g_assert_no_error(error);
	after = sha256_file(base);
	g_assert_cmpstr(before, ==, after);
}

typedef struct {
	guint n_done;
	gboolean all_done;
	GError *error;
} StartBoth;

static void
start_both_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StartBoth *both = user_data;
	g_autoptr(GError) error = NULL;

	if (!qsim_vm_start_finish(QSIM_VM(source), res, &error) && both->error == NULL)
		both->error = g_steal_pointer(&error);
	both->all_done = ++both->n_done == 2;
}

static void
test_two_at_once(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) a = NULL;
	g_autoptr(QsimVm) b = NULL;
	g_autoptr(QsimGuest) ga = NULL;
	g_autoptr(QsimGuest) gb = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) oa = g_byte_array_new();
	g_autoptr(GByteArray) ob = g_byte_array_new();
	StartBoth both = {0, FALSE, NULL};
	gint sa = -1, sb = -1;

	if (vm_test_skip_without_image())
		return;
	a = new_vm(f, "tiny");
	b = new_vm(f, "tiny");
	g_signal_handlers_disconnect_by_data(a, f);
	g_signal_handlers_disconnect_by_data(b, f);
	/* both starts in flight on the same loop at the same time */
	qsim_vm_start_async(a, NULL, start_both_cb, &both);
	qsim_vm_start_async(b, NULL, start_both_cb, &both);
	vm_test_iterate_until(&both.all_done, 120);
	g_assert_true(both.all_done);
	g_assert_no_error(both.error);
	g_assert_cmpuint(qsim_vm_get_ssh_port(a), !=, qsim_vm_get_ssh_port(b));
	g_assert_cmpstr(qsim_vm_get_run_dir(a), !=, qsim_vm_get_run_dir(b));
	g_assert_true(vm_test_wait_ready(a, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(b, &error));
	g_assert_no_error(error);
	ga = vm_test_guest_connect(a, &error);
	g_assert_no_error(error);
	gb = vm_test_guest_connect(b, &error);
	g_assert_no_error(error);
	g_assert_true(vm_test_exec(ga, "echo a", oa, NULL, &sa, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_exec(gb, "echo b", ob, NULL, &sb, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(oa->data, oa->len, "a\n", 2);
	g_assert_cmpmem(ob->data, ob->len, "b\n", 2);
	g_assert_true(vm_test_shutdown(a, 0, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_shutdown(b, 0, &error));
	g_assert_no_error(error);
}

static void
test_bad_kernel(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimVmConfig) bad = NULL;
	QsimVmConfig *config;

	if (vm_test_skip_without_image())
		return;
	/* the config layer already refuses a kernel that does not exist ... */
	bad = vm_test_load_config("tiny-badkernel", &error);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_assert_null(bad);
	g_clear_error(&error);

	/* ... and when it vanishes afterwards QEMU's own reason comes back, without a hang */
	config = vm_test_load_config("tiny", &error);
	g_assert_no_error(error);
	g_free(config->kernel_path);
	config->kernel_path = g_strdup("/nonexistent/qsim-test-vmlinuz");
	vm = qsim_vm_new(config, f->run_root);
	g_signal_connect(vm, "exited", G_CALLBACK(exited_cb), f);
	g_assert_false(vm_test_start(vm, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_VM);
	g_assert_nonnull(strstr(error->message, "/nonexistent/qsim-test-vmlinuz"));
	g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_EXITED);
	g_assert_cmpint(qsim_vm_get_exit_reason(vm), ==, QSIM_VM_EXIT_START_FAILED);
	g_assert_true(f->exited);
}

/* A stand-in for QEMU: a shell script that does something to its QMP socket (fd 3). */
static gchar *
write_fake_qemu(Fixture *f, const gchar *body)
{
	g_autoptr(GError) error = NULL;
	gchar *path = g_build_filename(f->run_root, "fake-qemu", NULL);
	g_autofree gchar *script = g_strdup_printf("#!/bin/sh\n%s\n", body);

	g_assert_true(g_file_set_contents(path, script, -1, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, 0755), ==, 0);
	return path;
}

/* QMP runs over a socket pair handed to QEMU: a QEMU that dies before its greeting fails
 * the start with QEMU's own words, and one that closes the monitor but lives on is
 * killed, with no polling for a socket path in either case. */
static void
test_qmp_before_greeting(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *body;
		const gchar *expect;
	} cases[] = {
	    {"echo 'qemu: cannot start: fake failure' >&2; exit 1", "fake failure"},
	    {"exec 3>&-; exec sleep 60", "QEMU's monitor failed"},
	    {"echo '{\"not\": \"a greeting\"}' >&3; exec sleep 60", "QEMU's monitor failed"},
	};

	if (vm_test_skip_without_image())
		return;
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimVm) vm = NULL;
		g_autofree gchar *fake = write_fake_qemu(f, cases[i].body);
		QsimVmConfig *config = vm_test_load_config("tiny", &error);

		g_assert_no_error(error);
		vm = qsim_vm_new(config, f->run_root);
		qsim_vm_set_qemu_binary(vm, fake);
		f->exited = FALSE;
		g_clear_pointer(&f->exited_message, g_free);
		g_signal_connect(vm, "exited", G_CALLBACK(exited_cb), f);
		g_assert_false(vm_test_start(vm, &error));
		g_assert_nonnull(error);
		g_test_message("case %u: %s", i, error->message);
		g_assert_nonnull(strstr(error->message, cases[i].expect));
		g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_EXITED);
		g_assert_cmpint(qsim_vm_get_exit_reason(vm), ==, QSIM_VM_EXIT_START_FAILED);
		g_assert_true(f->exited);
		g_assert_cmpint(g_unlink(fake), ==, 0);
	}
}

static void
test_port_taken(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(GSocket) squatter = NULL;
	g_autoptr(GSocketAddress) any = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	guint16 taken;
	gint status = -1;

	if (vm_test_skip_without_image())
		return;
	/* another process holds the port qsim tries first: QEMU fails to forward it and
	 * the start must go on with another port instead of failing */
	squatter =
	    g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	any = g_inet_socket_address_new(lo, 0);
	g_assert_true(g_socket_bind(squatter, any, FALSE, &error));
	g_assert_true(g_socket_listen(squatter, &error));
	bound = g_socket_get_local_address(squatter, &error);
	g_assert_no_error(error);
	taken = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));

	vm = new_vm(f, "tiny");
	qsim_vm_set_ssh_port_hint(vm, taken);
	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_vm_get_ssh_port(vm), !=, taken);
	g_assert_cmpuint(qsim_vm_get_ssh_port(vm), !=, 0);
	g_assert_true(vm_test_wait_ready(vm, &error));
	g_assert_no_error(error);
	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);
	g_assert_true(vm_test_exec(guest, "echo ok", out, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(out->data, out->len, "ok\n", 3);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
}

typedef struct {
	gboolean done;
	GAsyncResult *res;
} ReadyWait;

static void
ready_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ReadyWait *w = user_data;

	w->res = g_object_ref(res);
	w->done = TRUE;
}

static gboolean
cancel_cb(gpointer user_data)
{
	g_cancellable_cancel(user_data);
	return G_SOURCE_REMOVE;
}

static void
test_ready_timeout(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	ReadyWait w = {FALSE, NULL};
	g_autofree gchar *run_dir = NULL;

	if (vm_test_skip_without_image())
		return;
	/* the guest boots but never starts sshd nor prints the marker */
	vm = new_vm(f, "tiny-nossh");
	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	run_dir = g_strdup(qsim_vm_get_run_dir(vm));
	qsim_vm_wait_ready_async(vm, g_get_monotonic_time() + 3 * G_USEC_PER_SEC, NULL,
	                         ready_wait_cb, &w);
	vm_test_iterate_until(&w.done, 60);
	g_assert_true(w.done);
	g_assert_false(qsim_vm_wait_ready_finish(vm, w.res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT);
	/* the message says what was awaited */
	g_assert_nonnull(strstr(error->message, "QSIM-READY"));
	g_clear_error(&error);
	g_clear_object(&w.res);

	/* a caller's cancellable ends the wait early, and the VM stays usable */
	w.done = FALSE;
	qsim_vm_wait_ready_async(vm, g_get_monotonic_time() + 60 * G_USEC_PER_SEC, cancellable,
	                         ready_wait_cb, &w);
	g_timeout_add(300, cancel_cb, cancellable);
	vm_test_iterate_until(&w.done, 30);
	g_assert_true(w.done);
	g_assert_false(qsim_vm_wait_ready_finish(vm, w.res, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CANCELLED);
	g_clear_error(&error);
	g_clear_object(&w.res);
	g_assert_cmpint(qsim_vm_get_state(vm), ==, QSIM_VM_STATE_RUNNING);

	/* a VM is started once */
	g_assert_false(vm_test_start(vm, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_CONFLICT);
	g_clear_error(&error);

	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
	assert_exited_and_clean(f, vm, run_dir, QSIM_VM_EXIT_QUIT);
	g_assert_false(vm_test_wait_ready(vm, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_VM);
}

typedef struct {
	gboolean done;
	GError *error;
} OverlayWait;

static void
overlay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	OverlayWait *w = user_data;

	qsim_vm_overlay_create_finish(res, &w->error);
	w->done = TRUE;
}

static void
test_orphan_kill(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *run_dir = NULL;
	g_autofree gchar *overlay = NULL;
	g_autofree gchar *qmp = NULL;
	g_auto(GStrv) argv = NULL;
	OverlayWait w = {FALSE, NULL};
	guint16 port;
	GPid pid;

	if (vm_test_skip_without_image())
		return;
	/* what a daemon that died leaves behind: a real QEMU in a run dir with pidfiles */
	config = vm_test_load_config("tiny", &error);
	g_assert_no_error(error);
	run_dir = qsim_vm_rundir_create(f->run_root, "tiny", &error);
	g_assert_no_error(error);
	overlay = g_build_filename(run_dir, QSIM_VM_RUNDIR_OVERLAY, NULL);
	qsim_vm_overlay_create_async(QSIM_QEMU_IMG_BINARY, config->image_path, config->format,
	                             overlay, NULL, overlay_cb, &w);
	vm_test_iterate_until(&w.done, 60);
	g_assert_no_error(w.error);
	port = qsim_vm_port_reserve(&error);
	g_assert_no_error(error);
	argv = qsim_vm_argv_build(QSIM_QEMU_BINARY, config, run_dir, port, FALSE, &error);
	g_assert_no_error(error);
	proc = g_subprocess_newv((const gchar *const *)argv,
	                         G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
	                         &error);
	g_assert_no_error(error);
	pid = (GPid)g_ascii_strtoll(g_subprocess_get_identifier(proc), NULL, 10);
	g_assert_true(qsim_vm_rundir_write_state(run_dir, pid, "req-orphan", &error));
	g_assert_no_error(error);
	qmp = g_build_filename(run_dir, QSIM_VM_RUNDIR_QMP, NULL);
	/* QEMU is up once its QMP socket exists */
	for (guint i = 0; i < 1000 && !g_file_test(qmp, G_FILE_TEST_EXISTS); i++)
		g_usleep(20000);
	g_assert_true(g_file_test(qmp, G_FILE_TEST_EXISTS));

	g_assert_true(qsim_vm_kill_orphan(run_dir, &error));
	g_assert_no_error(error);
	g_assert_true(g_subprocess_wait(proc, NULL, &error));
	g_assert_true(g_subprocess_get_if_signaled(proc));
	g_assert_cmpint(g_subprocess_get_term_sig(proc), ==, SIGKILL);
	g_assert_false(g_file_test(run_dir, G_FILE_TEST_EXISTS));
	qsim_vm_port_release(port);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/qsim/vm/exec-status", Fixture, NULL, fixture_setup, test_exec_status,
	           fixture_teardown);
	g_test_add("/qsim/vm/big-output", Fixture, NULL, fixture_setup, test_big_output,
	           fixture_teardown);
	g_test_add("/qsim/vm/pause-resume", Fixture, NULL, fixture_setup, test_pause_resume,
	           fixture_teardown);
	g_test_add("/qsim/vm/console-paused", Fixture, NULL, fixture_setup, test_console_paused,
	           fixture_teardown);
	g_test_add("/qsim/vm/powerdown-escalation", Fixture, NULL, fixture_setup,
	           test_powerdown_escalation, fixture_teardown);
	g_test_add("/qsim/vm/kill-mid-command", Fixture, NULL, fixture_setup, test_kill_mid_command,
	           fixture_teardown);
	g_test_add("/qsim/vm/base-unchanged", Fixture, NULL, fixture_setup, test_base_unchanged,
	           fixture_teardown);
	g_test_add("/qsim/vm/two-at-once", Fixture, NULL, fixture_setup, test_two_at_once,
	           fixture_teardown);
	g_test_add("/qsim/vm/port-taken", Fixture, NULL, fixture_setup, test_port_taken,
	           fixture_teardown);
	g_test_add("/qsim/vm/ready-timeout", Fixture, NULL, fixture_setup, test_ready_timeout,
	           fixture_teardown);
	g_test_add("/qsim/vm/bad-kernel", Fixture, NULL, fixture_setup, test_bad_kernel,
	           fixture_teardown);
	g_test_add("/qsim/vm/orphan-kill", Fixture, NULL, fixture_setup, test_orphan_kill,
	           fixture_teardown);
	g_test_add("/qsim/vm/qmp-before-greeting", Fixture, NULL, fixture_setup,
	           test_qmp_before_greeting, fixture_teardown);
	return g_test_run();
}
