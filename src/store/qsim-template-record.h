#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimTemplateRecordState:
 *
 * A template's state as the database records it: none (only a prepare request so
 * far), building, ready, stale (an input changed or a restore failed), failed (the
 * last build failed). Stored as its name.
 */
typedef enum {
	QSIM_TEMPLATE_RECORD_NONE,
	QSIM_TEMPLATE_RECORD_BUILDING,
	QSIM_TEMPLATE_RECORD_READY,
	QSIM_TEMPLATE_RECORD_STALE,
	QSIM_TEMPLATE_RECORD_FAILED,
} QsimTemplateRecordState;

#define QSIM_TEMPLATE_RECORD_STATE_COUNT (QSIM_TEMPLATE_RECORD_FAILED + 1)

/**
 * QsimTemplateRecord:
 *
 * One row of the templates table: a VM's fast-start template on one host (the
 * files live on that host; many hosts may share one database). Times are unix
 * ms, 0 = unset; strings are owned and nullable. prepare_requested_at is set by
 * qsim_store_request_prepare() and cleared by the claim that builds it.
 */
typedef struct {
	gchar *vm_name;
	gchar *host;
	QsimTemplateRecordState state;
	gchar *dir;
	guint64 size_bytes;
	gchar *image_sha256;
	guint64 image_size;
	gint64 image_mtime_us;
	gchar *config_hash;
	gchar *qemu_version;
	gchar *machine;
	gint64 build_started_at;
	gint64 build_finished_at;
	gint64 build_ms; /* how long the last finished build took */
	gchar *reason;   /* why stale or failed */
	gint64 prepare_requested_at;
	gboolean prepare_force;
	gint64 updated_at;
	/* while building: the claiming process as "host:pid:0" (an agent id's format), so
	 * recovery can tell a build whose process died from one that runs; NULL otherwise */
	gchar *builder;
} QsimTemplateRecord;

/* Returns: (transfer none): "none", "building", "ready", "stale", "failed"; "unknown" */
const gchar *qsim_template_record_state_to_string(QsimTemplateRecordState state);

/* Returns: TRUE and sets @out when @str names a state exactly */
gboolean qsim_template_record_state_from_string(const gchar *str, QsimTemplateRecordState *out);

/* Returns: (transfer full): an empty record (state none) for @vm_name on @host */
QsimTemplateRecord *qsim_template_record_new(const gchar *vm_name, const gchar *host);

/* Returns: (transfer full): a deep copy */
QsimTemplateRecord *qsim_template_record_copy(const QsimTemplateRecord *self);

void qsim_template_record_free(QsimTemplateRecord *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimTemplateRecord, qsim_template_record_free)

G_END_DECLS
