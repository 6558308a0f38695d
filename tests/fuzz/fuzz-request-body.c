#include "config.h"

#include <stdint.h>
#include <string.h>

#include "api/qsim-api-submit.h"
#include "common/qsim-error.h"
#include "common/qsim-json-gate.h"
#include "common/qsim-vm-name.h"

/* The whole request body validation of POST /requests and PUT /requests/{id}/status, as
 * the handlers run it, with any bytes: no crash, no leak, every refusal a valid UTF-8
 * message of qsim's error domain, and every acceptance within what the store and the
 * agents are promised (a valid VM name, commands that are non-empty UTF-8 without NUL and
 * within the limit, a timeout in range). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEFAULT_TIMEOUT 600
#define MAX_TIMEOUT 3600

static void
assert_refusal(const GError *error)
{
	g_assert_nonnull(error);
	g_assert_true(error->domain == QSIM_ERROR);
	g_assert_true(g_utf8_validate(error->message, -1, NULL));
	g_assert_cmpuint(strlen(error->message), >, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) submit_error = NULL;
	g_autoptr(GError) status_error = NULL;
	g_autoptr(JsonObject) obj = NULL;
	g_auto(QsimApiSubmit) submit = {0};
	QsimApiBodyFault fault = QSIM_API_BODY_FAULT_INVALID;
	const gchar *status = NULL;

	obj = qsim_api_body_parse_object((const gchar *)data, size, &fault, &error);
	if (obj == NULL) {
		assert_refusal(error);
		/* "invalid" only for a well-formed document whose root is not an object */
		if (fault == QSIM_API_BODY_FAULT_INVALID)
			g_assert_true(qsim_json_gate_check((const gchar *)data, size, NULL));
		return 0;
	}
	if (qsim_api_submit_parse(obj, DEFAULT_TIMEOUT, MAX_TIMEOUT, &submit, &submit_error)) {
		g_assert_no_error(submit_error);
		g_assert_true(qsim_vm_name_validate(submit.vm_name, NULL));
		g_assert_cmpuint(strlen(submit.commands), >, 0);
		g_assert_cmpuint(strlen(submit.commands), <=, QSIM_API_MAX_COMMANDS);
		g_assert_true(g_utf8_validate(submit.commands, -1, NULL));
		/* strlen cannot see a NUL that cut the string short: no accepted body may
		 * spell one, in any case of its hex digits */
		g_assert_null(g_strstr_len((const gchar *)data, size, "\\u0000"));
		g_assert_null(g_strstr_len((const gchar *)data, size, "\\U0000"));
		g_assert_cmpint(submit.timeout, >=, 1);
		g_assert_cmpint(submit.timeout, <=, MAX_TIMEOUT);
	} else {
		assert_refusal(submit_error);
		g_assert_null(submit.vm_name);
		g_assert_null(submit.commands);
	}
	/* PUT /requests/{id}/status reads one required string */
	if (qsim_api_body_get_string(obj, "status", TRUE, &status, &status_error))
		g_assert_true(g_utf8_validate(status, -1, NULL));
	else
		assert_refusal(status_error);
	return 0;
}
