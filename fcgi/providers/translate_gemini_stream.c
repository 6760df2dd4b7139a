/*
 * translate_gemini_stream.c — streamGenerateContent chunks to pivot stream events. The
 * contract is in translate_gemini_stream.h.
 */
#include "translate_gemini_stream.h"

#include <stdio.h>
#include <string.h>

#include "jsafe.h"
#include "translate_gemini.h"

/* Emits data (stolen) as event name; NULL data is out of memory. */
static int emit(struct tg_gemini_stream *s, const char *name, json_t *data)
{
    if (data == NULL)
        return TG_ERROR;
    int rc = s->emit(s->ctx, name, data);
    json_decref(data);
    return rc;
}

void tg_gemini_stream_init(struct tg_gemini_stream *s, const char *model, const char *id_seed,
                           tg_gemini_emit_fn emit_fn, void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->emit = emit_fn;
    s->ctx = ctx;
    snprintf(s->model, sizeof(s->model), "%s", model != NULL ? model : "");
    snprintf(s->seed, sizeof(s->seed), "%s", id_seed != NULL ? id_seed : "");
}

static int message_start(struct tg_gemini_stream *s, json_t *chunk)
{
    tg_gemini_id_base(json_string_value(json_object_get(chunk, "responseId")), s->seed, s->base,
                      sizeof(s->base));
    if (s->model[0] == '\0')
        snprintf(s->model, sizeof(s->model), "%s",
                 json_string_value(json_object_get(chunk, "modelVersion")) != NULL
                     ? json_string_value(json_object_get(chunk, "modelVersion"))
                     : "");
    struct tg_usage start = s->usage;
    start.output_tokens = 0; /* message_delta carries the output */
    char id[64];
    snprintf(id, sizeof(id), "msg_%s", s->base);
    s->started = true;
    return emit(s, "message_start",
                json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start",
                          "message", "id", id, "type", "message", "role", "assistant", "model",
                          s->model, "content", "stop_reason", "stop_sequence", "usage",
                          tg_gemini_usage_json(&start)));
}

static int block_stop(struct tg_gemini_stream *s, size_t index)
{
    return emit(s, "content_block_stop",
                json_pack("{s:s,s:I}", "type", "content_block_stop", "index", (json_int_t)index));
}

static int close_text(struct tg_gemini_stream *s)
{
    if (!s->text_open)
        return TG_OK;
    s->text_open = false;
    return block_stop(s, s->next_index - 1);
}

static int text_delta(struct tg_gemini_stream *s, json_t *text)
{
    int rc = TG_OK;
    if (!s->text_open) {
        rc =
            emit(s, "content_block_start",
                 json_pack("{s:s,s:I,s:{s:s,s:s}}", "type", "content_block_start", "index",
                           (json_int_t)s->next_index, "content_block", "type", "text", "text", ""));
        s->text_open = true;
        s->next_index++;
    }
    if (rc != TG_OK)
        return rc;
    return emit(s, "content_block_delta",
                json_pack("{s:s,s:I,s:{s:s,s:O}}", "type", "content_block_delta", "index",
                          (json_int_t)(s->next_index - 1), "delta", "type", "text_delta", "text",
                          text));
}

static int tool_use(struct tg_gemini_stream *s, json_t *part)
{
    json_t *call = json_object_get(part, "functionCall");
    json_t *name = json_object_get(call, "name");
    json_t *args = json_object_get(call, "args");
    if (!json_is_string(name))
        return TG_OK; /* not a call anything could answer: skipped */
    int rc = close_text(s);
    if (rc != TG_OK)
        return rc;
    size_t index = s->next_index++;
    s->called_function = true;
    rc = emit(s, "content_block_start",
              json_pack("{s:s,s:I,s:{s:s,s:o,s:O,s:{}}}", "type", "content_block_start", "index",
                        (json_int_t)index, "content_block", "type", "tool_use", "id",
                        tg_gemini_tool_use_id(part, s->base, s->calls++), "name", name, "input"));
    if (rc != TG_OK)
        return rc;
    char *partial = json_is_object(args) ? tg_jsafe_dumps(args, JSON_COMPACT) : NULL;
    rc = emit(s, "content_block_delta",
              json_pack("{s:s,s:I,s:{s:s,s:s}}", "type", "content_block_delta", "index",
                        (json_int_t)index, "delta", "type", "input_json_delta", "partial_json",
                        partial != NULL ? partial : "{}"));
    free(partial);
    if (rc != TG_OK)
        return rc;
    return block_stop(s, index);
}

static int message_end(struct tg_gemini_stream *s, const char *stop_reason)
{
    int rc = close_text(s);
    if (rc != TG_OK)
        return rc;
    s->stop_reason = stop_reason;
    s->ended = true;
    rc = emit(s, "message_delta",
              json_pack("{s:s,s:{s:s,s:n},s:o}", "type", "message_delta", "delta", "stop_reason",
                        stop_reason, "stop_sequence", "usage", tg_gemini_usage_json(&s->usage)));
    if (rc != TG_OK)
        return rc;
    return emit(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

int tg_gemini_stream_fail(struct tg_gemini_stream *s, const char *type, const char *message)
{
    if (s->ended)
        return TG_OK;
    s->ended = true;
    s->failed = true;
    return emit(
        s, "error",
        json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message));
}

int tg_gemini_stream_chunk(struct tg_gemini_stream *s, json_t *chunk)
{
    json_t *usage_metadata = json_object_get(chunk, "usageMetadata");
    if (json_is_object(usage_metadata))
        tg_gemini_usage_read(usage_metadata, &s->usage);
    if (s->ended)
        return TG_OK;
    if (json_object_get(chunk, "error") != NULL) {
        s->ended = true;
        s->failed = true;
        return emit(s, "error", tg_gemini_error_to_pivot(chunk, 0));
    }
    int rc = s->started ? TG_OK : message_start(s, chunk);
    json_t *candidate = json_array_get(json_object_get(chunk, "candidates"), 0);
    json_t *parts = json_object_get(json_object_get(candidate, "content"), "parts");
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part) {
        if (rc != TG_OK)
            break;
        json_t *text = json_object_get(part, "text");
        if (json_is_true(json_object_get(part, "thought")))
            continue;
        if (json_is_string(text) && json_string_length(text) > 0)
            rc = text_delta(s, text);
        else if (json_is_object(json_object_get(part, "functionCall")))
            rc = tool_use(s, part);
    }
    if (rc != TG_OK)
        return rc;
    const char *finish = json_string_value(json_object_get(candidate, "finishReason"));
    if (finish != NULL)
        return message_end(s, tg_gemini_stop_reason(finish, s->called_function));
    json_t *feedback = json_object_get(chunk, "promptFeedback");
    if (candidate == NULL && json_is_string(json_object_get(feedback, "blockReason")))
        return message_end(s, "refusal");
    return TG_OK;
}

int tg_gemini_stream_feed(struct tg_gemini_stream *s, const char *data, size_t len)
{
    json_t *chunk = json_loadb(data, len, 0, NULL);
    if (!json_is_object(chunk)) {
        json_decref(chunk);
        return TG_ERROR;
    }
    int rc = tg_gemini_stream_chunk(s, chunk);
    json_decref(chunk);
    return rc;
}

int tg_gemini_stream_finish(struct tg_gemini_stream *s)
{
    if (s->ended)
        return TG_OK;
    if (!s->started) {
        int rc =
            tg_gemini_stream_fail(s, "api_error", "the provider's stream ended without a reply");
        return rc == TG_OK ? TG_ERROR : rc;
    }
    return message_end(s, tg_gemini_stop_reason(NULL, s->called_function));
}
