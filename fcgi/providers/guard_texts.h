/*
 * guard_texts.h — what the guardrails look at: every text of a parsed request
 * body that the provider would see, in the client's dialect, each with its
 * place in the document so that a guard can replace it (mask it) in place and
 * the request stays valid for the provider.
 *
 * Pure: jansson only. It knows the dialects' shapes, not the request, the
 * rules or any regex; what to do with a text is the caller's (guard.c).
 *
 * What is yielded, per dialect (anything of another type at these places —
 * missing, null, a number where a string belongs — is skipped, never an error):
 *   ANTHROPIC    system (a string, or its text blocks' "text");
 *                messages[].content: a string, or blocks — text "text";
 *                tool_result "content" (a string, or its blocks as here);
 *                tool_use and server_tool_use "input": every string value,
 *                recursively (model-made arguments); document blocks with
 *                "source": {"type": "text", "data"} or {"type": "content",
 *                "content": a string or blocks as here} — and
 *                tools[].description, tools[].input_schema: every
 *                "description" string, recursively.
 *   OPENAI_CHAT  messages[].content: a string, or its parts of type "text"
 *                (any role, tool messages included); messages[].tool_calls[]
 *                .function.arguments and the legacy messages[].function_call
 *                .arguments (the JSON text as one string); tools[].function
 *                .description and every "description" string in tools[]
 *                .function.parameters, recursively.
 *   OPENAI_EMBEDDINGS  "input": a string, or an array's strings (token-id
 *                arrays are skipped).
 *   HTTP         the strings at each configured path (tg_guard_texts_path_check):
 *                dot-separated member names, each followed by any number of
 *                "[*]" (every element) or "[N]" (element N): "message",
 *                "messages[*].content", "input.text", "[*].prompt". Only
 *                strings are yielded: a path that ends at an array yields
 *                nothing (write "input[*]"). Paths are walked in their order;
 *                overlapping paths yield a text once per path.
 * Within a document the order is the document's (jansson keeps members in
 * their order).
 */
#ifndef TG_GUARD_TEXTS_H
#define TG_GUARD_TEXTS_H

#include <jansson.h>
#include <stddef.h>

#include "common.h"

/* The client dialect whose places are walked. */
enum tg_guard_dialect {
    TG_GUARD_ANTHROPIC,
    TG_GUARD_OPENAI_CHAT,
    TG_GUARD_OPENAI_EMBEDDINGS,
    TG_GUARD_HTTP,
};

/* Caps on one walk; beyond any of them the walk fails with TG_ERROR. */
#define TG_GUARD_TEXTS_MAX_COUNT 100000u             /* texts yielded */
#define TG_GUARD_TEXTS_MAX_BYTES (32u * 1024 * 1024) /* their bytes, summed */
#define TG_GUARD_TEXTS_MAX_DEPTH 128u                /* nesting inside tool inputs and schemas */
#define TG_GUARD_TEXTS_WHERE_MAX 256u                /* a longer "where" is cut and ends in "..." */
#define TG_GUARD_TEXTS_PATH_MAX 256u                 /* an HTTP path's length */

/*
 * One text and its place. The place is holder's member key (an object; key_len
 * bytes, as jansson keys may hold NULs) or element index (an array; key is
 * NULL). holder and key are borrowed from the document (or key is static) and
 * stay valid while its shape is unchanged; text (len bytes, NUL terminated, may
 * hold NULs) until it is replaced; where — a path such as
 * "messages[2].content[0].text" for logs, never the text itself; object keys
 * that are not plain names show as "#N", their position — only during the
 * callback.
 */
struct tg_guard_text {
    json_t *holder;
    const char *key;
    size_t key_len;
    size_t index;
    const char *text;
    size_t len;
    const char *where;
};

/* The callback: TG_OK goes on; anything else stops the walk and is returned. */
typedef int (*tg_guard_text_fn)(void *ctx, const struct tg_guard_text *t);

/*
 * Calls fn(ctx, t) for each text of doc (borrowed; a root that is not an object
 * yields nothing, save for HTTP paths that start with "[") in dialect's places.
 * http_paths (borrowed, n_http_paths of them) is read for TG_GUARD_HTTP only.
 * fn may replace the text it is given (tg_guard_texts_replace) and nothing
 * else. Allocates nothing.
 * Returns TG_OK; fn's first non-TG_OK return; or TG_ERROR when a cap is passed
 * (fn has seen the texts before it), a tool input or schema nests deeper than
 * TG_GUARD_TEXTS_MAX_DEPTH, or an HTTP path is not valid.
 */
int tg_guard_texts_each(json_t *doc, enum tg_guard_dialect dialect, const char *const *http_paths,
                        size_t n_http_paths, tg_guard_text_fn fn, void *ctx);

/*
 * Sets the string at t's place to text (len bytes, UTF-8; copied), releasing
 * the one that was there: t->text is no longer valid. For OpenAI tool-call
 * arguments the replacement is the whole new arguments string (the caller
 * keeps it JSON). TG_ERROR when text is not valid UTF-8 or memory runs out
 * (the document is then unchanged).
 */
int tg_guard_texts_replace(const struct tg_guard_text *t, const char *text, size_t len);

/*
 * Whether path is a valid HTTP field path (the grammar above, at most
 * TG_GUARD_TEXTS_PATH_MAX bytes): TG_OK or TG_DECLINED. For the config loader.
 */
int tg_guard_texts_path_check(const char *path);

#endif
