#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <errno.h>
#include <sys/statvfs.h>

#include "common/qsim-disk-reserve.h"

/*
 * MIN_FREE_DISK: the space kept free on the database's file system so that
 * deletes, cancels and purges (which append to the WAL too) still work when
 * new work is refused. Checked with statvfs(), cached briefly.
 */
struct _QsimDiskReserve {
	GObject parent_instance;
	gchar *dir;
	guint64 min_free;
	guint cache_ms;
	gint64 checked_at_us; /* monotonic; 0 = never */
	gboolean known;       /* the last statvfs() worked */
	guint64 free_bytes;
};

G_DEFINE_FINAL_TYPE(QsimDiskReserve, qsim_disk_reserve, G_TYPE_OBJECT)

static void
qsim_disk_reserve_finalize(GObject *object)
{
	g_free(QSIM_DISK_RESERVE(object)->dir);
	G_OBJECT_CLASS(qsim_disk_reserve_parent_class)->finalize(object);
}

static void
qsim_disk_reserve_class_init(QsimDiskReserveClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_disk_reserve_finalize;
}

static void
qsim_disk_reserve_init(QsimDiskReserve *self)
{
	self->cache_ms = QSIM_DISK_RESERVE_CACHE_MS;
}

/**
 * qsim_disk_reserve_new:
 * @db_path: the database file (its directory is what is checked); `:memory:`
 *   turns the check off
 * @min_free: bytes to keep free; 0 turns the check off
 *
 * Returns: (transfer full): the reserve
 */
QsimDiskReserve *
qsim_disk_reserve_new(const gchar *db_path, guint64 min_free)
{
	QsimDiskReserve *self = g_object_new(QSIM_TYPE_DISK_RESERVE, NULL);

	if (db_path != NULL && g_strcmp0(db_path, ":memory:") != 0)
		self->dir = g_path_get_dirname(db_path);
	self->min_free = min_free;
	return self;
}

/* Tests: look at the disk on every check (0) */
void
qsim_disk_reserve_set_cache_ms(QsimDiskReserve *self, guint cache_ms)
{
	g_return_if_fail(QSIM_IS_DISK_RESERVE(self));
	self->cache_ms = cache_ms;
	self->checked_at_us = 0;
}

guint64
qsim_disk_reserve_get_min_free(QsimDiskReserve *self)
{
	return self->min_free;
}

/* Returns: (transfer full): @bytes for people, e.g. "512 MiB", "1.5 GiB"; plain
 * ASCII (g_format_size() puts a no-break space in, which log files mangle) */
gchar *
qsim_disk_format_size(guint64 bytes)
{
	static const gchar *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	gdouble value = (gdouble)bytes;
	guint u = 0;

	while (value >= 1024 && u + 1 < G_N_ELEMENTS(units)) {
		value /= 1024;
		u++;
	}
	if (u == 0 || value == (gdouble)(guint64)value)
		return g_strdup_printf("%.0f %s", value, units[u]);
	return g_strdup_printf("%.1f %s", value, units[u]);
}

/**
 * qsim_disk_reserve_check:
 * @out_free: (out) (optional): free bytes for unprivileged users, 0 if unknown
 * @out_reason: (out) (optional) (transfer full): when below the reserve, why,
 *   in one sentence for an error message or /health
 *
 * A file system that cannot be asked counts as fine: the database's own
 * errors still tell then.
 *
 * Returns: FALSE when less than MIN_FREE_DISK is free
 */
gboolean
qsim_disk_reserve_check(QsimDiskReserve *self, guint64 *out_free, gchar **out_reason)
{
	gint64 now = g_get_monotonic_time();

	g_return_val_if_fail(QSIM_IS_DISK_RESERVE(self), TRUE);
	if (out_free != NULL)
		*out_free = 0;
	if (out_reason != NULL)
		*out_reason = NULL;
	if (self->dir == NULL)
		return TRUE;
	if (self->checked_at_us == 0 ||
	    now - self->checked_at_us >= (gint64)self->cache_ms * 1000) {
		struct statvfs st;

		self->checked_at_us = now;
		self->known = statvfs(self->dir, &st) == 0;
		if (self->known)
			self->free_bytes = (guint64)st.f_bavail * (guint64)st.f_frsize;
		else
			g_debug("statvfs %s: %s", self->dir, g_strerror(errno));
	}
	if (!self->known)
		return TRUE;
	if (out_free != NULL)
		*out_free = self->free_bytes;
	if (self->min_free == 0 || self->free_bytes >= self->min_free)
		return TRUE;
	if (out_reason != NULL) {
		g_autofree gchar *have = qsim_disk_format_size(self->free_bytes);
		g_autofree gchar *want = qsim_disk_format_size(self->min_free);

		*out_reason = g_strdup_printf("only %s free on the database's file system (%s), "
		                              "below MIN_FREE_DISK (%s)",
		                              have, self->dir, want);
	}
	return FALSE;
}
