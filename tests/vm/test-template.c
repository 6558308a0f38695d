#define G_LOG_DOMAIN "qsim-test"

#include "config.h"

#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include "vm-test-util.h"
#include "vm/qsim-template.h"

/* Fast start against the real tiny guest. The template is built once (the first test)
 * in a private STATE_DIR over a private copy of the base image, so touching the image
 * disturbs nobody; the later tests reuse it. */

typedef struct {
	gchar *tmp;
	gchar *images;
	gchar *conf;
	gchar *state_dir;
	gchar *run_root;
	QsimTemplate *tpl;
	gboolean built;
} Fixture;

static Fixture fx;

static gchar *
source_path(const gchar *first, ...)
{
	const gchar *root = g_getenv("QSIM_SOURCE_ROOT");
	g_autofree gchar *rel = NULL;
	va_list ap;

	va_start(ap, first);
	rel = g_build_filename_valist(first, &ap);
	va_end(ap);
	return g_build_filename(root != NULL ? root : SOURCE_ROOT, rel, NULL);
}

static void
fixture_init(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *src_images = source_path("vm_images", NULL);
	const gchar *links[] = {"tiny-vmlinux", "tiny-initrd.img", "tiny-key", NULL};
	g_autofree gchar *image_from = g_build_filename(src_images, "tiny.qcow2", NULL);
	g_autofree gchar *image_to = NULL;
	g_autoptr(GFile) from = NULL;
	g_autoptr(GFile) to = NULL;

	/* characters a shell would act on: no path goes through one (the save uses getfd) */
	fx.tmp = g_dir_make_tmp("qsim template $(x);-XXXXXX", &error);
	g_assert_no_error(error);
	fx.images = g_build_filename(fx.tmp, "images", NULL);
	fx.state_dir = g_build_filename(fx.tmp, "state", NULL);
	fx.run_root = g_build_filename(fx.tmp, "run", NULL);
	g_assert_cmpint(g_mkdir(fx.images, 0700), ==, 0);
	g_assert_cmpint(g_mkdir(fx.run_root, 0700), ==, 0);
	for (guint i = 0; links[i] != NULL; i++) {
		g_autofree gchar *target = g_build_filename(src_images, links[i], NULL);
		g_autofree gchar *link = g_build_filename(fx.images, links[i], NULL);

		g_assert_cmpint(symlink(target, link), ==, 0);
	}
	image_to = g_build_filename(fx.images, "tiny.qcow2", NULL);
	from = g_file_new_for_path(image_from);
	to = g_file_new_for_path(image_to);
	g_assert_true(g_file_copy(from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, &error));
	g_assert_no_error(error);
	fx.conf = source_path("vm_configs", "tiny.conf", NULL);
	fx.tpl = qsim_template_new(fx.state_dir, "tiny");
}

static QsimVmConfig *
load_config(const gchar *conf)
{
	g_autoptr(GError) error = NULL;
	QsimVmConfig *config = qsim_vm_config_parse(fx.images, conf, "tiny", &error);

	g_assert_no_error(error);
	g_assert_nonnull(config);
	return config;
}

static void
build_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

static gboolean
build_template(QsimTemplate *tpl, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;

	/* bounded by the VM's own deadlines (boot timeout, save timeout, shutdown steps) */
	qsim_template_build_async(tpl, load_config(fx.conf), fx.run_root, NULL, build_cb, &res);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	return qsim_template_build_finish(tpl, res, error);
}

static void
ensure_template(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = NULL;
	g_autofree gchar *reason = NULL;
	gint64 t0;

	if (fx.built)
		return;
	t0 = g_get_monotonic_time();
	g_assert_true(build_template(fx.tpl, &error));
	g_assert_no_error(error);
	g_test_message("template built in %.2f s, %" G_GUINT64_FORMAT " bytes",
	               (g_get_monotonic_time() - t0) / 1e6, qsim_template_get_size_bytes(fx.tpl));
	config = load_config(fx.conf);
	g_assert_cmpint(qsim_template_check(fx.tpl, config, &reason), ==,
	                QSIM_TEMPLATE_STATE_READY);
	g_assert_null(reason);
	fx.built = TRUE;
}

static gchar *
sha256_of(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	gchar *sum = qsim_template_manifest_file_sha256(path, &error);

	g_assert_no_error(error);
	return sum;
}

/* base image, template state, template disk, template RAM file (QEMU opens the last
 * read-write, so only its private mapping keeps it unchanged) */
static gchar *
checksums(void)
{
	g_autofree gchar *image = g_build_filename(fx.images, "tiny.qcow2", NULL);
	g_autofree gchar *ram =
	    g_build_filename(qsim_template_get_dir(fx.tpl), QSIM_TEMPLATE_RAM_FILE, NULL);
	g_autofree gchar *a = sha256_of(image);
	g_autofree gchar *b = sha256_of(qsim_template_get_state_path(fx.tpl));
	g_autofree gchar *c = sha256_of(qsim_template_get_disk_path(fx.tpl));
	g_autofree gchar *d = sha256_of(ram);

	return g_strjoin(" ", a, b, c, d, NULL);
}

static QsimVm *
restored_vm(void)
{
	g_autoptr(GError) error = NULL;
	QsimVm *vm = qsim_vm_new(load_config(fx.conf), fx.run_root);

	g_assert_true(qsim_template_apply(fx.tpl, vm, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_vm_get_restored(vm));
	return vm;
}

static gchar *
exec_ok(QsimGuest *guest, const gchar *command)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GByteArray) err = g_byte_array_new();
	gint status = -1;

	g_assert_true(vm_test_exec(guest, command, out, err, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, 0);
	return g_strndup((const gchar *)out->data, out->len);
}

static void
test_unit(void)
{
	g_autofree gchar *cmd = qsim_template_fixup_command(1700000000, "qsim-abc");
	g_autofree gchar *cmd2 = qsim_template_fixup_command(1700000000, "qsim-abc");
	g_autofree gchar *host = qsim_template_new_hostname("a.b_c");
	g_autoptr(GRegex) id_re = g_regex_new("echo ([0-9a-f]{32}) > /etc/machine-id", 0, 0, NULL);
	g_autoptr(GMatchInfo) m1 = NULL;
	g_autoptr(GMatchInfo) m2 = NULL;
	g_autofree gchar *id1 = NULL;
	g_autofree gchar *id2 = NULL;

	g_assert_nonnull(strstr(cmd, "date -u -s @1700000000"));
	g_assert_nonnull(strstr(cmd, "hostname qsim-abc"));
	g_assert_true(g_regex_match_simple("^qsim-[0-9a-f]{12}$", host, 0, 0));
	/* a fresh machine id from the host each time, only where the image has one */
	g_assert_nonnull(strstr(cmd, "if [ -s /etc/machine-id ]"));
	g_assert_true(g_regex_match(id_re, cmd, 0, &m1));
	g_assert_true(g_regex_match(id_re, cmd2, 0, &m2));
	id1 = g_match_info_fetch(m1, 1);
	id2 = g_match_info_fetch(m2, 1);
	g_assert_cmpstr(id1, !=, id2);
	g_assert_nonnull(strstr(cmd, "/var/lib/dbus/machine-id"));
}

/* The manifest records the effective NETWORK: a template made with another mode, or
 * with none recorded (an older qsim), is stale. So is one made with another DATA_DISK. */
static void
test_manifest_network(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = load_config(fx.conf);
	g_autoptr(QsimTemplateManifest) current = NULL;
	g_autoptr(QsimTemplateManifest) recorded = NULL;
	g_autoptr(QsimTemplateManifest) loaded = NULL;
	g_autofree gchar *path = g_build_filename(fx.tmp, "manifest-network", NULL);
	g_autofree gchar *reason = NULL;

	current = qsim_template_manifest_new_for_config(config, QSIM_QEMU_BINARY, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(current->network, ==, "none");
	g_assert_true(qsim_template_manifest_save(current, path, &error));
	g_assert_no_error(error);
	recorded = qsim_template_manifest_load(path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(recorded->network, ==, "none");
	g_assert_true(qsim_template_manifest_matches(recorded, current, NULL));

	g_free(recorded->network);
	recorded->network = g_strdup("outbound");
	g_assert_false(qsim_template_manifest_matches(recorded, current, &reason));
	g_test_message("%s", reason);
	g_assert_nonnull(strstr(reason, "NETWORK=outbound"));
	g_clear_pointer(&reason, g_free);

	/* saved without the key, as before the mode was recorded */
	g_clear_pointer(&recorded->network, g_free);
	g_assert_true(qsim_template_manifest_save(recorded, path, &error));
	g_assert_no_error(error);
	loaded = qsim_template_manifest_load(path, &error);
	g_assert_no_error(error);
	g_assert_null(loaded->network);
	g_assert_false(qsim_template_manifest_matches(loaded, current, &reason));
	g_assert_nonnull(strstr(reason, "unrecorded"));
	g_clear_pointer(&reason, g_free);

	/* DATA_DISK: none is "", which a manifest from before the key (NULL) matches; another
	 * file (size:mtime) is stale, since the guest may have cached the old content */
	g_assert_cmpstr(current->data_disk_id, ==, "");
	g_free(loaded->network);
	loaded->network = g_strdup("none");
	g_clear_pointer(&loaded->data_disk_id, g_free);
	g_assert_true(qsim_template_manifest_matches(loaded, current, NULL));
	loaded->data_disk_id = g_strdup("4096:1700000000000000");
	g_assert_false(qsim_template_manifest_matches(loaded, current, &reason));
	g_assert_cmpstr(reason, ==, "the DATA_DISK changed");
	g_unlink(path);
}

/* A template of format 1 (RAM inside the state file, a real directory, no format key in
 * its manifest) is stale, never restored, and the next build replaces it. */
static void
test_old_format(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = load_config(fx.conf);
	g_autoptr(QsimTemplateManifest) manifest = NULL;
	g_autofree gchar *reason = NULL;
	g_autofree gchar *root = g_build_filename(fx.state_dir, QSIM_TEMPLATE_DIR, NULL);
	g_autofree gchar *dir = g_build_filename(root, "tiny", NULL);
	g_autofree gchar *path = g_build_filename(dir, QSIM_TEMPLATE_MANIFEST_FILE, NULL);
	g_autofree gchar *text = NULL;
	g_autofree gchar *old_text = NULL;
	g_autoptr(GRegex) format_line = g_regex_new("^format=.*\n", G_REGEX_MULTILINE, 0, NULL);
	const gchar *files[] = {QSIM_TEMPLATE_STATE_FILE, QSIM_TEMPLATE_DISK_FILE, NULL};

	g_assert_false(fx.built);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	manifest = qsim_template_manifest_new_for_config(config, QSIM_QEMU_BINARY, &error);
	g_assert_no_error(error);
	manifest->state_size = 4;
	manifest->disk_size = 4;
	for (guint i = 0; files[i] != NULL; i++) {
		g_autofree gchar *file = g_build_filename(dir, files[i], NULL);

		g_assert_true(g_file_set_contents(file, "old\n", -1, &error));
		g_assert_no_error(error);
	}
	g_assert_true(qsim_template_manifest_save(manifest, path, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(path, &text, NULL, &error));
	g_assert_no_error(error);
	old_text = g_regex_replace_literal(format_line, text, -1, 0, "", 0, &error);
	g_assert_no_error(error);
	g_assert_null(strstr(old_text, "format="));
	g_assert_true(g_file_set_contents(path, old_text, -1, &error));
	g_assert_no_error(error);

	g_assert_cmpint(qsim_template_check(fx.tpl, config, &reason), ==,
	                QSIM_TEMPLATE_STATE_STALE);
	g_test_message("old template: %s", reason);
	g_assert_nonnull(strstr(reason, "format 1"));

	/* the build moves it aside for a versioned template behind a symlink */
	ensure_template();
	g_assert_true(g_file_test(dir, G_FILE_TEST_IS_SYMLINK));
	g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
	g_clear_pointer(&manifest, qsim_template_manifest_free);
	manifest = qsim_template_load_manifest(fx.tpl, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(manifest->format, ==, QSIM_TEMPLATE_MANIFEST_FORMAT);
	g_assert_cmpuint(manifest->ram_size, ==, config->memory_mib * 1024 * 1024);
}

static guint
count_versions(void)
{
	g_autofree gchar *versions =
	    g_build_filename(fx.state_dir, QSIM_TEMPLATE_DIR, ".tiny.versions", NULL);
	g_autoptr(GDir) dir = g_dir_open(versions, 0, NULL);
	guint n = 0;

	while (dir != NULL && g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

static void
test_restore(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *hostname = qsim_template_new_hostname("tiny");
	g_autofree gchar *fix = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *name = NULL;
	gint64 t0, guest_now, host_now;

	ensure_template();
	before = checksums();
	vm = restored_vm();
	t0 = g_get_monotonic_time();
	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(vm, &error));
	g_assert_no_error(error);
	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);
	fix = qsim_template_fixup_command(g_get_real_time() / G_USEC_PER_SEC, hostname);
	out = exec_ok(guest, fix);
	g_test_message("restore to first exec: %.2f s", (g_get_monotonic_time() - t0) / 1e6);
	guest_now = g_ascii_strtoll(out, NULL, 10);
	host_now = g_get_real_time() / G_USEC_PER_SEC;
	/* the clock is set from the host, not left at save time */
	g_assert_cmpint(ABS(guest_now - host_now), <=, 2);
	g_clear_pointer(&out, g_free);
	out = exec_ok(guest, "date -u +%s");
	g_assert_cmpint(ABS(g_ascii_strtoll(out, NULL, 10) - g_get_real_time() / G_USEC_PER_SEC),
	                <=, 2);
	name = exec_ok(guest, "hostname");
	g_assert_cmpstr(g_strstrip(name), ==, hostname);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
	after = checksums();
	g_assert_cmpstr(before, ==, after);
}

static void
test_two_clones(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) a = NULL;
	g_autoptr(QsimVm) b = NULL;
	g_autoptr(QsimGuest) ga = NULL;
	g_autoptr(QsimGuest) gb = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *seen_a = NULL;
	g_autofree gchar *seen_b = NULL;
	g_autoptr(GAsyncResult) res_a = NULL;
	g_autoptr(GAsyncResult) res_b = NULL;

	ensure_template();
	before = checksums();
	a = restored_vm();
	b = restored_vm();
	/* both QEMUs load the same state file at the same moment */
	qsim_vm_start_async(a, NULL, build_cb, &res_a);
	qsim_vm_start_async(b, NULL, build_cb, &res_b);
	/* bounded by the VMs' own start deadlines */
	while (res_a == NULL || res_b == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(qsim_vm_start_finish(a, res_a, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_vm_start_finish(b, res_b, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(a, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(b, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(qsim_vm_get_ssh_port(a), !=, qsim_vm_get_ssh_port(b));
	ga = vm_test_guest_connect(a, &error);
	g_assert_no_error(error);
	gb = vm_test_guest_connect(b, &error);
	g_assert_no_error(error);
	g_free(exec_ok(ga, "echo from-a > /root/qsim-clone-file && sync"));
	seen_a = exec_ok(ga, "cat /root/qsim-clone-file");
	seen_b = exec_ok(gb, "test -e /root/qsim-clone-file && echo visible || echo absent");
	g_assert_cmpstr(seen_a, ==, "from-a\n");
	g_assert_cmpstr(seen_b, ==, "absent\n");
	g_assert_true(vm_test_shutdown(a, 0, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_shutdown(b, 0, &error));
	g_assert_no_error(error);
	after = checksums();
	g_assert_cmpstr(before, ==, after);
}

typedef struct {
	GAsyncResult *res;
} QmpWait;

static void
qmp_wait_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	((QmpWait *)user_data)->res = g_object_ref(res);
}

/* The VM generation ID QEMU gives the guest now (the vmgenid device's guid). */
static gchar *
query_vmgenid(QsimVm *vm)
{
	g_autoptr(GError) error = NULL;
	QsimQmpClient *qmp = qsim_vm_get_qmp(vm);
	QmpWait w = {NULL};
	g_autoptr(JsonNode) reply = NULL;
	JsonObject *obj;

	g_assert_nonnull(qmp);
	qsim_qmp_client_execute_async(qmp, "query-vm-generation-id", NULL, 10000, NULL, qmp_wait_cb,
	                              &w);
	while (w.res == NULL)
		g_main_context_iteration(NULL, TRUE);
	reply = qsim_qmp_client_execute_finish(qmp, w.res, &error);
	g_object_unref(w.res);
	g_assert_no_error(error);
	obj = json_node_get_object(reply);
	g_assert_nonnull(obj);
	return g_strdup(json_object_get_string_member(obj, "guid"));
}

/* One restore of the template: its generation ID as QEMU reports it, checked against
 * the argv, after SSH into the clone worked. */
static gchar *
restore_and_get_vmgenid(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) vm = restored_vm();
	g_autoptr(QsimGuest) guest = NULL;
	g_autofree gchar *guid = NULL;
	g_autofree gchar *in_argv = NULL;
	const gchar *const *argv;

	g_assert_true(vm_test_start(vm, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(vm, &error));
	g_assert_no_error(error);
	guest = vm_test_guest_connect(vm, &error);
	g_assert_no_error(error);
	g_free(exec_ok(guest, "true"));
	guid = query_vmgenid(vm);
	g_assert_true(g_uuid_string_is_valid(guid));
	argv = qsim_vm_get_argv(vm);
	in_argv = g_strdup_printf("vmgenid,guid=%s", guid);
	g_assert_true(g_strv_contains(argv, in_argv));
	g_clear_object(&guest);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
	return g_steal_pointer(&guid);
}

/* Two restores of the same template each get their own VM generation ID, so a guest
 * kernel with a vmgenid driver knows it is a new instance (and reseeds its RNG). */
static void
test_vmgenid(void)
{
	g_autofree gchar *first = NULL;
	g_autofree gchar *second = NULL;

	ensure_template();
	first = restore_and_get_vmgenid();
	second = restore_and_get_vmgenid();
	g_test_message("vmgenid of the restores: %s, %s", first, second);
	g_assert_cmpstr(first, !=, second);
}

static void
test_stale(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) config = NULL;
	g_autoptr(QsimVmConfig) changed = NULL;
	g_autofree gchar *reason = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *conf2 = g_build_filename(fx.tmp, "tiny.conf", NULL);
	g_autofree gchar *image = g_build_filename(fx.images, "tiny.qcow2", NULL);
	GStatBuf st;
	struct utimbuf times;

	ensure_template();
	config = load_config(fx.conf);
	g_assert_cmpint(qsim_template_check(fx.tpl, config, NULL), ==, QSIM_TEMPLATE_STATE_READY);

	/* a changed VM config */
	g_assert_true(g_file_get_contents(fx.conf, &text, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_set_contents(conf2, text, -1, &error));
	g_assert_no_error(error);
	changed = load_config(conf2);
	g_assert_cmpint(qsim_template_check(fx.tpl, changed, NULL), ==, QSIM_TEMPLATE_STATE_READY);
	g_clear_pointer(&changed, qsim_vm_config_free);
	{
		g_autofree gchar *more = g_strconcat(text, "# edited\n", NULL);
		g_assert_true(g_file_set_contents(conf2, more, -1, &error));
	}
	changed = load_config(conf2);
	g_assert_cmpint(qsim_template_check(fx.tpl, changed, &reason), ==,
	                QSIM_TEMPLATE_STATE_STALE);
	g_assert_cmpstr(reason, ==, "the VM config changed");
	g_clear_pointer(&reason, g_free);

	/* a touched image */
	g_assert_cmpint(g_stat(image, &st), ==, 0);
	times.actime = st.st_atime;
	times.modtime = st.st_mtime + 10;
	g_assert_cmpint(g_utime(image, &times), ==, 0);
	g_assert_cmpint(qsim_template_check(fx.tpl, config, &reason), ==,
	                QSIM_TEMPLATE_STATE_STALE);
	g_assert_cmpstr(reason, ==, "the base image changed (size or mtime)");
	g_clear_pointer(&reason, g_free);
	/* utime() has whole seconds: the recorded mtime cannot be restored exactly, so a
	 * touched image stays stale until the next build */
	g_assert_cmpint(qsim_template_check(fx.tpl, config, NULL), ==, QSIM_TEMPLATE_STATE_STALE);
	fx.built = FALSE;
}

static void
test_corrupt(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVm) early = NULL;
	g_autoptr(QsimTemplate) old = NULL;
	g_autoptr(QsimGuest) guest = NULL;
	g_autoptr(QsimVm) vm = NULL;
	g_autoptr(QsimVm) cold = NULL;
	g_autoptr(QsimVmConfig) config = NULL;
	g_autofree gchar *reason = NULL;
	const gchar *state;
	GStatBuf st;

	/* a restore that resolved the template before a rebuild keeps the files it resolved
	 * (the old version stays until the build after next) */
	early = restored_vm();
	{
		g_autoptr(QsimVm) other = qsim_vm_new(load_config(fx.conf), fx.run_root);

		old = qsim_template_new(fx.state_dir, "tiny");
		g_assert_true(qsim_template_apply(old, other, &error));
		g_assert_no_error(error);
		g_assert_true(qsim_template_is_current(old));
	}
	g_assert_cmpuint(count_versions(), ==, 1);
	ensure_template(); /* rebuilt after test_stale touched the image */
	g_assert_cmpuint(count_versions(), ==, 2);
	/* a restore of the replaced version that fails condemns that version only */
	g_assert_false(qsim_template_is_current(old));
	g_assert_true(qsim_template_mark_stale(old, "restore of the old version failed", &error));
	g_assert_no_error(error);
	config = load_config(fx.conf);
	g_assert_cmpint(qsim_template_check(fx.tpl, config, NULL), ==, QSIM_TEMPLATE_STATE_READY);
	g_clear_pointer(&config, qsim_vm_config_free);
	g_assert_true(vm_test_start(early, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(early, &error));
	g_assert_no_error(error);
	guest = vm_test_guest_connect(early, &error);
	g_assert_no_error(error);
	g_free(exec_ok(guest, "true"));
	g_clear_object(&guest);
	g_assert_true(vm_test_shutdown(early, 0, &error));
	g_assert_no_error(error);

	state = qsim_template_get_state_path(fx.tpl);
	g_assert_cmpint(g_stat(state, &st), ==, 0);
	g_assert_cmpint(g_chmod(state, 0644), ==, 0);
	g_assert_cmpint(truncate(state, st.st_size / 2), ==, 0);

	/* the check sees the size, so a request would not even try it */
	config = load_config(fx.conf);
	g_assert_cmpint(qsim_template_check(fx.tpl, config, &reason), ==,
	                QSIM_TEMPLATE_STATE_STALE);
	g_assert_nonnull(strstr(reason, "state file"));

	/* forced anyway, the restore fails cleanly (QEMU rejects the stream) ... */
	vm = restored_vm();
	g_assert_false(vm_test_start(vm, &error) && vm_test_wait_ready(vm, &error));
	g_assert_nonnull(error);
	g_test_message("restore of a truncated state: %s", error->message);
	g_clear_error(&error);
	g_assert_true(vm_test_shutdown(vm, 0, &error));
	g_assert_no_error(error);
	g_assert_true(qsim_template_mark_stale(fx.tpl, "restore failed", &error));
	g_assert_no_error(error);
	g_clear_pointer(&reason, g_free);
	g_assert_cmpint(qsim_template_check(fx.tpl, config, &reason), ==,
	                QSIM_TEMPLATE_STATE_STALE);
	g_assert_cmpstr(reason, ==, "restore failed");

	/* ... and the cold boot that replaces it works */
	cold = qsim_vm_new(load_config(fx.conf), fx.run_root);
	g_assert_true(vm_test_start(cold, &error));
	g_assert_no_error(error);
	g_assert_true(vm_test_wait_ready(cold, &error));
	g_assert_no_error(error);
	g_assert_false(qsim_vm_get_restored(cold));
	g_assert_true(vm_test_shutdown(cold, 0, &error));
	g_assert_no_error(error);
}

static void
rm_rf(const gchar *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	if (dir == NULL) {
		g_unlink(path);
		return;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);

		if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			rm_rf(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	fixture_init();
	g_test_add_func("/qsim/vm/template/unit", test_unit);
	g_test_add_func("/qsim/vm/template/manifest-network", test_manifest_network);
	g_test_add_func("/qsim/vm/template/old-format", test_old_format);
	g_test_add_func("/qsim/vm/template/restore", test_restore);
	g_test_add_func("/qsim/vm/template/two-clones", test_two_clones);
	g_test_add_func("/qsim/vm/template/vmgenid", test_vmgenid);
	g_test_add_func("/qsim/vm/template/stale", test_stale);
	g_test_add_func("/qsim/vm/template/corrupt", test_corrupt);
	rc = g_test_run();
	g_clear_object(&fx.tpl);
	rm_rf(fx.tmp);
	g_free(fx.tmp);
	g_free(fx.images);
	g_free(fx.conf);
	g_free(fx.state_dir);
	g_free(fx.run_root);
	return rc;
}
