#pragma once

#include "qsim-cli.h"

G_BEGIN_DECLS

/**
 * QsimCliFollowFunc:
 * @event: "log", "status" or "end"
 * @data: the event's parsed JSON data, an object
 * @user_data: closure
 *
 * Called for each event of a request's log stream, in order.
 */
typedef void (*QsimCliFollowFunc)(const gchar *event, JsonObject *data, gpointer user_data);

gboolean qsim_cli_follow(QsimCli *cli, const gchar *uuid, const gchar *log_type,
                         QsimCliFollowFunc func, gpointer user_data, GCancellable *cancellable,
                         JsonNode **end, GError **error);

G_END_DECLS
