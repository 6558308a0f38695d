#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/qsim-error.h"
#include "common/qsim-log.h"

/* The writer runs on any thread, so its state sits behind one lock. */
static GMutex log_mutex;
static QsimLogLevel log_threshold = QSIM_LOG_LEVEL_INFO;
static FILE *log_fp; /* NULL: stderr */
static gboolean log_installed;

static QsimLogLevel
log_rank(GLogLevelFlags log_level)
{
	if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return QSIM_LOG_LEVEL_ERROR;
	if (log_level & G_LOG_LEVEL_WARNING)
		return QSIM_LOG_LEVEL_WARNING;
	if (log_level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		return QSIM_LOG_LEVEL_INFO;
	return QSIM_LOG_LEVEL_DEBUG;
}

/* Returns: whether a message of @log_level passes LOG_LEVEL=@threshold */
gboolean
qsim_log_level_enabled(QsimLogLevel threshold, GLogLevelFlags log_level)
{
	return log_rank(log_level) >= threshold;
}

static const gchar *
log_level_name(GLogLevelFlags log_level)
{
	if (log_level & G_LOG_LEVEL_ERROR)
		return "ERROR";
	if (log_level & G_LOG_LEVEL_CRITICAL)
		return "CRITICAL";
	if (log_level & G_LOG_LEVEL_WARNING)
		return "WARNING";
	if (log_level & G_LOG_LEVEL_MESSAGE)
		return "MESSAGE";
	if (log_level & G_LOG_LEVEL_INFO)
		return "INFO";
	return "DEBUG";
}

/**
 * qsim_log_writer:
 *
 * A #GLogWriterFunc that drops messages below LOG_LEVEL and writes the rest
 * as one line `<UTC time> <LEVEL> <domain>: <message>` to LOG_FILE or stderr.
 */
GLogWriterOutput
qsim_log_writer(GLogLevelFlags log_level, const GLogField *fields, gsize n_fields,
                gpointer user_data)
{
	const gchar *domain = NULL;
	const gchar *message = NULL;
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree gchar *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
	g_autofree gchar *line = NULL;
	g_autoptr(GMutexLocker) locker = NULL;

	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	locker = g_mutex_locker_new(&log_mutex);
	if (!qsim_log_level_enabled(log_threshold, log_level))
		return G_LOG_WRITER_HANDLED;
	/* %f gives microseconds; keep milliseconds like the API's timestamps */
	if (strlen(stamp) == 27)
		memmove(stamp + 23, stamp + 26, 2);
	line = g_strdup_printf("%s %s %s: %s\n", stamp, log_level_name(log_level),
	                       domain != NULL ? domain : "qsim", message != NULL ? message : "");
	fputs(line, log_fp != NULL ? log_fp : stderr);
	fflush(log_fp != NULL ? log_fp : stderr);
	return G_LOG_WRITER_HANDLED;
}

/**
 * qsim_log_setup:
 * @level: messages below this are dropped
 * @log_file: (nullable): file to append to; %NULL or "" for stderr
 *
 * Installs qsim_log_writer() on first use; later calls only change the
 * level and file, so tests and reloads may call it again.
 *
 * Returns: %TRUE on success, %FALSE with %QSIM_ERROR_IO if the file cannot be opened
 */
gboolean
qsim_log_setup(QsimLogLevel level, const gchar *log_file, GError **error)
{
	FILE *fp = NULL;
	FILE *old;

	if (log_file != NULL && log_file[0] != '\0') {
		fp = fopen(log_file, "ae");
		if (fp == NULL) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_IO,
			            "cannot open log file '%s': %s", log_file, g_strerror(errno));
			return FALSE;
		}
	}
	g_mutex_lock(&log_mutex);
	old = log_fp;
	log_fp = fp;
	log_threshold = level;
	g_mutex_unlock(&log_mutex);
	if (old != NULL)
		fclose(old);
	if (!log_installed) {
		g_log_set_writer_func(qsim_log_writer, NULL, NULL);
		log_installed = TRUE;
	}
	return TRUE;
}
