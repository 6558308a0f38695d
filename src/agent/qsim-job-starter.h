#pragma once

#include <gio/gio.h>

#include "agent/qsim-log-batcher.h"
#include "agent/qsim-template-service.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-config.h"
#include "guest/qsim-guest.h"
#include "store/qsim-request.h"
#include "vm/qsim-vm.h"

G_BEGIN_DECLS

#define QSIM_TYPE_JOB_STARTER (qsim_job_starter_get_type())
G_DECLARE_FINAL_TYPE(QsimJobStarter, qsim_job_starter, QSIM, JOB_STARTER, GObject)

/*
 * QsimJobStarter: the first half of a QsimJob (docs/agents.md, "A job's states"). It
 * turns a claimed request into a VM whose guest answers on an open SSH session, by one
 * of three strategies:
 *   warm      a parked VM of the warm pool, resumed and fixed up;
 *   snapshot  a new QEMU restored from the VM's template, fixed up;
 *   cold      a new QEMU that boots.
 * A warm or snapshot start that fails before the commands run falls back (a warm VM to
 * the template service's choice, a restore to a cold boot, marking the template
 * stale); the caller only sees the outcome. The boot console and the start's
 * milestones go to the request's logs through @batcher.
 */

QsimJobStarter *qsim_job_starter_new(QsimConfig *config, const QsimRequest *request,
                                     const gchar *agent_id, const gchar *run_root,
                                     QsimLogBatcher *batcher, QsimTemplateService *template_service,
                                     QsimWarmPool *warm_pool);

void qsim_job_starter_run_async(QsimJobStarter *self, QsimVmConfig *vm_config,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean qsim_job_starter_run_finish(QsimJobStarter *self, GAsyncResult *result, QsimVm **vm,
                                     QsimGuest **guest, GError **error);

void qsim_job_starter_stop(QsimJobStarter *self);

QsimVm *qsim_job_starter_get_vm(QsimJobStarter *self);
QsimGuest *qsim_job_starter_get_guest(QsimJobStarter *self);
gboolean qsim_job_starter_get_booting(QsimJobStarter *self);
const gchar *qsim_job_starter_get_mode(QsimJobStarter *self);
gint64 qsim_job_starter_get_vm_started_us(QsimJobStarter *self);

G_END_DECLS
