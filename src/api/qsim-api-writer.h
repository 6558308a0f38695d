#pragma once

#include <glib-object.h>

#include "store/qsim-store.h"

G_BEGIN_DECLS

#define QSIM_TYPE_API_WRITER (qsim_api_writer_get_type())
G_DECLARE_FINAL_TYPE(QsimApiWriter, qsim_api_writer, QSIM, API_WRITER, GObject)

/**
 * QsimApiWriterFunc:
 * @request: (nullable) (transfer none): the committed request, or %NULL on failure
 * @error: (nullable) (transfer none): why it failed
 * @user_data: the caller's data
 *
 * Called on the main context of the thread that submitted the job.
 */
typedef void (*QsimApiWriterFunc)(const QsimRequest *request, const GError *error,
                                  gpointer user_data);

QsimApiWriter *qsim_api_writer_new(const gchar *db_path, GError **error);

void qsim_api_writer_create_request(QsimApiWriter *self, const gchar *vm_name,
                                    const gchar *commands, gint64 timeout_s, QsimApiWriterFunc func,
                                    gpointer user_data);

void qsim_api_writer_create_request_full(QsimApiWriter *self, const gchar *vm_name,
                                         const gchar *commands, gint64 timeout_s,
                                         gchar **artifact_paths, const gchar *upload_id,
                                         QsimApiWriterFunc func, gpointer user_data);

void qsim_api_writer_set_max_queue(QsimApiWriter *self, guint max_queue);

void qsim_api_writer_get_counts(QsimApiWriter *self, guint *out_batches, guint *out_requests);

void qsim_api_writer_stop(QsimApiWriter *self);

G_END_DECLS
