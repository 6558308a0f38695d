#pragma once

#include <glib.h>

G_BEGIN_DECLS

gchar *qsim_test_tmpdir_new(void);
void qsim_test_rm_rf(const gchar *path);
gchar *qsim_test_write(const gchar *dir, const gchar *name, const gchar *content);
gchar *qsim_test_fixture(const gchar *subdir, const gchar *name);
guint16 qsim_test_free_port(void);
const gchar *qsim_test_qsimd_path(void);
void qsim_test_die_with_parent(gpointer user_data);

G_END_DECLS
