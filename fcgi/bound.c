/*
 * bound.c — the request's true upper bound (the rule is in bound.h), and the
 * max_tokens and anthropic-beta checks. The "bounds" section is bound_config.c's.
 */
#include "bound.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"

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
            if (!tg_bound_config_is_beta_name(p, len)) {
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
