#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-accel-mode.h"
#include "common/qsim-config.h"
#include "common/qsim-dotenv.h"
#include "common/qsim-error.h"
#include "common/qsim-vm-config.h"
#include "common/qsim-vm-name.h"

/*
 * The keys of `<vm>.conf`, in one table: adding a key is one row (plus a
 * field in QsimVmConfig). Defaults go through the same parser as the file.
 */
typedef enum {
	VK_UINT,
	VK_MEMORY,
	VK_ARGV,
	VK_IMAGE,
	VK_FORMAT,
	VK_WORD,   /* a short token from `charset` plus letters and digits */
	VK_TEXT,   /* free text, passed as one argv element */
	VK_SECRET, /* free text never quoted in a message (GET /vms shows config errors) */
	VK_PATH,   /* a file inside the images dir */
	VK_FAST_START,
	VK_ACCEL,
	VK_NETWORK,
	VK_SIZE, /* bytes as OUTPUT_LIMIT reads them (64M); the field is a gint64 */
} VmKeyKind;

typedef struct {
	const gchar *key;
	VmKeyKind kind;
	gsize offset;
	const gchar *def; /* NULL: unset */
	guint64 min;
	guint64 max;
	const gchar *charset; /* VK_WORD: allowed besides letters and digits */
} VmKeySpec;

#define F(field) G_STRUCT_OFFSET(QsimVmConfig, field)
/* clang-format off */
static const VmKeySpec vm_keys[] = {
    {"MEMORY", VK_MEMORY, F(memory_mib), "256M", 16, 1048576},
    {"CPU", VK_UINT, F(cpus), "1", 1, 64},
    {"ADDITIONAL_ARGS", VK_ARGV, F(additional_args), ""},
    {"IMAGE", VK_IMAGE, F(image_path), NULL},
    {"FORMAT", VK_FORMAT, F(format), NULL},
    {"MACHINE", VK_WORD, F(machine), "q35", 0, 0, "._-"},
    /* unset: "host" under KVM, "qemu64,+rdrand" under TCG (qsim-vm-argv.c) */
    {"CPU_MODEL", VK_WORD, F(cpu_model), NULL, 0, 0, "._-,+="},
    {"KERNEL", VK_PATH, F(kernel_path), NULL},
    {"INITRD", VK_PATH, F(initrd_path), NULL},
    /* a second disk, attached read-only as is (raw) and never written */
    {"DATA_DISK", VK_PATH, F(data_disk_path), NULL},
    {"APPEND", VK_TEXT, F(append), NULL},
    {"SSH_USER", VK_WORD, F(ssh_user), "root", 0, 0, "._-"},
    {"SSH_KEY", VK_PATH, F(ssh_key_path), NULL},
    {"SSH_PASSWORD", VK_SECRET, F(ssh_password), NULL},
    {"SSH_PORT", VK_UINT, F(ssh_port), "22", 1, 65535},
    {"BOOT_TIMEOUT", VK_UINT, F(boot_timeout), "60", 1, 3600},
    {"TB_SIZE", VK_UINT, F(tb_size_mib), "64", 0, 4096},
    {"READY_MARKER", VK_TEXT, F(ready_marker), NULL},
    {"FAST_START", VK_FAST_START, F(fast_start), "none"},
    {"WARM_POOL_SIZE", VK_UINT, F(warm_pool_size), "0", 0, 64},
    {"ACCEL", VK_ACCEL, F(accel), NULL},
    /* none: the guest reaches nothing but its SSH forward (docs/network.md) */
    {"NETWORK", VK_NETWORK, F(network), "none"},
    /* unset (-1): the global OUTPUT_LIMIT; 0: no limit */
    {"OUTPUT_LIMIT", VK_SIZE, F(output_limit), NULL, 0, G_GUINT64_CONSTANT(1) << 40},
};
/* clang-format on */
#undef F

static const gchar *const image_exts[] = {".qcow2", ".raw", ".img"};

static gchar *
vm_escape(const gchar *text)
{
	gchar high[129];

	for (guint i = 0; i < 128; i++)
		high[i] = (gchar)(0x80 + i);
	high[128] = '\0';
	return g_strescape(text, high);
}

static gchar **
vm_field_str(QsimVmConfig *self, const VmKeySpec *spec)
{
	return G_STRUCT_MEMBER_P(self, spec->offset);
}

static void
vm_field_set_str(QsimVmConfig *self, const VmKeySpec *spec, gchar *value)
{
	gchar **field = vm_field_str(self, spec);
	g_free(*field);
	*field = value;
}

static gboolean
vm_parse_uint(const gchar *raw, guint64 min, guint64 max, guint64 *out, gchar **problem)
{
	if (!g_ascii_string_to_unsigned(raw, 10, 0, G_MAXUINT64, out, NULL)) {
		*problem = g_strdup("not a non-negative integer");
		return FALSE;
	}
	if (*out < min || *out > max) {
		*problem = g_strdup_printf(
		    "must be between %" G_GUINT64_FORMAT " and %" G_GUINT64_FORMAT, min, max);
		return FALSE;
	}
	return TRUE;
}

static gboolean
vm_parse_memory(const VmKeySpec *spec, const gchar *raw, guint64 *mib, gchar **problem)
{
	g_autofree gchar *num = g_strdup(raw);
	gsize len = strlen(num);
	guint64 mult = 1;
	guint64 n = 0;

	if (len > 0) {
		switch (g_ascii_toupper(num[len - 1])) {
		case 'M':
			num[--len] = '\0';
			break;
		case 'G':
			mult = 1024;
			num[--len] = '\0';
			break;
		case 'T':
			mult = 1024 * 1024;
			num[--len] = '\0';
			break;
		default:
			break;
		}
	}
	if (!g_ascii_string_to_unsigned(num, 10, 0, G_MAXUINT32, &n, NULL)) {
		*problem = g_strdup("not a memory size (use e.g. 512M, 2G or a number of MiB)");
		return FALSE;
	}
	n *= mult;
	if (n < spec->min || n > spec->max) {
		*problem = g_strdup_printf("must be between %" G_GUINT64_FORMAT
		                           "M and %" G_GUINT64_FORMAT "M",
		                           spec->min, spec->max);
		return FALSE;
	}
	*mib = n;
	return TRUE;
}

static gboolean
vm_check_word(const VmKeySpec *spec, const gchar *raw, gchar **problem)
{
	if (raw[0] == '\0') {
		*problem = g_strdup("must not be empty");
		return FALSE;
	}
	/* a leading '-' could be taken for an option by QEMU or ssh */
	if (raw[0] == '-') {
		*problem = g_strdup("must not start with '-'");
		return FALSE;
	}
	for (const gchar *p = raw; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && strchr(spec->charset, *p) == NULL) {
			*problem =
			    g_strdup_printf("character '%c' is not allowed here (use letters, "
			                    "digits and %s)",
			                    g_ascii_isprint(*p) ? *p : '?', spec->charset);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
vm_check_text(const gchar *raw, gchar **problem)
{
	for (const gchar *p = raw; *p != '\0'; p++) {
		if ((guchar)*p < 0x20 || *p == 0x7f) {
			*problem = g_strdup("contains a control character");
			return FALSE;
		}
	}
	return TRUE;
}

/*
 * A path that stays inside the images dir: relative, no `..` component. An
 * IMAGE must be a plain file name, and no `..` anywhere in it.
 */
static gboolean
vm_check_rel_path(const gchar *raw, gboolean plain_name, gchar **problem)
{
	g_auto(GStrv) parts = NULL;

	if (g_path_is_absolute(raw)) {
		*problem = g_strdup("must be relative to the images directory");
		return FALSE;
	}
	if (plain_name && strchr(raw, '/') != NULL) {
		*problem = g_strdup("must be a plain file name in the images directory");
		return FALSE;
	}
	if (plain_name && strstr(raw, "..") != NULL) {
		*problem = g_strdup("must not contain '..'");
		return FALSE;
	}
	parts = g_strsplit(raw, "/", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		if (g_strcmp0(parts[i], "..") == 0) {
			*problem = g_strdup("must not contain '..'");
			return FALSE;
		}
		if (g_strcmp0(parts[i], ".") == 0 || parts[i][0] == '\0') {
			*problem = g_strdup("must be a normalised relative path");
			return FALSE;
		}
	}
	return vm_check_text(raw, problem);
}

static gboolean
vm_resolve_file(QsimVmConfig *self, const gchar *raw, gboolean plain_name, gchar **path,
                gchar **problem, gboolean *missing)
{
	g_autofree gchar *p = NULL;

	if (!vm_check_rel_path(raw, plain_name, problem))
		return FALSE;
	p = g_build_filename(self->images_dir, raw, NULL);
	if (!g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
		*problem = g_strdup_printf("%s not found", p);
		*missing = TRUE;
		return FALSE;
	}
	*path = g_steal_pointer(&p);
	return TRUE;
}

static const gchar *
vm_format_for_path(const gchar *path)
{
	/* .img is conventionally raw; anything unknown is assumed qcow2 */
	if (g_str_has_suffix(path, ".raw") || g_str_has_suffix(path, ".img"))
		return "raw";
	return "qcow2";
}

/*
 * Parses one value into its field. @missing tells a missing file (NOT_FOUND)
 * from a bad value (INVALID).
 */
static gboolean
vm_apply(QsimVmConfig *self, const VmKeySpec *spec, const gchar *raw, gchar **problem,
         gboolean *missing)
{
	guint64 n = 0;
	gchar *path = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) argv = NULL;
	g_autofree gchar *stripped = NULL;

	switch (spec->kind) {
	case VK_UINT:
		if (!vm_parse_uint(raw, spec->min, spec->max, &n, problem))
			return FALSE;
		G_STRUCT_MEMBER(guint, self, spec->offset) = (guint)n;
		return TRUE;
	case VK_MEMORY:
		if (!vm_parse_memory(spec, raw, &n, problem))
			return FALSE;
		G_STRUCT_MEMBER(guint64, self, spec->offset) = n;
		return TRUE;
	case VK_ARGV:
		stripped = g_strstrip(g_strdup(raw));
		if (stripped[0] == '\0') {
			argv = g_new0(gchar *, 1);
		} else if (!g_shell_parse_argv(stripped, NULL, &argv, &error)) {
			*problem =
			    g_strdup_printf("cannot split into arguments: %s", error->message);
			return FALSE;
		}
		g_strfreev(G_STRUCT_MEMBER(gchar **, self, spec->offset));
		G_STRUCT_MEMBER(gchar **, self, spec->offset) = g_steal_pointer(&argv);
		return TRUE;
	case VK_IMAGE:
		if (raw[0] == '\0') {
			*problem = g_strdup("must not be empty");
			return FALSE;
		}
		if (!vm_resolve_file(self, raw, TRUE, &path, problem, missing))
			return FALSE;
		vm_field_set_str(self, spec, path);
		return TRUE;
	case VK_FORMAT:
		if (g_strcmp0(raw, "qcow2") != 0 && g_strcmp0(raw, "raw") != 0) {
			*problem = g_strdup("must be qcow2 or raw");
			return FALSE;
		}
		vm_field_set_str(self, spec, g_strdup(raw));
		return TRUE;
	case VK_WORD:
		if (!vm_check_word(spec, raw, problem))
			return FALSE;
		vm_field_set_str(self, spec, g_strdup(raw));
		return TRUE;
	case VK_TEXT:
	case VK_SECRET:
		if (!vm_check_text(raw, problem))
			return FALSE;
		vm_field_set_str(self, spec, raw[0] != '\0' ? g_strdup(raw) : NULL);
		return TRUE;
	case VK_PATH:
		if (raw[0] == '\0') {
			vm_field_set_str(self, spec, NULL);
			return TRUE;
		}
		if (!vm_resolve_file(self, raw, FALSE, &path, problem, missing))
			return FALSE;
		vm_field_set_str(self, spec, path);
		return TRUE;
	case VK_FAST_START:
		if (g_strcmp0(raw, "none") == 0) {
			self->fast_start = QSIM_VM_FAST_START_NONE;
		} else if (g_strcmp0(raw, "snapshot") == 0) {
			self->fast_start = QSIM_VM_FAST_START_SNAPSHOT;
		} else {
			*problem = g_strdup("must be none or snapshot");
			return FALSE;
		}
		return TRUE;
	case VK_ACCEL:
		if (!qsim_accel_mode_from_string(raw, &self->accel)) {
			*problem = g_strdup("must be auto, kvm or tcg");
			return FALSE;
		}
		return TRUE;
	case VK_NETWORK:
		if (g_strcmp0(raw, "none") == 0) {
			self->network = QSIM_VM_NETWORK_NONE;
		} else if (g_strcmp0(raw, "outbound") == 0) {
			self->network = QSIM_VM_NETWORK_OUTBOUND;
		} else {
			*problem = g_strdup("must be none or outbound");
			return FALSE;
		}
		return TRUE;
	case VK_SIZE: {
		gint64 bytes = 0;

		if (!qsim_config_parse_size(raw, &bytes)) {
			*problem = g_strdup("not a size (use e.g. 1048576, 512K, 64M or 1G)");
			return FALSE;
		}
		if ((guint64)bytes < spec->min || (guint64)bytes > spec->max) {
			*problem = g_strdup_printf("must be between %" G_GUINT64_FORMAT
			                           " and %" G_GUINT64_FORMAT " bytes",
			                           spec->min, spec->max);
			return FALSE;
		}
		G_STRUCT_MEMBER(gint64, self, spec->offset) = bytes;
		return TRUE;
	}
	}
	g_assert_not_reached();
}

static const VmKeySpec *
vm_key_lookup(const gchar *key)
{
	for (guint i = 0; i < G_N_ELEMENTS(vm_keys); i++) {
		if (g_strcmp0(vm_keys[i].key, key) == 0)
			return &vm_keys[i];
	}
	return NULL;
}

static gboolean
vm_apply_entries(QsimVmConfig *self, QsimDotenv *env, GHashTable *lines, GError **error)
{
	const gchar *path = qsim_dotenv_get_path(env);

	for (guint i = 0; i < qsim_dotenv_get_n_entries(env); i++) {
		const gchar *key = qsim_dotenv_get_key(env, i);
		const gchar *raw = qsim_dotenv_get_value(env, i);
		guint line = qsim_dotenv_get_line(env, i);
		const VmKeySpec *spec = vm_key_lookup(key);
		g_autofree gchar *problem = NULL;
		g_autofree gchar *esc = NULL;
		gboolean missing = FALSE;

		if (spec == NULL) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s:%u: unknown key %s",
			            path, line, key);
			return FALSE;
		}
		if (g_hash_table_contains(lines, key)) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s:%u: %s is set twice (first on line %u)", path, line, key,
			            GPOINTER_TO_UINT(g_hash_table_lookup(lines, key)));
			return FALSE;
		}
		g_hash_table_insert(lines, (gpointer)spec->key, GUINT_TO_POINTER(line));
		if (!vm_apply(self, spec, raw, &problem, &missing)) {
			if (spec->kind == VK_SECRET) {
				g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
				            "%s:%u: %s=<hidden>: %s", path, line, key, problem);
				return FALSE;
			}
			esc = vm_escape(raw);
			g_set_error(error, QSIM_ERROR,
			            missing ? QSIM_ERROR_NOT_FOUND : QSIM_ERROR_INVALID,
			            "%s:%u: %s='%s': %s", path, line, key, esc, problem);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
vm_find_default_image(QsimVmConfig *self, GError **error)
{
	for (guint i = 0; i < G_N_ELEMENTS(image_exts); i++) {
		g_autofree gchar *fn = g_strconcat(self->name, image_exts[i], NULL);
		g_autofree gchar *p = g_build_filename(self->images_dir, fn, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
			self->image_path = g_steal_pointer(&p);
			return TRUE;
		}
	}
	g_set_error(error, QSIM_ERROR, QSIM_ERROR_NOT_FOUND,
	            "VM '%s': no image %s.qcow2, %s.raw or %s.img in %s", self->name, self->name,
	            self->name, self->name, self->images_dir);
	return FALSE;
}

/* QEMU refuses -initrd and -append without -kernel; say so with the line */
static gboolean
vm_check_kernel(QsimVmConfig *self, GHashTable *lines, GError **error)
{
	const gchar *needs[] = {"INITRD", "APPEND"};

	if (self->kernel_path != NULL)
		return TRUE;
	for (guint i = 0; i < G_N_ELEMENTS(needs); i++) {
		guint line = GPOINTER_TO_UINT(g_hash_table_lookup(lines, needs[i]));
		gboolean set = i == 0 ? self->initrd_path != NULL : self->append != NULL;
		if (set) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s:%u: %s needs KERNEL to be set", self->config_path, line,
			            needs[i]);
			return FALSE;
		}
	}
	return TRUE;
}

/* keys that are no input of the VM's template: changing them must not make it stale */
static const gchar *const hash_skip_keys[] = {"WARM_POOL_SIZE", "OUTPUT_LIMIT"};

/* sha256 of @data without the lines that set hash_skip_keys (@lines: key -> 1-based line) */
static gchar *
vm_config_hash(const gchar *data, gsize len, GHashTable *lines)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	const gchar *p = data;
	const gchar *end = data != NULL ? data + len : NULL;

	for (guint line = 1; p != NULL && p < end; line++) {
		const gchar *nl = memchr(p, '\n', end - p);
		const gchar *next = nl != NULL ? nl + 1 : end;

		gboolean skip = FALSE;

		for (guint i = 0; i < G_N_ELEMENTS(hash_skip_keys); i++)
			skip |=
			    GPOINTER_TO_UINT(g_hash_table_lookup(lines, hash_skip_keys[i])) == line;
		if (!skip)
			g_checksum_update(sum, (const guchar *)p, next - p);
		p = next;
	}
	return g_strdup(g_checksum_get_string(sum));
}

/**
 * qsim_vm_config_parse:
 * @images_dir: the images directory (relative paths are made absolute)
 * @config_path: (nullable): the `.conf` to read, %NULL for defaults only
 * @vm_name: the VM name, validated with qsim_vm_name_validate()
 * @error: return location for an error: %QSIM_ERROR_INVALID for bad content,
 *   %QSIM_ERROR_NOT_FOUND for a missing image, kernel, initrd or key; file
 *   errors start with `file:line: `
 *
 * Returns: (transfer full): the resolved config, free with qsim_vm_config_free()
 */
QsimVmConfig *
qsim_vm_config_parse(const gchar *images_dir, const gchar *config_path, const gchar *vm_name,
                     GError **error)
{
	g_autoptr(QsimVmConfig) self = NULL;
	g_autoptr(QsimDotenv) env = NULL;
	g_autoptr(GHashTable) lines = g_hash_table_new(g_str_hash, g_str_equal);
	g_autofree gchar *data = NULL;
	gsize len = 0;

	if (!qsim_vm_name_validate(vm_name, error))
		return NULL;
	self = g_new0(QsimVmConfig, 1);
	self->name = g_strdup(vm_name);
	self->images_dir = g_canonicalize_filename(images_dir, NULL);
	self->output_limit = -1;
	for (guint i = 0; i < G_N_ELEMENTS(vm_keys); i++) {
		g_autofree gchar *problem = NULL;
		gboolean missing = FALSE;
		if (vm_keys[i].def != NULL &&
		    !vm_apply(self, &vm_keys[i], vm_keys[i].def, &problem, &missing))
			g_critical("bad built-in default for %s: %s", vm_keys[i].key, problem);
	}
	if (config_path != NULL) {
		self->config_path = g_canonicalize_filename(config_path, NULL);
		if (!g_file_get_contents(self->config_path, &data, &len, error)) {
			qsim_error_convert(error);
			return NULL;
		}
		env = qsim_dotenv_new_from_data(data, len, self->config_path, error);
		if (env == NULL || !vm_apply_entries(self, env, lines, error))
			return NULL;
		if (!vm_check_kernel(self, lines, error))
			return NULL;
	}
	self->hash = vm_config_hash(data, len, lines);
	if (self->image_path == NULL && !vm_find_default_image(self, error))
		return NULL;
	if (self->format == NULL)
		self->format = g_strdup(vm_format_for_path(self->image_path));
	return g_steal_pointer(&self);
}

/**
 * qsim_vm_config_load:
 * @images_dir: VM_IMAGES_DIR
 * @config_dir: VM_CONFIG_DIR; `<vm_name>.conf` in it is optional
 * @vm_name: the VM name
 * @error: return location for an error, see qsim_vm_config_parse()
 *
 * Returns: (transfer full): the resolved config, free with qsim_vm_config_free()
 */
QsimVmConfig *
qsim_vm_config_load(const gchar *images_dir, const gchar *config_dir, const gchar *vm_name,
                    GError **error)
{
	g_autofree gchar *fn = NULL;
	g_autofree gchar *path = NULL;

	if (!qsim_vm_name_validate(vm_name, error))
		return NULL;
	fn = g_strconcat(vm_name, ".conf", NULL);
	path = g_build_filename(config_dir, fn, NULL);
	return qsim_vm_config_parse(images_dir, g_file_test(path, G_FILE_TEST_EXISTS) ? path : NULL,
	                            vm_name, error);
}

/**
 * qsim_vm_config_hash:
 *
 * Returns: (transfer none): the sha256 of the `.conf` content as hex, without
 * its WARM_POOL_SIZE and OUTPUT_LIMIT lines (the hash of empty content when there is no file);
 * templates built from an older hash are stale
 */
const gchar *
qsim_vm_config_hash(QsimVmConfig *self)
{
	return self->hash;
}

/**
 * qsim_vm_network_to_string:
 * @network: a NETWORK mode
 *
 * Returns: (transfer none): its name in a `.conf` and in template manifests
 */
const gchar *
qsim_vm_network_to_string(QsimVmNetwork network)
{
	switch (network) {
	case QSIM_VM_NETWORK_NONE:
		return "none";
	case QSIM_VM_NETWORK_OUTBOUND:
		return "outbound";
	}
	return "unknown";
}

void
qsim_vm_config_free(QsimVmConfig *self)
{
	if (self == NULL)
		return;
	g_free(self->name);
	g_free(self->config_path);
	g_free(self->images_dir);
	g_free(self->image_path);
	g_free(self->format);
	g_strfreev(self->additional_args);
	g_free(self->machine);
	g_free(self->cpu_model);
	g_free(self->kernel_path);
	g_free(self->initrd_path);
	g_free(self->data_disk_path);
	g_free(self->append);
	g_free(self->ssh_user);
	g_free(self->ssh_key_path);
	g_free(self->ssh_password);
	g_free(self->ready_marker);
	g_free(self->hash);
	g_free(self);
}
