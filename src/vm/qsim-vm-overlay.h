#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

void qsim_vm_overlay_create_async(const gchar *qemu_img, const gchar *base,
                                  const gchar *base_format, const gchar *overlay,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
void qsim_vm_overlay_copy_async(const gchar *prepared, const gchar *overlay,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean qsim_vm_overlay_create_finish(GAsyncResult *result, GError **error);

G_END_DECLS
