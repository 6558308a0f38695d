#include "config.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/qsim-lease-watchdog.h"

/*
 * The lease watchdog: past the deadline it SIGKILLs the QEMU it was told about, with
 * no QEMU it waits for one, and a live lease never fires. A `sleep` stands in for QEMU.
 * The waits are hang guards, never timing assertions.
 */

static GPid
spawn_sleeper(void)
{
	const gchar *argv[] = {"sleep", "600", NULL};
	g_autoptr(GError) error = NULL;
	GPid pid = 0;

	g_assert_true(g_spawn_async(NULL, (gchar **)argv, NULL,
	                            G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
	                            &pid, &error));
	g_assert_no_error(error);
	return pid;
}

/* Returns: the signal that ended @pid, waiting up to 30 s (a hang guard) */
static gint
wait_signal(GPid pid)
{
	gint status = 0;

	for (guint i = 0; i < 3000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		g_usleep(10 * 1000);
	}
	return -1;
}

static void
reap(GPid pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static void
test_fires(void)
{
	GPid pid = spawn_sleeper();
	QsimLeaseWatchdog *w = qsim_lease_watchdog_new("t", 200, 100);

	qsim_lease_watchdog_set_pid(w, pid);
	g_assert_cmpint(wait_signal(pid), ==, SIGKILL);
	for (guint i = 0; i < 3000 && !qsim_lease_watchdog_fired(w); i++)
		g_usleep(10 * 1000);
	g_assert_true(qsim_lease_watchdog_fired(w));
	qsim_lease_watchdog_free(w);
}

static void
test_waits_for_a_pid(void)
{
	GPid pid = spawn_sleeper();
	QsimLeaseWatchdog *w = qsim_lease_watchdog_new("t", 0, 0);

	/* past its deadline with nothing to kill: it must not count as fired */
	g_usleep(100 * 1000);
	g_assert_false(qsim_lease_watchdog_fired(w));
	g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, 0);
	/* a QEMU reported after the deadline is killed at once */
	qsim_lease_watchdog_set_pid(w, pid);
	g_assert_cmpint(wait_signal(pid), ==, SIGKILL);
	qsim_lease_watchdog_free(w);
}

static void
test_renewed_lives(void)
{
	GPid pid = spawn_sleeper();
	QsimLeaseWatchdog *w = qsim_lease_watchdog_new("t", 0, 0);

	/* renewed before a pid came: the new deadline is far away */
	qsim_lease_watchdog_renewed(w, 600000, pid);
	g_usleep(100 * 1000);
	g_assert_false(qsim_lease_watchdog_fired(w));
	g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, 0);
	/* freeing stops the thread; the process is left alone */
	qsim_lease_watchdog_free(w);
	g_assert_cmpint(kill(pid, 0), ==, 0);
	reap(pid);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/agent/lease-watchdog/fires", test_fires);
	g_test_add_func("/agent/lease-watchdog/waits-for-a-pid", test_waits_for_a_pid);
	g_test_add_func("/agent/lease-watchdog/renewed-lives", test_renewed_lives);
	return g_test_run();
}
