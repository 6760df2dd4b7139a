/*
 * translate_gemini_stream.h — streamGenerateContent?alt=sse to the pivot's stream
 * events. Each "data:" chunk (a GenerateContentResponse) is fed in as it arrives; the
 * pivot's events (message_start, content_block_start / _delta / _stop, message_delta,
 * message_stop, error) come out through a callback, each as an event name and a data
 * object whose "type" is that name.
 *
 * How chunks map: message_start at the first chunk (its usage the prompt's, output 0);
 * text parts as text_delta events in one text block, reopened after a function call;
 * each functionCall as a tool_use block of its own (start with input {}, one
 * input_json_delta holding the whole args JSON, stop); thought parts skipped. A chunk
 * with a finishReason (or a blocked prompt) ends the message: the open block stops, then
 * message_delta (stop_reason as tg_gemini_stop_reason, usage from the last
 * usageMetadata seen, all four kinds) and message_stop. A stream that ends without one
 * ends the same way at tg_gemini_stream_finish, stop_reason "end_turn" ("tool_use" after
 * a function call). Ids follow
 * translate_gemini.h. Chunks after the end only update the usage.
 *
 * Not here: the SSE framing (sse.c), the HTTP, and writing events to the client.
 */
#ifndef TG_TRANSLATE_GEMINI_STREAM_H
#define TG_TRANSLATE_GEMINI_STREAM_H

#include <jansson.h>

#include "common.h"
#include "usage.h"

/*
 * Receives one pivot event: event_name (static) and data (borrowed: released after the
 * call; json_incref to keep it). Return TG_OK to go on; anything else stops the feed,
 * which returns it.
 */
typedef int (*tg_gemini_emit_fn)(void *ctx, const char *event_name, json_t *data);

/* One stream's state. Holds no allocation: nothing to release. Read-only to callers. */
struct tg_gemini_stream {
    tg_gemini_emit_fn emit;
    void *ctx;
    char model[256];
    char seed[49];
    char base[49];           /* the ids' base, set at the first chunk */
    bool started;            /* message_start went out */
    bool ended;              /* message_stop or an error event went out */
    bool failed;             /* the end was an error event */
    bool called_function;    /* a tool_use block went out */
    bool text_open;          /* the block at index next_index - 1 is an open text block */
    size_t next_index;       /* the index of the next content block */
    size_t calls;            /* function calls so far */
    const char *stop_reason; /* static; NULL until the message ended */
    struct tg_usage usage;   /* from the last usageMetadata seen */
};

/*
 * Prepares s. model (borrowed, copied; may be NULL: the first chunk's modelVersion) names
 * the model in message_start; id_seed (borrowed, copied, may be NULL) stands in for a
 * missing responseId (tg_gemini_id_base). emit gets every event with ctx.
 */
void tg_gemini_stream_init(struct tg_gemini_stream *s, const char *model, const char *id_seed,
                           tg_gemini_emit_fn emit, void *ctx);

/*
 * Feeds one parsed chunk (borrowed). A chunk holding {"error": {...}} emits the pivot's
 * error event (tg_gemini_error_to_pivot) and ends the stream. Returns TG_OK, TG_ERROR when
 * memory ran out, or emit's non-TG_OK value.
 */
int tg_gemini_stream_chunk(struct tg_gemini_stream *s, json_t *chunk);

/*
 * Feeds one chunk's text (len bytes, the "data:" of one SSE event). TG_ERROR when it is
 * not a JSON object (nothing is emitted: the caller may tg_gemini_stream_fail); else as
 * tg_gemini_stream_chunk.
 */
int tg_gemini_stream_feed(struct tg_gemini_stream *s, const char *data, size_t len);

/*
 * The provider's stream is over. Ends a started message that no finishReason ended
 * (stop_reason "end_turn", or "tool_use" after a function call). A stream with no chunk at all
 * emits an error event (api_error) and returns TG_ERROR; after an end, does nothing. Returns TG_OK,
 * or emit's non-TG_OK value.
 */
int tg_gemini_stream_finish(struct tg_gemini_stream *s);

/*
 * Ends the stream with an error event {"type": "error", "error": {"type": type,
 * "message": message}} (both borrowed, client-safe) unless it already ended. Returns
 * TG_OK, TG_ERROR when memory ran out, or emit's value.
 */
int tg_gemini_stream_fail(struct tg_gemini_stream *s, const char *type, const char *message);

#endif
