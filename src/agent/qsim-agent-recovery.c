#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/qsim-agent-recovery.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "vm/qsim-vm-rundir.h"

/* RUN_DIR's roots of VMs that belong to no request: warm VMs, template builds */
static const gchar *const qsim_agent_recovery_vm_roots[] = {QSIM_LAYOUT_WARM_DIR,
                                                            QSIM_LAYOUT_BUILD_DIR};

static gboolean
same_executable(GPid pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/exe", (gint)pid);
	g_autofree gchar *theirs = g_file_read_link(path, NULL);
	g_autofree gchar *ours = g_file_read_link("/proc/self/exe", NULL);

	/* unreadable (another user): assume it is alive and ours, the lease decides */
	if (theirs == NULL || ours == NULL)
		return TRUE;
	return g_strcmp0(theirs, ours) == 0;
}

gboolean
qsim_agent_recovery_agent_is_dead_local(const gchar *agent_id)
{
	g_autofree gchar *host = NULL;
	GPid pid = 0;

	if (!qsim_agent_id_parse(agent_id, &host, &pid))
		return FALSE;
	if (g_strcmp0(host, qsim_host_id_get()) != 0)
		return FALSE;
	if (pid == getpid())
		return TRUE; /* an earlier process with our pid: we run nothing we do not know */
	if (kill(pid, 0) != 0)
		return errno == ESRCH;
	/* the pid was reused by an unrelated program */
	return !same_executable(pid);
}

gboolean
qsim_agent_recovery_kill_vm_dir(const gchar *path, GError **error)
{
	g_autofree gchar *target = NULL;

	if (!g_file_test(path, G_FILE_TEST_IS_SYMLINK))
		return qsim_vm_kill_orphan(path, error);
	/* a job that took a warm VM links to its run dir: QEMU's argv names the target */
	target = g_file_read_link(path, NULL);
	if (target != NULL && !qsim_vm_kill_orphan(target, error))
		return FALSE;
	if (g_unlink(path) != 0 && errno != ENOENT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s", path,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gboolean
qsim_agent_recovery_clean_request(const gchar *run_dir, const gchar *uuid, GError **error)
{
	g_autofree gchar *root = qsim_layout_dup_request_root(run_dir, uuid);
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (!g_file_test(root, G_FILE_TEST_IS_DIR))
		return TRUE;
	dir = g_dir_open(root, 0, error);
	if (dir == NULL) {
		qsim_error_convert(error);
		return FALSE;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *sub = g_build_filename(root, name, NULL);

		if (!g_file_test(sub, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(sub, G_FILE_TEST_IS_SYMLINK)) {
			g_unlink(sub);
			continue;
		}
		if (!qsim_agent_recovery_kill_vm_dir(sub, error))
			return FALSE;
	}
	if (g_rmdir(root) != 0 && errno != ENOENT) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO, "cannot remove %s: %s", root,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean
recover_one(QsimStore *store, const gchar *run_dir, const QsimRequest *r, const gchar *why)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *host = NULL;
	QsimStatus status = r->status;
	/* the commands start only after `running`: before that a retry is safe */
	gboolean retry = r->status == QSIM_STATUS_ACKNOWLEDGED;

	/* only this host's run dirs can be cleaned; another host's QEMU is its business */
	if (!qsim_agent_id_parse(r->agent_id, &host, NULL) ||
	    g_strcmp0(host, qsim_host_id_get()) == 0) {
		if (!qsim_agent_recovery_clean_request(run_dir, r->uuid, &error)) {
			g_warning("recovery of %s: %s", r->uuid, error->message);
			g_clear_error(&error);
		}
	}
	if (!qsim_store_recover_request(store, r->uuid, r->agent_id, retry,
	                                QSIM_AGENT_RECOVERY_REASON, &status, &error)) {
		/* CONFLICT: another agent recovered it first, or its agent came back */
		g_debug("recovery of %s skipped: %s", r->uuid, error->message);
		return FALSE;
	}
	g_info("recovered %s (%s, agent %s %s): now %s", r->uuid, qsim_status_to_string(r->status),
	       r->agent_id, why, qsim_status_to_string(status));
	return TRUE;
}

static gboolean
skip(GHashTable *skip_uuids, const QsimRequest *r)
{
	return skip_uuids != NULL && g_hash_table_contains(skip_uuids, r->uuid);
}

gboolean
qsim_agent_recovery_run(QsimStore *store, const gchar *run_dir, GHashTable *skip_uuids,
                        guint *n_recovered, GError **error)
{
	g_autoptr(GPtrArray) expired = NULL;
	const QsimStatus active[] = {QSIM_STATUS_ACKNOWLEDGED, QSIM_STATUS_RUNNING,
	                             QSIM_STATUS_HOLD, QSIM_STATUS_CANCELLED};
	guint n = 0;

	expired = qsim_store_list_expired_leases(store, qsim_store_now_ms(store), error);
	if (expired == NULL)
		return FALSE;
	for (guint i = 0; i < expired->len; i++) {
		const QsimRequest *r = g_ptr_array_index(expired, i);

		if (!skip(skip_uuids, r) && recover_one(store, run_dir, r, "lease expired"))
			n++;
	}
	/* claims of dead local processes, without waiting for their leases */
	for (guint s = 0; s < G_N_ELEMENTS(active); s++) {
		g_autoptr(GPtrArray) rows = NULL;
		QsimRequestFilter filter;

		qsim_request_filter_init(&filter);
		filter.status = active[s];
		filter.limit = QSIM_REQUEST_FILTER_MAX_LIMIT;
		rows = qsim_store_list_requests(store, &filter, NULL, error);
		if (rows == NULL)
			return FALSE;
		for (guint i = 0; i < rows->len; i++) {
			const QsimRequest *r = g_ptr_array_index(rows, i);

			if (r->lease_expires_at == 0 || skip(skip_uuids, r) ||
			    !qsim_agent_recovery_agent_is_dead_local(r->agent_id))
				continue;
			if (recover_one(store, run_dir, r, "is gone"))
				n++;
		}
	}
	if (n_recovered != NULL)
		*n_recovered = n;
	return TRUE;
}

/* Whether the QEMU of @vm_dir is the child of another live qsim process (its warm VM or
 * template build); after a crash it belongs to no one (or to init). */
static gboolean
qemu_owned_by_live_peer(const gchar *vm_dir)
{
	g_autofree gchar *pidfile = g_build_filename(vm_dir, QSIM_VM_RUNDIR_QEMU_PID, NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *stat_path = NULL;
	g_autofree gchar *stat = NULL;
	const gchar *p;
	gint64 pid;
	gint ppid = 0;

	if (!g_file_get_contents(pidfile, &text, NULL, NULL))
		return FALSE;
	pid = g_ascii_strtoll(g_strstrip(text), NULL, 10);
	if (pid <= 1 || pid > G_MAXINT)
		return FALSE;
	stat_path = g_strdup_printf("/proc/%d/stat", (gint)pid);
	if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
		return FALSE;
	/* "pid (comm) state ppid ...": comm may hold spaces, so parse after the last ')' */
	p = strrchr(stat, ')');
	if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1 || ppid <= 1)
		return FALSE;
	return ppid != getpid() && kill(ppid, 0) == 0 && same_executable(ppid);
}

/* Kills and removes the leftover VM dirs of one of RUN_DIR's non-request roots. */
static guint
sweep_vm_root(const gchar *run_dir, const gchar *sub)
{
	g_autofree gchar *root = g_build_filename(run_dir, sub, NULL);
	g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
	const gchar *name;
	guint n = 0;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(root, name, NULL);
		g_autoptr(GError) error = NULL;

		if (!g_file_test(path, G_FILE_TEST_IS_DIR) ||
		    g_file_test(path, G_FILE_TEST_IS_SYMLINK) || qemu_owned_by_live_peer(path))
			continue;
		if (qsim_vm_kill_orphan(path, &error)) {
			g_info("removed leftover VM dir %s", path);
			n++;
		} else {
			g_warning("leftover VM dir %s: %s", path, error->message);
		}
	}
	return n;
}

guint
qsim_agent_recovery_sweep_build_dirs(const gchar *run_dir)
{
	return sweep_vm_root(run_dir, QSIM_LAYOUT_BUILD_DIR);
}

guint
qsim_agent_recovery_sweep_run_dir(QsimStore *store, const gchar *run_dir, GHashTable *skip_uuids)
{
	g_autoptr(GDir) dir = g_dir_open(run_dir, 0, NULL);
	const gchar *name;
	guint n = 0;

	for (guint i = 0; i < G_N_ELEMENTS(qsim_agent_recovery_vm_roots); i++)
		n += sweep_vm_root(run_dir, qsim_agent_recovery_vm_roots[i]);

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autoptr(QsimRequest) r = NULL;
		g_autoptr(GError) error = NULL;

		/* only request dirs: the VM layer's own dirs (run-vm) are not ours */
		if (!g_uuid_string_is_valid(name) ||
		    (skip_uuids != NULL && g_hash_table_contains(skip_uuids, name)))
			continue;
		r = qsim_store_get_request(store, name, QSIM_STORE_MIN_PREFIX_API, &error);
		if (r == NULL && !g_error_matches(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND))
			continue;
		if (r != NULL && r->lease_expires_at != 0)
			continue; /* still held: a live agent, or recovery's job */
		g_clear_error(&error);
		if (qsim_agent_recovery_clean_request(run_dir, name, &error)) {
			g_info("removed leftover run dir of %s", name);
			n++;
		} else {
			g_warning("leftover run dir of %s: %s", name, error->message);
		}
	}
	return n;
}
