/*
 * dialect.c — the dialect of each endpoint, and what the dialects share.
 */
#include "dialect.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "request.h"
#include "routes.h"

int tg_dialect_parse(struct tg_request *r)
{
    switch (r->endpoint) {
    case TG_EP_MESSAGES: return tg_dialect_anthropic_parse(r);
    case TG_EP_CHAT_COMPLETIONS: return tg_dialect_openai_parse_chat(r);
    case TG_EP_EMBEDDINGS: return tg_dialect_openai_parse_embeddings(r);
    case TG_EP_HTTP: return tg_dialect_http_parse(r);
    case TG_EP_COUNT_TOKENS: return tg_dialect_anthropic_parse_count(r);
    default:
        tg_request_fail(r, 500, "api_error", "internal error", "no dialect for this endpoint");
        return TG_ERROR;
    }
}

int tg_dialect_invalid(struct tg_request *r, const char *message)
{
    tg_request_fail(r, 400, "invalid_request_error", message, NULL);
    return TG_ERROR;
}

static void free_json(void *doc)
{
    json_decref(doc);
}

/*
 * Duplicate keys are refused: the body goes to the provider verbatim, and a
 * provider that kept the first "model" would run one that RBAC and prices
 * never saw. jansson's error text quotes the input, so only the position and
 * the kind of error are kept (a log never holds prompt bytes).
 */
json_t *tg_dialect_load_json(struct tg_request *r, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc != NULL)
        return doc;
    char message[160];
    bool duplicate = json_error_code(&jerr) == json_error_duplicate_key;
    snprintf(message, sizeof(message), "request body is not valid JSON: %s at line %d, column %d",
             duplicate ? "duplicate object key" : "syntax error", jerr.line, jerr.column);
    tg_request_fail(r, 400, "invalid_request_error", message, "json error %d at byte %d",
                    (int)json_error_code(&jerr), jerr.position);
    return NULL;
}

int tg_dialect_load_body(struct tg_request *r)
{
    json_t *doc = tg_dialect_load_json(r, r->body, r->body_len);
    if (doc == NULL)
        return TG_ERROR;
    if (tg_arena_cleanup_add(r->arena, free_json, doc) != TG_OK) {
        json_decref(doc);
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
        return TG_ERROR;
    }
    r->doc = doc;
    if (!json_is_object(doc))
        return tg_dialect_invalid(r, "request body must be a JSON object");
    return TG_OK;
}

int tg_dialect_find_model(struct tg_request *r, bool embeddings)
{
    json_t *model = json_object_get(r->doc, "model");
    if (model == NULL)
        return tg_dialect_invalid(r, "model: Field required");
    if (!json_is_string(model))
        return tg_dialect_invalid(r, "model: Input should be a valid string");
    /* a copy: a same-dialect body may get another "model" (provider.c) */
    r->client_model = tg_arena_strdup(r->arena, json_string_value(model));
    if (r->client_model == NULL) {
        tg_request_fail(r, 500, "api_error", "internal error", "out of memory");
        return TG_ERROR;
    }
    /* the operator's rules on this model: a direct response, or another model */
    const struct tg_config_route *rule = tg_routes_match(r, r->client_model);
    if (rule != NULL)
        r->route = rule;
    if (rule != NULL && rule->direct_status != 0)
        return TG_DECLINED; /* the pipeline answers with it */
    r->model = r->route != NULL && r->route->model != NULL
                   ? r->route->model
                   : tg_config_find_model(r->config, r->client_model);
    char message[200];
    if (r->model == NULL) {
        /* the name is the client's own input; quote at most 100 bytes of it */
        snprintf(message, sizeof(message), "model: %.100s", r->client_model);
        tg_request_fail(r, 404, "not_found_error", message, NULL);
        return TG_ERROR;
    }
    if ((r->model->kind == TG_MODEL_EMBEDDINGS) != embeddings) {
        snprintf(message, sizeof(message), "model: \"%.100s\" is %s model", r->client_model,
                 embeddings ? "not an embeddings" : "an embeddings");
        return tg_dialect_invalid(r, message);
    }
    r->backend = &r->model->backends[0];
    return TG_OK;
}

int tg_dialect_http_parse(struct tg_request *r)
{
    r->model = r->route->http;
    r->client_model = r->model->name;
    r->backend = &r->model->backends[0];
    const char *accept = tg_request_header(r, "accept");
    r->stream = accept != NULL && strstr(accept, "text/event-stream") != NULL;
    r->max_tokens = r->model->max_output_tokens;
    r->input_bound_tokens = (int64_t)r->body_len; /* tokens, if it counts any, are bytes at least */
    return TG_OK;
}
