/*
 * cache_stream.c — a stored non-stream reply replayed as a stream in the
 * client's dialect (cache_stream.h): the reply becomes pivot events, written
 * as Anthropic's SSE or fed to the OpenAI chunk writer.
 */
#include "cache_stream.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "translate_common.h"
#include "translate_openai_backend.h"

/* Where the events go: the Anthropic frames, or the OpenAI writer. */
struct out {
    size_t piece;
    tg_translate_write_fn write;
    void *ctx;
    struct tg_translate_openai_writer *openai; /* NULL: the client speaks Anthropic */
};

/* "event: NAME\ndata: JSON\n\n" in one write. */
static int write_frame(struct out *s, const char *name, json_t *data)
{
    size_t size = json_dumpb(data, NULL, 0, JSON_COMPACT);
    size_t name_len = strlen(name);
    size_t total = 7 + name_len + 7 + size + 2;
    char *buf = size > 0 ? malloc(total) : NULL;
    if (buf == NULL)
        return TG_ERROR;
    memcpy(buf, "event: ", 7);
    memcpy(buf + 7, name, name_len);
    memcpy(buf + 7 + name_len, "\ndata: ", 7);
    char *p = buf + 7 + name_len + 7;
    int rc = TG_ERROR;
    if (json_dumpb(data, p, size, JSON_COMPACT) == size) {
        memcpy(p + size, "\n\n", 2);
        rc = s->write(s->ctx, buf, total);
    }
    free(buf);
    return rc;
}

/* One pivot event (data stolen; its "type" names it) to the client. */
static int emit(struct out *s, json_t *data)
{
    if (data == NULL)
        return TG_ERROR;
    const char *name = json_string_value(json_object_get(data, "type"));
    int rc = name == NULL        ? TG_ERROR
             : s->openai != NULL ? tg_translate_openai_writer_feed(s->openai, name, data)
                                 : write_frame(s, name, data);
    json_decref(data);
    return rc;
}

/* The length of the next piece of text (left bytes, valid UTF-8): at most max, whole characters. */
static size_t piece_len(const char *text, size_t left, size_t max)
{
    if (left <= max)
        return left;
    size_t n = max;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    if (n == 0) { /* one character longer than max: it goes whole */
        n = 1;
        while (n < left && ((unsigned char)text[n] & 0xC0) == 0x80)
            n++;
    }
    return n;
}

/* text (len bytes) as content_block_delta events of delta_type, its pieces in member field. */
static int emit_pieces(struct out *s, int index, const char *delta_type, const char *field,
                       const char *text, size_t len)
{
    for (size_t at = 0; at < len;) {
        size_t n = piece_len(text + at, len - at, s->piece);
        int rc =
            emit(s, json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index",
                              index, "delta", "type", delta_type, field, text + at, n));
        if (rc != TG_OK)
            return rc;
        at += n;
    }
    return TG_OK;
}

static int emit_block_start(struct out *s, int index, json_t *block)
{
    return emit(s, block != NULL ? json_pack("{s:s, s:i, s:o}", "type", "content_block_start",
                                             "index", index, "content_block", block)
                                 : NULL);
}

static int emit_block_stop(struct out *s, int index)
{
    return emit(s, json_pack("{s:s, s:i}", "type", "content_block_stop", "index", index));
}

/* A JSON text (tool input, arguments) as a tool block's input_json_delta pieces. */
static int emit_json_pieces(struct out *s, int index, json_t *text)
{
    return emit_pieces(s, index, "input_json_delta", "partial_json", json_string_value(text),
                       json_string_length(text));
}

/*
 * A new object holding obj's members (borrowed references: only its own
 * members may change); NULL when out of memory. Not json_copy, which drops a
 * member silently when an allocation fails.
 */
static json_t *shallow_copy(json_t *obj)
{
    json_t *copy = json_object();
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        if (copy == NULL || json_object_set(copy, key, value) != 0) {
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* ---- Anthropic: the stored message's blocks ---- */

static int text_block(struct out *s, int index, json_t *block, json_t *start)
{
    json_t *citations = json_object_get(block, "citations");
    bool cited = json_is_array(citations);
    if (json_object_set_new(start, "text", json_string("")) != 0 ||
        (cited && json_object_set_new(start, "citations", json_array()) != 0)) {
        json_decref(start);
        return TG_ERROR;
    }
    json_t *text = json_object_get(block, "text");
    int rc = emit_block_start(s, index, start);
    if (rc == TG_OK)
        rc = emit_pieces(s, index, "text_delta", "text", json_string_value(text),
                         json_string_length(text));
    size_t i;
    json_t *citation;
    json_array_foreach(citations, i, citation) {
        if (rc == TG_OK)
            rc = emit(s,
                      json_pack("{s:s, s:i, s:{s:s, s:O}}", "type", "content_block_delta", "index",
                                index, "delta", "type", "citations_delta", "citation", citation));
    }
    return rc;
}

static int tool_block(struct out *s, int index, json_t *block, json_t *start)
{
    json_t *input = json_object_get(block, "input");
    json_t *compact = input != NULL && json_object_size(input) > 0 ? tg_translate_compact(input)
                                                                   : json_string("");
    if (compact == NULL || json_object_set_new(start, "input", json_object()) != 0) {
        json_decref(compact);
        json_decref(start);
        return TG_ERROR;
    }
    int rc = emit_block_start(s, index, start);
    if (rc == TG_OK)
        rc = emit_json_pieces(s, index, compact);
    json_decref(compact);
    return rc;
}

static int thinking_block(struct out *s, int index, json_t *block, json_t *start)
{
    json_t *signature = json_object_get(block, "signature");
    if (json_object_set_new(start, "thinking", json_string("")) != 0 ||
        json_object_set_new(start, "signature", json_string("")) != 0) {
        json_decref(start);
        return TG_ERROR;
    }
    json_t *thinking = json_object_get(block, "thinking");
    int rc = emit_block_start(s, index, start);
    if (rc == TG_OK)
        rc = emit_pieces(s, index, "thinking_delta", "thinking", json_string_value(thinking),
                         json_string_length(thinking));
    if (rc == TG_OK && json_string_length(signature) > 0)
        rc = emit(s, json_pack("{s:s, s:i, s:{s:s, s:O}}", "type", "content_block_delta", "index",
                               index, "delta", "type", "signature_delta", "signature", signature));
    return rc;
}

static int anthropic_block(struct out *s, int index, json_t *block)
{
    const char *type = json_string_value(json_object_get(block, "type"));
    json_t *start = shallow_copy(block);
    if (start == NULL)
        return TG_ERROR;
    int rc;
    if (strcmp(type, "text") == 0 && json_is_string(json_object_get(block, "text")))
        rc = text_block(s, index, block, start);
    else if (ends_with(type, "tool_use") && json_is_object(json_object_get(block, "input")))
        rc = tool_block(s, index, block, start);
    else if (strcmp(type, "thinking") == 0 && json_is_string(json_object_get(block, "thinking")))
        rc = thinking_block(s, index, block, start);
    else
        rc = emit_block_start(s, index, start); /* whole, as Anthropic sends such blocks */
    return rc == TG_OK ? emit_block_stop(s, index) : rc;
}

/* Whether message is a Messages reply whose every block has a type. */
static bool is_message(json_t *message)
{
    const char *type = json_string_value(json_object_get(message, "type"));
    json_t *content = json_object_get(message, "content");
    if (type == NULL || strcmp(type, "message") != 0 || !json_is_array(content))
        return false;
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block) {
        if (!json_is_string(json_object_get(block, "type")))
            return false;
    }
    return json_array_size(content) <= TG_TRANSLATE_OPENAI_MAX_BLOCKS;
}

static int anthropic_stream(struct out *s, json_t *message)
{
    json_t *usage = json_object_get(message, "usage");
    json_t *stop_sequence = json_object_get(message, "stop_sequence");
    json_t *start_usage = shallow_copy(usage); /* {} when there is none */
    if (start_usage == NULL ||
        json_object_set_new(start_usage, "output_tokens", json_integer(0)) != 0) {
        json_decref(start_usage);
        return TG_ERROR;
    }
    json_t *start = shallow_copy(message);
    if (start == NULL) {
        json_decref(start_usage);
        return TG_ERROR;
    }
    if (json_object_set_new(start, "usage", start_usage) != 0 ||
        json_object_set_new(start, "content", json_array()) != 0 ||
        json_object_set_new(start, "stop_reason", json_null()) != 0 ||
        json_object_set_new(start, "stop_sequence", json_null()) != 0) {
        json_decref(start);
        return TG_ERROR;
    }
    int rc = emit(s, json_pack("{s:s, s:o}", "type", "message_start", "message", start));
    size_t i;
    json_t *block;
    json_array_foreach(json_object_get(message, "content"), i, block) {
        if (rc == TG_OK)
            rc = anthropic_block(s, (int)i, block);
    }
    if (rc != TG_OK)
        return rc;
    json_t *final_usage = json_is_object(usage) ? json_incref(usage) : json_object();
    rc = emit(s, final_usage != NULL
                     ? json_pack("{s:s, s:{s:O*, s:O*}, s:o}", "type", "message_delta", "delta",
                                 "stop_reason", json_object_get(message, "stop_reason"),
                                 "stop_sequence", stop_sequence, "usage", final_usage)
                     : NULL);
    return rc == TG_OK ? emit(s, json_pack("{s:s}", "type", "message_stop")) : rc;
}

/* ---- OpenAI: the stored chat.completion's one choice ---- */

static bool absent(json_t *obj, const char *key)
{
    return tg_translate_member(obj, key) == NULL;
}

/* The choice's message, when a stream can say all it says; NULL otherwise. */
static json_t *replayable_message(json_t *chat)
{
    json_t *choices = json_object_get(chat, "choices");
    json_t *choice = json_array_get(choices, 0);
    json_t *message = json_object_get(choice, "message");
    json_t *content = json_object_get(message, "content");
    json_t *calls = tg_translate_member(message, "tool_calls");
    json_t *annotations = tg_translate_member(message, "annotations");
    if (!json_is_object(chat) || json_array_size(choices) != 1 || !json_is_object(message) ||
        !absent(choice, "logprobs") ||
        json_string_length(tg_translate_member(message, "refusal")) > 0 ||
        !absent(message, "audio") || !absent(message, "function_call") ||
        json_array_size(annotations) > 0 || (annotations != NULL && !json_is_array(annotations)) ||
        !(content == NULL || json_is_null(content) || json_is_string(content)) ||
        (calls != NULL && !json_is_array(calls)) ||
        json_array_size(calls) >= TG_TRANSLATE_OPENAI_MAX_BLOCKS)
        return NULL;
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        const char *type = json_string_value(json_object_get(call, "type"));
        json_t *function = json_object_get(call, "function");
        if (type == NULL || strcmp(type, "function") != 0 ||
            !json_is_string(json_object_get(function, "name")) ||
            !json_is_string(json_object_get(function, "arguments")))
            return NULL;
    }
    return message;
}

static int openai_stream(struct out *s, json_t *chat, json_t *message)
{
    struct tg_usage usage;
    memset(&usage, 0, sizeof(usage));
    tg_translate_openai_usage_read(json_object_get(chat, "usage"), &usage);
    struct tg_usage start_usage = usage;
    start_usage.output_tokens = 0;
    json_t *start_usage_json = tg_translate_pivot_usage_json(&start_usage);
    int rc =
        emit(s, start_usage_json != NULL
                    ? json_pack("{s:s, s:{s:s, s:s, s:O*, s:[], s:n, s:n, s:o}}", "type",
                                "message_start", "message", "type", "message", "role", "assistant",
                                "model", json_object_get(chat, "model"), "content", "stop_reason",
                                "stop_sequence", "usage", start_usage_json)
                    : NULL);
    int index = 0;
    json_t *content = json_object_get(message, "content");
    if (rc == TG_OK && json_string_length(content) > 0) {
        rc = emit_block_start(s, index, json_pack("{s:s, s:s}", "type", "text", "text", ""));
        if (rc == TG_OK)
            rc = emit_pieces(s, index, "text_delta", "text", json_string_value(content),
                             json_string_length(content));
        if (rc == TG_OK)
            rc = emit_block_stop(s, index);
        index++;
    }
    size_t i;
    json_t *call;
    json_array_foreach(tg_translate_member(message, "tool_calls"), i, call) {
        json_t *function = json_object_get(call, "function");
        if (rc != TG_OK)
            break;
        rc = emit_block_start(s, index,
                              json_pack("{s:s, s:O*, s:O, s:{}}", "type", "tool_use", "id",
                                        json_object_get(call, "id"), "name",
                                        json_object_get(function, "name"), "input"));
        if (rc == TG_OK) /* the stored arguments byte for byte, not re-encoded */
            rc = emit_json_pieces(s, index, json_object_get(function, "arguments"));
        if (rc == TG_OK)
            rc = emit_block_stop(s, index);
        index++;
    }
    if (rc != TG_OK)
        return rc;
    const char *finish = json_string_value(
        json_object_get(json_array_get(json_object_get(chat, "choices"), 0), "finish_reason"));
    json_t *usage_json = tg_translate_pivot_usage_json(&usage);
    rc = emit(s, usage_json != NULL
                     ? json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta",
                                 "stop_reason", tg_translate_openai_stop_reason(finish),
                                 "stop_sequence", "usage", usage_json)
                     : NULL);
    return rc == TG_OK ? emit(s, json_pack("{s:s}", "type", "message_stop")) : rc;
}

int tg_cache_stream_write(const char *reply, size_t len, const struct tg_cache_stream_opts *opts,
                          tg_translate_write_fn write, void *ctx)
{
    json_t *doc = json_loadb(reply, len, 0, NULL);
    if (doc == NULL)
        return TG_DECLINED;
    struct out s = {.piece = opts->piece_bytes > 0 ? opts->piece_bytes : TG_CACHE_STREAM_PIECE,
                    .write = write,
                    .ctx = ctx};
    int rc = TG_DECLINED;
    if (!opts->openai) {
        if (is_message(doc))
            rc = anthropic_stream(&s, doc);
    } else {
        json_t *message = replayable_message(doc);
        struct tg_translate_openai_writer w;
        json_t *created = json_object_get(doc, "created");
        if (message != NULL && (rc = tg_translate_openai_writer_init(
                                    &w, json_string_value(json_object_get(doc, "model")),
                                    json_is_integer(created) ? json_integer_value(created) : 0,
                                    json_string_value(json_object_get(doc, "id")),
                                    opts->include_usage, write, ctx)) == TG_OK) {
            s.openai = &w;
            rc = openai_stream(&s, doc, message);
            tg_translate_openai_writer_release(&w);
        }
    }
    json_decref(doc);
    return rc;
}
