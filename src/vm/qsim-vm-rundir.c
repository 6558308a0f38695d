#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#include "common/qsim-error.h"
#include "qsim-vm-rundir.h"

/* sockaddr_un.sun_path is 108 bytes; QEMU fails obscurely past it, so refuse early. */
#define QSIM_VM_RUNDIR_MAX_PATH (108 - 1 - sizeof(QSIM_VM_RUNDIR_QMP) - 1)

/**
 * qsim_vm_rundir_create:
 * @run_root: RUN_DIR, created if missing
 * @vm_name: the VM's name, already validated (used in the directory name)
 * @error: return location for a #GError
 *
 * Creates a fresh private directory `<run_root>/<vm_name>-XXXXXX` for one VM start.
 *
 * Returns: (transfer full): its absolute path, or %NULL
 */
gchar *
qsim_vm_rundir_create(const gchar *run_root, const gchar *vm_name, GError **error)
{
	g_autofree gchar *root = NULL;
	g_autofree gchar *tmpl = NULL;

	if (g_path_is_absolute(run_root)) {
		root = g_strdup(run_root);
	} else {
		g_autofree gchar *cwd = g_get_current_dir();
		root = g_build_filename(cwd, run_root, NULL);
	}
	if (g_mkdir_with_parents(root, 0700) != 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create run dir %s: %s", root,
		            g_strerror(errno));
		return NULL;
	}
	tmpl = g_strdup_printf("%s/%s-XXXXXX", root, vm_name);
	if (strlen(tmpl) > QSIM_VM_RUNDIR_MAX_PATH) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "run dir path %s is too long for a unix socket (max %u bytes)", tmpl,
		            (guint)QSIM_VM_RUNDIR_MAX_PATH);
		return NULL;
	}
	if (g_mkdtemp_full(tmpl, 0700) == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot create %s: %s", tmpl,
		            g_strerror(errno));
		return NULL;
	}
	return g_steal_pointer(&tmpl);
}

static gboolean
qsim_vm_rundir_looks_ours(const gchar *run_dir)
{
	const gchar *names[] = {QSIM_VM_RUNDIR_STATE, QSIM_VM_RUNDIR_QEMU_PID,
	                        QSIM_VM_RUNDIR_OVERLAY, QSIM_VM_RUNDIR_QMP};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree gchar *p = g_build_filename(run_dir, names[i], NULL);
		if (g_file_test(p, G_FILE_TEST_EXISTS))
			return TRUE;
	}
	return FALSE;
}

/**
 * qsim_vm_rundir_remove:
 * @run_dir: a directory made by qsim_vm_rundir_create()
 * @error: return location for a #GError
 *
 * Removes the files directly inside @run_dir, then @run_dir. A missing directory is
 * success. Subdirectories are never descended into: qsim creates none, so one means
 * @run_dir is not ours and nothing more is deleted.
 *
 * Returns: %TRUE when @run_dir no longer exists
 */
gboolean
qsim_vm_rundir_remove(const gchar *run_dir, GError **error)
{
	g_autoptr(GDir) dir = NULL;
	g_autoptr(GError) error_local = NULL;
	const gchar *name;

	dir = g_dir_open(run_dir, 0, &error_local);
	if (dir == NULL) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		qsim_error_convert(&error_local);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
		                           "cannot remove run dir: ");
		return FALSE;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *p = g_build_filename(run_dir, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			continue;
		if (g_unlink(p) != 0 && errno != ENOENT) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s", p,
			            g_strerror(errno));
			return FALSE;
		}
	}
	if (g_rmdir(run_dir) != 0 && errno != ENOENT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s", run_dir,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/**
 * qsim_vm_proc_start_time:
 * @pid: a process id
 * @error: return location for a #GError
 *
 * Reads field 22 of /proc/<pid>/stat: the start time in clock ticks since boot,
 * which together with the pid identifies one process across pid reuse.
 *
 * Returns: the start time, or 0 with @error set (no such process)
 */
guint64
qsim_vm_proc_start_time(GPid pid, GError **error)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", (gint)pid);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) fields = NULL;
	g_autoptr(GError) local = NULL;
	const gchar *p;

	if (!g_file_get_contents(path, &contents, NULL, &local)) {
		/* a process that exits between open() and read() makes the read fail with
		 * ESRCH rather than ENOENT: both mean it is gone */
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
		    (kill(pid, 0) != 0 && errno == ESRCH)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND, "process %d is gone",
			            (gint)pid);
			return 0;
		}
		qsim_error_convert(&local);
		g_propagate_error(error, g_steal_pointer(&local));
		return 0;
	}
	/* the command name (field 2) may hold spaces and parentheses: skip to the last ')' */
	p = strrchr(contents, ')');
	if (p == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INTERNAL, "malformed %s", path);
		return 0;
	}
	fields = g_strsplit(p + 2, " ", -1);
	/* fields[0] is field 3 (state), so field 22 is fields[19] */
	if (g_strv_length(fields) < 20) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INTERNAL, "malformed %s", path);
		return 0;
	}
	return g_ascii_strtoull(fields[19], NULL, 10);
}

/**
 * qsim_vm_rundir_write_state:
 * @run_dir: the VM's run directory
 * @pid: QEMU's pid
 * @request_id: (nullable): the request this VM runs for
 * @error: return location for a #GError
 *
 * Writes `qsim.json` with the pid, its /proc start time and @request_id, so that a
 * restarted daemon can tell its orphaned QEMU from an unrelated process that got the
 * same pid (see qsim_vm_kill_orphan()).
 *
 * Returns: %TRUE on success
 */
gboolean
qsim_vm_rundir_write_state(const gchar *run_dir, GPid pid, const gchar *request_id, GError **error)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *path = g_build_filename(run_dir, QSIM_VM_RUNDIR_STATE, NULL);
	guint64 start_time = qsim_vm_proc_start_time(pid, error);

	if (start_time == 0)
		return FALSE;
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "pid");
	json_builder_add_int_value(b, pid);
	json_builder_set_member_name(b, "start_time");
	json_builder_add_int_value(b, (gint64)start_time);
	json_builder_set_member_name(b, "request_id");
	if (request_id != NULL)
		json_builder_add_string_value(b, request_id);
	else
		json_builder_add_null_value(b);
	json_builder_set_member_name(b, "run_dir");
	json_builder_add_string_value(b, run_dir);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, NULL);
	if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
	                              error)) {
		qsim_error_convert(error);
		g_prefix_error(error, "cannot write %s: ", path);
		return FALSE;
	}
	return TRUE;
}

/* Does /proc/<pid>/cmdline mention @run_dir? QEMU's argv always names its run dir
 * (pidfile, drive), so this tells our QEMU from a process that reused the pid. */
static gboolean
qsim_vm_cmdline_mentions(GPid pid, const gchar *run_dir)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/cmdline", (gint)pid);
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, NULL))
		return FALSE;
	for (gsize off = 0; off < len; off += strlen(contents + off) + 1) {
		if (strstr(contents + off, run_dir) != NULL)
			return TRUE;
	}
	return FALSE;
}

static gboolean
qsim_vm_read_state(const gchar *run_dir, GPid *pid, guint64 *start_time)
{
	g_autofree gchar *path = g_build_filename(run_dir, QSIM_VM_RUNDIR_STATE, NULL);
	g_autofree gchar *qemu_pid_path = g_build_filename(run_dir, QSIM_VM_RUNDIR_QEMU_PID, NULL);
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autofree gchar *text = NULL;
	JsonObject *obj;

	*pid = 0;
	*start_time = 0;
	if (json_parser_load_from_file(parser, path, NULL) &&
	    JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		obj = json_node_get_object(json_parser_get_root(parser));
		*pid = (GPid)json_object_get_int_member_with_default(obj, "pid", 0);
		*start_time =
		    (guint64)json_object_get_int_member_with_default(obj, "start_time", 0);
		return *pid > 0;
	}
	/* QEMU writes its own pidfile before qsim.json exists: a daemon that died in
	 * between leaves only that one; the cmdline check still guards against reuse */
	if (g_file_get_contents(qemu_pid_path, &text, NULL, NULL)) {
		gint64 v = g_ascii_strtoll(g_strstrip(text), NULL, 10);
		if (v > 1 && v <= G_MAXINT)
			*pid = (GPid)v;
	}
	return *pid > 0;
}

static gboolean
qsim_vm_pid_gone(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", (gint)pid);
	g_autofree gchar *contents = NULL;
	const gchar *p;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return TRUE;
	/* a zombie waiting for its parent to reap it is gone as far as we care */
	p = strrchr(contents, ')');
	return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

/**
 * qsim_vm_kill_orphan:
 * @run_dir: a run directory left behind by a daemon that died
 * @error: return location for a #GError
 *
 * Kills the QEMU recorded in @run_dir's state file, but only if that pid still is that
 * QEMU (same /proc start time, and its command line names @run_dir), waits up to 5 s for
 * it to die, then removes @run_dir. A directory without any qsim file is refused.
 *
 * Returns: %TRUE when no QEMU of @run_dir runs any more and the directory is gone
 */
gboolean
qsim_vm_kill_orphan(const gchar *run_dir, GError **error)
{
	GPid pid = 0;
	guint64 start_time = 0;

	if (!g_file_test(run_dir, G_FILE_TEST_IS_DIR))
		return TRUE;
	if (!qsim_vm_rundir_looks_ours(run_dir)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s is not a qsim run dir: refusing to remove it", run_dir);
		return FALSE;
	}
	if (qsim_vm_read_state(run_dir, &pid, &start_time) && !qsim_vm_pid_gone(pid)) {
		guint64 now_start = qsim_vm_proc_start_time(pid, NULL);
		gboolean same = qsim_vm_cmdline_mentions(pid, run_dir) &&
		                (start_time == 0 || now_start == start_time);

		if (same) {
			g_info("killing orphaned QEMU pid %d of %s", (gint)pid, run_dir);
			if (kill(pid, SIGKILL) != 0 && errno != ESRCH) {
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_VM,
				            "cannot kill orphaned QEMU pid %d: %s", (gint)pid,
				            g_strerror(errno));
				return FALSE;
			}
			/* SIGKILL is not synchronous; the overlay must not be in use when
			 * the directory goes, so wait (bounded) for the process to end */
			for (guint i = 0; i < 500 && !qsim_vm_pid_gone(pid); i++)
				g_usleep(10 * 1000);
			if (!qsim_vm_pid_gone(pid)) {
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
				            "orphaned QEMU pid %d did not die within 5 s",
				            (gint)pid);
				return FALSE;
			}
		} else {
			g_info("pid %d of %s is no longer its QEMU: not killing it", (gint)pid,
			       run_dir);
		}
	}
	return qsim_vm_rundir_remove(run_dir, error);
}

/**
 * qsim_vm_rundir_list:
 * @run_root: RUN_DIR
 * @error: return location for a #GError
 *
 * Lists the run directories in @run_root that hold a qsim file, for a daemon that
 * starts up and must pass each to qsim_vm_kill_orphan(). A missing @run_root is empty.
 *
 * Returns: (transfer full) (element-type utf8): absolute paths, or %NULL on error
 */
GPtrArray *
qsim_vm_rundir_list(const gchar *run_root, GError **error)
{
	g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error_local = NULL;
	g_autoptr(GDir) dir = g_dir_open(run_root, 0, &error_local);
	const gchar *name;

	if (dir == NULL) {
		if (g_error_matches(error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return g_steal_pointer(&found);
		qsim_error_convert(&error_local);
		g_propagate_prefixed_error(error, g_steal_pointer(&error_local),
		                           "cannot list run dir: ");
		return NULL;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *p = g_build_filename(run_root, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK) &&
		    qsim_vm_rundir_looks_ours(p))
			g_ptr_array_add(found, g_canonicalize_filename(p, NULL));
	}
	return g_steal_pointer(&found);
}
