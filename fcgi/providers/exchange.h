/*
 * exchange.h — one call to a backend, whatever the dialects, with failover: the
 * provider module (provider.h) says what to send and how to read usage out of
 * the reply; this module picks the backend (balancer.c), sends the call
 * (upstream.c) and tries another backend when one fails before anything reached
 * the client, then reads the buffered reply's usage (translating it when the
 * client speaks another dialect) and answers failures in the client's dialect
 * (502, 503, 504). The reply on its way — buffered, or relayed as a stream,
 * drained when the client left — is relay.c's (relay.h, which also defines
 * struct tg_exchange).
 *
 * Not here: what the body says (dialects), the usage row (settle.c).
 */
#ifndef TG_EXCHANGE_H
#define TG_EXCHANGE_H

#include "common.h"
#include "relay.h"

struct tg_request;
struct json_t;

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
