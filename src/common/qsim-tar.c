#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-tar.h"

static void
octal(gchar *field, gsize width, guint64 value)
{
	/* width - 1 digits and a NUL */
	g_snprintf(field, width, "%0*" G_GINT64_MODIFIER "o", (gint)(width - 1), value);
}

static gsize
digits(gsize n)
{
	gsize d = 1;

	while (n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/* One pax record "LEN key=value\n", LEN counting its own digits too. */
static void
pax_record(GString *out, const gchar *key, const gchar *value)
{
	gsize body = strlen(key) + strlen(value) + 3;
	gsize len = body + digits(body);

	while (body + digits(len) != len)
		len = body + digits(len);
	g_string_append_printf(out, "%" G_GSIZE_FORMAT " %s=%s\n", len, key, value);
}

static void
ustar_header(GString *out, const gchar *name, gchar type, guint mode, guint64 size, gint64 mtime,
             const gchar *linkname)
{
	gchar h[QSIM_TAR_BLOCK];
	guint sum = 0;

	memset(h, 0, sizeof(h));
	strncpy(h, name, 100);
	octal(h + 100, 8, mode);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, size);
	octal(h + 136, 12, (guint64)mtime);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (linkname != NULL)
		strncpy(h + 157, linkname, 100);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (gsize i = 0; i < sizeof(h); i++)
		sum += (guchar)h[i];
	g_snprintf(h + 148, 8, "%06o", sum);
	g_string_append_len(out, h, QSIM_TAR_BLOCK);
}

void
qsim_tar_pad(GString *out, guint64 size)
{
	gsize rest = (gsize)(size % QSIM_TAR_BLOCK);

	if (rest != 0) {
		gsize n = QSIM_TAR_BLOCK - rest;
		gsize at = out->len;

		g_string_set_size(out, at + n);
		memset(out->str + at, 0, n);
	}
}

/**
 * qsim_tar_header:
 * @name: the member's path, relative
 * @linkname: (nullable): a symlink's target
 *
 * Appends the header of one tar member: a pax header first when @name or
 * @linkname does not fit ustar's 100 bytes, so any length survives.
 */
void
qsim_tar_header(GString *out, const gchar *name, gchar type, guint mode, guint64 size, gint64 mtime,
                const gchar *linkname)
{
	if (strlen(name) >= 100 || (linkname != NULL && strlen(linkname) >= 100)) {
		g_autoptr(GString) pax = g_string_new(NULL);

		pax_record(pax, "path", name);
		if (linkname != NULL)
			pax_record(pax, "linkpath", linkname);
		ustar_header(out, "././@PaxHeader", 'x', 0644, pax->len, mtime, NULL);
		g_string_append_len(out, pax->str, (gssize)pax->len);
		qsim_tar_pad(out, pax->len);
	}
	ustar_header(out, name, type, mode & 07777, size, mtime, linkname);
}
