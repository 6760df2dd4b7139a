/*
 * translate_openai_stream.h — streams between the pivot's events and OpenAI's
 * chat.completion.chunk stream, one state machine each way:
 *
 *   the writer: pivot events (an event name and its data) in, the OpenAI SSE
 *     bytes an OpenAI-SDK client reads out ("data: <chunk>\n\n" ...
 *     "data: [DONE]\n\n");
 *   the reader: an OpenAI backend's chunks (each "data:" line's JSON) in,
 *     pivot events out.
 *
 * Pure: no request, no I/O, no configuration; bytes and events leave through
 * the caller's callback. Splitting the byte stream into events or data lines
 * is sse.c's; the usage mappings are translate_openai_reply.h's and
 * translate_openai_backend.h's.
 */
#ifndef TG_TRANSLATE_OPENAI_STREAM_H
#define TG_TRANSLATE_OPENAI_STREAM_H

#include <jansson.h>

#include "common.h"
#include "usage.h"

/* The most content blocks one pivot message may open, for the writer's map. */
#define TG_TRANSLATE_OPENAI_MAX_BLOCKS 1024

/* The most tool calls one streamed completion may make, for the reader's map. */
#define TG_TRANSLATE_OPENAI_MAX_TOOL_CALLS 256

/* The longest chunk the writer sends, in bytes ("data: " and "\n\n" included). */
#define TG_TRANSLATE_OPENAI_MAX_CHUNK (4 * 1024 * 1024)

/* ---- the writer: pivot events -> OpenAI chunks ---- */

/*
 * Receives len bytes for the client (whole SSE frames). Return TG_OK to go on,
 * anything else to stop: the writer's call returns that value.
 */
typedef int (*tg_translate_write_fn)(void *ctx, const char *bytes, size_t len);

struct tg_translate_openai_writer {
    tg_translate_write_fn write;
    void *ctx;
    json_t *id;    /* the chunks' id; NULL: "chatcmpl-" + message_start's message id */
    json_t *model; /* NULL: message_start's model */
    int64_t created;
    bool include_usage;
    bool started;          /* the first chunk (role "assistant") went out */
    bool finish_sent;      /* the chunk with the finish_reason went out */
    bool ended;            /* message_stop or an error went out: nothing more will */
    int n_tool_calls;      /* tool calls so far: the next one's OpenAI index */
    struct tg_usage usage; /* as message_start and message_delta said */
    /* pivot block index -> its OpenAI tool call index + 1 (0: not a tool call) */
    int tool_of_block[TG_TRANSLATE_OPENAI_MAX_BLOCKS];
};

/*
 * Prepares w. model and id (copied; NULL: taken from message_start), created
 * (Unix seconds) and include_usage (the client's stream_options.include_usage)
 * shape every chunk; write receives the bytes. TG_OK, or TG_ERROR when out of
 * memory (w is then released).
 */
int tg_translate_openai_writer_init(struct tg_translate_openai_writer *w, const char *model,
                                    int64_t created, const char *id, bool include_usage,
                                    tg_translate_write_fn write, void *ctx);

/* Frees what w holds (not w itself). Twice is harmless. */
void tg_translate_openai_writer_release(struct tg_translate_openai_writer *w);

/*
 * Feeds one pivot event: its name (NULL: data's "type") and data (borrowed).
 *   message_start         the first chunk, delta {"role": "assistant", "content": ""}
 *   content_block_start   for a tool_use block, delta.tool_calls [{index k, id, type,
 *                         function {name, arguments ""}}], k counting tool calls from 0
 *   content_block_delta   text_delta as delta.content, input_json_delta as
 *                         delta.tool_calls [{index k, function {arguments}}]
 *   message_delta         a chunk with delta {} and the finish_reason
 *                         (tg_translate_pivot_finish_reason)
 *   message_stop          the finish chunk if none went out, then, with
 *                         include_usage, a chunk with "choices": [] and the usage
 *                         (tg_translate_pivot_usage_to_openai), then "data: [DONE]"
 *   error                 data: {"error": {...}} (tg_translate_pivot_error_to_openai),
 *                         and nothing more: OpenAI ends a failed stream that way
 * A text block's initial text goes out as content too. A content event before
 * any message_start is taken as if one had come (the first chunk goes out
 * first). Thinking and server-tool blocks, their deltas, content_block_stop,
 * ping and unknown events write nothing. With include_usage every other chunk carries "usage":
 * null, as OpenAI's do. Events after the end are ignored. Returns TG_OK; TG_ERROR when out of
 * memory, a chunk passes TG_TRANSLATE_OPENAI_MAX_CHUNK or a block index passes
 * TG_TRANSLATE_OPENAI_MAX_BLOCKS; or the write callback's value.
 */
int tg_translate_openai_writer_feed(struct tg_translate_openai_writer *w, const char *event,
                                    json_t *data);

/*
 * The pivot stream has ended. After message_stop or an error: nothing to do,
 * TG_OK. Before (the stream was cut): writes data: {"error": ...} so that the
 * client does not take a truncated answer for a whole one, and returns
 * TG_DECLINED (or the write callback's value, or TG_ERROR when out of memory).
 */
int tg_translate_openai_writer_finish(struct tg_translate_openai_writer *w);

/* ---- the reader: OpenAI chunks -> pivot events ---- */

/*
 * Receives one pivot event: its name and data (borrowed: valid during the
 * call; data's "type" is the name). Return TG_OK to go on, anything else to
 * stop: the reader's call returns that value.
 */
typedef int (*tg_translate_emit_fn)(void *ctx, const char *event, json_t *data);

struct tg_translate_openai_reader {
    tg_translate_emit_fn emit;
    void *ctx;
    json_t *model;      /* NULL: the chunks' model */
    json_t *message_id; /* "msg_" + the first chunk's id */
    bool started;       /* message_start went out */
    bool ended;         /* message_stop or an error went out */
    bool refused;       /* a refusal came (as text) */
    int open_block;     /* the pivot index of the open block, -1: none */
    bool open_is_text;
    int next_block;          /* the next pivot block index */
    const char *stop_reason; /* from the last finish_reason; NULL: none yet */
    bool has_usage;          /* a chunk carried usage: usage is the backend's count */
    struct tg_usage usage;
    int n_calls;
    struct {
        json_int_t openai_index; /* tool_calls[].index */
        json_t *id;              /* the backend's id for it; NULL: none came */
        int block;               /* its pivot block index */
    } calls[TG_TRANSLATE_OPENAI_MAX_TOOL_CALLS];
};

/*
 * Prepares r. model (copied; NULL: the chunks') names the model in
 * message_start; emit receives the events. TG_OK, or TG_ERROR when out of
 * memory (r is then released).
 */
int tg_translate_openai_reader_init(struct tg_translate_openai_reader *r, const char *model,
                                    tg_translate_emit_fn emit, void *ctx);

/* Frees what r holds (not r itself). Twice is harmless. */
void tg_translate_openai_reader_release(struct tg_translate_openai_reader *r);

/*
 * Feeds one chunk (borrowed: a "data:" line's JSON, [DONE] excluded). The
 * first chunk emits message_start (id "msg_" + the chunk's id, model as init
 * said or the chunk's or "", usage zero: OpenAI counts at the end). Text (and
 * refusal text) opens a text block and emits text_delta; each tool call opens
 * a tool_use block with the id and name of its first delta (an id is made up,
 * "toolu_" + the chunk id + "_" + its block index, when the backend sends
 * none), its arguments pieces emitted as input_json_delta. A call is known by
 * its tool_calls[].index; a new id at an index already seen is a new call (some
 * backends number every call 0), and an item without index nor id continues
 * the last call. One block is open at a time, as in the pivot: opening one
 * closes the last; a late piece of an earlier call's arguments still goes to
 * that call's block index (SDKs gather by index). The finish_reason and a
 * "usage" (which may come after it, in a chunk with empty choices) are kept
 * for done. A chunk holding {"error": ...} emits an error event
 * (tg_translate_openai_error_to_pivot) and ends the stream. Chunks without
 * choices or delta are skipped, and choices after the first. Returns TG_OK;
 * TG_ERROR when out of memory or past TG_TRANSLATE_OPENAI_MAX_TOOL_CALLS; or
 * the emit callback's value.
 */
int tg_translate_openai_reader_feed(struct tg_translate_openai_reader *r, json_t *chunk);

/*
 * The backend's stream ended ([DONE], or the end of the body). Closes the open
 * block and emits message_delta, then message_stop. The stop_reason is the last
 * finish_reason's; when none came, tool_use if the last block is a tool call,
 * else end_turn (the pivot has no "unknown"; a cut stream is the caller's to
 * notice, has_usage false being the sign); refusal instead of end_turn when
 * refusal text came. The usage is tg_translate_openai_usage_read's, zeros when
 * none came. Nothing after an error event, or a second time. TG_DECLINED,
 * emitting nothing, when no chunk came at all. Returns TG_OK; TG_ERROR when out
 * of memory; or the emit callback's value.
 */
int tg_translate_openai_reader_done(struct tg_translate_openai_reader *r);

#endif
