/*
 * exchange.c — one backend call and its reply, for every dialect and provider.
 */
#include "exchange.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balancer.h"
#include "crypto.h"
#include "guardrail.h"
#include "enrich.h"
#include "jsafe.h"
#include "journal.h"
#include "log.h"
#include "otel.h"
#include "otel_span.h"
#include "provider.h"
#include "registry.h"
#include "translate_openai.h"
#include "translate_openai_reply.h"
#include "translate_openai_stream.h"
#include "quota.h"
#include "request.h"
#include "upstream.h"

#define MAX_SSE_EVENT_BYTES (1024 * 1024)
#define MAX_CALL_HEADERS 32 /* the provider's own (at most 12) and enrich's 16 */

int tg_exchange_add_header(struct tg_exchange *x, const char *fmt, ...)
{
    if (x->headers == NULL) {
        x->headers = tg_arena_calloc(x->r->arena, sizeof(char *) * MAX_CALL_HEADERS);
        if (x->headers == NULL)
            return TG_ERROR;
    }
    if (x->n_headers >= MAX_CALL_HEADERS)
        return TG_ERROR;
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* a header that could split the request, or was cut, is never sent */
    if (n < 0 || (size_t)n >= sizeof(line) || strpbrk(line, "\r\n") != NULL)
        return TG_ERROR;
    const char *copy = tg_arena_strdup(x->r->arena, line);
    if (copy == NULL)
        return TG_ERROR;
    x->headers[x->n_headers++] = copy;
    return TG_OK;
}

static void free_text(void *text)
{
    free(text);
}

int tg_exchange_set_body(struct tg_exchange *x, json_t *body)
{
    char *text = body != NULL ? tg_jsafe_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL || tg_arena_cleanup_add(x->r->arena, free_text, text) != TG_OK) {
        free(text);
        return TG_ERROR;
    }
    x->body = text;
    x->body_len = strlen(text);
    return TG_OK;
}

int tg_exchange_set_translated_body(struct tg_exchange *x, int rc, json_t *body,
                                    const char *message)
{
    if (rc != TG_OK) {
        json_decref(body);
        tg_request_fail(x->r, 400, "invalid_request_error", message, NULL);
        return TG_DECLINED;
    }
    return tg_exchange_set_body(x, body);
}

int tg_exchange_add_common_headers(struct tg_exchange *x)
{
    int rc = tg_exchange_add_header(x, "content-type: application/json");
    rc |= tg_exchange_add_header(x, "traceparent: %s", x->r->trace.traceparent);
    rc |= tg_exchange_add_header(x, "user-agent: tollgate/" PACKAGE_VERSION);
    rc |= tg_exchange_add_header(x, "expect:"); /* no 100-continue round trip */
    return rc == TG_OK ? TG_OK : TG_ERROR;
}

/* ---- the stream ---- */

/* What the stream has delivered so far, as output tokens: never less than the provider said. */
static int64_t output_estimate(const struct tg_exchange *x)
{
    int64_t reported = x->r->usage.output_tokens;
    return x->meter.text_bytes > reported ? x->meter.text_bytes : reported;
}

static int write_event(struct tg_exchange *x, const char *event, const char *data, size_t len)
{
    struct tg_request *r = x->r;
    if (r->dialect == TG_DIALECT_ANTHROPIC && (tg_request_write(r, "event: ", 7) != TG_OK ||
                                               tg_request_write(r, event, strlen(event)) != TG_OK ||
                                               tg_request_write(r, "\n", 1) != TG_OK))
        return TG_ERROR;
    if (tg_request_write(r, "data: ", 6) != TG_OK || tg_request_write(r, data, len) != TG_OK ||
        tg_request_write(r, "\n\n", 2) != TG_OK)
        return TG_ERROR;
    return TG_OK;
}

/*
 * The client left mid-stream: stop relaying but keep reading the provider's
 * stream for its final usage, up to server.drain_timeout_ms and drain_max_bytes.
 */
static void client_left(struct tg_exchange *x)
{
    struct tg_request *r = x->r;
    if (x->abort_at_ms != 0)
        return;
    r->client_gone = true;
    r->outcome = "client_disconnected";
    x->abort_at_ms = tg_now_ms() + (r->config->drain_timeout_ms > 0 ? r->config->drain_timeout_ms
                                                                    : 1); /* 0: no drain */
}

/*
 * An event could not be encoded for the client (out of memory): the stream
 * cannot go on whole, so it ends with an error event in the client's dialect
 * (the pipeline sends it: r->error), and the provider's stream is drained
 * for its usage as when the client leaves.
 */
static void relay_failed(struct tg_exchange *x)
{
    struct tg_request *r = x->r;
    if (x->abort_at_ms != 0)
        return;
    x->relay_failed = true;
    r->outcome = "upstream_error";
    tg_request_fail(r, 502, "api_error", "the provider's stream could not be relayed",
                    "an event could not be encoded for the client");
    x->abort_at_ms = tg_now_ms() + (r->config->drain_timeout_ms > 0 ? r->config->drain_timeout_ms
                                                                    : 1); /* 0: no drain */
}

/* What the client is about to receive is on record before it does (worker_lost). */
static void journal_ahead(struct tg_exchange *x)
{
    int64_t estimate = output_estimate(x);
    if (estimate > x->journaled_out) {
        tg_journal_progress(x->r, estimate);
        x->journaled_out = estimate;
    }
}

static int on_sse_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct tg_exchange *x = ctx;
    if (x->translated) { /* the decoder emits pivot events: tg_exchange_emit */
        if (x->ops->decode_event(x, event, data, len) != TG_OK) {
            tg_log_warn(x->r->request_id, "could not translate an event of the provider's stream");
            relay_failed(x); /* a stream short of an event is not the provider's */
        }
        return TG_OK;
    }
    int keep = x->ops->observe != NULL ? x->ops->observe(x, event, data, len) : TG_OK;
    if (x->relay_mode != TG_RELAY_EVENTS || x->abort_at_ms != 0 || keep != TG_OK)
        return TG_OK;
    journal_ahead(x);
    int sent = x->guard != NULL ? tg_guard_stream_feed(x->guard, event, data, len)
                                : write_event(x, event, data, len);
    if (sent != TG_OK && !x->r->client_gone)
        relay_failed(x);
    else if (sent != TG_OK)
        client_left(x);
    return TG_OK;
}

/*
 * The provider's own deadlines: its first byte within first_byte_timeout_ms of
 * the request, and no silence longer than idle_timeout_ms between two pieces
 * (the whole call's timeout_ms is curl's).
 */
static void check_deadlines(struct tg_exchange *x, int64_t now)
{
    const struct tg_provider *p = x->r->backend->provider;
    bool late = x->last_data_ms == 0 ? now - x->started_ms > p->first_byte_timeout_ms
                                     : now - x->last_data_ms > p->idle_timeout_ms;
    if (late && x->abort_at_ms == 0) {
        x->timed_out = true;
        x->abort_at_ms = 1; /* passed: curl's progress callback aborts the transfer */
    }
}

static int write_bytes(void *ctx, const char *bytes, size_t len)
{
    return tg_request_write(ctx, bytes, len);
}

static void release_writer(void *w)
{
    tg_translate_openai_writer_release(w);
}

/* The OpenAI client's chunk writer, made at the first event. */
static struct tg_translate_openai_writer *openai_writer(struct tg_exchange *x)
{
    struct tg_request *r = x->r;
    if (x->writer != NULL)
        return x->writer;
    struct tg_translate_openai_writer *w = tg_arena_calloc(r->arena, sizeof(*w));
    bool include_usage =
        json_is_true(json_object_get(json_object_get(r->doc, "stream_options"), "include_usage"));
    char id[64];
    snprintf(id, sizeof(id), "chatcmpl-%s", r->request_id);
    if (w == NULL || tg_translate_openai_writer_init(w, r->client_model, (int64_t)time(NULL), id,
                                                     include_usage, write_bytes, r) != TG_OK)
        return NULL;
    if (tg_arena_cleanup_add(r->arena, release_writer, w) != TG_OK) {
        tg_translate_openai_writer_release(w);
        return NULL;
    }
    x->writer = w;
    return w;
}

/* A pivot event to the client: as Anthropic writes it, or as OpenAI chunks. */
static int write_pivot_event(struct tg_exchange *x, const char *event, json_t *data)
{
    if (x->r->dialect == TG_DIALECT_OPENAI) {
        struct tg_translate_openai_writer *w = openai_writer(x);
        return w != NULL ? tg_translate_openai_writer_feed(w, event, data) : TG_ERROR;
    }
    char *text = tg_jsafe_dumps(data, JSON_COMPACT);
    if (text == NULL)
        return TG_ERROR;
    int rc = write_event(x, event, text, strlen(text));
    free(text);
    return rc;
}

int tg_exchange_emit(void *ctx, const char *event, json_t *data)
{
    struct tg_exchange *x = ctx;
    tg_pivot_observe(&x->meter, event, data);
    if (x->abort_at_ms != 0)
        return TG_OK; /* the client left: decoding goes on for the usage */
    journal_ahead(x);
    int sent = x->guard != NULL ? tg_guard_stream_feed_json(x->guard, event, data)
                                : write_pivot_event(x, event, data);
    if (sent != TG_OK && !x->r->client_gone)
        relay_failed(x);
    else if (sent != TG_OK)
        client_left(x);
    return TG_OK;
}

/* What the reply's guard lets through (guard_stream.h): as it came, or its text masked. */
static int guarded_emit(void *ctx, const char *event, const char *data, size_t len, json_t *doc)
{
    struct tg_exchange *x = ctx;
    if (x->abort_at_ms != 0)
        return TG_OK; /* the client left: what is held is never sent */
    if (x->translated)
        return doc != NULL ? write_pivot_event(x, event, doc) : TG_ERROR;
    if (data != NULL)
        return write_event(x, event, data, len);
    char *text = tg_jsafe_dumps(doc, JSON_COMPACT);
    int rc = text != NULL ? write_event(x, event, text, strlen(text)) : TG_ERROR;
    free(text);
    return rc;
}

/* The end of a guarded stream: what each block holds goes out, masked. */
static void guard_finish(struct tg_exchange *x)
{
    if (x->guard == NULL)
        return;
    if (x->abort_at_ms == 0 &&
        (tg_guard_stream_finish(x->guard) != TG_OK || tg_request_flush(x->r) != TG_OK))
        client_left(x);
    if (tg_guard_stream_failed(x->guard))
        tg_log_warn(x->r->request_id,
                    "text of the reply withheld: the guardrails could not check it");
}

/* While the provider is silent: its deadlines, and has the client gone? (every 200 ms) */
static void on_wait(void *ctx)
{
    struct tg_exchange *x = ctx;
    int64_t now = tg_now_ms();
    check_deadlines(x, now);
    if (!x->streaming || x->abort_at_ms != 0)
        return;
    if (now - x->checked_at_ms < 200)
        return;
    x->checked_at_ms = now;
    if (tg_request_client_left(x->r))
        client_left(x);
}

static int relay_chunk(struct tg_exchange *x, const char *data, size_t len)
{
    struct tg_request *r = x->r;
    /* parse first: usage must be counted even if the client is gone (in EVENTS
     * mode, and translated, the parser's callback also writes to the client) */
    if (x->translated && x->ops->decode_bytes != NULL) {
        if (x->ops->decode_bytes(x, data, len) != TG_OK)
            tg_log_warn(r->request_id, "could not decode the provider's stream");
    } else if (tg_sse_feed(&x->sse, data, len) != TG_OK) {
        tg_log_warn(r->request_id, "could not parse the provider's event stream");
    }
    if (x->abort_at_ms == 0) {
        if (x->relay_mode == TG_RELAY_RAW) {
            journal_ahead(x);
            if (tg_request_write(r, data, len) != TG_OK)
                client_left(x);
        }
        if (x->abort_at_ms == 0 && tg_request_flush(r) != TG_OK)
            client_left(x);
        return TG_OK;
    }
    x->drained_bytes += len;
    if (x->drained_bytes > r->config->drain_max_bytes) {
        x->drain_cut = true;
        return TG_ERROR;
    }
    return TG_OK;
}

/* ---- the reply ---- */

static int on_header(void *ctx, const char *name, const char *value)
{
    struct tg_exchange *x = ctx;
    struct tg_arena *arena = x->r->arena;
    if (strcmp(name, "content-type") == 0)
        x->content_type = tg_arena_strdup(arena, value);
    else if (strcmp(name, "retry-after") == 0)
        x->retry_after = tg_arena_strdup(arena, value);
    else if (strcmp(name, "request-id") == 0 || strcmp(name, "x-request-id") == 0)
        x->provider_request_id = tg_arena_strdup(arena, value);
    return TG_OK;
}

static bool is_event_stream(const char *content_type)
{
    return content_type != NULL && strncmp(content_type, "text/event-stream", 17) == 0;
}

static int start_stream(struct tg_request *r, struct tg_exchange *x)
{
    x->streaming = true;
    r->t_first_byte_ms = tg_now_ms(); /* the first chunk is relayed next (metrics' TTFT) */
    r->status = 200;
    tg_request_add_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    tg_request_add_header(r, "Cache-Control", "no-cache");
    tg_request_add_header(r, "X-Accel-Buffering", "no");
    if (x->provider_request_id != NULL)
        tg_request_add_header(r, "request-id", x->provider_request_id);
    return tg_request_send_headers(r);
}

static int buffer_body(struct tg_exchange *x, const char *data, size_t len)
{
    size_t cap = x->r->config->max_response_bytes;
    if (x->reply_len + len > cap) {
        x->too_big = true;
        return TG_ERROR;
    }
    if (x->reply_len + len + 1 > x->reply_cap) {
        size_t grown = x->reply_cap == 0 ? 16384 : x->reply_cap * 2;
        while (grown < x->reply_len + len + 1)
            grown *= 2;
        char *fresh = tg_arena_alloc(x->r->arena, grown);
        if (fresh == NULL)
            return TG_ERROR;
        if (x->reply_len > 0)
            memcpy(fresh, x->reply, x->reply_len);
        x->reply = fresh;
        x->reply_cap = grown;
    }
    memcpy(x->reply + x->reply_len, data, len);
    x->reply_len += len;
    x->reply[x->reply_len] = '\0';
    return TG_OK;
}

static int on_body(void *ctx, long status, const char *data, size_t len)
{
    struct tg_exchange *x = ctx;
    struct tg_request *r = x->r;
    r->upstream_contacted = true;
    x->last_data_ms = tg_now_ms();
    bool stream_reply =
        is_event_stream(x->content_type) || (x->translated && x->ops->decode_bytes != NULL);
    if (!x->streaming && r->stream && status == 200 && stream_reply) {
        if (start_stream(r, x) != TG_OK)
            client_left(x);
    }
    if (!x->streaming)
        return buffer_body(x, data, len);
    return relay_chunk(x, data, len);
}

/*
 * A stream that ended without its final usage (cut by the drain's bounds, a
 * timeout, a broken connection) is billed on what it delivered: never less
 * than the text streamed, and never less than the provider said so far.
 */
static void settle_stream_usage(struct tg_request *r, const struct tg_exchange *x)
{
    if (x->meter.final_usage)
        return;
    r->usage.output_tokens = output_estimate(x);
    if (r->usage.input_tokens == 0) /* no start event either: the input's bound */
        r->usage.input_tokens = tg_quota_estimate_input(r);
    r->usage_source = "estimated";
}

static void release_sse(void *parser)
{
    tg_sse_parser_release(parser);
}

/*
 * A 200 reply whose usage was not read (memory ran out parsing it; the body
 * over server.max_response_bytes, cut or reset after the status line): the
 * provider bills it all the same,
 * so the usage row gets the bound that was reserved, as a dead worker's
 * request does (journal.c), never zero.
 */
static void bound_unread_usage(struct tg_request *r, const struct tg_exchange *x)
{
    const struct tg_usage *u = &r->usage;
    if (x->streaming || x->status != 200 || u->input_tokens > 0 || u->output_tokens > 0 ||
        u->cache_read_tokens > 0 || u->cache_write_tokens > 0)
        return;
    r->usage.input_tokens = tg_quota_estimate_input(r);
    r->usage.output_tokens = r->max_tokens;
    r->usage_source = "reserved_bound";
    tg_log_warn(r->request_id,
                "the usage of provider \"%s\" could not be read: billed at the "
                "reserved bound",
                r->backend->provider->name);
}

static int fail_transport(struct tg_request *r, enum tg_upstream_result result,
                          const struct tg_upstream_call *call, const struct tg_exchange *x)
{
    const char *provider = r->backend->provider->name;
    char message[160];
    bound_unread_usage(r, x);
    if (x->relay_failed) {
        r->outcome = "upstream_error";
        return TG_ERROR; /* the error event is r->error's */
    }
    if (x->abort_at_ms != 0 && !x->timed_out) {
        r->outcome = "client_disconnected";
        return TG_ERROR; /* nobody is left to answer */
    }
    if (x->too_big) {
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

static void free_json(void *doc)
{
    json_decref(doc);
}

/* An OpenAI chat request as the pivot, made once per request (the arena keeps it). */
static int openai_pivot(struct tg_request *r, json_t **pivot)
{
    if (r->pivot != NULL) {
        *pivot = r->pivot;
        return TG_OK;
    }
    char message[256];
    json_t *out = NULL;
    int rc =
        tg_translate_openai_request_to_pivot(r->doc, r->max_tokens, &out, message, sizeof(message));
    if (rc == TG_DECLINED) {
        tg_request_fail(r, 400, "invalid_request_error", message, NULL);
        return TG_ERROR;
    }
    if (rc != TG_OK || tg_arena_cleanup_add(r->arena, free_json, out) != TG_OK) {
        json_decref(out);
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory translating");
        return TG_ERROR;
    }
    r->pivot = out;
    *pivot = out;
    return TG_OK;
}

/*
 * The request as the pivot (Anthropic Messages) for a backend that does not
 * speak the client's dialect: *pivot borrowed (NULL when the backend speaks
 * it). TG_ERROR with r->error set when the backend cannot be reached from it.
 */
static int pivot_for(struct tg_request *r, json_t **pivot)
{
    const struct tg_provider_ops *ops = tg_registry_provider(r->backend->provider->type);
    *pivot = NULL;
    if (ops != NULL && ops->native == (int)r->dialect)
        return TG_OK;
    if (ops != NULL && ops->encode != NULL && r->dialect == TG_DIALECT_ANTHROPIC) {
        *pivot = r->doc;
        return TG_OK;
    }
    if (ops != NULL && ops->encode != NULL && r->endpoint == TG_EP_CHAT_COMPLETIONS)
        return openai_pivot(r, pivot);
    char message[200];
    snprintf(message, sizeof(message),
             "model \"%s\" is served by provider \"%s\", which this API cannot reach",
             r->model->name, r->backend->provider->name);
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

/* A translated 200 reply: the pivot's usage, and the reply in the client's dialect. */
static int translate_reply(struct tg_request *r, struct tg_exchange *x)
{
    json_t *reply = NULL;
    if (x->ops->decode_reply(x, &reply) != TG_OK) {
        bound_unread_usage(r, x);
        r->outcome = "upstream_error";
        tg_request_fail(r, 502, "api_error", "the provider's reply could not be read",
                        "provider \"%s\": reply not understood", r->backend->provider->name);
        return TG_ERROR;
    }
    tg_pivot_take_usage(json_object_get(reply, "usage"), &r->usage);
    tg_pivot_observe_reply(&x->meter, reply); /* its model and stop reason, for the trace */
    if (r->dialect == TG_DIALECT_OPENAI) {
        char message[256];
        json_t *chat = NULL;
        int rc = tg_translate_pivot_reply_to_openai(reply, r->client_model, (int64_t)time(NULL),
                                                    &chat, message, sizeof(message));
        json_decref(reply);
        reply = rc == TG_OK ? chat : NULL;
    }
    char *text = reply != NULL ? tg_jsafe_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);
    if (text == NULL || tg_arena_cleanup_add(r->arena, free, text) != TG_OK) {
        free(text);
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
        return TG_ERROR;
    }
    x->reply = text;
    x->reply_len = strlen(text);
    x->content_type = "application/json";
    return TG_OK;
}

static bool more_backends(const struct tg_balancer_member *members, size_t n, const bool *tried)
{
    for (size_t i = 0; i < n; i++)
        if (!tried[i] && members[i].weight > 0)
            return true;
    return false;
}

/* One attempt on r->backend: the call, and what its reply says of usage. */
static enum tg_upstream_result attempt(struct tg_request *r, struct tg_exchange *x,
                                       struct tg_upstream_call *call, json_t *pivot)
{
    const struct tg_provider *p = r->backend->provider;
    memset(x, 0, sizeof(*x));
    x->r = r;
    x->meter.usage = &r->usage;
    x->ops = tg_registry_provider(p->type);
    x->translated = x->ops->native != (int)r->dialect;
    tg_sse_parser_init(&x->sse, MAX_SSE_EVENT_BYTES, on_sse_event, x);
    int built = tg_arena_cleanup_add(r->arena, release_sse, &x->sse);
    if (built == TG_OK)
        built = x->translated ? x->ops->encode(r, x, pivot) : x->ops->prepare(r, x);
    if (built == TG_OK && r->stream && tg_guardrail_replies(r)) { /* event by event, masked */
        x->guard = tg_guardrail_stream(r, x->translated, guarded_emit, x);
        x->relay_mode = TG_RELAY_EVENTS;
        built = x->guard != NULL ? TG_OK : TG_ERROR;
    }
    if (built == TG_OK && r->n_enrich > 0 && x->headers != NULL) /* the operator's headers */
        built = tg_enrich_call_headers(r, x->headers, &x->n_headers, MAX_CALL_HEADERS);
    if (built == TG_DECLINED) {
        x->refused = true; /* the backend cannot express it: r->error says what */
        return TG_UPSTREAM_FAILED;
    }
    if (built != TG_OK) {
        snprintf(call->error, sizeof(call->error), "could not build the request");
        return TG_UPSTREAM_FAILED;
    }
    *call = (struct tg_upstream_call){
        .url = x->url,
        .headers = x->headers,
        .n_headers = x->n_headers,
        .body = x->body,
        .body_len = x->body_len,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = p->timeout_ms,
        .on_header = on_header,
        .on_body = on_body,
        .ctx = x,
        .abort_at_ms = &x->abort_at_ms,
        .on_wait = on_wait,
    };
    x->started_ms = tg_now_ms();
    enum tg_upstream_result result = tg_upstream_perform(r->upstream, call);
    r->upstream_ms = call->elapsed_ms;
    x->status = call->status;
    if (call->status > 0)
        r->upstream_contacted = true;
    if (x->timed_out && result == TG_UPSTREAM_ABORTED)
        result = TG_UPSTREAM_TIMEOUT;
    if (x->streaming) {
        if (!x->translated || x->ops->decode_bytes == NULL)
            tg_sse_feed(&x->sse, "\n\n", 2); /* dispatch an unterminated last event */
        if (x->translated && result == TG_UPSTREAM_OK)
            x->ops->decode_end(x); /* what closes the client's stream */
        guard_finish(x);
        settle_stream_usage(r, x);
    }
    return result;
}

/* Did this attempt fail in a way another backend may mend? */
static bool attempt_failed(const struct tg_request *r, const struct tg_exchange *x,
                           enum tg_upstream_result result)
{
    if (x->refused)
        return false; /* the request, not the backend */
    if (result == TG_UPSTREAM_ABORTED && !x->timed_out)
        return false; /* the client left, or the reply was too large: not the backend's fault */
    if (result != TG_UPSTREAM_OK)
        return !x->too_big;
    const struct tg_failover_config *f = &r->config->failover;
    for (size_t i = 0; i < f->n_retry_statuses; i++)
        if (x->status == f->retry_statuses[i])
            return true;
    return false;
}

static int no_backend(struct tg_request *r)
{
    char message[200];
    snprintf(message, sizeof(message), "no backend of model \"%s\" is available", r->model->name);
    r->outcome = "upstream_unavailable";
    tg_request_fail(r, 503, "overloaded_error", message, "every backend tried or open");
    return TG_ERROR;
}

/* Waits before the next attempt; false when the total deadline would pass. */
static bool back_off(struct tg_request *r, const struct tg_exchange *x, int64_t deadline_ms)
{
    const struct tg_failover_config *f = &r->config->failover;
    int64_t retry_after =
        x->retry_after != NULL
            ? tg_balancer_retry_after_ms(x->retry_after, time(NULL), f->backoff_max_ms)
            : 0;
    int64_t wait = tg_balancer_backoff_ms(r->attempts, f->backoff_base_ms, f->backoff_max_ms,
                                          tg_crypto_fast_random(), retry_after);
    if (tg_now_ms() + wait >= deadline_ms || r->client_gone)
        return false;
    struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return true;
}

static struct tg_balancer_policy breaker_policy(const struct tg_config *c)
{
    struct tg_balancer_policy policy = TG_BALANCER_POLICY_DEFAULT;
    policy.failure_threshold = c->failover.failure_threshold;
    policy.window_ms = c->failover.window_ms;
    policy.cooldown_ms = c->failover.cooldown_ms;
    policy.probe_timeout_ms = 0; /* the cooldown */
    return policy;
}

int tg_exchange_forward(struct tg_request *r, struct tg_exchange *x)
{
    const struct tg_model *m = r->model;
    struct tg_balancer_member members[TG_MAX_BACKENDS];
    bool tried[TG_MAX_BACKENDS] = {false};
    size_t n = m->n_backends < TG_MAX_BACKENDS ? m->n_backends : TG_MAX_BACKENDS;
    for (size_t i = 0; i < n; i++)
        members[i] = (struct tg_balancer_member){m->backends[i].id, m->backends[i].priority,
                                                 m->backends[i].weight};
    struct tg_shm *shm = tg_shm_get();
    struct tg_shm_circuits *circuits = shm != NULL ? &shm->circuits : NULL;
    struct tg_balancer_policy policy = breaker_policy(r->config);
    int64_t deadline = tg_now_ms() + r->config->failover.total_deadline_ms;
    struct tg_upstream_call call = {0};
    enum tg_upstream_result result = TG_UPSTREAM_FAILED;
    for (;;) {
        uint64_t probe = 0;
        int chosen = tg_balancer_pick(circuits, members, n, tried, &policy, tg_now_ms(),
                                      tg_crypto_fast_random(), &probe);
        if (chosen < 0 && r->attempts == 0) {
            /* every circuit is open: rather than fail the model, try as if all were closed
             * (Envoy's panic routing) — the breaker steers away from a failing backend
             * when there is another, it does not take a model down */
            chosen = tg_balancer_pick(NULL, members, n, tried, &policy, tg_now_ms(),
                                      tg_crypto_fast_random(), NULL);
            if (chosen >= 0 && n > 1) /* one backend: nothing to steer, nothing to say */
                tg_log_warn(r->request_id, "every backend of model \"%s\" is open: trying \"%s\"",
                            m->name, m->backends[chosen].id);
        }
        if (chosen < 0 && r->attempts == 0)
            return no_backend(r);
        if (chosen < 0)
            break; /* the others are open: the last attempt's failure answers */
        tried[chosen] = true;
        r->backend = &m->backends[chosen];
        json_t *pivot = NULL;
        if (pivot_for(r, &pivot) != TG_OK) {
            tg_balancer_release(circuits, r->backend->id, probe);
            return TG_ERROR;
        }
        r->attempts++;
        r->error.status = 0; /* an earlier attempt's failure is not this one's */
        int64_t attempt_ns = tg_otel_now_ns();
        result = attempt(r, x, &call, pivot);
        if (!x->refused) /* a refused one was never sent: no span */
            tg_otel_span_attempt(r, attempt_ns, x->status, (int)result);
        if (x->refused) {
            tg_balancer_release(circuits, r->backend->id, probe);
            r->attempts--; /* nothing was sent */
            return TG_ERROR;
        }
        bool failed = attempt_failed(r, x, result);
        tg_balancer_report(circuits, r->backend->id, !failed, probe, &policy, tg_now_ms());
        if (!failed || x->streaming || r->attempts >= r->config->failover.max_attempts ||
            !more_backends(members, n, tried) || !back_off(r, x, deadline))
            break;
        tg_log_warn(r->request_id, "backend \"%s\" failed (%s), trying another", r->backend->id,
                    result == TG_UPSTREAM_OK ? "an error status" : call.error);
    }
    if (result != TG_UPSTREAM_OK) {
        bound_unread_usage(r, x);
        return fail_transport(r, result, &call, x);
    }
    if (x->streaming) {
        if (x->meter.stream_error && x->abort_at_ms == 0)
            r->outcome = "upstream_error";
        return TG_OK;
    }
    if (x->status != 200) {
        r->outcome = "upstream_error";
        return TG_OK;
    }
    if (!x->translated)
        x->ops->read_usage(r, x->reply, x->reply_len); /* same dialect: it has one */
    else if (translate_reply(r, x) != TG_OK)
        return TG_ERROR;
    bound_unread_usage(r, x);
    /* the reply as the client will get it (and the cache keep it), its usage read already */
    return tg_guardrail_replies(r) ? tg_guardrail_reply(r, &x->reply, &x->reply_len) : TG_OK;
}

int tg_exchange_respond(struct tg_request *r, struct tg_exchange *x)
{
    if (x->streaming)
        return TG_OK; /* already sent as it arrived */
    int status = (int)x->status;
    if (status >= 400 &&
        (x->reply == NULL || x->ops->native != (int)r->dialect || x->ops->is_error_body == NULL ||
         !x->ops->is_error_body(x->reply, x->reply_len))) {
        char message[160];
        snprintf(message, sizeof(message), "provider \"%s\" answered HTTP %d",
                 r->backend->provider->name, status);
        tg_request_fail(r, status, NULL, message, NULL);
        if (x->retry_after != NULL)
            tg_request_add_header(r, "retry-after", x->retry_after);
        tg_request_send_error(r);
        return TG_OK;
    }
    if (x->retry_after != NULL)
        tg_request_add_header(r, "retry-after", x->retry_after);
    if (x->provider_request_id != NULL)
        tg_request_add_header(r, "request-id", x->provider_request_id);
    const char *type = x->content_type != NULL ? x->content_type : "application/json";
    return tg_request_respond(r, status, type, x->reply != NULL ? x->reply : "", x->reply_len);
}
