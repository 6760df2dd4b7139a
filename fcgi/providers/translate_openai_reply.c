/*
 * translate_openai_reply.c — the pivot's reply, usage and errors as an
 * OpenAI-SDK client reads them (translate_openai_reply.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_common.h"
#include "translate_openai_reply.h"

const char *tg_translate_pivot_finish_reason(const char *stop_reason)
{
    static const char *const reasons[][2] = {
        {"end_turn", "stop"},          {"stop_sequence", "stop"},
        {"max_tokens", "length"},      {"tool_use", "tool_calls"},
        {"refusal", "content_filter"}, {"model_context_window_exceeded", "length"},
    };
    for (size_t k = 0; stop_reason != NULL && k < TG_ARRAY_LEN(reasons); k++)
        if (strcmp(reasons[k][0], stop_reason) == 0)
            return reasons[k][1];
    return "stop";
}

void tg_translate_pivot_usage_read(json_t *usage, struct tg_usage *out)
{
    json_t *v;
    if (json_is_integer(v = json_object_get(usage, "input_tokens")))
        out->input_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "cache_read_input_tokens")))
        out->cache_read_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "cache_creation_input_tokens")))
        out->cache_write_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "output_tokens")))
        out->output_tokens = json_integer_value(v);
}

json_t *tg_translate_pivot_usage_to_openai(const struct tg_usage *usage)
{
    json_int_t prompt = usage->input_tokens + usage->cache_read_tokens + usage->cache_write_tokens;
    json_int_t completion = usage->output_tokens;
    return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", prompt, "completion_tokens",
                     completion, "total_tokens", prompt + completion, "prompt_tokens_details",
                     "cached_tokens", (json_int_t)usage->cache_read_tokens);
}

json_t *tg_translate_pivot_error_to_openai(json_t *error_body, const char *fallback_message)
{
    json_t *error = json_object_get(error_body, "error");
    json_t *type = json_object_get(error, "type"), *message = json_object_get(error, "message");
    if (!json_is_string(type) || !json_is_string(message))
        return json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", fallback_message, "type",
                         "api_error", "param", "code");
    return json_pack("{s:{s:O, s:O, s:n, s:n}}", "error", "message", message, "type", type, "param",
                     "code");
}

/* The message of a choice: texts concatenated (null when none), tool_use blocks as tool_calls. */
static int choice_message(json_t *content, json_t **message, char *err, size_t err_size)
{
    json_t *texts = json_array(), *calls = json_array(), *text = NULL;
    int rc = texts != NULL && calls != NULL ? TG_OK : TG_ERROR;
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (rc != TG_OK || type == NULL)
            continue;
        if (strcmp(type, "text") == 0 && json_is_string(json_object_get(block, "text"))) {
            if (json_array_append(texts, json_object_get(block, "text")) != 0)
                rc = TG_ERROR;
        } else if (strcmp(type, "tool_use") == 0) {
            json_t *input = json_object_get(block, "input");
            json_t *arguments = input != NULL ? tg_translate_compact(input) : json_string("{}");
            json_t *call =
                json_pack("{s:O?, s:s, s:{s:O?, s:o}}", "id", json_object_get(block, "id"), "type",
                          "function", "function", "name", json_object_get(block, "name"),
                          "arguments", arguments);
            if (json_array_append_new(calls, call) != 0)
                rc = TG_ERROR;
        }
        /* thinking, redacted_thinking and server tools' blocks have no place here */
    }
    if (rc == TG_OK && json_array_size(texts) > 0)
        rc = tg_translate_join(texts, "", &text);
    if (rc == TG_OK) {
        *message = json_pack("{s:s, s:o}", "role", "assistant", "content",
                             text != NULL ? text : json_null());
        if (*message != NULL && json_array_size(calls) > 0 &&
            json_object_set(*message, "tool_calls", calls) != 0) {
            json_decref(*message);
            *message = NULL;
        }
        if (*message == NULL)
            rc = TG_ERROR;
    }
    json_decref(texts);
    json_decref(calls);
    if (rc == TG_DECLINED)
        return tg_translate_decline(err, err_size, "the reply's text is too long");
    return rc == TG_OK ? TG_OK : tg_translate_oom(err, err_size);
}

int tg_translate_pivot_reply_to_openai(json_t *reply, const char *model, int64_t created,
                                       json_t **chat, char *err, size_t err_size)
{
    json_t *content = json_object_get(reply, "content");
    const char *id = json_string_value(json_object_get(reply, "id"));
    if (!json_is_object(reply) || !json_is_array(content))
        return tg_translate_decline(err, err_size, "the reply is not a message with content");
    if (model == NULL)
        model = json_string_value(json_object_get(reply, "model"));
    json_t *message = NULL;
    int rc = choice_message(content, &message, err, err_size);
    if (rc != TG_OK)
        return rc;
    struct tg_usage usage = {0};
    tg_translate_pivot_usage_read(json_object_get(reply, "usage"), &usage);
    const char *finish =
        tg_translate_pivot_finish_reason(json_string_value(json_object_get(reply, "stop_reason")));
    json_t *out = json_pack(
        "{s:o, s:s, s:I, s:s, s:[{s:i, s:o, s:s}], s:o}", "id",
        json_sprintf("chatcmpl-%s", id != NULL ? id : ""), "object", "chat.completion", "created",
        (json_int_t)created, "model", model != NULL ? model : "", "choices", "index", 0, "message",
        message, "finish_reason", finish, "usage", tg_translate_pivot_usage_to_openai(&usage));
    if (out == NULL)
        return tg_translate_oom(err, err_size);
    *chat = out;
    return TG_OK;
}
