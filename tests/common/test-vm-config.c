#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "common/qsim-error.h"
#include "common/qsim-vm-config.h"
#include "common/qsim-vm-name.h"
#include "test-util.h"

/* An images dir with the files the fixtures in tests/data/vmconf/ refer to. */
typedef struct {
	gchar *images;
	gchar *confs;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	const gchar *files[] = {"tiny.qcow2",     "good-seed.qcow2", "boot/vmlinuz",
	                        "boot/initrd.gz", "keys/id_ed25519", "good-full.qcow2",
	                        "plain.raw",      "disk.img"};

	f->images = qsim_test_tmpdir_new();
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree gchar *p = qsim_test_write(f->images, files[i], "QFI\xfb");
	}
	f->confs = qsim_test_fixture("vmconf", "");
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	qsim_test_rm_rf(f->images);
	g_free(f->images);
	g_free(f->confs);
}

static gchar *
fixture_path(Fixture *f, const gchar *rel)
{
	return g_build_filename(f->images, rel, NULL);
}

static void
test_vm_config_full(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) c = qsim_vm_config_load(f->images, f->confs, "good-full", &error);
	g_autofree gchar *conf = g_build_filename(f->confs, "good-full.conf", NULL);
	g_autofree gchar *image = fixture_path(f, "tiny.qcow2");
	g_autofree gchar *kernel = fixture_path(f, "boot/vmlinuz");
	g_autofree gchar *initrd = fixture_path(f, "boot/initrd.gz");
	g_autofree gchar *key = fixture_path(f, "keys/id_ed25519");
	g_autofree gchar *content = NULL;
	g_autofree gchar *sha = NULL;
	gsize len = 0;

	g_assert_no_error(error);
	g_assert_nonnull(c);
	g_assert_cmpstr(c->name, ==, "good-full");
	g_assert_cmpstr(c->config_path, ==, conf);
	g_assert_cmpstr(c->images_dir, ==, f->images);
	g_assert_cmpstr(c->image_path, ==, image);
	g_assert_cmpstr(c->format, ==, "qcow2");
	g_assert_cmpuint(c->memory_mib, ==, 2048);
	g_assert_cmpuint(c->cpus, ==, 2);
	g_assert_cmpstrv(c->additional_args,
	                 ((const gchar *[]){"-device", "virtio-rng-pci", "-object",
	                                    "rng-random,id=rng0,filename=/dev/urandom", NULL}));
	g_assert_cmpstr(c->machine, ==, "pc");
	g_assert_cmpstr(c->cpu_model, ==, "max,+rdrand");
	g_assert_cmpstr(c->kernel_path, ==, kernel);
	g_assert_cmpstr(c->initrd_path, ==, initrd);
	g_assert_cmpstr(c->append, ==, "console=ttyS0 root=/dev/vda rw quiet");
	g_assert_cmpstr(c->ssh_user, ==, "tester");
	g_assert_cmpstr(c->ssh_key_path, ==, key);
	g_assert_cmpstr(c->ssh_password, ==, "s3cret with \"quotes\"");
	g_assert_cmpuint(c->ssh_port, ==, 2222);
	g_assert_cmpuint(c->boot_timeout, ==, 120);
	g_assert_cmpuint(c->tb_size_mib, ==, 0);
	g_assert_cmpstr(c->ready_marker, ==, "QSIM-READY");
	g_assert_cmpint(c->fast_start, ==, QSIM_VM_FAST_START_SNAPSHOT);
	g_assert_cmpuint(c->warm_pool_size, ==, 2);
	g_assert_cmpint(c->accel, ==, QSIM_ACCEL_MODE_TCG);

	g_assert_true(g_file_get_contents(conf, &content, &len, NULL));
	/* the file ends with its WARM_POOL_SIZE line, which the hash leaves out */
	g_assert_true(g_str_has_suffix(content, "\nWARM_POOL_SIZE=2\n"));
	sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)content,
	                                  len - strlen("WARM_POOL_SIZE=2\n"));
	g_assert_cmpstr(qsim_vm_config_hash(c), ==, sha);
}

/* Resizing the warm pool is no change of the template's inputs; any other key is. */
static void
test_vm_config_hash_warm_pool(Fixture *f, gconstpointer data)
{
	const gchar *texts[] = {"CPU=2\nMEMORY=512M\n", "CPU=2\nWARM_POOL_SIZE=3\nMEMORY=512M\n",
	                        "CPU=2\nWARM_POOL_SIZE=0\nMEMORY=512M\n",
	                        "CPU=2\nMEMORY=512M\nWARM_POOL_SIZE=1",
	                        "OUTPUT_LIMIT=1M\nCPU=2\nWARM_POOL_SIZE=2\nMEMORY=512M\n"};
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) base = NULL;
	g_autoptr(QsimVmConfig) other = NULL;
	g_autofree gchar *other_path =
	    qsim_test_write(f->images, "other.conf", "CPU=3\nMEMORY=512M\n");

	for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
		g_autofree gchar *path = qsim_test_write(f->images, "warm.conf", texts[i]);
		g_autoptr(QsimVmConfig) c = qsim_vm_config_parse(f->images, path, "tiny", &error);

		g_assert_no_error(error);
		if (base == NULL) {
			base = g_steal_pointer(&c);
			continue;
		}
		g_assert_cmpstr(qsim_vm_config_hash(c), ==, qsim_vm_config_hash(base));
	}
	other = qsim_vm_config_parse(f->images, other_path, "tiny", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(qsim_vm_config_hash(other), !=, qsim_vm_config_hash(base));
}

static void
test_vm_config_seed(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) c = qsim_vm_config_load(f->images, f->confs, "good-seed", &error);
	g_autofree gchar *image = fixture_path(f, "good-seed.qcow2");

	g_assert_no_error(error);
	g_assert_cmpstr(c->image_path, ==, image);
	g_assert_cmpuint(c->memory_mib, ==, 512);
	g_assert_cmpuint(c->cpus, ==, 1);
	g_assert_cmpstrv(
	    c->additional_args,
	    ((const gchar *[]){"-netdev", "user,id=net0", "-device", "e1000,netdev=net0", NULL}));
	/* unset keys keep their defaults */
	g_assert_cmpstr(c->machine, ==, "q35");
	/* no CPU_MODEL: the accelerator picks one ("host" or "qemu64,+rdrand") */
	g_assert_null(c->cpu_model);
	g_assert_cmpint(c->accel, ==, QSIM_ACCEL_MODE_INHERIT);
	g_assert_cmpstr(c->ssh_user, ==, "root");
	g_assert_cmpuint(c->ssh_port, ==, 22);
	g_assert_cmpuint(c->boot_timeout, ==, 60);
	g_assert_cmpuint(c->tb_size_mib, ==, 64);
	g_assert_null(c->kernel_path);
	g_assert_null(c->initrd_path);
	g_assert_null(c->append);
	g_assert_null(c->ssh_key_path);
	g_assert_null(c->ssh_password);
	g_assert_null(c->ready_marker);
	g_assert_cmpint(c->fast_start, ==, QSIM_VM_FAST_START_NONE);
	g_assert_cmpuint(c->warm_pool_size, ==, 0);
}

static void
test_vm_config_no_conf(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *name;
		const gchar *file;
		const gchar *format;
	} cases[] = {{"tiny", "tiny.qcow2", "qcow2"},
	             {"plain", "plain.raw", "raw"},
	             {"disk", "disk.img", "raw"}};
	g_autofree gchar *empty_sha =
	    g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)"", 0);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimVmConfig) c =
		    qsim_vm_config_load(f->images, f->confs, cases[i].name, &error);
		g_autofree gchar *image = fixture_path(f, cases[i].file);

		g_assert_no_error(error);
		g_assert_null(c->config_path);
		g_assert_cmpstr(c->image_path, ==, image);
		g_assert_cmpstr(c->format, ==, cases[i].format);
		g_assert_cmpuint(c->memory_mib, ==, 256);
		g_assert_cmpuint(g_strv_length(c->additional_args), ==, 0);
		g_assert_cmpstr(qsim_vm_config_hash(c), ==, empty_sha);
	}
}

static void
test_vm_config_memory_forms(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *value;
		guint64 mib;
	} cases[] = {{"512M", 512}, {"512m", 512}, {"2G", 2048}, {"1024", 1024}, {"1T", 1048576}};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *text = g_strdup_printf("MEMORY=%s\n", cases[i].value);
		g_autofree gchar *conf = qsim_test_write(f->images, "tiny.conf", text);
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimVmConfig) c = qsim_vm_config_parse(f->images, conf, "tiny", &error);

		g_assert_no_error(error);
		g_assert_cmpuint(c->memory_mib, ==, cases[i].mib);
	}
}

/* OUTPUT_LIMIT: unset means the global setting (-1), 0 means no limit */
static void
test_vm_config_output_limit(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *text;
		gint64 bytes;
	} cases[] = {{"", -1},
	             {"OUTPUT_LIMIT=1M\n", 1048576},
	             {"OUTPUT_LIMIT=0\n", 0},
	             {"OUTPUT_LIMIT=4096\n", 4096},
	             {"OUTPUT_LIMIT=2g\n", 2147483648}};
	g_autofree gchar *bad = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) none = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *conf = qsim_test_write(f->images, "tiny.conf", cases[i].text);
		g_autoptr(GError) local = NULL;
		g_autoptr(QsimVmConfig) c = qsim_vm_config_parse(f->images, conf, "tiny", &local);

		g_assert_no_error(local);
		g_assert_cmpint(c->output_limit, ==, cases[i].bytes);
	}
	bad = qsim_test_write(f->images, "tiny.conf", "OUTPUT_LIMIT=lots\n");
	none = qsim_vm_config_parse(f->images, bad, "tiny", &error);
	g_assert_null(none);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_nonnull(strstr(error->message, "OUTPUT_LIMIT='lots': not a size"));
}

static void
test_vm_config_bad(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) shell_error = NULL;
	g_auto(GStrv) unused = NULL;
	g_autofree gchar *args_msg = NULL;
	g_autofree gchar *nope = fixture_path(f, "nope.qcow2");
	g_autofree gchar *missing_kernel = fixture_path(f, "boot/missing");
	g_autofree gchar *nope_msg = g_strdup_printf("IMAGE='nope.qcow2': %s not found", nope);
	g_autofree gchar *kernel_msg =
	    g_strdup_printf("KERNEL='boot/missing': %s not found", missing_kernel);
	const struct {
		const gchar *name;
		guint line;
		const gchar *message;
		gint code;
	} cases[] = {
	    {"bad-unknown-key", 2, "unknown key DISK", QSIM_ERROR_INVALID},
	    {"bad-memory", 2,
	     "MEMORY='lots': not a memory size (use e.g. 512M, 2G or a number of MiB)",
	     QSIM_ERROR_INVALID},
	    {"bad-memory-small", 1, "MEMORY='1M': must be between 16M and 1048576M",
	     QSIM_ERROR_INVALID},
	    {"bad-cpu-zero", 1, "CPU='0': must be between 1 and 64", QSIM_ERROR_INVALID},
	    {"bad-cpu-many", 2, "CPU='65': must be between 1 and 64", QSIM_ERROR_INVALID},
	    {"bad-args", 1, NULL, QSIM_ERROR_INVALID},
	    {"bad-image-traversal", 1,
	     "IMAGE='../etc/passwd': must be a plain file name in the images directory",
	     QSIM_ERROR_INVALID},
	    {"bad-image-dotdot", 1, "IMAGE='..': must not contain '..'", QSIM_ERROR_INVALID},
	    {"bad-image-missing", 3, nope_msg, QSIM_ERROR_NOT_FOUND},
	    {"bad-kernel-absolute", 1,
	     "KERNEL='/boot/vmlinuz': must be relative to the images directory",
	     QSIM_ERROR_INVALID},
	    {"bad-kernel-dotdot", 1, "KERNEL='boot/../../vmlinuz': must not contain '..'",
	     QSIM_ERROR_INVALID},
	    {"bad-kernel-missing", 1, kernel_msg, QSIM_ERROR_NOT_FOUND},
	    {"bad-format", 1, "FORMAT='vmdk': must be qcow2 or raw", QSIM_ERROR_INVALID},
	    {"bad-fast-start", 1, "FAST_START='yes': must be none or snapshot", QSIM_ERROR_INVALID},
	    {"bad-accel", 1, "ACCEL='hvf': must be auto, kvm or tcg", QSIM_ERROR_INVALID},
	    {"bad-warm-pool", 1, "WARM_POOL_SIZE='-1': not a non-negative integer",
	     QSIM_ERROR_INVALID},
	    {"bad-warm-pool-many", 2, "WARM_POOL_SIZE='65': must be between 0 and 64",
	     QSIM_ERROR_INVALID},
	    {"bad-duplicate", 3, "CPU is set twice (first on line 1)", QSIM_ERROR_INVALID},
	    {"bad-syntax", 1, "expected KEY=VALUE", QSIM_ERROR_INVALID},
	    {"bad-quote", 2, "unterminated double quote", QSIM_ERROR_INVALID},
	    {"bad-initrd-no-kernel", 2, "INITRD needs KERNEL to be set", QSIM_ERROR_INVALID},
	    {"bad-ssh-port", 1, "SSH_PORT='0': must be between 1 and 65535", QSIM_ERROR_INVALID},
	    {"bad-machine", 1,
	     "MACHINE='q35 -x': character ' ' is not allowed here (use letters, digits and ._-)",
	     QSIM_ERROR_INVALID},
	    {"bad-boot-timeout", 1, "BOOT_TIMEOUT='soon': not a non-negative integer",
	     QSIM_ERROR_INVALID},
	    {"bad-ssh-user", 1, "SSH_USER='-oProxyCommand=x': must not start with '-'",
	     QSIM_ERROR_INVALID},
	    {"bad-marker", 1, "READY_MARKER='a\\nb': contains a control character",
	     QSIM_ERROR_INVALID},
	};

	/* the exact wording of GLib's own message is GLib's business */
	g_assert_false(g_shell_parse_argv("-device 'unterminated", NULL, &unused, &shell_error));
	args_msg = g_strdup_printf("ADDITIONAL_ARGS='-device 'unterminated': cannot split into "
	                           "arguments: %s",
	                           shell_error->message);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimVmConfig) c =
		    qsim_vm_config_load(f->images, f->confs, cases[i].name, &error);
		g_autofree gchar *want =
		    g_strdup_printf("%s/%s.conf:%u: %s", f->confs, cases[i].name, cases[i].line,
		                    cases[i].message != NULL ? cases[i].message : args_msg);

		g_test_message("fixture %s", cases[i].name);
		g_assert_null(c);
		g_assert_error(error, QSIM_ERROR, cases[i].code);
		g_assert_cmpstr(error->message, ==, want);
	}
}

/* The password never reaches a message: config errors are shown by GET /vms and logged. */
static void
test_vm_config_secret_hidden(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) c =
	    qsim_vm_config_load(f->images, f->confs, "bad-ssh-password", &error);
	g_autofree gchar *want = g_strdup_printf(
	    "%s/bad-ssh-password.conf:1: SSH_PASSWORD=<hidden>: contains a control character",
	    f->confs);

	g_assert_null(c);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==, want);
	g_assert_null(strstr(error->message, "hunter2"));
	g_assert_null(strstr(error->message, "secret"));
}

static void
test_vm_config_no_image(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) c =
	    qsim_vm_config_load(f->images, f->confs, "bad-no-image", &error);
	g_autofree gchar *want = g_strdup_printf("VM 'bad-no-image': no image bad-no-image.qcow2, "
	                                         "bad-no-image.raw or bad-no-image.img in %s",
	                                         f->images);

	g_assert_null(c);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, want);
}

static void
test_vm_config_bad_name(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(QsimVmConfig) c =
	    qsim_vm_config_load(f->images, f->confs, "../good-full", &error);

	g_assert_null(c);
	g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
	g_assert_cmpstr(error->message, ==,
	                "invalid VM name '../good-full': must start with a letter or digit");
}

static void
test_vm_name(void)
{
	g_autofree gchar *max = g_strnfill(64, 'a');
	g_autofree gchar *too_long = g_strnfill(65, 'a');
	const gchar *good[] = {"a", "0", "tiny", "Ubuntu-22.04_x", "a..b", max};
	const struct {
		const gchar *name;
		const gchar *message;
	} bad[] = {
	    {"", "invalid VM name '': must not be empty"},
	    {NULL, "invalid VM name '': must not be empty"},
	    {"..", "invalid VM name '..': must start with a letter or digit"},
	    {".hidden", "invalid VM name '.hidden': must start with a letter or digit"},
	    {"-rf", "invalid VM name '-rf': must start with a letter or digit"},
	    {"_x", "invalid VM name '_x': must start with a letter or digit"},
	    {"../../etc/passwd",
	     "invalid VM name '../../etc/passwd': must start with a letter or digit"},
	    {"a/../b", "invalid VM name 'a/../b': '/' is not allowed (use letters, digits, '.', "
	               "'_' and '-')"},
	    {"a b",
	     "invalid VM name 'a b': ' ' is not allowed (use letters, digits, '.', '_' and '-')"},
	    {"a;rm",
	     "invalid VM name 'a;rm': ';' is not allowed (use letters, digits, '.', '_' and '-')"},
	    {"a\nb",
	     "invalid VM name 'a\\nb': only ASCII letters, digits, '.', '_' and '-' are allowed"},
	    {"t\xc3\xa9st", "invalid VM name 't\\303\\251st': only ASCII letters, digits, '.', '_' "
	                    "and '-' are allowed"},
	    {"\xc3\xa9", "invalid VM name '\\303\\251': only ASCII letters, digits, '.', '_' and "
	                 "'-' are allowed"},
	    {too_long, "invalid VM name: 65 characters long, the limit is 64"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_true(qsim_vm_name_validate(good[i], &error));
		g_assert_no_error(error);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_false(qsim_vm_name_validate(bad[i].name, &error));
		g_assert_error(error, QSIM_ERROR, QSIM_ERROR_INVALID);
		g_assert_cmpstr(error->message, ==, bad[i].message);
	}
}

/* DATA_DISK: a file inside the images dir like KERNEL (a subdirectory is fine), never
 * outside it, and it must exist; unset or empty means no second disk. */
static void
test_vm_config_data_disk(Fixture *f, gconstpointer data)
{
	g_autofree gchar *disk = qsim_test_write(f->images, "data/many.sqfs", "hsqs");
	g_autofree gchar *outside = qsim_test_write(f->images, "../outside.sqfs", "hsqs");
	g_autofree gchar *missing = fixture_path(f, "data/nope.sqfs");
	g_autofree gchar *missing_msg =
	    g_strdup_printf("DATA_DISK='data/nope.sqfs': %s not found", missing);
	const struct {
		const gchar *line;
		const gchar *message; /* NULL: accepted */
		gint code;
	} cases[] = {
	    {"DATA_DISK=data/many.sqfs", NULL, 0},
	    {"DATA_DISK=", NULL, 0},
	    {"DATA_DISK=../outside.sqfs", "DATA_DISK='../outside.sqfs': must not contain '..'",
	     QSIM_ERROR_INVALID},
	    {"DATA_DISK=data/../../outside.sqfs",
	     "DATA_DISK='data/../../outside.sqfs': must not contain '..'", QSIM_ERROR_INVALID},
	    {"DATA_DISK=/etc/passwd",
	     "DATA_DISK='/etc/passwd': must be relative to the images directory",
	     QSIM_ERROR_INVALID},
	    {"DATA_DISK=data/nope.sqfs", missing_msg, QSIM_ERROR_NOT_FOUND},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *text = g_strdup_printf("CPU=1\n%s\n", cases[i].line);
		g_autofree gchar *path = qsim_test_write(f->images, "dd.conf", text);
		g_autoptr(GError) error = NULL;
		g_autoptr(QsimVmConfig) c = qsim_vm_config_parse(f->images, path, "tiny", &error);

		if (cases[i].message == NULL) {
			g_assert_no_error(error);
			g_assert_cmpstr(c->data_disk_path, ==, i == 0 ? disk : NULL);
			continue;
		}
		g_assert_null(c);
		g_assert_error(error, QSIM_ERROR, cases[i].code);
		g_assert_true(g_str_has_suffix(error->message, cases[i].message));
		g_assert_nonnull(strstr(error->message, "dd.conf:2: "));
	}
	g_assert_cmpint(g_unlink(outside), ==, 0);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/qsim/common/vm-config/full", test_vm_config_full);
	ADD("/qsim/common/vm-config/seed", test_vm_config_seed);
	ADD("/qsim/common/vm-config/hash-warm-pool", test_vm_config_hash_warm_pool);
	ADD("/qsim/common/vm-config/no-conf", test_vm_config_no_conf);
	ADD("/qsim/common/vm-config/memory-forms", test_vm_config_memory_forms);
	ADD("/qsim/common/vm-config/bad", test_vm_config_bad);
	ADD("/qsim/common/vm-config/data-disk", test_vm_config_data_disk);
	ADD("/qsim/common/vm-config/output-limit", test_vm_config_output_limit);
	ADD("/qsim/common/vm-config/secret-hidden", test_vm_config_secret_hidden);
	ADD("/qsim/common/vm-config/no-image", test_vm_config_no_image);
	ADD("/qsim/common/vm-config/bad-name", test_vm_config_bad_name);
	g_test_add_func("/qsim/common/vm-name", test_vm_name);
	return g_test_run();
}
