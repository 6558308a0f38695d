#pragma once

/*
 * What the daemon tests share: a private directory with the tiny guest's files linked
 * in and a copy of its VM config, a `qsimd` launched with private settings only, the
 * wait for /health, the stop, qsim-ctl and JSON over HTTP.
 */

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "test-util.h"

G_BEGIN_DECLS

/* One `qsimd all` in a private directory: DIR/images, DIR/vmconf, DIR/db.sqlite, DIR/run,
 * DIR/state, its output in DIR/qsimd.log */
typedef struct {
	gchar *dir;
	gchar *images;
	gchar *url;
	gchar *log;
	GSubprocess *daemon;
	SoupSession *session;
} DaemonFixture;

const gchar *daemon_test_source_root(void);
gboolean daemon_test_have_guest(void);
void daemon_test_link_guest(const gchar *images, gboolean with_image);
void daemon_test_write_conf(const gchar *configs, const gchar *name, const gchar *extra);
GSubprocessLauncher *daemon_test_launcher_new(GSubprocessFlags flags, const gchar *home,
                                              const gchar *db, const gchar *run, const gchar *state,
                                              const gchar *images, const gchar *configs);
void daemon_test_stop(GSubprocess **proc);
gint daemon_test_ctl(const gchar *url, const gchar *tmpdir, const gchar *const *args, gchar **out,
                     gchar **err);
JsonNode *daemon_test_http(SoupSession *session, const gchar *url, const gchar *method,
                           const gchar *path, const gchar *body, guint *out_status);

gboolean daemon_fixture_setup(DaemonFixture *f, const gchar *tmpl, gboolean link_image);
void daemon_fixture_teardown(DaemonFixture *f);
GSubprocessLauncher *daemon_fixture_launcher(DaemonFixture *f, GSubprocessFlags flags);
void daemon_fixture_spawn_all(DaemonFixture *f, GSubprocessLauncher *launcher);
void daemon_fixture_wait_healthy(DaemonFixture *f);

G_END_DECLS
