#define G_LOG_DOMAIN "qsim-vm"

#include "config.h"

#include <string.h>

#include "common/qsim-error.h"
#include "qsim-vm-private.h"

static void qsim_vm_ready_probe(QsimVm *self);

static void
qsim_vm_ready_clear(QsimVm *self)
{
	g_clear_handle_id(&self->ready_timeout_id, g_source_remove);
	g_clear_handle_id(&self->ready_retry_id, g_source_remove);
	g_clear_handle_id(&self->ready_cancel_idle, g_source_remove);
	if (self->ready_cancellable != NULL) {
		/* never called from the "cancelled" handler itself, where it would deadlock */
		g_cancellable_disconnect(self->ready_cancellable, self->ready_cancel_handler);
		self->ready_cancel_handler = 0;
		g_clear_object(&self->ready_cancellable);
	}
	if (self->probe_cancellable != NULL)
		g_cancellable_cancel(self->probe_cancellable);
	g_clear_object(&self->probe_cancellable);
	g_clear_object(&self->probe_conn);
}

void
qsim_vm_ready_complete(QsimVm *self, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&self->ready_task);

	qsim_vm_ready_clear(self);
	if (task == NULL) {
		g_clear_error(&error);
		return;
	}
	if (error != NULL) {
		g_task_return_error(task, error);
		return;
	}
	self->ready = TRUE;
	g_task_return_boolean(task, TRUE);
}

/* ---- readiness --------------------------------------------------------- */

static void
qsim_vm_set_last_seen(QsimVm *self, const gchar *what)
{
	g_free(self->ready_last_seen);
	self->ready_last_seen = g_strdup(what);
}

static gboolean
qsim_vm_ready_retry_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->ready_retry_id = 0;
	qsim_vm_ready_probe(self);
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_ready_retry(QsimVm *self, const gchar *last_seen)
{
	qsim_vm_set_last_seen(self, last_seen);
	g_clear_object(&self->probe_conn);
	g_clear_object(&self->probe_cancellable);
	self->ready_retry_id = g_timeout_add(QSIM_VM_PROBE_RETRY_MS, qsim_vm_ready_retry_cb, self);
}

static void
qsim_vm_probe_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, &error);
	g_autofree gchar *what = NULL;

	if (self->ready_task != task || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (n >= 4 && memcmp(self->probe_buf, "SSH-", 4) == 0) {
		g_debug("%s: SSH answers on port %u", self->config->name, (guint)self->port);
		qsim_vm_ready_complete(self, NULL);
		return;
	}
	if (n < 0)
		what = g_strdup_printf("SSH banner not received: %s", error->message);
	else if (n == 0)
		what = g_strdup("SSH port closed the connection before a banner");
	else
		what = g_strdup("SSH port answered something that is not an SSH banner");
	qsim_vm_ready_retry(self, what);
}

static void
qsim_vm_probe_connect_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = G_TASK(user_data);
	QsimVm *self = g_task_get_source_object(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketConnection) conn =
	    g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), res, &error);
	g_autofree gchar *what = NULL;

	if (self->ready_task != task || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (conn == NULL) {
		what = g_strdup_printf("SSH port not reachable: %s", error->message);
		qsim_vm_ready_retry(self, what);
		return;
	}
	self->probe_conn = g_steal_pointer(&conn);
	g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(self->probe_conn)),
	                          self->probe_buf, sizeof(self->probe_buf), G_PRIORITY_DEFAULT,
	                          self->probe_cancellable, qsim_vm_probe_read_cb,
	                          g_object_ref(task));
}

/* One look at the forwarded port: QEMU's user network accepts the TCP connection itself
 * before the guest does, so only the SSH banner shows that sshd really answers. */
static void
qsim_vm_ready_probe(QsimVm *self)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();

	g_clear_object(&self->probe_cancellable);
	self->probe_cancellable = g_cancellable_new();
	g_socket_client_set_timeout(client, QSIM_VM_PROBE_TIMEOUT_S);
	g_socket_client_connect_to_host_async(client, "127.0.0.1", self->port,
	                                      self->probe_cancellable, qsim_vm_probe_connect_cb,
	                                      g_object_ref(self->ready_task));
}

void
qsim_vm_ready_marker_cb(QsimSerialReader *serial, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	g_debug("%s: ready marker seen on the console", self->config->name);
	if (self->ready_task != NULL && self->probe_cancellable == NULL &&
	    self->ready_retry_id == 0)
		qsim_vm_ready_probe(self);
}

static gboolean
qsim_vm_ready_timeout_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);
	g_autofree gchar *console = qsim_vm_get_console_tail(self);
	g_autofree gchar *last_line = NULL;
	const gchar *nl;

	self->ready_timeout_id = 0;
	nl = strrchr(console, '\n');
	last_line = g_strdup(nl != NULL ? nl + 1 : console);
	qsim_vm_ready_complete(
	    self, g_error_new(QSIM_ERROR, QSIM_ERROR_TIMED_OUT,
	                      "VM %s was not ready in time: %s; last console line: \"%s\"",
	                      self->config->name,
	                      self->ready_last_seen != NULL ? self->ready_last_seen
	                                                    : "nothing checked yet",
	                      last_line));
	return G_SOURCE_REMOVE;
}

static gboolean
qsim_vm_ready_cancel_idle_cb(gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	self->ready_cancel_idle = 0;
	qsim_vm_ready_complete(self,
	                       g_error_new(QSIM_ERROR, QSIM_ERROR_CANCELLED,
	                                   "waiting for VM %s was cancelled", self->config->name));
	return G_SOURCE_REMOVE;
}

static void
qsim_vm_ready_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	QsimVm *self = QSIM_VM(user_data);

	/* may run in another thread, and must not disconnect itself: defer to the loop */
	if (self->ready_cancel_idle == 0)
		self->ready_cancel_idle = g_idle_add(qsim_vm_ready_cancel_idle_cb, self);
}

/**
 * qsim_vm_wait_ready_async:
 * @self: a started #QsimVm
 * @deadline_us: absolute g_get_monotonic_time() deadline, or 0 for the start time plus
 *   the config's BOOT_TIMEOUT
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when ready, on timeout, or when QEMU exits
 * @user_data: data for @callback
 *
 * Waits until QMP is up and the guest's SSH answers with a banner. With READY_MARKER
 * set, the probe only starts once the marker appeared on the serial console, so no
 * attempt hangs against a guest whose network is not up. On timeout the
 * %QSIM_ERROR_TIMED_OUT message says what was last seen. A restored VM is ready as soon
 * as it runs: its sshd answered when it was saved, and the caller's SSH connect, which
 * retries until its own deadline, is the check. The caller then connects a QsimGuest to
 * qsim_vm_get_ssh_host()/qsim_vm_get_ssh_port().
 */
void
qsim_vm_wait_ready_async(QsimVm *self, gint64 deadline_us, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	gint64 now = g_get_monotonic_time();

	g_task_set_source_tag(task, qsim_vm_wait_ready_async);
	/* our errors are QSIM_ERROR, also when the caller's cancellable fired */
	g_task_set_check_cancellable(task, FALSE);
	if (self->state == QSIM_VM_STATE_EXITED) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_VM, "VM exited: %s",
		                        self->exit_message);
		return;
	}
	if (self->state != QSIM_VM_STATE_RUNNING && self->state != QSIM_VM_STATE_PAUSED) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CONFLICT,
		                        "VM %s is %s, not running", self->config->name,
		                        qsim_vm_state_to_string(self->state));
		return;
	}
	/* a restored guest's sshd was answering when it was saved, and the caller's SSH
	 * connect retries until its deadline: a probe here would only make the guest accept
	 * one more connection (a fork in dropbear, under TCG with a cold code cache) */
	if (self->ready || self->restore_state != NULL) {
		self->ready = TRUE;
		g_task_return_boolean(task, TRUE);
		return;
	}
	if (self->ready_task != NULL) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_BUSY,
		                        "already waiting for VM %s", self->config->name);
		return;
	}
	if (deadline_us <= 0)
		deadline_us =
		    self->started_us + (gint64)self->config->boot_timeout * G_USEC_PER_SEC;
	if (g_cancellable_is_cancelled(cancellable)) {
		g_task_return_new_error(task, QSIM_ERROR, QSIM_ERROR_CANCELLED,
		                        "waiting for VM %s was cancelled", self->config->name);
		return;
	}
	self->ready_task = g_steal_pointer(&task);
	if (cancellable != NULL) {
		self->ready_cancellable = g_object_ref(cancellable);
		self->ready_cancel_handler = g_cancellable_connect(
		    cancellable, G_CALLBACK(qsim_vm_ready_cancelled_cb), self, NULL);
	}
	self->ready_timeout_id =
	    g_timeout_add(deadline_us > now ? (guint)((deadline_us - now) / 1000) : 0,
	                  qsim_vm_ready_timeout_cb, self);
	/* a restored guest printed its marker before it was saved */
	if (self->config->ready_marker != NULL && self->restore_state == NULL &&
	    !qsim_serial_reader_get_marker_seen(self->serial)) {
		g_autofree gchar *what = g_strdup_printf(
		    "marker \"%s\" not seen on the serial console", self->config->ready_marker);
		qsim_vm_set_last_seen(self, what);
		return;
	}
	qsim_vm_ready_probe(self);
}

/**
 * qsim_vm_wait_ready_finish:
 * @self: a #QsimVm
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the guest's SSH answers
 */
gboolean
qsim_vm_wait_ready_finish(QsimVm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}
