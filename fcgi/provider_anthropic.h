/*
 * provider_anthropic.h — the Anthropic Messages API: checking a client's request,
 * forwarding it with the provider's credential, relaying the reply (streamed or
 * not) and reading the token usage out of it.
 *
 * The client's body is forwarded byte for byte; only headers are rewritten: the
 * client's credential never reaches the provider and the provider's never
 * reaches the client. Not here: authentication, pricing, the usage row.
 */
#ifndef TG_PROVIDER_ANTHROPIC_H
#define TG_PROVIDER_ANTHROPIC_H

#include "common.h"
#include "sse.h"
#include "usage.h"

struct tg_request;

/* What came back from the provider, kept until the response is sent. */
struct tg_anthropic_reply {
    long status;
    const char *content_type;
    const char *retry_after;
    const char *provider_request_id;
    char *body; /* the buffered body (non-stream, or any error reply) */
    size_t body_len;
    size_t body_cap;
    bool streaming; /* the body went to the client as it arrived */
    struct tg_sse_parser sse;
};

/*
 * Checks r->body as a Messages request (JSON object; model, messages, max_tokens
 * present and typed; stream a boolean), resolves the model from the config, and
 * bounds it (bound.c: max_tokens within the model's maximum, every anthropic-beta
 * value allowed, the input upper bound). Sets r->model, r->stream, r->max_tokens,
 * r->input_bound_tokens, r->max_web_searches and r->anthropic_beta. TG_ERROR with
 * r->error set (400, or 404 for a model not served here).
 */
int tg_anthropic_parse_request(struct tg_request *r);

/*
 * Sends the request to r->model's provider. reply must live in r->arena (its
 * parser is released when the arena is reset). A successful stream is relayed to the
 * client while it arrives; anything else is buffered in *reply. Fills r->usage,
 * r->upstream_ms, r->outcome and sets r->upstream_contacted once the provider
 * answered. TG_ERROR with r->error set when there is no usable reply (502, 504).
 */
int tg_anthropic_forward(struct tg_request *r, struct tg_anthropic_reply *reply);

/* Sends a buffered reply (status, headers, body) to the client. */
int tg_anthropic_respond(struct tg_request *r, struct tg_anthropic_reply *reply);

/* Reads usage from a Messages JSON object's "usage" member (for tests too). */
void tg_anthropic_read_usage(const char *json_text, size_t len, struct tg_usage *usage);

#endif
