/*
 * translate_openai_stream.c — the two stream state machines of
 * translate_openai_stream.h: pivot events to OpenAI chunks (the writer) and
 * OpenAI chunks to pivot events (the reader).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_common.h"
#include "translate_openai_backend.h"
#include "translate_openai_reply.h"
#include "translate_openai_stream.h"

static bool type_is(json_t *obj, const char *type)
{
    const char *t = json_string_value(json_object_get(obj, "type"));
    return t != NULL && strcmp(t, type) == 0;
}

/* ---- the writer ---- */

int tg_translate_openai_writer_init(struct tg_translate_openai_writer *w, const char *model,
                                    int64_t created, const char *id, bool include_usage,
                                    tg_translate_write_fn write, void *ctx)
{
    memset(w, 0, sizeof(*w));
    w->write = write;
    w->ctx = ctx;
    w->created = created;
    w->include_usage = include_usage;
    w->model = model != NULL ? json_string(model) : NULL;
    w->id = id != NULL ? json_string(id) : NULL;
    if ((model != NULL && w->model == NULL) || (id != NULL && w->id == NULL)) {
        tg_translate_openai_writer_release(w);
        return TG_ERROR;
    }
    return TG_OK;
}

void tg_translate_openai_writer_release(struct tg_translate_openai_writer *w)
{
    json_decref(w->id);
    json_decref(w->model);
    w->id = NULL;
    w->model = NULL;
}

/* Writes "data: <payload, compact>\n\n" in one call; payload is stolen. */
static int write_data(struct tg_translate_openai_writer *w, json_t *payload)
{
    static const size_t frame = sizeof("data: ") - 1 + 2;
    const size_t flags = JSON_COMPACT;
    size_t size = payload != NULL ? json_dumpb(payload, NULL, 0, flags) : 0;
    if (size == 0 || size > TG_TRANSLATE_OPENAI_MAX_CHUNK - frame) {
        json_decref(payload);
        return TG_ERROR;
    }
    char *buf = malloc(size + frame);
    if (buf == NULL) {
        json_decref(payload);
        return TG_ERROR;
    }
    memcpy(buf, "data: ", 6);
    size_t written = json_dumpb(payload, buf + 6, size, flags);
    json_decref(payload);
    int rc = TG_ERROR;
    if (written == size) {
        memcpy(buf + 6 + size, "\n\n", 2);
        rc = w->write(w->ctx, buf, size + frame);
    }
    free(buf);
    return rc;
}

/* The chunk frame around choices (stolen), with "usage": null when the client asked for usage. */
static json_t *chunk_of(struct tg_translate_openai_writer *w, json_t *choices)
{
    json_t *chunk =
        json_pack("{s:O?, s:s, s:I, s:O?, s:o}", "id", w->id, "object", "chat.completion.chunk",
                  "created", (json_int_t)w->created, "model", w->model, "choices", choices);
    if (chunk != NULL && w->include_usage && json_object_set_new(chunk, "usage", json_null())) {
        json_decref(chunk);
        return NULL;
    }
    return chunk;
}

/* Sends a chunk with one choice: delta (stolen) and finish_reason (NULL: null). */
static int send_delta(struct tg_translate_openai_writer *w, json_t *delta, const char *finish)
{
    json_t *choices =
        json_pack("[{s:i, s:o, s:s?}]", "index", 0, "delta", delta, "finish_reason", finish);
    return write_data(w, chunk_of(w, choices));
}

/* The first chunk, once: it names the assistant role. */
static int start(struct tg_translate_openai_writer *w)
{
    if (w->started)
        return TG_OK;
    w->started = true;
    return send_delta(w, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL);
}

static int on_message_start(struct tg_translate_openai_writer *w, json_t *data)
{
    json_t *message = json_object_get(data, "message");
    const char *id = json_string_value(json_object_get(message, "id"));
    json_t *model = json_object_get(message, "model");
    if (w->id == NULL && (w->id = json_sprintf("chatcmpl-%s", id != NULL ? id : "")) == NULL)
        return TG_ERROR;
    if (w->model == NULL &&
        (w->model = json_is_string(model) ? json_incref(model) : json_string("")) == NULL)
        return TG_ERROR;
    tg_translate_pivot_usage_read(json_object_get(message, "usage"), &w->usage);
    return start(w);
}

/* data's block index, when it has one within the map. */
static bool block_index(json_t *data, int *index)
{
    json_t *v = json_object_get(data, "index");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= TG_TRANSLATE_OPENAI_MAX_BLOCKS)
        return false;
    *index = (int)json_integer_value(v);
    return true;
}

static int on_block_start(struct tg_translate_openai_writer *w, json_t *data)
{
    json_t *block = json_object_get(data, "content_block");
    int index, rc = start(w);
    if (rc != TG_OK)
        return rc;
    if (type_is(block, "text")) {
        json_t *text = json_object_get(block, "text");
        if (json_string_length(text) == 0)
            return TG_OK;
        return send_delta(w, json_pack("{s:O}", "content", text), NULL);
    }
    if (!type_is(block, "tool_use"))
        return TG_OK; /* thinking and server tools have no place in a chunk */
    if (!block_index(data, &index))
        return TG_ERROR;
    int k = w->n_tool_calls++;
    w->tool_of_block[index] = k + 1;
    json_t *input = json_object_get(block, "input");
    json_t *arguments = json_object_size(input) > 0 ? tg_translate_compact(input) : json_string("");
    json_t *delta = json_pack("{s:[{s:i, s:O?, s:s, s:{s:O?, s:o}}]}", "tool_calls", "index", k,
                              "id", json_object_get(block, "id"), "type", "function", "function",
                              "name", json_object_get(block, "name"), "arguments", arguments);
    return send_delta(w, delta, NULL);
}

static int on_block_delta(struct tg_translate_openai_writer *w, json_t *data)
{
    json_t *delta = json_object_get(data, "delta");
    int index, rc = start(w);
    if (rc != TG_OK)
        return rc;
    if (type_is(delta, "text_delta")) {
        json_t *text = json_object_get(delta, "text");
        if (json_string_length(text) == 0)
            return TG_OK;
        return send_delta(w, json_pack("{s:O}", "content", text), NULL);
    }
    if (!type_is(delta, "input_json_delta") || !block_index(data, &index) ||
        w->tool_of_block[index] == 0)
        return TG_OK; /* thinking, signatures, citations, server tools' input */
    json_t *partial = json_object_get(delta, "partial_json");
    if (json_string_length(partial) == 0)
        return TG_OK;
    return send_delta(w,
                      json_pack("{s:[{s:i, s:{s:O}}]}", "tool_calls", "index",
                                w->tool_of_block[index] - 1, "function", "arguments", partial),
                      NULL);
}

static int on_message_delta(struct tg_translate_openai_writer *w, json_t *data)
{
    int rc = start(w);
    if (rc != TG_OK)
        return rc;
    tg_translate_pivot_usage_read(json_object_get(data, "usage"), &w->usage);
    json_t *reason = json_object_get(json_object_get(data, "delta"), "stop_reason");
    if (!json_is_string(reason) || w->finish_sent)
        return TG_OK;
    w->finish_sent = true;
    return send_delta(w, json_object(),
                      tg_translate_pivot_finish_reason(json_string_value(reason)));
}

static int on_message_stop(struct tg_translate_openai_writer *w)
{
    int rc = start(w);
    if (rc == TG_OK && !w->finish_sent) {
        w->finish_sent = true;
        rc = send_delta(w, json_object(), "stop");
    }
    if (rc == TG_OK && w->include_usage) {
        json_t *chunk = chunk_of(w, json_array());
        json_t *usage = tg_translate_pivot_usage_to_openai(&w->usage);
        if (chunk == NULL) {
            json_decref(usage);
            return TG_ERROR;
        }
        if (json_object_set_new(chunk, "usage", usage) != 0) {
            json_decref(chunk);
            return TG_ERROR;
        }
        rc = write_data(w, chunk);
    }
    w->ended = true;
    if (rc == TG_OK)
        rc = w->write(w->ctx, "data: [DONE]\n\n", 14);
    return rc;
}

int tg_translate_openai_writer_feed(struct tg_translate_openai_writer *w, const char *event,
                                    json_t *data)
{
    if (event == NULL)
        event = json_string_value(json_object_get(data, "type"));
    if (w->ended || event == NULL)
        return TG_OK;
    if (strcmp(event, "message_start") == 0)
        return on_message_start(w, data);
    if (strcmp(event, "error") == 0) {
        w->ended = true;
        return write_data(w, tg_translate_pivot_error_to_openai(data, "the provider failed"));
    }
    bool block_start = strcmp(event, "content_block_start") == 0;
    bool block_delta = strcmp(event, "content_block_delta") == 0;
    bool message_delta = strcmp(event, "message_delta") == 0;
    bool message_stop = strcmp(event, "message_stop") == 0;
    if (!block_start && !block_delta && !message_delta && !message_stop)
        return TG_OK;                        /* ping, content_block_stop, and whatever comes next */
    if (w->id == NULL || w->model == NULL) { /* no message_start: name the chunks all the same */
        json_t *none = json_pack("{s:{}}", "message");
        int rc = none != NULL ? on_message_start(w, none) : TG_ERROR;
        json_decref(none);
        if (rc != TG_OK)
            return rc;
    }
    if (block_start)
        return on_block_start(w, data);
    if (block_delta)
        return on_block_delta(w, data);
    if (message_delta)
        return on_message_delta(w, data);
    return on_message_stop(w);
}

int tg_translate_openai_writer_finish(struct tg_translate_openai_writer *w)
{
    if (w->ended)
        return TG_OK;
    w->ended = true;
    json_t *body = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message",
                             "the provider's stream ended before the answer was complete", "type",
                             "api_error", "param", "code");
    int rc = write_data(w, body);
    return rc == TG_OK ? TG_DECLINED : rc;
}

/* ---- the reader ---- */

int tg_translate_openai_reader_init(struct tg_translate_openai_reader *r, const char *model,
                                    tg_translate_emit_fn emit, void *ctx)
{
    memset(r, 0, sizeof(*r));
    r->emit = emit;
    r->ctx = ctx;
    r->open_block = -1;
    r->model = model != NULL ? json_string(model) : NULL;
    if (model != NULL && r->model == NULL)
        return TG_ERROR;
    return TG_OK;
}

void tg_translate_openai_reader_release(struct tg_translate_openai_reader *r)
{
    json_decref(r->model);
    json_decref(r->message_id);
    for (int k = 0; k < r->n_calls; k++)
        json_decref(r->calls[k].id);
    r->model = NULL;
    r->message_id = NULL;
    r->n_calls = 0;
}

/* Emits event with data (stolen; NULL: out of memory). */
static int emit(struct tg_translate_openai_reader *r, const char *event, json_t *data)
{
    if (data == NULL)
        return TG_ERROR;
    int rc = r->emit(r->ctx, event, data);
    json_decref(data);
    return rc;
}

static int message_start(struct tg_translate_openai_reader *r, json_t *chunk)
{
    const char *id = json_string_value(json_object_get(chunk, "id"));
    const char *model =
        json_string_value(r->model != NULL ? r->model : json_object_get(chunk, "model"));
    r->message_id = json_sprintf("msg_%s", id != NULL ? id : "");
    if (r->message_id == NULL)
        return TG_ERROR;
    r->started = true;
    struct tg_usage zero = {0};
    return emit(r, "message_start",
                json_pack("{s:s, s:{s:O, s:s, s:s, s:s, s:[], s:n, s:n, s:o}}", "type",
                          "message_start", "message", "id", r->message_id, "type", "message",
                          "role", "assistant", "model", model != NULL ? model : "", "content",
                          "stop_reason", "stop_sequence", "usage",
                          tg_translate_pivot_usage_json(&zero)));
}

static int close_block(struct tg_translate_openai_reader *r)
{
    if (r->open_block < 0)
        return TG_OK;
    int index = r->open_block;
    r->open_block = -1;
    return emit(r, "content_block_stop",
                json_pack("{s:s, s:i}", "type", "content_block_stop", "index", index));
}

/* Opens the next block (content_block stolen) after closing the open one. */
static int open_block(struct tg_translate_openai_reader *r, json_t *content_block, bool text)
{
    int rc = close_block(r);
    if (rc != TG_OK) {
        json_decref(content_block);
        return rc;
    }
    r->open_block = r->next_block++;
    r->open_is_text = text;
    return emit(r, "content_block_start",
                json_pack("{s:s, s:i, s:o}", "type", "content_block_start", "index", r->open_block,
                          "content_block", content_block));
}

static int text_piece(struct tg_translate_openai_reader *r, json_t *text)
{
    if (json_string_length(text) == 0)
        return TG_OK;
    if (r->open_block < 0 || !r->open_is_text) {
        int rc = open_block(r, json_pack("{s:s, s:s}", "type", "text", "text", ""), true);
        if (rc != TG_OK)
            return rc;
    }
    return emit(r, "content_block_delta",
                json_pack("{s:s, s:i, s:{s:s, s:O}}", "type", "content_block_delta", "index",
                          r->open_block, "delta", "type", "text_delta", "text", text));
}

/* One tool_calls[] item of a delta; position is its place in the array. */
static int tool_piece(struct tg_translate_openai_reader *r, json_t *chunk, json_t *item,
                      size_t position)
{
    json_t *index = json_object_get(item, "index"), *id = json_object_get(item, "id");
    json_t *function = json_object_get(item, "function");
    json_int_t openai_index = (json_int_t)position;
    if (json_is_integer(index))
        openai_index = json_integer_value(index);
    else if (!json_is_string(id) && r->n_calls > 0) /* a piece without index nor id: the last */
        openai_index = r->calls[r->n_calls - 1].openai_index;
    else if (json_is_string(id))
        openai_index = r->n_calls > 0 ? r->calls[r->n_calls - 1].openai_index + 1 : 0;
    int k = r->n_calls - 1;
    while (k >= 0 && r->calls[k].openai_index != openai_index)
        k--;
    /* another id at a known index: some backends number every call 0 */
    if (k >= 0 && json_is_string(id) && r->calls[k].id != NULL && !json_equal(id, r->calls[k].id))
        k = -1;
    if (k < 0) {
        k = r->n_calls;
        if (r->n_calls == TG_TRANSLATE_OPENAI_MAX_TOOL_CALLS)
            return TG_ERROR;
        const char *chunk_id = json_string_value(json_object_get(chunk, "id"));
        json_t *block_id =
            json_is_string(id)
                ? json_incref(id)
                : json_sprintf("toolu_%s_%d", chunk_id != NULL ? chunk_id : "", r->next_block);
        json_t *name = json_object_get(function, "name");
        int rc = open_block(r,
                            json_pack("{s:s, s:o, s:s, s:{}}", "type", "tool_use", "id", block_id,
                                      "name", json_is_string(name) ? json_string_value(name) : "",
                                      "input"),
                            false);
        if (rc != TG_OK)
            return rc;
        r->calls[k].openai_index = openai_index;
        r->calls[k].block = r->open_block;
        r->calls[k].id = json_is_string(id) ? json_incref(id) : NULL;
        r->n_calls++;
    }
    json_t *arguments = json_object_get(function, "arguments");
    if (json_string_length(arguments) == 0)
        return TG_OK;
    return emit(r, "content_block_delta",
                json_pack("{s:s, s:i, s:{s:s, s:O}}", "type", "content_block_delta", "index",
                          r->calls[k].block, "delta", "type", "input_json_delta", "partial_json",
                          arguments));
}

int tg_translate_openai_reader_feed(struct tg_translate_openai_reader *r, json_t *chunk)
{
    int rc;
    if (r->ended || !json_is_object(chunk))
        return TG_OK;
    json_t *error = json_object_get(chunk, "error");
    if (json_is_object(error)) {
        r->ended = true;
        return emit(r, "error", tg_translate_openai_error_to_pivot(chunk, "the provider failed"));
    }
    if (!r->started && (rc = message_start(r, chunk)) != TG_OK)
        return rc;
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        tg_translate_openai_usage_read(usage, &r->usage);
        r->has_usage = true;
    }
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta");
    json_t *refusal = json_object_get(delta, "refusal");
    if ((rc = text_piece(r, json_object_get(delta, "content"))) != TG_OK)
        return rc;
    if (json_string_length(refusal) > 0) {
        r->refused = true;
        if ((rc = text_piece(r, refusal)) != TG_OK)
            return rc;
    }
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, item) {
        if (json_is_object(item) && (rc = tool_piece(r, chunk, item, i)) != TG_OK)
            return rc;
    }
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish != NULL)
        r->stop_reason = tg_translate_openai_stop_reason(finish);
    return TG_OK;
}

int tg_translate_openai_reader_done(struct tg_translate_openai_reader *r)
{
    if (r->ended)
        return TG_OK;
    if (!r->started)
        return TG_DECLINED;
    r->ended = true;
    bool last_is_tool = r->n_calls > 0 && r->calls[r->n_calls - 1].block == r->next_block - 1;
    int rc = close_block(r);
    if (rc != TG_OK)
        return rc;
    const char *stop = r->stop_reason;
    if (stop == NULL)
        stop = last_is_tool ? "tool_use" : "end_turn";
    if (r->refused && strcmp(stop, "end_turn") == 0)
        stop = "refusal";
    rc = emit(r, "message_delta",
              json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta", "stop_reason",
                        stop, "stop_sequence", "usage", tg_translate_pivot_usage_json(&r->usage)));
    if (rc != TG_OK)
        return rc;
    return emit(r, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}
