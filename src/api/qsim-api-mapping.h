#pragma once

#include <json-glib/json-glib.h>

#include "store/qsim-log-entry.h"
#include "store/qsim-request.h"

G_BEGIN_DECLS

void qsim_api_mapping_add_request(JsonBuilder *b, const QsimRequest *request);

JsonNode *qsim_api_mapping_request(const QsimRequest *request);

void qsim_api_mapping_append_request(GString *out, const QsimRequest *request);

void qsim_api_mapping_add_log(JsonBuilder *b, const QsimLogEntry *entry);

JsonNode *qsim_api_mapping_log(const QsimLogEntry *entry);

void qsim_api_mapping_append_log(GString *out, const QsimLogEntry *entry);

JsonNode *qsim_api_mapping_end(const QsimRequest *request);

G_END_DECLS
