/*
 * translate_gemini.h — translation between Tollgate's pivot (Anthropic's Messages API)
 * and Google's generateContent (the Gemini API and Vertex AI speak the same body): the
 * pivot request to a generateContent body, and a generateContent reply back to a
 * pivot reply. The stream's chunks have their own module (translate_gemini_stream.h).
 *
 * Pure: JSON in, JSON out. Not here: the URL (model, :generateContent or
 * :streamGenerateContent?alt=sse), credentials, HTTP, the request record.
 *
 * How the pivot maps, and what it cannot take:
 *   - system (string or text blocks) -> systemInstruction.parts; messages -> contents
 *     with role "user" or "model"; consecutive messages of one role become one content
 *     (Gemini wants the turns to alternate), and a message left with no part is dropped.
 *   - text -> {text}; image with a base64 source -> {inlineData} (png, jpeg, webp,
 *     heic, heif: Gemini takes no gif); tool_use -> {functionCall}; tool_result ->
 *     {functionResponse} named after the tool_use with that id earlier in the
 *     conversation, its response {"output": text} or, when is_error, {"error": text}
 *     (the keys Gemini's FunctionResponse documents), text blocks joined with "\n",
 *     and images in it sent as inlineData parts right after it.
 *   - Declined (TG_DECLINED, a client-safe message naming the feature): images by URL
 *     or file id (Gemini's fileData needs a MIME type the pivot does not carry),
 *     documents, thinking and redacted_thinking blocks, server tools (a tool with a
 *     "type" other than "custom") and their blocks, mcp_servers, container, and any
 *     block type not listed here.
 *   - max_tokens, temperature, top_p, top_k, stop_sequences -> generationConfig;
 *     thinking {type: enabled, budget_tokens} -> thinkingConfig.thinkingBudget.
 *   - tools -> one tool of functionDeclarations; input_schema is cut to the OpenAPI
 *     subset Gemini's Schema takes (translate_gemini_schema.h); tool_choice auto|any|tool|none
 *     -> toolConfig.functionCallingConfig AUTO|ANY|ANY with allowedFunctionNames|NONE.
 *     disable_parallel_tool_use has no Gemini equivalent and is ignored, as are
 *     metadata, service_tier, stream and cache_control.
 *
 * Replies: candidates[0]'s text parts become text blocks (consecutive ones joined),
 * functionCall parts tool_use blocks. Not carried: thought parts (their tokens still
 * count as output), signatures on text parts, and parts of other kinds (inline images,
 * executable code). stop_sequence is always null: Gemini's STOP does not say whether a
 * stop sequence ended the text.
 *
 * Tool-use ids. A pivot tool_use id made here is "toolu_" CORE ["_ts_" SIG], where CORE
 * holds only [A-Za-z0-9-] and is "g<n>-<base>" (n: the call's index in the reply, base:
 * the reply's responseId or the caller's seed) or "gid-<id>" when Gemini gave the call
 * an id, and SIG is the call's thoughtSignature in base64url. The client echoes the id
 * back, so a later request restores the signature (Gemini 3 refuses function calls
 * replayed without one) and Gemini's own id; ids from elsewhere ("toolu_01...") carry
 * neither.
 */
#ifndef TG_TRANSLATE_GEMINI_H
#define TG_TRANSLATE_GEMINI_H

#include <jansson.h>

#include "common.h"
#include "usage.h"

/* Longest thoughtSignature carried in a tool-use id (base64 characters); longer: dropped. */
#define TG_GEMINI_MAX_SIGNATURE 16384
/* The sentinel Google documents for replayed function calls that have no signature. */
#define TG_GEMINI_SIGNATURE_SENTINEL_TEXT "skip_thought_signature_validator"

/* Flags of tg_gemini_request_from_pivot. */
enum tg_gemini_flags {
    /*
     * The first functionCall of each model turn that carries no real signature gets
     * TG_GEMINI_SIGNATURE_SENTINEL_TEXT (for Gemini 3 models, which otherwise refuse
     * tool-use history that came from another model or lost its signature).
     */
    TG_GEMINI_SIGNATURE_SENTINEL = 1u << 0,
};

/*
 * Translates a pivot request (borrowed) into a generateContent body. On TG_OK, *out is
 * a new reference the caller owns. TG_DECLINED: the request uses a feature Gemini
 * cannot take; TG_ERROR: the pivot is malformed (a field missing or ill-typed, a
 * tool_result naming no earlier tool_use) or memory ran out. Either way *out is NULL
 * and err (always NUL-terminated) holds a message safe to show the client.
 */
int tg_gemini_request_from_pivot(json_t *pivot, unsigned flags, json_t **out, char *err,
                                 size_t err_size);

/*
 * Translates a generateContent reply (borrowed) into a pivot reply (*out, new
 * reference). model (borrowed, may be NULL: the reply's modelVersion) names the model in
 * the pivot reply. id_seed (borrowed, may be NULL) stands in for the reply's responseId
 * in the message id and the tool-use ids when the reply has none (random when neither).
 * A prompt Gemini blocked (promptFeedback.blockReason, no candidate) becomes a reply
 * with no content and stop_reason "refusal", as Anthropic answers a refused prompt.
 * TG_ERROR with err set when the reply is not a generateContent response (an error
 * body, no candidate and no block reason) or memory ran out.
 */
int tg_gemini_reply_to_pivot(json_t *reply, const char *model, const char *id_seed, json_t **out,
                             char *err, size_t err_size);

/*
 * usageMetadata (borrowed, may be NULL) into Tollgate's four kinds, none counted twice:
 * input = promptTokenCount - cachedContentTokenCount + toolUsePromptTokenCount,
 * cache_read = cachedContentTokenCount, output = candidatesTokenCount +
 * thoughtsTokenCount. Missing or ill-typed counts are 0; *usage is zeroed first.
 */
void tg_gemini_usage_read(json_t *usage_metadata, struct tg_usage *usage);

/* usage as the pivot's usage object (a new reference; NULL when memory ran out). */
json_t *tg_gemini_usage_json(const struct tg_usage *usage);

/*
 * The pivot stop_reason for a Gemini finishReason (borrowed, may be NULL): "tool_use"
 * when the reply called a function and stopped normally, "max_tokens" for MAX_TOKENS,
 * "refusal" for SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII and the IMAGE_
 * safety reasons, else "end_turn". Returns a static string.
 */
const char *tg_gemini_stop_reason(const char *finish_reason, bool called_function);

/*
 * The id base of a reply: response_id (may be NULL) or else seed (may be NULL) cut to
 * its [A-Za-z0-9] characters and 48 of them, or 16 random hex digits when both give
 * none. Writes at most base_size bytes (NUL included; 49 is enough).
 */
void tg_gemini_id_base(const char *response_id, const char *seed, char *base, size_t base_size);

/*
 * The pivot tool_use id of a functionCall part (borrowed) that is call number index
 * (from 0) of the reply whose id base is base (see the header comment). Returns a new
 * JSON string, NULL when memory ran out.
 */
json_t *tg_gemini_tool_use_id(json_t *part, const char *base, size_t index);

/*
 * Gemini's error body (borrowed, may be NULL: {"error": {"code", "message", "status"}})
 * and HTTP status as the pivot's error object {"type": "error", "error": {"type",
 * "message"}}: 400 invalid_request_error, 401 authentication_error, 403
 * permission_error, 404 not_found_error, 429 rate_limit_error, 503 overloaded_error,
 * else api_error. The message is Gemini's, cut to 512 bytes, or a generic one. A new
 * reference, NULL when memory ran out.
 */
json_t *tg_gemini_error_to_pivot(json_t *body, long http_status);

#endif
