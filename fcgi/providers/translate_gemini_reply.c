/*
 * translate_gemini_reply.c — a generateContent reply to a pivot reply, and what the
 * reply and the stream share: usage, stop reasons, ids, errors. The contract is in
 * translate_gemini.h; the request direction is in translate_gemini.c.
 */
#include "translate_gemini.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"

#define MAX_ERROR_MESSAGE 512 /* bytes of Gemini's error message passed on */

TG_PRINTF(3, 4) static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return TG_ERROR;
}

/* ---- usage ---- */

static int64_t count(json_t *metadata, const char *key)
{
    json_t *v = json_object_get(metadata, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

void tg_gemini_usage_read(json_t *usage_metadata, struct tg_usage *usage)
{
    memset(usage, 0, sizeof(*usage));
    int64_t prompt = count(usage_metadata, "promptTokenCount");
    int64_t cached = count(usage_metadata, "cachedContentTokenCount");
    /* the cached tokens are part of the prompt's count: bill them once, as cache reads */
    if (cached > prompt)
        cached = prompt;
    usage->input_tokens = prompt - cached + count(usage_metadata, "toolUsePromptTokenCount");
    usage->cache_read_tokens = cached;
    usage->output_tokens =
        count(usage_metadata, "candidatesTokenCount") + count(usage_metadata, "thoughtsTokenCount");
}

json_t *tg_gemini_usage_json(const struct tg_usage *usage)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)usage->input_tokens,
                     "cache_creation_input_tokens", (json_int_t)usage->cache_write_tokens,
                     "cache_read_input_tokens", (json_int_t)usage->cache_read_tokens,
                     "output_tokens", (json_int_t)usage->output_tokens);
}

/* ---- stop reasons ---- */

const char *tg_gemini_stop_reason(const char *finish_reason, bool called_function)
{
    static const char *const refusals[] = {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    };
    if (finish_reason == NULL || strcmp(finish_reason, "STOP") == 0)
        return called_function ? "tool_use" : "end_turn";
    if (strcmp(finish_reason, "MAX_TOKENS") == 0)
        return "max_tokens";
    for (size_t i = 0; i < TG_ARRAY_LEN(refusals); i++)
        if (strcmp(finish_reason, refusals[i]) == 0)
            return "refusal";
    return "end_turn";
}

/* ---- ids ---- */

static size_t alnum_prefix(const char *from, char *base, size_t room)
{
    size_t n = 0;
    for (const char *c = from; from != NULL && *c != '\0' && n + 1 < room && n < 48; c++) {
        bool alnum =
            (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        if (alnum)
            base[n++] = *c;
    }
    base[n] = '\0';
    return n;
}

void tg_gemini_id_base(const char *response_id, const char *seed, char *base, size_t base_size)
{
    if (base_size == 0)
        return;
    if (alnum_prefix(response_id, base, base_size) > 0 || alnum_prefix(seed, base, base_size) > 0)
        return;
    unsigned char random[8];
    char hex[17];
    if (tg_crypto_random(random, sizeof(random)) != TG_OK)
        memset(random, 0, sizeof(random)); /* ids stay well-formed, if not unique */
    tg_crypto_hex(random, sizeof(random), hex);
    snprintf(base, base_size, "%s", hex);
}

/* Whether Gemini's id for a call can stand in a tool-use id's core: [A-Za-z0-9-]{1,128}. */
static bool usable_gemini_id(const char *id)
{
    size_t n = 0;
    for (const char *c = id; c != NULL && *c != '\0'; c++, n++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-';
        if (!ok || n >= 128)
            return false;
    }
    return n > 0;
}

json_t *tg_gemini_tool_use_id(json_t *part, const char *base, size_t index)
{
    const char *gemini_id =
        json_string_value(json_object_get(json_object_get(part, "functionCall"), "id"));
    json_t *sig = json_object_get(part, "thoughtSignature");
    size_t sig_len = json_string_length(sig);
    if (sig_len == 0 || sig_len > TG_GEMINI_MAX_SIGNATURE)
        sig_len = 0;
    char core[160];
    if (usable_gemini_id(gemini_id))
        snprintf(core, sizeof(core), "gid-%s", gemini_id);
    else
        snprintf(core, sizeof(core), "g%zu-%s", index, base);
    size_t need = sizeof("toolu_") + strlen(core) + sizeof("_ts_") + sig_len;
    char *id = malloc(need);
    if (id == NULL)
        return NULL;
    int n = snprintf(id, need, "toolu_%s", core);
    if (sig_len > 0) {
        const char *s = json_string_value(sig);
        memcpy(id + n, "_ts_", 4);
        n += 4;
        /* base64 to base64url, unpadded: the id stays within [A-Za-z0-9_-] */
        for (size_t i = 0; i < sig_len && s[i] != '='; i++)
            id[n++] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
        id[n] = '\0';
    }
    json_t *out = json_string(id);
    free(id);
    return out;
}

/* ---- the reply ---- */

/* Appends text to the content's last block when it is text, else as a new text block. */
static int add_text(json_t *content, json_t *text)
{
    json_t *last = json_array_get(content, json_array_size(content) - 1);
    const char *type = json_string_value(json_object_get(last, "type"));
    if (type == NULL || strcmp(type, "text") != 0)
        return json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", text));
    json_t *old = json_object_get(last, "text");
    size_t old_len = json_string_length(old), add_len = json_string_length(text);
    char *joined = malloc(old_len + add_len + 1);
    if (joined == NULL)
        return -1;
    memcpy(joined, json_string_value(old), old_len);
    memcpy(joined + old_len, json_string_value(text), add_len);
    int rc = json_object_set_new(last, "text", json_stringn(joined, old_len + add_len));
    free(joined);
    return rc;
}

static int add_tool_use(json_t *content, json_t *part, const char *base, size_t index)
{
    json_t *call = json_object_get(part, "functionCall");
    json_t *name = json_object_get(call, "name");
    json_t *args = json_object_get(call, "args");
    if (!json_is_string(name))
        return -1;
    return json_array_append_new(
        content, json_pack("{s:s,s:o,s:O,s:o}", "type", "tool_use", "id",
                           tg_gemini_tool_use_id(part, base, index), "name", name, "input",
                           json_is_object(args) ? json_deep_copy(args) : json_object()));
}

/* The pivot content of a candidate's parts; *calls counts its function calls. */
static json_t *reply_content(json_t *parts, const char *base, size_t *calls)
{
    json_t *content = json_array();
    size_t i;
    json_t *part;
    *calls = 0;
    json_array_foreach(parts, i, part) {
        if (content == NULL)
            break;
        json_t *text = json_object_get(part, "text");
        int rc = 0;
        /* thought summaries are not the answer; output_tokens counts them anyway */
        if (json_is_true(json_object_get(part, "thought")))
            continue;
        if (json_is_string(text) && json_string_length(text) > 0)
            rc = add_text(content, text);
        else if (json_is_object(json_object_get(part, "functionCall")))
            rc = add_tool_use(content, part, base, (*calls)++);
        if (rc != 0) {
            json_decref(content);
            content = NULL;
        }
    }
    return content;
}

int tg_gemini_reply_to_pivot(json_t *reply, const char *model, const char *id_seed, json_t **out,
                             char *err, size_t err_size)
{
    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    if (!json_is_object(reply))
        return fail(err, err_size, "the Gemini reply is not a JSON object");
    if (json_object_get(reply, "error") != NULL)
        return fail(err, err_size, "the Gemini reply is an error");
    json_t *candidate = json_array_get(json_object_get(reply, "candidates"), 0);
    const char *block_reason =
        json_string_value(json_object_get(json_object_get(reply, "promptFeedback"), "blockReason"));
    if (!json_is_object(candidate) && block_reason == NULL)
        return fail(err, err_size, "the Gemini reply has no candidate");

    char base[49];
    tg_gemini_id_base(json_string_value(json_object_get(reply, "responseId")), id_seed, base,
                      sizeof(base));
    if (model == NULL)
        model = json_string_value(json_object_get(reply, "modelVersion"));
    struct tg_usage usage;
    tg_gemini_usage_read(json_object_get(reply, "usageMetadata"), &usage);

    size_t calls = 0;
    json_t *content = reply_content(json_object_get(json_object_get(candidate, "content"), "parts"),
                                    base, &calls);
    const char *stop_reason =
        candidate != NULL
            ? tg_gemini_stop_reason(json_string_value(json_object_get(candidate, "finishReason")),
                                    calls > 0)
            : "refusal";
    char id[64];
    snprintf(id, sizeof(id), "msg_%s", base);
    *out = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id, "type", "message", "role",
                     "assistant", "model", model != NULL ? model : "", "content", content,
                     "stop_reason", stop_reason, "stop_sequence", "usage",
                     tg_gemini_usage_json(&usage));
    if (*out == NULL)
        return fail(err, err_size, "out of memory translating the Gemini reply");
    return TG_OK;
}

/* ---- errors ---- */

static const char *error_type(long status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "overloaded_error";
    default: return "api_error";
    }
}

json_t *tg_gemini_error_to_pivot(json_t *body, long http_status)
{
    json_t *error = json_object_get(body, "error");
    json_t *code = json_object_get(error, "code");
    if (json_is_integer(code) && (http_status < 400 || http_status > 599))
        http_status = (long)json_integer_value(code);
    const char *message = json_string_value(json_object_get(error, "message"));
    size_t len = message != NULL ? strlen(message) : 0;
    if (len > MAX_ERROR_MESSAGE) {
        len = MAX_ERROR_MESSAGE;
        while (len > 0 && ((unsigned char)message[len] & 0xC0) == 0x80)
            len--; /* cut at a character boundary */
    }
    json_t *text = len > 0 ? json_stringn(message, len) : NULL;
    if (text == NULL)
        text = json_string("the provider returned an error");
    return json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type", error_type(http_status),
                     "message", text);
}
