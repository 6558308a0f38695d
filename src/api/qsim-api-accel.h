#pragma once

#include <json-glib/json-glib.h>

#include "api/qsim-api-server.h"
#include "common/qsim-vm-config.h"

G_BEGIN_DECLS

void qsim_api_accel_add(JsonBuilder *b, QsimApiServer *server, const QsimVmConfig *vm);

G_END_DECLS
