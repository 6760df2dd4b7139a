/*
 * translate_gemini_schema.c — JSON Schema (a tool's input_schema) cut to the OpenAPI
 * subset Gemini's Schema object takes. The contract is in translate_gemini_schema.h.
 */
#include "translate_gemini_schema.h"

#include <string.h>

#include "common.h"
#include "jsafe.h"

#define MAX_SCHEMA_DEPTH 32 /* nesting, $ref hops included: a cycle stops here */

static const char *gemini_type(const char *json_type)
{
    static const char *const map[][2] = {
        {"string", "STRING"},   {"number", "NUMBER"}, {"integer", "INTEGER"},
        {"boolean", "BOOLEAN"}, {"array", "ARRAY"},   {"object", "OBJECT"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(map); i++)
        if (strcmp(json_type, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Whether Gemini takes format fmt for type (its docs: enum and date-time on strings). */
static bool format_allowed(const char *type, const char *fmt)
{
    if (type == NULL)
        return false;
    if (strcmp(type, "STRING") == 0)
        return strcmp(fmt, "enum") == 0 || strcmp(fmt, "date-time") == 0;
    if (strcmp(type, "NUMBER") == 0)
        return strcmp(fmt, "float") == 0 || strcmp(fmt, "double") == 0;
    if (strcmp(type, "INTEGER") == 0)
        return strcmp(fmt, "int32") == 0 || strcmp(fmt, "int64") == 0;
    return false;
}

/* The schema a local reference ("#/$defs/x", "#/definitions/x") names, or NULL. */
static json_t *resolve_ref(json_t *root, const char *ref)
{
    static const char *const prefixes[] = {"#/$defs/", "#/definitions/"};
    for (size_t i = 0; i < TG_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(ref, prefixes[i], n) != 0)
            continue;
        json_t *defs = json_object_get(root, i == 0 ? "$defs" : "definitions");
        json_t *target = json_object_get(defs, ref + n);
        return json_is_object(target) ? target : NULL;
    }
    return NULL;
}

static json_t *schema_at(json_t *root, json_t *schema, int depth);

static bool is_null_schema(json_t *schema)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    return type != NULL && strcmp(type, "null") == 0;
}

/*
 * anyOf (or oneOf) as Gemini's anyOf. A {"type": "null"} alternative becomes nullable,
 * and a single alternative left is merged into out (Optional[X] reads as X, nullable).
 */
static int schema_any_of(json_t *root, json_t *out, json_t *list, int depth)
{
    json_t *translated = json_array();
    if (translated == NULL)
        return TG_ERROR;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (is_null_schema(item)) {
            if (json_object_set_new(out, "nullable", json_true()) != 0)
                break;
        } else if (json_array_append_new(translated, schema_at(root, item, depth + 1)) != 0) {
            break;
        }
    }
    int rc = i == json_array_size(list) ? TG_OK : TG_ERROR;
    if (rc == TG_OK && json_array_size(translated) == 1 && json_object_get(out, "type") == NULL) {
        const char *key;
        json_t *value;
        json_object_foreach(json_array_get(translated, 0), key, value) {
            if (json_object_get(out, key) == NULL && json_object_set(out, key, value) != 0)
                rc = TG_ERROR;
        }
    } else if (rc == TG_OK && json_array_size(translated) > 0) {
        rc = json_object_set(out, "anyOf", translated) == 0 ? TG_OK : TG_ERROR;
    }
    json_decref(translated);
    return rc;
}

/* The type keyword: a name or ["name", "null"]. Sets type and nullable on out. */
static int schema_type(json_t *type, json_t *out)
{
    const char *single = NULL;
    bool nullable = false;
    if (json_is_string(type)) {
        single = json_string_value(type);
    } else if (json_is_array(type)) {
        size_t i, non_null = 0;
        json_t *t;
        json_array_foreach(type, i, t) {
            const char *name = json_string_value(t);
            if (name != NULL && strcmp(name, "null") == 0) {
                nullable = true;
            } else if (name != NULL) {
                single = name;
                non_null++;
            }
        }
        if (non_null != 1)
            single = NULL; /* a union of types: left unconstrained */
    }
    if (single != NULL && strcmp(single, "null") == 0) {
        nullable = true;
        single = NULL;
    }
    const char *mapped = single != NULL ? gemini_type(single) : NULL;
    if (mapped != NULL && json_object_set_new(out, "type", json_string(mapped)) != 0)
        return TG_ERROR;
    if (nullable && json_object_set_new(out, "nullable", json_true()) != 0)
        return TG_ERROR;
    return TG_OK;
}

static int schema_properties(json_t *root, json_t *in, json_t *out, int depth)
{
    json_t *props = json_object_get(in, "properties");
    if (!json_is_object(props) || json_object_size(props) == 0)
        return TG_OK; /* Gemini refuses an OBJECT with empty properties */
    json_t *translated = json_object();
    const char *name;
    json_t *sub;
    json_object_foreach(props, name, sub) {
        if (json_object_set_new(translated, name, schema_at(root, sub, depth + 1)) != 0) {
            json_decref(translated);
            return TG_ERROR;
        }
    }
    if (json_object_set_new(out, "properties", translated) != 0)
        return TG_ERROR;
    json_t *required = json_object_get(in, "required");
    if (!json_is_array(required))
        return TG_OK;
    json_t *kept = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(required, i, r) {
        if (json_is_string(r) && json_object_get(props, json_string_value(r)) != NULL)
            json_array_append(kept, r);
    }
    if (json_array_size(kept) == 0) {
        json_decref(kept);
        return TG_OK;
    }
    return json_object_set_new(out, "required", kept) == 0 ? TG_OK : TG_ERROR;
}

/* enum (all strings) or const (a string) as Gemini's enum. */
static int schema_enum(json_t *in, json_t *out)
{
    json_t *values = json_object_get(in, "enum");
    json_t *constant = json_object_get(in, "const");
    json_t *kept = NULL;
    if (json_is_array(values) && json_array_size(values) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(values, i, v) {
            if (!json_is_string(v))
                return TG_OK; /* Gemini's enum holds strings only: drop the constraint */
        }
        kept = tg_jsafe_copy(values);
    } else if (json_is_string(constant)) {
        kept = json_pack("[O]", constant);
    }
    if (kept == NULL)
        return TG_OK;
    if (json_object_set_new(out, "enum", kept) != 0)
        return TG_ERROR;
    if (json_object_get(out, "type") == NULL)
        return json_object_set_new(out, "type", json_string("STRING"));
    return TG_OK;
}

/* Keywords copied as they are when they have the type Gemini expects. */
static int schema_plain(json_t *in, json_t *out)
{
    static const char *const strings[] = {"description", "title", "pattern"};
    static const char *const integers[] = {"minItems",  "maxItems",      "minLength",
                                           "maxLength", "minProperties", "maxProperties"};
    static const char *const numbers[] = {"minimum", "maximum"};
    for (size_t i = 0; i < TG_ARRAY_LEN(strings); i++) {
        json_t *v = json_object_get(in, strings[i]);
        if (json_is_string(v) && json_object_set(out, strings[i], v) != 0)
            return TG_ERROR;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(integers); i++) {
        json_t *v = json_object_get(in, integers[i]);
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_object_set(out, integers[i], v) != 0)
            return TG_ERROR;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(numbers); i++) {
        json_t *v = json_object_get(in, numbers[i]);
        if (json_is_number(v) && json_object_set(out, numbers[i], v) != 0)
            return TG_ERROR;
    }
    json_t *nullable = json_object_get(in, "nullable");
    if (json_is_true(nullable) && json_object_set_new(out, "nullable", json_true()) != 0)
        return TG_ERROR;
    return TG_OK;
}

static json_t *schema_at(json_t *root, json_t *schema, int depth)
{
    json_t *out = json_object();
    if (out == NULL || !json_is_object(schema) || depth >= MAX_SCHEMA_DEPTH)
        return out;
    json_t *ref = json_object_get(schema, "$ref");
    if (json_is_string(ref)) {
        json_t *target = resolve_ref(root, json_string_value(ref));
        if (target == NULL)
            return out; /* a remote or unknown reference: unconstrained */
        json_decref(out);
        return schema_at(root, target, depth + 1);
    }
    int rc = schema_type(json_object_get(schema, "type"), out);
    const char *type = json_string_value(json_object_get(out, "type"));
    json_t *format = json_object_get(schema, "format");
    if (rc == TG_OK && json_is_string(format) && format_allowed(type, json_string_value(format)))
        rc = json_object_set(out, "format", format);
    if (rc == TG_OK)
        rc = schema_plain(schema, out);
    if (rc == TG_OK)
        rc = schema_enum(schema, out);
    json_t *items = json_object_get(schema, "items");
    if (rc == TG_OK && json_is_object(items))
        rc = json_object_set_new(out, "items", schema_at(root, items, depth + 1));
    if (rc == TG_OK)
        rc = schema_properties(root, schema, out, depth);
    json_t *any_of = json_object_get(schema, "anyOf");
    if (!json_is_array(any_of))
        any_of = json_object_get(schema, "oneOf");
    if (rc == TG_OK && json_is_array(any_of))
        rc = schema_any_of(root, out, any_of, depth);
    if (rc != TG_OK) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *tg_gemini_schema(json_t *schema)
{
    return schema_at(schema, schema, 0);
}
