#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define QSIM_TYPE_NET_OUTBOUND (qsim_net_outbound_get_type())
G_DECLARE_FINAL_TYPE(QsimNetOutbound, qsim_net_outbound, QSIM, NET_OUTBOUND, GObject)

/* pasta's log in the run dir: errors only (-q), read back when pasta fails */
#define QSIM_NET_OUTBOUND_LOG "pasta.log"

QsimNetOutbound *qsim_net_outbound_new(const gchar *run_dir, guint16 host_port);
gboolean qsim_net_outbound_start(QsimNetOutbound *self, GError **error);
gint qsim_net_outbound_get_netns_fd(QsimNetOutbound *self);
GPid qsim_net_outbound_get_pid(QsimNetOutbound *self);
gchar *qsim_net_outbound_describe_exit(QsimNetOutbound *self);
void qsim_net_outbound_stop(QsimNetOutbound *self);

G_END_DECLS
