#define G_LOG_DOMAIN "qsim-common"

#include "config.h"

#include <string.h>

#include "common/qsim-dotenv.h"
#include "common/qsim-error.h"

struct _QsimDotenv {
	gchar *path;
	GPtrArray *keys;   /* (element-type utf8) */
	GPtrArray *values; /* (element-type utf8) */
	GArray *lines;     /* (element-type guint) */
};

static gboolean
dotenv_key_valid(const gchar *key, gsize len)
{
	if (len == 0 || !(g_ascii_isalpha(key[0]) || key[0] == '_'))
		return FALSE;
	for (gsize i = 1; i < len; i++) {
		if (!(g_ascii_isalnum(key[i]) || key[i] == '_'))
			return FALSE;
	}
	return TRUE;
}

/* after a closing quote only blanks or a comment may follow */
static gboolean
dotenv_tail_ok(const gchar *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0' || *p == '#';
}

static gchar *
dotenv_parse_double(const gchar *p, const gchar **problem)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p != '\\') {
			g_string_append_c(out, *p);
			continue;
		}
		p++;
		switch (*p) {
		case '"':
		case '\\':
			g_string_append_c(out, *p);
			break;
		case 'n':
			g_string_append_c(out, '\n');
			break;
		case '\0':
			*problem = "unterminated double quote";
			return NULL;
		default:
			/* like a shell: an unknown escape keeps its backslash */
			g_string_append_c(out, '\\');
			g_string_append_c(out, *p);
			break;
		}
	}
	if (*p != '"') {
		*problem = "unterminated double quote";
		return NULL;
	}
	if (!dotenv_tail_ok(p + 1)) {
		*problem = "unexpected text after the closing quote";
		return NULL;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

static gchar *
dotenv_parse_single(const gchar *p, const gchar **problem)
{
	const gchar *end = strchr(p + 1, '\'');

	if (end == NULL) {
		*problem = "unterminated single quote";
		return NULL;
	}
	if (!dotenv_tail_ok(end + 1)) {
		*problem = "unexpected text after the closing quote";
		return NULL;
	}
	return g_strndup(p + 1, end - p - 1);
}

static gchar *
dotenv_parse_bare(const gchar *p)
{
	gsize len = 0;

	/* a comment needs a blank before it, so `a#b` stays a value */
	for (const gchar *q = p; *q != '\0'; q++) {
		if (*q == '#' && (q == p || q[-1] == ' ' || q[-1] == '\t'))
			break;
		len = q - p + 1;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	return g_strndup(p, len);
}

static gboolean
dotenv_parse_line(QsimDotenv *self, const gchar *line, guint lineno, GError **error)
{
	const gchar *p = line;
	const gchar *key;
	const gchar *problem = NULL;
	gsize key_len;
	g_autofree gchar *value = NULL;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return TRUE;
	if (g_str_has_prefix(p, "export") && (p[6] == ' ' || p[6] == '\t')) {
		p += 6;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	key = p;
	while (*p != '\0' && *p != '=' && *p != ' ' && *p != '\t')
		p++;
	key_len = p - key;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=') {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s:%u: expected KEY=VALUE",
		            self->path, lineno);
		return FALSE;
	}
	if (!dotenv_key_valid(key, key_len)) {
		g_autofree gchar *k = g_strndup(key, key_len);
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID,
		            "%s:%u: invalid key '%s' (use letters, digits and _)", self->path,
		            lineno, k);
		return FALSE;
	}
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"')
		value = dotenv_parse_double(p, &problem);
	else if (*p == '\'')
		value = dotenv_parse_single(p, &problem);
	else
		value = dotenv_parse_bare(p);
	if (value == NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s:%u: %s", self->path, lineno,
		            problem);
		return FALSE;
	}
	g_ptr_array_add(self->keys, g_strndup(key, key_len));
	g_ptr_array_add(self->values, g_steal_pointer(&value));
	g_array_append_val(self->lines, lineno);
	return TRUE;
}

/**
 * qsim_dotenv_new_from_data:
 * @data: file content, need not be NUL-terminated
 * @len: length of @data
 * @path_for_messages: the name errors use for the file
 * @error: return location for a %QSIM_ERROR_INVALID error naming `file:line`
 *
 * Returns: (transfer full): the parsed entries, free with qsim_dotenv_free()
 */
QsimDotenv *
qsim_dotenv_new_from_data(const gchar *data, gsize len, const gchar *path_for_messages,
                          GError **error)
{
	g_autoptr(QsimDotenv) self = g_new0(QsimDotenv, 1);
	g_autofree gchar *text = g_strndup(data, len);
	g_auto(GStrv) lines = NULL;

	self->path = g_strdup(path_for_messages);
	self->keys = g_ptr_array_new_with_free_func(g_free);
	self->values = g_ptr_array_new_with_free_func(g_free);
	self->lines = g_array_new(FALSE, FALSE, sizeof(guint));
	if (memchr(data, '\0', len) != NULL) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s: contains a NUL byte",
		            self->path);
		return NULL;
	}
	if (!g_utf8_validate(text, -1, NULL)) {
		g_set_error(error, QSIM_ERROR, QSIM_ERROR_INVALID, "%s: not valid UTF-8",
		            self->path);
		return NULL;
	}
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		gsize l = strlen(lines[i]);
		if (l > 0 && lines[i][l - 1] == '\r')
			lines[i][l - 1] = '\0';
		if (!dotenv_parse_line(self, lines[i], i + 1, error))
			return NULL;
	}
	return g_steal_pointer(&self);
}

/**
 * qsim_dotenv_new_from_file:
 * @path: the file to read
 * @error: return location for an error; %QSIM_ERROR_NOT_FOUND if missing
 *
 * Returns: (transfer full): the parsed entries, free with qsim_dotenv_free()
 */
QsimDotenv *
qsim_dotenv_new_from_file(const gchar *path, GError **error)
{
	g_autofree gchar *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, error)) {
		qsim_error_convert(error);
		return NULL;
	}
	return qsim_dotenv_new_from_data(data, len, path, error);
}

void
qsim_dotenv_free(QsimDotenv *self)
{
	if (self == NULL)
		return;
	g_free(self->path);
	g_ptr_array_unref(self->keys);
	g_ptr_array_unref(self->values);
	g_array_unref(self->lines);
	g_free(self);
}

/* Returns: (transfer none): the path used in messages */
const gchar *
qsim_dotenv_get_path(QsimDotenv *self)
{
	return self->path;
}

guint
qsim_dotenv_get_n_entries(QsimDotenv *self)
{
	return self->keys->len;
}

/* Returns: (transfer none): the key of entry @idx */
const gchar *
qsim_dotenv_get_key(QsimDotenv *self, guint idx)
{
	g_return_val_if_fail(idx < self->keys->len, NULL);
	return g_ptr_array_index(self->keys, idx);
}

/* Returns: (transfer none): the unquoted value of entry @idx */
const gchar *
qsim_dotenv_get_value(QsimDotenv *self, guint idx)
{
	g_return_val_if_fail(idx < self->values->len, NULL);
	return g_ptr_array_index(self->values, idx);
}

/* Returns: the 1-based line number of entry @idx */
guint
qsim_dotenv_get_line(QsimDotenv *self, guint idx)
{
	g_return_val_if_fail(idx < self->lines->len, 0);
	return g_array_index(self->lines, guint, idx);
}

/**
 * qsim_dotenv_lookup:
 * @key: the key
 * @line: (out) (optional): its line number
 *
 * Returns: (transfer none) (nullable): the last value given for @key
 */
const gchar *
qsim_dotenv_lookup(QsimDotenv *self, const gchar *key, guint *line)
{
	for (guint i = self->keys->len; i > 0; i--) {
		if (g_strcmp0(g_ptr_array_index(self->keys, i - 1), key) == 0) {
			if (line != NULL)
				*line = g_array_index(self->lines, guint, i - 1);
			return g_ptr_array_index(self->values, i - 1);
		}
	}
	return NULL;
}
