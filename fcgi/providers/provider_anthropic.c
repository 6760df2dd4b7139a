/*
 * provider_anthropic.c — Anthropic's Messages API as a backend.
 */
#include "provider_anthropic.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "jscan.h"
#include "trace.h"
#include "usage.h"

#define DEFAULT_ANTHROPIC_VERSION "2023-06-01"

void tg_anthropic_take_usage(json_t *usage, struct tg_usage *out)
{
    if (!json_is_object(usage))
        return;
    json_t *v;
    /* message_delta repeats only what changed: keep earlier values otherwise */
    if (json_is_integer(v = json_object_get(usage, "input_tokens")))
        out->input_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "output_tokens")))
        out->output_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "cache_read_input_tokens")))
        out->cache_read_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "cache_creation_input_tokens")))
        out->cache_write_tokens = json_integer_value(v);
    /* the part of the cache writes billed at the 1-hour rate, and server tools' uses */
    json_t *creation = json_object_get(usage, "cache_creation");
    if (json_is_integer(v = json_object_get(creation, "ephemeral_1h_input_tokens")))
        out->cache_write_1h_tokens = json_integer_value(v);
    json_t *server_tools = json_object_get(usage, "server_tool_use");
    if (json_is_integer(v = json_object_get(server_tools, "web_search_requests")))
        out->web_search_requests = json_integer_value(v);
}

void tg_anthropic_read_usage(const char *json_text, size_t len, struct tg_usage *usage)
{
    /* only the usage member is parsed: a long reply costs a scan, not a tree */
    const char *member;
    size_t member_len;
    if (tg_jscan_member(json_text, len, "usage", &member, &member_len) != TG_OK)
        return;
    json_t *doc = json_loadb(member, member_len, 0, NULL);
    tg_anthropic_take_usage(doc, usage);
    json_decref(doc);
}

static void read_usage(struct tg_request *r, const char *body, size_t len)
{
    tg_anthropic_read_usage(body, len, &r->usage);
}

/* Bytes of content a content_block_delta carries: every token is at least one byte of it. */
static int64_t delta_bytes(json_t *doc)
{
    json_t *delta = json_object_get(doc, "delta");
    static const char *const fields[] = {"text", "partial_json", "thinking", "signature"};
    int64_t n = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(fields); i++)
        n += (int64_t)json_string_length(json_object_get(delta, fields[i]));
    return n;
}

static bool counted(const char *event)
{
    return strcmp(event, "content_block_delta") == 0 || strcmp(event, "message_start") == 0 ||
           strcmp(event, "message_delta") == 0;
}

static int observe(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    if (strcmp(event, "error") == 0)
        x->stream_error = true;
    if (!counted(event))
        return TG_OK;
    json_t *doc = json_loadb(data, len, 0, NULL);
    tg_anthropic_observe(x, event, doc);
    json_decref(doc);
    return TG_OK;
}

void tg_anthropic_observe(struct tg_exchange *x, const char *event, json_t *doc)
{
    struct tg_usage *usage = &x->r->usage;
    bool delta = strcmp(event, "content_block_delta") == 0;
    bool start = strcmp(event, "message_start") == 0;
    if (strcmp(event, "error") == 0)
        x->stream_error = true;
    if (!counted(event))
        return;
    if (delta) {
        x->text_bytes += delta_bytes(doc);
    } else if (start) {
        tg_anthropic_take_usage(json_object_get(json_object_get(doc, "message"), "usage"), usage);
    } else {
        json_t *delta_usage = json_object_get(doc, "usage");
        tg_anthropic_take_usage(delta_usage, usage);
        x->final_usage = x->final_usage || json_is_object(delta_usage);
    }
}

/* URL and headers of a Messages call; x->body is set already. */
static int call_headers(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_provider *p = r->backend->provider;
    const char *version = tg_request_header(r, "anthropic-version");
    const char *tracestate = tg_request_header(r, "tracestate");
    x->url = tg_arena_printf(r->arena, "%s/v1/messages", p->base_url);
    if (x->url == NULL || x->body == NULL)
        return TG_ERROR;
    int rc = tg_exchange_add_header(x, "x-api-key: %s", p->api_key);
    rc |= tg_exchange_add_header(x, "anthropic-version: %s",
                                 version != NULL ? version : DEFAULT_ANTHROPIC_VERSION);
    if (r->anthropic_beta != NULL) /* only values the config allows (bound.c) */
        rc |= tg_exchange_add_header(x, "anthropic-beta: %s", r->anthropic_beta);
    rc |= tg_exchange_add_header(x, "traceparent: %s", r->trace.traceparent);
    if (tracestate != NULL && r->trace.parent_id[0] != '\0' &&
        strlen(tracestate) <= TG_TRACESTATE_MAX)
        rc |= tg_exchange_add_header(x, "tracestate: %s", tracestate);
    rc |= tg_exchange_add_header(x, "content-type: application/json");
    rc |= tg_exchange_add_header(x, "accept: %s",
                                 r->stream ? "text/event-stream" : "application/json");
    rc |= tg_exchange_add_header(x, "user-agent: tollgate/" PACKAGE_VERSION);
    rc |= tg_exchange_add_header(x, "expect:");
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

/* An Anthropic error body: {"type":"error","error":{"type":...,"message":...}}. */
static bool is_error_body(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *error = json_object_get(doc, "error");
    bool ok = json_is_object(doc) && json_is_string(json_object_get(error, "type")) &&
              json_is_string(json_object_get(error, "message"));
    json_decref(doc);
    return ok;
}

static int prepare(struct tg_request *r, struct tg_exchange *x)
{
    x->body = tg_provider_same_dialect_body(r, &x->body_len);
    x->relay_mode = TG_RELAY_RAW;
    return call_headers(r, x);
}

static void free_text(void *text)
{
    free(text);
}

/* The translated path: the pivot is a Messages request already; only its model changes. */
static int encode(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    json_t *body = json_copy(pivot);
    if (body == NULL ||
        json_object_set_new(body, "model", json_string(r->backend->upstream_model)) != 0) {
        json_decref(body);
        return TG_ERROR;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free_text, text) != TG_OK) {
        free(text);
        return TG_ERROR;
    }
    x->body = text;
    x->body_len = strlen(text);
    x->relay_mode = TG_RELAY_EVENTS;
    return call_headers(r, x);
}

static int decode_reply(struct tg_exchange *x, json_t **pivot_reply)
{
    *pivot_reply = json_loadb(x->reply, x->reply_len, 0, NULL);
    return json_is_object(*pivot_reply) ? TG_OK : TG_ERROR;
}

static int decode_event(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    if (strcmp(event, "ping") == 0)
        return TG_OK;
    json_t *doc = json_loadb(data, len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return TG_ERROR;
    }
    int rc = tg_exchange_emit(x, event, doc);
    json_decref(doc);
    return rc;
}

static void decode_end(struct tg_exchange *x)
{
    (void)x; /* Anthropic's stream ends itself with message_stop */
}

const struct tg_provider_ops tg_provider_anthropic = {
    .name = "anthropic",
    .native = TG_DIALECT_ANTHROPIC,
    .prepare = prepare,
    .read_usage = read_usage,
    .observe = observe,
    .is_error_body = is_error_body,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_event = decode_event,
    .decode_end = decode_end,
};
