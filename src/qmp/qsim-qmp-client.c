#define G_LOG_DOMAIN "qsim-qmp"

#include "config.h"

#include <gio/gunixsocketaddress.h>

#include "common/qsim-error.h"
#include "qmp/qsim-qmp-client.h"
#include "qmp/qsim-qmp-json.h"
#include "qmp/qsim-qmp-stream.h"

/* QEMU creates its QMP socket a little after exec; poll for it with a short backoff. */
#define CONNECT_RETRY_MIN_MS 10
#define CONNECT_RETRY_MAX_MS 200

typedef enum {
	STATE_GREETING,    /* waiting for {"QMP": ...} */
	STATE_NEGOTIATING, /* qmp_capabilities sent */
	STATE_READY,
	STATE_CLOSED,
} ClientState;

struct _QsimQmpClient {
	GObject parent_instance;
	QsimQmpStream *stream;
	ClientState state;
	GHashTable *pending; /* id -> PendingCall, owned */
	guint64 next_id;
	gchar *version;
	gchar *package;
	guint major, minor, micro;
	GTask *handshake; /* set while greeting/capabilities are in progress */
	GSource *handshake_timeout;
	GSource *handshake_cancel;
	gulong message_id;
	gulong closed_id;
};

G_DEFINE_TYPE(QsimQmpClient, qsim_qmp_client, G_TYPE_OBJECT)

enum { SIGNAL_EVENT, SIGNAL_CLOSED, SIGNAL_LAST };
static guint signals[SIGNAL_LAST] = {0};

/* One command waiting for its reply: owned by the pending table. Destroying it detaches the
 * timeout and cancellation sources, so neither can fire for a finished call. */
typedef struct {
	QsimQmpClient *client; /* unowned: the client owns the table */
	gchar *id;
	gchar *command;
	GTask *task;
	GSource *timeout;
	GSource *cancel;
} PendingCall;

static void
pending_call_free(PendingCall *call)
{
	if (call->timeout != NULL) {
		g_source_destroy(call->timeout);
		g_source_unref(call->timeout);
	}
	if (call->cancel != NULL) {
		g_source_destroy(call->cancel);
		g_source_unref(call->cancel);
	}
	g_clear_object(&call->task);
	g_free(call->command);
	g_free(call->id);
	g_free(call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PendingCall, pending_call_free)

static gboolean
source_destroy_and_unref(GSource **source)
{
	if (*source == NULL)
		return FALSE;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
	return TRUE;
}

static void
qsim_qmp_client_handshake_done(QsimQmpClient *self, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->handshake);

	source_destroy_and_unref(&self->handshake_timeout);
	source_destroy_and_unref(&self->handshake_cancel);
	if (task == NULL) {
		g_clear_error(&error);
		return;
	}
	if (error != NULL) {
		/* closing emits "closed" on a client nobody else holds yet; harmless */
		qsim_qmp_client_close(self);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, g_object_ref(self), g_object_unref);
}

/* Fails every pending call with @reason. The table is emptied before any task completes,
 * because a completion callback may run at once and issue new commands or close us. */
static void
qsim_qmp_client_fail_pending(QsimQmpClient *self, const GError *reason)
{
	g_autoptr(GPtrArray) calls =
	    g_ptr_array_new_with_free_func((GDestroyNotify)pending_call_free);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->pending);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		g_ptr_array_add(calls, value);
		g_hash_table_iter_steal(&iter);
	}
	for (guint i = 0; i < calls->len; i++) {
		PendingCall *call = g_ptr_array_index(calls, i);
		g_autoptr(GTask) task = g_steal_pointer(&call->task);
		GError *error = g_error_new(
		    QSIM_ERROR, reason->domain == QSIM_ERROR ? reason->code : QSIM_ERROR_QMP,
		    "QMP command '%s' failed: %s", call->command, reason->message);
		/* detach the sources before the callback can run */
		source_destroy_and_unref(&call->timeout);
		source_destroy_and_unref(&call->cancel);
		g_task_return_error(task, error);
	}
}

static void
qsim_qmp_client_stream_closed_cb(QsimQmpStream *stream, GError *error, gpointer user_data)
{
	g_autoptr(QsimQmpClient) self = g_object_ref(QSIM_QMP_CLIENT(user_data));
	g_autoptr(GError) reason = NULL;

	if (self->state == STATE_CLOSED)
		return;
	self->state = STATE_CLOSED;
	if (error != NULL)
		reason = g_error_copy(error);
	else
		reason = g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                             "QMP connection closed by us");
	if (error != NULL)
		g_info("QMP connection lost: %s", error->message);
	qsim_qmp_client_fail_pending(self, reason);
	if (self->handshake != NULL) {
		qsim_qmp_client_handshake_done(
		    self,
		    g_error_new(QSIM_ERROR, reason->code,
		                "QMP connection ended during the handshake: %s", reason->message));
	}
	g_signal_emit(self, signals[SIGNAL_CLOSED], 0, error);
}

static void
qsim_qmp_client_handle_event(QsimQmpClient *self, JsonObject *msg)
{
	const gchar *name = qsim_qmp_json_get_string(msg, "event");
	JsonObject *data = qsim_qmp_json_get_object(msg, "data");
	JsonObject *ts = qsim_qmp_json_get_object(msg, "timestamp");
	gint64 timestamp_us = -1;

	if (name == NULL || name[0] == '\0') {
		g_debug("dropping QMP event without a string name");
		return;
	}
	if (ts != NULL) {
		JsonNode *sec = json_object_get_member(ts, "seconds");
		JsonNode *usec = json_object_get_member(ts, "microseconds");
		/* bounded so that the multiplication cannot overflow */
		if (qsim_qmp_json_is_int(sec) && qsim_qmp_json_is_int(usec) &&
		    json_node_get_int(sec) >= 0 &&
		    json_node_get_int(sec) < G_MAXINT64 / G_USEC_PER_SEC - 1 &&
		    json_node_get_int(usec) >= 0 && json_node_get_int(usec) < G_USEC_PER_SEC)
			timestamp_us =
			    json_node_get_int(sec) * G_USEC_PER_SEC + json_node_get_int(usec);
	}
	g_debug("QMP event %s", name);
	/* the event name is the detail, so a handler may connect to "event::SHUTDOWN"; only
	 * look the quark up, so that a peer cannot grow the quark table without bound */
	g_signal_emit(self, signals[SIGNAL_EVENT], g_quark_try_string(name), name, data,
	              timestamp_us);
}

static GError *
qsim_qmp_client_reply_error(const gchar *command, JsonNode *error_node)
{
	JsonObject *err;
	const gchar *klass;
	const gchar *desc;

	if (JSON_NODE_TYPE(error_node) != JSON_NODE_OBJECT)
		return g_error_new(QSIM_ERROR, QSIM_ERROR_QMP,
		                   "QMP command '%s' failed: malformed error reply", command);
	err = json_node_get_object(error_node);
	klass = qsim_qmp_json_get_string(err, "class");
	desc = qsim_qmp_json_get_string(err, "desc");
	if (klass == NULL)
		klass = "UnknownError";
	if (desc == NULL)
		desc = "(no description)";
	return g_error_new(QSIM_ERROR, QSIM_ERROR_QMP, "QMP command '%s' failed: %s: %s", command,
	                   klass, desc);
}

static void
qsim_qmp_client_handle_reply(QsimQmpClient *self, JsonObject *msg)
{
	const gchar *id = qsim_qmp_json_get_string(msg, "id");
	JsonNode *ret;
	JsonNode *err;
	g_autoptr(PendingCall) call = NULL;
	g_autoptr(GTask) task = NULL;
	gpointer key = NULL;
	gpointer value = NULL;

	if (id == NULL) {
		g_debug("dropping QMP reply without a string id");
		return;
	}
	if (!g_hash_table_steal_extended(self->pending, id, &key, &value)) {
		/* a reply after its timeout or cancellation lands here, by design */
		g_debug("dropping QMP reply with unknown id %s", id);
		return;
	}
	call = value;
	task = g_steal_pointer(&call->task);
	source_destroy_and_unref(&call->timeout);
	source_destroy_and_unref(&call->cancel);

	err = json_object_get_member(msg, "error");
	ret = json_object_get_member(msg, "return");
	if (err != NULL) {
		g_task_return_error(task, qsim_qmp_client_reply_error(call->command, err));
		return;
	}
	if (ret == NULL) {
		g_task_return_new_error(
		    task, QSIM_ERROR, QSIM_ERROR_QMP,
		    "QMP command '%s' failed: reply has neither return nor error", call->command);
		return;
	}
	g_task_return_pointer(task, json_node_copy(ret), (GDestroyNotify)json_node_unref);
}

static gboolean
read_version_member(JsonObject *qemu, const gchar *name, guint *out)
{
	JsonNode *node = json_object_get_member(qemu, name);
	gint64 v;

	if (!qsim_qmp_json_is_int(node))
		return FALSE;
	v = json_node_get_int(node);
	if (v < 0 || v > G_MAXINT)
		return FALSE;
	*out = (guint)v;
	return TRUE;
}

static void
qsim_qmp_client_capabilities_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	QsimQmpClient *self = QSIM_QMP_CLIENT(source);
	g_autoptr(GError) error = NULL;
	g_autoptr(JsonNode) ret = NULL;

	ret = qsim_qmp_client_execute_finish(self, res, &error);
	if (ret == NULL) {
		qsim_qmp_client_handshake_done(self, g_steal_pointer(&error));
		return;
	}
	if (self->state != STATE_NEGOTIATING)
		return;
	self->state = STATE_READY;
	g_info("QMP ready (QEMU %s)", self->version);
	qsim_qmp_client_handshake_done(self, NULL);
}

static gboolean
qsim_qmp_client_parse_greeting(QsimQmpClient *self, JsonObject *msg, GError **error)
{
	JsonObject *qmp = qsim_qmp_json_get_object(msg, "QMP");
	JsonObject *version;
	JsonObject *qemu;
	JsonNode *node;
	const gchar *package;

	if (qmp == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_QMP,
		                    "invalid QMP greeting: no QMP object");
		return FALSE;
	}
	version = qsim_qmp_json_get_object(qmp, "version");
	if (version == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_QMP,
		                    "invalid QMP greeting: no version object");
		return FALSE;
	}
	qemu = qsim_qmp_json_get_object(version, "qemu");
	if (qemu == NULL) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_QMP,
		                    "invalid QMP greeting: no version.qemu object");
		return FALSE;
	}
	if (!read_version_member(qemu, "major", &self->major) ||
	    !read_version_member(qemu, "minor", &self->minor) ||
	    !read_version_member(qemu, "micro", &self->micro)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_QMP,
		                    "invalid QMP greeting: bad version numbers");
		return FALSE;
	}
	node = json_object_get_member(qmp, "capabilities");
	if (node == NULL || JSON_NODE_TYPE(node) != JSON_NODE_ARRAY) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_QMP,
		                    "invalid QMP greeting: no capabilities array");
		return FALSE;
	}
	self->version = g_strdup_printf("%u.%u.%u", self->major, self->minor, self->micro);
	package = qsim_qmp_json_get_string(version, "package");
	self->package = g_strdup(package != NULL ? package : "");
	return TRUE;
}

static void
qsim_qmp_client_stream_message_cb(QsimQmpStream *stream, JsonObject *msg, gpointer user_data)
{
	g_autoptr(QsimQmpClient) self = g_object_ref(QSIM_QMP_CLIENT(user_data));
	g_autoptr(GError) error = NULL;

	switch (self->state) {
	case STATE_GREETING:
		if (!qsim_qmp_client_parse_greeting(self, msg, &error)) {
			qsim_qmp_client_handshake_done(self, g_steal_pointer(&error));
			return;
		}
		self->state = STATE_NEGOTIATING;
		/* no capabilities are enabled: qsim needs no out-of-band execution */
		qsim_qmp_client_execute_async(self, "qmp_capabilities", NULL, 0, NULL,
		                              qsim_qmp_client_capabilities_cb, NULL);
		return;
	case STATE_NEGOTIATING:
	case STATE_READY:
		if (json_object_has_member(msg, "event"))
			qsim_qmp_client_handle_event(self, msg);
		else if (json_object_has_member(msg, "return") ||
		         json_object_has_member(msg, "error"))
			qsim_qmp_client_handle_reply(self, msg);
		else
			g_debug("dropping unknown QMP message");
		return;
	case STATE_CLOSED:
		return;
	}
}

static gboolean
qsim_qmp_client_call_timeout_cb(gpointer user_data)
{
	PendingCall *call = user_data;
	QsimQmpClient *self = call->client;
	g_autoptr(PendingCall) owned = NULL;
	g_autoptr(GTask) task = NULL;

	if (!g_hash_table_steal_extended(self->pending, call->id, NULL, (gpointer *)&owned))
		return G_SOURCE_REMOVE;
	task = g_steal_pointer(&owned->task);
	/* the timeout source is the one running: only drop our reference, do not destroy */
	g_clear_pointer(&owned->timeout, g_source_unref);
	source_destroy_and_unref(&owned->cancel);
	g_info("QMP command '%s' (%s) timed out", owned->command, owned->id);
	g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
	                        "QMP command '%s' timed out", owned->command);
	return G_SOURCE_REMOVE;
}

static gboolean
qsim_qmp_client_call_cancel_cb(GCancellable *cancellable, gpointer user_data)
{
	PendingCall *call = user_data;
	QsimQmpClient *self = call->client;
	g_autoptr(PendingCall) owned = NULL;
	g_autoptr(GTask) task = NULL;

	if (!g_hash_table_steal_extended(self->pending, call->id, NULL, (gpointer *)&owned))
		return G_SOURCE_REMOVE;
	task = g_steal_pointer(&owned->task);
	g_clear_pointer(&owned->cancel, g_source_unref);
	source_destroy_and_unref(&owned->timeout);
	g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CANCELLED,
	                        "QMP command '%s' was cancelled", owned->command);
	return G_SOURCE_REMOVE;
}

static gboolean
qsim_qmp_command_name_valid(const gchar *command)
{
	if (command == NULL || command[0] == '\0' || strlen(command) > 128)
		return FALSE;
	for (const gchar *p = command; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
			return FALSE;
	}
	return TRUE;
}

static void qsim_qmp_client_execute_full(QsimQmpClient *self, const gchar *command,
                                         JsonObject *arguments, gint fd, guint timeout_ms,
                                         GCancellable *cancellable, GAsyncReadyCallback callback,
                                         gpointer user_data);

/**
 * qsim_qmp_client_execute_async:
 * @self: a ready #QsimQmpClient
 * @command: the QMP command name, e.g. "query-status" (letters, digits, '-' and '_')
 * @arguments: (nullable) (transfer none): the command's arguments, serialized at once
 * @timeout_ms: how long to wait for the reply, 0 for %QSIM_QMP_DEFAULT_TIMEOUT_MS
 * @cancellable: (nullable): cancels the wait; QEMU may still execute the command
 * @callback: called on the thread-default main context of this call
 * @user_data: data for @callback
 *
 * Sends @command with a unique id and waits for its reply. A reply that arrives after the
 * timeout or cancellation is dropped.
 */
void
qsim_qmp_client_execute_async(QsimQmpClient *self, const gchar *command, JsonObject *arguments,
                              guint timeout_ms, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
	qsim_qmp_client_execute_full(self, command, arguments, -1, timeout_ms, cancellable,
	                             callback, user_data);
}

/**
 * qsim_qmp_client_execute_with_fd_async:
 * @self: a ready #QsimQmpClient on a unix socket
 * @command: the QMP command name, e.g. "getfd"
 * @arguments: (nullable) (transfer none): the command's arguments
 * @fd: passed to QEMU with the command (SCM_RIGHTS); duplicated, the caller keeps its own
 * @timeout_ms: how long to wait for the reply, 0 for %QSIM_QMP_DEFAULT_TIMEOUT_MS
 * @cancellable: (nullable): cancels the wait
 * @callback: called on the thread-default main context of this call; finish with
 *   qsim_qmp_client_execute_finish()
 * @user_data: data for @callback
 *
 * Like qsim_qmp_client_execute_async(), with @fd for commands that take one (`getfd`).
 */
void
qsim_qmp_client_execute_with_fd_async(QsimQmpClient *self, const gchar *command,
                                      JsonObject *arguments, gint fd, guint timeout_ms,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data)
{
	g_return_if_fail(fd >= 0);
	qsim_qmp_client_execute_full(self, command, arguments, fd, timeout_ms, cancellable,
	                             callback, user_data);
}

static void
qsim_qmp_client_execute_full(QsimQmpClient *self, const gchar *command, JsonObject *arguments,
                             gint fd, guint timeout_ms, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	g_autoptr(JsonObject) msg = NULL;
	PendingCall *call;
	gboolean handshake_call;

	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	g_return_if_fail(cancellable == NULL || G_IS_CANCELLABLE(cancellable));

	task = g_task_new(self, cancellable, callback, user_data);
	/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_source_tag(task, qsim_qmp_client_execute_async);
	if (!qsim_qmp_command_name_valid(command)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "invalid QMP command name");
		return;
	}
	g_task_set_task_data(task, g_strdup(command), g_free);
	handshake_call =
	    self->state == STATE_NEGOTIATING && g_str_equal(command, "qmp_capabilities");
	if (self->state != STATE_READY && !handshake_call) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_QMP,
		                        "QMP command '%s' failed: the connection is %s", command,
		                        self->state == STATE_CLOSED ? "closed" : "not ready");
		return;
	}
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                        "QMP operation was cancelled");
		return;
	}
	if (fd >= 0 && !qsim_qmp_stream_can_pass_fds(self->stream)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "QMP command '%s' needs an fd, and this connection cannot "
		                        "carry one",
		                        command);
		return;
	}
	if (timeout_ms == 0)
		timeout_ms = QSIM_QMP_DEFAULT_TIMEOUT_MS;

	call = g_new0(PendingCall, 1);
	call->client = self;
	call->id = g_strdup_printf("qsim-%" G_GUINT64_FORMAT, self->next_id++);
	call->command = g_strdup(command);
	call->task = g_object_ref(task);
	call->timeout = g_timeout_source_new(timeout_ms);
	g_source_set_callback(call->timeout, qsim_qmp_client_call_timeout_cb, call, NULL);
	g_source_attach(call->timeout, g_task_get_context(task));
	if (cancellable != NULL) {
		call->cancel = g_cancellable_source_new(cancellable);
		g_source_set_callback(call->cancel, G_SOURCE_FUNC(qsim_qmp_client_call_cancel_cb),
		                      call, NULL);
		g_source_attach(call->cancel, g_task_get_context(task));
	}
	g_hash_table_insert(self->pending, call->id, call);

	msg = json_object_new();
	json_object_set_string_member(msg, "execute", command);
	if (arguments != NULL)
		json_object_set_object_member(msg, "arguments", json_object_ref(arguments));
	json_object_set_string_member(msg, "id", call->id);
	qsim_qmp_stream_send_with_fd(self->stream, msg, fd);
}

/**
 * qsim_qmp_client_execute_finish:
 * @self: a #QsimQmpClient
 * @result: the result passed to the callback
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: (transfer full) (nullable): QEMU's `return` member, or %NULL with @error set:
 * %QSIM_ERROR_QMP for an error reply ("QMP command 'X' failed: <class>: <desc>") or a lost
 * connection, %QSIM_ERROR_TIMED_OUT, %QSIM_ERROR_CANCELLED or %QSIM_ERROR_INVALID.
 */
JsonNode *
qsim_qmp_client_execute_finish(QsimQmpClient *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(g_async_result_is_tagged(result, qsim_qmp_client_execute_async), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

static gboolean
qsim_qmp_client_handshake_timeout_cb(gpointer user_data)
{
	QsimQmpClient *self = QSIM_QMP_CLIENT(user_data);

	/* a QEMU that already serves another client accepts but never greets */
	qsim_qmp_client_handshake_done(
	    self, g_error_new_literal(QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
	                              self->state == STATE_GREETING
	                                  ? "timed out waiting for the QMP greeting"
	                                  : "timed out negotiating QMP capabilities"));
	return G_SOURCE_REMOVE;
}

static gboolean
qsim_qmp_client_handshake_cancel_cb(GCancellable *cancellable, gpointer user_data)
{
	QsimQmpClient *self = QSIM_QMP_CLIENT(user_data);

	qsim_qmp_client_handshake_done(self, g_error_new_literal(QSIM_ERROR, QSIM_ERROR_CANCELLED,
	                                                         "QMP handshake was cancelled"));
	return G_SOURCE_REMOVE;
}

/**
 * qsim_qmp_client_new_for_stream_async:
 * @stream: (transfer none): a connected stream to QEMU's monitor (or a test peer)
 * @timeout_ms: deadline for the greeting and qmp_capabilities, 0 for the default
 * @cancellable: (nullable): cancels the handshake
 * @callback: called when the client is ready or failed
 * @user_data: data for @callback
 *
 * Reads QEMU's greeting, keeps its version and negotiates capabilities.
 */
void
qsim_qmp_client_new_for_stream_async(GIOStream *stream, guint timeout_ms, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(QsimQmpClient) self = NULL;
	g_autoptr(GTask) task = NULL;

	g_return_if_fail(G_IS_IO_STREAM(stream));

	task = g_task_new(NULL, cancellable, callback, user_data);
	/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_source_tag(task, qsim_qmp_client_new_for_stream_async);
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                        "QMP operation was cancelled");
		return;
	}
	if (timeout_ms == 0)
		timeout_ms = QSIM_QMP_DEFAULT_TIMEOUT_MS;

	self = g_object_new(QSIM_TYPE_QMP_CLIENT, NULL);
	self->stream = qsim_qmp_stream_new(stream);
	self->message_id = g_signal_connect(self->stream, "message",
	                                    G_CALLBACK(qsim_qmp_client_stream_message_cb), self);
	self->closed_id = g_signal_connect(self->stream, "closed",
	                                   G_CALLBACK(qsim_qmp_client_stream_closed_cb), self);
	/* the task keeps the client alive until the handshake ends */
	g_task_set_task_data(task, g_object_ref(self), g_object_unref);
	self->handshake = g_steal_pointer(&task);
	self->handshake_timeout = g_timeout_source_new(timeout_ms);
	g_source_set_callback(self->handshake_timeout, qsim_qmp_client_handshake_timeout_cb, self,
	                      NULL);
	g_source_attach(self->handshake_timeout, g_task_get_context(self->handshake));
	if (cancellable != NULL) {
		self->handshake_cancel = g_cancellable_source_new(cancellable);
		g_source_set_callback(self->handshake_cancel,
		                      G_SOURCE_FUNC(qsim_qmp_client_handshake_cancel_cb), self,
		                      NULL);
		g_source_attach(self->handshake_cancel, g_task_get_context(self->handshake));
	}
	qsim_qmp_stream_start(self->stream);
}

/**
 * qsim_qmp_client_new_for_stream_finish:
 * @result: the result passed to the callback
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: (transfer full) (nullable): a ready client, or %NULL with @error set
 * (%QSIM_ERROR_QMP for a bad greeting or refused negotiation, %QSIM_ERROR_TIMED_OUT).
 */
QsimQmpClient *
qsim_qmp_client_new_for_stream_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

typedef struct {
	gchar *path;
	gint64 deadline_us;
	guint timeout_ms;
	guint retry_ms;
	GSocketClient *socket_client;
	GSocketAddress *address;
} ConnectData;

static void
connect_data_free(ConnectData *data)
{
	g_free(data->path);
	g_clear_object(&data->socket_client);
	g_clear_object(&data->address);
	g_free(data);
}

static void qsim_qmp_client_connect_attempt(GTask *task);

static void
qsim_qmp_client_connect_handshake_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	g_autoptr(GError) error = NULL;
	QsimQmpClient *client;

	client = qsim_qmp_client_new_for_stream_finish(res, &error);
	if (client == NULL) {
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	g_task_return_pointer(task, client, g_object_unref);
}

static gboolean
qsim_qmp_client_connect_retry_cb(gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	qsim_qmp_client_connect_attempt(g_steal_pointer(&task));
	return G_SOURCE_REMOVE;
}

static void
qsim_qmp_client_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	ConnectData *data = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	GCancellable *cancellable;
	gint64 remaining_ms;

	conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(source), res, &error);
	remaining_ms = (data->deadline_us - g_get_monotonic_time()) / 1000;
	if (conn == NULL) {
		gboolean retriable =
		    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
		    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
		if (retriable && remaining_ms > 0) {
			g_autoptr(GSource) retry = NULL;
			g_debug("QMP socket %s not ready (%s), retrying in %u ms", data->path,
			        error->message, data->retry_ms);
			retry = g_timeout_source_new(MIN(data->retry_ms, (guint)remaining_ms));
			data->retry_ms = MIN(data->retry_ms * 2, CONNECT_RETRY_MAX_MS);
			g_source_attach(retry, g_task_get_context(task));
			g_source_set_callback(retry, qsim_qmp_client_connect_retry_cb,
			                      g_steal_pointer(&task), NULL);
			return;
		}
		qsim_error_convert(&error);
		if (retriable)
			error->code = QSIM_ERROR_TIMED_OUT;
		g_prefix_error(&error, "cannot connect to QMP socket %s: ", data->path);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	/* argument evaluation order is unspecified: fetch before stealing the task */
	cancellable = g_task_get_cancellable(task);
	qsim_qmp_client_new_for_stream_async(G_IO_STREAM(conn), (guint)MAX(remaining_ms, 1),
	                                     cancellable, qsim_qmp_client_connect_handshake_cb,
	                                     g_steal_pointer(&task));
}

static void
qsim_qmp_client_connect_attempt(GTask *task_in)
{
	g_autoptr(GTask) task = task_in;
	ConnectData *data = g_task_get_task_data(task);
	GCancellable *cancellable = g_task_get_cancellable(task);

	g_socket_client_connect_async(data->socket_client, G_SOCKET_CONNECTABLE(data->address),
	                              cancellable, qsim_qmp_client_connect_cb,
	                              g_steal_pointer(&task));
}

/**
 * qsim_qmp_client_connect_async:
 * @socket_path: the unix socket QEMU listens on (`-qmp unix:PATH,server=on,wait=off`)
 * @timeout_ms: overall deadline for connecting, the greeting and qmp_capabilities; 0 for
 * %QSIM_QMP_DEFAULT_TIMEOUT_MS
 * @cancellable: (nullable): cancels the whole operation, e.g. when QEMU exits early
 * @callback: called when the client is ready or failed
 * @user_data: data for @callback
 *
 * Connects to QEMU's monitor. QEMU creates the socket shortly after it starts, so a missing
 * socket or a refused connection is retried with a short backoff until @timeout_ms passes;
 * the caller (QsimVm) cancels @cancellable if QEMU dies meanwhile.
 */
void
qsim_qmp_client_connect_async(const gchar *socket_path, guint timeout_ms, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = NULL;
	ConnectData *data;

	task = g_task_new(NULL, cancellable, callback, user_data);
	/* cancellation is reported as QSIM_ERROR_CANCELLED by us, not GIO */
	g_task_set_check_cancellable(task, FALSE);
	g_task_set_source_tag(task, qsim_qmp_client_connect_async);
	/* sun_path holds 108 bytes including the terminator */
	if (socket_path == NULL || socket_path[0] == '\0' || strlen(socket_path) > 107) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "invalid QMP socket path");
		return;
	}
	if (timeout_ms == 0)
		timeout_ms = QSIM_QMP_DEFAULT_TIMEOUT_MS;
	data = g_new0(ConnectData, 1);
	data->path = g_strdup(socket_path);
	data->timeout_ms = timeout_ms;
	data->deadline_us = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	data->retry_ms = CONNECT_RETRY_MIN_MS;
	data->socket_client = g_socket_client_new();
	data->address = g_unix_socket_address_new(socket_path);
	g_task_set_task_data(task, data, (GDestroyNotify)connect_data_free);
	qsim_qmp_client_connect_attempt(g_steal_pointer(&task));
}

/**
 * qsim_qmp_client_connect_finish:
 * @result: the result passed to the callback
 * @error: return location for a %QSIM_ERROR
 *
 * Returns: (transfer full) (nullable): a ready client, or %NULL with @error set
 * (%QSIM_ERROR_TIMED_OUT when the socket never answered, %QSIM_ERROR_QMP for a bad
 * greeting, %QSIM_ERROR_CANCELLED, %QSIM_ERROR_IO).
 */
QsimQmpClient *
qsim_qmp_client_connect_finish(GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

/**
 * qsim_qmp_client_get_version:
 * @self: a ready #QsimQmpClient
 *
 * Returns: (transfer none): QEMU's version from the greeting, e.g. "7.2.22".
 */
const gchar *
qsim_qmp_client_get_version(QsimQmpClient *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_CLIENT(self), NULL);
	return self->version;
}

/**
 * qsim_qmp_client_get_version_numbers:
 * @self: a ready #QsimQmpClient
 * @major: (out) (optional): major version from the greeting
 * @minor: (out) (optional): minor version
 * @micro: (out) (optional): micro version
 */
void
qsim_qmp_client_get_version_numbers(QsimQmpClient *self, guint *major, guint *minor, guint *micro)
{
	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	if (major != NULL)
		*major = self->major;
	if (minor != NULL)
		*minor = self->minor;
	if (micro != NULL)
		*micro = self->micro;
}

/**
 * qsim_qmp_client_get_package:
 * @self: a ready #QsimQmpClient
 *
 * Returns: (transfer none): the distribution's package string from the greeting, maybe "".
 */
const gchar *
qsim_qmp_client_get_package(QsimQmpClient *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_CLIENT(self), NULL);
	return self->package;
}

/**
 * qsim_qmp_client_is_connected:
 * @self: a #QsimQmpClient
 *
 * Returns: %TRUE while the client is ready for commands.
 */
gboolean
qsim_qmp_client_is_connected(QsimQmpClient *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_CLIENT(self), FALSE);
	return self->state == STATE_READY;
}

/**
 * qsim_qmp_client_get_eof:
 * @self: a #QsimQmpClient
 *
 * Returns: %TRUE if the connection ended because QEMU closed it (after `quit`, or because
 * it exited), rather than by an error or qsim_qmp_client_close().
 */
gboolean
qsim_qmp_client_get_eof(QsimQmpClient *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_CLIENT(self), FALSE);
	return self->stream != NULL && qsim_qmp_stream_get_eof(self->stream);
}

/**
 * qsim_qmp_client_get_n_pending:
 * @self: a #QsimQmpClient
 *
 * Returns: how many commands wait for a reply.
 */
guint
qsim_qmp_client_get_n_pending(QsimQmpClient *self)
{
	g_return_val_if_fail(QSIM_IS_QMP_CLIENT(self), 0);
	return g_hash_table_size(self->pending);
}

/**
 * qsim_qmp_client_close:
 * @self: a #QsimQmpClient
 *
 * Closes the connection: pending calls fail with %QSIM_ERROR_CANCELLED and "closed" is
 * emitted with a %NULL error. Does nothing if already closed. QEMU keeps running.
 */
void
qsim_qmp_client_close(QsimQmpClient *self)
{
	g_return_if_fail(QSIM_IS_QMP_CLIENT(self));
	if (self->stream != NULL)
		qsim_qmp_stream_close(self->stream);
}

static void
qsim_qmp_client_dispose(GObject *object)
{
	QsimQmpClient *self = QSIM_QMP_CLIENT(object);

	/* the handshake task holds a reference, so it cannot be pending here; pending calls
	 * hold references too (their GTask's source object) */
	if (self->stream != NULL) {
		g_clear_signal_handler(&self->message_id, self->stream);
		g_clear_signal_handler(&self->closed_id, self->stream);
		qsim_qmp_stream_close(self->stream);
		g_clear_object(&self->stream);
	}
	source_destroy_and_unref(&self->handshake_timeout);
	source_destroy_and_unref(&self->handshake_cancel);
	G_OBJECT_CLASS(qsim_qmp_client_parent_class)->dispose(object);
}

static void
qsim_qmp_client_finalize(GObject *object)
{
	QsimQmpClient *self = QSIM_QMP_CLIENT(object);

	g_hash_table_unref(self->pending);
	g_free(self->version);
	g_free(self->package);
	G_OBJECT_CLASS(qsim_qmp_client_parent_class)->finalize(object);
}

static void
qsim_qmp_client_class_init(QsimQmpClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->dispose = qsim_qmp_client_dispose;
	object_class->finalize = qsim_qmp_client_finalize;

	signals[SIGNAL_EVENT] = g_signal_new(
	    "event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED, 0, NULL, NULL,
	    NULL, G_TYPE_NONE, 3, G_TYPE_STRING, JSON_TYPE_OBJECT, G_TYPE_INT64);
	signals[SIGNAL_CLOSED] = g_signal_new("closed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
	                                      0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
qsim_qmp_client_init(QsimQmpClient *self)
{
	self->state = STATE_GREETING;
	self->pending =
	    g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)pending_call_free);
	self->next_id = 1;
}
