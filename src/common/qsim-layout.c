#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "common/qsim-error.h"
#include "common/qsim-layout.h"

/* set once at start-up, before any thread; read-only afterwards */
static gchar *qsim_host_id;

gboolean
qsim_host_id_validate(const gchar *host_id, GError **error)
{
	gsize len = host_id != NULL ? strlen(host_id) : 0;
	g_autofree gchar *esc = NULL;

	if (len == 0) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		                    "invalid host id '': must not be empty");
		return FALSE;
	}
	if (len > QSIM_HOST_ID_MAX_LEN) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "invalid host id: %" G_GSIZE_FORMAT " characters long, the limit is %d",
		            len, QSIM_HOST_ID_MAX_LEN);
		return FALSE;
	}
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)host_id[i];

		if (g_ascii_isalnum(c))
			continue;
		if (i > 0 && (c == '.' || c == '_' || c == '-'))
			continue;
		/* the message must stay valid UTF-8 whatever bytes the value held */
		esc = g_strescape(host_id, NULL);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "invalid host id '%s': use ASCII letters, digits, '.', '_' and '-', "
		            "starting with a letter or digit",
		            esc);
		return FALSE;
	}
	return TRUE;
}

gchar *
qsim_host_id_dup_default(void)
{
	const gchar *name = g_get_host_name();
	GString *s = g_string_new(NULL);

	for (const gchar *p = name; *p != '\0' && s->len < QSIM_HOST_ID_MAX_LEN; p++) {
		gboolean ok =
		    g_ascii_isalnum(*p) || (s->len > 0 && (*p == '.' || *p == '_' || *p == '-'));

		g_string_append_c(s, ok ? *p : '-');
	}
	if (s->len == 0 || !g_ascii_isalnum(s->str[0]))
		g_string_prepend_c(s, 'h');
	if (s->len > QSIM_HOST_ID_MAX_LEN)
		g_string_truncate(s, QSIM_HOST_ID_MAX_LEN);
	return g_string_free(s, FALSE);
}

void
qsim_host_id_set(const gchar *host_id)
{
	g_return_if_fail(host_id == NULL || qsim_host_id_validate(host_id, NULL));
	g_free(qsim_host_id);
	qsim_host_id = host_id != NULL ? g_strdup(host_id) : qsim_host_id_dup_default();
}

const gchar *
qsim_host_id_get(void)
{
	if (qsim_host_id == NULL)
		qsim_host_id = qsim_host_id_dup_default();
	return qsim_host_id;
}

gchar *
qsim_agent_id_make(guint index)
{
	return g_strdup_printf("%s:%d:%u", qsim_host_id_get(), (gint)getpid(), index);
}

gboolean
qsim_agent_id_parse(const gchar *agent_id, gchar **host, GPid *pid)
{
	g_auto(GStrv) parts = NULL;
	guint n;
	guint64 v = 0;

	if (agent_id == NULL)
		return FALSE;
	/* ids written by older versions used the raw host name: the last two fields
	 * are numbers, whatever the first holds */
	parts = g_strsplit(agent_id, ":", -1);
	n = g_strv_length(parts);
	if (n < 3 || parts[0][0] == '\0')
		return FALSE;
	if (!g_ascii_string_to_unsigned(parts[n - 2], 10, 1, G_MAXINT, &v, NULL) ||
	    !g_ascii_string_to_unsigned(parts[n - 1], 10, 0, G_MAXUINT, NULL, NULL))
		return FALSE;
	if (pid != NULL)
		*pid = (GPid)v;
	if (host != NULL) {
		/* cut the two numbers off; the GStrv cleanup stops at the first NULL */
		g_clear_pointer(&parts[n - 1], g_free);
		g_clear_pointer(&parts[n - 2], g_free);
		*host = g_strjoinv(":", parts);
	}
	return TRUE;
}

gboolean
qsim_agent_id_is_local(const gchar *agent_id)
{
	g_autofree gchar *host = NULL;

	return qsim_agent_id_parse(agent_id, &host, NULL) &&
	       g_strcmp0(host, qsim_host_id_get()) == 0;
}

gchar *
qsim_layout_dup_builder_id(void)
{
	return qsim_agent_id_make(0);
}

gchar *
qsim_layout_dup_request_root(const gchar *run_dir, const gchar *uuid)
{
	return g_build_filename(run_dir, uuid, NULL);
}

gchar *
qsim_layout_dup_warm_root(const gchar *run_dir)
{
	return g_build_filename(run_dir, QSIM_LAYOUT_WARM_DIR, NULL);
}

gchar *
qsim_layout_dup_build_root(const gchar *run_dir)
{
	return g_build_filename(run_dir, QSIM_LAYOUT_BUILD_DIR, NULL);
}
