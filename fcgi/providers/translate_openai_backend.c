/*
 * translate_openai_backend.c — the pivot to an OpenAI Chat Completions backend
 * and back (translate_openai_backend.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_common.h"
#include "translate_openai_backend.h"

/* between the texts of a tool result joined into a tool message's string */
#define TEXT_SEP "\n\n"

/* ---- pivot request -> OpenAI ---- */

struct xlate {
    char *err;
    size_t err_size;
    json_t *messages; /* the chat messages built so far */
};

static int oom(struct xlate *x)
{
    return tg_translate_oom(x->err, x->err_size);
}

static bool type_is(json_t *obj, const char *type)
{
    const char *t = json_string_value(json_object_get(obj, "type"));
    return t != NULL && strcmp(t, type) == 0;
}

/* A text part {"type": "text", "text"} for a string (borrowed). */
static json_t *text_part(json_t *text)
{
    return json_pack("{s:s, s:O}", "type", "text", "text", text);
}

/*
 * A message's content from its text parts (stolen): null when there is none and
 * null_when_empty, "" when there is none otherwise, a lone text part's string, or
 * the parts.
 */
static json_t *content_of(json_t *parts, bool null_when_empty)
{
    json_t *content;
    json_t *first = json_array_get(parts, 0);
    if (json_array_size(parts) == 0)
        content = null_when_empty ? json_null() : json_string("");
    else if (json_array_size(parts) == 1 && type_is(first, "text"))
        content = json_incref(json_object_get(first, "text"));
    else
        return parts;
    json_decref(parts);
    return content;
}

static int unsupported_block(struct xlate *x, const char *path, json_t *block)
{
    char q[TG_TRANSLATE_QUOTE_SIZE];
    const char *type = json_string_value(json_object_get(block, "type"));
    if (!json_is_object(block) || type == NULL)
        return tg_translate_decline(x->err, x->err_size, "%s: expected an object with a type",
                                    path);
    return tg_translate_decline(x->err, x->err_size,
                                "%s.type: block type \"%s\" is not supported for this model", path,
                                tg_translate_quote(type, q));
}

/* An image block as an image_url part (*part, new). */
static int image_part(struct xlate *x, json_t *block, const char *path, json_t **part)
{
    json_t *source = json_object_get(block, "source");
    json_t *url = json_object_get(source, "url");
    if (type_is(source, "url") && json_is_string(url)) {
        *part = json_pack("{s:s, s:{s:O}}", "type", "image_url", "image_url", "url", url);
        return *part != NULL ? TG_OK : oom(x);
    }
    json_t *media_type = json_object_get(source, "media_type");
    json_t *data = json_object_get(source, "data");
    if (!type_is(source, "base64") || !json_is_string(media_type) || !json_is_string(data))
        return tg_translate_decline(x->err, x->err_size,
                                    "%s.source: only base64 and url image sources are supported "
                                    "for this model",
                                    path);
    /* "data:" media type ";base64," data */
    size_t mt_len = json_string_length(media_type), data_len = json_string_length(data);
    if (mt_len + data_len > TG_TRANSLATE_MAX_TEXT)
        return tg_translate_decline(x->err, x->err_size, "%s.source.data: too long", path);
    size_t len = 5 + mt_len + 8 + data_len;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return oom(x);
    memcpy(buf, "data:", 5);
    memcpy(buf + 5, json_string_value(media_type), mt_len);
    memcpy(buf + 5 + mt_len, ";base64,", 8);
    memcpy(buf + 13 + mt_len, json_string_value(data), data_len);
    *part = json_pack("{s:s, s:{s:s%}}", "type", "image_url", "image_url", "url", buf, len);
    free(buf);
    return *part != NULL ? TG_OK : oom(x);
}

/* A tool_result block as a tool message, appended to the chat messages. */
static int tool_message(struct xlate *x, json_t *block, const char *path)
{
    char inner[TG_TRANSLATE_PATH_SIZE];
    json_t *id = json_object_get(block, "tool_use_id");
    json_t *content = json_object_get(block, "content"), *text = NULL;
    if (!json_is_string(id))
        return tg_translate_decline(x->err, x->err_size, "%s.tool_use_id: expected a string", path);
    if (content == NULL) {
        text = json_string("");
    } else if (json_is_string(content)) {
        text = json_incref(content);
    } else if (json_is_array(content)) {
        json_t *texts = json_array(), *item;
        size_t k;
        if (texts == NULL)
            return oom(x);
        json_array_foreach(content, k, item) {
            json_t *t = json_object_get(item, "text");
            if (type_is(item, "text") && json_is_string(t)) {
                if (json_array_append(texts, t) != 0) {
                    json_decref(texts);
                    return oom(x);
                }
                continue;
            }
            json_decref(texts);
            snprintf(inner, sizeof(inner), "%s.content[%zu]", path, k);
            if (type_is(item, "image"))
                return tg_translate_decline(x->err, x->err_size,
                                            "%s: images in tool results are not supported for "
                                            "this model",
                                            inner);
            return unsupported_block(x, inner, item);
        }
        int rc = tg_translate_join(texts, TEXT_SEP, &text);
        json_decref(texts);
        if (rc == TG_DECLINED)
            return tg_translate_decline(x->err, x->err_size, "%s.content: too long", path);
        if (rc != TG_OK)
            return oom(x);
    } else {
        return tg_translate_decline(x->err, x->err_size,
                                    "%s.content: expected a string or an array of blocks", path);
    }
    json_t *msg = json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", id, "content", text);
    return json_array_append_new(x->messages, msg) == 0 ? TG_OK : oom(x);
}

/* A tool_use block as a tool call (*call, new). */
static int tool_call(struct xlate *x, json_t *block, const char *path, json_t **call)
{
    json_t *id = json_object_get(block, "id"), *name = json_object_get(block, "name");
    json_t *input = json_object_get(block, "input");
    if (!json_is_string(id) || !json_is_string(name))
        return tg_translate_decline(x->err, x->err_size, "%s: expected an id and a name", path);
    json_t *arguments = input != NULL ? tg_translate_compact(input) : json_string("{}");
    *call = json_pack("{s:O, s:s, s:{s:O, s:o}}", "id", id, "type", "function", "function", "name",
                      name, "arguments", arguments);
    return *call != NULL ? TG_OK : oom(x);
}

static int user_message(struct xlate *x, json_t *blocks, size_t i)
{
    char path[TG_TRANSLATE_PATH_SIZE];
    json_t *parts = json_array();
    if (parts == NULL)
        return oom(x);
    int rc = TG_OK;
    size_t j;
    json_t *block;
    json_array_foreach(blocks, j, block) {
        snprintf(path, sizeof(path), "messages[%zu].content[%zu]", i, j);
        json_t *part = NULL, *text = json_object_get(block, "text");
        if (type_is(block, "text") && json_is_string(text))
            rc = (part = text_part(text)) != NULL ? TG_OK : oom(x);
        else if (type_is(block, "image"))
            rc = image_part(x, block, path, &part);
        else if (type_is(block, "tool_result"))
            rc = tool_message(x, block, path);
        else
            rc = unsupported_block(x, path, block);
        if (rc == TG_OK && part != NULL && json_array_append_new(parts, part) != 0)
            rc = oom(x);
        if (rc != TG_OK)
            break;
    }
    /* a user message of tool results only has said everything through them */
    if (rc != TG_OK || (json_array_size(parts) == 0 && json_array_size(blocks) > 0)) {
        json_decref(parts);
        return rc;
    }
    json_t *msg = json_pack("{s:s, s:o}", "role", "user", "content", content_of(parts, false));
    return json_array_append_new(x->messages, msg) == 0 ? TG_OK : oom(x);
}

static int assistant_message(struct xlate *x, json_t *blocks, size_t i)
{
    char path[TG_TRANSLATE_PATH_SIZE];
    json_t *parts = json_array(), *calls = json_array();
    int rc = parts != NULL && calls != NULL ? TG_OK : oom(x);
    size_t j;
    json_t *block;
    json_array_foreach(blocks, j, block) {
        if (rc != TG_OK)
            break;
        snprintf(path, sizeof(path), "messages[%zu].content[%zu]", i, j);
        json_t *part = NULL, *text = json_object_get(block, "text");
        if (type_is(block, "text") && json_is_string(text)) {
            rc = (part = text_part(text)) != NULL ? TG_OK : oom(x);
            if (rc == TG_OK && json_array_append_new(parts, part) != 0)
                rc = oom(x);
        } else if (type_is(block, "tool_use")) {
            rc = tool_call(x, block, path, &part);
            if (rc == TG_OK && json_array_append_new(calls, part) != 0)
                rc = oom(x);
        } else {
            rc = unsupported_block(x, path, block);
        }
    }
    json_t *msg = NULL;
    if (rc == TG_OK) {
        bool has_calls = json_array_size(calls) > 0;
        msg = json_pack("{s:s, s:o}", "role", "assistant", "content", content_of(parts, has_calls));
        parts = NULL;
        if (msg == NULL || (has_calls && json_object_set(msg, "tool_calls", calls) != 0))
            rc = oom(x);
    }
    json_decref(parts);
    json_decref(calls);
    if (rc == TG_OK && json_array_append_new(x->messages, msg) != 0)
        return oom(x);
    if (rc != TG_OK)
        json_decref(msg);
    return rc;
}

static int translate_messages(struct xlate *x, json_t *messages)
{
    char q[TG_TRANSLATE_QUOTE_SIZE];
    if (!json_is_array(messages))
        return tg_translate_decline(x->err, x->err_size, "messages: expected an array");
    size_t i;
    json_t *msg;
    json_array_foreach(messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        json_t *content = json_object_get(msg, "content"), *blocks;
        if (!json_is_object(msg) || role == NULL)
            return tg_translate_decline(x->err, x->err_size,
                                        "messages[%zu]: expected an object with a role", i);
        bool user = strcmp(role, "user") == 0;
        if (!user && strcmp(role, "assistant") != 0)
            return tg_translate_decline(x->err, x->err_size,
                                        "messages[%zu].role: unknown role \"%s\"", i,
                                        tg_translate_quote(role, q));
        if (json_is_string(content))
            blocks = json_pack("[{s:s, s:O}]", "type", "text", "text", content);
        else if (json_is_array(content))
            blocks = json_incref(content);
        else
            return tg_translate_decline(x->err, x->err_size,
                                        "messages[%zu].content: expected a string or an array "
                                        "of blocks",
                                        i);
        if (blocks == NULL)
            return oom(x);
        int rc = user ? user_message(x, blocks, i) : assistant_message(x, blocks, i);
        json_decref(blocks);
        if (rc != TG_OK)
            return rc;
    }
    return TG_OK;
}

/* The system prompt as the first message (none when it is empty). */
static int translate_system(struct xlate *x, json_t *system)
{
    char path[TG_TRANSLATE_PATH_SIZE];
    json_t *parts = json_array();
    int rc = parts != NULL ? TG_OK : oom(x);
    if (rc == TG_OK && json_is_string(system)) {
        if (json_string_length(system) > 0 && json_array_append_new(parts, text_part(system)) != 0)
            rc = oom(x);
    } else if (rc == TG_OK && json_is_array(system)) {
        size_t j;
        json_t *block;
        json_array_foreach(system, j, block) {
            json_t *text = json_object_get(block, "text");
            snprintf(path, sizeof(path), "system[%zu]", j);
            if (!type_is(block, "text") || !json_is_string(text))
                rc = unsupported_block(x, path, block);
            else if (json_array_append_new(parts, text_part(text)) != 0)
                rc = oom(x);
            if (rc != TG_OK)
                break;
        }
    } else if (rc == TG_OK && system != NULL) {
        rc = tg_translate_decline(x->err, x->err_size,
                                  "system: expected a string or an array of text blocks");
    }
    if (rc != TG_OK || json_array_size(parts) == 0) {
        json_decref(parts);
        return rc;
    }
    json_t *msg = json_pack("{s:s, s:o}", "role", "system", "content", content_of(parts, false));
    return json_array_append_new(x->messages, msg) == 0 ? TG_OK : oom(x);
}

/* (*obj)[key] = value (borrowed; NULL: nothing); when that fails *obj is released, NULL. */
static void set_or_drop(json_t **obj, const char *key, json_t *value)
{
    if (*obj != NULL && value != NULL && json_object_set(*obj, key, value) != 0) {
        json_decref(*obj);
        *obj = NULL;
    }
}

static int translate_tools(struct xlate *x, json_t *tools, json_t *chat)
{
    char path[TG_TRANSLATE_PATH_SIZE], q[TG_TRANSLATE_QUOTE_SIZE];
    if (!json_is_array(tools))
        return tg_translate_decline(x->err, x->err_size, "tools: expected an array");
    json_t *out = json_array();
    if (out == NULL || json_object_set_new(chat, "tools", out) != 0)
        return oom(x);
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool) {
        snprintf(path, sizeof(path), "tools[%zu]", i);
        json_t *type = tg_translate_member(tool, "type");
        if (!json_is_object(tool))
            return tg_translate_decline(x->err, x->err_size, "%s: expected an object", path);
        if (type != NULL && !type_is(tool, "custom"))
            return tg_translate_decline(
                x->err, x->err_size, "%s.type: server tool \"%s\" is not supported for this model",
                path, tg_translate_quote(json_is_string(type) ? json_string_value(type) : "", q));
        json_t *name = json_object_get(tool, "name");
        json_t *description = tg_translate_member(tool, "description");
        json_t *schema = tg_translate_member(tool, "input_schema");
        if (!json_is_string(name))
            return tg_translate_decline(x->err, x->err_size, "%s.name: expected a string", path);
        json_t *function = json_pack("{s:O}", "name", name);
        set_or_drop(&function, "description", json_is_string(description) ? description : NULL);
        set_or_drop(&function, "parameters", schema);
        if (json_array_append_new(
                out, json_pack("{s:s, s:o}", "type", "function", "function", function)) != 0)
            return oom(x);
    }
    return TG_OK;
}

static int translate_tool_choice(struct xlate *x, json_t *choice, json_t *chat)
{
    char q[TG_TRANSLATE_QUOTE_SIZE];
    const char *type = json_string_value(json_object_get(choice, "type"));
    json_t *out;
    if (type == NULL)
        return tg_translate_decline(x->err, x->err_size, "tool_choice.type: expected a string");
    if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0)
        out = json_string(type);
    else if (strcmp(type, "any") == 0)
        out = json_string("required");
    else if (strcmp(type, "tool") == 0 && json_is_string(json_object_get(choice, "name")))
        out = json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name",
                        json_object_get(choice, "name"));
    else if (strcmp(type, "tool") == 0)
        return tg_translate_decline(x->err, x->err_size, "tool_choice.name: expected a string");
    else
        return tg_translate_decline(x->err, x->err_size, "tool_choice.type: unknown type \"%s\"",
                                    tg_translate_quote(type, q));
    if (json_object_set_new(chat, "tool_choice", out) != 0)
        return oom(x);
    if (json_is_true(json_object_get(choice, "disable_parallel_tool_use")) &&
        strcmp(type, "none") != 0 &&
        json_object_set_new(chat, "parallel_tool_calls", json_false()) != 0)
        return oom(x);
    return TG_OK;
}

/* The pivot's top-level fields: mapped, ignored as hints, or declined by name. */
static const char *const mapped_fields[] = {"model", "max_tokens", "messages", "system",
                                            "stop_sequences", "temperature", "top_p", "stream",
                                            "tools", "tool_choice", "metadata",
                                            /* hints (translate_openai_backend.h) */
                                            "service_tier"};

static int check_fields(struct xlate *x, json_t *pivot)
{
    char q[TG_TRANSLATE_QUOTE_SIZE];
    json_t *thinking = tg_translate_member(pivot, "thinking");
    if (thinking != NULL && !type_is(thinking, "disabled"))
        return tg_translate_decline(x->err, x->err_size,
                                    "thinking: extended thinking is not supported for this model");
    if (tg_translate_member(pivot, "top_k") != NULL)
        return tg_translate_decline(x->err, x->err_size, "top_k: not supported for this model");
    const char *key;
    json_t *value;
    json_object_foreach(pivot, key, value) {
        size_t k = 0;
        while (k < TG_ARRAY_LEN(mapped_fields) && strcmp(mapped_fields[k], key) != 0)
            k++;
        if (k == TG_ARRAY_LEN(mapped_fields) && strcmp(key, "thinking") != 0 &&
            strcmp(key, "top_k") != 0 && !json_is_null(value))
            return tg_translate_decline(x->err, x->err_size, "%s: not supported for this model",
                                        tg_translate_quote(key, q));
    }
    return TG_OK;
}

/* temperature, top_p, stop_sequences, stream and metadata.user_id. */
static int translate_sampling(struct xlate *x, json_t *pivot, json_t *chat)
{
    static const char *const numbers[] = {"temperature", "top_p"};
    for (size_t k = 0; k < TG_ARRAY_LEN(numbers); k++) {
        json_t *v = tg_translate_member(pivot, numbers[k]);
        if (v != NULL && !json_is_number(v))
            return tg_translate_decline(x->err, x->err_size, "%s: expected a number", numbers[k]);
        if (v != NULL && json_object_set(chat, numbers[k], v) != 0)
            return oom(x);
    }
    json_t *stop = tg_translate_member(pivot, "stop_sequences");
    if (stop != NULL && !json_is_array(stop))
        return tg_translate_decline(x->err, x->err_size, "stop_sequences: expected an array");
    if (json_array_size(stop) > 0 && json_object_set(chat, "stop", stop) != 0)
        return oom(x);
    json_t *stream = tg_translate_member(pivot, "stream");
    if (stream != NULL && !json_is_boolean(stream))
        return tg_translate_decline(x->err, x->err_size, "stream: expected a boolean");
    if (stream != NULL && json_object_set(chat, "stream", stream) != 0)
        return oom(x);
    /* usage comes in a stream only when asked for, and Tollgate bills by it */
    if (json_is_true(stream) &&
        json_object_set_new(chat, "stream_options", json_pack("{s:b}", "include_usage", 1)) != 0)
        return oom(x);
    json_t *user = json_object_get(tg_translate_member(pivot, "metadata"), "user_id");
    if (json_is_string(user) && json_object_set(chat, "user", user) != 0)
        return oom(x);
    return TG_OK;
}

static int translate_request(struct xlate *x, json_t *pivot, const char *upstream_model,
                             json_t *chat)
{
    int rc;
    if (!json_is_object(pivot))
        return tg_translate_decline(x->err, x->err_size, "the request body must be a JSON object");
    if ((rc = check_fields(x, pivot)) != TG_OK)
        return rc;
    json_t *model = json_object_get(pivot, "model");
    json_t *max_tokens = json_object_get(pivot, "max_tokens");
    if (upstream_model == NULL && !json_is_string(model))
        return tg_translate_decline(x->err, x->err_size, "model: expected a string");
    if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1)
        return tg_translate_decline(x->err, x->err_size, "max_tokens: expected a positive integer");
    json_t *name = upstream_model != NULL ? json_string(upstream_model) : json_incref(model);
    if (json_object_set_new(chat, "model", name) != 0 ||
        json_object_set(chat, "messages", x->messages) != 0)
        return oom(x);
    if ((rc = translate_system(x, tg_translate_member(pivot, "system"))) != TG_OK ||
        (rc = translate_messages(x, json_object_get(pivot, "messages"))) != TG_OK)
        return rc;
    if (json_object_set(chat, "max_completion_tokens", max_tokens) != 0)
        return oom(x);
    if ((rc = translate_sampling(x, pivot, chat)) != TG_OK)
        return rc;
    json_t *tools = tg_translate_member(pivot, "tools");
    json_t *choice = tg_translate_member(pivot, "tool_choice");
    if (tools != NULL && (rc = translate_tools(x, tools, chat)) != TG_OK)
        return rc;
    if (choice != NULL && !json_is_object(choice))
        return tg_translate_decline(x->err, x->err_size, "tool_choice: expected an object");
    if (choice != NULL && json_array_size(tools) > 0 &&
        (rc = translate_tool_choice(x, choice, chat)) != TG_OK)
        return rc;
    return TG_OK;
}

int tg_translate_pivot_request_to_openai(json_t *pivot, const char *upstream_model, json_t **chat,
                                         char *err, size_t err_size)
{
    struct xlate x = {.err = err, .err_size = err_size, .messages = json_array()};
    json_t *out = json_object();
    int rc = x.messages != NULL && out != NULL ? translate_request(&x, pivot, upstream_model, out)
                                               : tg_translate_oom(err, err_size);
    json_decref(x.messages);
    if (rc != TG_OK) {
        json_decref(out);
        return rc;
    }
    *chat = out;
    return TG_OK;
}

/* ---- OpenAI reply -> pivot ---- */

const char *tg_translate_openai_stop_reason(const char *finish_reason)
{
    static const char *const reasons[][2] = {{"stop", "end_turn"},
                                             {"length", "max_tokens"},
                                             {"tool_calls", "tool_use"},
                                             {"function_call", "tool_use"},
                                             {"content_filter", "refusal"}};
    for (size_t k = 0; finish_reason != NULL && k < TG_ARRAY_LEN(reasons); k++)
        if (strcmp(reasons[k][0], finish_reason) == 0)
            return reasons[k][1];
    return "end_turn";
}

static int64_t count(json_t *obj, const char *key)
{
    json_int_t n = json_integer_value(json_object_get(obj, key));
    return n > 0 ? (int64_t)n : 0;
}

void tg_translate_openai_usage_read(json_t *usage, struct tg_usage *out)
{
    if (!json_is_object(usage))
        return;
    int64_t prompt = count(usage, "prompt_tokens");
    int64_t cached = count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    if (cached > prompt)
        cached = prompt;
    out->input_tokens = prompt - cached;
    out->cache_read_tokens = cached;
    out->cache_write_tokens = 0;
    /* reasoning_tokens are part of completion_tokens already */
    out->output_tokens = count(usage, "completion_tokens");
}

json_t *tg_translate_pivot_usage_json(const struct tg_usage *usage)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)usage->input_tokens,
                     "output_tokens", (json_int_t)usage->output_tokens, "cache_read_input_tokens",
                     (json_int_t)usage->cache_read_tokens, "cache_creation_input_tokens",
                     (json_int_t)usage->cache_write_tokens);
}

json_t *tg_translate_openai_error_to_pivot(json_t *error_body, const char *fallback_message)
{
    static const char *const kept[] = {
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
        "request_too_large",     "rate_limit_error",     "api_error",        "overloaded_error"};
    static const char *const rate[] = {"requests", "tokens", "insufficient_quota"};
    json_t *error = json_object_get(error_body, "error");
    const char *type = json_string_value(json_object_get(error, "type"));
    json_t *message = json_object_get(error, "message");
    const char *pivot_type = "api_error";
    for (size_t k = 0; type != NULL && k < TG_ARRAY_LEN(kept); k++)
        if (strcmp(kept[k], type) == 0)
            pivot_type = kept[k];
    for (size_t k = 0; type != NULL && k < TG_ARRAY_LEN(rate); k++)
        if (strcmp(rate[k], type) == 0)
            pivot_type = "rate_limit_error";
    if (!json_is_string(message))
        return json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", "api_error",
                         "message", fallback_message);
    return json_pack("{s:s, s:{s:s, s:O}}", "type", "error", "error", "type", pivot_type, "message",
                     message);
}

/* A tool call as a tool_use block (*block, new); see the header for odd arguments. */
static int tool_use_block(json_t *call, json_t **block)
{
    json_t *function = json_object_get(call, "function");
    json_t *arguments = json_object_get(function, "arguments"), *input = NULL;
    int rc = tg_translate_parse_object(json_string_value(arguments), json_string_length(arguments),
                                       &input);
    if (rc == TG_ERROR)
        return TG_ERROR;
    if (rc == TG_DECLINED) /* the model's malformed output, kept as it came */
        input = json_pack("{s:O}", "_raw_arguments", arguments);
    *block =
        json_pack("{s:s, s:O?, s:O?, s:o}", "type", "tool_use", "id", json_object_get(call, "id"),
                  "name", json_object_get(function, "name"), "input", input);
    return *block != NULL ? TG_OK : TG_ERROR;
}

/* The choice's message as pivot content blocks (into content); *refused when only a refusal. */
static int reply_blocks(json_t *message, json_t *content, bool *refused)
{
    json_t *text = json_object_get(message, "content");
    json_t *refusal = json_object_get(message, "refusal");
    if (json_is_string(text) &&
        tg_translate_append_text(content, json_string_value(text), json_string_length(text)))
        return TG_ERROR;
    size_t k;
    json_t *part;
    json_array_foreach(json_is_array(text) ? text : NULL, k, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t) &&
            tg_translate_append_text(content, json_string_value(t), json_string_length(t)))
            return TG_ERROR;
    }
    if (json_array_size(content) == 0 && json_is_string(refusal) &&
        json_string_length(refusal) > 0) {
        *refused = true;
        if (tg_translate_append_text(content, json_string_value(refusal),
                                     json_string_length(refusal)) != TG_OK)
            return TG_ERROR;
    }
    json_t *call, *block;
    json_array_foreach(json_object_get(message, "tool_calls"), k, call) {
        if (tool_use_block(call, &block) != TG_OK || json_array_append_new(content, block) != 0)
            return TG_ERROR;
    }
    return TG_OK;
}

int tg_translate_openai_reply_to_pivot(json_t *chat, const char *model, json_t **reply, char *err,
                                       size_t err_size)
{
    json_t *choice = json_array_get(json_object_get(chat, "choices"), 0);
    json_t *message = json_object_get(choice, "message");
    if (!json_is_object(message))
        return tg_translate_decline(err, err_size, "the reply has no choice with a message");
    const char *id = json_string_value(json_object_get(chat, "id"));
    if (model == NULL)
        model = json_string_value(json_object_get(chat, "model"));
    json_t *content = json_array();
    bool refused = false;
    if (content == NULL || reply_blocks(message, content, &refused) != TG_OK) {
        json_decref(content);
        return tg_translate_oom(err, err_size);
    }
    const char *stop = tg_translate_openai_stop_reason(
        json_string_value(json_object_get(choice, "finish_reason")));
    json_t *last = json_array_get(content, json_array_size(content) - 1);
    if (type_is(last, "tool_use"))
        stop = "tool_use";
    else if (refused)
        stop = "refusal";
    struct tg_usage usage = {0};
    tg_translate_openai_usage_read(json_object_get(chat, "usage"), &usage);
    json_t *out = json_pack("{s:o, s:s, s:s, s:s, s:o, s:s, s:n, s:o}", "id",
                            json_sprintf("msg_%s", id != NULL ? id : ""), "type", "message", "role",
                            "assistant", "model", model != NULL ? model : "", "content", content,
                            "stop_reason", stop, "stop_sequence", "usage",
                            tg_translate_pivot_usage_json(&usage));
    if (out == NULL)
        return tg_translate_oom(err, err_size);
    *reply = out;
    return TG_OK;
}
