/*
 * translate_openai_backend.h — an OpenAI Chat Completions backend behind the
 * pivot: a pivot request (an Anthropic-SDK client's, say) turned into a chat
 * request, and the chat.completion, its usage and its errors turned back into
 * the pivot's.
 *
 * Pure functions on jansson values: no request, no I/O, no configuration. What
 * a chat request cannot express is declined with a client-safe message naming
 * the field ("messages[1].content[0].type: ..."), for a 400; TG_ERROR means out
 * of memory and nothing else. Not here: the client side (translate_openai.h,
 * translate_openai_reply.h), streams (translate_openai_stream.h).
 */
#ifndef TG_TRANSLATE_OPENAI_BACKEND_H
#define TG_TRANSLATE_OPENAI_BACKEND_H

#include <jansson.h>

#include "common.h"
#include "usage.h"

/*
 * Turns a pivot request (pivot, borrowed) into an OpenAI chat request (*chat,
 * new, set only on TG_OK) for upstream_model (NULL: the pivot's model).
 *
 * Mapped: system as a first system message; user text and image blocks as
 * content parts (a base64 image as a data: URL); tool_result blocks as tool
 * messages, placed before the rest of their user message (OpenAI wants them
 * right after the tool calls; their texts joined with a blank line; is_error
 * has no counterpart and is dropped, the text saying what failed stays);
 * assistant text and tool_use blocks as content and tool_calls (arguments: the
 * input as compact JSON); max_tokens as max_completion_tokens; stop_sequences
 * as stop; temperature; top_p; stream (true adds stream_options.include_usage,
 * which usage needs); tools (client tools: no "type", or "custom") and
 * tool_choice, disable_parallel_tool_use as parallel_tool_calls false;
 * metadata.user_id as user.
 *
 * Dropped silently, and only because they are hints that change no answer:
 * cache_control anywhere (prompt caching; OpenAI caches on its own), a text
 * block's citations, service_tier.
 *
 * Declined: thinking (the parameter, unless disabled, and thinking blocks),
 * documents and any other block type a chat request lacks, images by file
 * reference and images inside tool results, server tools (a tool whose "type"
 * is not "custom"), top_k, and any other top-level field.
 *
 * Returns TG_OK; TG_DECLINED with the message in err; TG_ERROR when out of memory.
 */
int tg_translate_pivot_request_to_openai(json_t *pivot, const char *upstream_model, json_t **chat,
                                         char *err, size_t err_size);

/*
 * Turns an OpenAI chat.completion (chat, borrowed) into a pivot reply (*reply,
 * new, set only on TG_OK): id "msg_" + the completion's id; model (NULL: the
 * completion's); the first choice's content (a string, or text parts) and
 * refusal as text blocks, its tool_calls as tool_use blocks; stop_reason from
 * finish_reason (tg_translate_openai_stop_reason), but tool_use whenever there
 * are tool calls (some backends say "stop" then, and a client runs tools only
 * on tool_use) and refusal when only a refusal came back; stop_sequence null
 * (OpenAI does not say which one matched); usage as
 * tg_translate_openai_usage_read.
 *
 * A tool call's arguments that are not a JSON object (a model's malformed
 * output) are not lost and not invented: the input becomes
 * {"_raw_arguments": "<the text as received>"}, for the client's tool to
 * refuse; "" (no arguments) is {}.
 *
 * Returns TG_OK; TG_DECLINED (err says why, for the log: the backend's fault)
 * when chat has no choice with a message; TG_ERROR when out of memory.
 */
int tg_translate_openai_reply_to_pivot(json_t *chat, const char *model, json_t **reply, char *err,
                                       size_t err_size);

/*
 * The pivot stop_reason for an OpenAI finish_reason (NULL allowed): stop
 * "end_turn", length "max_tokens", tool_calls and function_call "tool_use",
 * content_filter "refusal", anything else and NULL "end_turn". A static string.
 */
const char *tg_translate_openai_stop_reason(const char *finish_reason);

/*
 * Reads an OpenAI usage object (borrowed) into the four kinds, overwriting
 * *out when usage is an object (nothing happens otherwise):
 * cache_read_tokens = prompt_tokens_details.cached_tokens (at most
 * prompt_tokens), input_tokens = prompt_tokens - cached (the uncached rest),
 * output_tokens = completion_tokens, which already holds
 * completion_tokens_details.reasoning_tokens (not added again),
 * cache_write_tokens = 0 (OpenAI does not report cache writes). Missing or
 * negative counts read as 0.
 */
void tg_translate_openai_usage_read(json_t *usage, struct tg_usage *out);

/*
 * The pivot's usage object for usage (a new reference; NULL when out of
 * memory): input_tokens, output_tokens, cache_read_input_tokens,
 * cache_creation_input_tokens.
 */
json_t *tg_translate_pivot_usage_json(const struct tg_usage *usage);

/*
 * The pivot's error body {"type": "error", "error": {"type", "message"}} for an
 * OpenAI error body (borrowed: {"error": {"message", "type", ...}}): a type of
 * the pivot's vocabulary is kept, OpenAI's rate and quota types ("requests",
 * "tokens", "insufficient_quota") become rate_limit_error, any other
 * api_error. A body of another shape gives api_error and fallback_message. A
 * new reference; NULL when out of memory.
 */
json_t *tg_translate_openai_error_to_pivot(json_t *error_body, const char *fallback_message);

#endif
