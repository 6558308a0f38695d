#pragma once

#include "api/qsim-api-context.h"
#include "store/qsim-store.h"

G_BEGIN_DECLS

/* Runs in a worker thread on a connection of its own (or inline, see below). */
typedef gboolean (*QsimApiOffloadFunc)(QsimStore *store, gpointer data, GError **error);

/*
 * Back on the main loop, always exactly once. @msg is %NULL when the client went away
 * meanwhile (its message must not be touched); @offloaded says whether the write went
 * through another connection, whose signals no in-process listener heard.
 */
typedef void (*QsimApiOffloadDone)(SoupServerMessage *msg, QsimStore *server_store,
                                   gboolean offloaded, gpointer data, const GError *error);

void qsim_api_offload_write(QsimApiContext *ctx, QsimApiOffloadFunc func, QsimApiOffloadDone done,
                            gpointer data, GDestroyNotify free_data);

G_END_DECLS
