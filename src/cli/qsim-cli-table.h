#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimCliTable:
 *
 * A table of text cells printed with aligned columns; the last column is not padded.
 */
typedef struct _QsimCliTable QsimCliTable;

QsimCliTable *qsim_cli_table_new(const gchar *first_header, ...) G_GNUC_NULL_TERMINATED;
void qsim_cli_table_free(QsimCliTable *self);
void qsim_cli_table_add_row(QsimCliTable *self, const gchar *first_cell, ...);
void qsim_cli_table_add_rowv(QsimCliTable *self, gchar **cells);
gchar *qsim_cli_table_to_string(QsimCliTable *self);
void qsim_cli_table_print(QsimCliTable *self);
gchar *qsim_cli_text_sanitize(const gchar *text, guint max_width);
guint qsim_cli_text_width(const gchar *text);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimCliTable, qsim_cli_table_free)

G_END_DECLS
