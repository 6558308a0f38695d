#pragma once

#include <glib-object.h>

#include "store/qsim-file-artifact-store.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/* A round at start, then one every 10 minutes; a pass checks at most BATCH request
 * directories, with a short pause between the passes of a round */
#define QSIM_ARTIFACT_SWEEP_INTERVAL_MS (10 * 60 * 1000)
#define QSIM_ARTIFACT_SWEEP_PAUSE_MS 50
#define QSIM_ARTIFACT_SWEEP_BATCH 32
/* a directory changed more recently than this is left alone: it may be a collect
 * whose request the store has not shown yet */
#define QSIM_ARTIFACT_SWEEP_GRACE_S (10 * 60)
/* the files of one request directory looked at per check, and the directories per round */
#define QSIM_ARTIFACT_SWEEP_MAX_FILES 10000
#define QSIM_ARTIFACT_SWEEP_MAX_DIRS 100000

#define QSIM_TYPE_ARTIFACT_SWEEPER (qsim_artifact_sweeper_get_type())
G_DECLARE_FINAL_TYPE(QsimArtifactSweeper, qsim_artifact_sweeper, QSIM, ARTIFACT_SWEEPER, GObject)

QsimArtifactSweeper *qsim_artifact_sweeper_new(QsimStore *store, QsimFileArtifactStore *artifacts);
void qsim_artifact_sweeper_set_timing(QsimArtifactSweeper *self, guint interval_ms, guint pause_ms,
                                      guint batch, guint grace_s);
void qsim_artifact_sweeper_start(QsimArtifactSweeper *self);
void qsim_artifact_sweeper_stop(QsimArtifactSweeper *self);
gboolean qsim_artifact_sweeper_pass(QsimArtifactSweeper *self);
guint qsim_artifact_sweeper_get_n_rounds(QsimArtifactSweeper *self);
guint qsim_artifact_sweeper_get_n_checked(QsimArtifactSweeper *self);
guint qsim_artifact_sweeper_get_n_removed(QsimArtifactSweeper *self);

G_END_DECLS
