/*
 * pivot.c — usage and content as the pivot's replies and events say them.
 */
#include "pivot.h"

#include <stdio.h>
#include <string.h>

void tg_pivot_take_usage(json_t *usage, struct tg_usage *out)
{
    if (!json_is_object(usage))
        return;
    json_t *v;
    /* message_delta repeats only what changed: keep earlier values otherwise */
    if (json_is_integer(v = json_object_get(usage, "input_tokens")))
        out->input_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "output_tokens")))
        out->output_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "cache_read_input_tokens")))
        out->cache_read_tokens = json_integer_value(v);
    if (json_is_integer(v = json_object_get(usage, "cache_creation_input_tokens")))
        out->cache_write_tokens = json_integer_value(v);
    /* the part of the cache writes billed at the 1-hour rate, and server tools' uses */
    json_t *creation = json_object_get(usage, "cache_creation");
    if (json_is_integer(v = json_object_get(creation, "ephemeral_1h_input_tokens")))
        out->cache_write_1h_tokens = json_integer_value(v);
    json_t *server_tools = json_object_get(usage, "server_tool_use");
    if (json_is_integer(v = json_object_get(server_tools, "web_search_requests")))
        out->web_search_requests = json_integer_value(v);
}

/* Bytes of content a content_block_delta carries: every token is at least one byte of it. */
static int64_t delta_bytes(json_t *doc)
{
    json_t *delta = json_object_get(doc, "delta");
    static const char *const fields[] = {"text", "partial_json", "thinking", "signature"};
    int64_t n = 0;
    for (size_t i = 0; i < TG_ARRAY_LEN(fields); i++)
        n += (int64_t)json_string_length(json_object_get(delta, fields[i]));
    return n;
}

static bool counted(const char *event)
{
    return strcmp(event, "content_block_delta") == 0 || strcmp(event, "message_start") == 0 ||
           strcmp(event, "message_delta") == 0;
}

void tg_pivot_observe(struct tg_pivot_meter *m, const char *event, json_t *doc)
{
    struct tg_usage *usage = m->usage;
    bool delta = strcmp(event, "content_block_delta") == 0;
    bool start = strcmp(event, "message_start") == 0;
    if (strcmp(event, "error") == 0)
        m->stream_error = true;
    if (!counted(event))
        return;
    if (delta) {
        m->text_bytes += delta_bytes(doc);
    } else if (start) {
        json_t *message = json_object_get(doc, "message");
        tg_pivot_take_usage(json_object_get(message, "usage"), usage);
        tg_pivot_note_model(m, json_string_value(json_object_get(message, "model")));
    } else {
        tg_pivot_note_reason(
            m, json_string_value(json_object_get(json_object_get(doc, "delta"), "stop_reason")));
        json_t *delta_usage = json_object_get(doc, "usage");
        tg_pivot_take_usage(delta_usage, usage);
        m->final_usage = m->final_usage || json_is_object(delta_usage);
    }
}

void tg_pivot_observe_reply(struct tg_pivot_meter *m, json_t *reply)
{
    tg_pivot_note_model(m, json_string_value(json_object_get(reply, "model")));
    tg_pivot_note_reason(m, json_string_value(json_object_get(reply, "stop_reason")));
}

void tg_pivot_note_model(struct tg_pivot_meter *m, const char *model)
{
    if (model != NULL && model[0] != '\0' && m->model[0] == '\0')
        snprintf(m->model, sizeof(m->model), "%s", model);
}

void tg_pivot_note_reason(struct tg_pivot_meter *m, const char *reason)
{
    size_t used = strlen(m->finish_reasons);
    size_t len = reason != NULL ? strlen(reason) : 0;
    /* a reason that would be cut is left out: a list of whole reasons, never a piece */
    if (len == 0 || strchr(reason, '\n') != NULL ||
        used + (used > 0) + len >= sizeof(m->finish_reasons))
        return;
    snprintf(m->finish_reasons + used, sizeof(m->finish_reasons) - used, "%s%s",
             used > 0 ? "\n" : "", reason);
}
