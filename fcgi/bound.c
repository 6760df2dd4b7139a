/*
 * bound.c — the request's true upper bound (the rule is in bound.h), the
 * max_tokens and anthropic-beta checks, and the config's "bounds" section.
 */
#include "bound.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define BETA_NAME_MAX 100
#define ALLOWED_BETAS_MAX 256

/* ---- saturating arithmetic: a bound is capped, never wrapped ---- */

static int64_t cap(int64_t v)
{
    return v < 0 ? 0 : v > TG_BOUND_MAX ? TG_BOUND_MAX : v;
}

static int64_t add(int64_t a, int64_t b)
{
    /* both are within [0, TG_BOUND_MAX], so the sum fits before capping */
    return cap(cap(a) + cap(b));
}

static int64_t mul(int64_t a, int64_t b)
{
    a = cap(a);
    b = cap(b);
    if (a != 0 && b > TG_BOUND_MAX / a)
        return TG_BOUND_MAX;
    return a * b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- the walk over content ---- */

struct walk {
    int64_t payload_bytes; /* base64 data in the body, billed as its item instead */
    int64_t images;
    int64_t documents;
};

static void count_payload(struct walk *w, json_t *source)
{
    json_t *data = json_object_get(source, "data");
    if (json_is_string(data))
        w->payload_bytes = add(w->payload_bytes, (int64_t)json_string_length(data));
}

static bool source_is(json_t *source, const char *type)
{
    const char *t = json_string_value(json_object_get(source, "type"));
    return t != NULL && strcmp(t, type) == 0;
}

/* One image or document block: what its source adds beyond the body's bytes. */
static void count_block(struct walk *w, const char *type, json_t *block)
{
    json_t *source = json_object_get(block, "source");
    bool base64 = json_is_object(source) && source_is(source, "base64");
    if (strcmp(type, "image") == 0) {
        w->images++; /* any source: the provider scales every image to its maximum */
        if (base64)
            count_payload(w, source);
    } else if (strcmp(type, "document") == 0) {
        /* plain text and content blocks are inline: the body's bytes bound them */
        if (json_is_object(source) && (source_is(source, "text") || source_is(source, "content")))
            return;
        w->documents++; /* base64 (a PDF), URL, file id, or a source not known here */
        if (base64)
            count_payload(w, source);
    } else if (strcmp(type, "container_upload") == 0) {
        w->documents++;
    }
}

/*
 * Every object under v, at any depth (tool results, documents' content blocks
 * and search results nest blocks). Depth is bounded by the JSON parser's own
 * limit. Counting an object that only looks like a block (inside a tool's
 * input, say) can only raise the bound.
 */
static void walk(struct walk *w, json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            walk(w, item);
        }
        return;
    }
    if (!json_is_object(v))
        return;
    const char *type = json_string_value(json_object_get(v, "type"));
    if (type != NULL)
        count_block(w, type, v);
    const char *key;
    json_t *member;
    json_object_foreach(v, key, member) {
        if (json_is_array(member) || json_is_object(member))
            walk(w, member);
    }
}

/* ---- tools ---- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Anthropic-defined tools that the client runs: their results come back in the body. */
static bool is_client_tool(const char *type)
{
    static const char *const prefixes[] = {"bash_", "text_editor_", "computer_", "memory_"};
    for (size_t i = 0; i < TG_ARRAY_LEN(prefixes); i++)
        if (has_prefix(type, prefixes[i]))
            return true;
    return false;
}

struct tools {
    int64_t extra_tokens; /* definitions and system prompt the provider adds */
    int64_t uses;         /* server tool uses */
    int64_t web_searches;
};

static void count_tools(const struct tg_bounds_config *bc, const struct tg_model *model,
                        json_t *doc, struct tools *t)
{
    int64_t use_max = bc->server_tool_use_max_tokens > 0 ? bc->server_tool_use_max_tokens
                                                         : model->max_input_tokens;
    json_t *tools = json_object_get(doc, "tools");
    json_t *mcp = json_object_get(doc, "mcp_servers");
    bool any = (json_is_array(tools) && json_array_size(tools) > 0) ||
               (json_is_array(mcp) && json_array_size(mcp) > 0);
    if (any)
        t->extra_tokens = add(t->extra_tokens, bc->tool_system_tokens);
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool) {
        const char *type = json_string_value(json_object_get(tool, "type"));
        if (type == NULL || strcmp(type, "custom") == 0)
            continue; /* the client's own tool: its definition is in the body */
        t->extra_tokens = add(t->extra_tokens, bc->builtin_tool_tokens);
        if (is_client_tool(type))
            continue;
        json_t *max_uses = json_object_get(tool, "max_uses");
        /* the provider enforces max_uses; without it, its own loop limit applies */
        int64_t uses = json_is_integer(max_uses) && json_integer_value(max_uses) >= 0
                           ? (int64_t)json_integer_value(max_uses)
                           : bc->server_tool_default_uses;
        t->uses = add(t->uses, uses);
        if (has_prefix(type, "web_search_"))
            t->web_searches = add(t->web_searches, uses);
    }
    /* an MCP server's tools are defined and run at the provider */
    json_array_foreach(mcp, i, tool) {
        t->extra_tokens = add(t->extra_tokens, use_max);
        t->uses = add(t->uses, bc->server_tool_default_uses);
    }
}

/* ---- anthropic-beta ---- */

static bool is_beta_name(const char *s, size_t len)
{
    if (len == 0 || len > BETA_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

static bool beta_allowed(const struct tg_bounds_config *bc, const char *name, size_t len)
{
    for (size_t i = 0; i < bc->n_allowed_betas; i++)
        if (strlen(bc->allowed_betas[i]) == len && memcmp(bc->allowed_betas[i], name, len) == 0)
            return true;
    return false;
}

/*
 * The header's comma-separated values, each trimmed, must all be allowed;
 * *forward gets them rejoined (NULL when there is none).
 */
static int check_betas(const struct tg_bounds_config *bc, const char *header,
                       struct tg_arena *arena, const char **forward, char *message, size_t size)
{
    *forward = NULL;
    if (header == NULL)
        return TG_OK;
    char *out = tg_arena_alloc(arena, strlen(header) + 1);
    if (out == NULL)
        return TG_ERROR;
    size_t used = 0;
    const char *p = header;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *next = p[len] == ',' ? p + len + 1 : p + len;
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            if (!is_beta_name(p, len)) {
                /* not echoed: it may be anything, of any length */
                snprintf(message, size, "anthropic-beta: a value is not a beta name");
                return TG_DECLINED;
            }
            if (!beta_allowed(bc, p, len)) {
                snprintf(message, size, "anthropic-beta: \"%.*s\" is not allowed by this gateway",
                         (int)len, p);
                return TG_DECLINED;
            }
            if (used > 0)
                out[used++] = ',';
            memcpy(out + used, p, len);
            used += len;
        }
        p = next;
    }
    out[used] = '\0';
    *forward = used > 0 ? out : NULL;
    return TG_OK;
}

/* ---- the bound ---- */

int tg_bound_request(const struct tg_config *config, const struct tg_model *model, json_t *doc,
                     size_t body_len, int64_t max_tokens, const char *beta_header,
                     struct tg_arena *arena, struct tg_bound *out, char *message,
                     size_t message_size)
{
    const struct tg_bounds_config *bc = &config->bounds;
    memset(out, 0, sizeof(*out));
    if (max_tokens > model->max_output_tokens) {
        /* Anthropic's own wording */
        snprintf(message, message_size,
                 "max_tokens: %" PRId64 " > %" PRId64
                 ", which is the maximum allowed number of output tokens for %s",
                 max_tokens, model->max_output_tokens, model->name);
        return TG_DECLINED;
    }
    int rc = check_betas(bc, beta_header, arena, &out->betas, message, message_size);
    if (rc != TG_OK)
        return rc;

    struct walk w = {0};
    walk(&w, json_object_get(doc, "system"));
    walk(&w, json_object_get(doc, "messages"));
    struct tools t = {0};
    count_tools(bc, model, doc, &t);

    int64_t context = model->max_input_tokens;
    int64_t document_max = bc->document_max_tokens > 0 ? bc->document_max_tokens : context;
    int64_t use_max = bc->server_tool_use_max_tokens > 0 ? bc->server_tool_use_max_tokens : context;
    /* the payloads are part of the body, so this never goes below zero */
    int64_t prompt = cap((int64_t)body_len - w.payload_bytes);
    prompt = add(prompt, mul(w.images, bc->image_max_tokens));
    prompt = add(prompt, mul(w.documents, document_max));
    prompt = add(prompt, t.extra_tokens);
    if (t.uses == 0) {
        out->input_tokens = min64(prompt, context);
    } else {
        int64_t step = add(add(prompt, mul(t.uses, use_max)), max_tokens);
        out->input_tokens = mul(add(t.uses, 1), min64(step, context));
    }
    out->server_tool_uses = t.uses;
    out->max_web_searches = t.web_searches;
    out->images = w.images;
    out->documents = w.documents;
    return TG_OK;
}

/* ---- the config section ---- */

static int bad(char *err, size_t size, const char *field, const char *problem)
{
    snprintf(err, size, "config: bounds.%s: %s", field, problem);
    return TG_ERROR;
}

static int get_tokens(json_t *section, const char *key, int64_t min, int64_t max, int64_t fallback,
                      int64_t *out, char *err, size_t size)
{
    json_t *v = json_object_get(section, key);
    *out = fallback;
    if (v == NULL)
        return TG_OK;
    if (!json_is_integer(v))
        return bad(err, size, key, "must be an integer");
    if (json_integer_value(v) < min || json_integer_value(v) > max) {
        char problem[96];
        snprintf(problem, sizeof(problem), "must be between %" PRId64 " and %" PRId64, min, max);
        return bad(err, size, key, problem);
    }
    *out = (int64_t)json_integer_value(v);
    return TG_OK;
}

static int load_betas(json_t *list, struct tg_bounds_config *out, char *err, size_t size)
{
    if (list == NULL)
        return TG_OK;
    if (!json_is_array(list) || json_array_size(list) > ALLOWED_BETAS_MAX)
        return bad(err, size, "allowed_betas", "must be an array of at most 256 beta names");
    out->allowed_betas = calloc(json_array_size(list) + 1, sizeof(*out->allowed_betas));
    if (out->allowed_betas == NULL)
        return bad(err, size, "allowed_betas", "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        char field[64];
        snprintf(field, sizeof(field), "allowed_betas[%zu]", i);
        const char *name = json_string_value(v);
        if (name == NULL)
            return bad(err, size, field, "must be a string");
        if (!is_beta_name(name, strlen(name))) {
            char problem[200];
            snprintf(problem, sizeof(problem),
                     "\"%.100s\" is not a beta name (1 to 100 letters, digits, '.', '_', '-')",
                     name);
            return bad(err, size, field, problem);
        }
        out->allowed_betas[out->n_allowed_betas] = strdup(name);
        if (out->allowed_betas[out->n_allowed_betas] == NULL)
            return bad(err, size, field, "out of memory");
        out->n_allowed_betas++;
    }
    return TG_OK;
}

int tg_bound_config_load(json_t *section, struct tg_bounds_config *out, char *err, size_t err_size)
{
    static const char *const known[] = {"allowed_betas",
                                        "image_max_tokens",
                                        "document_max_tokens",
                                        "tool_system_tokens",
                                        "builtin_tool_tokens",
                                        "server_tool_default_uses",
                                        "server_tool_use_max_tokens",
                                        NULL};
    memset(out, 0, sizeof(*out));
    if (section != NULL && !json_is_object(section)) {
        snprintf(err, err_size, "config: bounds: must be an object");
        return TG_ERROR;
    }
    int rc =
        section != NULL ? tg_config_check_fields(section, "bounds", known, err, err_size) : TG_OK;
    /* defaults: see README (Configuration) for where each comes from */
    if (rc == TG_OK)
        rc = get_tokens(section, "image_max_tokens", 1, 10000000, 2000, &out->image_max_tokens, err,
                        err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "document_max_tokens", 1, 100000000, 0, &out->document_max_tokens,
                        err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "tool_system_tokens", 0, 1000000, 1000, &out->tool_system_tokens,
                        err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "builtin_tool_tokens", 0, 1000000, 2000, &out->builtin_tool_tokens,
                        err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "server_tool_default_uses", 1, 1000, 10,
                        &out->server_tool_default_uses, err, err_size);
    if (rc == TG_OK)
        rc = get_tokens(section, "server_tool_use_max_tokens", 1, 100000000, 0,
                        &out->server_tool_use_max_tokens, err, err_size);
    if (rc == TG_OK)
        rc = load_betas(json_object_get(section, "allowed_betas"), out, err, err_size);
    if (rc != TG_OK)
        tg_bound_config_release(out);
    return rc;
}

void tg_bound_config_release(struct tg_bounds_config *bounds)
{
    for (size_t i = 0; i < bounds->n_allowed_betas; i++)
        free(bounds->allowed_betas[i]);
    free(bounds->allowed_betas);
    bounds->allowed_betas = NULL;
    bounds->n_allowed_betas = 0;
}

const char *tg_bound_context_beta(const struct tg_bounds_config *bounds)
{
    for (size_t i = 0; i < bounds->n_allowed_betas; i++)
        if (has_prefix(bounds->allowed_betas[i], "context-1m"))
            return bounds->allowed_betas[i];
    return NULL;
}
