/*
 * relay.c — a backend's reply on its way to the client: buffered, or relayed as
 * it arrives (raw, event by event, translated, guarded), the journal kept ahead,
 * the client's leaving noticed and the rest drained for its usage.
 */
#include "relay.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guardrail.h"
#include "jsafe.h"
#include "journal.h"
#include "log.h"
#include "provider.h"
#include "quota.h"
#include "request.h"
#include "translate_openai_stream.h"

#define MAX_SSE_EVENT_BYTES (1024 * 1024)

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
    if (x->translated) { /* the decoder emits pivot events: tg_relay_emit */
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

int tg_relay_emit(void *ctx, const char *event, json_t *data)
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

/* ---- what exchange.c calls ---- */

int tg_relay_init(struct tg_exchange *x)
{
    tg_sse_parser_init(&x->sse, MAX_SSE_EVENT_BYTES, on_sse_event, x);
    return tg_arena_cleanup_add(x->r->arena, release_sse, &x->sse);
}

int tg_relay_guard(struct tg_exchange *x)
{
    x->guard = tg_guardrail_stream(x->r, x->translated, guarded_emit, x);
    x->relay_mode = TG_RELAY_EVENTS;
    return x->guard != NULL ? TG_OK : TG_ERROR;
}

void tg_relay_attach(struct tg_exchange *x, struct tg_upstream_call *call)
{
    call->on_header = on_header;
    call->on_body = on_body;
    call->ctx = x;
    call->abort_at_ms = &x->abort_at_ms;
    call->on_wait = on_wait;
}

void tg_relay_finish(struct tg_exchange *x, enum tg_upstream_result result)
{
    if (!x->streaming)
        return;
    if (!x->translated || x->ops->decode_bytes == NULL)
        tg_sse_feed(&x->sse, "\n\n", 2); /* dispatch an unterminated last event */
    if (x->translated && result == TG_UPSTREAM_OK)
        x->ops->decode_end(x); /* what closes the client's stream */
    guard_finish(x);
    settle_stream_usage(x->r, x);
}
