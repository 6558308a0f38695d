#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How many guest paths or globs one request may name to collect. */
#define QSIM_GUEST_PATH_MAX_PATTERNS 64
/* Longest guest path or glob accepted, in bytes (Linux PATH_MAX). */
#define QSIM_GUEST_PATH_MAX 4096
/* Longest artifact name stored on the host, in bytes. */
#define QSIM_ARTIFACT_NAME_MAX 1024

/*
 * Guest paths and artifact names, shared by the API (what a request may ask for),
 * the agent (what a guest may hand back) and the artifact store (what becomes a host
 * file name). A guest path is absolute, valid UTF-8 without control characters and
 * has no `.` or `..` component; a glob may use `*`, `?` and `[...]` within one
 * component. An artifact name is a guest path without its leading `/`: a relative
 * path whose components are never empty, `.` or `..`, so it can never leave its
 * request's directory.
 */
gboolean qsim_guest_path_validate(const gchar *path, GError **error);
gboolean qsim_guest_path_validate_list(const gchar *const *paths, GError **error);
gboolean qsim_artifact_name_validate(const gchar *name, GError **error);
gboolean qsim_guest_path_has_glob(const gchar *component);

G_END_DECLS
