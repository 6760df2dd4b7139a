/*
 * dialect_openai.c — OpenAI Chat Completions (POST /v1/chat/completions) and
 * Embeddings (POST /v1/embeddings) requests: the checks OpenAI makes of a body,
 * and the bounds the reservation needs.
 *
 * Bounds: the output is max_completion_tokens (or the older max_tokens, or the
 * model's max_output_tokens when neither is given) times n; the input is the
 * body's bytes (no token is shorter than a byte) plus bounds.image_max_tokens
 * per image part and bounds.document_max_tokens (or the context) per file part,
 * whose tokens the bytes do not hold when they are given by URL or file id.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "dialect.h"
#include "enrich.h"
#include "request.h"

#define MAX_CHOICES 128

/* The output bound per choice: the client's, within the model's maximum. */
static int output_bound(struct tg_request *r, int64_t *out)
{
    char message[200];
    const char *names[] = {"max_completion_tokens", "max_tokens"};
    for (size_t i = 0; i < TG_ARRAY_LEN(names); i++) {
        json_t *v = json_object_get(r->doc, names[i]);
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            snprintf(message, sizeof(message), "%s: must be a positive integer", names[i]);
            return tg_dialect_invalid(r, message);
        }
        if (json_integer_value(v) > r->model->max_output_tokens) {
            snprintf(message, sizeof(message),
                     "%s: %lld is above the maximum of %lld for model \"%s\"", names[i],
                     (long long)json_integer_value(v), (long long)r->model->max_output_tokens,
                     r->model->name);
            return tg_dialect_invalid(r, message);
        }
        *out = json_integer_value(v);
        return TG_OK;
    }
    *out = r->model->max_output_tokens;
    return TG_OK;
}

/* Parts whose tokens the body's bytes do not bound: images and files. */
static int64_t attachment_tokens(const struct tg_request *r, json_t *messages)
{
    const struct tg_bounds_config *b = &r->config->bounds;
    int64_t per_file =
        b->document_max_tokens > 0 ? b->document_max_tokens : r->model->max_input_tokens;
    int64_t total = 0;
    size_t i, j;
    json_t *message, *part;
    json_array_foreach(messages, i, message) {
        json_t *content = json_object_get(message, "content");
        if (!json_is_array(content))
            continue;
        json_array_foreach(content, j, part) {
            const char *type = json_string_value(json_object_get(part, "type"));
            if (type == NULL)
                continue;
            if (strcmp(type, "image_url") == 0)
                total += b->image_max_tokens;
            else if (strcmp(type, "file") == 0 || strcmp(type, "input_audio") == 0)
                total += per_file;
        }
    }
    return total;
}

int tg_dialect_openai_parse_chat(struct tg_request *r)
{
    if (tg_dialect_load_body(r) != TG_OK)
        return TG_ERROR;
    json_t *doc = r->doc;
    json_t *messages = json_object_get(doc, "messages");
    if (messages == NULL)
        return tg_dialect_invalid(r, "messages: Field required");
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return tg_dialect_invalid(r, "messages: must be a non-empty array");
    json_t *stream = json_object_get(doc, "stream");
    if (stream != NULL && !json_is_null(stream) && !json_is_boolean(stream))
        return tg_dialect_invalid(r, "stream: must be a boolean");
    r->stream = json_is_true(stream);
    json_t *options = json_object_get(doc, "stream_options");
    if (options != NULL && !json_is_null(options) && !json_is_object(options))
        return tg_dialect_invalid(r, "stream_options: must be an object");
    json_t *n = json_object_get(doc, "n");
    int64_t choices = 1;
    if (n != NULL && !json_is_null(n)) {
        if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > MAX_CHOICES)
            return tg_dialect_invalid(r, "n: must be an integer from 1 to 128");
        choices = json_integer_value(n);
    }
    int found = tg_dialect_find_model(r, false);
    if (found != TG_OK)
        return found; /* TG_DECLINED: a rule's direct response */
    int64_t per_choice = 0;
    if (output_bound(r, &per_choice) != TG_OK)
        return TG_ERROR;
    r->max_tokens = per_choice * choices;
    r->input_bound_tokens = (int64_t)r->body_len + attachment_tokens(r, messages) +
                            tg_enrich_bound_bytes(r); /* the operator's system text */
    return TG_OK;
}

int tg_dialect_openai_parse_embeddings(struct tg_request *r)
{
    if (tg_dialect_load_body(r) != TG_OK)
        return TG_ERROR;
    json_t *input = json_object_get(r->doc, "input");
    if (input == NULL)
        return tg_dialect_invalid(r, "input: Field required");
    if (!json_is_string(input) && !(json_is_array(input) && json_array_size(input) > 0))
        return tg_dialect_invalid(r, "input: must be a string or a non-empty array");
    int found = tg_dialect_find_model(r, true);
    if (found != TG_OK)
        return found; /* TG_DECLINED: a rule's direct response */
    r->stream = false;
    r->max_tokens = 0;                            /* embeddings have no output tokens */
    r->input_bound_tokens = (int64_t)r->body_len; /* strings and token ids: bytes bound them */
    return TG_OK;
}
