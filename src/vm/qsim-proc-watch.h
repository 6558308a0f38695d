#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * QsimProcWatch:
 *
 * Watches a child process and one of its output pipes until both are done: the process
 * was reaped and the pipe reached EOF (or stayed open @drain_ms after the exit, because
 * a grandchild holds it). A QEMU's last words often arrive after its exit is seen; this
 * is what lets an exit message quote them. Used by QsimVm (QEMU's stderr) and the KVM
 * probe (QEMU's console).
 *
 * Callbacks run on the thread-default main context of the creator. After
 * qsim_proc_watch_free() none runs again, so a caller may free the watch from inside
 * one of them.
 */
typedef struct _QsimProcWatch QsimProcWatch;

/* a chunk read from the pipe; never empty */
typedef void (*QsimProcWatchOutputFunc)(const guint8 *data, gsize len, gpointer user_data);
typedef void (*QsimProcWatchFunc)(gpointer user_data);

QsimProcWatch *qsim_proc_watch_new(GSubprocess *proc, GInputStream *pipe, guint drain_ms,
                                   QsimProcWatchOutputFunc output, QsimProcWatchFunc exited,
                                   QsimProcWatchFunc done, gpointer user_data,
                                   GDestroyNotify notify);
void qsim_proc_watch_stop_output(QsimProcWatch *self);
gboolean qsim_proc_watch_get_exited(QsimProcWatch *self);
void qsim_proc_watch_free(QsimProcWatch *self);

void qsim_proc_child_setup(gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimProcWatch, qsim_proc_watch_free)

G_END_DECLS
