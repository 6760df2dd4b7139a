/*
 * guard_texts.c — walks a request body in its client's dialect and yields each
 * text the provider would see, with its place, so a guard can read or replace
 * it (guard_texts.h lists the places). Jansson only; allocates nothing but the
 * replacement strings.
 */
#include "guard_texts.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A walk's state: the callback, what the caps count, and the "where" being built. */
struct walk {
    tg_guard_text_fn fn;
    void *ctx;
    size_t count;
    size_t bytes;
    size_t where_len;
    char where[TG_GUARD_TEXTS_WHERE_MAX];
};

/* ---- the "where" path: pushed before a step down, popped after ---- */

/* Appends to where (cut to "..." when full); returns the length to pop back to. */
TG_PRINTF(2, 3) static size_t push(struct walk *w, const char *fmt, ...)
{
    size_t old = w->where_len;
    size_t room = sizeof(w->where) - old;
    if (room <= 1)
        return old;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->where + old, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        w->where[old] = '\0';
        return old;
    }
    if ((size_t)n >= room) {
        w->where_len = sizeof(w->where) - 1;
        memcpy(w->where + w->where_len - 3, "...", 3);
    } else {
        w->where_len = old + (size_t)n;
    }
    return old;
}

static void pop(struct walk *w, size_t old)
{
    w->where_len = old;
    w->where[old] = '\0';
}

static size_t push_name(struct walk *w, const char *name)
{
    return push(w, w->where_len == 0 ? "%s" : ".%s", name);
}

static size_t push_index(struct walk *w, size_t i)
{
    return push(w, "[%zu]", i);
}

/* A key from the document: itself when it is a plain name, else its position (it may be text). */
static size_t push_key(struct walk *w, const char *key, size_t key_len, size_t position)
{
    bool plain = key_len > 0 && key_len <= 64;
    for (size_t i = 0; plain && i < key_len; i++) {
        char c = key[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '$';
    }
    if (plain)
        return push_name(w, key);
    return push(w, w->where_len == 0 ? "#%zu" : ".#%zu", position);
}

/* ---- yielding ---- */

static bool key_is(const char *key, size_t key_len, const char *name)
{
    return key_len == strlen(name) && memcmp(key, name, key_len) == 0;
}

static const char *type_of(const json_t *object)
{
    return json_string_value(json_object_get(object, "type"));
}

/* Calls fn for value when it is a string at holder's key (an object) or index. */
static int yield(struct walk *w, json_t *holder, const char *key, size_t key_len, size_t index,
                 json_t *value)
{
    if (!json_is_string(value))
        return TG_OK;
    size_t len = json_string_length(value);
    if (w->count >= TG_GUARD_TEXTS_MAX_COUNT || len > TG_GUARD_TEXTS_MAX_BYTES - w->bytes)
        return TG_ERROR;
    w->count++;
    w->bytes += len;
    struct tg_guard_text t = {
        .holder = holder,
        .key = key,
        .key_len = key != NULL ? key_len : 0,
        .index = index,
        .text = json_string_value(value),
        .len = len,
        .where = w->where,
    };
    return w->fn(w->ctx, &t);
}

/* yield for the member name of object (a static name), with name pushed on where. */
static int yield_member(struct walk *w, json_t *object, const char *name)
{
    json_t *value = json_object_get(object, name);
    if (!json_is_string(value))
        return TG_OK;
    size_t old = push_name(w, name);
    int rc = yield(w, object, name, strlen(name), 0, value);
    pop(w, old);
    return rc;
}

/* yield for element i of array, with [i] pushed on where. */
static int yield_element(struct walk *w, json_t *array, size_t i)
{
    json_t *value = json_array_get(array, i);
    if (!json_is_string(value))
        return TG_OK;
    size_t old = push_index(w, i);
    int rc = yield(w, array, NULL, 0, i, value);
    pop(w, old);
    return rc;
}

/* ---- shared: every string of a value; every "description" of a schema ---- */

/* Every string in value (at holder's key or index), recursively. */
static int walk_strings(struct walk *w, json_t *holder, const char *key, size_t key_len,
                        size_t index, json_t *value, size_t depth)
{
    if (json_is_string(value))
        return yield(w, holder, key, key_len, index, value);
    if (!json_is_object(value) && !json_is_array(value))
        return TG_OK;
    if (depth >= TG_GUARD_TEXTS_MAX_DEPTH)
        return TG_ERROR;
    int rc = TG_OK;
    if (json_is_array(value)) {
        size_t i;
        json_t *element;
        json_array_foreach(value, i, element) {
            size_t old = push_index(w, i);
            rc = walk_strings(w, value, NULL, 0, i, element, depth + 1);
            pop(w, old);
            if (rc != TG_OK)
                return rc;
        }
        return TG_OK;
    }
    const char *k;
    size_t k_len, position = 0;
    json_t *member;
    json_object_keylen_foreach(value, k, k_len, member)
    {
        size_t old = push_key(w, k, k_len, position++);
        rc = walk_strings(w, value, k, k_len, 0, member, depth + 1);
        pop(w, old);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* Every "description" string in a JSON Schema (value), recursively. */
static int walk_descriptions(struct walk *w, json_t *value, size_t depth)
{
    if (!json_is_object(value) && !json_is_array(value))
        return TG_OK;
    if (depth >= TG_GUARD_TEXTS_MAX_DEPTH)
        return TG_ERROR;
    int rc = TG_OK;
    if (json_is_array(value)) {
        size_t i;
        json_t *element;
        json_array_foreach(value, i, element) {
            size_t old = push_index(w, i);
            rc = walk_descriptions(w, element, depth + 1);
            pop(w, old);
            if (rc != TG_OK)
                return rc;
        }
        return TG_OK;
    }
    const char *k;
    size_t k_len, position = 0;
    json_t *member;
    json_object_keylen_foreach(value, k, k_len, member)
    {
        size_t old = push_key(w, k, k_len, position++);
        if (key_is(k, k_len, "description") && json_is_string(member))
            rc = yield(w, value, k, k_len, 0, member);
        else
            rc = walk_descriptions(w, member, depth + 1);
        pop(w, old);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* ---- Anthropic Messages ---- */

static int anthropic_content(struct walk *w, json_t *holder, const char *key, size_t key_len,
                             json_t *content, size_t depth);

/* One content block: its texts by type. */
static int anthropic_block(struct walk *w, json_t *block, size_t depth)
{
    const char *type = type_of(block);
    if (type == NULL)
        return TG_OK;
    if (strcmp(type, "text") == 0)
        return yield_member(w, block, "text");
    if (strcmp(type, "tool_result") == 0) {
        size_t old = push_name(w, "content");
        int rc = anthropic_content(w, block, "content", strlen("content"),
                                   json_object_get(block, "content"), depth + 1);
        pop(w, old);
        return rc;
    }
    if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0) {
        size_t old = push_name(w, "input");
        int rc = walk_strings(w, block, "input", strlen("input"), 0,
                              json_object_get(block, "input"), depth + 1);
        pop(w, old);
        return rc;
    }
    if (strcmp(type, "document") == 0) {
        json_t *source = json_object_get(block, "source");
        const char *source_type = type_of(source);
        if (source_type == NULL)
            return TG_OK;
        size_t old = push_name(w, "source");
        int rc = TG_OK;
        if (strcmp(source_type, "text") == 0)
            rc = yield_member(w, source, "data");
        else if (strcmp(source_type, "content") == 0) {
            size_t at = push_name(w, "content");
            rc = anthropic_content(w, source, "content", strlen("content"),
                                   json_object_get(source, "content"), depth + 1);
            pop(w, at);
        }
        pop(w, old);
        return rc;
    }
    return TG_OK;
}

/* A content (or system) value: a string at holder's key, or an array of blocks. */
static int anthropic_content(struct walk *w, json_t *holder, const char *key, size_t key_len,
                             json_t *content, size_t depth)
{
    if (depth >= TG_GUARD_TEXTS_MAX_DEPTH)
        return TG_ERROR;
    if (json_is_string(content))
        return yield(w, holder, key, key_len, 0, content);
    if (!json_is_array(content))
        return TG_OK;
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block) {
        if (!json_is_object(block))
            continue;
        size_t old = push_index(w, i);
        int rc = anthropic_block(w, block, depth);
        pop(w, old);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

static int anthropic_tool(struct walk *w, json_t *tool)
{
    const char *k;
    size_t k_len;
    json_t *member;
    json_object_keylen_foreach(tool, k, k_len, member)
    {
        int rc = TG_OK;
        if (key_is(k, k_len, "description")) {
            rc = yield_member(w, tool, "description");
        } else if (key_is(k, k_len, "input_schema")) {
            size_t old = push_name(w, "input_schema");
            rc = walk_descriptions(w, member, 0);
            pop(w, old);
        }
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* Calls each(w, element) for each object of array, with name[i] pushed on where. */
static int each_object(struct walk *w, json_t *array, const char *name,
                       int (*each)(struct walk *w, json_t *object))
{
    if (!json_is_array(array))
        return TG_OK;
    size_t i;
    json_t *element;
    json_array_foreach(array, i, element) {
        if (!json_is_object(element))
            continue;
        size_t old = push(w, w->where_len == 0 ? "%s[%zu]" : ".%s[%zu]", name, i);
        int rc = each(w, element);
        pop(w, old);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

static int anthropic_message(struct walk *w, json_t *message)
{
    json_t *content = json_object_get(message, "content");
    size_t old = push_name(w, "content");
    int rc = anthropic_content(w, message, "content", strlen("content"), content, 0);
    pop(w, old);
    return rc;
}

static int walk_anthropic(struct walk *w, json_t *doc)
{
    const char *k;
    size_t k_len;
    json_t *member;
    json_object_keylen_foreach(doc, k, k_len, member)
    {
        int rc = TG_OK;
        if (key_is(k, k_len, "system")) {
            size_t old = push_name(w, "system");
            rc = anthropic_content(w, doc, "system", strlen("system"), member, 0);
            pop(w, old);
        } else if (key_is(k, k_len, "messages")) {
            rc = each_object(w, member, "messages", anthropic_message);
        } else if (key_is(k, k_len, "tools")) {
            rc = each_object(w, member, "tools", anthropic_tool);
        }
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* ---- OpenAI Chat Completions ---- */

static int openai_tool_call(struct walk *w, json_t *call)
{
    json_t *function = json_object_get(call, "function");
    if (!json_is_object(function))
        return TG_OK;
    size_t old = push_name(w, "function");
    int rc = yield_member(w, function, "arguments");
    pop(w, old);
    return rc;
}

static int openai_message(struct walk *w, json_t *message)
{
    const char *k;
    size_t k_len;
    json_t *member;
    json_object_keylen_foreach(message, k, k_len, member)
    {
        int rc = TG_OK;
        if (key_is(k, k_len, "content")) {
            if (json_is_string(member)) {
                rc = yield_member(w, message, "content");
            } else if (json_is_array(member)) {
                size_t i;
                json_t *part;
                size_t old = push_name(w, "content");
                json_array_foreach(member, i, part) {
                    const char *type = type_of(part);
                    if (type == NULL || strcmp(type, "text") != 0)
                        continue;
                    size_t at = push_index(w, i);
                    rc = yield_member(w, part, "text");
                    pop(w, at);
                    if (rc != TG_OK)
                        break;
                }
                pop(w, old);
            }
        } else if (key_is(k, k_len, "tool_calls")) {
            rc = each_object(w, member, "tool_calls", openai_tool_call);
        } else if (key_is(k, k_len, "function_call") && json_is_object(member)) {
            size_t old = push_name(w, "function_call");
            rc = yield_member(w, member, "arguments");
            pop(w, old);
        }
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

static int openai_tool(struct walk *w, json_t *tool)
{
    json_t *function = json_object_get(tool, "function");
    if (!json_is_object(function))
        return TG_OK;
    size_t old = push_name(w, "function");
    const char *k;
    size_t k_len;
    json_t *member;
    int rc = TG_OK;
    json_object_keylen_foreach(function, k, k_len, member)
    {
        if (key_is(k, k_len, "description")) {
            rc = yield_member(w, function, "description");
        } else if (key_is(k, k_len, "parameters")) {
            size_t at = push_name(w, "parameters");
            rc = walk_descriptions(w, member, 0);
            pop(w, at);
        }
        if (rc != TG_OK)
            break;
    }
    pop(w, old);
    return rc;
}

static int walk_openai_chat(struct walk *w, json_t *doc)
{
    const char *k;
    size_t k_len;
    json_t *member;
    json_object_keylen_foreach(doc, k, k_len, member)
    {
        int rc = TG_OK;
        if (key_is(k, k_len, "messages"))
            rc = each_object(w, member, "messages", openai_message);
        else if (key_is(k, k_len, "tools"))
            rc = each_object(w, member, "tools", openai_tool);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* ---- OpenAI Embeddings ---- */

static int walk_openai_embeddings(struct walk *w, json_t *doc)
{
    json_t *input = json_object_get(doc, "input");
    if (json_is_string(input))
        return yield_member(w, doc, "input");
    if (!json_is_array(input))
        return TG_OK;
    size_t old = push_name(w, "input");
    int rc = TG_OK;
    for (size_t i = 0; rc == TG_OK && i < json_array_size(input); i++)
        rc = yield_element(w, input, i); /* token ids (numbers, arrays) are not strings */
    pop(w, old);
    return rc;
}

/* ---- HTTP: configured field paths ---- */

/*
 * One "[*]" or "[N]" at p ('[' there): *star, *n set; returns the byte after
 * ']' or NULL when it is not one.
 */
static const char *parse_subscript(const char *p, bool *star, size_t *n)
{
    p++;
    *star = false;
    *n = 0;
    if (*p == '*') {
        *star = true;
        p++;
    } else {
        if (*p < '0' || *p > '9')
            return NULL;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (*n > (SIZE_MAX - 9) / 10)
                return NULL;
            *n = *n * 10 + (size_t)(*p - '0');
        }
    }
    return *p == ']' ? p + 1 : NULL;
}

/* The length of the member name at p (up to '.', '[', ']' or the end). */
static size_t name_length(const char *p)
{
    return strcspn(p, ".[]");
}

int tg_guard_texts_path_check(const char *path)
{
    if (path == NULL || path[0] == '\0' || strlen(path) > TG_GUARD_TEXTS_PATH_MAX)
        return TG_DECLINED;
    const char *p = path;
    bool first = true;
    while (*p != '\0') {
        if (*p == '[') {
            bool star;
            size_t n;
            p = parse_subscript(p, &star, &n);
            if (p == NULL)
                return TG_DECLINED;
        } else {
            if (!first) {
                if (*p != '.')
                    return TG_DECLINED;
                p++;
            }
            size_t len = name_length(p);
            if (len == 0)
                return TG_DECLINED;
            p += len;
        }
        first = false;
    }
    return TG_OK;
}

/* The strings at the rest of a path (p) from value, which sits at holder's key or index. */
static int walk_path(struct walk *w, json_t *holder, const char *key, size_t key_len, size_t index,
                     json_t *value, const char *p)
{
    if (*p == '\0')
        return holder != NULL ? yield(w, holder, key, key_len, index, value) : TG_OK;
    if (*p == '[') {
        bool star;
        size_t n;
        const char *rest = parse_subscript(p, &star, &n);
        if (rest == NULL)
            return TG_ERROR;
        if (!json_is_array(value))
            return TG_OK;
        size_t from = star ? 0 : n, to = star ? json_array_size(value) : n + 1;
        for (size_t i = from; i < to && i < json_array_size(value); i++) {
            size_t old = push_index(w, i);
            int rc = walk_path(w, value, NULL, 0, i, json_array_get(value, i), rest);
            pop(w, old);
            if (rc != TG_OK)
                return rc;
        }
        return TG_OK;
    }
    if (*p == '.')
        p++;
    size_t len = name_length(p);
    char name[TG_GUARD_TEXTS_PATH_MAX + 1];
    if (len == 0 || len >= sizeof(name))
        return TG_ERROR;
    if (!json_is_object(value))
        return TG_OK;
    memcpy(name, p, len);
    name[len] = '\0';
    /* the document's own key, so that t->key outlives the path */
    void *iter = json_object_iter_at(value, name);
    if (iter == NULL || json_object_iter_key_len(iter) != len)
        return TG_OK;
    size_t old = push_name(w, name);
    int rc = walk_path(w, value, json_object_iter_key(iter), len, 0, json_object_iter_value(iter),
                       p + len);
    pop(w, old);
    return rc;
}

static int walk_http(struct walk *w, json_t *doc, const char *const *paths, size_t n_paths)
{
    for (size_t i = 0; i < n_paths; i++)
        if (tg_guard_texts_path_check(paths[i]) != TG_OK)
            return TG_ERROR;
    for (size_t i = 0; i < n_paths; i++) {
        int rc = walk_path(w, NULL, NULL, 0, 0, doc, paths[i]);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* ---- the entry points ---- */

int tg_guard_texts_each(json_t *doc, enum tg_guard_dialect dialect, const char *const *http_paths,
                        size_t n_http_paths, tg_guard_text_fn fn, void *ctx)
{
    if (fn == NULL)
        return TG_ERROR;
    struct walk w = {.fn = fn, .ctx = ctx};
    switch (dialect) {
    case TG_GUARD_HTTP:
        if (n_http_paths > 0 && http_paths == NULL)
            return TG_ERROR;
        return doc != NULL ? walk_http(&w, doc, http_paths, n_http_paths) : TG_OK;
    case TG_GUARD_ANTHROPIC: return json_is_object(doc) ? walk_anthropic(&w, doc) : TG_OK;
    case TG_GUARD_OPENAI_CHAT: return json_is_object(doc) ? walk_openai_chat(&w, doc) : TG_OK;
    case TG_GUARD_OPENAI_EMBEDDINGS:
        return json_is_object(doc) ? walk_openai_embeddings(&w, doc) : TG_OK;
    }
    return TG_ERROR;
}

int tg_guard_texts_replace(const struct tg_guard_text *t, const char *text, size_t len)
{
    if (t == NULL || t->holder == NULL || (text == NULL && len > 0))
        return TG_ERROR;
    json_t *value = json_stringn(text != NULL ? text : "", len);
    if (value == NULL)
        return TG_ERROR;
    int rc;
    if (json_is_object(t->holder) && t->key != NULL)
        rc = json_object_setn_new(t->holder, t->key, t->key_len, value);
    else if (json_is_array(t->holder) && t->key == NULL && t->index < json_array_size(t->holder))
        rc = json_array_set_new(t->holder, t->index, value);
    else {
        json_decref(value);
        return TG_ERROR;
    }
    return rc == 0 ? TG_OK : TG_ERROR;
}
