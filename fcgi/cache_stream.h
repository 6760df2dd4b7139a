/*
 * cache_stream.h — a cached non-stream reply replayed as the stream the client
 * asked for: a stream request whose key hits an entry of the response cache
 * gets text/event-stream synthesized from the stored reply, in its dialect.
 *
 *   Anthropic (the stored reply is a Messages "message"): message_start (the
 *     message with empty content, its usage with output_tokens 0), then per
 *     content block content_block_start, one or more content_block_delta
 *     (text_delta; input_json_delta with the input as compact JSON for tool_use,
 *     server_tool_use and mcp_tool_use; thinking_delta then signature_delta for
 *     thinking; citations_delta per citation of a text block) and
 *     content_block_stop — a block of any other type (redacted_thinking, a
 *     server tool's result) whole in its content_block_start — then
 *     message_delta (stop_reason, stop_sequence, the stored usage) and
 *     message_stop, each as "event: NAME\ndata: JSON\n\n".
 *   OpenAI (the stored reply is a chat.completion with one choice): the
 *     same pivot events made from it fed to translate_openai_stream.h's writer
 *     (chunks with the stored id, model and created; role first, content
 *     deltas, tool_calls deltas whose arguments are the stored strings byte for
 *     byte, the finish_reason, a usage chunk only with include_usage, then
 *     "data: [DONE]").
 *
 * Texts and JSON are cut into pieces of at most piece_bytes at UTF-8 character
 * boundaries. Pure: no request, no I/O; bytes leave through the callback.
 * Not here: the cache itself (cache.c), whether a request hits (response_cache.c).
 */
#ifndef TG_CACHE_STREAM_H
#define TG_CACHE_STREAM_H

#include "common.h"
#include "translate_openai_stream.h"

/* The longest text or JSON piece of one delta, by default. */
#define TG_CACHE_STREAM_PIECE 1024

struct tg_cache_stream_opts {
    bool openai;        /* the reply is a chat.completion, the stream OpenAI's; else Messages */
    bool include_usage; /* OpenAI: the client's stream_options.include_usage */
    size_t piece_bytes; /* the longest piece of one delta (0: TG_CACHE_STREAM_PIECE) */
};

/*
 * Writes the stream of the stored reply (len bytes of JSON, borrowed) through
 * write (whole SSE frames per call). Returns TG_OK; TG_DECLINED, having written
 * nothing, when the reply cannot be replayed faithfully as a stream — not JSON,
 * not a message / chat.completion, a chat.completion whose choices are not
 * exactly one or that carries a refusal, logprobs, audio, annotations or a
 * legacy function_call (the caller then forwards the request); TG_ERROR when
 * out of memory; or the callback's non-TG_OK value.
 */
int tg_cache_stream_write(const char *reply, size_t len, const struct tg_cache_stream_opts *opts,
                          tg_translate_write_fn write, void *ctx);

#endif
