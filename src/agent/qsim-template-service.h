#pragma once

#include <gio/gio.h>

#include "common/qsim-config.h"
#include "store/qsim-store.h"
#include "vm/qsim-template.h"
#include "vm/qsim-vm.h"

G_BEGIN_DECLS

/* the reason a build cancelled by the stop leaves in its row (state failed) */
#define QSIM_TEMPLATE_SERVICE_SHUTDOWN_REASON "agent shut down"

#define QSIM_TYPE_TEMPLATE_SERVICE (qsim_template_service_get_type())
G_DECLARE_FINAL_TYPE(QsimTemplateService, qsim_template_service, QSIM, TEMPLATE_SERVICE, GObject)

/*
 * QsimTemplateService: this process's fast-start templates (docs/fast-start.md). It
 * chooses how a job starts (restore a ready template, else cold), builds templates in
 * the background (FAST_START=snapshot, prepare requests from `POST /vms/{name}/prepare`
 * or `qsim-ctl prepare`) and records every state change in the database's templates
 * table under this host. One build per VM runs at a time across processes: the
 * store's claim decides who builds, the template's build directory lock guards the
 * files. Background builds take a VM slot: one starts only while the live leases
 * plus this process's builds stay below MAX_CONCURRENT_VMS; otherwise the request
 * waits in the database for the next poll.
 *
 * Signals:
 *   "build-finished" (const gchar *vm_name, gboolean ok): a build of this process
 *       ended, so its VM slot is free again
 */

/**
 * qsim_template_service_new:
 * @config: (transfer none): referenced
 * @store: (transfer none): referenced; used on the main thread only. Its
 *   "template-changed" signal wakes the service for prepare requests made in
 *   this process; qsim_template_service_poll() finds the others.
 *
 * Returns: (transfer full): a service
 */
QsimTemplateService *qsim_template_service_new(QsimConfig *config, QsimStore *store);

/**
 * qsim_template_service_choose:
 * @vm: a VM not started yet; a ready template is applied to it
 * @out_reason: (out) (transfer full): why it boots cold (when NULL is returned)
 * @out_building: (out): TRUE when a background build of the template was
 *   started or queued because of this start (FAST_START=snapshot)
 *
 * Returns: (transfer full) (nullable): the template @vm now restores, or NULL
 *   for a cold boot
 */
QsimTemplate *qsim_template_service_choose(QsimTemplateService *self, QsimVm *vm,
                                           gchar **out_reason, gboolean *out_building);

/**
 * qsim_template_service_mark_stale:
 * @reason: why, e.g. the error of a failed restore
 *
 * Marks the template stale on disk and in the database; with
 * FAST_START=snapshot the next start for the VM builds it again.
 */
void qsim_template_service_mark_stale(QsimTemplateService *self, QsimTemplate *tpl,
                                      const gchar *reason);

/**
 * qsim_template_service_prepare_async:
 * @force: rebuild a fresh template too
 *
 * `qsimd prepare`: claims the build in the database (no VM slot needed: it is
 * an operator's command), builds unless the template is fresh and @force is
 * FALSE, and records the result. Fails with BUSY when another process builds
 * it now.
 */
void qsim_template_service_prepare_async(QsimTemplateService *self, const gchar *vm_name,
                                         gboolean force, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);

/**
 * qsim_template_service_prepare_finish:
 * @out_built: (out) (optional): FALSE when the template was fresh already
 *
 * Returns: TRUE when the template is ready
 */
gboolean qsim_template_service_prepare_finish(QsimTemplateService *self, GAsyncResult *result,
                                              gboolean *out_built, GError **error);

/**
 * qsim_template_service_start:
 *
 * Starts picking up this host's prepare requests: now, on the store's
 * "template-changed" signal and on every qsim_template_service_poll(). A
 * service never started (a job run on its own, in tests) only builds what its
 * jobs ask for.
 */
void qsim_template_service_start(QsimTemplateService *self);

/* Starts builds for this host's prepare requests while VM slots are free */
void qsim_template_service_poll(QsimTemplateService *self);

/**
 * qsim_template_service_stop_async:
 *
 * The shutdown: no build starts from now on (signal, poll, job or prepare),
 * and the running ones are cancelled: each stops its build VM, removes its
 * build dir and records its row (ready if an older template is still
 * fresh, else failed with QSIM_TEMPLATE_SERVICE_SHUTDOWN_REASON; a prepare
 * request it had taken is queued again). Completes once the last one ended.
 */
void qsim_template_service_stop_async(QsimTemplateService *self, GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean qsim_template_service_stop_finish(QsimTemplateService *self, GAsyncResult *result,
                                           GError **error);

/**
 * qsim_template_service_recover:
 *
 * Resets this host's "building" rows whose builder process is gone (killed
 * mid-build) to failed, queues their prepare again, and kills and removes the
 * leftover build VMs, instead of waiting QSIM_STORE_TEMPLATE_BUILD_STALE_MS.
 *
 * Returns: how many rows were reset
 */
guint qsim_template_service_recover(QsimTemplateService *self);

/* Returns: the background builds of this process running now (each holds a VM slot) */
guint qsim_template_service_get_n_builds(QsimTemplateService *self);

/**
 * qsim_template_service_record_state:
 * @state: what the files say (qsim_template_check()); BUILDING while a build runs
 *
 * Writes @tpl's row from its manifest (ready) or @state and @reason.
 */
gboolean qsim_template_service_record_state(QsimTemplateService *self, QsimTemplate *tpl,
                                            QsimTemplateRecordState state, const gchar *reason,
                                            GError **error);

G_END_DECLS
