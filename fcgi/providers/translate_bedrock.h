/*
 * translate_bedrock.h — translation between the pivot (Anthropic's Messages API)
 * and Amazon Bedrock's Converse API: a pivot request into a Converse request
 * body, a Converse reply into a pivot reply, and a ConverseStream (its
 * event-stream messages, decoded by eventstream.c) into pivot stream events.
 * Pure: JSON in, JSON out; no request struct, no network, no clock.
 *
 * Choices, where the two APIs differ:
 *   - The model is not in a Converse body but in the path
 *     (tg_translate_bedrock_path); "stream" chooses /converse or /converse-stream.
 *   - Consecutive messages of one role are merged into one (Converse wants the
 *     roles to alternate; the Messages API merges them the same way).
 *   - cache_control on a system block, a message block or a tool becomes a
 *     cachePoint after it (ttl "1h" kept; Converse has "5m" and "1h").
 *   - tool_choice "none": Converse has no such choice, so the tools are left out
 *     (no toolConfig): the model then cannot call one. Converse refuses
 *     toolUse/toolResult blocks without a toolConfig, so "none" with such blocks
 *     in the conversation is declined rather than quietly allowing tool calls.
 *   - A tool's "strict" is passed on as toolSpec.strict.
 *   - top_k goes in additionalModelRequestFields as "top_k" (Anthropic models'
 *     own field); metadata, service_tier and unknown members are dropped.
 *   - tool_result's status is sent only when is_error is given (Converse's
 *     status field is not accepted by every model).
 *   - Declined (TG_DECLINED, a message naming the feature): images by URL or
 *     file id, image types other than png/jpeg/gif/webp, documents, thinking
 *     (blocks or the request's "thinking" enabled), server tools and other tool
 *     types than custom ones, MCP servers, containers,
 *     tool_choice.disable_parallel_tool_use, content blocks it does not know.
 *   - Usage: Converse's inputTokens does not include cached tokens (its
 *     totalTokens is input + output + cache read + cache write), so the four
 *     counts map one to one: inputTokens -> input_tokens, outputTokens ->
 *     output_tokens, cacheReadInputTokens -> cache_read_input_tokens,
 *     cacheWriteInputTokens -> cache_creation_input_tokens. Nothing is added up.
 *   - stopReason: end_turn, tool_use, max_tokens and stop_sequence as they are;
 *     guardrail_intervened and content_filtered -> refusal;
 *     model_context_window_exceeded -> max_tokens; anything else -> end_turn.
 *     stop_sequence is read from additionalModelResponseFields.stop_sequence
 *     when the model put it there, else null.
 *   - Reasoning content in a reply or a stream is dropped (thinking is declined
 *     in requests, so none is asked for).
 *
 * Messages are client-safe (never a credential, never the provider's raw body).
 */
#ifndef TG_TRANSLATE_BEDROCK_H
#define TG_TRANSLATE_BEDROCK_H

#include <jansson.h>

#include "common.h"
#include "eventstream.h"

/*
 * The Converse request body for a pivot request. pivot is borrowed; on TG_OK
 * *out is a new reference, which may share values with pivot (texts, image
 * data, schemas: reference counted, not copied), so leave pivot unmodified
 * while *out is in use. TG_DECLINED: the request uses a feature Bedrock's
 * Converse cannot carry (msg names it: 'provider "bedrock" does not support
 * documents'). TG_ERROR: the pivot request is malformed (msg says where). On
 * both, *out is NULL.
 */
int tg_translate_bedrock_request(const json_t *pivot, json_t **out, char *msg, size_t msg_size);

/*
 * The request path for model_id (a model id, inference profile id or ARN, sent
 * URI-encoded: "anthropic.claude-3-haiku-20240307-v1:0" ->
 * "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"), with
 * "/converse-stream" when stream. Returns the length, or TG_ERROR when out is
 * too small or model_id is empty.
 */
int tg_translate_bedrock_path(const char *model_id, bool stream, char *out, size_t out_size);

/*
 * The pivot reply for a Converse reply. converse is borrowed; id and model are
 * the pivot's "id" and "model" (Converse has neither). On TG_OK *out is a new
 * reference; TG_ERROR (msg set, *out NULL) when converse is not a Converse reply.
 */
int tg_translate_bedrock_reply(const json_t *converse, const char *id, const char *model,
                               json_t **out, char *msg, size_t msg_size);

/*
 * The pivot usage object for a Converse "usage" object (borrowed; NULL or a
 * non-object gives zeros): a new reference holding input_tokens,
 * output_tokens, cache_read_input_tokens and cache_creation_input_tokens; NULL
 * when out of memory.
 */
json_t *tg_translate_bedrock_usage(const json_t *converse_usage);

/*
 * Receives each pivot stream event: event_name ("message_start", ...) and its
 * data, whose "type" is event_name. data is borrowed for the call (json_incref
 * to keep it). Return TG_OK to go on; anything else stops the translator and
 * is returned by the feed.
 */
typedef int (*tg_translate_bedrock_emit_fn)(void *ctx, const char *event_name, json_t *data);

/*
 * A ConverseStream being translated. Pivot events come out in this order:
 * message_start (before anything else); per content block content_block_start,
 * content_block_delta..., content_block_stop (a text block opens at its first
 * delta when no contentBlockStart came; a block still open when the message
 * stops is closed); message_delta (stop_reason, stop_sequence and the usage)
 * once both messageStop and metadata arrived, in either order; message_stop.
 * A Bedrock exception (or a message of type "error") becomes an "error" event
 * and ends the stream.
 */
struct tg_translate_bedrock_stream {
    tg_translate_bedrock_emit_fn emit;
    void *ctx;
    char id[128];
    char model[256];
    bool started;       /* message_start went out */
    bool stopped;       /* messageStop came */
    bool have_metadata; /* metadata came */
    bool ended;         /* message_stop or an error went out: nothing more */
    bool block_open;
    bool block_is_tool;
    int64_t block_bedrock_index; /* Bedrock's contentBlockIndex of the open block */
    size_t block_index;          /* its pivot index */
    size_t blocks;               /* pivot blocks opened so far */
    char stop_reason[32];
    char stop_sequence[256];
    bool has_stop_sequence;
    /* Usage as Bedrock reported it (read these to settle even after an error). */
    bool have_usage;
    int64_t input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens;
    char error[256]; /* the first failure, for the log (not for the client); "" when none */
};

/* Prepares s; id and model (copied) fill message_start's message. */
void tg_translate_bedrock_stream_init(struct tg_translate_bedrock_stream *s, const char *id,
                                      const char *model, tg_translate_bedrock_emit_fn emit,
                                      void *ctx);

/*
 * Translates one decoded event-stream message (borrowed). Returns TG_OK (a
 * Bedrock exception included: it went out as an error event); TG_ERROR when
 * the message breaks the protocol (a payload that is not a JSON object, a tool
 * delta outside a tool block, anything after the end): an error event goes out
 * when the stream had not ended, s->error says why; or emit's non-TG_OK value.
 */
int tg_translate_bedrock_stream_feed(struct tg_translate_bedrock_stream *s,
                                     const struct tg_eventstream_message *msg);

/* tg_translate_bedrock_stream_feed with a void * stream: a tg_eventstream_fn. */
int tg_translate_bedrock_stream_on_message(void *stream, const struct tg_eventstream_message *msg);

/*
 * At the end of the provider's stream: TG_OK when the pivot stream had ended
 * (message_stop went out, or an error event did: s->error then says why).
 * Otherwise an error event goes out (the stream ended early) and TG_ERROR is
 * returned with s->error set.
 */
int tg_translate_bedrock_stream_finish(struct tg_translate_bedrock_stream *s);

/* Shared by the reply and the stream translation (translate_bedrock*.c). */

/* A Converse usage count (borrowed usage), 0 when absent or negative. */
json_int_t tg_translate_bedrock_count(const json_t *usage, const char *key);

/* The pivot's stop_reason (static) for a Converse stopReason (NULL: end_turn). */
const char *tg_translate_bedrock_stop_reason(const char *bedrock);

/* The stop sequence a model reported in additionalModelResponseFields (borrowed), or NULL. */
const json_t *tg_translate_bedrock_stop_sequence(const json_t *holder);

#endif
