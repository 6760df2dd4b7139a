/*
 * translate_openai.h — an OpenAI-SDK client's Chat Completions request turned
 * into the pivot (Anthropic's Messages API, see README.md), for a backend that
 * speaks the pivot.
 *
 * Pure functions on jansson values: no request, no I/O, no configuration. What
 * the pivot cannot express is declined with a client-safe message naming the
 * field, in OpenAI's "path: problem" form ("messages[2].role: unknown role
 * \"robot\""), for a 400; TG_ERROR means out of memory and nothing else.
 * Not here: the reply (translate_openai_reply.h), an OpenAI backend
 * (translate_openai_backend.h), streams (translate_openai_stream.h).
 */
#ifndef TG_TRANSLATE_OPENAI_H
#define TG_TRANSLATE_OPENAI_H

#include <jansson.h>

#include "common.h"

/*
 * Turns an OpenAI chat request (chat, borrowed) into a pivot request (*pivot, a
 * new reference, set only on TG_OK).
 *
 * Mapped: model; system and developer messages, wherever they stand, hoisted
 * into "system" (their texts joined with a blank line); user content: text,
 * image_url (a base64 data: URL as a base64 source, an http(s) URL as a url
 * source) and file with base64 file_data (a document, its filename the title);
 * assistant content (text and refusal parts, or the refusal field when there
 * is no content) and tool_calls (tool_use blocks; the arguments must be a JSON
 * object, blank is {}); tool messages as tool_result blocks of a user message
 * (a string content stays a string, text parts become text blocks);
 * consecutive messages of one role merged, as the pivot alternates (a message
 * left with one plain text block has it as its string, with none ""); empty
 * text dropped, as the pivot refuses empty text blocks; max_completion_tokens,
 * else max_tokens, else default_max_tokens; stop (a string or strings) as
 * stop_sequences; temperature (above 1 clamped to 1, the top of the pivot's
 * range); top_p; stream; tools (parameters default to {"type": "object"}) and
 * tool_choice ("auto", "none", "required" as any, a function as tool);
 * parallel_tool_calls false as disable_parallel_tool_use (tool_choice and
 * parallel_tool_calls are dropped when there are no tools: they mean nothing
 * then, and the pivot refuses them); user, else safety_identifier, as
 * metadata.user_id.
 *
 * Ignored as hints that change no answer's shape, with no pivot field: seed,
 * stream_options (the stream writer is told include_usage by its caller),
 * store, metadata, service_tier, reasoning_effort, verbosity,
 * prompt_cache_key, prompt_cache_retention, a message's "name", a tool's
 * "strict", an image's "detail". Arguments set to their defaults (n 1,
 * logprobs false, penalties 0, response_format text, null) are accepted.
 *
 * Declined, naming the field: n other than 1, logprobs, top_logprobs, audio,
 * modalities other than "text", prediction, a non-zero presence_penalty or
 * frequency_penalty, a non-empty logit_bias, a response_format other than
 * {"type": "text"}, the deprecated functions, function_call and role
 * "function", web_search_options, input_audio parts, file parts by file_id, a
 * content part, tool call, tool or tool_choice of a type the pivot lacks, any
 * request argument not listed here ("<name>: unrecognized request argument",
 * as OpenAI refuses those), and a malformed shape (the path and what was
 * expected).
 *
 * Returns TG_OK; TG_DECLINED with the message in err (err_size bytes); TG_ERROR
 * when out of memory.
 */
int tg_translate_openai_request_to_pivot(json_t *chat, int64_t default_max_tokens, json_t **pivot,
                                         char *err, size_t err_size);

#endif
