#define G_LOG_DOMAIN "qsim-api"

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/qsim-api-handlers.h"
#include "api/qsim-api-metrics.h"
#include "common/qsim-accel-mode.h"
#include "common/qsim-metrics-text.h"
#include "common/qsim-metrics.h"

/*
 * GET /metrics: the Prometheus text format. Two kinds of metric (docs/metrics.md):
 * - shared state, from the database, the same whichever process serves it:
 *   counts by status, the totals kept by triggers (schema v6), slots, templates,
 *   the file's size. Only the API (`qsimd api`, `qsimd all`) exports them, so
 *   that a sum over processes never counts them twice.
 * - this process's own: its HTTP requests, store transactions, the requests its
 *   agents ran (histograms), its agents and warm VMs, its memory and CPU.
 * Every read is O(1) in the number of requests: a scrape at a million rows
 * costs what it costs at ten (tests/bench/metrics-scrape).
 */

static void
family(GString *out, const gchar *name, const gchar *type, const gchar *help)
{
	qsim_metrics_text_family(out, name, type, help);
}

static void
sample1(GString *out, const gchar *name, const gchar *label, const gchar *value, gdouble v)
{
	const gchar *names[] = {label};
	const gchar *values[] = {value};
	QsimMetricsLabels labels = {names, values, 1};

	qsim_metrics_text_sample(out, name, &labels, v);
}

static void
gauge(GString *out, const gchar *name, const gchar *help, gdouble v)
{
	family(out, name, "gauge", help);
	qsim_metrics_text_sample(out, name, NULL, v);
}

static void
write_totals(GString *out, const QsimStoreMetrics *m)
{
	static const struct {
		const gchar *event;
		const gchar *name;
		const gchar *label;
		const gchar *help;
	} simple[] = {
	    {"started", "qsim_vm_starts_total", "start_mode",
	     "VM starts by how the VM started; a restore that fell back to a cold boot counts "
	     "both."},
	    {"template_build", "qsim_template_builds_total", "result",
	     "Fast-start template builds by the state they ended in."},
	    {"output_bytes", "qsim_output_bytes_total", "log_type",
	     "Bytes of request output stored, by log type."},
	};
	const gchar *fnames[] = {"status", "reason"};

	family(out, "qsim_requests_submitted_total", "counter",
	       "Requests submitted, over every process using the database.");
	qsim_metrics_text_sample(out, "qsim_requests_submitted_total", NULL,
	                         (gdouble)qsim_store_metrics_get_total(m, "submitted", "", ""));
	family(out, "qsim_requests_finished_total", "counter",
	       "Requests that reached a final status, by status and the class of how they ended.");
	for (guint i = 0; i < m->totals->len; i++) {
		const QsimStoreTotal *t = g_ptr_array_index(m->totals, i);
		const gchar *fvalues[] = {t->label1, t->label2};
		QsimMetricsLabels labels = {fnames, fvalues, 2};

		if (g_strcmp0(t->event, "finished") == 0)
			qsim_metrics_text_sample(out, "qsim_requests_finished_total", &labels,
			                         (gdouble)t->n);
	}
	for (guint k = 0; k < G_N_ELEMENTS(simple); k++) {
		family(out, simple[k].name, "counter", simple[k].help);
		for (guint i = 0; i < m->totals->len; i++) {
			const QsimStoreTotal *t = g_ptr_array_index(m->totals, i);

			if (g_strcmp0(t->event, simple[k].event) == 0)
				sample1(out, simple[k].name, simple[k].label, t->label1,
				        (gdouble)t->n);
		}
	}
}

static void
write_shared(QsimApiServer *server, GString *out)
{
	QsimStore *store = qsim_api_server_get_store(server);
	QsimConfig *config = qsim_api_server_get_config(server);
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimStoreMetrics) m = qsim_store_get_metrics(store, &error);

	gauge(out, "qsim_database_up", "1 when the database could be read for this scrape.",
	      m != NULL);
	if (m == NULL) {
		g_warning("metrics: cannot read the database: %s", error->message);
		return;
	}
	write_totals(out, m);
	family(out, "qsim_requests", "gauge", "Requests in the database by status.");
	for (guint s = 0; s < QSIM_STATUS_COUNT; s++)
		sample1(out, "qsim_requests", "status", qsim_status_to_string((QsimStatus)s),
		        (gdouble)m->status_counts[s]);
	gauge(out, "qsim_oldest_pending_age_seconds",
	      "Age of the oldest pending request, 0 when none is pending.",
	      m->has_oldest_pending ? m->oldest_pending_age_ms / 1000.0 : 0);
	gauge(out, "qsim_vm_slots_used",
	      "VM slots in use, as MAX_CONCURRENT_VMS counts them: requests' VMs, warm VMs and "
	      "template builds, every process and host.",
	      m->active_vms);
	gauge(out, "qsim_vm_slots_max", "MAX_CONCURRENT_VMS: the cap on VM slots.",
	      qsim_config_get_max_concurrent_vms(config));
	gauge(out, "qsim_agents_leasing",
	      "Distinct agents holding a live lease, every process (idle agents hold none).",
	      m->active_agents);
	family(out, "qsim_templates", "gauge", "Fast-start templates by state, every host.");
	for (guint t = 0; t < QSIM_TEMPLATE_RECORD_STATE_COUNT; t++)
		sample1(out, "qsim_templates", "state",
		        qsim_template_record_state_to_string((QsimTemplateRecordState)t),
		        (gdouble)m->templates[t]);
	gauge(out, "qsim_database_size_bytes", "Size of the database's pages, free ones included.",
	      (gdouble)m->db_bytes);
	gauge(out, "qsim_database_free_bytes",
	      "Free pages in the database file (purged space not yet given back).",
	      (gdouble)m->db_free_bytes);
}

static void
write_agents(QsimApiServer *server, GString *out)
{
	guint n_agents = 0, n_busy = 0, parked = 0, starting = 0;

	if (!qsim_api_server_get_agents(server, &n_agents, &n_busy))
		return;
	qsim_api_server_get_warm_pool_counts(server, NULL, &parked, &starting);
	family(out, "qsim_agents", "gauge", "Agents of this process, idle or busy.");
	sample1(out, "qsim_agents", "state", "busy", n_busy);
	sample1(out, "qsim_agents", "state", "idle", n_agents - MIN(n_busy, n_agents));
	family(out, "qsim_warm_vms", "gauge", "Warm VMs of this process, parked or starting.");
	sample1(out, "qsim_warm_vms", "state", "parked", parked);
	sample1(out, "qsim_warm_vms", "state", "starting", starting);
	gauge(out, "qsim_vms_running",
	      "VMs (QEMU processes) this process runs: one per busy agent, plus warm VMs.",
	      n_busy + parked + starting);
}

static guint
count_fds(void)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	guint n = 0;

	while (dir != NULL && g_dir_read_name(dir) != NULL)
		n++;
	/* the directory's own descriptor is not one of ours */
	return n > 0 ? n - 1 : 0;
}

static guint64
resident_bytes(void)
{
	g_autofree gchar *text = NULL;
	guint64 pages = 0;

	if (!g_file_get_contents("/proc/self/statm", &text, NULL, NULL))
		return 0;
	/* size resident shared ...: the second field, in pages */
	if (sscanf(text, "%*u %" G_GUINT64_FORMAT, &pages) != 1)
		return 0;
	return pages * (guint64)sysconf(_SC_PAGESIZE);
}

static void
write_process(QsimApiServer *server, GString *out)
{
	struct rusage ru;
	gdouble cpu = 0;
	QsimConfig *config = qsim_api_server_get_config(server);
	QsimStore *store = qsim_api_server_get_store(server);
	QsimAccelMode mode = qsim_config_get_accel(config);
	const gchar *accel = qsim_accel_mode_to_string(mode);
	const gchar *qemu = qsim_api_server_get_qemu_version(server);
	const gchar *names[] = {"version", "qemu", "accel"};
	const gchar *values[3];
	QsimMetricsLabels labels = {names, values, 3};

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	gauge(out, "qsim_process_resident_memory_bytes", "Resident memory of this process.",
	      (gdouble)resident_bytes());
	gauge(out, "qsim_process_open_fds", "Open file descriptors of this process.", count_fds());
	family(out, "qsim_process_cpu_seconds_total", "counter",
	       "User and system CPU time of this process.");
	qsim_metrics_text_sample(out, "qsim_process_cpu_seconds_total", NULL, cpu);
	if (mode == QSIM_ACCEL_MODE_AUTO) {
		/* what auto resolved to on this host, when its agents probed KVM */
		g_autoptr(QsimAccelVerdict) v =
		    qsim_store_get_accel_verdict(store, qsim_store_get_local_host(), NULL);

		if (v != NULL)
			accel = v->kvm ? "kvm" : "tcg";
	}
	values[0] = PACKAGE_VERSION;
	values[1] = qemu != NULL ? qemu : "unknown";
	values[2] = accel;
	family(out, "qsim_build_info", "gauge",
	       "Always 1: the qsim version, the QEMU version and the accelerator in use.");
	qsim_metrics_text_sample(out, "qsim_build_info", &labels, 1);
}

/**
 * qsim_api_metrics_write:
 *
 * Appends everything /metrics serves from @server's process.
 */
void
qsim_api_metrics_write(QsimApiServer *server, GString *out)
{
	if (!qsim_api_server_get_metrics_only(server)) {
		write_shared(server, out);
		gauge(out, "qsim_sse_streams_open", "Log streams (SSE) this process serves now.",
		      qsim_api_server_get_stream_count(server));
	}
	write_agents(server, out);
	qsim_metrics_write(out);
	write_process(server, out);
}

void
qsim_api_metrics_get(QsimApiContext *ctx)
{
	GString *out = g_string_sized_new(16384);
	gsize len;

	qsim_api_metrics_write(ctx->server, out);
	len = out->len;
	soup_server_message_set_status(ctx->msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(ctx->msg, QSIM_METRICS_CONTENT_TYPE, SOUP_MEMORY_TAKE,
	                                 g_string_free(out, FALSE), len);
}

/**
 * qsim_api_metrics_parse_qemu_version:
 * @text: the output of `qemu-system-x86_64 --version`
 *
 * Returns: (transfer full) (nullable): "7.2.0" from "QEMU emulator version
 * 7.2.0 (Debian ...)": a bounded label, never the whole line
 */
gchar *
qsim_api_metrics_parse_qemu_version(const gchar *text)
{
	const gchar *p = text != NULL ? strstr(text, "version ") : NULL;
	gsize n = 0;

	if (p == NULL)
		return NULL;
	p += strlen("version ");
	while (n < 32 && (g_ascii_isalnum(p[n]) || p[n] == '.' || p[n] == '-' || p[n] == '+'))
		n++;
	return n > 0 ? g_strndup(p, n) : NULL;
}

static void
qemu_version_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimApiServer) server = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *version = NULL;

	if (!g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &out, NULL, &error)) {
		g_debug("metrics: QEMU version unknown: %s", error->message);
		return;
	}
	version = qsim_api_metrics_parse_qemu_version(out);
	qsim_api_server_set_qemu_version(server, version);
}

/**
 * qsim_api_metrics_probe_qemu:
 *
 * Runs `QEMU --version` in the background for qsim_build_info; until it answers
 * (or when QEMU is missing) the label says "unknown". Never blocks the loop.
 */
void
qsim_api_metrics_probe_qemu(QsimApiServer *server)
{
	const gchar *argv[] = {qsim_config_get_qemu(qsim_api_server_get_config(server)),
	                       "--version", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = g_subprocess_newv(
	    argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);

	if (proc == NULL) {
		g_debug("metrics: QEMU version unknown: %s", error->message);
		return;
	}
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, qemu_version_cb,
	                                    g_object_ref(server));
}
