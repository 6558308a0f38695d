#pragma once

#include <json-glib/json-glib.h>

#include "api/qsim-api-server.h"
#include "store/qsim-host-vm.h"

G_BEGIN_DECLS

void qsim_api_accel_add(JsonBuilder *b, QsimApiServer *server, const QsimHostVm *vm);

G_END_DECLS
