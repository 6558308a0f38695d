#pragma once

#include <glib-object.h>

#include "agent/qsim-template-service.h"
#include "agent/qsim-warm-pool.h"
#include "common/qsim-config.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/* How often a host's agents publish (at most; a short LEASE_SECONDS makes it shorter) */
#define QSIM_HOST_PUBLISHER_INTERVAL_MS 2000

#define QSIM_TYPE_HOST_PUBLISHER (qsim_host_publisher_get_type())
G_DECLARE_FINAL_TYPE(QsimHostPublisher, qsim_host_publisher, QSIM, HOST_PUBLISHER, GObject)

/*
 * QsimHostPublisher: what this host is, in the store, for everyone else. On a
 * timer it writes the host row (heartbeat, version, accelerator, caps), its
 * agents, the VM catalogue of its disk (config hash, image identity, warm pool
 * counts) and each template's state as its files say it is now, so `qsimd api`
 * anywhere answers from the store alone.
 */

/**
 * qsim_host_publisher_new:
 * @templates: the template service whose rows the publisher keeps current
 * @warm_pool: (nullable): counted per VM
 * @agent_ids: this process's agents
 */
QsimHostPublisher *qsim_host_publisher_new(QsimConfig *config, QsimStore *store,
                                           QsimTemplateService *templates, QsimWarmPool *warm_pool,
                                           const gchar *const *agent_ids);

/* Publishes once, now (the daemon does it before the API answers) */
gboolean qsim_host_publisher_publish(QsimHostPublisher *self, GError **error);

/* Brings this host's template rows in line with the files now; writes only rows
 * whose state changed (no heartbeat, no catalogue write) */
void qsim_host_publisher_refresh_templates(QsimHostPublisher *self);

/* Publishes on a timer until qsim_host_publisher_stop() */
void qsim_host_publisher_start(QsimHostPublisher *self);

void qsim_host_publisher_stop(QsimHostPublisher *self);

/* Returns: the heartbeat interval for @config, in ms */
guint qsim_host_publisher_interval_ms(QsimConfig *config);

G_END_DECLS
