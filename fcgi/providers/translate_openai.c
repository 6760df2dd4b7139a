/*
 * translate_openai.c — an OpenAI-SDK client's chat request into a pivot
 * request. What is mapped, ignored or declined is in translate_openai.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "translate_common.h"
#include "translate_openai.h"

/* between hoisted system texts: separate instructions stay apart */
#define SYSTEM_SEP "\n\n"

/* ---- OpenAI request -> pivot ---- */

/* One translation: where messages go, and the error buffer. */
struct xlate {
    char *err;
    size_t err_size;
    json_t *system_texts; /* strings of the hoisted system and developer messages */
    json_t *messages;     /* pivot messages; content is an array of blocks until finish_messages */
};

/* The request arguments understood; any other is refused, as OpenAI does. */
static const char *const known_arguments[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature", "top_p",
    "stream", "tools", "tool_choice", "parallel_tool_calls", "user", "safety_identifier",
    /* declined below when set to anything but their default */
    "n", "logprobs", "top_logprobs", "audio", "modalities", "prediction", "presence_penalty",
    "frequency_penalty", "logit_bias", "response_format", "functions", "function_call",
    "web_search_options",
    /* hints with no pivot field: ignored (translate_openai.h) */
    "seed", "stream_options", "store", "metadata", "service_tier", "reasoning_effort", "verbosity",
    "prompt_cache_key", "prompt_cache_retention"};

static int check_known_arguments(struct xlate *x, json_t *chat)
{
    const char *key;
    json_t *value;
    char q[TG_TRANSLATE_QUOTE_SIZE];
    json_object_foreach(chat, key, value) {
        size_t k = 0;
        while (k < TG_ARRAY_LEN(known_arguments) && strcmp(known_arguments[k], key) != 0)
            k++;
        if (k == TG_ARRAY_LEN(known_arguments))
            return tg_translate_decline(x->err, x->err_size, "%s: unrecognized request argument",
                                        tg_translate_quote(key, q));
    }
    return TG_OK;
}

/* Features the pivot cannot express, each declined naming the argument. */
static int check_unsupported(struct xlate *x, json_t *chat)
{
    json_t *v;
    char q[TG_TRANSLATE_QUOTE_SIZE];
    if ((v = tg_translate_member(chat, "n")) != NULL) {
        if (!json_is_integer(v))
            return tg_translate_decline(x->err, x->err_size, "n: expected an integer");
        if (json_integer_value(v) != 1)
            return tg_translate_decline(x->err, x->err_size,
                                        "n: only 1 choice is supported for this model, got %lld",
                                        (long long)json_integer_value(v));
    }
    if ((v = tg_translate_member(chat, "logprobs")) != NULL && !json_is_false(v))
        return tg_translate_decline(x->err, x->err_size, "logprobs: not supported for this model");
    if ((v = tg_translate_member(chat, "top_logprobs")) != NULL &&
        !(json_is_integer(v) && json_integer_value(v) == 0))
        return tg_translate_decline(x->err, x->err_size,
                                    "top_logprobs: not supported for this model");
    if (tg_translate_member(chat, "audio") != NULL)
        return tg_translate_decline(x->err, x->err_size,
                                    "audio: audio output is not supported for this model");
    if ((v = tg_translate_member(chat, "modalities")) != NULL) {
        size_t i;
        json_t *m;
        if (!json_is_array(v))
            return tg_translate_decline(x->err, x->err_size, "modalities: expected an array");
        json_array_foreach(v, i, m) {
            if (!json_is_string(m) || strcmp(json_string_value(m), "text") != 0)
                return tg_translate_decline(
                    x->err, x->err_size,
                    "modalities[%zu]: only \"text\" output is supported for this model", i);
        }
    }
    if (tg_translate_member(chat, "prediction") != NULL)
        return tg_translate_decline(x->err, x->err_size,
                                    "prediction: not supported for this model");
    static const char *const penalties[] = {"presence_penalty", "frequency_penalty"};
    for (size_t k = 0; k < TG_ARRAY_LEN(penalties); k++) {
        if ((v = tg_translate_member(chat, penalties[k])) == NULL)
            continue;
        if (!json_is_number(v))
            return tg_translate_decline(x->err, x->err_size, "%s: expected a number", penalties[k]);
        if (json_number_value(v) != 0.0)
            return tg_translate_decline(x->err, x->err_size,
                                        "%s: only 0 is supported for this model", penalties[k]);
    }
    if ((v = tg_translate_member(chat, "logit_bias")) != NULL &&
        !(json_is_object(v) && json_object_size(v) == 0))
        return tg_translate_decline(x->err, x->err_size,
                                    "logit_bias: not supported for this model");
    if ((v = tg_translate_member(chat, "response_format")) != NULL) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (type == NULL)
            return tg_translate_decline(x->err, x->err_size,
                                        "response_format.type: expected a string");
        if (strcmp(type, "text") != 0)
            return tg_translate_decline(
                x->err, x->err_size, "response_format: type \"%s\" is not supported for this model",
                tg_translate_quote(type, q));
    }
    if (tg_translate_member(chat, "functions") != NULL)
        return tg_translate_decline(x->err, x->err_size,
                                    "functions: deprecated and not supported, use tools");
    if (tg_translate_member(chat, "function_call") != NULL)
        return tg_translate_decline(x->err, x->err_size,
                                    "function_call: deprecated and not supported, use tool_choice");
    if (tg_translate_member(chat, "web_search_options") != NULL)
        return tg_translate_decline(x->err, x->err_size,
                                    "web_search_options: not supported for this model");
    return TG_OK;
}

/* Appends a new block (stolen) to blocks; TG_ERROR when out of memory. */
static int append(json_t *blocks, json_t *block)
{
    return json_array_append_new(blocks, block) == 0 ? TG_OK : TG_ERROR;
}

/*
 * Splits "data:<media type>[;param...];base64,<data>" into its media type and
 * data. false when url is not a base64 data URL with a media type.
 */
static bool split_data_url(const char *url, size_t len, const char **media_type,
                           size_t *media_type_len, const char **data, size_t *data_len)
{
    if (len < 5 || strncasecmp(url, "data:", 5) != 0)
        return false;
    const char *comma = memchr(url, ',', len);
    if (comma == NULL)
        return false;
    const char *header = url + 5;
    size_t header_len = (size_t)(comma - header);
    if (header_len < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return false;
    const char *semi = memchr(header, ';', header_len);
    *media_type = header;
    *media_type_len = (size_t)(semi - header);
    *data = comma + 1;
    *data_len = len - (size_t)(*data - url);
    return *media_type_len > 0;
}

static bool is_http_url(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static json_t *base64_source(const char *media_type, size_t media_type_len, const char *data,
                             size_t data_len)
{
    return json_pack("{s:s, s:s%, s:s%}", "type", "base64", "media_type", media_type,
                     media_type_len, "data", data, data_len);
}

static int image_part(struct xlate *x, json_t *part, const char *path, json_t *blocks)
{
    json_t *url = json_object_get(json_object_get(part, "image_url"), "url");
    if (!json_is_string(url))
        return tg_translate_decline(x->err, x->err_size, "%s.image_url.url: expected a string",
                                    path);
    const char *s = json_string_value(url), *mt, *data;
    size_t mt_len, data_len;
    json_t *source;
    if (split_data_url(s, json_string_length(url), &mt, &mt_len, &data, &data_len))
        source = base64_source(mt, mt_len, data, data_len);
    else if (is_http_url(s))
        source = json_pack("{s:s, s:O}", "type", "url", "url", url);
    else
        return tg_translate_decline(
            x->err, x->err_size, "%s.image_url.url: expected an http(s) URL or a base64 data URL",
            path);
    if (source == NULL)
        return tg_translate_oom(x->err, x->err_size);
    if (append(blocks, json_pack("{s:s, s:o}", "type", "image", "source", source)) != TG_OK)
        return tg_translate_oom(x->err, x->err_size);
    return TG_OK;
}

static int file_part(struct xlate *x, json_t *part, const char *path, json_t *blocks)
{
    json_t *file = json_object_get(part, "file");
    if (!json_is_object(file))
        return tg_translate_decline(x->err, x->err_size, "%s.file: expected an object", path);
    json_t *file_data = tg_translate_member(file, "file_data");
    if (!json_is_string(file_data)) {
        if (tg_translate_member(file, "file_id") != NULL)
            return tg_translate_decline(
                x->err, x->err_size,
                "%s.file.file_id: file references are not supported for this model", path);
        return tg_translate_decline(x->err, x->err_size, "%s.file.file_data: expected a string",
                                    path);
    }
    const char *mt, *data;
    size_t mt_len, data_len;
    if (!split_data_url(json_string_value(file_data), json_string_length(file_data), &mt, &mt_len,
                        &data, &data_len))
        return tg_translate_decline(x->err, x->err_size,
                                    "%s.file.file_data: expected a base64 data URL", path);
    json_t *doc = json_pack("{s:s, s:o}", "type", "document", "source",
                            base64_source(mt, mt_len, data, data_len));
    json_t *filename = tg_translate_member(file, "filename");
    if (doc != NULL && json_is_string(filename) && json_object_set(doc, "title", filename) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    if (append(blocks, doc) != TG_OK)
        return tg_translate_oom(x->err, x->err_size);
    return TG_OK;
}

/* Content part types of OpenAI's: refused by name where a role may not hold them. */
static const char *const openai_part_types[] = {"text", "image_url", "input_audio", "file",
                                                "refusal"};

/*
 * content (a string or an array of parts) of a message of role as blocks
 * appended to blocks; when texts is not NULL, the texts are appended to it as
 * strings instead (system and developer messages).
 */
static int content_blocks(struct xlate *x, json_t *content, const char *path, const char *role,
                          json_t *blocks, json_t *texts)
{
    char part_path[TG_TRANSLATE_PATH_SIZE], q[TG_TRANSLATE_QUOTE_SIZE];
    if (json_is_string(content)) {
        if (texts != NULL)
            return json_array_append(texts, content) == 0 ? TG_OK
                                                          : tg_translate_oom(x->err, x->err_size);
        if (tg_translate_append_text(blocks, json_string_value(content),
                                     json_string_length(content)) != TG_OK)
            return tg_translate_oom(x->err, x->err_size);
        return TG_OK;
    }
    if (!json_is_array(content))
        return tg_translate_decline(x->err, x->err_size,
                                    "%s: expected a string or an array of content parts", path);
    bool user = strcmp(role, "user") == 0, assistant = strcmp(role, "assistant") == 0;
    size_t j;
    json_t *part;
    json_array_foreach(content, j, part) {
        snprintf(part_path, sizeof(part_path), "%s[%zu]", path, j);
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!json_is_object(part) || type == NULL)
            return tg_translate_decline(x->err, x->err_size, "%s: expected an object with a type",
                                        part_path);
        bool text = strcmp(type, "text") == 0;
        bool refusal = assistant && strcmp(type, "refusal") == 0;
        int rc;
        if (text || refusal) {
            json_t *t = json_object_get(part, text ? "text" : "refusal");
            if (!json_is_string(t))
                return tg_translate_decline(x->err, x->err_size, "%s.%s: expected a string",
                                            part_path, text ? "text" : "refusal");
            if (texts != NULL)
                rc = json_array_append(texts, t) == 0 ? TG_OK : TG_ERROR;
            else
                rc = tg_translate_append_text(blocks, json_string_value(t), json_string_length(t));
            if (rc != TG_OK)
                return tg_translate_oom(x->err, x->err_size);
            continue;
        }
        if (user && (strcmp(type, "image_url") == 0 || strcmp(type, "file") == 0)) {
            rc = type[0] == 'i' ? image_part(x, part, part_path, blocks)
                                : file_part(x, part, part_path, blocks);
            if (rc != TG_OK)
                return rc;
            continue;
        }
        size_t k = 0;
        while (k < TG_ARRAY_LEN(openai_part_types) && strcmp(openai_part_types[k], type) != 0)
            k++;
        if (k < TG_ARRAY_LEN(openai_part_types) && strcmp(type, "input_audio") != 0)
            return tg_translate_decline(x->err, x->err_size,
                                        "%s.type: content part type \"%s\" is not allowed in %s "
                                        "messages",
                                        part_path, type, role);
        return tg_translate_decline(x->err, x->err_size,
                                    "%s.type: content part type \"%s\" is not supported for this "
                                    "model",
                                    part_path, tg_translate_quote(type, q));
    }
    return TG_OK;
}

static int tool_calls_blocks(struct xlate *x, json_t *calls, size_t i, json_t *blocks)
{
    char path[TG_TRANSLATE_PATH_SIZE], q[TG_TRANSLATE_QUOTE_SIZE];
    if (!json_is_array(calls))
        return tg_translate_decline(x->err, x->err_size,
                                    "messages[%zu].tool_calls: expected an array", i);
    size_t j;
    json_t *call;
    json_array_foreach(calls, j, call) {
        snprintf(path, sizeof(path), "messages[%zu].tool_calls[%zu]", i, j);
        if (!json_is_object(call))
            return tg_translate_decline(x->err, x->err_size, "%s: expected an object", path);
        json_t *type = tg_translate_member(call, "type");
        if (type != NULL &&
            !(json_is_string(type) && strcmp(json_string_value(type), "function") == 0))
            return tg_translate_decline(
                x->err, x->err_size,
                "%s.type: tool call type \"%s\" is not supported for this model", path,
                tg_translate_quote(json_is_string(type) ? json_string_value(type) : "", q));
        json_t *id = json_object_get(call, "id");
        json_t *function = json_object_get(call, "function");
        json_t *name = json_object_get(function, "name");
        json_t *arguments = json_object_get(function, "arguments");
        if (!json_is_string(id))
            return tg_translate_decline(x->err, x->err_size, "%s.id: expected a string", path);
        if (!json_is_string(name))
            return tg_translate_decline(x->err, x->err_size, "%s.function.name: expected a string",
                                        path);
        if (!json_is_string(arguments))
            return tg_translate_decline(x->err, x->err_size,
                                        "%s.function.arguments: expected a string", path);
        size_t len = strlen(path);
        snprintf(path + len, sizeof(path) - len, ".function.arguments");
        json_t *input = NULL;
        int rc = tg_translate_parse_object(json_string_value(arguments),
                                           json_string_length(arguments), &input);
        if (rc == TG_DECLINED)
            return tg_translate_decline(x->err, x->err_size, "%s: expected a JSON object", path);
        if (rc != TG_OK)
            return tg_translate_oom(x->err, x->err_size);
        if (append(blocks, json_pack("{s:s, s:O, s:O, s:o}", "type", "tool_use", "id", id, "name",
                                     name, "input", input)) != TG_OK)
            return tg_translate_oom(x->err, x->err_size);
    }
    return TG_OK;
}

/* blocks (stolen) appended as a message of role, merged into the last one when it has that role. */
static int push_message(struct xlate *x, const char *role, json_t *blocks)
{
    size_t n = json_array_size(x->messages);
    json_t *last = n > 0 ? json_array_get(x->messages, n - 1) : NULL;
    const char *last_role = json_string_value(json_object_get(last, "role"));
    int rc;
    if (last_role != NULL && strcmp(last_role, role) == 0) {
        rc = json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
    } else {
        rc = json_array_append_new(x->messages,
                                   json_pack("{s:s, s:o}", "role", role, "content", blocks));
    }
    return rc == 0 ? TG_OK : tg_translate_oom(x->err, x->err_size);
}

static int one_message(struct xlate *x, json_t *msg, size_t i)
{
    char path[TG_TRANSLATE_PATH_SIZE], q[TG_TRANSLATE_QUOTE_SIZE];
    if (!json_is_object(msg))
        return tg_translate_decline(x->err, x->err_size, "messages[%zu]: expected an object", i);
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (role == NULL)
        return tg_translate_decline(x->err, x->err_size, "messages[%zu].role: expected a string",
                                    i);
    snprintf(path, sizeof(path), "messages[%zu].content", i);
    json_t *content = tg_translate_member(msg, "content");
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return content_blocks(x, content, path, role, NULL, x->system_texts);
    if (strcmp(role, "function") == 0)
        return tg_translate_decline(
            x->err, x->err_size,
            "messages[%zu].role: role \"function\" is deprecated and not supported, "
            "use \"tool\"",
            i);
    bool user = strcmp(role, "user") == 0, assistant = strcmp(role, "assistant") == 0;
    bool tool = strcmp(role, "tool") == 0;
    if (!user && !assistant && !tool)
        return tg_translate_decline(x->err, x->err_size, "messages[%zu].role: unknown role \"%s\"",
                                    i, tg_translate_quote(role, q));
    json_t *blocks = json_array();
    if (blocks == NULL)
        return tg_translate_oom(x->err, x->err_size);
    int rc = TG_OK;
    if (user) {
        rc = content_blocks(x, content, path, role, blocks, NULL);
    } else if (assistant) {
        json_t *refusal = tg_translate_member(msg, "refusal");
        if (tg_translate_member(msg, "function_call") != NULL)
            rc = tg_translate_decline(
                x->err, x->err_size,
                "messages[%zu].function_call: deprecated and not supported, use "
                "tool_calls",
                i);
        else if (tg_translate_member(msg, "audio") != NULL)
            rc = tg_translate_decline(x->err, x->err_size,
                                      "messages[%zu].audio: audio is not supported for this model",
                                      i);
        else if (content != NULL)
            rc = content_blocks(x, content, path, role, blocks, NULL);
        else if (json_is_string(refusal)) /* what the assistant said when it refused */
            rc = tg_translate_append_text(blocks, json_string_value(refusal),
                                          json_string_length(refusal));
        json_t *calls = tg_translate_member(msg, "tool_calls");
        if (rc == TG_OK && calls != NULL)
            rc = tool_calls_blocks(x, calls, i, blocks);
    } else {
        /* a string stays a string; parts become text blocks (the pivot takes both) */
        json_t *id = json_object_get(msg, "tool_call_id"), *result = NULL;
        if (!json_is_string(id))
            rc = tg_translate_decline(x->err, x->err_size,
                                      "messages[%zu].tool_call_id: expected a string", i);
        else if (json_is_string(content))
            result = json_incref(content);
        else if ((result = json_array()) == NULL)
            rc = TG_ERROR;
        else
            rc = content_blocks(x, content, path, role, result, NULL);
        if (rc == TG_OK && append(blocks, json_pack("{s:s, s:O, s:O}", "type", "tool_result",
                                                    "tool_use_id", id, "content", result)) != TG_OK)
            rc = TG_ERROR;
        json_decref(result);
    }
    if (rc != TG_OK) {
        json_decref(blocks);
        return rc == TG_ERROR ? tg_translate_oom(x->err, x->err_size) : rc;
    }
    return push_message(x, assistant ? "assistant" : "user", blocks);
}

/*
 * Gives each pivot message its final content: no block at all is "", a lone
 * plain text block is its string (the common case reads as the client wrote it).
 */
static int finish_messages(struct xlate *x)
{
    size_t i;
    json_t *msg;
    json_array_foreach(x->messages, i, msg) {
        json_t *blocks = json_object_get(msg, "content"), *content = NULL;
        json_t *first = json_array_get(blocks, 0);
        if (json_array_size(blocks) == 0)
            content = json_string("");
        else if (json_array_size(blocks) == 1 && json_object_size(first) == 2 &&
                 strcmp(json_string_value(json_object_get(first, "type")), "text") == 0)
            content = json_incref(json_object_get(first, "text"));
        else
            continue;
        if (json_object_set_new(msg, "content", content) != 0)
            return tg_translate_oom(x->err, x->err_size);
    }
    return TG_OK;
}

static int translate_messages(struct xlate *x, json_t *chat, json_t *pivot)
{
    json_t *messages = json_object_get(chat, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return tg_translate_decline(x->err, x->err_size, "messages: expected a non-empty array");
    size_t i;
    json_t *msg;
    json_array_foreach(messages, i, msg) {
        int rc = one_message(x, msg, i);
        if (rc != TG_OK)
            return rc;
    }
    int rc = finish_messages(x);
    if (rc != TG_OK)
        return rc;
    if (json_array_size(x->system_texts) > 0) {
        json_t *system;
        rc = tg_translate_join(x->system_texts, SYSTEM_SEP, &system);
        if (rc == TG_DECLINED)
            return tg_translate_decline(x->err, x->err_size,
                                        "messages: the system messages are too long");
        if (rc != TG_OK || json_object_set_new(pivot, "system", system) != 0)
            return tg_translate_oom(x->err, x->err_size);
    }
    if (json_object_set(pivot, "messages", x->messages) != 0)
        return tg_translate_oom(x->err, x->err_size);
    return TG_OK;
}

static int translate_tools(struct xlate *x, json_t *tools, json_t *pivot)
{
    char path[TG_TRANSLATE_PATH_SIZE], q[TG_TRANSLATE_QUOTE_SIZE];
    json_t *out = json_array();
    if (out == NULL || json_object_set_new(pivot, "tools", out) != 0)
        return tg_translate_oom(x->err, x->err_size);
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool) {
        snprintf(path, sizeof(path), "tools[%zu]", i);
        const char *type = json_string_value(json_object_get(tool, "type"));
        if (!json_is_object(tool) || type == NULL)
            return tg_translate_decline(x->err, x->err_size, "%s: expected an object with a type",
                                        path);
        if (strcmp(type, "function") != 0)
            return tg_translate_decline(x->err, x->err_size,
                                        "%s.type: tool type \"%s\" is not supported for this model",
                                        path, tg_translate_quote(type, q));
        json_t *function = json_object_get(tool, "function");
        json_t *name = json_object_get(function, "name");
        json_t *description = tg_translate_member(function, "description");
        json_t *parameters = tg_translate_member(function, "parameters");
        if (!json_is_string(name))
            return tg_translate_decline(x->err, x->err_size, "%s.function.name: expected a string",
                                        path);
        if (description != NULL && !json_is_string(description))
            return tg_translate_decline(x->err, x->err_size,
                                        "%s.function.description: expected a string", path);
        if (parameters != NULL && !json_is_object(parameters))
            return tg_translate_decline(x->err, x->err_size,
                                        "%s.function.parameters: expected an object", path);
        json_t *schema =
            parameters != NULL ? json_incref(parameters) : json_pack("{s:s}", "type", "object");
        json_t *t = json_pack("{s:O, s:o}", "name", name, "input_schema", schema);
        if (t != NULL && description != NULL && json_object_set(t, "description", description)) {
            json_decref(t);
            t = NULL;
        }
        if (append(out, t) != TG_OK)
            return tg_translate_oom(x->err, x->err_size);
    }
    return TG_OK;
}

/* tool_choice and parallel_tool_calls as the pivot's tool_choice (*choice new, NULL: none). */
static int translate_tool_choice(struct xlate *x, json_t *chat, json_t **choice)
{
    char q[TG_TRANSLATE_QUOTE_SIZE];
    json_t *v = tg_translate_member(chat, "tool_choice"),
           *parallel = tg_translate_member(chat, "parallel_tool_calls");
    *choice = NULL;
    if (parallel != NULL && !json_is_boolean(parallel))
        return tg_translate_decline(x->err, x->err_size, "parallel_tool_calls: expected a boolean");
    if (json_is_string(v)) {
        static const char *const names[][2] = {
            {"auto", "auto"}, {"none", "none"}, {"required", "any"}};
        size_t k = 0;
        while (k < TG_ARRAY_LEN(names) && strcmp(names[k][0], json_string_value(v)) != 0)
            k++;
        if (k == TG_ARRAY_LEN(names))
            return tg_translate_decline(x->err, x->err_size, "tool_choice: unknown value \"%s\"",
                                        tg_translate_quote(json_string_value(v), q));
        *choice = json_pack("{s:s}", "type", names[k][1]);
    } else if (json_is_object(v)) {
        const char *type = json_string_value(json_object_get(v, "type"));
        json_t *name = json_object_get(json_object_get(v, "function"), "name");
        if (type == NULL)
            return tg_translate_decline(x->err, x->err_size, "tool_choice.type: expected a string");
        if (strcmp(type, "function") != 0)
            return tg_translate_decline(x->err, x->err_size,
                                        "tool_choice.type: \"%s\" is not supported for this model",
                                        tg_translate_quote(type, q));
        if (!json_is_string(name))
            return tg_translate_decline(x->err, x->err_size,
                                        "tool_choice.function.name: expected a string");
        *choice = json_pack("{s:s, s:O}", "type", "tool", "name", name);
    } else if (v != NULL) {
        return tg_translate_decline(x->err, x->err_size,
                                    "tool_choice: expected a string or an object");
    } else if (json_is_false(parallel)) {
        *choice = json_pack("{s:s}", "type", "auto");
    } else {
        return TG_OK;
    }
    if (*choice == NULL)
        return tg_translate_oom(x->err, x->err_size);
    /* the pivot's "none" takes no other field; nothing runs in parallel then anyway */
    if (json_is_false(parallel) &&
        strcmp(json_string_value(json_object_get(*choice, "type")), "none") != 0 &&
        json_object_set_new(*choice, "disable_parallel_tool_use", json_true()) != 0) {
        json_decref(*choice);
        *choice = NULL;
        return tg_translate_oom(x->err, x->err_size);
    }
    return TG_OK;
}

static int translate_max_tokens(struct xlate *x, json_t *chat, int64_t default_max_tokens,
                                json_t *pivot)
{
    static const char *const keys[] = {"max_completion_tokens", "max_tokens"};
    json_int_t max_tokens = default_max_tokens;
    for (size_t k = TG_ARRAY_LEN(keys); k-- > 0;) { /* the first name wins: walk backwards */
        json_t *v = tg_translate_member(chat, keys[k]);
        if (v == NULL)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return tg_translate_decline(x->err, x->err_size, "%s: expected a positive integer",
                                        keys[k]);
        max_tokens = json_integer_value(v);
    }
    if (json_object_set_new(pivot, "max_tokens", json_integer(max_tokens)) != 0)
        return tg_translate_oom(x->err, x->err_size);
    return TG_OK;
}

static int translate_sampling(struct xlate *x, json_t *chat, json_t *pivot)
{
    json_t *v;
    if ((v = tg_translate_member(chat, "stop")) != NULL) {
        json_t *sequences = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
        size_t i;
        json_t *s;
        bool all_strings = json_is_array(sequences);
        json_array_foreach(sequences, i, s)
            all_strings = all_strings && json_is_string(s);
        if (!json_is_string(v) && !all_strings) {
            json_decref(sequences);
            return tg_translate_decline(x->err, x->err_size,
                                        "stop: expected a string or an array of strings");
        }
        if (json_array_size(sequences) == 0 && sequences != NULL) {
            json_decref(sequences);
        } else if (json_object_set_new(pivot, "stop_sequences", sequences) != 0) {
            return tg_translate_oom(x->err, x->err_size);
        }
    }
    if ((v = tg_translate_member(chat, "temperature")) != NULL) {
        if (!json_is_number(v))
            return tg_translate_decline(x->err, x->err_size, "temperature: expected a number");
        /* OpenAI's scale goes to 2, the pivot's to 1 */
        json_t *t = json_number_value(v) > 1.0 ? json_real(1.0) : json_incref(v);
        if (json_object_set_new(pivot, "temperature", t) != 0)
            return tg_translate_oom(x->err, x->err_size);
    }
    if ((v = tg_translate_member(chat, "top_p")) != NULL) {
        if (!json_is_number(v))
            return tg_translate_decline(x->err, x->err_size, "top_p: expected a number");
        if (json_object_set(pivot, "top_p", v) != 0)
            return tg_translate_oom(x->err, x->err_size);
    }
    if ((v = tg_translate_member(chat, "stream")) != NULL) {
        if (!json_is_boolean(v))
            return tg_translate_decline(x->err, x->err_size, "stream: expected a boolean");
        if (json_object_set(pivot, "stream", v) != 0)
            return tg_translate_oom(x->err, x->err_size);
    }
    return TG_OK;
}

static int translate_request(struct xlate *x, json_t *chat, int64_t default_max_tokens,
                             json_t *pivot)
{
    int rc;
    if (!json_is_object(chat))
        return tg_translate_decline(x->err, x->err_size, "the request body must be a JSON object");
    if ((rc = check_known_arguments(x, chat)) != TG_OK ||
        (rc = check_unsupported(x, chat)) != TG_OK)
        return rc;
    json_t *model = json_object_get(chat, "model");
    if (!json_is_string(model))
        return tg_translate_decline(x->err, x->err_size, "model: expected a string");
    if (json_object_set(pivot, "model", model) != 0)
        return tg_translate_oom(x->err, x->err_size);
    if ((rc = translate_max_tokens(x, chat, default_max_tokens, pivot)) != TG_OK ||
        (rc = translate_messages(x, chat, pivot)) != TG_OK ||
        (rc = translate_sampling(x, chat, pivot)) != TG_OK)
        return rc;
    json_t *tools = tg_translate_member(chat, "tools"), *choice;
    if (tools != NULL && !json_is_array(tools))
        return tg_translate_decline(x->err, x->err_size, "tools: expected an array");
    if ((rc = translate_tool_choice(x, chat, &choice)) != TG_OK)
        return rc;
    /* the pivot takes no tool_choice without tools, and it means nothing then */
    if (json_array_size(tools) > 0) {
        if ((rc = translate_tools(x, tools, pivot)) != TG_OK) {
            json_decref(choice);
            return rc;
        }
        if (choice != NULL && json_object_set_new(pivot, "tool_choice", choice) != 0)
            return tg_translate_oom(x->err, x->err_size);
    } else {
        json_decref(choice);
    }
    json_t *user = tg_translate_member(chat, "user");
    const char *user_key = user != NULL ? "user" : "safety_identifier";
    if (user == NULL)
        user = tg_translate_member(chat, user_key);
    if (user != NULL && !json_is_string(user))
        return tg_translate_decline(x->err, x->err_size, "%s: expected a string", user_key);
    if (user != NULL &&
        json_object_set_new(pivot, "metadata", json_pack("{s:O}", "user_id", user)) != 0)
        return tg_translate_oom(x->err, x->err_size);
    return TG_OK;
}

int tg_translate_openai_request_to_pivot(json_t *chat, int64_t default_max_tokens, json_t **pivot,
                                         char *err, size_t err_size)
{
    struct xlate x = {.err = err, .err_size = err_size};
    x.system_texts = json_array();
    x.messages = json_array();
    json_t *out = json_object();
    int rc = x.system_texts != NULL && x.messages != NULL && out != NULL
                 ? translate_request(&x, chat, default_max_tokens, out)
                 : tg_translate_oom(err, err_size);
    json_decref(x.system_texts);
    json_decref(x.messages);
    if (rc != TG_OK) {
        json_decref(out);
        return rc;
    }
    *pivot = out;
    return TG_OK;
}
