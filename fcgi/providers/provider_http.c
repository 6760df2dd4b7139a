/*
 * provider_http.c — a JSON HTTP backend, passed through.
 */
#include "provider_http.h"

#include <jansson.h>
#include <string.h>

#include "exchange.h"
#include "jscan.h"
#include "pivot.h"
#include "provider_openai.h"
#include "usage.h"

/* A usage object in Anthropic's shape (input_tokens) or OpenAI's (prompt_tokens). */
static void take_usage(json_t *usage, struct tg_usage *out)
{
    if (json_object_get(usage, "prompt_tokens") != NULL)
        tg_openai_take_usage(usage, out);
    else
        tg_pivot_take_usage(usage, out);
}

static void read_usage(struct tg_request *r, const char *body, size_t len)
{
    const char *member;
    size_t member_len;
    if (tg_jscan_member(body, len, "usage", &member, &member_len) != TG_OK)
        return;
    json_t *usage = json_loadb(member, member_len, 0, NULL);
    take_usage(usage, &r->usage);
    json_decref(usage);
}

/* A stream's events: any "usage" they carry (top level, or in a message), and their bytes. */
static int observe(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    (void)event;
    x->meter.text_bytes += (int64_t)len;
    json_t *doc = json_loadb(data, len, 0, NULL);
    json_t *usage = json_object_get(doc, "usage");
    if (!json_is_object(usage))
        usage = json_object_get(json_object_get(doc, "message"), "usage");
    if (json_is_object(usage)) {
        take_usage(usage, &x->r->usage);
        x->meter.final_usage = true;
    }
    json_decref(doc);
    return TG_OK;
}

static int prepare(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_provider *p = r->backend->provider;
    const char *query = tg_request_param(r, "QUERY_STRING");
    const char *type = tg_request_param(r, "CONTENT_TYPE");
    x->url =
        tg_arena_printf(r->arena, "%s%s%s%s", p->base_url, p->path != NULL ? p->path : r->path,
                        query != NULL && query[0] != '\0' ? "?" : "", query != NULL ? query : "");
    x->body = r->body;
    x->body_len = r->body_len;
    x->relay_mode = TG_RELAY_RAW;
    if (x->url == NULL)
        return TG_ERROR;
    int rc = TG_OK;
    if (p->api_key != NULL)
        rc |= tg_exchange_add_header(x, "authorization: Bearer %s", p->api_key);
    rc |= tg_exchange_add_header(x, "content-type: %s",
                                 type != NULL && type[0] != '\0' ? type : "application/json");
    rc |= tg_exchange_add_header(x, "accept: %s",
                                 r->stream ? "text/event-stream" : "application/json");
    rc |= tg_exchange_add_header(x, "traceparent: %s", r->trace.traceparent);
    rc |= tg_exchange_add_header(x, "user-agent: tollgate/" PACKAGE_VERSION);
    rc |= tg_exchange_add_header(x, "expect:");
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

/* The client speaks the backend's own API: its error bodies pass as they are. */
static bool any_error_body(const char *body, size_t len)
{
    (void)body, (void)len;
    return true;
}

const struct tg_provider_ops tg_provider_http = {
    .name = "http",
    .native = TG_DIALECT_HTTP,
    .prepare = prepare,
    .read_usage = read_usage,
    .observe = observe,
    .is_error_body = any_error_body,
};
