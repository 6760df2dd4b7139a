/*
 * dialect_anthropic.c — Anthropic Messages requests (POST /v1/messages): the
 * checks Anthropic makes of a body, and the bounds the reservation needs.
 */
#include <jansson.h>
#include <stdio.h>

#include "bound.h"
#include "config.h"
#include "dialect.h"
#include "enrich.h"
#include "request.h"

/* The checks and the upper bound that the reservation needs (bound.c). */
static int bound_request(struct tg_request *r)
{
    struct tg_bound bound;
    char message[256];
    /* the operator's system text (enrich.c) is part of what the provider reads */
    size_t bytes = r->body_len + (size_t)tg_enrich_bound_bytes(r);
    int rc = tg_bound_request(r->config, r->model, r->doc, bytes, r->max_tokens,
                              tg_request_header(r, "anthropic-beta"), r->arena, &bound, message,
                              sizeof(message));
    if (rc == TG_DECLINED)
        return tg_dialect_invalid(r, message);
    if (rc != TG_OK) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory bounding a request");
        return TG_ERROR;
    }
    r->input_bound_tokens = bound.input_tokens;
    r->max_web_searches = bound.max_web_searches;
    r->anthropic_beta = bound.betas;
    return TG_OK;
}

int tg_dialect_anthropic_parse(struct tg_request *r)
{
    if (tg_dialect_load_body(r) != TG_OK)
        return TG_ERROR;
    json_t *doc = r->doc;
    json_t *model = json_object_get(doc, "model");
    if (model == NULL)
        return tg_dialect_invalid(r, "model: Field required");
    if (!json_is_string(model))
        return tg_dialect_invalid(r, "model: Input should be a valid string");
    json_t *messages = json_object_get(doc, "messages");
    if (messages == NULL)
        return tg_dialect_invalid(r, "messages: Field required");
    if (!json_is_array(messages))
        return tg_dialect_invalid(r, "messages: Input should be a valid list");
    json_t *max_tokens = json_object_get(doc, "max_tokens");
    if (max_tokens == NULL)
        return tg_dialect_invalid(r, "max_tokens: Field required");
    if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1)
        return tg_dialect_invalid(r, "max_tokens: Input should be a positive integer");
    r->max_tokens = json_integer_value(max_tokens);
    json_t *stream = json_object_get(doc, "stream");
    if (stream != NULL && !json_is_boolean(stream))
        return tg_dialect_invalid(r, "stream: Input should be a valid boolean");
    r->stream = json_is_true(stream);
    int found = tg_dialect_find_model(r, false);
    if (found != TG_OK)
        return found; /* TG_DECLINED: a rule's direct response */
    return bound_request(r);
}

int tg_dialect_anthropic_parse_count(struct tg_request *r)
{
    if (tg_dialect_load_body(r) != TG_OK)
        return TG_ERROR;
    json_t *messages = json_object_get(r->doc, "messages");
    if (messages == NULL)
        return tg_dialect_invalid(r, "messages: Field required");
    if (!json_is_array(messages))
        return tg_dialect_invalid(r, "messages: Input should be a valid list");
    int found = tg_dialect_find_model(r, false);
    if (found != TG_OK)
        return found;
    if (r->backend->provider->type != TG_PROVIDER_ANTHROPIC) {
        char message[200];
        snprintf(message, sizeof(message),
                 "count_tokens: model \"%s\" is served by provider \"%s\", which cannot count "
                 "tokens",
                 r->model->name, r->backend->provider->name);
        return tg_dialect_invalid(r, message);
    }
    return TG_OK;
}
