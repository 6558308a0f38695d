#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The names every process on every host must agree on, in one place: a host's
 * identity (HOST_ID), the ids of the agents and builders it runs, and where a
 * QEMU's run directory lives under RUN_DIR. A leaf: it depends on nothing of
 * qsim but the error domain, so any layer may use it.
 */

#define QSIM_HOST_ID_MAX_LEN 64

/* RUN_DIR/<this>: warm VMs, which belong to no request */
#define QSIM_LAYOUT_WARM_DIR "warm"
/* RUN_DIR/<this>: background and `qsimd prepare` template builds */
#define QSIM_LAYOUT_BUILD_DIR "template-builds"

/**
 * qsim_host_id_validate:
 *
 * The one check for `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`: a host id names rows
 * in the shared database and is the first field of every agent id, so ':'
 * and anything a shell or a log would mangle are refused.
 */
gboolean qsim_host_id_validate(const gchar *host_id, GError **error);

/* Returns: (transfer full): the default HOST_ID: the host name made valid
 * (other characters become '-', cut at QSIM_HOST_ID_MAX_LEN) */
gchar *qsim_host_id_dup_default(void);

/**
 * qsim_host_id_set:
 * @host_id: (nullable): a valid host id, or NULL for the default
 *
 * Sets this process's host id (the daemon does it once HOST_ID is loaded).
 */
void qsim_host_id_set(const gchar *host_id);

/* Returns: (transfer none): this process's host id */
const gchar *qsim_host_id_get(void);

/* Returns: (transfer full): "<host id>:<pid>:<index>" for this process */
gchar *qsim_agent_id_make(guint index);

/**
 * qsim_agent_id_parse:
 * @host: (out) (transfer full) (optional): the host id part
 * @pid: (out) (optional): the process id part
 *
 * Returns: %TRUE when @agent_id has the qsim_agent_id_make() shape
 */
gboolean qsim_agent_id_parse(const gchar *agent_id, gchar **host, GPid *pid);

/* Returns: whether @agent_id was made on this host (by any process) */
gboolean qsim_agent_id_is_local(const gchar *agent_id);

/* Returns: (transfer full): this process as a template builder, "<host id>:<pid>:0" */
gchar *qsim_layout_dup_builder_id(void);

/* Returns: (transfer full): RUN_DIR/<uuid>, the run root of a request's VMs */
gchar *qsim_layout_dup_request_root(const gchar *run_dir, const gchar *uuid);

/* Returns: (transfer full): RUN_DIR/warm */
gchar *qsim_layout_dup_warm_root(const gchar *run_dir);

/* Returns: (transfer full): RUN_DIR/template-builds */
gchar *qsim_layout_dup_build_root(const gchar *run_dir);

G_END_DECLS
