#pragma once

#include <gio/gio.h>

#include "common/qsim-config.h"
#include "store/qsim-store.h"
#include "test-util.h"

G_BEGIN_DECLS

/*
 * Shared by the agent tests: a temporary directory with a database, RUN_DIR
 * and a VM config dir holding copies of the test VM configs (tiny and
 * tiny-nossh, BOOT_TIMEOUT shortened for the latter), and a QsimConfig
 * pointing at them. QSIM_AGENT_TEST_VM_CONFIGS may name another source of
 * configs (default tests/data/vm_configs).
 */
typedef struct {
	gchar *dir;
	gchar *db_path;
	gchar *db_url; /* QSIM_TEST_DATABASE=pg: the PostgreSQL store (DATABASE_URL), else NULL */
	gchar *run_dir;
	gchar *config_dir;
	gchar *images_dir;
	QsimStore *store;
	QsimConfig *config;
} AgentFixture;

/* Creates the directories and the store; the config is made by agent_fixture_config(). */
void agent_fixture_init(AgentFixture *fx);

/* Builds fx->config from the fixture's paths plus "KEY=VALUE" overrides (NULL-terminated). */
void agent_fixture_config(AgentFixture *fx, ...) G_GNUC_NULL_TERMINATED;

/* Returns: (transfer full): the environment a `qsimd` child must get for this fixture */
gchar **agent_fixture_environ(AgentFixture *fx, const gchar *const *overrides);

void agent_fixture_clear(AgentFixture *fx);

/* Removes @path and everything below it (symlinks are removed, not followed). */

/* Returns: TRUE when the tiny guest can run; else the test is skipped (or fails when
 * QSIM_REQUIRE_VM is set) */
gboolean agent_test_require_vm(AgentFixture *fx);

/* Runs the default main context until @pred returns TRUE or @timeout_s passes (a hang
 * guard, not a timing assertion). Returns: the last value of @pred */
gboolean agent_test_wait(gboolean (*pred)(gpointer), gpointer data, guint timeout_s);

/* Returns: (transfer full): the request as the store has it now (asserts it exists) */
QsimRequest *agent_test_get(AgentFixture *fx, const gchar *uuid);

/* Returns: the request's status now */
QsimStatus agent_test_status(AgentFixture *fx, const gchar *uuid);

/* Waits (main loop) until @uuid is final; returns its final row (transfer full). */
QsimRequest *agent_test_wait_final(AgentFixture *fx, const gchar *uuid, guint timeout_s);

/* Returns: (transfer full): all bytes of @uuid's logs of @log_type, in seq order */
GByteArray *agent_test_log_bytes(AgentFixture *fx, const gchar *uuid, gint log_type);
gchar *agent_test_log_text(AgentFixture *fx, const gchar *uuid, gint log_type);
gchar *agent_test_submit(AgentFixture *fx, const gchar *vm, const gchar *commands,
                         gint64 timeout_s);

/* Returns: (transfer full) (element-type QsimLogEntry): all of @uuid's log entries */
GPtrArray *agent_test_logs(AgentFixture *fx, const gchar *uuid);

/* Returns: how many live processes have @needle in their command line */
guint agent_test_count_procs(const gchar *needle);

/* Returns: how many entries @dir has (0 when missing) */
guint agent_test_count_dir(const gchar *dir);

G_END_DECLS
