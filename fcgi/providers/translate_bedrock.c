/*
 * translate_bedrock.c — pivot (Messages API) <-> Bedrock Converse. Containers are
 * attached to their parent as soon as they are made, so any failure returns at
 * once and the caller's single json_decref of the root frees everything.
 */
#include "translate_bedrock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sigv4.h"

#define PROVIDER "provider \"bedrock\""

/* A translation's message buffer. */
struct tx {
    char *msg;
    size_t msg_size;
};

static int say(struct tx *t, int rc, const char *fmt, ...) TG_PRINTF(3, 4);

static int say(struct tx *t, int rc, const char *fmt, ...)
{
    if (t->msg != NULL && t->msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->msg, t->msg_size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define DECLINE(t, feature) say((t), TG_DECLINED, PROVIDER " does not support %s", (feature))

/* json_object_set_new / json_array_append_new that report failure (value released). */
static int put(struct tx *t, json_t *obj, const char *key, json_t *value)
{
    if (json_object_set_new(obj, key, value) != 0)
        return say(t, TG_ERROR, "out of memory translating for " PROVIDER);
    return TG_OK;
}

static int push(struct tx *t, json_t *arr, json_t *value)
{
    if (json_array_append_new(arr, value) != 0)
        return say(t, TG_ERROR, "out of memory translating for " PROVIDER);
    return TG_OK;
}

/* A new reference to a borrowed value of the pivot (the body shares it, counted). */
static json_t *shared(const json_t *value)
{
    return json_incref((json_t *)value);
}

static const char *type_of(const json_t *block)
{
    return json_string_value(json_object_get(block, "type"));
}

/* Appends {"cachePoint": ...} to arr when block carries cache_control. */
static int cache_point(struct tx *t, const json_t *block, json_t *arr, const char *where)
{
    const json_t *cc = json_object_get(block, "cache_control");
    if (cc == NULL || json_is_null(cc))
        return TG_OK;
    if (!json_is_object(cc))
        return say(t, TG_ERROR, "%s: \"cache_control\" is not an object", where);
    json_t *point = json_pack("{s:s}", "type", "default");
    const json_t *ttl = json_object_get(cc, "ttl");
    if (point != NULL && json_is_string(ttl) && put(t, point, "ttl", shared(ttl)) != TG_OK) {
        json_decref(point);
        return TG_ERROR;
    }
    return push(t, arr, json_pack("{s:o}", "cachePoint", point));
}

static int text_block(struct tx *t, const json_t *text, json_t *arr, const char *where)
{
    if (!json_is_string(text))
        return say(t, TG_ERROR, "%s: \"text\" is not a string", where);
    return push(t, arr, json_pack("{s:O}", "text", text));
}

static int image_block(struct tx *t, const json_t *block, json_t *arr, const char *where)
{
    static const char *const formats[][2] = {
        {"image/png", "png"}, {"image/jpeg", "jpeg"}, {"image/gif", "gif"}, {"image/webp", "webp"}};
    const json_t *source = json_object_get(block, "source");
    const char *kind = type_of(source);
    if (kind == NULL)
        return say(t, TG_ERROR, "%s: the image has no \"source\" with a \"type\"", where);
    if (strcmp(kind, "url") == 0)
        return DECLINE(t, "images by URL");
    if (strcmp(kind, "file") == 0)
        return DECLINE(t, "images by file id");
    if (strcmp(kind, "base64") != 0)
        return say(t, TG_ERROR, "%s: unknown image source type \"%.64s\"", where, kind);
    const char *media = json_string_value(json_object_get(source, "media_type"));
    const json_t *data = json_object_get(source, "data");
    if (media == NULL || !json_is_string(data))
        return say(t, TG_ERROR, "%s: a base64 image needs \"media_type\" and \"data\"", where);
    for (size_t i = 0; i < TG_ARRAY_LEN(formats); i++)
        if (strcmp(media, formats[i][0]) == 0)
            return push(t, arr,
                        json_pack("{s:{s:s,s:{s:O}}}", "image", "format", formats[i][1], "source",
                                  "bytes", data));
    return say(t, TG_DECLINED, PROVIDER " does not support images of type \"%.64s\"", media);
}

/* The declined block types, by what the client is told. */
static int decline_block(struct tx *t, const char *type)
{
    if (strcmp(type, "document") == 0)
        return DECLINE(t, "documents");
    if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0)
        return DECLINE(t, "thinking");
    size_t n = strlen(type);
    if (strcmp(type, "server_tool_use") == 0 || strncmp(type, "mcp_", 4) == 0 ||
        (n > 12 && strcmp(type + n - 12, "_tool_result") == 0))
        return DECLINE(t, "server tools");
    return say(t, TG_DECLINED, PROVIDER " does not support content blocks of type \"%.64s\"", type);
}

static int tool_result_block(struct tx *t, const json_t *block, json_t *arr, const char *where)
{
    const json_t *id = json_object_get(block, "tool_use_id");
    if (!json_is_string(id))
        return say(t, TG_ERROR, "%s: \"tool_use_id\" is not a string", where);
    json_t *result = json_object();
    if (push(t, arr, json_pack("{s:o}", "toolResult", result)) != TG_OK)
        return TG_ERROR;
    json_t *content = json_array();
    if (put(t, result, "toolUseId", shared(id)) != TG_OK ||
        put(t, result, "content", content) != TG_OK)
        return TG_ERROR;
    const json_t *inner = json_object_get(block, "content");
    if (json_is_string(inner)) {
        if (text_block(t, inner, content, where) != TG_OK)
            return TG_ERROR;
    } else if (json_is_array(inner)) {
        size_t i;
        const json_t *b;
        json_array_foreach(inner, i, b) {
            const char *type = type_of(b);
            char here[96];
            snprintf(here, sizeof(here), "%s.content[%zu]", where, i);
            int rc;
            if (type == NULL)
                rc = say(t, TG_ERROR, "%s: the block has no \"type\"", here);
            else if (strcmp(type, "text") == 0)
                rc = text_block(t, json_object_get(b, "text"), content, here);
            else if (strcmp(type, "image") == 0)
                rc = image_block(t, b, content, here);
            else
                rc = decline_block(t, type);
            if (rc != TG_OK)
                return rc;
        }
    } else if (inner != NULL && !json_is_null(inner)) {
        return say(t, TG_ERROR, "%s: \"content\" is neither a string nor an array", where);
    }
    const json_t *is_error = json_object_get(block, "is_error");
    if (json_is_boolean(is_error))
        return put(t, result, "status", json_string(json_is_true(is_error) ? "error" : "success"));
    return TG_OK;
}

static int content_block(struct tx *t, const json_t *block, json_t *arr, const char *where,
                         bool *has_tool_blocks)
{
    const char *type = type_of(block);
    int rc;
    if (type == NULL)
        return say(t, TG_ERROR, "%s: the block has no \"type\"", where);
    if (strcmp(type, "text") == 0) {
        rc = text_block(t, json_object_get(block, "text"), arr, where);
    } else if (strcmp(type, "image") == 0) {
        rc = image_block(t, block, arr, where);
    } else if (strcmp(type, "tool_use") == 0) {
        const json_t *id = json_object_get(block, "id"), *name = json_object_get(block, "name");
        const json_t *input = json_object_get(block, "input");
        if (!json_is_string(id) || !json_is_string(name))
            return say(t, TG_ERROR, "%s: a tool_use needs string \"id\" and \"name\"", where);
        if (input != NULL && !json_is_object(input))
            return say(t, TG_ERROR, "%s: \"input\" is not an object", where);
        *has_tool_blocks = true;
        rc = push(t, arr,
                  json_pack("{s:{s:O,s:O,s:o}}", "toolUse", "toolUseId", id, "name", name, "input",
                            input != NULL ? shared(input) : json_object()));
    } else if (strcmp(type, "tool_result") == 0) {
        *has_tool_blocks = true;
        rc = tool_result_block(t, block, arr, where);
    } else {
        rc = decline_block(t, type);
    }
    return rc == TG_OK ? cache_point(t, block, arr, where) : rc;
}

static int translate_messages(struct tx *t, const json_t *messages, json_t *body,
                              bool *has_tool_blocks)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return say(t, TG_ERROR, "\"messages\" is not a non-empty array");
    json_t *out = json_array();
    if (put(t, body, "messages", out) != TG_OK)
        return TG_ERROR;
    json_t *content = NULL;
    const char *last_role = NULL;
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            return say(t, TG_ERROR, "messages[%zu]: \"role\" is not \"user\" or \"assistant\"", i);
        if (last_role == NULL || strcmp(role, last_role) != 0) {
            /* a new turn; consecutive messages of one role are merged into it */
            content = json_array();
            if (push(t, out, json_pack("{s:s,s:o}", "role", role, "content", content)) != TG_OK)
                return TG_ERROR;
            last_role = role;
        }
        const json_t *c = json_object_get(m, "content");
        char where[64];
        snprintf(where, sizeof(where), "messages[%zu]", i);
        if (json_is_string(c)) {
            if (text_block(t, c, content, where) != TG_OK)
                return TG_ERROR;
        } else if (json_is_array(c)) {
            size_t j;
            const json_t *block;
            json_array_foreach(c, j, block) {
                snprintf(where, sizeof(where), "messages[%zu].content[%zu]", i, j);
                int rc = content_block(t, block, content, where, has_tool_blocks);
                if (rc != TG_OK)
                    return rc;
            }
        } else {
            return say(t, TG_ERROR, "%s: \"content\" is neither a string nor an array", where);
        }
    }
    return TG_OK;
}

static int translate_system(struct tx *t, const json_t *system, json_t *body)
{
    if (system == NULL || json_is_null(system))
        return TG_OK;
    json_t *out = json_array();
    if (put(t, body, "system", out) != TG_OK)
        return TG_ERROR;
    if (json_is_string(system)) {
        /* Converse refuses an empty system text: no text, no system */
        if (json_string_length(system) == 0)
            return json_object_del(body, "system") == 0 ? TG_OK : TG_ERROR;
        return text_block(t, system, out, "system");
    }
    if (!json_is_array(system))
        return say(t, TG_ERROR, "\"system\" is neither a string nor an array");
    size_t i;
    const json_t *b;
    json_array_foreach(system, i, b) {
        char where[32];
        snprintf(where, sizeof(where), "system[%zu]", i);
        const char *type = type_of(b);
        if (type == NULL || strcmp(type, "text") != 0)
            return say(t, TG_ERROR, "%s: not a text block", where);
        if (text_block(t, json_object_get(b, "text"), out, where) != TG_OK ||
            cache_point(t, b, out, where) != TG_OK)
            return TG_ERROR;
    }
    if (json_array_size(out) == 0)
        json_object_del(body, "system");
    return TG_OK;
}

static int translate_inference(struct tx *t, const json_t *pivot, json_t *body)
{
    json_t *config = json_object();
    if (put(t, body, "inferenceConfig", config) != TG_OK)
        return TG_ERROR;
    static const char *const numbers[][2] = {{"temperature", "temperature"}, {"top_p", "topP"}};
    const json_t *max_tokens = json_object_get(pivot, "max_tokens");
    if (max_tokens != NULL) {
        if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1)
            return say(t, TG_ERROR, "\"max_tokens\" is not a positive integer");
        if (put(t, config, "maxTokens", shared(max_tokens)) != TG_OK)
            return TG_ERROR;
    }
    for (size_t i = 0; i < TG_ARRAY_LEN(numbers); i++) {
        const json_t *v = json_object_get(pivot, numbers[i][0]);
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_number(v))
            return say(t, TG_ERROR, "\"%s\" is not a number", numbers[i][0]);
        if (put(t, config, numbers[i][1], shared(v)) != TG_OK)
            return TG_ERROR;
    }
    const json_t *stops = json_object_get(pivot, "stop_sequences");
    if (stops != NULL && !json_is_null(stops)) {
        size_t i;
        const json_t *s;
        if (!json_is_array(stops))
            return say(t, TG_ERROR, "\"stop_sequences\" is not an array");
        json_array_foreach(stops, i, s) {
            if (!json_is_string(s))
                return say(t, TG_ERROR, "stop_sequences[%zu] is not a string", i);
        }
        if (json_array_size(stops) > 0 && put(t, config, "stopSequences", shared(stops)) != TG_OK)
            return TG_ERROR;
    }
    if (json_object_size(config) == 0)
        json_object_del(body, "inferenceConfig");
    const json_t *top_k = json_object_get(pivot, "top_k");
    if (top_k != NULL && !json_is_null(top_k)) {
        if (!json_is_integer(top_k))
            return say(t, TG_ERROR, "\"top_k\" is not an integer");
        return put(t, body, "additionalModelRequestFields", json_pack("{s:O}", "top_k", top_k));
    }
    return TG_OK;
}

static int translate_tools(struct tx *t, const json_t *pivot, json_t *body, bool has_tool_blocks)
{
    const json_t *tools = json_object_get(pivot, "tools");
    const json_t *choice = json_object_get(pivot, "tool_choice");
    if (tools != NULL && !json_is_null(tools) && !json_is_array(tools))
        return say(t, TG_ERROR, "\"tools\" is not an array");
    if (choice != NULL && !json_is_null(choice) && !json_is_object(choice))
        return say(t, TG_ERROR, "\"tool_choice\" is not an object");
    const char *choice_type = choice != NULL ? type_of(choice) : NULL;
    if (json_is_object(choice) && choice_type == NULL)
        return say(t, TG_ERROR, "\"tool_choice\" has no \"type\"");
    if (json_is_true(json_object_get(choice, "disable_parallel_tool_use")))
        return DECLINE(t, "tool_choice.disable_parallel_tool_use");
    if (choice_type != NULL && strcmp(choice_type, "none") == 0) {
        if (has_tool_blocks)
            return DECLINE(t, "tool_choice \"none\" with tool_use or tool_result blocks in "
                              "the conversation");
        return TG_OK; /* no tools sent: none can be called */
    }
    if (json_array_size(tools) == 0)
        return TG_OK;

    json_t *config = json_object(), *specs = json_array();
    if (put(t, body, "toolConfig", config) != TG_OK || put(t, config, "tools", specs) != TG_OK)
        return TG_ERROR;
    size_t i;
    const json_t *tool;
    json_array_foreach(tools, i, tool) {
        char where[32];
        snprintf(where, sizeof(where), "tools[%zu]", i);
        const char *type = type_of(tool);
        if (type != NULL && strcmp(type, "custom") != 0)
            return say(t, TG_DECLINED, PROVIDER " does not support server tools (type \"%.64s\")",
                       type);
        const json_t *name = json_object_get(tool, "name");
        const json_t *schema = json_object_get(tool, "input_schema");
        const json_t *description = json_object_get(tool, "description");
        if (!json_is_string(name) || !json_is_object(schema))
            return say(t, TG_ERROR, "%s: a tool needs a \"name\" and an \"input_schema\"", where);
        json_t *spec = json_pack("{s:O,s:{s:O}}", "name", name, "inputSchema", "json", schema);
        if (push(t, specs, json_pack("{s:o}", "toolSpec", spec)) != TG_OK)
            return TG_ERROR;
        const json_t *strict = json_object_get(tool, "strict");
        if (json_is_string(description) &&
            put(t, spec, "description", shared(description)) != TG_OK)
            return TG_ERROR;
        if (json_is_boolean(strict) && put(t, spec, "strict", shared(strict)) != TG_OK)
            return TG_ERROR;
        if (cache_point(t, tool, specs, where) != TG_OK)
            return TG_ERROR;
    }
    if (choice_type == NULL)
        return TG_OK; /* Converse's default is auto too */
    if (strcmp(choice_type, "auto") == 0 || strcmp(choice_type, "any") == 0)
        return put(t, config, "toolChoice", json_pack("{s:{}}", choice_type));
    if (strcmp(choice_type, "tool") == 0) {
        const json_t *name = json_object_get(choice, "name");
        if (!json_is_string(name))
            return say(t, TG_ERROR, "\"tool_choice\" of type \"tool\" has no \"name\"");
        return put(t, config, "toolChoice", json_pack("{s:{s:O}}", "tool", "name", name));
    }
    return say(t, TG_ERROR, "unknown tool_choice type \"%.64s\"", choice_type);
}

static int decline_request_features(struct tx *t, const json_t *pivot)
{
    const char *thinking = type_of(json_object_get(pivot, "thinking"));
    if (thinking != NULL && strcmp(thinking, "disabled") != 0)
        return DECLINE(t, "extended thinking");
    if (json_array_size(json_object_get(pivot, "mcp_servers")) > 0)
        return DECLINE(t, "MCP servers");
    const json_t *container = json_object_get(pivot, "container");
    if (container != NULL && !json_is_null(container))
        return DECLINE(t, "containers");
    return TG_OK;
}

int tg_translate_bedrock_request(const json_t *pivot, json_t **out, char *msg, size_t msg_size)
{
    struct tx t = {msg, msg_size};
    *out = NULL;
    if (!json_is_object(pivot))
        return say(&t, TG_ERROR, "the request is not a JSON object");
    int rc = decline_request_features(&t, pivot);
    json_t *body = json_object();
    if (body == NULL)
        return say(&t, TG_ERROR, "out of memory translating for " PROVIDER);
    bool has_tool_blocks = false;
    if (rc == TG_OK)
        rc = translate_messages(&t, json_object_get(pivot, "messages"), body, &has_tool_blocks);
    if (rc == TG_OK)
        rc = translate_system(&t, json_object_get(pivot, "system"), body);
    if (rc == TG_OK)
        rc = translate_inference(&t, pivot, body);
    if (rc == TG_OK)
        rc = translate_tools(&t, pivot, body, has_tool_blocks);
    if (rc != TG_OK) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return TG_OK;
}

int tg_translate_bedrock_path(const char *model_id, bool stream, char *out, size_t out_size)
{
    static const char prefix[] = "/model/";
    const char *suffix = stream ? "/converse-stream" : "/converse";
    if (model_id == NULL || model_id[0] == '\0' || out_size < sizeof(prefix))
        return TG_ERROR;
    memcpy(out, prefix, sizeof(prefix));
    int n = tg_sigv4_uri_encode(model_id, strlen(model_id), false, out + sizeof(prefix) - 1,
                                out_size - (sizeof(prefix) - 1));
    if (n < 0)
        return TG_ERROR;
    size_t used = sizeof(prefix) - 1 + (size_t)n, tail = strlen(suffix);
    if (used + tail + 1 > out_size)
        return TG_ERROR;
    memcpy(out + used, suffix, tail + 1);
    return (int)(used + tail);
}

json_int_t tg_translate_bedrock_count(const json_t *usage, const char *key)
{
    json_int_t n = json_integer_value(json_object_get(usage, key));
    return n > 0 ? n : 0;
}

json_t *tg_translate_bedrock_usage(const json_t *u)
{
    return json_pack(
        "{s:I,s:I,s:I,s:I}", "input_tokens", tg_translate_bedrock_count(u, "inputTokens"),
        "output_tokens", tg_translate_bedrock_count(u, "outputTokens"), "cache_read_input_tokens",
        tg_translate_bedrock_count(u, "cacheReadInputTokens"), "cache_creation_input_tokens",
        tg_translate_bedrock_count(u, "cacheWriteInputTokens"));
}

const char *tg_translate_bedrock_stop_reason(const char *bedrock)
{
    static const char *const same[] = {"end_turn", "tool_use", "max_tokens", "stop_sequence"};
    if (bedrock == NULL)
        return "end_turn";
    for (size_t i = 0; i < TG_ARRAY_LEN(same); i++)
        if (strcmp(bedrock, same[i]) == 0)
            return same[i];
    if (strcmp(bedrock, "guardrail_intervened") == 0 || strcmp(bedrock, "content_filtered") == 0)
        return "refusal";
    if (strcmp(bedrock, "model_context_window_exceeded") == 0)
        return "max_tokens";
    return "end_turn";
}

/* The stop sequence a model reported in additionalModelResponseFields, or NULL. */
const json_t *tg_translate_bedrock_stop_sequence(const json_t *holder)
{
    const json_t *s =
        json_object_get(json_object_get(holder, "additionalModelResponseFields"), "stop_sequence");
    return json_is_string(s) ? s : NULL;
}

int tg_translate_bedrock_reply(const json_t *converse, const char *id, const char *model,
                               json_t **out, char *msg, size_t msg_size)
{
    struct tx t = {msg, msg_size};
    *out = NULL;
    const json_t *content =
        json_object_get(json_object_get(json_object_get(converse, "output"), "message"), "content");
    if (!json_is_array(content))
        return say(&t, TG_ERROR, "the reply of " PROVIDER " has no output.message.content");
    const json_t *seq = tg_translate_bedrock_stop_sequence(converse);
    json_t *reply = json_pack("{s:s,s:s,s:s,s:s,s:[],s:s,s:O,s:o}", "id", id != NULL ? id : "",
                              "type", "message", "role", "assistant", "model",
                              model != NULL ? model : "", "content", "stop_reason",
                              tg_translate_bedrock_stop_reason(
                                  json_string_value(json_object_get(converse, "stopReason"))),
                              "stop_sequence", seq != NULL ? seq : json_null(), "usage",
                              tg_translate_bedrock_usage(json_object_get(converse, "usage")));
    if (reply == NULL)
        return say(&t, TG_ERROR, "out of memory translating for " PROVIDER);
    json_t *blocks = json_object_get(reply, "content");
    size_t i;
    const json_t *b;
    json_array_foreach(content, i, b) {
        const json_t *text = json_object_get(b, "text");
        const json_t *use = json_object_get(b, "toolUse");
        int rc = TG_OK;
        if (json_is_string(text)) {
            rc = push(&t, blocks, json_pack("{s:s,s:O}", "type", "text", "text", text));
        } else if (json_is_object(use)) {
            const json_t *tid = json_object_get(use, "toolUseId"),
                         *name = json_object_get(use, "name");
            const json_t *input = json_object_get(use, "input");
            if (!json_is_string(tid) || !json_is_string(name))
                rc = say(&t, TG_ERROR,
                         "content[%zu] of " PROVIDER " is a toolUse without "
                         "toolUseId or name",
                         i);
            else
                rc =
                    push(&t, blocks,
                         json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id", tid, "name", name,
                                   "input", json_is_object(input) ? shared(input) : json_object()));
        } /* reasoning and anything else: not part of the pivot reply */
        if (rc != TG_OK) {
            json_decref(reply);
            return rc;
        }
    }
    *out = reply;
    return TG_OK;
}
