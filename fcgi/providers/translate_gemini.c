/*
 * translate_gemini.c — the pivot request to a generateContent body. The reply direction
 * is in translate_gemini_reply.c, the tools' schemas are cut in translate_gemini_schema.c;
 * the contract is in translate_gemini.h.
 */
#include "translate_gemini.h"

#include "translate_gemini_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_TOOL_USE_ID 32768 /* bytes: room for a signature and then some */

/* One translation's state: the error buffer and what earlier messages taught. */
struct xlate {
    unsigned flags;
    json_t *tool_names; /* tool_use id -> function name, from the messages so far */
    char *err;
    size_t err_size;
};

TG_PRINTF(3, 4) static int fail(struct xlate *x, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, x->err_size, fmt, ap);
    va_end(ap);
    return rc;
}

static int out_of_memory(struct xlate *x)
{
    return fail(x, TG_ERROR, "out of memory translating the request for Gemini");
}

/*
 * The client's value s as an error message may quote it: at most 64 bytes, cut at a
 * character boundary, control characters and '"' as '?' (the message goes into JSON).
 */
static const char *shown(const char *s, char buf[68])
{
    size_t n = 0;
    for (; s[n] != '\0' && n < 64; n++)
        buf[n] = ((unsigned char)s[n] < 0x20 || s[n] == '"' || s[n] == 0x7f) ? '?' : s[n];
    if (s[n] != '\0')
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] continues a character: end before the character it belongs to */
    buf[n] = '\0';
    return buf;
}

/* ---- tool-use ids ---- */

/* What a pivot tool_use id carries back to Gemini (see translate_gemini.h). */
struct tool_id {
    char gemini_id[129]; /* "" when the call had no id of Gemini's */
    char *signature;     /* standard base64, malloc'd; NULL when none */
};

static void tool_id_parse(const char *id, struct tool_id *t)
{
    t->gemini_id[0] = '\0';
    t->signature = NULL;
    if (strncmp(id, "toolu_", 6) != 0)
        return;
    const char *core = id + 6;
    size_t core_len = strcspn(core, "_");
    if (core_len > 4 && strncmp(core, "gid-", 4) == 0 && core_len - 4 < sizeof(t->gemini_id)) {
        memcpy(t->gemini_id, core + 4, core_len - 4);
        t->gemini_id[core_len - 4] = '\0';
    }
    const char *sig = core + core_len;
    if (strncmp(sig, "_ts_", 4) != 0)
        return;
    sig += 4;
    size_t len = strlen(sig);
    if (len == 0 || len > TG_GEMINI_MAX_SIGNATURE)
        return;
    t->signature = malloc(len + 4);
    if (t->signature == NULL)
        return; /* the call goes without its signature, as one from elsewhere would */
    size_t i;
    for (i = 0; i < len; i++)
        t->signature[i] = sig[i] == '-' ? '+' : sig[i] == '_' ? '/' : sig[i];
    while (i % 4 != 0)
        t->signature[i++] = '=';
    t->signature[i] = '\0';
}

/* ---- messages ---- */

static const char *const gemini_image_types[] = {"image/png", "image/jpeg", "image/webp",
                                                 "image/heic", "image/heif"};

static int image_part(struct xlate *x, json_t *block, const char *where, json_t *parts)
{
    char q[68];
    json_t *source = json_object_get(block, "source");
    const char *source_type = json_string_value(json_object_get(source, "type"));
    if (source_type == NULL)
        return fail(x, TG_ERROR, "%s: image \"source.type\" is missing or not a string", where);
    if (strcmp(source_type, "base64") != 0)
        return fail(x, TG_DECLINED,
                    "image source \"%s\" is not supported by Gemini models: send the image "
                    "as base64",
                    shown(source_type, q));
    const char *media_type = json_string_value(json_object_get(source, "media_type"));
    json_t *data = json_object_get(source, "data");
    if (media_type == NULL || !json_is_string(data))
        return fail(x, TG_ERROR, "%s: image \"media_type\" or \"data\" is missing", where);
    bool known = false;
    for (size_t i = 0; i < TG_ARRAY_LEN(gemini_image_types); i++)
        known = known || strcmp(media_type, gemini_image_types[i]) == 0;
    if (!known)
        return fail(x, TG_DECLINED, "image type \"%s\" is not supported by Gemini models",
                    shown(media_type, q));
    json_t *part = json_pack("{s:{s:s,s:O}}", "inlineData", "mimeType", media_type, "data", data);
    if (json_array_append_new(parts, part) != 0)
        return out_of_memory(x);
    return TG_OK;
}

static int tool_use_part(struct xlate *x, json_t *block, const char *where, json_t *parts,
                         bool *first_call)
{
    const char *id = json_string_value(json_object_get(block, "id"));
    const char *name = json_string_value(json_object_get(block, "name"));
    json_t *input = json_object_get(block, "input");
    if (id == NULL || name == NULL)
        return fail(x, TG_ERROR, "%s: tool_use \"id\" or \"name\" is missing or not a string",
                    where);
    if (strlen(id) > MAX_TOOL_USE_ID)
        return fail(x, TG_ERROR, "%s: tool_use \"id\" is too long", where);
    if (input != NULL && !json_is_object(input))
        return fail(x, TG_ERROR, "%s: tool_use \"input\" is not an object", where);
    if (json_object_set_new(x->tool_names, id, json_string(name)) != 0)
        return out_of_memory(x);

    struct tool_id t;
    tool_id_parse(id, &t);
    json_t *call = json_pack("{s:s,s:o}", "name", name, "args",
                             input != NULL ? json_deep_copy(input) : json_object());
    if (call != NULL && t.gemini_id[0] != '\0')
        json_object_set_new(call, "id", json_string(t.gemini_id));
    json_t *part = json_pack("{s:o}", "functionCall", call);
    if (part != NULL && t.signature != NULL)
        json_object_set_new(part, "thoughtSignature", json_string(t.signature));
    else if (part != NULL && *first_call && (x->flags & TG_GEMINI_SIGNATURE_SENTINEL))
        json_object_set_new(part, "thoughtSignature",
                            json_string(TG_GEMINI_SIGNATURE_SENTINEL_TEXT));
    free(t.signature);
    *first_call = false;
    if (json_array_append_new(parts, part) != 0)
        return out_of_memory(x);
    return TG_OK;
}

/* The text of a tool_result's content; its images go to parts after the response. */
static int tool_result_text(struct xlate *x, json_t *content, const char *where, json_t *images,
                            json_t **text)
{
    char q[68];
    if (content == NULL || json_is_string(content)) {
        *text = json_string(content != NULL ? json_string_value(content) : "");
        return *text != NULL ? TG_OK : out_of_memory(x);
    }
    if (!json_is_array(content))
        return fail(x, TG_ERROR, "%s: tool_result \"content\" is neither a string nor an array",
                    where);
    size_t total = 0, i;
    json_t *block;
    json_array_foreach(content, i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type != NULL && strcmp(type, "text") == 0)
            total += json_string_length(json_object_get(block, "text")) + 1;
    }
    char *joined = malloc(total + 1);
    if (joined == NULL)
        return out_of_memory(x);
    size_t used = 0;
    int rc = TG_OK;
    json_array_foreach(content, i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        json_t *t = json_object_get(block, "text");
        if (type != NULL && strcmp(type, "text") == 0 && json_is_string(t)) {
            if (used > 0)
                joined[used++] = '\n';
            memcpy(joined + used, json_string_value(t), json_string_length(t));
            used += json_string_length(t);
        } else if (type != NULL && strcmp(type, "image") == 0) {
            rc = image_part(x, block, where, images);
        } else if (type != NULL && strcmp(type, "text") == 0) {
            rc = fail(x, TG_ERROR, "%s: tool_result text block has no \"text\" string", where);
        } else {
            rc = fail(x, TG_DECLINED,
                      "content block type \"%s\" in a tool_result is not supported by Gemini "
                      "models",
                      shown(type != NULL ? type : "(none)", q));
        }
        if (rc != TG_OK)
            break;
    }
    if (rc == TG_OK) {
        *text = json_stringn(joined, used);
        if (*text == NULL)
            rc = fail(x, TG_ERROR, "%s: tool_result text is not UTF-8", where);
    }
    free(joined);
    return rc;
}

static int tool_result_part(struct xlate *x, json_t *block, const char *where, json_t *parts)
{
    char q[68];
    const char *id = json_string_value(json_object_get(block, "tool_use_id"));
    if (id == NULL)
        return fail(x, TG_ERROR, "%s: tool_result \"tool_use_id\" is missing or not a string",
                    where);
    const char *name = json_string_value(json_object_get(x->tool_names, id));
    if (name == NULL)
        return fail(x, TG_ERROR,
                    "%s: tool_result names tool_use_id \"%s\", which no earlier "
                    "tool_use has",
                    where, shown(id, q));
    json_t *images = json_array();
    json_t *text = NULL;
    int rc = images != NULL
                 ? tool_result_text(x, json_object_get(block, "content"), where, images, &text)
                 : out_of_memory(x);
    if (rc != TG_OK) {
        json_decref(images);
        return rc;
    }
    const char *key = json_is_true(json_object_get(block, "is_error")) ? "error" : "output";
    json_t *response = json_pack("{s:s,s:{s:o}}", "name", name, "response", key, text);
    struct tool_id t;
    tool_id_parse(id, &t);
    free(t.signature);
    if (response != NULL && t.gemini_id[0] != '\0')
        json_object_set_new(response, "id", json_string(t.gemini_id));
    if (json_array_append_new(parts, json_pack("{s:o}", "functionResponse", response)) != 0 ||
        json_array_extend(parts, images) != 0)
        rc = out_of_memory(x);
    json_decref(images);
    return rc;
}

static int block_part(struct xlate *x, json_t *block, bool assistant, const char *where,
                      json_t *parts, bool *first_call)
{
    char q[68];
    const char *type = json_string_value(json_object_get(block, "type"));
    if (type == NULL)
        return fail(x, TG_ERROR, "%s: \"type\" is missing or not a string", where);
    if (strcmp(type, "text") == 0) {
        json_t *text = json_object_get(block, "text");
        if (!json_is_string(text))
            return fail(x, TG_ERROR, "%s: \"text\" is missing or not a string", where);
        if (json_string_length(text) == 0)
            return TG_OK; /* Gemini refuses empty parts */
        if (json_array_append_new(parts, json_pack("{s:O}", "text", text)) != 0)
            return out_of_memory(x);
        return TG_OK;
    }
    if (strcmp(type, "image") == 0)
        return image_part(x, block, where, parts);
    if (strcmp(type, "tool_use") == 0 && assistant)
        return tool_use_part(x, block, where, parts, first_call);
    if (strcmp(type, "tool_result") == 0 && !assistant)
        return tool_result_part(x, block, where, parts);
    if (strcmp(type, "tool_use") == 0 || strcmp(type, "tool_result") == 0)
        return fail(x, TG_ERROR, "%s: a %s block in a%s message", where, type,
                    assistant ? "n assistant" : " user");
    if (strcmp(type, "document") == 0)
        return fail(x, TG_DECLINED, "document blocks are not supported by Gemini models");
    if (strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0)
        return fail(x, TG_DECLINED, "%s blocks are not supported by Gemini models", type);
    if (strcmp(type, "server_tool_use") == 0 || strstr(type, "_tool_result") != NULL)
        return fail(x, TG_DECLINED,
                    "server tool blocks (\"%s\") are not supported by Gemini models",
                    shown(type, q));
    return fail(x, TG_DECLINED, "content block type \"%s\" is not supported by Gemini models",
                shown(type, q));
}

/* Appends message i's parts to the last content when it has the same role. */
static int message_parts(struct xlate *x, json_t *msg, size_t i, json_t *contents)
{
    char where[64];
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
        return fail(x, TG_ERROR, "messages[%zu]: \"role\" must be \"user\" or \"assistant\"", i);
    bool assistant = strcmp(role, "assistant") == 0;
    const char *gemini_role = assistant ? "model" : "user";

    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    json_t *parts;
    bool new_content =
        last == NULL || strcmp(json_string_value(json_object_get(last, "role")), gemini_role) != 0;
    if (new_content)
        parts = json_array();
    else
        parts = json_incref(json_object_get(last, "parts"));
    if (parts == NULL)
        return out_of_memory(x);
    /* the first call of a model turn is the one Gemini 3 checks for a signature */
    bool first_call = new_content;
    for (size_t k = 0; k < json_array_size(parts); k++)
        if (json_object_get(json_array_get(parts, k), "functionCall") != NULL)
            first_call = false;

    json_t *content = json_object_get(msg, "content");
    int rc = TG_OK;
    if (json_is_string(content)) {
        if (json_string_length(content) > 0 &&
            json_array_append_new(parts, json_pack("{s:O}", "text", content)) != 0)
            rc = out_of_memory(x);
    } else if (json_is_array(content)) {
        size_t k;
        json_t *block;
        json_array_foreach(content, k, block) {
            snprintf(where, sizeof(where), "messages[%zu].content[%zu]", i, k);
            rc = block_part(x, block, assistant, where, parts, &first_call);
            if (rc != TG_OK)
                break;
        }
    } else {
        rc = fail(x, TG_ERROR, "messages[%zu]: \"content\" is neither a string nor an array", i);
    }
    if (rc == TG_OK && new_content && json_array_size(parts) > 0 &&
        json_array_append_new(contents,
                              json_pack("{s:s,s:O}", "role", gemini_role, "parts", parts)) != 0)
        rc = out_of_memory(x);
    json_decref(parts);
    return rc;
}

static int system_instruction(struct xlate *x, json_t *system, json_t *body)
{
    if (system == NULL)
        return TG_OK;
    json_t *parts = json_array();
    if (parts == NULL)
        return out_of_memory(x);
    int rc = TG_OK;
    if (json_is_string(system)) {
        if (json_string_length(system) > 0)
            json_array_append_new(parts, json_pack("{s:O}", "text", system));
    } else if (json_is_array(system)) {
        size_t i;
        json_t *block;
        json_array_foreach(system, i, block) {
            const char *type = json_string_value(json_object_get(block, "type"));
            json_t *text = json_object_get(block, "text");
            if (type == NULL || strcmp(type, "text") != 0 || !json_is_string(text)) {
                rc = fail(x, TG_ERROR, "system[%zu]: only text blocks are allowed", i);
                break;
            }
            if (json_string_length(text) > 0)
                json_array_append_new(parts, json_pack("{s:O}", "text", text));
        }
    } else {
        rc = fail(x, TG_ERROR, "\"system\" is neither a string nor an array");
    }
    if (rc == TG_OK && json_array_size(parts) > 0 &&
        json_object_set_new(body, "systemInstruction", json_pack("{s:O}", "parts", parts)) != 0)
        rc = out_of_memory(x);
    json_decref(parts);
    return rc;
}

/* ---- generation config, tools ---- */

static int generation_config(struct xlate *x, json_t *pivot, json_t *body)
{
    static const char *const numbers[][2] = {
        {"temperature", "temperature"}, {"top_p", "topP"}, {"top_k", "topK"}};
    json_t *config = json_object();
    if (config == NULL)
        return out_of_memory(x);
    json_t *max_tokens = json_object_get(pivot, "max_tokens");
    if (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1) {
        json_decref(config);
        return fail(x, TG_ERROR, "\"max_tokens\" is missing or not a positive integer");
    }
    json_object_set(config, "maxOutputTokens", max_tokens);
    for (size_t i = 0; i < TG_ARRAY_LEN(numbers); i++) {
        json_t *v = json_object_get(pivot, numbers[i][0]);
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_number(v)) {
            json_decref(config);
            return fail(x, TG_ERROR, "\"%s\" is not a number", numbers[i][0]);
        }
        json_object_set(config, numbers[i][1], v);
    }
    json_t *stops = json_object_get(pivot, "stop_sequences");
    if (stops != NULL && !json_is_null(stops)) {
        size_t i;
        json_t *s;
        bool ok = json_is_array(stops);
        json_array_foreach(stops, i, s)
            ok = ok && json_is_string(s);
        if (!ok) {
            json_decref(config);
            return fail(x, TG_ERROR, "\"stop_sequences\" is not an array of strings");
        }
        if (json_array_size(stops) > 0)
            json_object_set(config, "stopSequences", stops);
    }
    json_t *thinking = json_object_get(pivot, "thinking");
    const char *thinking_type = json_string_value(json_object_get(thinking, "type"));
    json_t *budget = json_object_get(thinking, "budget_tokens");
    if (thinking_type != NULL && strcmp(thinking_type, "enabled") == 0 && json_is_integer(budget))
        json_object_set_new(config, "thinkingConfig", json_pack("{s:O}", "thinkingBudget", budget));
    if (json_object_set_new(body, "generationConfig", config) != 0)
        return out_of_memory(x);
    return TG_OK;
}

static int function_declaration(struct xlate *x, json_t *tool, size_t i, json_t *decls)
{
    char q[68];
    const char *type = json_string_value(json_object_get(tool, "type"));
    if (type != NULL && strcmp(type, "custom") != 0)
        return fail(x, TG_DECLINED, "server tool \"%s\" is not supported by Gemini models",
                    shown(type, q));
    const char *name = json_string_value(json_object_get(tool, "name"));
    if (name == NULL)
        return fail(x, TG_ERROR, "tools[%zu]: \"name\" is missing or not a string", i);
    json_t *decl = json_pack("{s:s}", "name", name);
    json_t *description = json_object_get(tool, "description");
    if (decl != NULL && json_is_string(description))
        json_object_set(decl, "description", description);
    json_t *schema = json_object_get(tool, "input_schema");
    if (decl != NULL && json_is_object(schema)) {
        json_t *params = tg_gemini_schema(schema);
        /* a function without parameters leaves them out: Gemini refuses empty OBJECTs */
        if (params != NULL && json_object_get(params, "properties") != NULL)
            json_object_set_new(decl, "parameters", params);
        else
            json_decref(params);
    }
    if (json_array_append_new(decls, decl) != 0)
        return out_of_memory(x);
    return TG_OK;
}

static int tool_config(struct xlate *x, json_t *choice, json_t *body)
{
    if (choice == NULL || json_is_null(choice))
        return TG_OK;
    const char *type = json_string_value(json_object_get(choice, "type"));
    const char *mode = NULL;
    const char *name = NULL;
    if (type != NULL && strcmp(type, "auto") == 0) {
        mode = "AUTO";
    } else if (type != NULL && strcmp(type, "any") == 0) {
        mode = "ANY";
    } else if (type != NULL && strcmp(type, "none") == 0) {
        mode = "NONE";
    } else if (type != NULL && strcmp(type, "tool") == 0) {
        mode = "ANY";
        name = json_string_value(json_object_get(choice, "name"));
        if (name == NULL)
            return fail(x, TG_ERROR, "tool_choice: \"name\" is missing or not a string");
    } else {
        return fail(x, TG_ERROR, "tool_choice: \"type\" must be auto, any, tool or none");
    }
    json_t *config = json_pack("{s:s}", "mode", mode);
    if (config != NULL && name != NULL)
        json_object_set_new(config, "allowedFunctionNames", json_pack("[s]", name));
    if (json_object_set_new(body, "toolConfig",
                            json_pack("{s:o}", "functionCallingConfig", config)) != 0)
        return out_of_memory(x);
    return TG_OK;
}

static int tools(struct xlate *x, json_t *pivot, json_t *body)
{
    json_t *list = json_object_get(pivot, "tools");
    if (list == NULL || json_is_null(list))
        return TG_OK;
    if (!json_is_array(list))
        return fail(x, TG_ERROR, "\"tools\" is not an array");
    if (json_array_size(list) == 0)
        return TG_OK;
    json_t *decls = json_array();
    if (decls == NULL)
        return out_of_memory(x);
    size_t i;
    json_t *tool;
    json_array_foreach(list, i, tool) {
        int rc = function_declaration(x, tool, i, decls);
        if (rc != TG_OK) {
            json_decref(decls);
            return rc;
        }
    }
    if (json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls)) !=
        0)
        return out_of_memory(x);
    return tool_config(x, json_object_get(pivot, "tool_choice"), body);
}

int tg_gemini_request_from_pivot(json_t *pivot, unsigned flags, json_t **out, char *err,
                                 size_t err_size)
{
    struct xlate x = {.flags = flags, .err = err, .err_size = err_size};
    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    if (!json_is_object(pivot))
        return fail(&x, TG_ERROR, "the request is not a JSON object");
    static const char *const declined[][2] = {{"mcp_servers", "MCP servers"},
                                              {"container", "containers"}};
    for (size_t i = 0; i < TG_ARRAY_LEN(declined); i++) {
        json_t *v = json_object_get(pivot, declined[i][0]);
        if (v != NULL && !json_is_null(v))
            return fail(&x, TG_DECLINED, "%s (\"%s\") are not supported by Gemini models",
                        declined[i][1], declined[i][0]);
    }
    json_t *messages = json_object_get(pivot, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0)
        return fail(&x, TG_ERROR, "\"messages\" is missing or not a non-empty array");

    json_t *body = json_object();
    json_t *contents = json_array();
    x.tool_names = json_object();
    int rc = body != NULL && contents != NULL && x.tool_names != NULL &&
                     json_object_set(body, "contents", contents) == 0
                 ? TG_OK
                 : out_of_memory(&x);
    size_t i;
    json_t *msg;
    json_array_foreach(messages, i, msg) {
        if (rc != TG_OK)
            break;
        rc = message_parts(&x, msg, i, contents);
    }
    if (rc == TG_OK)
        rc = system_instruction(&x, json_object_get(pivot, "system"), body);
    if (rc == TG_OK)
        rc = generation_config(&x, pivot, body);
    if (rc == TG_OK)
        rc = tools(&x, pivot, body);
    if (rc == TG_OK && json_array_size(contents) == 0)
        rc = fail(&x, TG_ERROR, "\"messages\" holds no content to send");
    json_decref(contents);
    json_decref(x.tool_names);
    if (rc != TG_OK) {
        json_decref(body);
        return rc;
    }
    *out = body;
    return TG_OK;
}
