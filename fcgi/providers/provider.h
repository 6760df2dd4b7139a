/*
 * provider.h — the backend side of a call, one module per kind of backend
 * (provider_anthropic.c, provider_openai.c, ...): where the request goes, with
 * which credential and body, and how usage is read out of what comes back.
 *
 * exchange.c runs the call through these operations, relay.c its stream
 * (observe, the decoders); the pipeline never names a provider. A provider
 * whose native dialect is the client's forwards the body byte for byte (only
 * the model name may be rewritten, when the client used an alias the backend
 * does not know).
 */
#ifndef TG_PROVIDER_H
#define TG_PROVIDER_H

#include "config.h"
#include "request.h"

#include <jansson.h>

struct tg_exchange;
struct tg_usage;

struct tg_provider_ops {
    const char *name;
    int native; /* the client dialect (enum tg_dialect) it serves as is; -1: none */

    /*
     * Builds the call for r on r->backend into x: url, headers (the provider's
     * credential; never the client's), body, relay mode. TG_ERROR with r->error
     * set (500, or 400 naming what the backend cannot do).
     */
    int (*prepare)(struct tg_request *r, struct tg_exchange *x);

    /* Usage from a complete non-stream reply (status 200) into r->usage (NULL: no same-dialect
     * path). */
    void (*read_usage)(struct tg_request *r, const char *body, size_t len);

    /*
     * One event of the provider's stream (SSE event name, or "message", and its
     * data): updates r->usage, x->text_bytes, x->final_usage, x->stream_error.
     * Returns TG_OK to relay the event, TG_DECLINED to withhold it from the
     * client (honoured in TG_RELAY_EVENTS mode). NULL: nothing to observe.
     */
    int (*observe)(struct tg_exchange *x, const char *event, const char *data, size_t len);

    /* True when an error body is in the native dialect's shape (else it is replaced; NULL: never).
     */
    bool (*is_error_body)(const char *body, size_t len);

    /*
     * The translated path: a client of another dialect, its request as the pivot
     * (Anthropic Messages). NULL encode: no client of another dialect reaches it.
     *
     * encode builds the call from pivot (borrowed) like prepare, and the stream
     * decoder's state (x->decoder). TG_DECLINED with r->error set (400 naming the
     * feature the backend cannot express); TG_ERROR when the call cannot be made.
     */
    int (*encode)(struct tg_request *r, struct tg_exchange *x, struct json_t *pivot);
    /* The pivot reply (new) of a complete 200 reply in x->reply; TG_ERROR: not understood. */
    int (*decode_reply)(struct tg_exchange *x, struct json_t **pivot_reply);
    /* One SSE event of the stream: pivot events out through tg_relay_emit. */
    int (*decode_event)(struct tg_exchange *x, const char *event, const char *data, size_t len);
    /* Raw stream bytes, for a stream that is not SSE (Bedrock's event stream); NULL: SSE. */
    int (*decode_bytes)(struct tg_exchange *x, const char *data, size_t len);
    /* The stream ended cleanly: what closes the pivot stream goes out. */
    void (*decode_end)(struct tg_exchange *x);
};

/*
 * The request body to send to a same-dialect backend: r->body as it is, unless
 * the client's model name differs from the backend's, when the body is written
 * again from r->doc with "model" replaced. NULL when out of memory.
 */
const char *tg_provider_same_dialect_body(struct tg_request *r, size_t *len);

#endif
