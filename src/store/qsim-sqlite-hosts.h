#pragma once

/* Private to src/store/: the SQLite side of hosts, catalogues and VM slots. */

#include <glib.h>
#include <sqlite3.h>

#include "store/qsim-host-record.h"
#include "store/qsim-host-vm.h"
#include "store/qsim-vm-slot.h"

G_BEGIN_DECLS

/* Within the caller's transaction: slots in use in the database and on @host */
gboolean qsim_sqlite_slots_count(sqlite3 *db, gint64 now, const gchar *host, guint *out_total,
                                 guint *out_host, GError **error);

/* Within the caller's transaction: TRUE with *@out_id 0 when a cap is reached */
gboolean qsim_sqlite_slots_insert_capped(sqlite3 *db, gint64 now, const gchar *host,
                                         const gchar *owner, QsimVmSlotKind kind, const gchar *ref,
                                         guint max_total, guint max_host, gint64 *out_id,
                                         GError **error);

/* Within the caller's transaction: frees the slot of request @uuid, if any */
gboolean qsim_sqlite_slots_drop_request(sqlite3 *db, const gchar *uuid, GError **error);

gboolean qsim_sqlite_slots_claim(sqlite3 *db, gint64 now, const gchar *host, const gchar *owner,
                                 QsimVmSlotKind kind, const gchar *ref, guint max_total,
                                 guint max_host, gint64 *out_id, GError **error);
gboolean qsim_sqlite_slots_release(sqlite3 *db, gint64 id, gint kind, gboolean *out_released,
                                   GError **error);
gboolean qsim_sqlite_slots_adopt(sqlite3 *db, gint64 now, gint64 warm_id, const gchar *uuid,
                                 const gchar *owner, gboolean *out_adopted, GError **error);
gboolean qsim_sqlite_slots_release_owner(sqlite3 *db, const gchar *owner_prefix, guint *out_n,
                                         GError **error);
gboolean qsim_sqlite_slots_release_stale_hosts(sqlite3 *db, gint64 now, guint *out_n,
                                               GError **error);
GPtrArray *qsim_sqlite_slots_list(sqlite3 *db, const gchar *host, GError **error);

gboolean qsim_sqlite_hosts_publish(sqlite3 *db, gint64 now, const QsimHostRecord *host,
                                   GPtrArray *vms, GError **error);
GPtrArray *qsim_sqlite_hosts_list(sqlite3 *db, gint64 now, GError **error);
GPtrArray *qsim_sqlite_hosts_list_vms(sqlite3 *db, const gchar *vm_name, const gchar *host,
                                      GError **error);

G_END_DECLS
