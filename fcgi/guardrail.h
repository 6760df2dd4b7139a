/*
 * guardrail.h — the pipeline's guard step: the operator's rules (guard.c) over
 * every text the provider would see (guard_texts.c), at the strictness of the
 * caller's role. A "block" refuses the request (400 in the client's dialect,
 * naming the rule and its category, never the matched text); a "mask" rewrites
 * the matched spans in the body before it goes anywhere; a "warn" is a log line
 * with the rule and the caller. The matched text never reaches a log, a metric,
 * a table or an error.
 *
 * Then, when configured, the remote checks (guard_webhook.c) over the same
 * texts as masked: the operator's webhook (allow; deny: 400 with its reason;
 * replace: the texts rewritten), then the moderation endpoint (a flagged
 * category that blocks: 400 naming it). A check that gets no answer refuses
 * the request (503) unless its on_error is "open" (a warn line, and it passes).
 * With guardrails.responses, replies too (guard_reply.c, guard_stream.c): every
 * finding of a mask or block rule is masked — the reply is already paid for
 * and a stream may be half sent, so it cannot be refused — and a warn is a log
 * line; every action is counted as for requests.
 */
#ifndef TG_GUARDRAIL_H
#define TG_GUARDRAIL_H

#include "common.h"
#include "guard_stream.h"

struct tg_request;

/*
 * Applies config->guard to r's body (r->doc for the dialect endpoints; the
 * config's http_paths of an http route's JSON body). TG_OK: forward (the body
 * may have been masked or replaced: r->body and r->doc say the same);
 * TG_DECLINED: a rule, the webhook or moderation blocked it (r->error,
 * r->outcome "blocked", r->guard_rule set: the rule, "webhook" or
 * "moderation"); TG_ERROR: the body could not be checked (500), or a remote
 * check got no answer and fails closed (503), or an http route's JSON body
 * has a duplicate key (400): refused, r->error set.
 */
int tg_guardrail_check(struct tg_request *r);

/* Are r's replies guarded (guardrails.responses, a Messages or Chat Completions call)? */
bool tg_guardrail_replies(const struct tg_request *r);

/*
 * Masks a non-stream 200 reply in r's dialect: *reply / *len are replaced by
 * the masked body (owned by r->arena) when something was masked. TG_OK;
 * TG_ERROR with r->error set (502) when it could not be checked: it must not
 * be sent.
 */
int tg_guardrail_reply(struct tg_request *r, char **reply, size_t *len);

/*
 * A stream masker for r's reply (freed with r->arena), at the caller's level
 * and the configured window; pivot: the events are the pivot's (Anthropic
 * shape) whatever r's dialect. emit and ctx as for tg_guard_stream_new; the
 * findings are counted and logged. NULL when memory ran out.
 */
struct tg_guard_stream *tg_guardrail_stream(struct tg_request *r, bool pivot,
                                            tg_guard_stream_emit_fn emit, void *ctx);

#endif
