#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "agent/qsim-accel-resolver.h"
#include "common/qsim-error.h"
#include "test-util.h"
#include "store/qsim-store-factory.h"

/*
 * The resolver's promises with a real SQLite file: a verdict probed once is stored under
 * this host and reused by the next process (a new resolver on another connection), a
 * changed cache key probes again, forced modes never probe, and a VM's own ACCEL wins.
 * No KVM is needed: the QSIM_KVM_DEVICE hook points at a device that does not exist.
 */

typedef struct {
	gchar *dir;
	gchar *db;
	gchar **envp;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	g_autofree gchar *missing = NULL;

	f->dir = qsim_test_tmpdir_new();
	f->db = g_build_filename(f->dir, "db.sqlite", NULL);
	missing = g_build_filename(f->dir, "no-kvm", NULL);
	g_setenv("QSIM_KVM_DEVICE", missing, TRUE);
	f->envp = g_new0(gchar *, 1);
	f->envp = g_environ_setenv(f->envp, "HOME", f->dir, TRUE);
	f->envp = g_environ_setenv(f->envp, "QSIM_STATE_DIR", f->dir, TRUE);
	f->envp = g_environ_setenv(f->envp, "QSIM_RUN_DIR", f->dir, TRUE);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	g_unsetenv("QSIM_KVM_DEVICE");
	qsim_accel_resolver_set_default(NULL);
	qsim_test_rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->db);
	g_strfreev(f->envp);
}

static QsimConfig *
load_config(Fixture *f, const gchar *const *extra)
{
	g_autoptr(QsimConfig) config = qsim_config_new();
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) envp = g_strdupv(f->envp);

	for (guint i = 0; extra != NULL && extra[i] != NULL; i++) {
		g_auto(GStrv) kv = g_strsplit(extra[i], "=", 2);
		envp = g_environ_setenv(envp, kv[0], kv[1], TRUE);
	}
	g_assert_true(qsim_config_load(config, NULL, envp, f->dir, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&config);
}

static QsimAccelResolver *
prepared(QsimConfig *config, QsimStore *store)
{
	g_autoptr(GError) error = NULL;
	QsimAccelResolver *r = qsim_accel_resolver_new(config, store);

	g_assert_true(qsim_accel_resolver_prepare_sync(r, &error));
	g_assert_no_error(error);
	return r;
}

static void
test_cached_across_processes(Fixture *f, gconstpointer data)
{
	g_autoptr(QsimConfig) config = load_config(f, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStore) s1 = qsim_store_open(f->db, &error);
	g_autoptr(QsimStore) s2 = NULL;
	g_autoptr(QsimAccelResolver) r1 = NULL;
	g_autoptr(QsimAccelResolver) r2 = NULL;
	g_autoptr(QsimAccelResolver) r3 = NULL;
	g_autoptr(QsimAccelVerdict) stored = NULL;
	g_autoptr(QsimAccelVerdict) first = NULL;
	g_autoptr(QsimConfig) other_key = NULL;
	const gchar *const slower[] = {"QSIM_KVM_PROBE_TIMEOUT=7", NULL};
	g_autofree gchar *why = NULL;

	g_assert_no_error(error);
	r1 = prepared(config, s1);
	g_assert_nonnull(qsim_accel_resolver_get_verdict(r1));
	first = qsim_accel_verdict_copy(qsim_accel_resolver_get_verdict(r1));
	g_assert_false(first->kvm);
	g_assert_nonnull(strstr(first->reason, "no KVM device at"));
	stored = qsim_store_get_accel_verdict(s1, qsim_store_get_local_host(), &error);
	g_assert_no_error(error);
	g_assert_cmpstr(stored->cache_key, ==, first->cache_key);

	/* the next process: its own connection, the same answer, not decided again */
	g_usleep(5000);
	s2 = qsim_store_open(f->db, &error);
	g_assert_no_error(error);
	r2 = prepared(config, s2);
	g_assert_cmpint(qsim_accel_resolver_get_verdict(r2)->probed_at, ==, first->probed_at);

	/* something the answer depends on changed: decided again, and stored */
	other_key = load_config(f, slower);
	r3 = prepared(other_key, s2);
	g_assert_cmpstr(qsim_accel_resolver_get_verdict(r3)->cache_key, !=, first->cache_key);
	g_clear_pointer(&stored, qsim_accel_verdict_free);
	stored = qsim_store_get_accel_verdict(s1, qsim_store_get_local_host(), &error);
	g_assert_cmpstr(stored->cache_key, ==, qsim_accel_resolver_get_verdict(r3)->cache_key);

	/* auto without KVM: TCG, and the reason travels with the choice */
	g_assert_false(qsim_accel_resolver_choose(r2, NULL, &why));
	g_assert_true(g_str_has_prefix(why, "tcg (ACCEL=auto from default: no KVM device at "));
}

static void
test_forced_modes(Fixture *f, gconstpointer data)
{
	const gchar *const kvm[] = {"QSIM_ACCEL=kvm", NULL};
	g_autoptr(QsimConfig) config = load_config(f, kvm);
	g_autoptr(QsimAccelResolver) r = prepared(config, NULL);
	QsimVmConfig vm = {.name = (gchar *)"vm1", .accel = QSIM_ACCEL_MODE_INHERIT};
	g_autofree gchar *w1 = NULL;
	g_autofree gchar *w2 = NULL;
	g_autofree gchar *w3 = NULL;

	/* a forced mode runs no probe */
	g_assert_null(qsim_accel_resolver_get_verdict(r));
	g_assert_true(qsim_accel_resolver_choose(r, &vm, &w1));
	g_assert_cmpstr(w1, ==, "kvm (ACCEL=kvm from environment QSIM_ACCEL)");
	/* the VM's own ACCEL wins */
	vm.accel = QSIM_ACCEL_MODE_TCG;
	g_assert_false(qsim_accel_resolver_choose(r, &vm, &w2));
	g_assert_cmpstr(w2, ==, "tcg (ACCEL=tcg from vm1.conf)");
	/* auto in a VM whose host has no verdict: TCG, never a guess */
	vm.accel = QSIM_ACCEL_MODE_AUTO;
	g_assert_false(qsim_accel_resolver_choose(r, &vm, &w3));
	g_assert_cmpstr(w3, ==, "tcg (ACCEL=auto from vm1.conf: no KVM probe has run)");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
	ADD("/qsim/agent/accel-resolver/cached-across-processes", test_cached_across_processes);
	ADD("/qsim/agent/accel-resolver/forced-modes", test_forced_modes);
	return g_test_run();
}
