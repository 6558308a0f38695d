#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "agent-test-util.h"
#include "agent/qsim-job.h"
#include "common/qsim-vm-config.h"
#include "store/qsim-log-entry.h"
#include "vm/qsim-template.h"

/* Fast start through the agent's job, end to end: real tiny guest, real database. */

typedef struct {
	AgentFixture fx;
	gchar *state_dir;
	QsimTemplate *tpl;
} Fixture;

static void
wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

static gboolean
have_result(gpointer data)
{
	return *(GAsyncResult **)data != NULL;
}

static void
fixture_base(Fixture *f)
{
	g_autofree gchar *setting = NULL;

	agent_fixture_init(&f->fx);
	f->state_dir = g_build_filename(f->fx.dir, "state", NULL);
	setting = g_strdup_printf("QSIM_STATE_DIR=%s", f->state_dir);
	agent_fixture_config(&f->fx, setting, NULL);
	f->tpl = qsim_template_new(f->state_dir, "tiny");
}

static gboolean
fixture_setup(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	QsimVmConfig *config;

	fixture_base(f);
	if (!agent_test_require_vm(&f->fx))
		return FALSE;
	config = qsim_vm_config_load(f->fx.images_dir, f->fx.config_dir, "tiny", &error);
	g_assert_no_error(error);
	qsim_template_build_async(f->tpl, config, f->fx.run_dir, NULL, wait_cb, &res);
	/* a hang guard only: a build is about 10 s here */
	g_assert_true(agent_test_wait(have_result, &res, 300));
	g_assert_true(qsim_template_build_finish(f->tpl, res, &error));
	g_assert_no_error(error);
	return TRUE;
}

static void
fixture_teardown(Fixture *f)
{
	g_autoptr(GError) error = NULL;

	if (f->tpl != NULL) {
		g_assert_true(qsim_template_remove(f->tpl, &error));
		g_assert_no_error(error);
	}
	g_clear_object(&f->tpl);
	g_free(f->state_dir);
	agent_fixture_clear(&f->fx);
}

/* Claims and runs one request with a QsimJob; returns its final row. */
static QsimRequest *
run_request_full(Fixture *f, const gchar *commands, gchar **artifacts, const gchar *upload_id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimRequest) created = qsim_store_create_request_full(
	    f->fx.store, "tiny", commands, 120, artifacts, upload_id, &error);
	g_autoptr(QsimRequest) claimed = NULL;
	g_autoptr(QsimTemplateService) service = NULL;
	g_autoptr(QsimJob) job = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	QsimStatus status;

	g_assert_no_error(error);
	claimed = qsim_store_claim_next(f->fx.store, "agent-fast", 60000, 0, &error);
	g_assert_no_error(error);
	g_assert_nonnull(claimed);
	job = qsim_job_new(f->fx.config, f->fx.store, "agent-fast", claimed);
	service = qsim_template_service_new(f->fx.config, f->fx.store);
	qsim_job_set_template_service(job, service);
	qsim_job_run_async(job, wait_cb, &res);
	g_assert_true(agent_test_wait(have_result, &res, 300));
	g_assert_true(qsim_job_run_finish(job, res, &status, &error));
	g_assert_no_error(error);
	return agent_test_get(&f->fx, created->uuid);
}

static QsimRequest *
run_request(Fixture *f, const gchar *commands)
{
	return run_request_full(f, commands, NULL, NULL);
}

static gboolean
system_log_has(Fixture *f, const gchar *uuid, const gchar *needle)
{
	g_autoptr(GByteArray) sys = agent_test_log_bytes(&f->fx, uuid, QSIM_LOG_SYSTEM);
	g_autofree gchar *text = g_strndup((const gchar *)sys->data, sys->len);

	return strstr(text, needle) != NULL;
}

static void
test_restored(void)
{
	Fixture f = {0};
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GPtrArray) logs = NULL;
	gboolean checked = FALSE;

	if (fixture_setup(&f)) {
		r = run_request(&f, "date -u +%s");
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_true(system_log_has(&f, r->uuid, "restored from snapshot"));
		/* files in and out of a restored VM: the same path as after a boot */
		{
			static const gchar *const paths[] = {"/root/out.txt", NULL};
			g_autofree gchar *upload_id = g_uuid_string_random();
			g_autofree gchar *sum =
			    g_compute_checksum_for_string(G_CHECKSUM_SHA256, "restored\n", -1);
			g_autoptr(GBytes) chunk = g_bytes_new_static("restored\n", 9);
			g_autoptr(QsimRequest) r2 = NULL;
			g_autoptr(GPtrArray) rows = NULL;
			g_autoptr(GError) error = NULL;

			g_assert_true(qsim_store_upload_add_file(f.fx.store, upload_id, 0,
			                                         QSIM_UPLOAD_FILE, "/root/in.txt",
			                                         0644, &error));
			g_assert_true(qsim_store_upload_put_chunk(f.fx.store, upload_id, 0, 0,
			                                          chunk, &error));
			g_assert_true(qsim_store_upload_finish_file(f.fx.store, upload_id, 0, 9,
			                                            sum, &error));
			r2 = run_request_full(&f, "cp /root/in.txt /root/out.txt", (gchar **)paths,
			                      upload_id);
			/* why, when it did not end done (the status alone says little) */
			if (r2->status != QSIM_STATUS_DONE)
				g_printerr("restored upload request ended %s: %s\n",
				           qsim_status_to_string(r2->status), r2->error);
			g_assert_cmpint(r2->status, ==, QSIM_STATUS_DONE);
			g_assert_true(system_log_has(&f, r2->uuid, "restored from snapshot"));
			g_assert_true(system_log_has(&f, r2->uuid, "uploaded 1 part"));
			rows = qsim_store_list_artifacts(f.fx.store, r2->uuid, &error);
			g_assert_no_error(error);
			g_assert_cmpuint(rows->len, ==, 1);
			g_assert_cmpstr(((QsimArtifactRecord *)rows->pdata[0])->sha256, ==, sum);
		}
		g_assert_true(system_log_has(&f, r->uuid, "guest clock set from the host"));
		g_assert_false(system_log_has(&f, r->uuid, "cold boot"));
		/* the guest's clock against the host's when its output arrived */
		logs = agent_test_logs(&f.fx, r->uuid);
		for (guint i = 0; i < logs->len; i++) {
			QsimLogEntry *e = g_ptr_array_index(logs, i);
			g_autofree gchar *out = NULL;
			gsize len = 0;
			const gchar *data;

			if (e->log_type != QSIM_LOG_STDOUT)
				continue;
			data = g_bytes_get_data(e->output, &len);
			out = g_strndup(data, len);
			g_assert_cmpfloat(ABS(g_ascii_strtod(out, NULL) - e->timestamp_ms / 1000.0),
			                  <=, 2.0);
			checked = TRUE;
		}
		g_assert_true(checked);
	}
	fixture_teardown(&f);
}

static void
test_corrupt_falls_back(void)
{
	Fixture f = {0};
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;
	guint8 junk[65536];
	GStatBuf st;
	const gchar *state;
	gint fd;

	if (fixture_setup(&f)) {
		/* garbage in the middle, size kept: only the restore itself can notice */
		state = qsim_template_get_state_path(f.tpl);
		g_assert_cmpint(g_stat(state, &st), ==, 0);
		g_assert_cmpint(g_chmod(state, 0644), ==, 0);
		memset(junk, 0xa5, sizeof(junk));
		fd = g_open(state, O_WRONLY, 0);
		g_assert_cmpint(fd, >=, 0);
		for (goffset off = 4096; off < st.st_size - (goffset)sizeof(junk);
		     off += st.st_size / 8)
			g_assert_cmpint(pwrite(fd, junk, sizeof(junk), off), ==, sizeof(junk));
		g_assert_cmpint(close(fd), ==, 0);

		r = run_request(&f, "echo ok");
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_true(system_log_has(&f, r->uuid, "fast start failed"));
		g_assert_true(system_log_has(&f, r->uuid, "cold boot"));
		config = qsim_vm_config_load(f.fx.images_dir, f.fx.config_dir, "tiny", &error);
		g_assert_no_error(error);
		g_assert_cmpint(qsim_template_check(f.tpl, config, &reason), ==,
		                QSIM_TEMPLATE_STATE_STALE);

		/* the next request does not even try it */
		g_clear_pointer(&r, qsim_request_free);
		r = run_request(&f, "echo again");
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_true(system_log_has(&f, r->uuid, "cold boot (fast start:"));
		g_assert_false(system_log_has(&f, r->uuid, "restored from snapshot"));
	}
	fixture_teardown(&f);
}

static gboolean
template_ready(gpointer data)
{
	Fixture *f = data;
	g_autoptr(QsimVmConfig) config =
	    qsim_vm_config_load(f->fx.images_dir, f->fx.config_dir, "tiny", NULL);

	return config != NULL && !qsim_template_is_building(f->tpl) &&
	       qsim_template_check(f->tpl, config, NULL) == QSIM_TEMPLATE_STATE_READY;
}

static void
test_fast_start_config(void)
{
	Fixture f = {0};
	g_autoptr(QsimRequest) r = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *more = NULL;

	fixture_base(&f);
	if (agent_test_require_vm(&f.fx)) {
		/* opt in through the VM config: the first request boots cold and starts a build */
		conf = g_build_filename(f.fx.config_dir, "tiny.conf", NULL);
		g_assert_true(g_file_get_contents(conf, &text, NULL, &error));
		g_assert_no_error(error);
		more = g_strconcat(text, "FAST_START=snapshot\n", NULL);
		g_assert_true(g_file_set_contents(conf, more, -1, &error));
		g_assert_no_error(error);

		r = run_request(&f, "echo first");
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_true(system_log_has(&f, r->uuid, "cold boot (fast start: no template)"));
		g_assert_true(system_log_has(&f, r->uuid, "building the template of tiny"));
		/* a hang guard only: the background build takes about 10 s */
		g_assert_true(agent_test_wait(template_ready, &f, 300));

		g_clear_pointer(&r, qsim_request_free);
		r = run_request(&f, "echo second");
		g_assert_cmpint(r->status, ==, QSIM_STATUS_DONE);
		g_assert_true(system_log_has(&f, r->uuid, "restored from snapshot"));
	}
	fixture_teardown(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qsim/agent/fast-start/restored", test_restored);
	g_test_add_func("/qsim/agent/fast-start/corrupt-falls-back", test_corrupt_falls_back);
	g_test_add_func("/qsim/agent/fast-start/config-opt-in", test_fast_start_config);
	return g_test_run();
}
