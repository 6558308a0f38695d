#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "common/qsim-config-private.h"
#include "common/qsim-dotenv.h"
#include "common/qsim-error.h"
#include "common/qsim-layout.h"
#include "common/qsim-text.h"

static const gchar *const known_groups[] = {"database", "api", "metrics", "agent", "vm", "log"};
static const gchar *const env_prefixes[] = {"SQLITE_SIM_", "QSIM_"}; /* later wins */

G_DEFINE_TYPE(QsimConfig, qsim_config, G_TYPE_OBJECT)

static gchar *
config_describe_source(QsimConfigSource source, const gchar *origin)
{
	if (source == QSIM_CONFIG_SOURCE_KEYFILE || source == QSIM_CONFIG_SOURCE_DOTENV)
		return g_strdup_printf("%s %s", qsim_config_source_to_string(source), origin);
	return g_strdup(qsim_config_source_to_string(source));
}

static void
config_set_invalid(GError **error, const gchar *label, const gchar *raw, QsimConfigSource source,
                   const gchar *origin, const gchar *problem)
{
	g_autofree gchar *esc = qsim_config_escape(raw);
	g_autofree gchar *from = config_describe_source(source, origin);

	g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s='%s' (from %s): %s", label, esc,
	            from, problem);
}

/*
 * Parses @raw for setting @idx and, unless a flag already set it, makes it
 * the effective value. A bad value is an error even when a higher source
 * would override it: nothing is ever ignored silently.
 */
static gboolean
config_apply(QsimConfig *self, gint idx, const gchar *raw, QsimConfigSource source,
             const gchar *label, const gchar *origin, GError **error)
{
	SettingValue v = {0};
	g_autofree gchar *problem = NULL;

	if (!qsim_config_parse_value(&qsim_config_specs[idx], raw, &v, &problem)) {
		qsim_config_value_clear(&v);
		/* a secret's value never reaches a message, however wrong it is; nor
		 * does a URL, which may hold a password */
		if (qsim_config_specs[idx].secret ||
		    qsim_config_specs[idx].type == SETTING_DATABASE_URL) {
			g_autofree gchar *from = config_describe_source(source, origin);

			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s=<hidden> (from %s): %s", label, from, problem);
		} else {
			config_set_invalid(error, label, raw, source, origin, problem);
		}
		return FALSE;
	}
	if (self->values[idx].source == QSIM_CONFIG_SOURCE_FLAG &&
	    source != QSIM_CONFIG_SOURCE_FLAG) {
		qsim_config_value_clear(&v);
		return TRUE;
	}
	v.source = source;
	v.origin = g_strdup(origin);
	v.label = g_strdup(label);
	qsim_config_value_clear(&self->values[idx]);
	self->values[idx] = v;
	return TRUE;
}

static const gchar *
config_getenv(gchar **envp, const gchar *name)
{
	const gchar *v = g_environ_getenv(envp, name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

static gchar *
config_home(gchar **envp)
{
	const gchar *home = config_getenv(envp, "HOME");
	return g_strdup(home != NULL ? home : g_get_home_dir());
}

static gchar *
config_default_for(gint idx, gchar **envp)
{
	const gchar *xdg;
	g_autofree gchar *home = NULL;

	if (qsim_config_specs[idx].def != NULL)
		return g_strdup(qsim_config_specs[idx].def);
	if (idx == S_HOST_ID)
		return qsim_host_id_dup_default();
	if (idx == S_RUN_DIR) {
		xdg = config_getenv(envp, "XDG_RUNTIME_DIR");
		if (xdg != NULL && g_path_is_absolute(xdg))
			return g_build_filename(xdg, "qsim", NULL);
		return g_strdup_printf("/tmp/qsim-%u", (guint)getuid());
	}
	if (idx == S_STATE_DIR) {
		xdg = config_getenv(envp, "XDG_STATE_HOME");
		if (xdg != NULL && g_path_is_absolute(xdg))
			return g_build_filename(xdg, "qsim", NULL);
		home = config_home(envp);
		return g_build_filename(home, ".local", "state", "qsim", NULL);
	}
	g_assert_not_reached();
}

static void
config_apply_defaults(QsimConfig *self, gchar **envp)
{
	for (gint i = 0; i < N_SETTINGS; i++) {
		g_autofree gchar *def = NULL;
		g_autoptr(GError) error = NULL;

		if (self->values[i].source == QSIM_CONFIG_SOURCE_FLAG)
			continue;
		self->values[i].source = QSIM_CONFIG_SOURCE_DEFAULT;
		def = config_default_for(i, envp);
		/* a default that fails its own validation is a bug in the table */
		if (!config_apply(self, i, def, QSIM_CONFIG_SOURCE_DEFAULT,
		                  qsim_config_specs[i].name, NULL, &error))
			g_critical("bad built-in default: %s", error->message);
	}
}

static void
qsim_config_finalize(GObject *object)
{
	QsimConfig *self = QSIM_CONFIG(object);

	for (gint i = 0; i < N_SETTINGS; i++)
		qsim_config_value_clear(&self->values[i]);
	g_free(self->keyfile_path);
	G_OBJECT_CLASS(qsim_config_parent_class)->finalize(object);
}

static void
qsim_config_class_init(QsimConfigClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = qsim_config_finalize;
}

static void
qsim_config_init(QsimConfig *self)
{
	g_auto(GStrv) envp = g_get_environ();
	config_apply_defaults(self, envp);
}

/**
 * qsim_config_new:
 *
 * Returns: (transfer full): a configuration holding the built-in defaults
 */
QsimConfig *
qsim_config_new(void)
{
	return g_object_new(QSIM_TYPE_CONFIG, NULL);
}

/* maps "group\037key" to the line it was last set on, for messages */
static GHashTable *
config_keyfile_lines(const gchar *data, GHashTable **group_lines)
{
	g_autoptr(GHashTable) lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) glines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) split = g_strsplit(data, "\n", -1);
	g_autofree gchar *group = NULL;

	for (guint i = 0; split[i] != NULL; i++) {
		gchar *l = g_strstrip(split[i]);
		gchar *eq;

		if (l[0] == '[' && strchr(l, ']') != NULL) {
			g_free(group);
			group = g_strndup(l + 1, strchr(l, ']') - l - 1);
			if (!g_hash_table_contains(glines, group))
				g_hash_table_insert(glines, g_strdup(group),
				                    GUINT_TO_POINTER(i + 1));
			continue;
		}
		eq = strchr(l, '=');
		if (l[0] == '#' || eq == NULL || group == NULL)
			continue;
		*eq = '\0';
		g_hash_table_insert(lines, g_strdup_printf("%s\037%s", group, g_strchomp(l)),
		                    GUINT_TO_POINTER(i + 1));
	}
	*group_lines = g_steal_pointer(&glines);
	return g_steal_pointer(&lines);
}

/* GKeyFile's syntax errors carry no line number: find the bad line first */
static gboolean
config_keyfile_check_syntax(const gchar *path, const gchar *data, GError **error)
{
	g_auto(GStrv) split = g_strsplit(data, "\n", -1);
	gboolean in_group = FALSE;

	for (guint i = 0; split[i] != NULL; i++) {
		const gchar *l = g_strstrip(split[i]);

		if (l[0] == '\0' || l[0] == '#')
			continue;
		if (l[0] == '[' && l[strlen(l) - 1] == ']') {
			in_group = TRUE;
			continue;
		}
		if (strchr(l, '=') == NULL || l[0] == '=') {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s:%u: expected [group], key=value or # comment", path, i + 1);
			return FALSE;
		}
		if (!in_group) {
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "%s:%u: key=value before the first [group]", path, i + 1);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
config_load_keyfile(QsimConfig *self, const gchar *path, GError **error)
{
	g_autofree gchar *data = NULL;
	gsize len = 0;
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GHashTable) lines = NULL;
	g_autoptr(GHashTable) group_lines = NULL;
	g_auto(GStrv) groups = NULL;

	if (!g_file_get_contents(path, &data, &len, error)) {
		qsim_error_convert(error);
		g_prefix_error(error, "config file: ");
		return FALSE;
	}
	if (!config_keyfile_check_syntax(path, data, error))
		return FALSE;
	if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, error)) {
		qsim_error_convert(error);
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	lines = config_keyfile_lines(data, &group_lines);
	groups = g_key_file_get_groups(kf, NULL);
	for (guint g = 0; groups[g] != NULL; g++) {
		g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);

		if (!g_strv_contains((const gchar *const *)known_groups, groups[g])) {
			guint line = GPOINTER_TO_UINT(g_hash_table_lookup(group_lines, groups[g]));
			g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
			            "[%s] (from keyfile %s:%u): unknown group (use database, api, "
			            "agent, vm or log)",
			            groups[g], path, line);
			return FALSE;
		}
		for (guint k = 0; keys != NULL && keys[k] != NULL; k++) {
			g_autofree gchar *lkey = g_strdup_printf("%s\037%s", groups[g], keys[k]);
			guint line = GPOINTER_TO_UINT(g_hash_table_lookup(lines, lkey));
			g_autofree gchar *origin = g_strdup_printf("%s:%u", path, line);
			g_autofree gchar *label = g_strdup_printf("[%s] %s", groups[g], keys[k]);
			g_autofree gchar *raw = NULL;
			gint idx = qsim_config_lookup_keyfile(groups[g], keys[k]);

			raw = g_key_file_get_string(kf, groups[g], keys[k], error);
			if (raw == NULL) {
				qsim_error_convert(error);
				g_prefix_error(error, "%s (from keyfile %s): ", label, origin);
				return FALSE;
			}
			if (idx < 0) {
				config_set_invalid(error, label, raw, QSIM_CONFIG_SOURCE_KEYFILE,
				                   origin, "unknown key");
				return FALSE;
			}
			if (!config_apply(self, idx, raw, QSIM_CONFIG_SOURCE_KEYFILE, label, origin,
			                  error))
				return FALSE;
		}
	}
	return TRUE;
}

/* both prefixes are accepted; the QSIM_ pass runs last so it wins */
static gint
config_lookup_env_name(const gchar *var, guint prefix)
{
	if (!g_str_has_prefix(var, env_prefixes[prefix]))
		return -1;
	return qsim_config_lookup(var + strlen(env_prefixes[prefix]));
}

static gboolean
config_load_dotenv(QsimConfig *self, const gchar *path, GError **error)
{
	g_autoptr(QsimDotenv) env = qsim_dotenv_new_from_file(path, error);

	if (env == NULL)
		return FALSE;
	for (guint p = 0; p < G_N_ELEMENTS(env_prefixes); p++) {
		for (guint i = 0; i < qsim_dotenv_get_n_entries(env); i++) {
			const gchar *key = qsim_dotenv_get_key(env, i);
			const gchar *raw = qsim_dotenv_get_value(env, i);
			g_autofree gchar *origin =
			    g_strdup_printf("%s:%u", path, qsim_dotenv_get_line(env, i));
			gint idx;

			if (!g_str_has_prefix(key, env_prefixes[p]))
				continue;
			idx = config_lookup_env_name(key, p);
			/* the file is shared with other tools, but our prefixes are ours */
			if (idx < 0) {
				config_set_invalid(error, key, raw, QSIM_CONFIG_SOURCE_DOTENV,
				                   origin, "unknown setting");
				return FALSE;
			}
			if (!config_apply(self, idx, raw, QSIM_CONFIG_SOURCE_DOTENV, key, origin,
			                  error))
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
config_load_environment(QsimConfig *self, gchar **envp, GError **error)
{
	for (guint p = 0; p < G_N_ELEMENTS(env_prefixes); p++) {
		for (guint i = 0; envp[i] != NULL; i++) {
			const gchar *eq = strchr(envp[i], '=');
			g_autofree gchar *var = NULL;
			gint idx;

			if (eq == NULL)
				continue;
			var = g_strndup(envp[i], eq - envp[i]);
			/* unknown QSIM_* variables belong to other tools (qsim-ctl, tests) */
			idx = config_lookup_env_name(var, p);
			if (idx < 0)
				continue;
			if (!config_apply(self, idx, eq + 1, QSIM_CONFIG_SOURCE_ENVIRONMENT, var,
			                  var, error))
				return FALSE;
		}
	}
	return TRUE;
}

static gchar *
config_find_keyfile(gchar **envp)
{
	const gchar *xdg = config_getenv(envp, "XDG_CONFIG_HOME");
	g_autofree gchar *home = NULL;
	g_autofree gchar *user = NULL;

	if (xdg != NULL && g_path_is_absolute(xdg)) {
		user = g_build_filename(xdg, "qsim", "qsimd.conf", NULL);
	} else {
		home = config_home(envp);
		user = g_build_filename(home, ".config", "qsim", "qsimd.conf", NULL);
	}
	if (g_file_test(user, G_FILE_TEST_EXISTS))
		return g_steal_pointer(&user);
	if (g_file_test("/etc/qsim/qsimd.conf", G_FILE_TEST_EXISTS))
		return g_strdup("/etc/qsim/qsimd.conf");
	return NULL;
}

/* A message quotes whatever the file or variable held, key names included: whatever bytes
 * they were, it goes out as valid UTF-8 (found by tests/fuzz/fuzz-config.c). Returns FALSE. */
static gboolean
config_fail_safe(GError **error)
{
	if (error != NULL && *error != NULL && !g_utf8_validate((*error)->message, -1, NULL)) {
		gchar *safe = qsim_utf8_safe_dup((*error)->message, -1, 1024);

		g_free((*error)->message);
		(*error)->message = safe;
	}
	return FALSE;
}

/**
 * qsim_config_load:
 * @keyfile_path: (nullable): `--config FILE`, which must exist; %NULL to
 *   search `$XDG_CONFIG_HOME/qsim/qsimd.conf` then `/etc/qsim/qsimd.conf`
 * @envp: (nullable): the environment to read, %NULL for the process's own
 * @dotenv_dir: (nullable): where to look for `.env`, %NULL for the working
 *   directory
 * @error: return location for a %QSIM_ERROR_INVALID error shaped
 *   `NAME='value' (from source): problem`
 *
 * Loads every source below flags; values already set with
 * qsim_config_set_flag() keep precedence. May be called again to reload.
 *
 * Returns: %TRUE if every value was valid
 */
gboolean
qsim_config_load(QsimConfig *self, const gchar *keyfile_path, gchar **envp, const gchar *dotenv_dir,
                 GError **error)
{
	g_auto(GStrv) own_env = NULL;
	g_autofree gchar *kf = NULL;
	g_autofree gchar *cwd = NULL;
	g_autofree gchar *dotenv = NULL;

	g_return_val_if_fail(QSIM_IS_CONFIG(self), FALSE);
	if (envp == NULL) {
		own_env = g_get_environ();
		envp = own_env;
	}
	config_apply_defaults(self, envp);
	kf = keyfile_path != NULL ? g_strdup(keyfile_path) : config_find_keyfile(envp);
	g_free(self->keyfile_path);
	self->keyfile_path = g_strdup(kf);
	if (kf != NULL && !config_load_keyfile(self, kf, error))
		return config_fail_safe(error);
	if (dotenv_dir == NULL) {
		cwd = g_get_current_dir();
		dotenv_dir = cwd;
	}
	dotenv = g_build_filename(dotenv_dir, ".env", NULL);
	if (g_file_test(dotenv, G_FILE_TEST_EXISTS) && !config_load_dotenv(self, dotenv, error))
		return config_fail_safe(error);
	if (!config_load_environment(self, envp, error))
		return config_fail_safe(error);
	self->loaded = TRUE;
	return qsim_config_validate(self, error) || config_fail_safe(error);
}

/**
 * qsim_config_set_flag:
 * @name: the setting name without prefix, e.g. `API_PORT`
 * @value: the value as typed on the command line
 *
 * Sets a value with the highest precedence. Errors name the option (e.g.
 * `--port`) when the setting has one. After qsim_config_load() the whole
 * configuration is validated again.
 *
 * Returns: %TRUE on success
 */
gboolean
qsim_config_set_flag(QsimConfig *self, const gchar *name, const gchar *value, GError **error)
{
	gint idx = qsim_config_lookup(name);
	const gchar *label;

	g_return_val_if_fail(QSIM_IS_CONFIG(self), FALSE);
	g_return_val_if_fail(value != NULL, FALSE);
	if (idx < 0) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "unknown setting '%s'", name);
		return FALSE;
	}
	label = qsim_config_specs[idx].flag != NULL ? qsim_config_specs[idx].flag
	                                            : qsim_config_specs[idx].name;
	if (!config_apply(self, idx, value, QSIM_CONFIG_SOURCE_FLAG, label, label, error))
		return FALSE;
	return !self->loaded || qsim_config_validate(self, error);
}

/**
 * qsim_config_validate:
 *
 * Checks rules that span settings: DEFAULT_TIMEOUT <= MAX_TIMEOUT. The
 * message blames the value from the higher-precedence source.
 *
 * Returns: %TRUE when consistent
 */
gboolean
qsim_config_validate(QsimConfig *self, GError **error)
{
	SettingValue *def = &self->values[S_DEFAULT_TIMEOUT];
	SettingValue *max = &self->values[S_MAX_TIMEOUT];
	g_autofree gchar *problem = NULL;
	g_autofree gchar *other = NULL;

	if (def->i <= max->i)
		return TRUE;
	if (def->source >= max->source) {
		other = config_describe_source(max->source, max->origin);
		problem = g_strdup_printf("must not exceed MAX_TIMEOUT, which is %s (from %s)",
		                          max->text, other);
		config_set_invalid(error, def->label, def->text, def->source, def->origin, problem);
	} else {
		other = config_describe_source(def->source, def->origin);
		problem = g_strdup_printf(
		    "must not be below DEFAULT_TIMEOUT, which is %s (from %s)", def->text, other);
		config_set_invalid(error, max->label, max->text, max->source, max->origin, problem);
	}
	return FALSE;
}

/* Returns: (transfer none) (nullable): the keyfile the last load read */
const gchar *
qsim_config_get_keyfile_path(QsimConfig *self)
{
	return self->keyfile_path;
}
