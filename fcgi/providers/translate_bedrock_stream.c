/*
 * translate_bedrock_stream.c — ConverseStream's event-stream messages to the
 * pivot's stream events (the state machine of translate_bedrock.h).
 */
#include "translate_bedrock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PROVIDER "provider \"bedrock\""
#define CLIENT_MESSAGE_MAX 300 /* Bedrock's own message, passed to the client, is cut here */

/* ---- ConverseStream ---- */

void tg_translate_bedrock_stream_init(struct tg_translate_bedrock_stream *s, const char *id,
                                      const char *model, tg_translate_bedrock_emit_fn emit,
                                      void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->emit = emit;
    s->ctx = ctx;
    snprintf(s->id, sizeof(s->id), "%s", id != NULL ? id : "");
    snprintf(s->model, sizeof(s->model), "%s", model != NULL ? model : "");
}

/* Emits name with data (stolen); NULL data is out of memory. */
static int emit(struct tg_translate_bedrock_stream *s, const char *name, json_t *data)
{
    if (data == NULL) {
        snprintf(s->error, sizeof(s->error), "out of memory translating the stream");
        s->ended = true;
        return TG_ERROR;
    }
    int rc = s->emit(s->ctx, name, data);
    json_decref(data);
    return rc;
}

/* Ends the stream with an error event of pivot type type. */
static int stream_error(struct tg_translate_bedrock_stream *s, const char *type,
                        const char *message)
{
    s->ended = true;
    return emit(
        s, "error",
        json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message));
}

static int protocol_error(struct tg_translate_bedrock_stream *s, const char *fmt, ...)
    TG_PRINTF(2, 3);

static int protocol_error(struct tg_translate_bedrock_stream *s, const char *fmt, ...)
{
    if (s->error[0] == '\0') { /* the first failure is the one to log */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->error, sizeof(s->error), fmt, ap);
        va_end(ap);
    }
    if (!s->ended)
        stream_error(s, "api_error", "invalid stream from " PROVIDER);
    return TG_ERROR;
}

static int ensure_started(struct tg_translate_bedrock_stream *s)
{
    if (s->started)
        return TG_OK;
    s->started = true;
    return emit(s, "message_start",
                json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i,s:i,s:i}}}", "type",
                          "message_start", "message", "id", s->id, "type", "message", "role",
                          "assistant", "model", s->model, "content", "stop_reason", "stop_sequence",
                          "usage", "input_tokens", 0, "output_tokens", 0, "cache_read_input_tokens",
                          0, "cache_creation_input_tokens", 0));
}

static int close_block(struct tg_translate_bedrock_stream *s)
{
    if (!s->block_open)
        return TG_OK;
    s->block_open = false;
    return emit(
        s, "content_block_stop",
        json_pack("{s:s,s:I}", "type", "content_block_stop", "index", (json_int_t)s->block_index));
}

/* Opens a pivot block for Bedrock's block bedrock_index: a text block, or a tool_use one. */
static int open_block(struct tg_translate_bedrock_stream *s, int64_t bedrock_index,
                      const json_t *tool_id, const json_t *tool_name)
{
    int rc = close_block(s);
    if (rc != TG_OK)
        return rc;
    s->block_open = true;
    s->block_is_tool = tool_id != NULL;
    s->block_bedrock_index = bedrock_index;
    s->block_index = s->blocks++;
    json_t *block = tool_id != NULL ? json_pack("{s:s,s:O,s:O,s:{}}", "type", "tool_use", "id",
                                                tool_id, "name", tool_name, "input")
                                    : json_pack("{s:s,s:s}", "type", "text", "text", "");
    return emit(s, "content_block_start",
                json_pack("{s:s,s:I,s:o}", "type", "content_block_start", "index",
                          (json_int_t)s->block_index, "content_block", block));
}

static int delta(struct tg_translate_bedrock_stream *s, const char *kind, const char *key,
                 const json_t *value)
{
    return emit(s, "content_block_delta",
                json_pack("{s:s,s:I,s:{s:s,s:O}}", "type", "content_block_delta", "index",
                          (json_int_t)s->block_index, "delta", "type", kind, key, value));
}

/* message_delta and message_stop once both messageStop and metadata came. */
static int maybe_end(struct tg_translate_bedrock_stream *s)
{
    if (!s->stopped || !s->have_metadata)
        return TG_OK;
    int rc = close_block(s);
    if (rc != TG_OK)
        return rc;
    s->ended = true;
    json_t *seq = s->has_stop_sequence ? json_string(s->stop_sequence) : json_null();
    rc =
        emit(s, "message_delta",
             json_pack("{s:s,s:{s:s,s:o},s:{s:I,s:I,s:I,s:I}}", "type", "message_delta", "delta",
                       "stop_reason", s->stop_reason, "stop_sequence", seq, "usage", "input_tokens",
                       (json_int_t)s->input_tokens, "output_tokens", (json_int_t)s->output_tokens,
                       "cache_read_input_tokens", (json_int_t)s->cache_read_input_tokens,
                       "cache_creation_input_tokens", (json_int_t)s->cache_creation_input_tokens));
    if (rc != TG_OK)
        return rc;
    return emit(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

static int64_t block_index_of(const json_t *payload)
{
    const json_t *i = json_object_get(payload, "contentBlockIndex");
    return json_is_integer(i) ? (int64_t)json_integer_value(i) : -1;
}

static int on_event(struct tg_translate_bedrock_stream *s, const char *type, const json_t *p)
{
    int rc = TG_OK;
    if (strcmp(type, "messageStart") == 0)
        return ensure_started(s);
    if (strcmp(type, "contentBlockStart") == 0) {
        const json_t *use = json_object_get(json_object_get(p, "start"), "toolUse");
        if (use == NULL)
            return ensure_started(s); /* a kind of block the pivot has not: skipped */
        const json_t *id = json_object_get(use, "toolUseId"), *name = json_object_get(use, "name");
        if (!json_is_string(id) || !json_is_string(name))
            return protocol_error(s, "contentBlockStart toolUse without toolUseId or name");
        rc = ensure_started(s);
        return rc == TG_OK ? open_block(s, block_index_of(p), id, name) : rc;
    }
    if (strcmp(type, "contentBlockDelta") == 0) {
        const json_t *d = json_object_get(p, "delta");
        const json_t *text = json_object_get(d, "text");
        const json_t *input = json_object_get(json_object_get(d, "toolUse"), "input");
        int64_t index = block_index_of(p);
        bool here = s->block_open && s->block_bedrock_index == index;
        rc = ensure_started(s);
        if (rc == TG_OK && json_is_string(text)) {
            if (!here || s->block_is_tool)
                rc = open_block(s, index, NULL, NULL);
            return rc == TG_OK ? delta(s, "text_delta", "text", text) : rc;
        }
        if (rc == TG_OK && json_is_string(input)) {
            if (!here || !s->block_is_tool)
                return protocol_error(s, "toolUse delta for block %lld outside a tool block",
                                      (long long)index);
            return delta(s, "input_json_delta", "partial_json", input);
        }
        return rc; /* reasoning and other deltas: not part of the pivot stream */
    }
    if (strcmp(type, "contentBlockStop") == 0) {
        if (s->block_open && s->block_bedrock_index == block_index_of(p))
            return close_block(s);
        return TG_OK;
    }
    if (strcmp(type, "messageStop") == 0) {
        rc = ensure_started(s);
        if (rc == TG_OK)
            rc = close_block(s);
        const char *reason = json_string_value(json_object_get(p, "stopReason"));
        snprintf(s->stop_reason, sizeof(s->stop_reason), "%s",
                 tg_translate_bedrock_stop_reason(reason));
        const json_t *seq = tg_translate_bedrock_stop_sequence(p);
        s->has_stop_sequence = seq != NULL;
        snprintf(s->stop_sequence, sizeof(s->stop_sequence), "%s",
                 seq != NULL ? json_string_value(seq) : "");
        s->stopped = true;
        return rc == TG_OK ? maybe_end(s) : rc;
    }
    if (strcmp(type, "metadata") == 0) {
        const json_t *u = json_object_get(p, "usage");
        s->have_metadata = true;
        if (json_is_object(u)) {
            s->have_usage = true;
            s->input_tokens = tg_translate_bedrock_count(u, "inputTokens");
            s->output_tokens = tg_translate_bedrock_count(u, "outputTokens");
            s->cache_read_input_tokens = tg_translate_bedrock_count(u, "cacheReadInputTokens");
            s->cache_creation_input_tokens = tg_translate_bedrock_count(u, "cacheWriteInputTokens");
        }
        return maybe_end(s);
    }
    return TG_OK; /* an event type added after this was written */
}

/* Bedrock's exception types and the pivot's error types; whether Bedrock's message is shown. */
static const struct {
    const char *exception, *pivot;
    bool show_message;
} exceptions[] = {
    {"throttlingException", "rate_limit_error", true},
    {"validationException", "invalid_request_error", true},
    {"serviceUnavailableException", "overloaded_error", false},
    {"modelTimeoutException", "timeout_error", false},
    {"modelStreamErrorException", "api_error", false},
    {"internalServerException", "api_error", false},
};

static int on_exception(struct tg_translate_bedrock_stream *s, const char *type,
                        const json_t *payload)
{
    const char *message = json_string_value(json_object_get(payload, "message"));
    snprintf(s->error, sizeof(s->error), "bedrock exception \"%.64s\": %.160s", type,
             message != NULL ? message : "(no message)");
    const char *pivot = "api_error";
    bool show = false;
    for (size_t i = 0; i < TG_ARRAY_LEN(exceptions); i++)
        if (strcmp(type, exceptions[i].exception) == 0) {
            pivot = exceptions[i].pivot;
            show = exceptions[i].show_message;
        }
    char text[CLIENT_MESSAGE_MAX + 96];
    if (show && message != NULL)
        snprintf(text, sizeof(text), "%.*s", CLIENT_MESSAGE_MAX, message);
    else
        snprintf(text, sizeof(text), PROVIDER " failed during the stream (%.64s)", type);
    return stream_error(s, pivot, text);
}

int tg_translate_bedrock_stream_feed(struct tg_translate_bedrock_stream *s,
                                     const struct tg_eventstream_message *msg)
{
    if (s->ended)
        return protocol_error(s, "bedrock stream message \"%.64s\" after the end", msg->event_type);
    if (strcmp(msg->message_type, "error") == 0) {
        snprintf(s->error, sizeof(s->error), "bedrock stream error \"%.64s\": %.160s",
                 msg->error_code, msg->error_message);
        return stream_error(s, "api_error", PROVIDER " failed during the stream");
    }
    bool exception = strcmp(msg->message_type, "exception") == 0;
    if (!exception && strcmp(msg->message_type, "event") != 0)
        return protocol_error(s, "bedrock stream message of type \"%.32s\"", msg->message_type);
    json_error_t jerr;
    json_t *payload = json_loadb((const char *)msg->payload, msg->payload_len, 0, &jerr);
    if (!json_is_object(payload) && !exception) {
        json_decref(payload);
        return protocol_error(s, "bedrock event \"%.64s\" has no JSON object: %.80s",
                              msg->event_type, jerr.text);
    }
    int rc = exception ? on_exception(s, msg->event_type, payload)
                       : on_event(s, msg->event_type, payload);
    json_decref(payload);
    return rc;
}

int tg_translate_bedrock_stream_on_message(void *stream, const struct tg_eventstream_message *msg)
{
    return tg_translate_bedrock_stream_feed(stream, msg);
}

int tg_translate_bedrock_stream_finish(struct tg_translate_bedrock_stream *s)
{
    if (s->ended)
        return TG_OK;
    snprintf(s->error, sizeof(s->error), "bedrock stream ended %s",
             s->started ? "before messageStop and metadata" : "before any event");
    stream_error(s, "api_error", "stream from " PROVIDER " ended early");
    return TG_ERROR;
}
