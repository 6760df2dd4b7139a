/*
 * provider_anthropic.c — Anthropic's Messages API in and out.
 */
#include "provider_anthropic.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bound.h"
#include "journal.h"
#include "jscan.h"
#include "log.h"
#include "quota.h"
#include "request.h"
#include "upstream.h"

#define DEFAULT_ANTHROPIC_VERSION "2023-06-01"
#define MAX_SSE_EVENT_BYTES (1024 * 1024)

static void free_json(void *doc)
{
    json_decref(doc);
}

static int invalid(struct tg_request *r, const char *message)
{
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

/* The checks and the upper bound that the reservation needs (bound.c). */
static int bound_request(struct tg_request *r, json_t *doc)
{
    struct tg_bound bound;
    char message[256];
    int rc = tg_bound_request(r->config, r->model, doc, r->body_len, r->max_tokens,
                              tg_request_header(r, "anthropic-beta"), r->arena, &bound, message,
                              sizeof(message));
    if (rc == TG_DECLINED)
        return invalid(r, message);
    if (rc != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory bounding a request");
        return TG_ERROR;
    }
    r->input_bound_tokens = bound.input_tokens;
    r->max_web_searches = bound.max_web_searches;
    r->anthropic_beta = bound.betas;
    return TG_OK;
}

int tg_anthropic_parse_request(struct tg_request *r)
{
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->body_len, 0, &jerr);
    if (doc == NULL) {
        tg_request_fail(r, 400, "invalid_request_error", "request body is not valid JSON",
                        "json: line %d: %s", jerr.line, jerr.text);
        return TG_ERROR;
    }
    if (tg_arena_cleanup_add(r->arena, free_json, doc) != TG_OK)
        return invalid(r, "out of memory");
    if (!json_is_object(doc))
        return invalid(r, "request body must be a JSON object");

    json_t *model = json_object_get(doc, "model");
    if (model == NULL)
        return invalid(r, "model: Field required");
    if (!json_is_string(model))
        return invalid(r, "model: Input should be a valid string");
    json_t *messages = json_object_get(doc, "messages");
    if (messages == NULL)
        return invalid(r, "messages: Field required");
    if (!json_is_array(messages))
        return invalid(r, "messages: Input should be a valid list");
    json_t *max_tokens = json_object_get(doc, "max_tokens");
    if (max_tokens == NULL)
        return invalid(r, "max_tokens: Field required");
    if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1)
        return invalid(r, "max_tokens: Input should be a positive integer");
    r->max_tokens = json_integer_value(max_tokens);
    json_t *stream = json_object_get(doc, "stream");
    if (stream != NULL && !json_is_boolean(stream))
        return invalid(r, "stream: Input should be a valid boolean");
    r->stream = json_is_true(stream);

    r->model = tg_config_find_model(r->config, json_string_value(model));
    if (r->model == NULL) {
        char message[200];
        /* the name is the client's own input; quote at most 100 bytes of it */
        snprintf(message, sizeof(message), "model: %.100s", json_string_value(model));
        tg_request_fail(r, 404, "not_found_error", message, NULL);
        return TG_ERROR;
    }
    return bound_request(r, doc);
}

/* ---- usage ---- */

static void take_usage(json_t *usage, struct tg_usage *out)
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
    take_usage(doc, usage);
    json_decref(doc);
}

/* ---- the call ---- */

struct relay {
    struct tg_request *r;
    struct tg_anthropic_reply *reply;
    bool too_big;
    bool stream_error;     /* the provider sent an "error" event mid-stream */
    bool final_usage;      /* a message_delta carried the final usage */
    bool drain_cut;        /* the drain after the client left hit its byte cap */
    int64_t abort_at_ms;   /* set when the client left: the drain's deadline */
    size_t drained_bytes;  /* read from the provider after the client left */
    int64_t text_bytes;    /* content streamed so far (text, JSON, thinking), in bytes */
    int64_t journaled_out; /* the output estimate last written to the journal */
    int64_t checked_at_ms; /* when on_wait last looked for the client */
};

/* Bytes of content a content_block_delta carries: every token is at least one byte of it. */
static int64_t delta_bytes(const char *data, size_t len)
{
    json_t *doc = json_loadb(data, len, 0, NULL);
    json_t *delta = json_object_get(doc, "delta");
    static const char *const fields[] = {"text", "partial_json", "thinking", "signature"};
    int64_t n = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(fields); i++)
        n += (int64_t)json_string_length(json_object_get(delta, fields[i]));
    json_decref(doc);
    return n;
}

static int on_sse_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct relay *relay = ctx;
    struct tg_usage *usage = &relay->r->usage;
    if (strcmp(event, "content_block_delta") == 0) {
        relay->text_bytes += delta_bytes(data, len);
    } else if (strcmp(event, "message_start") == 0) {
        json_t *doc = json_loadb(data, len, 0, NULL);
        take_usage(json_object_get(json_object_get(doc, "message"), "usage"), usage);
        json_decref(doc);
    } else if (strcmp(event, "message_delta") == 0) {
        json_t *doc = json_loadb(data, len, 0, NULL);
        json_t *delta_usage = json_object_get(doc, "usage");
        take_usage(delta_usage, usage);
        relay->final_usage = relay->final_usage || json_is_object(delta_usage);
        json_decref(doc);
    } else if (strcmp(event, "error") == 0) {
        relay->stream_error = true;
    }
    return TG_OK;
}

/* What the stream has delivered so far, as output tokens: never less than the provider said. */
static int64_t output_estimate(const struct relay *relay)
{
    int64_t reported = relay->r->usage.output_tokens;
    return relay->text_bytes > reported ? relay->text_bytes : reported;
}

static int on_header(void *ctx, const char *name, const char *value)
{
    struct relay *relay = ctx;
    struct tg_anthropic_reply *reply = relay->reply;
    struct tg_arena *arena = relay->r->arena;
    if (strcmp(name, "content-type") == 0)
        reply->content_type = tg_arena_strdup(arena, value);
    else if (strcmp(name, "retry-after") == 0)
        reply->retry_after = tg_arena_strdup(arena, value);
    else if (strcmp(name, "request-id") == 0)
        reply->provider_request_id = tg_arena_strdup(arena, value);
    return TG_OK;
}

static bool is_event_stream(const char *content_type)
{
    return content_type != NULL && strncmp(content_type, "text/event-stream", 17) == 0;
}

static int start_stream(struct tg_request *r, struct tg_anthropic_reply *reply)
{
    reply->streaming = true;
    r->t_first_byte_ms = tg_now_ms(); /* the first chunk is relayed next (metrics' TTFT) */
    r->status = 200;
    tg_request_add_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    tg_request_add_header(r, "Cache-Control", "no-cache");
    tg_request_add_header(r, "X-Accel-Buffering", "no");
    if (reply->provider_request_id != NULL)
        tg_request_add_header(r, "request-id", reply->provider_request_id);
    return tg_request_send_headers(r);
}

static int buffer_body(struct relay *relay, const char *data, size_t len)
{
    struct tg_anthropic_reply *reply = relay->reply;
    size_t cap = relay->r->config->max_response_bytes;
    if (reply->body_len + len > cap) {
        relay->too_big = true;
        return TG_ERROR;
    }
    if (reply->body_len + len + 1 > reply->body_cap) {
        size_t grown = reply->body_cap == 0 ? 16384 : reply->body_cap * 2;
        while (grown < reply->body_len + len + 1)
            grown *= 2;
        char *fresh = tg_arena_alloc(relay->r->arena, grown);
        if (fresh == NULL)
            return TG_ERROR;
        if (reply->body_len > 0)
            memcpy(fresh, reply->body, reply->body_len);
        reply->body = fresh;
        reply->body_cap = grown;
    }
    memcpy(reply->body + reply->body_len, data, len);
    reply->body_len += len;
    reply->body[reply->body_len] = '\0';
    return TG_OK;
}

/*
 * The client left mid-stream: stop relaying but keep reading the provider's
 * stream for its final usage, up to server.drain_timeout_ms and drain_max_bytes.
 */
static void client_left(struct relay *relay)
{
    struct tg_request *r = relay->r;
    if (relay->abort_at_ms != 0)
        return;
    r->client_gone = true;
    r->outcome = "client_disconnected";
    relay->abort_at_ms =
        tg_now_ms() +
        (r->config->drain_timeout_ms > 0 ? r->config->drain_timeout_ms : 1); /* 0: no drain */
}

/* While the provider is silent: has the client gone meanwhile? (at most every 200 ms) */
static void on_wait(void *ctx)
{
    struct relay *relay = ctx;
    if (!relay->reply->streaming || relay->abort_at_ms != 0)
        return;
    int64_t now = tg_now_ms();
    if (now - relay->checked_at_ms < 200)
        return;
    relay->checked_at_ms = now;
    if (tg_request_client_left(relay->r))
        client_left(relay);
}

static int relay_chunk(struct relay *relay, const char *data, size_t len)
{
    struct tg_request *r = relay->r;
    /* parse first: usage must be counted even if the client is gone */
    if (tg_sse_feed(&relay->reply->sse, data, len) != TG_OK)
        tg_log_warn(r->request_id, "could not parse the provider's event stream");
    if (relay->abort_at_ms != 0) {
        relay->drained_bytes += len;
        if (relay->drained_bytes > r->config->drain_max_bytes) {
            relay->drain_cut = true;
            return TG_ERROR;
        }
        return TG_OK;
    }
    /* what the client is about to receive is on record before it does (worker_lost) */
    int64_t estimate = output_estimate(relay);
    if (estimate > relay->journaled_out) {
        tg_journal_progress(r, estimate);
        relay->journaled_out = estimate;
    }
    if (tg_request_write(r, data, len) != TG_OK || tg_request_flush(r) != TG_OK)
        client_left(relay);
    return TG_OK;
}

static int on_body(void *ctx, long status, const char *data, size_t len)
{
    struct relay *relay = ctx;
    struct tg_request *r = relay->r;
    struct tg_anthropic_reply *reply = relay->reply;
    r->upstream_contacted = true;
    if (!reply->streaming && r->stream && status == 200 && is_event_stream(reply->content_type)) {
        if (start_stream(r, reply) != TG_OK)
            client_left(relay);
    }
    if (!reply->streaming)
        return buffer_body(relay, data, len);
    return relay_chunk(relay, data, len);
}

static const char **build_headers(struct tg_request *r, size_t *n)
{
    const struct tg_provider *p = r->model->provider;
    const char **h = tg_arena_calloc(r->arena, sizeof(char *) * 10);
    if (h == NULL)
        return NULL;
    const char *version = tg_request_header(r, "anthropic-version");
    const char *beta = r->anthropic_beta; /* only values the config allows (bound.c) */
    size_t i = 0;
    h[i++] = tg_arena_printf(r->arena, "x-api-key: %s", p->api_key);
    h[i++] = tg_arena_printf(r->arena, "anthropic-version: %s",
                             version != NULL ? version : DEFAULT_ANTHROPIC_VERSION);
    if (beta != NULL)
        h[i++] = tg_arena_printf(r->arena, "anthropic-beta: %s", beta);
    h[i++] = tg_arena_printf(r->arena, "traceparent: %s", r->trace.traceparent);
    const char *tracestate = tg_request_header(r, "tracestate");
    if (tracestate != NULL && r->trace.parent_id[0] != '\0' &&
        strlen(tracestate) <= TG_TRACESTATE_MAX)
        h[i++] = tg_arena_printf(r->arena, "tracestate: %s", tracestate);
    h[i++] = "content-type: application/json";
    h[i++] = r->stream ? "accept: text/event-stream" : "accept: application/json";
    h[i++] = "user-agent: tollgate/" PACKAGE_VERSION;
    h[i++] = "expect:";
    for (size_t k = 0; k < i; k++)
        if (h[k] == NULL || strpbrk(h[k], "\r\n") != NULL)
            return NULL; /* a header that could split the request is never sent */
    *n = i;
    return h;
}

/*
 * A stream that ended without its final usage (cut by the drain's bounds, a
 * timeout, a broken connection) is billed on what it delivered: never less
 * than the text streamed, and never less than the provider said so far.
 */
static void settle_stream_usage(struct tg_request *r, const struct relay *relay)
{
    if (relay->final_usage)
        return;
    r->usage.output_tokens = output_estimate(relay);
    if (r->usage.input_tokens == 0) /* no message_start either: the input's bound */
        r->usage.input_tokens = tg_quota_estimate_input(r);
    r->usage_source = "estimated";
}

static void release_sse(void *parser)
{
    tg_sse_parser_release(parser);
}

static int fail_transport(struct tg_request *r, enum tg_upstream_result result,
                          const struct tg_upstream_call *call, const struct relay *relay)
{
    const char *provider = r->model->provider->name;
    char message[160];
    if (relay->abort_at_ms != 0) {
        r->outcome = "client_disconnected";
        return TG_ERROR; /* nobody is left to answer */
    }
    if (relay->too_big) {
        r->outcome = "upstream_error";
        snprintf(message, sizeof(message), "response from provider \"%s\" is too large", provider);
        tg_request_fail(r, 502, "api_error", message, "reply exceeds server.max_response_bytes");
        return TG_ERROR;
    }
    if (result == TG_UPSTREAM_TIMEOUT) {
        r->outcome = "upstream_timeout";
        snprintf(message, sizeof(message), "provider \"%s\" did not answer in time", provider);
        tg_request_fail(r, 504, "api_error", message, "%s", call->error);
        return TG_ERROR;
    }
    r->outcome = result == TG_UPSTREAM_UNREACHABLE ? "upstream_unreachable" : "upstream_error";
    snprintf(message, sizeof(message), "could not reach provider \"%s\"", provider);
    tg_request_fail(r, 502, "api_error", message, "%s", call->error);
    return TG_ERROR;
}

int tg_anthropic_forward(struct tg_request *r, struct tg_anthropic_reply *reply)
{
    const struct tg_provider *p = r->model->provider;
    memset(reply, 0, sizeof(*reply));
    struct relay relay = {.r = r, .reply = reply};
    tg_sse_parser_init(&reply->sse, MAX_SSE_EVENT_BYTES, on_sse_event, &relay);
    if (tg_arena_cleanup_add(r->arena, release_sse, &reply->sse) != TG_OK)
        return TG_ERROR;

    struct tg_upstream_call call = {
        .url = tg_arena_printf(r->arena, "%s/v1/messages", p->base_url),
        .body = r->body,
        .body_len = r->body_len,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = p->timeout_ms,
        .on_header = on_header,
        .on_body = on_body,
        .ctx = &relay,
    };
    call.headers = build_headers(r, &call.n_headers);
    if (call.url == NULL || call.headers == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "could not build the request");
        return TG_ERROR;
    }
    call.abort_at_ms = &relay.abort_at_ms;
    call.on_wait = on_wait;
    enum tg_upstream_result result = tg_upstream_perform(r->upstream, &call);
    r->upstream_ms = call.elapsed_ms;
    reply->status = call.status;
    if (call.status > 0)
        r->upstream_contacted = true;
    if (reply->streaming) {
        tg_sse_feed(&reply->sse, "\n\n", 2); /* dispatch an unterminated last event */
        settle_stream_usage(r, &relay);
    }
    if (result != TG_UPSTREAM_OK)
        return fail_transport(r, result, &call, &relay);
    if (reply->streaming) {
        if (relay.stream_error && relay.abort_at_ms == 0)
            r->outcome = "upstream_error";
        return TG_OK;
    }
    if (reply->status == 200)
        tg_anthropic_read_usage(reply->body, reply->body_len, &r->usage);
    else
        r->outcome = "upstream_error";
    return TG_OK;
}

/* A provider error body that is not Anthropic-shaped is replaced by one that is. */
static bool is_anthropic_error(const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *error = json_object_get(doc, "error");
    bool ok = json_is_object(doc) && json_is_string(json_object_get(error, "type")) &&
              json_is_string(json_object_get(error, "message"));
    json_decref(doc);
    return ok;
}

int tg_anthropic_respond(struct tg_request *r, struct tg_anthropic_reply *reply)
{
    if (reply->streaming)
        return TG_OK; /* already sent as it arrived */
    int status = (int)reply->status;
    if (status >= 400 &&
        (reply->body == NULL || !is_anthropic_error(reply->body, reply->body_len))) {
        char message[160];
        snprintf(message, sizeof(message), "provider \"%s\" answered HTTP %d",
                 r->model->provider->name, status);
        tg_request_fail(r, status, NULL, message, NULL);
        if (reply->retry_after != NULL)
            tg_request_add_header(r, "retry-after", reply->retry_after);
        tg_request_send_error(r);
        return TG_OK;
    }
    if (reply->retry_after != NULL)
        tg_request_add_header(r, "retry-after", reply->retry_after);
    if (reply->provider_request_id != NULL)
        tg_request_add_header(r, "request-id", reply->provider_request_id);
    const char *type = reply->content_type != NULL ? reply->content_type : "application/json";
    return tg_request_respond(r, status, type, reply->body != NULL ? reply->body : "",
                              reply->body_len);
}
