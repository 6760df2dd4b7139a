/*
 * guardrail.h — the pipeline's guard step: the operator's rules (guard.c) over
 * every text the provider would see (guard_texts.c), at the strictness of the
 * caller's role. A "block" refuses the request (400 in the client's dialect,
 * naming the rule and its category, never the matched text); a "mask" rewrites
 * the matched spans in the body before it goes anywhere; a "warn" is a log line
 * with the rule and the caller. The matched text never reaches a log, a metric,
 * a table or an error.
 */
#ifndef TG_GUARDRAIL_H
#define TG_GUARDRAIL_H

#include "common.h"

struct tg_request;

/*
 * Applies config->guard to r's body (r->doc for the dialect endpoints; the
 * config's http_paths of an http route's JSON body). TG_OK: forward (the body
 * may have been masked: r->body and r->doc say the same); TG_DECLINED: a rule
 * blocked it (r->error, r->outcome "blocked", r->guard_rule set); TG_ERROR:
 * the body could not be checked (500, refused: a guard fails closed), or an
 * http route's JSON body has a duplicate key (400).
 */
int tg_guardrail_check(struct tg_request *r);

#endif
