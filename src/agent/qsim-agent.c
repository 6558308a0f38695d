#define G_LOG_DOMAIN "qsim-agent"

#include "config.h"

#include "agent/qsim-agent.h"
#include "common/qsim-error.h"
#include "common/qsim-metrics.h"

struct _QsimAgent {
	GObject parent_instance;
	QsimConfig *config;
	QsimStore *store;
	gchar *id;
	QsimJob *job;
	QsimWarmPool *warm_pool;
	QsimStoreWorker *worker;
	QsimTemplateService *template_service;
};

G_DEFINE_TYPE(QsimAgent, qsim_agent, G_TYPE_OBJECT)

enum { SIGNAL_JOB_FINISHED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST];

const gchar *
qsim_agent_get_id(QsimAgent *self)
{
	return self->id;
}

QsimJob *
qsim_agent_get_job(QsimAgent *self)
{
	return self->job;
}

gboolean
qsim_agent_is_idle(QsimAgent *self)
{
	return self->job == NULL;
}

static void
qsim_agent_job_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(QsimAgent) self = QSIM_AGENT(user_data);
	g_autoptr(QsimJob) job = QSIM_JOB(source);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *uuid = g_strdup(qsim_job_get_uuid(job));
	QsimStatus status = QSIM_STATUS_FAILED;
	gint reported = -1;

	if (qsim_job_run_finish(job, res, &status, &error))
		reported = (gint)status;
	else
		g_warning("agent %s: %s", self->id, error->message);
	if (self->job == job)
		g_clear_object(&self->job);
	g_signal_emit(self, signals[SIGNAL_JOB_FINISHED], 0, uuid, reported);
}

gboolean
qsim_agent_try_claim(QsimAgent *self, guint max_active_vms, guint max_host_vms, GError **error)
{
	g_autoptr(QsimRequest) request = NULL;
	gint64 lease_ms = (gint64)qsim_config_get_lease_seconds(self->config) * 1000;

	if (self->job != NULL)
		return FALSE;
	request = qsim_store_claim_next_capped(self->store, self->id, lease_ms, max_active_vms,
	                                       max_host_vms, error);
	if (request == NULL)
		return FALSE;
	g_info("agent %s claimed %s (%s, attempt %u)", self->id, request->uuid, request->vm_name,
	       request->attempts);
	/* a retried claim waited again: each claim is one wait */
	qsim_metrics_observe(QSIM_METRIC_QUEUE_WAIT,
	                     (qsim_store_now_ms(self->store) - request->created_at) / 1000.0, NULL,
	                     NULL, NULL);
	self->job = qsim_job_new(self->config, self->store, self->id, request);
	qsim_job_set_warm_pool(self->job, self->warm_pool);
	if (self->template_service != NULL)
		qsim_job_set_template_service(self->job, self->template_service);
	if (self->worker != NULL)
		qsim_job_set_store_worker(self->job, self->worker);
	/* the job's callback holds one reference, the agent another until it returns */
	qsim_job_run_async(g_object_ref(self->job), qsim_agent_job_cb, g_object_ref(self));
	return TRUE;
}

void
qsim_agent_set_warm_pool(QsimAgent *self, QsimWarmPool *pool)
{
	g_set_object(&self->warm_pool, pool);
}

void
qsim_agent_set_store_worker(QsimAgent *self, QsimStoreWorker *worker)
{
	g_set_object(&self->worker, worker);
}

void
qsim_agent_set_template_service(QsimAgent *self, QsimTemplateService *service)
{
	g_set_object(&self->template_service, service);
}

void
qsim_agent_abort(QsimAgent *self, const gchar *reason)
{
	if (self->job != NULL)
		qsim_job_abort(self->job, reason);
}

static void
qsim_agent_dispose(GObject *object)
{
	QsimAgent *self = QSIM_AGENT(object);

	g_clear_object(&self->job);
	g_clear_object(&self->warm_pool);
	g_clear_object(&self->worker);
	g_clear_object(&self->template_service);
	G_OBJECT_CLASS(qsim_agent_parent_class)->dispose(object);
}

static void
qsim_agent_finalize(GObject *object)
{
	QsimAgent *self = QSIM_AGENT(object);

	g_clear_object(&self->store);
	g_clear_object(&self->config);
	g_free(self->id);
	G_OBJECT_CLASS(qsim_agent_parent_class)->finalize(object);
}

static void
qsim_agent_class_init(QsimAgentClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_agent_dispose;
	object_class->finalize = qsim_agent_finalize;
	signals[SIGNAL_JOB_FINISHED] =
	    g_signal_new("job-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                 NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT);
}

static void
qsim_agent_init(QsimAgent *self)
{
}

QsimAgent *
qsim_agent_new(QsimConfig *config, QsimStore *store, const gchar *agent_id)
{
	QsimAgent *self = g_object_new(QSIM_TYPE_AGENT, NULL);

	self->config = g_object_ref(config);
	self->store = g_object_ref(store);
	self->id = g_strdup(agent_id);
	return self;
}
