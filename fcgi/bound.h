/*
 * bound.h — a Messages request's true upper bound: the most input tokens (input,
 * cache reads and cache writes together) and server tool uses the provider can
 * bill for it, computed from the parsed body and the config before the upstream
 * call, so that the reservation (quota.c) can never be passed however many
 * requests race. Also the two checks that keep that bound honest: max_tokens
 * within the model's maximum, and anthropic-beta values only from the config's
 * list (a beta can add input the body does not hold).
 *
 * The rule. Every token of text is at least one UTF-8 byte, and the JSON around
 * it more than covers per-message overhead, so the body's byte count bounds all
 * the text and JSON it holds inline. To that is added what the bytes do not hold:
 *   - images (base64, URL or file): bounds.image_max_tokens each. The provider
 *     bills an image by its pixels (about width x height / 750 tokens) after
 *     scaling it down to its native maximum, so a few compressed bytes can stand
 *     for many tokens, but no image costs more than its scaled-down size. A
 *     base64 image's payload is taken out of the byte count: it is billed as the
 *     image, not as text.
 *   - documents (base64 PDFs, documents by URL or file id, container uploads,
 *     any source bound.c does not know): bounds.document_max_tokens each, by
 *     default the model's context window. A PDF's bytes are no bound: its text
 *     may be compressed and every page is also billed as an image. Plain-text
 *     and content-block documents are inline and need nothing.
 *   - tools: bounds.tool_system_tokens once (the provider's tool-use system
 *     prompt), and bounds.builtin_tool_tokens for each tool with a "type" (its
 *     definition is the provider's, not in the body).
 *   - server tools (any typed tool but the client-side bash_, text_editor_,
 *     computer_, memory_; and each of mcp_servers): they run in a loop at the
 *     provider, every step re-reading the whole context, and the usage sums the
 *     steps. With U uses (each tool's max_uses, else
 *     bounds.server_tool_default_uses) there are at most U + 1 steps, each
 *     reading at most the prompt, every result (bounds.server_tool_use_max_tokens
 *     per use, by default the context window) and the output so far (max_tokens).
 * Whatever the sum, one step never reads more than the model's context window
 * (models.NAME.max_input_tokens): the provider refuses a longer prompt unbilled.
 *
 * Residual: what the body holds encrypted (web search results and thinking
 * signatures from earlier turns) is counted at its bytes. quota.c's
 * tg_quota_check_bound logs and counts any usage that passed the bound.
 */
#ifndef TG_BOUND_H
#define TG_BOUND_H

#include "common.h"
#include "config.h"

struct json_t; /* jansson's json_t */
struct tg_arena;

/* Computed values are capped here: no sum or product can overflow. */
#define TG_BOUND_MAX (INT64_C(1) << 50)

/* What a request may cost at most, as the reservation counts it. */
struct tg_bound {
    int64_t input_tokens;     /* input + cache read + cache write tokens */
    int64_t server_tool_uses; /* every server tool use */
    int64_t max_web_searches; /* of which web searches (billed per use) */
    int64_t images;           /* images counted (any source) */
    int64_t documents;        /* documents and files counted */
    const char *betas;        /* the anthropic-beta values to forward, comma-separated;
                                 NULL: none. In the arena given. */
};

/*
 * Checks and bounds a Messages request: doc (the parsed body, borrowed) of
 * body_len bytes for model with max_tokens, sent with the anthropic-beta header
 * beta_header (NULL: none). Returns TG_OK with *out filled; TG_DECLINED with a
 * client-safe message (the 400's) when max_tokens is above the model's
 * max_output_tokens or a beta value is not in bounds.allowed_betas (the message
 * names it); TG_ERROR when out of memory (arena).
 */
int tg_bound_request(const struct tg_config *config, const struct tg_model *model,
                     struct json_t *doc, size_t body_len, int64_t max_tokens,
                     const char *beta_header, struct tg_arena *arena, struct tg_bound *out,
                     char *message, size_t message_size);

#endif
