#pragma once

#include "api/qsim-api-server.h"

G_BEGIN_DECLS

void qsim_api_metrics_probe_qemu(QsimApiServer *server);

gchar *qsim_api_metrics_parse_qemu_version(const gchar *text);

void qsim_api_metrics_write(QsimApiServer *server, GString *out);

G_END_DECLS
