#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* a submitted command string, in bytes */
#define QSIM_API_MAX_COMMANDS (256 * 1024)

/**
 * QsimApiBodyFault:
 * @QSIM_API_BODY_FAULT_SYNTAX: not JSON at all (400)
 * @QSIM_API_BODY_FAULT_INVALID: JSON, but not what the endpoint takes (422)
 *
 * How a request body failed, for the HTTP status; the message is in the #GError.
 */
typedef enum {
	QSIM_API_BODY_FAULT_SYNTAX,
	QSIM_API_BODY_FAULT_INVALID,
} QsimApiBodyFault;

/**
 * QsimApiSubmit:
 * @vm_name: a valid VM name (qsim_vm_name_validate())
 * @commands: non-empty valid UTF-8 with no NUL, at most %QSIM_API_MAX_COMMANDS bytes
 * @timeout: seconds, 1 to the maximum given
 *
 * A `POST /requests` body once validated. Whether the VM exists is checked later,
 * against the VMs this qsimd can run.
 */
typedef struct {
	gchar *vm_name;
	gchar *commands;
	gint64 timeout;
	gchar **artifacts; /* nullable: guest paths or globs to collect */
} QsimApiSubmit;

void qsim_api_submit_clear(QsimApiSubmit *submit);
JsonObject *qsim_api_body_parse_object(const gchar *data, gsize len, QsimApiBodyFault *fault,
                                       GError **error);
gboolean qsim_api_body_get_string(JsonObject *obj, const gchar *field, gboolean required,
                                  const gchar **out, GError **error);
gboolean qsim_api_body_get_int(JsonObject *obj, const gchar *field, gboolean *present, gint64 *out,
                               GError **error);
gboolean qsim_api_submit_parse(JsonObject *obj, gint64 default_timeout, gint64 max_timeout,
                               QsimApiSubmit *out, GError **error);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QsimApiSubmit, qsim_api_submit_clear)

G_END_DECLS
