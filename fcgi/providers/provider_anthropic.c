/*
 * provider_anthropic.c — Anthropic's Messages API as a backend.
 */
#include "provider_anthropic.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "pivot.h"
#include "jscan.h"
#include "jsafe.h"
#include "relay.h"
#include "trace.h"
#include "usage.h"

#define DEFAULT_ANTHROPIC_VERSION "2023-06-01"

void tg_anthropic_read_usage(const char *json_text, size_t len, struct tg_usage *usage)
{
    /* only the usage member is parsed: a long reply costs a scan, not a tree */
    const char *member;
    size_t member_len;
    if (tg_jscan_member(json_text, len, "usage", &member, &member_len) != TG_OK)
        return;
    json_t *doc = json_loadb(member, member_len, 0, NULL);
    tg_pivot_take_usage(doc, usage);
    json_decref(doc);
}

static void read_usage(struct tg_request *r, const char *body, size_t len)
{
    tg_anthropic_read_usage(body, len, &r->usage);
}

static int observe(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    /* only these say anything of usage or content: the rest is not parsed */
    if (strcmp(event, "content_block_delta") != 0 && strncmp(event, "message_", 8) != 0 &&
        strcmp(event, "error") != 0)
        return TG_OK;
    json_t *doc = json_loadb(data, len, 0, NULL);
    tg_pivot_observe(&x->meter, event, doc);
    json_decref(doc);
    return TG_OK;
}

/* URL and headers of a Messages call; x->body is set already. */
static int call_headers(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_provider *p = r->backend->provider;
    const char *version = tg_request_header(r, "anthropic-version");
    const char *tracestate = tg_request_header(r, "tracestate");
    x->url = tg_arena_printf(r->arena, "%s/v1/messages%s", p->base_url,
                             r->endpoint == TG_EP_COUNT_TOKENS ? "/count_tokens" : "");
    if (x->url == NULL || x->body == NULL)
        return TG_ERROR;
    int rc = tg_exchange_add_header(x, "x-api-key: %s", p->api_key);
    rc |= tg_exchange_add_header(x, "anthropic-version: %s",
                                 version != NULL ? version : DEFAULT_ANTHROPIC_VERSION);
    if (r->anthropic_beta != NULL) /* only values the config allows (bound.c) */
        rc |= tg_exchange_add_header(x, "anthropic-beta: %s", r->anthropic_beta);
    if (tracestate != NULL && r->trace.parent_id[0] != '\0' &&
        strlen(tracestate) <= TG_TRACESTATE_MAX)
        rc |= tg_exchange_add_header(x, "tracestate: %s", tracestate);
    rc |= tg_exchange_add_header(x, "accept: %s",
                                 r->stream ? "text/event-stream" : "application/json");
    return rc == TG_OK ? tg_exchange_add_common_headers(x) : TG_ERROR;
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

/* The translated path: the pivot is a Messages request already; only its model changes. */
static int encode(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    json_t *body = tg_jsafe_copy(pivot);
    if (body == NULL ||
        json_object_set_new(body, "model", json_string(r->backend->upstream_model)) != 0) {
        json_decref(body);
        return TG_ERROR;
    }
    if (tg_exchange_set_body(x, body) != TG_OK)
        return TG_ERROR;
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
    int rc = tg_relay_emit(x, event, doc);
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
