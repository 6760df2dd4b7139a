/*
 * dialect.h — the client side of a call: what the client speaks (Anthropic
 * Messages, OpenAI Chat Completions, OpenAI Embeddings). A dialect checks the
 * request body and takes out of it what the pipeline needs — the model (and so
 * its pool of backends), stream or not, the output bound and the input bound
 * that the reservation holds — and its errors are shaped for its clients
 * (request.c, by r->dialect).
 */
#ifndef TG_DIALECT_H
#define TG_DIALECT_H

#include "common.h"

struct tg_request;
struct json_t;

/*
 * Parses and checks r->body for r->endpoint. Sets r->doc, r->model,
 * r->client_model, r->backend (the pool's first; the pipeline may choose
 * another), r->stream, r->max_tokens, r->input_bound_tokens,
 * r->max_web_searches, r->anthropic_beta. TG_ERROR with r->error set: 400, or
 * 404 for a model not served here.
 */
int tg_dialect_parse(struct tg_request *r);

/* Anthropic Messages (dialect_anthropic.c). */
int tg_dialect_anthropic_parse(struct tg_request *r);

/* Anthropic's count_tokens: model and messages; the model's backend must be Anthropic (400). */
int tg_dialect_anthropic_parse_count(struct tg_request *r);

/* OpenAI Chat Completions and Embeddings (dialect_openai.c). */
int tg_dialect_openai_parse_chat(struct tg_request *r);
int tg_dialect_openai_parse_embeddings(struct tg_request *r);

/*
 * An http route (TG_EP_HTTP): the body goes as it is to the route's model's http
 * provider; the output bound is the model's max_output_tokens, the input bound
 * the body's bytes. Streams when the client accepts text/event-stream.
 */
int tg_dialect_http_parse(struct tg_request *r);

/* ---- shared by the dialects ---- */

/* Fails r with 400 invalid_request_error and message; returns TG_ERROR. */
int tg_dialect_invalid(struct tg_request *r, const char *message);

/*
 * text as JSON with duplicate keys refused; the caller owns the result. NULL:
 * r->error is a 400 naming the kind of error and its line and column, never
 * the input's bytes.
 */
struct json_t *tg_dialect_load_json(struct tg_request *r, const char *text, size_t len);

/* r->body as a JSON object into r->doc (borrowed: the arena owns it). TG_ERROR: 400 set. */
int tg_dialect_load_body(struct tg_request *r);

/*
 * Resolves the "model" member of r->doc (required, a string) to a served model of
 * the kind the endpoint needs — or, when an operator's rule matches the name,
 * the rule's model. Sets r->model, r->client_model, r->backend, r->route.
 * TG_ERROR: 400 (missing, wrong kind) or 404 (not served here); TG_DECLINED: a
 * rule answers with its direct response (r->route).
 */
int tg_dialect_find_model(struct tg_request *r, bool embeddings);

#endif
