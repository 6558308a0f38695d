#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Type-checked accessors for QMP messages, internal to src/qmp/. json-glib's own getters
 * emit criticals on a type mismatch, and tests run with fatal-criticals: a peer must never
 * be able to crash us by sending the wrong type. All return borrowed values. */

static inline gboolean
qsim_qmp_json_is_string(JsonNode *node)
{
	return node != NULL && JSON_NODE_TYPE(node) == JSON_NODE_VALUE &&
	       json_node_get_value_type(node) == G_TYPE_STRING;
}

static inline gboolean
qsim_qmp_json_is_int(JsonNode *node)
{
	return node != NULL && JSON_NODE_TYPE(node) == JSON_NODE_VALUE &&
	       json_node_get_value_type(node) == G_TYPE_INT64;
}

static inline gboolean
qsim_qmp_json_is_bool(JsonNode *node)
{
	return node != NULL && JSON_NODE_TYPE(node) == JSON_NODE_VALUE &&
	       json_node_get_value_type(node) == G_TYPE_BOOLEAN;
}

static inline JsonObject *
qsim_qmp_json_get_object(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);
	if (node == NULL || JSON_NODE_TYPE(node) != JSON_NODE_OBJECT)
		return NULL;
	return json_node_get_object(node);
}

static inline const gchar *
qsim_qmp_json_get_string(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);
	return qsim_qmp_json_is_string(node) ? json_node_get_string(node) : NULL;
}

G_END_DECLS
