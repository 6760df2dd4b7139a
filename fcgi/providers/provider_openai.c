/*
 * provider_openai.c — OpenAI and Azure OpenAI as backends.
 */
#include "provider_openai.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "jscan.h"
#include "relay.h"
#include "trace.h"
#include "translate_openai_backend.h"
#include "translate_openai_stream.h"
#include "usage.h"

static int64_t int_member(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

void tg_openai_take_usage(json_t *usage, struct tg_usage *out)
{
    if (!json_is_object(usage))
        return;
    int64_t prompt = int_member(usage, "prompt_tokens");
    int64_t cached = int_member(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    if (cached > prompt)
        cached = prompt;
    out->input_tokens = prompt - cached;
    out->cache_read_tokens = cached;
    out->output_tokens = int_member(usage, "completion_tokens"); /* reasoning included */
}

static void read_usage(struct tg_request *r, const char *body, size_t len)
{
    const char *member;
    size_t member_len;
    if (tg_jscan_member(body, len, "usage", &member, &member_len) != TG_OK)
        return;
    json_t *usage = json_loadb(member, member_len, 0, NULL);
    tg_openai_take_usage(usage, &r->usage);
    json_decref(usage);
}

/* Content bytes a chunk carries: text, refusals, reasoning and tool-call arguments. */
static int64_t chunk_bytes(json_t *choices)
{
    int64_t n = 0;
    size_t i, j;
    json_t *choice, *call;
    json_array_foreach(choices, i, choice) {
        json_t *delta = json_object_get(choice, "delta");
        n += (int64_t)json_string_length(json_object_get(delta, "content"));
        n += (int64_t)json_string_length(json_object_get(delta, "refusal"));
        n += (int64_t)json_string_length(json_object_get(delta, "reasoning_content"));
        json_array_foreach(json_object_get(delta, "tool_calls"), j, call) {
            json_t *function = json_object_get(call, "function");
            n += (int64_t)json_string_length(json_object_get(function, "arguments"));
        }
    }
    return n;
}

static int observe(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    (void)event; /* OpenAI's streams are data lines only */
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
        return TG_OK;
    json_t *chunk = json_loadb(data, len, 0, NULL);
    if (chunk == NULL)
        return TG_OK;
    int keep = TG_OK;
    json_t *choices = json_object_get(chunk, "choices");
    x->meter.text_bytes += chunk_bytes(choices);
    tg_pivot_note_model(&x->meter, json_string_value(json_object_get(chunk, "model")));
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice) /* the trace's: each choice's, as it ends */
        tg_pivot_note_reason(&x->meter,
                             json_string_value(json_object_get(choice, "finish_reason")));
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        tg_openai_take_usage(usage, &x->r->usage);
        x->meter.final_usage = true;
        /* the usage chunk this client did not ask for */
        if (x->usage_injected && json_array_size(choices) == 0)
            keep = TG_DECLINED;
    }
    if (json_object_get(chunk, "error") != NULL)
        x->meter.stream_error = true;
    json_decref(chunk);
    return keep;
}

/* Did the client ask for the stream's usage chunk itself? */
static bool client_wants_usage(struct tg_request *r)
{
    json_t *options = json_object_get(r->doc, "stream_options");
    return json_is_true(json_object_get(options, "include_usage"));
}

/* The body to send: the client's, with include_usage added to a stream that lacks it. */
static int body_for(struct tg_request *r, struct tg_exchange *x)
{
    if (!r->stream || r->endpoint != TG_EP_CHAT_COMPLETIONS || client_wants_usage(r)) {
        x->body = tg_provider_same_dialect_body(r, &x->body_len);
        x->relay_mode = TG_RELAY_RAW;
        return x->body != NULL ? TG_OK : TG_ERROR;
    }
    json_t *options = json_object_get(r->doc, "stream_options");
    if (!json_is_object(options)) {
        options = json_object();
        if (json_object_set_new(r->doc, "stream_options", options) != 0)
            return TG_ERROR;
    }
    if (json_object_set_new(options, "include_usage", json_true()) != 0 ||
        json_object_set_new(r->doc, "model", json_string(r->backend->upstream_model)) != 0)
        return TG_ERROR;
    if (tg_exchange_set_body(x, json_incref(r->doc)) != TG_OK)
        return TG_ERROR;
    x->relay_mode = TG_RELAY_EVENTS;
    x->usage_injected = true;
    return TG_OK;
}

static const char *endpoint_path(const struct tg_request *r)
{
    return r->endpoint == TG_EP_EMBEDDINGS ? "embeddings" : "chat/completions";
}

static int common_headers(struct tg_request *r, struct tg_exchange *x)
{
    if (tg_exchange_add_header(x, "accept: %s",
                               r->stream ? "text/event-stream" : "application/json") != TG_OK)
        return TG_ERROR;
    return tg_exchange_add_common_headers(x);
}

static int prepare_openai(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_provider *p = r->backend->provider;
    x->url = tg_arena_printf(r->arena, "%s/v1/%s", p->base_url, endpoint_path(r));
    if (x->url == NULL || body_for(r, x) != TG_OK)
        return TG_ERROR;
    if (p->api_key != NULL && tg_exchange_add_header(x, "authorization: Bearer %s", p->api_key))
        return TG_ERROR;
    return common_headers(r, x);
}

static int prepare_azure(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_provider *p = r->backend->provider;
    /* the deployment is the backend's model name; it comes from the config only */
    x->url = tg_arena_printf(r->arena, "%s/openai/deployments/%s/%s?api-version=%s", p->base_url,
                             r->backend->upstream_model, endpoint_path(r), p->api_version);
    if (x->url == NULL || body_for(r, x) != TG_OK)
        return TG_ERROR;
    if (tg_exchange_add_header(x, "api-key: %s", p->api_key) != TG_OK)
        return TG_ERROR;
    return common_headers(r, x);
}

/* ---- the translated path: an Anthropic client on an OpenAI backend ---- */

struct reader {
    struct tg_translate_openai_reader reader;
    bool done;
};

static void release_reader(void *d)
{
    tg_translate_openai_reader_release(&((struct reader *)d)->reader);
}

static int encode_body(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    char message[256];
    json_t *chat = NULL;
    int rc = tg_translate_pivot_request_to_openai(pivot, r->backend->upstream_model, &chat, message,
                                                  sizeof(message));
    if (rc != TG_OK) {
        json_decref(chat);
        tg_request_fail(r, 400, "invalid_request_error", message, NULL);
        return rc == TG_DECLINED ? TG_DECLINED : TG_ERROR;
    }
    return tg_exchange_set_body(x, chat);
}

static int encode(struct tg_request *r, struct tg_exchange *x, json_t *pivot)
{
    const struct tg_provider *p = r->backend->provider;
    int rc = encode_body(r, x, pivot);
    if (rc != TG_OK)
        return rc;
    struct reader *d = tg_arena_calloc(r->arena, sizeof(*d));
    if (d == NULL ||
        tg_translate_openai_reader_init(&d->reader, r->model->name, tg_relay_emit, x) != TG_OK)
        return TG_ERROR;
    if (tg_arena_cleanup_add(r->arena, release_reader, d) != TG_OK) {
        tg_translate_openai_reader_release(&d->reader);
        return TG_ERROR;
    }
    x->decoder = d;
    x->relay_mode = TG_RELAY_EVENTS;
    if (p->type == TG_PROVIDER_AZURE_OPENAI) {
        x->url =
            tg_arena_printf(r->arena, "%s/openai/deployments/%s/chat/completions?api-version=%s",
                            p->base_url, r->backend->upstream_model, p->api_version);
        rc = tg_exchange_add_header(x, "api-key: %s", p->api_key);
    } else {
        x->url = tg_arena_printf(r->arena, "%s/v1/chat/completions", p->base_url);
        if (p->api_key != NULL)
            rc = tg_exchange_add_header(x, "authorization: Bearer %s", p->api_key);
    }
    if (x->url == NULL || rc != TG_OK)
        return TG_ERROR;
    return common_headers(r, x);
}

static int decode_reply(struct tg_exchange *x, json_t **pivot_reply)
{
    char message[256];
    json_t *chat = json_loadb(x->reply, x->reply_len, 0, NULL);
    tg_pivot_note_model(&x->meter, json_string_value(json_object_get(chat, "model")));
    int rc = chat != NULL ? tg_translate_openai_reply_to_pivot(chat, x->r->model->name, pivot_reply,
                                                               message, sizeof(message))
                          : TG_ERROR;
    json_decref(chat);
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

static int decode_event(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    (void)event;
    struct reader *d = x->decoder;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        d->done = true;
        return tg_translate_openai_reader_done(&d->reader);
    }
    json_t *chunk = json_loadb(data, len, 0, NULL);
    if (chunk == NULL)
        return TG_ERROR;
    /* the trace's model is the provider's, noted before the pivot names the gateway's */
    tg_pivot_note_model(&x->meter, json_string_value(json_object_get(chunk, "model")));
    int rc = tg_translate_openai_reader_feed(&d->reader, chunk);
    json_decref(chunk);
    return rc;
}

static void decode_end(struct tg_exchange *x)
{
    struct reader *d = x->decoder;
    if (!d->done)
        tg_translate_openai_reader_done(&d->reader);
    d->done = true;
}

/* An OpenAI error body: {"error":{"message":...}}. */
static bool is_error_body(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    bool ok = json_is_string(json_object_get(json_object_get(doc, "error"), "message"));
    json_decref(doc);
    return ok;
}

const struct tg_provider_ops tg_provider_openai = {
    .name = "openai",
    .native = TG_DIALECT_OPENAI,
    .prepare = prepare_openai,
    .read_usage = read_usage,
    .observe = observe,
    .is_error_body = is_error_body,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_event = decode_event,
    .decode_end = decode_end,
};

const struct tg_provider_ops tg_provider_azure_openai = {
    .name = "azure_openai",
    .native = TG_DIALECT_OPENAI,
    .prepare = prepare_azure,
    .read_usage = read_usage,
    .observe = observe,
    .is_error_body = is_error_body,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_event = decode_event,
    .decode_end = decode_end,
};
