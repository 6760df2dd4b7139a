/*
 * relay.h — a backend's reply on its way to the client, one attempt at a time:
 * a non-stream reply is buffered (capped by server.max_response_bytes); a
 * stream is relayed as it arrives — the provider's bytes as they are, event by
 * event, through the pivot to the client's dialect (translated), or through
 * the reply's guard (guardrails.responses) — with usage counted on the way and
 * the journal's progress record kept ahead of what the client received. When
 * the client leaves (a failed write, or seen while the provider is silent) the
 * rest of the stream is drained for its final usage within
 * server.drain_timeout_ms / drain_max_bytes; the provider's first-byte and
 * idle deadlines are watched here too.
 *
 * struct tg_exchange, one attempt's call and its reply, is defined here rather
 * than in exchange.h because the relay reads the whole of it while exchange.c
 * drives the relay: the layering stays one-way (exchange over relay).
 *
 * Not here: which backend and when to try another, what a failed call answers,
 * a buffered reply sent to the client (exchange.c); what a provider's bytes
 * mean (the provider modules, their decoders); the usage row (settle.c).
 */
#ifndef TG_RELAY_H
#define TG_RELAY_H

#include "common.h"
#include "pivot.h"
#include "sse.h"
#include "upstream.h"

struct tg_request;
struct tg_provider_ops;
struct tg_guard_stream;
struct json_t;

/* How a stream reaches the client. */
enum tg_relay_mode {
    TG_RELAY_RAW,    /* the provider's bytes as they arrive */
    TG_RELAY_EVENTS, /* event by event, minus those the provider withholds */
};

struct tg_exchange {
    struct tg_request *r;
    const struct tg_provider_ops *ops;

    /* the call, filled by the provider's prepare() */
    const char *url;
    const char **headers; /* "Name: value" */
    size_t n_headers;
    const char *body;
    size_t body_len;
    enum tg_relay_mode relay_mode;
    bool usage_injected; /* the provider asked for usage the client did not: strip it */
    bool translated;     /* the client speaks another dialect: through the pivot */
    bool refused;        /* the backend cannot express the request: r->error says why (400) */
    void *decoder;       /* the provider's stream decoder (translated), in r->arena */
    void *writer;        /* the client dialect's stream writer (translated), in r->arena */
    struct tg_guard_stream *guard; /* guardrails.responses: the stream's masker, or NULL */

    /* the reply */
    long status;
    const char *content_type;
    const char *retry_after;
    const char *provider_request_id;
    char *reply; /* the buffered body (non-stream, or any error reply) */
    size_t reply_len;
    size_t reply_cap;
    bool streaming; /* the body went to the client as it arrived */
    struct tg_sse_parser sse;

    /* what the stream said so far (the provider's observe(), or the pivot's events) */
    struct tg_pivot_meter meter;

    /* deadlines of this attempt: first byte and the silence between two pieces */
    int64_t started_ms;
    int64_t last_data_ms;
    bool timed_out;
    bool relay_failed; /* an event could not be encoded for the client: an error ended it */

    /* the client and the drain */
    bool too_big;
    bool drain_cut;
    int64_t abort_at_ms; /* set when the client left: the drain's deadline */
    size_t drained_bytes;
    int64_t journaled_out;
    int64_t checked_at_ms;
};

/*
 * Readies x's relay, after x->r, x->ops and x->translated are set and before
 * the provider builds the call (its decoder may be fed from the parser): the
 * SSE parser, released with r's arena. TG_ERROR when out of memory.
 */
int tg_relay_init(struct tg_exchange *x);

/*
 * guardrails.responses on a stream: the reply goes to the client event by
 * event (TG_RELAY_EVENTS) through its guard (x->guard, in r's arena), its text
 * masked. Called after the provider built the call. TG_ERROR when the guard
 * could not be made.
 */
int tg_relay_guard(struct tg_exchange *x);

/*
 * Hooks the relay into call (its other fields the caller's): the reply's
 * headers and body go to x, the waits check the deadlines and the client, and
 * x->abort_at_ms is the call's abort deadline (the drain's, or a passed one).
 */
void tg_relay_attach(struct tg_exchange *x, struct tg_upstream_call *call);

/*
 * After the call, when the reply was streamed: an unterminated last event
 * dispatched, a translated stream closed (when result is TG_UPSTREAM_OK), what
 * a guarded stream still holds sent, and — no final usage seen — r->usage
 * estimated from what was delivered (r->usage_source "estimated"). Nothing
 * for a buffered reply.
 */
void tg_relay_finish(struct tg_exchange *x, enum tg_upstream_result result);

/*
 * One pivot stream event (event name, data borrowed) from a provider's decoder:
 * usage and content counted, the journal kept ahead, then written to the client
 * in its dialect (unless the client left). ctx is the struct tg_exchange. TG_OK.
 */
int tg_relay_emit(void *ctx, const char *event, struct json_t *data);

#endif
