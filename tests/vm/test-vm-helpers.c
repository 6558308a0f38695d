#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "vm/qsim-serial-reader.h"
#include "vm/qsim-vm-overlay.h"
#include "vm/qsim-vm-port.h"
#include "vm/qsim-vm-rundir.h"
#include "vm/qsim-vm-tail.h"

static gchar *
make_tmp(void)
{
	g_autoptr(GError) error = NULL;
	gchar *dir = g_dir_make_tmp("qsim-vmh-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

static void
test_tail(void)
{
	g_autoptr(QsimVmTail) tail = qsim_vm_tail_new(8);
	g_autofree gchar *s1 = NULL;
	g_autofree gchar *s2 = NULL;
	g_autofree gchar *s3 = NULL;

	qsim_vm_tail_append(tail, (const guint8 *)"abc", 3);
	s1 = qsim_vm_tail_to_string(tail);
	g_assert_cmpstr(s1, ==, "abc");
	qsim_vm_tail_append(tail, (const guint8 *)"defghij", 7);
	s2 = qsim_vm_tail_to_string(tail);
	g_assert_cmpstr(s2, ==, "cdefghij");
	/* one append larger than the capacity keeps its end; invalid UTF-8 is replaced */
	qsim_vm_tail_append(tail, (const guint8 *)"0123456789\xff\n", 12);
	s3 = qsim_vm_tail_to_string(tail);
	g_assert_cmpstr(s3, ==, "456789\xef\xbf\xbd");
}

static void
test_port(void)
{
	g_autoptr(GError) error = NULL;
	guint16 ports[16];

	for (guint i = 0; i < G_N_ELEMENTS(ports); i++) {
		ports[i] = qsim_vm_port_reserve(&error);
		g_assert_no_error(error);
		g_assert_cmpuint(ports[i], >, 0);
		for (guint j = 0; j < i; j++)
			g_assert_cmpuint(ports[i], !=, ports[j]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(ports); i++)
		qsim_vm_port_release(ports[i]);
}

static void
test_rundir(void)
{
	g_autofree gchar *root = make_tmp();
	g_autofree gchar *sub = g_build_filename(root, "deeper", NULL);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = qsim_vm_rundir_create(sub, "tiny", &error);
	g_autofree gchar *f = NULL;
	g_autofree gchar *base = NULL;
	g_autofree gchar *longroot = g_strnfill(120, 'x');
	g_autofree gchar *toolong = NULL;

	g_assert_no_error(error);
	base = g_path_get_basename(dir);
	g_assert_true(g_str_has_prefix(base, "tiny-"));
	g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
	f = g_build_filename(dir, QSIM_VM_RUNDIR_OVERLAY, NULL);
	g_assert_true(g_file_set_contents(f, "x", 1, NULL));
	g_assert_true(qsim_vm_rundir_remove(dir, &error));
	g_assert_no_error(error);
	g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
	/* removing twice is fine */
	g_assert_true(qsim_vm_rundir_remove(dir, &error));

	/* socket paths are limited to 108 bytes: refused before QEMU fails obscurely */
	{
		g_autofree gchar *lr = g_build_filename(root, longroot, NULL);

		toolong = qsim_vm_rundir_create(lr, "tiny", &error);
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_assert_null(toolong);
		g_rmdir(lr);
	}
	g_rmdir(sub);
	g_rmdir(root);
}

static void
test_start_time(void)
{
	g_autoptr(GError) error = NULL;
	guint64 t = qsim_vm_proc_start_time(getpid(), &error);

	g_assert_no_error(error);
	g_assert_cmpuint(t, >, 0);
	g_assert_cmpuint(qsim_vm_proc_start_time(getpid(), NULL), ==, t);
	g_assert_cmpuint(qsim_vm_proc_start_time(G_MAXINT - 1, &error), ==, 0);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
}

/* a process whose command line names @dir, like QEMU's does its run dir */
static GSubprocess *
spawn_fake_qemu(const gchar *dir, GPid *pid)
{
	g_autoptr(GError) error = NULL;
	/* `read` is a builtin blocking on the stdin pipe: no grandchild outlives the kill */
	GSubprocess *proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE, &error, "sh", "-c",
	                                     "read x", dir, NULL);

	g_assert_no_error(error);
	*pid = (GPid)g_ascii_strtoll(g_subprocess_get_identifier(proc), NULL, 10);
	return proc;
}

static void
wait_proc(GSubprocess *proc)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(g_subprocess_wait(proc, NULL, &error));
	g_assert_no_error(error);
}

static void
test_kill_orphan(void)
{
	g_autofree gchar *root = make_tmp();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = qsim_vm_rundir_create(root, "tiny", &error);
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *state = NULL;
	GPid pid = 0;

	g_assert_no_error(error);
	proc = spawn_fake_qemu(dir, &pid);
	g_assert_true(qsim_vm_rundir_write_state(dir, pid, "req-1", &error));
	g_assert_no_error(error);
	state = g_build_filename(dir, QSIM_VM_RUNDIR_STATE, NULL);
	g_assert_true(g_file_test(state, G_FILE_TEST_IS_REGULAR));
	{
		/* a restarted daemon finds the run dir by listing RUN_DIR; strays are skipped */
		g_autofree gchar *stray = g_build_filename(root, "not-a-vm", NULL);
		g_autoptr(GPtrArray) found = NULL;

		g_assert_cmpint(g_mkdir(stray, 0700), ==, 0);
		found = qsim_vm_rundir_list(root, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(found->len, ==, 1);
		g_assert_cmpstr(g_ptr_array_index(found, 0), ==, dir);
		g_rmdir(stray);
	}
	g_assert_true(qsim_vm_kill_orphan(dir, &error));
	g_assert_no_error(error);
	wait_proc(proc);
	g_assert_true(g_subprocess_get_if_signaled(proc));
	g_assert_cmpint(g_subprocess_get_term_sig(proc), ==, SIGKILL);
	g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
	g_rmdir(root);
}

static void
test_kill_orphan_pid_reused(void)
{
	g_autofree gchar *root = make_tmp();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = qsim_vm_rundir_create(root, "tiny", &error);
	g_autofree gchar *other_dir = qsim_vm_rundir_create(root, "other", &error);
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *pidfile = NULL;
	g_autofree gchar *pidtext = NULL;
	GPid pid = 0;

	g_assert_no_error(error);
	/* the pid now belongs to a process that does not name this run dir */
	proc = spawn_fake_qemu(other_dir, &pid);
	pidfile = g_build_filename(dir, QSIM_VM_RUNDIR_QEMU_PID, NULL);
	pidtext = g_strdup_printf("%d\n", (gint)pid);
	g_assert_true(g_file_set_contents(pidfile, pidtext, -1, NULL));
	g_assert_true(qsim_vm_kill_orphan(dir, &error));
	g_assert_no_error(error);
	g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(qsim_vm_proc_start_time(pid, NULL), >, 0); /* still alive */

	/* a process naming the run dir but with another start time is not ours either */
	g_free(dir);
	dir = qsim_vm_rundir_create(root, "tiny", &error);
	g_assert_no_error(error);
	{
		g_autofree gchar *state = g_build_filename(dir, QSIM_VM_RUNDIR_STATE, NULL);
		g_autoptr(GSubprocess) proc2 = NULL;
		g_autofree gchar *json = NULL;
		GPid pid2 = 0;

		proc2 = spawn_fake_qemu(dir, &pid2);
		json = g_strdup_printf("{\"pid\":%d,\"start_time\":1}", (gint)pid2);
		g_assert_true(g_file_set_contents(state, json, -1, NULL));
		g_assert_true(qsim_vm_kill_orphan(dir, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(qsim_vm_proc_start_time(pid2, NULL), >, 0);
		g_subprocess_force_exit(proc2);
		wait_proc(proc2);
	}
	g_subprocess_force_exit(proc);
	wait_proc(proc);
	qsim_vm_rundir_remove(other_dir, NULL);
	g_rmdir(root);
}

static void
test_kill_orphan_refuses_foreign_dir(void)
{
	g_autofree gchar *root = make_tmp();
	g_autofree gchar *keep = g_build_filename(root, "precious.txt", NULL);
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(keep, "x", 1, NULL));
	g_assert_false(qsim_vm_kill_orphan(root, &error));
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_true(g_file_test(keep, G_FILE_TEST_EXISTS));
	g_unlink(keep);
	g_rmdir(root);
}

typedef struct {
	GByteArray *got;
	guint n_chunks;
	gboolean marker;
	gboolean eof;
} SerialState;

static void
serial_data_cb(QsimSerialReader *r, GBytes *chunk, gpointer user_data)
{
	SerialState *st = user_data;
	gsize len = 0;
	const guint8 *d = g_bytes_get_data(chunk, &len);

	g_byte_array_append(st->got, d, len);
	st->n_chunks++;
}

static void
serial_marker_cb(QsimSerialReader *r, gpointer user_data)
{
	((SerialState *)user_data)->marker = TRUE;
}

static void
serial_eof_cb(QsimSerialReader *r, gpointer user_data)
{
	((SerialState *)user_data)->eof = TRUE;
}

static void
test_serial_reader(void)
{
	gint fds[2];
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(QsimSerialReader) reader = NULL;
	g_autofree gchar *tail = NULL;
	SerialState st = {g_byte_array_new(), 0, FALSE, FALSE};
	/* "é" split across writes, and the marker split too */
	const gchar part1[] = "boot \xc3";
	const gchar part2[] = "\xa9 QSIM-RE";
	const gchar part3[] = "ADY\n";

	g_assert_cmpint(pipe(fds), ==, 0);
	in = g_unix_input_stream_new(fds[0], TRUE);
	reader = qsim_serial_reader_new(in, "QSIM-READY");
	g_signal_connect(reader, "data", G_CALLBACK(serial_data_cb), &st);
	g_signal_connect(reader, "marker", G_CALLBACK(serial_marker_cb), &st);
	g_signal_connect(reader, "eof", G_CALLBACK(serial_eof_cb), &st);
	qsim_serial_reader_start(reader);

	g_assert_cmpint(write(fds[1], part1, strlen(part1)), ==, (gssize)strlen(part1));
	while (st.got->len < strlen(part1))
		g_main_context_iteration(NULL, TRUE);
	/* delivered without waiting for a line end, raw (half a UTF-8 sequence) */
	g_assert_cmpmem(st.got->data, st.got->len, part1, strlen(part1));
	g_assert_cmpint(write(fds[1], part2, strlen(part2)), ==, (gssize)strlen(part2));
	while (st.got->len < strlen(part1) + strlen(part2))
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(st.marker);
	g_assert_false(qsim_serial_reader_get_marker_seen(reader));
	g_assert_cmpint(write(fds[1], part3, strlen(part3)), ==, (gssize)strlen(part3));
	close(fds[1]);
	while (!st.eof)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(st.marker);
	g_assert_true(qsim_serial_reader_get_marker_seen(reader));
	g_assert_cmpuint(st.n_chunks, >=, 3);
	g_assert_cmpuint(qsim_serial_reader_get_n_bytes(reader), ==, st.got->len);
	tail = qsim_serial_reader_get_tail(reader);
	g_assert_cmpstr(tail, ==, "boot \xc3\xa9 QSIM-READY");
	g_byte_array_unref(st.got);
}

typedef struct {
	GMainLoop *loop;
	GError *error;
	gboolean ok;
} AsyncWait;

static void
overlay_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AsyncWait *w = user_data;

	w->ok = qsim_vm_overlay_create_finish(res, &w->error);
	g_main_loop_quit(w->loop);
}

static void
test_overlay(void)
{
	g_autofree gchar *root = make_tmp();
	g_autofree gchar *base = g_build_filename(root, "base.raw", NULL);
	g_autofree gchar *overlay = g_build_filename(root, "overlay.qcow2", NULL);
	g_autofree gchar *info = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	AsyncWait w = {loop, NULL, FALSE};
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {QSIM_QEMU_IMG_BINARY, "info", overlay, NULL};
	gint status = -1;

	g_assert_true(g_file_set_contents(base, "", 0, NULL));
	g_assert_cmpint(truncate(base, 1024 * 1024), ==, 0);
	qsim_vm_overlay_create_async(QSIM_QEMU_IMG_BINARY, base, "raw", overlay, NULL, overlay_cb,
	                             &w);
	g_main_loop_run(loop);
	g_assert_no_error(w.error);
	g_assert_true(w.ok);
	g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
	                           &info, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_nonnull(strstr(info, "backing file: "));
	g_assert_nonnull(strstr(info, base));
	g_assert_nonnull(strstr(info, "file format: qcow2"));

	/* a missing base is a clear error, not a qemu-img run */
	qsim_vm_overlay_create_async(QSIM_QEMU_IMG_BINARY, "/nonexistent/base.qcow2", "qcow2",
	                             overlay, NULL, overlay_cb, &w);
	g_main_loop_run(loop);
	g_assert_error(w.error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_clear_error(&w.error);

	/* qemu-img's own complaint is quoted (wrong format for the base) */
	g_unlink(overlay);
	qsim_vm_overlay_create_async(QSIM_QEMU_IMG_BINARY, base, "qcow2", overlay, NULL, overlay_cb,
	                             &w);
	g_main_loop_run(loop);
	g_assert_error(w.error, QSIM_ERROR, QSIM_ERROR_VM);
	g_assert_nonnull(strstr(w.error->message, "qcow2"));
	g_clear_error(&w.error);

	g_unlink(overlay);
	g_unlink(base);
	g_rmdir(root);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/vm/tail", test_tail);
	g_test_add_func("/qsim/vm/port", test_port);
	g_test_add_func("/qsim/vm/rundir", test_rundir);
	g_test_add_func("/qsim/vm/proc-start-time", test_start_time);
	g_test_add_func("/qsim/vm/kill-orphan/fake", test_kill_orphan);
	g_test_add_func("/qsim/vm/kill-orphan/pid-reused", test_kill_orphan_pid_reused);
	g_test_add_func("/qsim/vm/kill-orphan/foreign-dir", test_kill_orphan_refuses_foreign_dir);
	g_test_add_func("/qsim/vm/serial-reader", test_serial_reader);
	g_test_add_func("/qsim/vm/overlay", test_overlay);
	return g_test_run();
}
