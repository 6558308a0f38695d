#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include <unistd.h>

#include "agent/qsim-agent-pool.h"
#include "agent/qsim-agent-recovery.h"
#include "agent/qsim-host-publisher.h"
#include "common/qsim-error.h"
#include "common/qsim-metrics.h"
#include "common/qsim-layout.h"
#include "store/qsim-store-hosts.h"

struct _QsimAgentPool {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store;
	GPtrArray *agents; /* (element-type QsimAgent) */
	gulong store_handler;
	gulong elsewhere_handler;
	guint claim_idle_id;
	guint poll_id;
	guint recovery_id;
	gboolean started;
	gboolean stopping;
	GTask *stop_task;
	guint grace_id;
	QsimWarmPool *warm_pool;
	gboolean warm_stopped;
	gboolean templates_stopped;
	QsimTemplateService *template_service;
	QsimHostPublisher *publisher;
};

G_DEFINE_TYPE(QsimAgentPool, qsim_agent_pool, G_TYPE_OBJECT)

enum { SIGNAL_JOB_STARTED, SIGNAL_JOB_FINISHED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

static GHashTable *
qsim_agent_pool_running_uuids(QsimAgentPool *self)
{
	GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < self->agents->len; i++) {
		QsimJob *job = qsim_agent_get_job(g_ptr_array_index(self->agents, i));

		if (job != NULL)
			g_hash_table_add(set, g_strdup(qsim_job_get_uuid(job)));
	}
	return set;
}

guint
qsim_agent_pool_get_n_busy(QsimAgentPool *self)
{
	guint n = 0;

	for (guint i = 0; i < self->agents->len; i++) {
		if (!qsim_agent_is_idle(g_ptr_array_index(self->agents, i)))
			n++;
	}
	return n;
}

guint
qsim_agent_pool_get_n_agents(QsimAgentPool *self)
{
	return self->agents->len;
}

QsimJob *
qsim_agent_pool_lookup_job(QsimAgentPool *self, const gchar *uuid)
{
	for (guint i = 0; i < self->agents->len; i++) {
		QsimJob *job = qsim_agent_get_job(g_ptr_array_index(self->agents, i));

		if (job != NULL && g_strcmp0(qsim_job_get_uuid(job), uuid) == 0)
			return job;
	}
	return NULL;
}

/* Every slot is taken and a request waits: a warm VM of ours gives its slot up
 * (free once its QEMU is gone, "slot-freed" then claims again). A request never
 * waits behind VMs that only wait for requests. */
static void
qsim_agent_pool_make_room(QsimAgentPool *self)
{
	QsimRequestFilter filter;
	g_autoptr(GPtrArray) pending = NULL;

	qsim_request_filter_init(&filter);
	filter.status = QSIM_STATUS_PENDING;
	filter.limit = 1;
	pending = qsim_store_list_requests(self->store, &filter, NULL, NULL);
	if (pending == NULL || pending->len == 0) {
		qsim_warm_pool_unyield(self->warm_pool);
		return;
	}
	qsim_warm_pool_yield(self->warm_pool,
	                     ((const QsimRequest *)g_ptr_array_index(pending, 0))->vm_name);
}

void
qsim_agent_pool_claim_now(QsimAgentPool *self)
{
	guint max_vms = qsim_config_get_max_concurrent_vms(self->config);
	guint max_host = qsim_config_get_max_vms_per_host(self->config);

	if (!self->started || self->stopping)
		return;
	for (guint i = 0; i < self->agents->len; i++) {
		QsimAgent *agent = g_ptr_array_index(self->agents, i);
		g_autoptr(GError) error = NULL;

		if (!qsim_agent_is_idle(agent))
			continue;
		/* the slot table counts builds and warm VMs too, of every process */
		if (!qsim_agent_try_claim(agent, max_vms, max_host, &error)) {
			/* nothing pending, or a cap is reached */
			if (error != NULL)
				g_warning("agent %s cannot claim: %s", qsim_agent_get_id(agent),
				          error->message);
			else
				qsim_agent_pool_make_room(self);
			return;
		}
		qsim_warm_pool_unyield(self->warm_pool);
		g_signal_emit(self, signals[SIGNAL_JOB_STARTED], 0, qsim_agent_get_job(agent));
	}
}

static gboolean
qsim_agent_pool_claim_idle_cb(gpointer user_data)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(user_data);

	self->claim_idle_id = 0;
	qsim_agent_pool_claim_now(self);
	return G_SOURCE_REMOVE;
}

/* coalesces wake-ups; never claims from inside a store signal emission */
static void
qsim_agent_pool_schedule_claim(QsimAgentPool *self)
{
	if (self->claim_idle_id != 0 || !self->started || self->stopping)
		return;
	self->claim_idle_id = g_idle_add(qsim_agent_pool_claim_idle_cb, self);
}

static void
qsim_agent_pool_request_changed_cb(QsimStore *store, const gchar *uuid, gint status,
                                   gpointer user_data)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(user_data);

	/* a new or released request, or a slot freed by a final status */
	if (status == QSIM_STATUS_PENDING || qsim_status_is_final((QsimStatus)status))
		qsim_agent_pool_schedule_claim(self);
}

/* another process committed: perhaps a submit (`qsimd api`) or a freed slot */
static void
qsim_agent_pool_changed_elsewhere_cb(QsimStore *store, gpointer user_data)
{
	qsim_agent_pool_schedule_claim(QSIM_AGENT_POOL(user_data));
}

/* stops the cross-process wake-up; the pool takes no new work after this */
static void
qsim_agent_pool_unwatch(QsimAgentPool *self)
{
	if (self->elsewhere_handler == 0)
		return;
	g_signal_handler_disconnect(self->store, self->elsewhere_handler);
	self->elsewhere_handler = 0;
	qsim_store_unwatch_changes(self->store);
}

static gboolean
qsim_agent_pool_poll_cb(gpointer user_data)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(user_data);

	qsim_agent_pool_claim_now(self);
	/* prepare requests from other processes (the API's in `qsimd api`) */
	qsim_template_service_poll(self->template_service);
	return G_SOURCE_CONTINUE;
}

static void
qsim_agent_pool_build_finished_cb(QsimTemplateService *service, const gchar *vm_name, gboolean ok,
                                  gpointer user_data)
{
	/* the build's VM slot is free */
	qsim_agent_pool_schedule_claim(QSIM_AGENT_POOL(user_data));
}

/* The warm and build slots of dead processes on this host, and of hosts whose
 * heartbeat is stale (their QEMUs died with their agents). Returns: how many */
static guint
qsim_agent_pool_recover_slots(QsimAgentPool *self)
{
	g_autoptr(GPtrArray) slots = NULL;
	g_autoptr(GHashTable) done = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GError) error = NULL;
	guint total = 0;
	guint n = 0;

	if (!qsim_store_release_stale_host_slots(self->store, &total, &error)) {
		g_warning("cannot free the VM slots of stale hosts: %s", error->message);
		g_clear_error(&error);
	}
	slots = qsim_store_list_slots(self->store, qsim_host_id_get(), &error);
	if (slots == NULL) {
		g_warning("cannot read the VM slots: %s", error->message);
		return total;
	}
	for (guint i = 0; i < slots->len; i++) {
		const QsimVmSlot *s = g_ptr_array_index(slots, i);
		g_autofree gchar *host = NULL;
		GPid pid = 0;
		gchar *process;

		/* a request's slot goes with its lease, through the request's recovery */
		if (s->kind == QSIM_VM_SLOT_REQUEST || !qsim_agent_id_parse(s->owner, &host, &pid))
			continue;
		process = g_strdup_printf("%s:%d", host, (gint)pid);
		if (!g_hash_table_add(done, process))
			continue;
		if (pid == getpid() || !qsim_agent_recovery_agent_is_dead_local(s->owner))
			continue;
		if (!qsim_store_release_process_slots(self->store, s->owner, &n, &error)) {
			g_warning("cannot free the VM slots of %s: %s", process, error->message);
			g_clear_error(&error);
			continue;
		}
		if (n > 0)
			g_info("freed %u VM slots of process %s, which is gone", n, process);
		total += n;
	}
	return total;
}

guint
qsim_agent_pool_recover_now(QsimAgentPool *self)
{
	g_autoptr(GHashTable) skip = qsim_agent_pool_running_uuids(self);
	g_autoptr(GError) error = NULL;
	guint n = 0;

	if (!qsim_agent_recovery_run(self->store, qsim_config_get_run_dir(self->config), skip, &n,
	                             &error))
		g_warning("recovery failed: %s", error->message);
	if (qsim_agent_pool_recover_slots(self) > 0)
		qsim_agent_pool_schedule_claim(self);
	/* template builds of dead processes: their prepare is queued again */
	if (qsim_template_service_recover(self->template_service) > 0)
		qsim_template_service_poll(self->template_service);
	if (n > 0)
		qsim_agent_pool_schedule_claim(self);
	return n;
}

static gboolean
qsim_agent_pool_recovery_cb(gpointer user_data)
{
	qsim_agent_pool_recover_now(QSIM_AGENT_POOL(user_data));
	return G_SOURCE_CONTINUE;
}

static void
qsim_agent_pool_maybe_stopped(QsimAgentPool *self)
{
	g_autoptr(GTask) task = NULL;

	if (self->stop_task == NULL || qsim_agent_pool_get_n_busy(self) > 0 ||
	    !self->warm_stopped || !self->templates_stopped)
		return;
	g_clear_handle_id(&self->grace_id, g_source_remove);
	task = g_steal_pointer(&self->stop_task);
	g_info("all agents stopped");
	g_task_return_boolean(task, TRUE);
}

static void
qsim_agent_pool_job_finished_cb(QsimAgent *agent, const gchar *uuid, gint status,
                                gpointer user_data)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(user_data);

	g_signal_emit(self, signals[SIGNAL_JOB_FINISHED], 0, uuid, status);
	if (self->stopping) {
		qsim_agent_pool_maybe_stopped(self);
		return;
	}
	qsim_agent_pool_schedule_claim(self);
	qsim_warm_pool_refill_soon(self->warm_pool);
}

gboolean
qsim_agent_pool_start(QsimAgentPool *self, GError **error)
{
	const gchar *run_dir = qsim_config_get_run_dir(self->config);
	gdouble poll_s = qsim_config_get_agent_poll_interval(self->config);
	guint lease_ms = qsim_config_get_lease_seconds(self->config) * 1000;
	guint n = 0;

	g_return_val_if_fail(!self->started, FALSE);
	/* our own stale claims at once (their process is gone), expired leases of others */
	if (!qsim_agent_recovery_run(self->store, run_dir, NULL, &n, error)) {
		g_prefix_error(error, "recovery at start failed: ");
		return FALSE;
	}
	qsim_template_service_recover(self->template_service);
	{
		g_autofree gchar *me = qsim_layout_dup_builder_id();

		/* nothing of ours runs yet: slots under our pid are an earlier process's */
		if (!qsim_store_release_process_slots(self->store, me, NULL, error)) {
			g_prefix_error(error, "recovery at start failed: ");
			return FALSE;
		}
	}
	qsim_agent_pool_recover_slots(self);
	qsim_agent_recovery_sweep_run_dir(self->store, run_dir, NULL);
	g_info("%u agents started (max %u VMs in the database, poll every %.2f s, %u recovered)",
	       self->agents->len, qsim_config_get_max_concurrent_vms(self->config), poll_s, n);
	self->started = TRUE;
	/* exported at 0 before the first request: a rate() over them is then 0, not absent */
	for (guint m = QSIM_START_MODE_COLD; m < QSIM_START_MODE_COUNT; m++) {
		const gchar *mode = qsim_start_mode_to_string((QsimStartMode)m);

		qsim_metrics_touch(QSIM_METRIC_FIRST_BYTE, mode, NULL, NULL);
		qsim_metrics_touch(QSIM_METRIC_READY, mode, NULL, NULL);
	}
	self->store_handler = g_signal_connect(
	    self->store, "request-changed", G_CALLBACK(qsim_agent_pool_request_changed_cb), self);
	self->elsewhere_handler =
	    g_signal_connect(self->store, "changed-elsewhere",
	                     G_CALLBACK(qsim_agent_pool_changed_elsewhere_cb), self);
	qsim_store_watch_changes(self->store, QSIM_AGENT_POOL_WATCH_INTERVAL_MS);
	/* the poll stays as a safety net for a missed wake-up */
	self->poll_id =
	    g_timeout_add(MAX((guint)(poll_s * 1000), 10), qsim_agent_pool_poll_cb, self);
	self->recovery_id =
	    g_timeout_add(CLAMP(lease_ms / 3, 200, QSIM_AGENT_POOL_RECOVERY_INTERVAL_MS),
	                  qsim_agent_pool_recovery_cb, self);
	qsim_agent_pool_schedule_claim(self);
	qsim_warm_pool_start(self->warm_pool);
	qsim_template_service_start(self->template_service);
	qsim_agent_pool_publish_now(self);
	qsim_host_publisher_start(self->publisher);
	return TRUE;
}

gboolean
qsim_agent_pool_refresh_templates(QsimAgentPool *self)
{
	qsim_host_publisher_refresh_templates(self->publisher);
	return TRUE;
}

gboolean
qsim_agent_pool_publish_now(QsimAgentPool *self)
{
	g_autoptr(GError) error = NULL;

	if (qsim_host_publisher_publish(self->publisher, &error))
		return TRUE;
	g_warning("cannot publish this host: %s", error->message);
	return FALSE;
}

void
qsim_agent_pool_abort_jobs(QsimAgentPool *self)
{
	g_clear_handle_id(&self->grace_id, g_source_remove);
	for (guint i = 0; i < self->agents->len; i++)
		qsim_agent_abort(g_ptr_array_index(self->agents, i),
		                 QSIM_AGENT_POOL_SHUTDOWN_REASON);
}

static gboolean
qsim_agent_pool_grace_cb(gpointer user_data)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(user_data);

	self->grace_id = 0;
	g_info("shutdown grace over: stopping %u running jobs", qsim_agent_pool_get_n_busy(self));
	qsim_agent_pool_abort_jobs(self);
	return G_SOURCE_REMOVE;
}

static void
qsim_agent_pool_templates_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimAgentPool) self = QSIM_AGENT_POOL(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_template_service_stop_finish(QSIM_TEMPLATE_SERVICE(source), res, &error))
		g_warning("%s", error->message);
	self->templates_stopped = TRUE;
	qsim_agent_pool_maybe_stopped(self);
}

static void
qsim_agent_pool_warm_stopped_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimAgentPool) self = QSIM_AGENT_POOL(user_data);
	g_autoptr(GError) error = NULL;

	if (!qsim_warm_pool_stop_finish(QSIM_WARM_POOL(source), res, &error))
		g_warning("%s", error->message);
	self->warm_stopped = TRUE;
	qsim_agent_pool_maybe_stopped(self);
}

void
qsim_agent_pool_stop_async(QsimAgentPool *self, guint grace_ms, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, qsim_agent_pool_stop_async);
	if (self->stop_task != NULL) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "the agents are already stopping");
		return;
	}
	self->stopping = TRUE;
	qsim_agent_pool_unwatch(self);
	qsim_host_publisher_stop(self->publisher);
	g_clear_handle_id(&self->claim_idle_id, g_source_remove);
	g_clear_handle_id(&self->poll_id, g_source_remove);
	g_clear_handle_id(&self->recovery_id, g_source_remove);
	g_info("stopping agents: no new claims, %u running jobs get %u ms",
	       qsim_agent_pool_get_n_busy(self), grace_ms);
	self->stop_task = g_steal_pointer(&task);
	qsim_warm_pool_stop_async(self->warm_pool, qsim_agent_pool_warm_stopped_cb,
	                          g_object_ref(self));
	/* template builds are cancelled at once: they serve no request */
	qsim_template_service_stop_async(self->template_service,
	                                 qsim_agent_pool_templates_stopped_cb, g_object_ref(self));
	if (qsim_agent_pool_get_n_busy(self) > 0)
		self->grace_id = g_timeout_add(grace_ms, qsim_agent_pool_grace_cb, self);
	qsim_agent_pool_maybe_stopped(self);
}

gboolean
qsim_agent_pool_stop_finish(QsimAgentPool *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
qsim_agent_pool_dispose(GObject *object)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(object);

	g_clear_handle_id(&self->claim_idle_id, g_source_remove);
	g_clear_handle_id(&self->poll_id, g_source_remove);
	g_clear_handle_id(&self->recovery_id, g_source_remove);
	g_clear_handle_id(&self->grace_id, g_source_remove);
	qsim_agent_pool_unwatch(self);
	if (self->store_handler != 0) {
		g_signal_handler_disconnect(self->store, self->store_handler);
		self->store_handler = 0;
	}
	if (self->agents != NULL) {
		for (guint i = 0; i < self->agents->len; i++)
			g_signal_handlers_disconnect_by_data(g_ptr_array_index(self->agents, i),
			                                     self);
		g_clear_pointer(&self->agents, g_ptr_array_unref);
	}
	if (self->publisher != NULL)
		qsim_host_publisher_stop(self->publisher);
	g_clear_object(&self->publisher);
	if (self->warm_pool != NULL) {
		/* its slot-freed signal must not reach a pool going away */
		g_signal_handlers_disconnect_by_data(self->warm_pool, self);
		qsim_warm_pool_clear(self->warm_pool);
	}
	g_clear_object(&self->warm_pool);
	if (self->template_service != NULL) {
		/* a build still running keeps the service alive: drop our callbacks */
		g_signal_handlers_disconnect_by_data(self->template_service, self);
		g_clear_object(&self->template_service);
	}
	G_OBJECT_CLASS(qsim_agent_pool_parent_class)->dispose(object);
}

static void
qsim_agent_pool_finalize(GObject *object)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(object);

	g_clear_object(&self->store);
	g_clear_object(&self->config);
	G_OBJECT_CLASS(qsim_agent_pool_parent_class)->finalize(object);
}

static void
qsim_agent_pool_class_init(QsimAgentPoolClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_agent_pool_dispose;
	object_class->finalize = qsim_agent_pool_finalize;
	signals[SIGNAL_JOB_STARTED] =
	    g_signal_new("job-started", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                 NULL, G_TYPE_NONE, 1, QSIM_TYPE_JOB);
	signals[SIGNAL_JOB_FINISHED] =
	    g_signal_new("job-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                 NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT);
}

static void
qsim_agent_pool_init(QsimAgentPool *self)
{
	self->agents = g_ptr_array_new_with_free_func(g_object_unref);
}

/* the VM slots this process holds outside the warm pool: jobs and template builds */
static guint
qsim_agent_pool_slots_in_use(gpointer user_data)
{
	QsimAgentPool *self = QSIM_AGENT_POOL(user_data);

	return qsim_agent_pool_get_n_busy(self) +
	       qsim_template_service_get_n_builds(self->template_service);
}

QsimTemplateService *
qsim_agent_pool_get_template_service(QsimAgentPool *self)
{
	return self->template_service;
}

QsimWarmPool *
qsim_agent_pool_get_warm_pool(QsimAgentPool *self)
{
	return self->warm_pool;
}

/**
 * qsim_agent_pool_set_store_worker:
 * @worker: where the jobs claimed from now on write their logs and renew their
 *   leases, off the main loop (see QsimStoreWorker)
 */
void
qsim_agent_pool_set_store_worker(QsimAgentPool *self, QsimStoreWorker *worker)
{
	g_return_if_fail(QSIM_IS_AGENT_POOL(self));
	for (guint i = 0; i < self->agents->len; i++)
		qsim_agent_set_store_worker(g_ptr_array_index(self->agents, i), worker);
}

QsimAgentPool *
qsim_agent_pool_new(QsimConfig *config, QsimStore *store)
{
	QsimAgentPool *self = g_object_new(QSIM_TYPE_AGENT_POOL, NULL);
	guint n = qsim_config_get_agent_count(config);

	self->config = g_object_ref(config);
	self->store = g_object_ref(store);
	/* the pool's callback never outlives it: dispose drops the warm pool first */
	self->template_service = qsim_template_service_new(config, store);
	g_signal_connect(self->template_service, "build-finished",
	                 G_CALLBACK(qsim_agent_pool_build_finished_cb), self);
	self->warm_pool = qsim_warm_pool_new(config, qsim_agent_pool_slots_in_use, self);
	{
		g_autofree gchar *owner = qsim_layout_dup_builder_id();

		qsim_warm_pool_set_store(self->warm_pool, store, owner);
	}
	g_signal_connect_swapped(self->warm_pool, "slot-freed",
	                         G_CALLBACK(qsim_agent_pool_schedule_claim), self);
	for (guint i = 0; i < n; i++) {
		g_autofree gchar *id = qsim_agent_id_make(i);
		QsimAgent *agent = qsim_agent_new(config, store, id);

		g_signal_connect(agent, "job-finished", G_CALLBACK(qsim_agent_pool_job_finished_cb),
		                 self);
		qsim_agent_set_warm_pool(agent, self->warm_pool);
		qsim_agent_set_template_service(agent, self->template_service);
		g_ptr_array_add(self->agents, agent);
	}
	{
		g_autoptr(GStrvBuilder) ids = g_strv_builder_new();
		g_auto(GStrv) strv = NULL;

		for (guint i = 0; i < self->agents->len; i++)
			g_strv_builder_add(ids,
			                   qsim_agent_get_id(g_ptr_array_index(self->agents, i)));
		strv = g_strv_builder_end(ids);
		self->publisher =
		    qsim_host_publisher_new(config, store, self->template_service, self->warm_pool,
		                            (const gchar *const *)strv);
	}
	return self;
}
