#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * QsimDotenv:
 *
 * The parsed content of a `.env`-style file: `KEY=VALUE` lines with optional
 * `export ` prefix, single quotes (literal), double quotes (`\"`, `\\`, `\n`
 * escapes), `#` comments and blank lines. Parsed, never executed. Entries
 * keep file order and their line numbers; duplicates are kept so callers can
 * decide (config: last wins, VM configs: error).
 */
typedef struct _QsimDotenv QsimDotenv;

QsimDotenv *qsim_dotenv_new_from_data(const gchar *data, gsize len, const gchar *path_for_messages,
                                      GError **error);
QsimDotenv *qsim_dotenv_new_from_file(const gchar *path, GError **error);
void qsim_dotenv_free(QsimDotenv *self);

const gchar *qsim_dotenv_get_path(QsimDotenv *self);
guint qsim_dotenv_get_n_entries(QsimDotenv *self);
const gchar *qsim_dotenv_get_key(QsimDotenv *self, guint idx);
const gchar *qsim_dotenv_get_value(QsimDotenv *self, guint idx);
guint qsim_dotenv_get_line(QsimDotenv *self, guint idx);
const gchar *qsim_dotenv_lookup(QsimDotenv *self, const gchar *key, guint *line);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimDotenv, qsim_dotenv_free)

G_END_DECLS
