/*
 * translate_openai_reply.h — the pivot's answers turned into what an
 * OpenAI-SDK client reads: a Messages reply into a chat.completion, the pivot's
 * usage and error bodies into OpenAI's, a stop_reason into a finish_reason.
 *
 * Pure functions on jansson values (translate_openai.h says what "pivot"
 * means). Not here: the request (translate_openai.h), streams
 * (translate_openai_stream.h).
 */
#ifndef TG_TRANSLATE_OPENAI_REPLY_H
#define TG_TRANSLATE_OPENAI_REPLY_H

#include <jansson.h>

#include "common.h"
#include "usage.h"

/*
 * Turns a pivot reply (reply, borrowed: a "message" object) into an OpenAI
 * chat.completion (*chat, new, set only on TG_OK): id "chatcmpl-" + the reply's
 * id; model (NULL: the reply's); created (Unix seconds); one choice whose
 * message holds the text blocks concatenated (null when there is none) and the
 * tool_use blocks as tool_calls (arguments: the input as compact JSON);
 * finish_reason from stop_reason (tg_translate_pivot_finish_reason); usage as
 * tg_translate_pivot_usage_to_openai. Thinking and server-tool blocks have no
 * place in a chat.completion and are dropped. Returns TG_OK; TG_DECLINED (err
 * says why, for the log: the backend's fault, not the client's) when reply is
 * not a message; TG_ERROR when out of memory.
 */
int tg_translate_pivot_reply_to_openai(json_t *reply, const char *model, int64_t created,
                                       json_t **chat, char *err, size_t err_size);

/*
 * The finish_reason for a pivot stop_reason (NULL allowed): end_turn and
 * stop_sequence "stop", max_tokens "length", tool_use "tool_calls", refusal
 * "content_filter", anything else (pause_turn, unknown, NULL) "stop". A static
 * string.
 */
const char *tg_translate_pivot_finish_reason(const char *stop_reason);

/*
 * Reads a pivot usage object (borrowed; NULL or not an object reads nothing)
 * into the four kinds: input_tokens, cache_read_tokens, cache_write_tokens,
 * output_tokens. Fields absent are left as they are in *out, so a stream's
 * message_start and message_delta can be read into the same struct.
 */
void tg_translate_pivot_usage_read(json_t *usage, struct tg_usage *out);

/*
 * OpenAI's usage object for usage (a new reference; NULL when out of memory):
 * prompt_tokens = input + cache read + cache write (OpenAI counts every input
 * token there), completion_tokens = output, total_tokens their sum,
 * prompt_tokens_details.cached_tokens = cache read.
 */
json_t *tg_translate_pivot_usage_to_openai(const struct tg_usage *usage);

/*
 * OpenAI's error body {"error": {"message", "type", "param": null, "code":
 * null}} for a pivot error body (borrowed: {"type": "error", "error": {"type",
 * "message"}}). The pivot's error type is kept: OpenAI's vocabulary shares
 * invalid_request_error, authentication_error and the like, and clients branch
 * on the HTTP status. A body of another shape gives type "api_error" and
 * fallback_message. A new reference; NULL when out of memory.
 */
json_t *tg_translate_pivot_error_to_openai(json_t *error_body, const char *fallback_message);

#endif
