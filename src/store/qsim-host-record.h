#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimHostRecord:
 *
 * One row of the hosts table: a host (HOST_ID) whose agents publish what they
 * are and that they are alive. Times are unix ms; strings are owned.
 * @agent_ids are the agents whose own heartbeat is no older than
 * @stale_after_ms, so an agent process that died drops out of the list.
 */
typedef struct {
	gchar *host;
	gchar *version;        /* qsim's version on that host */
	gchar *accel;          /* (nullable) "kvm" or "tcg": what ACCEL resolves to there */
	guint max_vms;         /* MAX_VMS_PER_HOST of its agents; 0 = no per-host cap */
	guint max_total;       /* MAX_CONCURRENT_VMS of its agents */
	gchar **agent_ids;     /* (array zero-terminated=1) live agents, claim order */
	gint64 heartbeat_at;   /* the last publish */
	gint64 stale_after_ms; /* no heartbeat for this long: the host is stale */
} QsimHostRecord;

/* Returns: (transfer full): an empty record for @host */
QsimHostRecord *qsim_host_record_new(const gchar *host);

QsimHostRecord *qsim_host_record_copy(const QsimHostRecord *self);

/* Returns: whether @now_ms is past the heartbeat by more than stale_after_ms */
gboolean qsim_host_record_is_stale(const QsimHostRecord *self, gint64 now_ms);

void qsim_host_record_free(QsimHostRecord *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimHostRecord, qsim_host_record_free)

G_END_DECLS
