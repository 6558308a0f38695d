#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* statvfs() at most this often: submits may come thousands of times a second */
#define QSIM_DISK_RESERVE_CACHE_MS 1000

#define QSIM_TYPE_DISK_RESERVE (qsim_disk_reserve_get_type())
G_DECLARE_FINAL_TYPE(QsimDiskReserve, qsim_disk_reserve, QSIM, DISK_RESERVE, GObject)

QsimDiskReserve *qsim_disk_reserve_new(const gchar *db_path, guint64 min_free);
void qsim_disk_reserve_set_cache_ms(QsimDiskReserve *self, guint cache_ms);
gboolean qsim_disk_reserve_check(QsimDiskReserve *self, guint64 *out_free, gchar **out_reason);
guint64 qsim_disk_reserve_get_min_free(QsimDiskReserve *self);
gchar *qsim_disk_format_size(guint64 bytes);

G_END_DECLS
