#define G_LOG_DOMAIN "qsim-guest"

#include "config.h"

#include "common/qsim-error.h"
#include "guest/qsim-guest-exec-fs.h"
#include "guest/qsim-guest-flow.h"
#include "guest/qsim-guest-sftp.h"
#include "guest/qsim-guest-ssh.h"
#include "guest/qsim-guest.h"

/* run_simple keeps at most this much of each stream */
#define QSIM_GUEST_SIMPLE_OUTPUT_MAX (64 * 1024)

typedef enum {
	QSIM_GUEST_OP_CONNECT,
	QSIM_GUEST_OP_EXEC,
	QSIM_GUEST_OP_RUN_SIMPLE,
	QSIM_GUEST_OP_COLLECT,
	QSIM_GUEST_OP_UPLOAD,
	QSIM_GUEST_OP_CLOSE,
	QSIM_GUEST_OP_QUIT,
} QsimGuestOpKind;

/* One queued request to the worker; owned by whoever holds the pointer. */
typedef struct {
	QsimGuestOpKind kind;
	QsimGuest *self; /* borrowed: the task (or finalize, for QUIT) keeps it alive */
	GTask *task;
	gint gen; /* close generation the op was queued in */
	gchar *command;
	QsimGuestOutputFunc output_cb;
	gpointer output_data;
	gint64 deadline_us;
	guint timeout_ms;
	guint attempt_timeout_ms;
	GCancellable *cancellable;
	/* run_simple collects output here (worker only) */
	GByteArray *out;
	GByteArray *err;
	/* collect */
	gchar **patterns;
	QsimGuestCollectLimits limits;
	QsimGuestCollectSink sink;
	/* upload: borrowed, valid until the callback */
	const QsimGuestPut *puts;
	guint n_puts;
} QsimGuestOp;

typedef struct {
	GPtrArray *artifacts;
	GPtrArray *notes;
} QsimGuestCollectResult;

typedef struct {
	gint exit_status;
	gchar *exit_signal;
} QsimGuestExecResult;

typedef struct {
	gint64 total;
	gboolean via_exec;
} QsimGuestUploadResult;

typedef struct {
	gchar *out;
	gchar *err;
} QsimGuestSimpleResult;

struct _QsimGuest {
	GObject parent_instance;
	/* immutable after construction */
	gchar *host;
	guint16 port;
	gchar *user;
	gchar *key_path;
	gchar *password;
	GMainContext *context;
	/* shared with the worker */
	QsimGuestFlow *flow;
	GAsyncQueue *ops;
	GThread *worker;
	gint close_gen;           /* atomic: bumped by qsim_guest_close() */
	gint connected_gen;       /* atomic: gen of the live session, or -1 */
	guint attempt_timeout_ms; /* atomic */
	/* main context only */
	gchar *fingerprint;
	/* worker only */
	QsimGuestSsh *ssh;
};

G_DEFINE_TYPE(QsimGuest, qsim_guest, G_TYPE_OBJECT)

static void
qsim_guest_op_free(QsimGuestOp *op)
{
	g_clear_object(&op->task);
	g_clear_object(&op->cancellable);
	g_clear_pointer(&op->out, g_byte_array_unref);
	g_clear_pointer(&op->err, g_byte_array_unref);
	g_free(op->command);
	g_strfreev(op->patterns);
	g_free(op);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QsimGuestOp, qsim_guest_op_free)

static void
qsim_guest_exec_result_free(QsimGuestExecResult *result)
{
	g_free(result->exit_signal);
	g_free(result);
}

static void
qsim_guest_simple_result_free(QsimGuestSimpleResult *result)
{
	g_free(result->out);
	g_free(result->err);
	g_free(result);
}

static gboolean
qsim_guest_op_abort_cb(gpointer data, GError **error)
{
	QsimGuestOp *op = data;

	if (g_atomic_int_get(&op->self->close_gen) != op->gen) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest session closed");
		return TRUE;
	}
	if (op->cancellable != NULL && g_cancellable_is_cancelled(op->cancellable)) {
		g_set_error_literal(error, QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                    "guest operation cancelled");
		return TRUE;
	}
	return FALSE;
}

static gsize
qsim_guest_flow_sink_wait_room(gpointer data, guint timeout_ms)
{
	QsimGuestOp *op = data;
	return qsim_guest_flow_wait_room(op->self->flow, timeout_ms);
}

static void
qsim_guest_flow_sink_push(gpointer data, QsimGuestStream stream, GBytes *chunk)
{
	QsimGuestOp *op = data;
	qsim_guest_flow_push_chunk(op->self->flow, op, stream, chunk, op->output_cb,
	                           op->output_data);
}

static gsize
qsim_guest_collect_sink_wait_room(gpointer data, guint timeout_ms)
{
	/* collected in the worker: nothing to wait for */
	return QSIM_GUEST_SIMPLE_OUTPUT_MAX;
}

static void
qsim_guest_collect_sink_push(gpointer data, QsimGuestStream stream, GBytes *chunk)
{
	QsimGuestOp *op = data;
	GByteArray *buf = stream == QSIM_GUEST_STREAM_STDOUT ? op->out : op->err;
	gsize size = 0;
	const guint8 *bytes = g_bytes_get_data(chunk, &size);

	if (buf->len < QSIM_GUEST_SIMPLE_OUTPUT_MAX)
		g_byte_array_append(buf, bytes, MIN(size, QSIM_GUEST_SIMPLE_OUTPUT_MAX - buf->len));
}

/* Worker: makes sure the session belongs to @op's generation. */
static void
qsim_guest_worker_sync_gen(QsimGuest *self, QsimGuestOp *op)
{
	if (g_atomic_int_get(&self->connected_gen) != op->gen) {
		qsim_guest_ssh_disconnect(self->ssh);
		g_atomic_int_set(&self->connected_gen, -1);
	}
}

static void
qsim_guest_worker_finish(QsimGuest *self, QsimGuestOp *op, gpointer result,
                         GDestroyNotify result_free, GError *error)
{
	if (!qsim_guest_ssh_is_connected(self->ssh))
		g_atomic_int_set(&self->connected_gen, -1);
	qsim_guest_flow_push_done(self->flow, op, g_steal_pointer(&op->task), result, result_free,
	                          error);
}

static void
qsim_guest_worker_connect(QsimGuest *self, QsimGuestOp *op)
{
	g_autoptr(GError) error = NULL;
	gchar *fingerprint = NULL;

	qsim_guest_worker_sync_gen(self, op);
	if (!qsim_guest_op_abort_cb(op, &error) &&
	    qsim_guest_ssh_connect(self->ssh, op->deadline_us, op->attempt_timeout_ms,
	                           qsim_guest_op_abort_cb, op, &fingerprint, &error)) {
		g_atomic_int_set(&self->connected_gen, op->gen);
		/* a close() that raced with the connect wins */
		if (g_atomic_int_get(&self->close_gen) != op->gen) {
			g_free(fingerprint);
			qsim_guest_ssh_disconnect(self->ssh);
			g_set_error_literal(&error, QSIM_ERROR, QSIM_ERROR_GUEST,
			                    "guest session closed");
		} else {
			qsim_guest_worker_finish(self, op, fingerprint, g_free, NULL);
			return;
		}
	}
	qsim_guest_worker_finish(self, op, NULL, NULL, g_steal_pointer(&error));
}

static void
qsim_guest_worker_exec(QsimGuest *self, QsimGuestOp *op)
{
	g_autoptr(GError) error = NULL;
	QsimGuestSink sink = {0};
	gint64 deadline_us = 0;
	gint exit_status = -1;
	gchar *exit_signal = NULL;

	qsim_guest_worker_sync_gen(self, op);
	if (op->kind == QSIM_GUEST_OP_RUN_SIMPLE) {
		sink.wait_room = qsim_guest_collect_sink_wait_room;
		sink.push = qsim_guest_collect_sink_push;
		op->out = g_byte_array_new();
		op->err = g_byte_array_new();
		if (op->timeout_ms > 0)
			deadline_us = g_get_monotonic_time() +
			              (gint64)op->timeout_ms * G_TIME_SPAN_MILLISECOND;
	} else {
		sink.wait_room = qsim_guest_flow_sink_wait_room;
		sink.push = qsim_guest_flow_sink_push;
	}
	sink.data = op;
	if (qsim_guest_op_abort_cb(op, &error) ||
	    !qsim_guest_ssh_exec(self->ssh, op->command, &sink, deadline_us, qsim_guest_op_abort_cb,
	                         op, &exit_status, &exit_signal, &error)) {
		if (g_atomic_int_get(&self->close_gen) != op->gen)
			qsim_guest_ssh_disconnect(self->ssh);
		qsim_guest_worker_finish(self, op, NULL, NULL, g_steal_pointer(&error));
		return;
	}
	if (op->kind == QSIM_GUEST_OP_RUN_SIMPLE) {
		QsimGuestSimpleResult *result;
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;

		g_byte_array_append(op->out, (const guint8 *)"", 1);
		g_byte_array_append(op->err, (const guint8 *)"", 1);
		out = (gchar *)g_byte_array_free(g_steal_pointer(&op->out), FALSE);
		err = (gchar *)g_byte_array_free(g_steal_pointer(&op->err), FALSE);
		if (exit_signal != NULL || exit_status != 0) {
			g_autofree gchar *what =
			    exit_signal != NULL
			        ? g_strdup_printf("was killed by SIG%s", exit_signal)
			        : g_strdup_printf("exited with status %d", exit_status);
			g_free(exit_signal);
			g_set_error(&error, QSIM_ERROR, QSIM_ERROR_GUEST, "guest command %s: %s",
			            what, g_strstrip(err));
			qsim_guest_worker_finish(self, op, NULL, NULL, g_steal_pointer(&error));
			return;
		}
		result = g_new0(QsimGuestSimpleResult, 1);
		result->out = g_steal_pointer(&out);
		result->err = g_steal_pointer(&err);
		qsim_guest_worker_finish(self, op, result,
		                         (GDestroyNotify)qsim_guest_simple_result_free, NULL);
	} else {
		QsimGuestExecResult *result = g_new0(QsimGuestExecResult, 1);
		result->exit_status = exit_status;
		result->exit_signal = exit_signal;
		qsim_guest_worker_finish(self, op, result,
		                         (GDestroyNotify)qsim_guest_exec_result_free, NULL);
	}
}

static void
qsim_guest_collect_result_free(QsimGuestCollectResult *result)
{
	g_clear_pointer(&result->artifacts, g_ptr_array_unref);
	g_clear_pointer(&result->notes, g_ptr_array_unref);
	g_free(result);
}

static void
qsim_guest_worker_collect(QsimGuest *self, QsimGuestOp *op)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) artifacts = NULL;
	QsimGuestCollectResult *result;
	gboolean no_sftp = FALSE;
	gboolean has_sftp = FALSE;

	qsim_guest_worker_sync_gen(self, op);
	if (!qsim_guest_op_abort_cb(op, &error) &&
	    qsim_guest_exec_probe_sftp(self->ssh, qsim_guest_op_abort_cb, op, &has_sftp, &error)) {
		if (has_sftp)
			artifacts = qsim_guest_sftp_collect(
			    self->ssh, (const gchar *const *)op->patterns, &op->limits, &op->sink,
			    qsim_guest_op_abort_cb, op, notes, &no_sftp, &error);
		else
			no_sftp = TRUE;
	}
	if (artifacts == NULL && no_sftp) {
		g_clear_error(&error);
		g_ptr_array_add(notes, g_strdup("artifacts: the guest has no SFTP subsystem; "
		                                "collecting over exec (sh, head -c) instead"));
		artifacts = qsim_guest_exec_collect(self->ssh, (const gchar *const *)op->patterns,
		                                    &op->limits, &op->sink, qsim_guest_op_abort_cb,
		                                    op, notes, &error);
	}
	if (artifacts == NULL) {
		if (g_atomic_int_get(&self->close_gen) != op->gen)
			qsim_guest_ssh_disconnect(self->ssh);
		qsim_guest_worker_finish(self, op, NULL, NULL, g_steal_pointer(&error));
		return;
	}
	result = g_new0(QsimGuestCollectResult, 1);
	result->artifacts = g_steal_pointer(&artifacts);
	result->notes = g_steal_pointer(&notes);
	qsim_guest_worker_finish(self, op, result, (GDestroyNotify)qsim_guest_collect_result_free,
	                         NULL);
}

static void
qsim_guest_worker_upload(QsimGuest *self, QsimGuestOp *op)
{
	g_autoptr(GError) error = NULL;
	QsimGuestUploadResult *result;
	gint64 total = -1;
	gboolean no_sftp = FALSE;
	gboolean has_sftp = FALSE;

	qsim_guest_worker_sync_gen(self, op);
	if (!qsim_guest_op_abort_cb(op, &error) &&
	    qsim_guest_exec_probe_sftp(self->ssh, qsim_guest_op_abort_cb, op, &has_sftp, &error)) {
		if (has_sftp)
			total = qsim_guest_sftp_put(self->ssh, op->puts, op->n_puts,
			                            qsim_guest_op_abort_cb, op, &no_sftp, &error);
		else
			no_sftp = TRUE;
	}
	if (total < 0 && no_sftp) {
		g_clear_error(&error);
		total = qsim_guest_exec_put(self->ssh, op->puts, op->n_puts, qsim_guest_op_abort_cb,
		                            op, &error);
	}
	if (total < 0) {
		if (g_atomic_int_get(&self->close_gen) != op->gen)
			qsim_guest_ssh_disconnect(self->ssh);
		qsim_guest_worker_finish(self, op, NULL, NULL, g_steal_pointer(&error));
		return;
	}
	result = g_new0(QsimGuestUploadResult, 1);
	result->total = total;
	result->via_exec = no_sftp;
	qsim_guest_worker_finish(self, op, result, g_free, NULL);
}

static gpointer
qsim_guest_worker_main(gpointer data)
{
	QsimGuest *self = data;
	g_autoptr(QsimGuestSsh) ssh =
	    qsim_guest_ssh_new(self->host, self->port, self->user, self->key_path, self->password);

	self->ssh = ssh;
	for (;;) {
		g_autoptr(QsimGuestOp) op = g_async_queue_pop(self->ops);

		if (op->kind == QSIM_GUEST_OP_QUIT)
			break;
		switch (op->kind) {
		case QSIM_GUEST_OP_CONNECT:
			qsim_guest_worker_connect(self, op);
			break;
		case QSIM_GUEST_OP_EXEC:
		case QSIM_GUEST_OP_RUN_SIMPLE:
			qsim_guest_worker_exec(self, op);
			break;
		case QSIM_GUEST_OP_COLLECT:
			qsim_guest_worker_collect(self, op);
			break;
		case QSIM_GUEST_OP_UPLOAD:
			qsim_guest_worker_upload(self, op);
			break;
		case QSIM_GUEST_OP_CLOSE:
			qsim_guest_worker_sync_gen(self, op);
			break;
		case QSIM_GUEST_OP_QUIT:
			break;
		}
	}
	/* the session is created, used and freed on this thread only */
	self->ssh = NULL;
	return NULL;
}

static QsimGuestOp *
qsim_guest_op_new(QsimGuest *self, QsimGuestOpKind kind, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data, gpointer source_tag)
{
	QsimGuestOp *op = g_new0(QsimGuestOp, 1);

	op->kind = kind;
	op->self = self;
	op->gen = g_atomic_int_get(&self->close_gen);
	if (cancellable != NULL)
		op->cancellable = g_object_ref(cancellable);
	if (callback != NULL || source_tag != NULL) {
		op->task = g_task_new(self, cancellable, callback, user_data);
		g_task_set_source_tag(op->task, source_tag);
		/* report our own QSIM_ERROR_CANCELLED rather than GIO's error */
		g_task_set_check_cancellable(op->task, FALSE);
	}
	return op;
}

static void
qsim_guest_push_op(QsimGuest *self, QsimGuestOp *op)
{
	g_async_queue_push(self->ops, op);
}

static void
qsim_guest_finalize(GObject *object)
{
	QsimGuest *self = QSIM_GUEST(object);
	QsimGuestOp *quit = g_new0(QsimGuestOp, 1);

	/* no operation is pending (each holds a reference), so this returns promptly */
	quit->kind = QSIM_GUEST_OP_QUIT;
	quit->self = self;
	qsim_guest_push_op(self, quit);
	g_thread_join(self->worker);
	qsim_guest_flow_shutdown(self->flow);
	qsim_guest_flow_unref(self->flow);
	g_async_queue_unref(self->ops);
	g_main_context_unref(self->context);
	if (self->password != NULL)
		memset(self->password, 0, strlen(self->password));
	g_free(self->password);
	g_free(self->host);
	g_free(self->user);
	g_free(self->key_path);
	g_free(self->fingerprint);
	G_OBJECT_CLASS(qsim_guest_parent_class)->finalize(object);
}

static void
qsim_guest_class_init(QsimGuestClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	object_class->finalize = qsim_guest_finalize;
}

static void
qsim_guest_init(QsimGuest *self)
{
	self->connected_gen = -1;
	self->attempt_timeout_ms = QSIM_GUEST_DEFAULT_ATTEMPT_TIMEOUT_MS;
}

/**
 * qsim_guest_new:
 *
 * Returns: (transfer full): a new #QsimGuest
 */
QsimGuest *
qsim_guest_new(const gchar *host, guint16 port, const gchar *user, const gchar *key_path,
               const gchar *password)
{
	QsimGuest *self;
	g_autofree gchar *thread_name = NULL;

	g_return_val_if_fail(host != NULL && host[0] != '\0', NULL);
	g_return_val_if_fail(port != 0, NULL);
	g_return_val_if_fail(user != NULL && user[0] != '\0', NULL);

	self = g_object_new(QSIM_TYPE_GUEST, NULL);
	self->host = g_strdup(host);
	self->port = port;
	self->user = g_strdup(user);
	self->key_path = g_strdup(key_path);
	self->password = g_strdup(password);
	self->context = g_main_context_ref_thread_default();
	self->flow = qsim_guest_flow_new(self->context, QSIM_GUEST_DEFAULT_FLOW_BUDGET);
	self->ops = g_async_queue_new_full((GDestroyNotify)qsim_guest_op_free);
	thread_name = g_strdup_printf("qsim-ssh:%u", port);
	self->worker = g_thread_new(thread_name, qsim_guest_worker_main, self);
	return self;
}

void
qsim_guest_set_attempt_timeout(QsimGuest *self, guint timeout_ms)
{
	g_return_if_fail(QSIM_IS_GUEST(self));
	g_atomic_int_set(&self->attempt_timeout_ms, MAX(timeout_ms, 100));
}

void
qsim_guest_set_flow_budget(QsimGuest *self, gsize bytes)
{
	g_return_if_fail(QSIM_IS_GUEST(self));
	qsim_guest_flow_set_budget(self->flow, MAX(bytes, 4096));
}

void
qsim_guest_set_flow_paused(QsimGuest *self, gboolean paused)
{
	g_return_if_fail(QSIM_IS_GUEST(self));
	qsim_guest_flow_set_paused(self->flow, paused);
}

gboolean
qsim_guest_get_flow_paused(QsimGuest *self)
{
	g_return_val_if_fail(QSIM_IS_GUEST(self), FALSE);
	return qsim_guest_flow_get_paused(self->flow);
}

gsize
qsim_guest_get_max_bytes_in_flight(QsimGuest *self)
{
	g_return_val_if_fail(QSIM_IS_GUEST(self), 0);
	return qsim_guest_flow_get_max_in_flight(self->flow);
}

void
qsim_guest_connect_async(QsimGuest *self, gint64 deadline_us, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
	QsimGuestOp *op;

	g_return_if_fail(QSIM_IS_GUEST(self));
	op = qsim_guest_op_new(self, QSIM_GUEST_OP_CONNECT, cancellable, callback, user_data,
	                       qsim_guest_connect_async);
	op->deadline_us = deadline_us;
	op->attempt_timeout_ms = g_atomic_int_get(&self->attempt_timeout_ms);
	qsim_guest_push_op(self, op);
}

gboolean
qsim_guest_connect_finish(QsimGuest *self, GAsyncResult *res, GError **error)
{
	g_autofree gchar *fingerprint = NULL;

	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(res)) == qsim_guest_connect_async, FALSE);
	fingerprint = g_task_propagate_pointer(G_TASK(res), error);
	if (fingerprint == NULL)
		return FALSE;
	g_free(self->fingerprint);
	self->fingerprint = g_steal_pointer(&fingerprint);
	return TRUE;
}

const gchar *
qsim_guest_get_host_key_fingerprint(QsimGuest *self)
{
	g_return_val_if_fail(QSIM_IS_GUEST(self), NULL);
	return self->fingerprint;
}

gboolean
qsim_guest_is_connected(QsimGuest *self)
{
	g_return_val_if_fail(QSIM_IS_GUEST(self), FALSE);
	return g_atomic_int_get(&self->connected_gen) == g_atomic_int_get(&self->close_gen);
}

static gboolean
qsim_guest_validate_command(GTask *task, const gchar *command)
{
	if (command == NULL || command[0] == '\0' || !g_utf8_validate(command, -1, NULL)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_INVALID,
		                        "guest command must be non-empty valid UTF-8");
		return FALSE;
	}
	return TRUE;
}

void
qsim_guest_exec_async(QsimGuest *self, const gchar *command, QsimGuestOutputFunc output_cb,
                      gpointer output_data, GCancellable *cancellable, GAsyncReadyCallback callback,
                      gpointer user_data)
{
	g_autoptr(QsimGuestOp) op = NULL;

	g_return_if_fail(QSIM_IS_GUEST(self));
	op = qsim_guest_op_new(self, QSIM_GUEST_OP_EXEC, cancellable, callback, user_data,
	                       qsim_guest_exec_async);
	if (!qsim_guest_validate_command(op->task, command))
		return;
	op->command = g_strdup(command);
	op->output_cb = output_cb;
	op->output_data = output_data;
	qsim_guest_push_op(self, g_steal_pointer(&op));
}

gboolean
qsim_guest_exec_finish(QsimGuest *self, GAsyncResult *res, gint *exit_status, gchar **exit_signal,
                       GError **error)
{
	QsimGuestExecResult *result;

	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(res)) == qsim_guest_exec_async, FALSE);
	result = g_task_propagate_pointer(G_TASK(res), error);
	if (result == NULL)
		return FALSE;
	if (exit_status != NULL)
		*exit_status = result->exit_status;
	if (exit_signal != NULL)
		*exit_signal = g_steal_pointer(&result->exit_signal);
	qsim_guest_exec_result_free(result);
	return TRUE;
}

void
qsim_guest_run_simple_async(QsimGuest *self, const gchar *command, guint timeout_ms,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
	g_autoptr(QsimGuestOp) op = NULL;

	g_return_if_fail(QSIM_IS_GUEST(self));
	op = qsim_guest_op_new(self, QSIM_GUEST_OP_RUN_SIMPLE, cancellable, callback, user_data,
	                       qsim_guest_run_simple_async);
	if (!qsim_guest_validate_command(op->task, command))
		return;
	op->command = g_strdup(command);
	op->timeout_ms = timeout_ms;
	qsim_guest_push_op(self, g_steal_pointer(&op));
}

gboolean
qsim_guest_run_simple_finish(QsimGuest *self, GAsyncResult *res, gchar **stdout_text,
                             gchar **stderr_text, GError **error)
{
	QsimGuestSimpleResult *result;

	g_return_val_if_fail(g_task_is_valid(res, self), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(res)) == qsim_guest_run_simple_async,
	                     FALSE);
	result = g_task_propagate_pointer(G_TASK(res), error);
	if (result == NULL)
		return FALSE;
	if (stdout_text != NULL)
		*stdout_text = g_steal_pointer(&result->out);
	if (stderr_text != NULL)
		*stderr_text = g_steal_pointer(&result->err);
	qsim_guest_simple_result_free(result);
	return TRUE;
}

void
qsim_guest_close(QsimGuest *self)
{
	QsimGuestOp *op;

	g_return_if_fail(QSIM_IS_GUEST(self));
	g_atomic_int_inc(&self->close_gen);
	g_clear_pointer(&self->fingerprint, g_free);
	/* wakes an idle worker so the disconnect happens now, not at the next operation */
	op = qsim_guest_op_new(self, QSIM_GUEST_OP_CLOSE, NULL, NULL, NULL, NULL);
	qsim_guest_push_op(self, op);
}

void
qsim_guest_collect_async(QsimGuest *self, const gchar *const *patterns,
                         const QsimGuestCollectLimits *limits, const QsimGuestCollectSink *sink,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
	QsimGuestOp *op;

	g_return_if_fail(QSIM_IS_GUEST(self));
	g_return_if_fail(patterns != NULL && limits != NULL && sink != NULL);
	op = qsim_guest_op_new(self, QSIM_GUEST_OP_COLLECT, cancellable, callback, user_data,
	                       qsim_guest_collect_async);
	op->patterns = g_strdupv((gchar **)patterns);
	op->limits = *limits;
	op->limits.max_files = MAX(op->limits.max_files, 1);
	op->sink = *sink;
	qsim_guest_push_op(self, op);
}

GPtrArray *
qsim_guest_collect_finish(QsimGuest *self, GAsyncResult *res, GPtrArray **notes, GError **error)
{
	QsimGuestCollectResult *result;
	GPtrArray *artifacts;

	g_return_val_if_fail(g_task_is_valid(res, self), NULL);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(res)) == qsim_guest_collect_async, NULL);
	result = g_task_propagate_pointer(G_TASK(res), error);
	if (result == NULL)
		return NULL;
	artifacts = g_steal_pointer(&result->artifacts);
	if (notes != NULL)
		*notes = g_steal_pointer(&result->notes);
	qsim_guest_collect_result_free(result);
	return artifacts;
}

void
qsim_guest_upload_async(QsimGuest *self, const QsimGuestPut *puts, guint n_puts,
                        GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	QsimGuestOp *op;

	g_return_if_fail(QSIM_IS_GUEST(self));
	g_return_if_fail(puts != NULL || n_puts == 0);
	op = qsim_guest_op_new(self, QSIM_GUEST_OP_UPLOAD, cancellable, callback, user_data,
	                       qsim_guest_upload_async);
	op->puts = puts;
	op->n_puts = n_puts;
	qsim_guest_push_op(self, op);
}

gint64
qsim_guest_upload_finish(QsimGuest *self, GAsyncResult *res, gboolean *via_exec, GError **error)
{
	g_autofree QsimGuestUploadResult *result = NULL;

	g_return_val_if_fail(g_task_is_valid(res, self), -1);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(res)) == qsim_guest_upload_async, -1);
	result = g_task_propagate_pointer(G_TASK(res), error);
	if (via_exec != NULL)
		*via_exec = result != NULL && result->via_exec;
	return result != NULL ? result->total : -1;
}
