/*
 * exchange.h — one call to a backend and its reply, whatever the dialects: the
 * provider module (provider.h) says what to send and how to read usage out of
 * the reply; this module sends it (upstream.c), relays a stream to the client as
 * it arrives — or, when the client left, drains it for its final usage within
 * server.drain_timeout_ms / drain_max_bytes — keeps the journal's progress
 * record ahead of what the client received, buffers a non-stream reply (capped
 * by server.max_response_bytes), and answers transport failures in the
 * client's dialect (502, 504).
 *
 * Not here: which backend (pipeline, balancer), what the body says (dialects),
 * the usage row (settle.c).
 */
#ifndef TG_EXCHANGE_H
#define TG_EXCHANGE_H

#include "common.h"
#include "pivot.h"
#include "sse.h"

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
 * Calls a backend of r->model's pool with what its provider's prepare() builds.
 * The backend is chosen by the balancer (priority, weight, circuit); when it
 * fails before anything reached the client — it could not be reached, timed
 * out, or answered a status in failover.retry_statuses — the next one is tried
 * after a backoff (retry-after honoured), within failover.max_attempts and
 * failover.total_deadline_ms, and every outcome is reported to the backend's
 * circuit. Sets r->backend to the one that answered last and r->attempts.
 * A successful stream is relayed while it arrives; anything else is buffered in
 * *x (which must live in r->arena). Fills r->usage, r->upstream_ms, r->outcome
 * and sets r->upstream_contacted once a provider answered. TG_ERROR with
 * r->error set when there is no usable reply (502, 503 no backend available,
 * 504), or nobody left to answer.
 */
int tg_exchange_forward(struct tg_request *r, struct tg_exchange *x);

/*
 * Sends a buffered reply to the client: the provider's status, content type and
 * body, or — an error body not in the client's dialect — the client's own error
 * for that status.
 */
int tg_exchange_respond(struct tg_request *r, struct tg_exchange *x);

/*
 * One pivot stream event (event name, data borrowed) from a provider's decoder:
 * usage and content counted, the journal kept ahead, then written to the client
 * in its dialect (unless the client left). ctx is the struct tg_exchange. TG_OK.
 */
int tg_exchange_emit(void *ctx, const char *event, struct json_t *data);

/* The call's body: body (stolen) written compactly, owned by the request's arena. */
int tg_exchange_set_body(struct tg_exchange *x, struct json_t *body);

/*
 * What a translator answered, as the call's body: rc TG_OK sets body (stolen);
 * any other rc is the client's request the backend cannot take: 400 with the
 * translator's message (client-safe), TG_DECLINED, body released.
 */
int tg_exchange_set_translated_body(struct tg_exchange *x, int rc, struct json_t *body,
                                    const char *message);

/* content-type JSON, traceparent, user-agent and no Expect: what every call sends. */
int tg_exchange_add_common_headers(struct tg_exchange *x);

/* Appends "Name: value" to the call's headers (the provider's prepare()); TG_ERROR on CR/LF. */
int tg_exchange_add_header(struct tg_exchange *x, const char *fmt, ...) TG_PRINTF(2, 3);

#endif
