#define G_LOG_DOMAIN "qsim-cli"

#include "config.h"

#include <stdio.h>

#include "qsim-cli-table.h"

struct _QsimCliTable {
	guint columns;
	GPtrArray *rows; /* of GStrv, the header first */
};

/**
 * qsim_cli_table_new:
 * @first_header: the first column header, already translated
 * @...: more headers, then %NULL
 *
 * Returns: (transfer full): a table, free with qsim_cli_table_free()
 */
QsimCliTable *
qsim_cli_table_new(const gchar *first_header, ...)
{
	QsimCliTable *self = g_new0(QsimCliTable, 1);
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	va_list args;

	va_start(args, first_header);
	for (const gchar *h = first_header; h != NULL; h = va_arg(args, const gchar *))
		g_strv_builder_add(builder, h);
	va_end(args);
	self->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	g_ptr_array_add(self->rows, g_strv_builder_end(builder));
	self->columns = g_strv_length(g_ptr_array_index(self->rows, 0));
	return self;
}

/**
 * qsim_cli_table_free:
 * @self: (nullable): a table
 */
void
qsim_cli_table_free(QsimCliTable *self)
{
	if (self == NULL)
		return;
	g_ptr_array_unref(self->rows);
	g_free(self);
}

/**
 * qsim_cli_text_width:
 * @text: UTF-8 text
 *
 * Returns: the number of terminal cells @text takes (wide characters count twice)
 */
guint
qsim_cli_text_width(const gchar *text)
{
	guint width = 0;

	for (const gchar *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_iszerowidth(c))
			continue;
		width += g_unichar_iswide(c) ? 2 : 1;
	}
	return width;
}

/**
 * qsim_cli_text_sanitize:
 * @text: (nullable): text from the server
 * @max_width: cut to this many cells with an ellipsis, 0 for no limit
 *
 * Server text may hold line breaks or terminal escapes; a table cell must be one
 * harmless line.
 *
 * Returns: (transfer full): printable, valid UTF-8 text
 */
gchar *
qsim_cli_text_sanitize(const gchar *text, guint max_width)
{
	g_autofree gchar *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
	g_autoptr(GString) clean = g_string_new(NULL);
	GString *out = g_string_new(NULL);
	guint width = 0;
	guint limit;

	for (const gchar *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		g_string_append_unichar(clean, g_unichar_iscntrl(c) ? ' ' : c);
	}
	if (max_width == 0 || qsim_cli_text_width(clean->str) <= max_width) {
		g_string_append(out, clean->str);
		return g_string_free(out, FALSE);
	}
	limit = max_width - 1; /* room for the ellipsis */
	for (const gchar *p = clean->str; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		guint w = g_unichar_iszerowidth(c) ? 0 : (g_unichar_iswide(c) ? 2 : 1);
		if (width + w > limit)
			break;
		g_string_append_unichar(out, c);
		width += w;
	}
	g_string_append(out, "…");
	return g_string_free(out, FALSE);
}

/**
 * qsim_cli_table_add_rowv:
 * @self: a table
 * @cells: (array zero-terminated=1): the cells; missing ones are empty, extra ones ignored
 */
void
qsim_cli_table_add_rowv(QsimCliTable *self, gchar **cells)
{
	g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
	gboolean ended = FALSE;

	for (guint i = 0; i < self->columns; i++) {
		g_autofree gchar *cell = NULL;
		ended = ended || cells[i] == NULL;
		cell = qsim_cli_text_sanitize(ended ? "" : cells[i], 0);
		g_strv_builder_add(builder, cell);
	}
	g_ptr_array_add(self->rows, g_strv_builder_end(builder));
}

/**
 * qsim_cli_table_add_row:
 * @self: a table
 * @first_cell: the first cell
 * @...: the other cells, exactly one per column
 */
void
qsim_cli_table_add_row(QsimCliTable *self, const gchar *first_cell, ...)
{
	g_autofree gchar **cells = g_new0(gchar *, self->columns + 1);
	va_list args;

	va_start(args, first_cell);
	cells[0] = (gchar *)first_cell;
	for (guint i = 1; i < self->columns; i++)
		cells[i] = va_arg(args, gchar *);
	va_end(args);
	qsim_cli_table_add_rowv(self, cells);
}

/**
 * qsim_cli_table_to_string:
 * @self: a table
 *
 * Returns: (transfer full): the table, one line per row, columns separated by two spaces
 */
gchar *
qsim_cli_table_to_string(QsimCliTable *self)
{
	g_autofree guint *widths = g_new0(guint, self->columns);
	GString *out = g_string_new(NULL);

	for (guint r = 0; r < self->rows->len; r++) {
		gchar **row = g_ptr_array_index(self->rows, r);
		for (guint c = 0; c < self->columns; c++)
			widths[c] = MAX(widths[c], qsim_cli_text_width(row[c]));
	}
	for (guint r = 0; r < self->rows->len; r++) {
		gchar **row = g_ptr_array_index(self->rows, r);
		for (guint c = 0; c < self->columns; c++) {
			g_string_append(out, row[c]);
			if (c + 1 == self->columns)
				break;
			for (guint pad = qsim_cli_text_width(row[c]); pad < widths[c] + 2; pad++)
				g_string_append_c(out, ' ');
		}
		/* no trailing blanks when the last cells are empty */
		while (out->len > 0 && out->str[out->len - 1] == ' ')
			g_string_truncate(out, out->len - 1);
		g_string_append_c(out, '\n');
	}
	return g_string_free(out, FALSE);
}

/**
 * qsim_cli_table_print:
 * @self: a table
 *
 * Writes the table to stdout.
 */
void
qsim_cli_table_print(QsimCliTable *self)
{
	g_autofree gchar *text = qsim_cli_table_to_string(self);
	fputs(text, stdout);
}
