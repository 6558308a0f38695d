#pragma once

#include <glib.h>

#include "common/qsim-config.h"

G_BEGIN_DECLS

/* exit status for a usage error: unknown command, bad option */
#define QSIMD_EXIT_USAGE 2

/**
 * QsimdContext:
 * @config: (not owned) the loaded and validated configuration; logging is
 *   already set up from it
 *
 * What every `qsimd` command receives.
 */
typedef struct {
	QsimConfig *config;
} QsimdContext;

/*
 * A command handler. @argv[0] is the command name, the rest its own
 * arguments (global options are already removed). Returns the exit status;
 * when it is non-zero and @error is set, main prints `qsimd: <message>`.
 * Each command lives in qsimd-cmd-<name>.c and has one row in qsimd.c.
 */
typedef gint (*QsimdCommandFunc)(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_agents(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_all(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_status(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_api(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_config(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_run_vm(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_prepare(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_migrate_store(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

gint qsimd_cmd_vacuum(QsimdContext *ctx, gint argc, gchar **argv, GError **error);

G_END_DECLS
