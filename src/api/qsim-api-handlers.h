#pragma once

#include "api/qsim-api-context.h"
#include "store/qsim-request.h"

G_BEGIN_DECLS

/* A list or log page stops once its JSON passes this many bytes (after at
 * least one item), with a Link rel="next" to the rest: a page sized by rows
 * alone reached 126 MB and held the main loop for seconds. */
#define QSIM_API_RESPONSE_MAX_BYTES ((gsize)4 * 1024 * 1024)

/* One function per route, grouped by resource file (qsim-api-<resource>.c).
 * Each answers ctx->msg before returning, or pauses it and holds a reference. */

/* qsim-api-requests.c */
QsimRequest *qsim_api_requests_resolve(QsimApiContext *ctx);
void qsim_api_requests_create(QsimApiContext *ctx);
void qsim_api_requests_list(QsimApiContext *ctx);
void qsim_api_requests_get(QsimApiContext *ctx);
void qsim_api_requests_set_status(QsimApiContext *ctx);
void qsim_api_requests_delete(QsimApiContext *ctx);
void qsim_api_requests_purge(QsimApiContext *ctx);

/* qsim-api-artifacts.c */
void qsim_api_artifacts_list(QsimApiContext *ctx);
void qsim_api_artifacts_get(QsimApiContext *ctx);
void qsim_api_artifacts_tarball(QsimApiContext *ctx);

/* qsim-api-logs.c */
void qsim_api_logs_get(QsimApiContext *ctx);

/* qsim-api-vms.c */
void qsim_api_vms_list(QsimApiContext *ctx);
void qsim_api_vms_get(QsimApiContext *ctx);
void qsim_api_vms_prepare(QsimApiContext *ctx);

/* qsim-api-stats.c */
void qsim_api_stats_get(QsimApiContext *ctx);

/* qsim-api-history.c */
void qsim_api_history_get(QsimApiContext *ctx);

/* qsim-api-health.c */
void qsim_api_health_get(QsimApiContext *ctx);

/* qsim-api-metrics.c */
void qsim_api_metrics_get(QsimApiContext *ctx);

/* qsim-api-config.c */
void qsim_api_config_get(QsimApiContext *ctx);

/* qsim-api-events.c */
void qsim_api_events_get(QsimApiContext *ctx);

/* qsim-api-ui.c */
void qsim_api_ui_get(QsimApiContext *ctx);
void qsim_api_ui_redirect(QsimApiContext *ctx);
gsize qsim_api_ui_total_bytes(void);

/* qsim-api-openapi.c */
void qsim_api_openapi_get(QsimApiContext *ctx);
void qsim_api_docs_get(QsimApiContext *ctx);

G_END_DECLS
