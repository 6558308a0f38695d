#define G_LOG_DOMAIN "qsim"

#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "common/qsim-rlimit.h"

/**
 * qsim_rlimit_raise_nofile:
 * @out_limit: (out) (optional): the soft limit in effect afterwards
 *
 * Raises the soft RLIMIT_NOFILE to the hard limit. The soft default (often
 * 1024) is a leftover of select(); this process polls, and every API client,
 * VM monitor and serial console costs a descriptor, so running out is what
 * turns a burst of clients into refused connections.
 *
 * Returns: %FALSE when the limit could not be read or set (logged at debug
 * level: the daemon still works with the lower limit)
 */
gboolean
qsim_rlimit_raise_nofile(guint64 *out_limit)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		g_debug("getrlimit(RLIMIT_NOFILE): %s", g_strerror(errno));
		return FALSE;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};

		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			g_debug("setrlimit(RLIMIT_NOFILE, %llu): %s",
			        (unsigned long long)rl.rlim_max, g_strerror(errno));
			if (out_limit != NULL)
				*out_limit = (guint64)rl.rlim_cur;
			return FALSE;
		}
		rl.rlim_cur = rl.rlim_max;
	}
	if (out_limit != NULL)
		*out_limit = (guint64)rl.rlim_cur;
	return TRUE;
}
