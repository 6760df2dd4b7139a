/*
 * guard_webhook.h — the remote guardrail checks: an operator's webhook and an
 * OpenAI-style moderation endpoint (config's guardrails.webhook and
 * guardrails.moderation), asked about a request's texts after the local rules
 * passed. It builds the call, makes it through the thread's upstream handle
 * (upstream.c, the only curl user) under the hook's deadlines, caps the reply
 * and reads it into a verdict. What the verdict does to the request (400, 503,
 * replacing the texts) is guardrail.c's.
 *
 *   webhook request:  {"request_id", "endpoint", "model",
 *                      "caller": {"key_prefix", "user_id", "group_id", "role"},
 *                      "texts": [{"where", "text"}]}
 *   webhook answer:   {"action": "allow"} | {"action": "deny", "reason": "..."} |
 *                     {"action": "replace", "texts": ["...", ...]} (one per text, in order)
 *   moderation:       {"model", "input": ["...", ...]} → {"results": [{"categories":
 *                     {"violence": true, ...}}, ...]} (one result per text)
 *
 * The URL and headers come only from the config; header values are secrets and
 * texts are prompts: neither reaches a log or an error.
 */
#ifndef TG_GUARD_WEBHOOK_H
#define TG_GUARD_WEBHOOK_H

#include "common.h"

struct tg_arena;
struct tg_guard_hook;
struct tg_request;

#define TG_GUARD_WEBHOOK_MAX_REPLY (1024 * 1024) /* a longer answer is an error */
#define TG_GUARD_WEBHOOK_MAX_REASON 200          /* a deny reason's bytes shown, at most */

/* One text asked about: its place (for the webhook, never logged) and its bytes. */
struct tg_guard_webhook_text {
    const char *where;
    const char *text;
    size_t len;
};

enum tg_guard_webhook_action {
    TG_GUARD_WEBHOOK_ALLOW,
    TG_GUARD_WEBHOOK_DENY,    /* reason says why (webhook) or which category (moderation) */
    TG_GUARD_WEBHOOK_REPLACE, /* webhook: texts[i] (lens[i] bytes) replaces text i */
};

struct tg_guard_webhook_verdict {
    enum tg_guard_webhook_action action;
    const char *reason; /* DENY: printable UTF-8, at most TG_GUARD_WEBHOOK_MAX_REASON bytes */
    const char **texts; /* REPLACE: as many as were asked about */
    size_t *lens;
    char error[160]; /* TG_ERROR: why the check could not be made, for the log */
};

/*
 * The JSON body asked of hook about texts[0..n) for r (its request id,
 * endpoint, model and caller). New, NUL-terminated, malloc'd (the caller
 * frees); *len gets its length. NULL when out of memory.
 */
char *tg_guard_webhook_body(const struct tg_request *r, const struct tg_guard_hook *hook,
                            const struct tg_guard_webhook_text *texts, size_t n, size_t *len);

/*
 * Reads hook's answer body[0..len) about n texts into *out, its strings in
 * arena. TG_OK, or TG_ERROR with out->error set when the answer is not one the
 * hook may give (not JSON, an unknown action, a count other than n, ...).
 */
int tg_guard_webhook_parse(const struct tg_guard_hook *hook, size_t n, const char *body, size_t len,
                           struct tg_arena *arena, struct tg_guard_webhook_verdict *out);

/*
 * Asks hook about texts[0..n) for r through r->upstream, within the hook's
 * deadlines, and reads its answer into *out (strings in r->arena). TG_OK with
 * a verdict; TG_ERROR with out->error set when there is none (unreachable,
 * timed out, a status other than 2xx, a reply over TG_GUARD_WEBHOOK_MAX_REPLY,
 * an answer tg_guard_webhook_parse refuses).
 */
int tg_guard_webhook_ask(struct tg_request *r, const struct tg_guard_hook *hook,
                         const struct tg_guard_webhook_text *texts, size_t n,
                         struct tg_guard_webhook_verdict *out);

#endif
