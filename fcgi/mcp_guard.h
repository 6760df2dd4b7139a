/*
 * mcp_guard.h — the guardrails (guard.h's rules, at the caller's strictness)
 * on the MCP gateway's tool calls: every string of a tools/call's arguments
 * before the call is forwarded, and the tool output of what the server sends
 * back before it is relayed.
 *
 * Arguments are checked as a prompt is: a block refuses the call (a JSON-RPC
 * error naming the rule, never the matched text; nothing reaches the server),
 * a mask rewrites the matched spans, a warn is a log line. A result is checked
 * likewise — text content items, embedded text resources, every string of
 * structuredContent, an error's message — except that an injection rule does
 * at most guardrails.mcp.result_injection (default warn: flagged, the
 * indirect-injection path made visible), and a block withholds the result: it
 * becomes an isError result saying so. The server's other messages of the
 * exchange (progress, logging, its own requests) have every string of their
 * params checked, a block masking there (nothing can be refused half way).
 *
 * The outcome of each call (the strongest action, its rule, where) is left in
 * r->mcp_guard for the call's audit and the access line. The matched text
 * reaches no log, error or metric. Not here: the webhook and moderation checks
 * (LLM requests only), resources/read and prompts/get (not guarded).
 */
#ifndef TG_MCP_GUARD_H
#define TG_MCP_GUARD_H

#include <jansson.h>

#include "common.h"
#include "guard_mask.h"

struct tg_request;

#define TG_MCP_GUARD_MAX_DEPTH 64          /* nesting of a value walked, at most */
#define TG_MCP_GUARD_MAX_STRINGS 65536     /* strings in one value, at most */
#define TG_MCP_GUARD_MAX_BYTES (16u << 20) /* their bytes together, at most */

/* How a value is checked (the pure walk). */
struct tg_mcp_guard_policy {
    const struct tg_guard_rules *rules; /* borrowed */
    enum tg_guard_level level;
    enum tg_guard_action injection_max; /* the most an injection rule does (BLOCK: as the rule) */
    bool block_masks; /* a block masks instead (a message that cannot be refused) */
    /* every finding with the action decided for it (may be NULL), with ctx */
    tg_guard_finding_fn on_finding;
    void *ctx;
};

/* What a walk came to. */
struct tg_mcp_guard_verdict {
    const char *rule; /* the rule of the strongest action taken (borrowed), NULL: nothing matched */
    enum tg_guard_action action; /* that action (valid when rule is set) */
    enum tg_guard_category category;
    size_t masked; /* strings rewritten in place */
};

/*
 * Walks every string value of value (borrowed; modified in place: object keys
 * are not checked, nesting to TG_MCP_GUARD_MAX_DEPTH) through p's rules. A
 * finding's action is the rule's at p->level, an injection rule's at most
 * p->injection_max; a block under block_masks masks. Strings with a finding
 * that masks are rewritten (json_string_setn). *v is filled in.
 * TG_OK: nothing blocks (some strings may be masked); TG_DECLINED: a block
 * (v->rule names it; the walk stopped, value is partly masked and must not go
 * on); TG_ERROR: it could not be checked (too deep, a cap, memory, a blocking
 * rule at its match limit — fail closed).
 */
int tg_mcp_guard_value(const struct tg_mcp_guard_policy *p, json_t *value,
                       struct tg_mcp_guard_verdict *v);

/*
 * The same over the tool output of a JSON-RPC response msg (borrowed, modified
 * in place): result.content[] text items and embedded resources' text,
 * every string of result.structuredContent, and error.message. A response
 * without these is TG_OK with nothing found.
 */
int tg_mcp_guard_response(const struct tg_mcp_guard_policy *p, json_t *msg,
                          struct tg_mcp_guard_verdict *v);

/*
 * Replaces msg's result (or error) in place by a tool result saying it was
 * withheld: {"content": [{"type": "text", "text": why}], "isError": true}.
 * TG_OK, or TG_ERROR when memory ran out.
 */
int tg_mcp_guard_withhold(json_t *msg, const char *why);

/*
 * tools/call arguments (borrowed, may be NULL; masked in place) for r, with
 * server and tool for the log. Starts the call's outcome in r->mcp_guard.
 * TG_OK: forward the call; TG_DECLINED: refuse it with the JSON-RPC error
 * *code and *message (r's arena): a rule blocked (named), or the arguments
 * could not be checked. Nothing is checked (TG_OK) unless guardrails are
 * loaded and guardrails.mcp.arguments is on.
 */
int tg_mcp_guard_arguments(struct tg_request *r, const char *server, const char *tool,
                           json_t *arguments, int *code, const char **message);

/*
 * A message the server sent while answering a tools/call, before it is kept
 * or relayed: msg parsed from data[0..*len); final: it is the call's response.
 * msg is guarded in place (a blocked or unchecked response withheld, see
 * above); the outcome adds to r->mcp_guard. Returns the text to relay: data
 * when nothing changed, else msg written again (r's arena; *len updated);
 * NULL when memory ran out (the exchange must stop). Nothing is checked unless
 * guardrails are loaded and guardrails.mcp.results is on.
 */
const char *tg_mcp_guard_relay(struct tg_request *r, json_t *msg, bool final, const char *data,
                               size_t *len);

#endif
