/*
 * quota.h — the reserve step: before a request goes upstream, its upper bound
 * (input tokens estimated from the body + max_tokens, and their price) is
 * reserved atomically on every quota row and global bucket that applies — its
 * key's, its user's, its group's — in PostgreSQL, in the same round trip that
 * authenticates the key. All rows or none. Settling (usage.c) later replaces
 * the reservation by the provider-reported usage.
 *
 * Denials answer 429 (naming the limit, with retry-after); the identity's
 * refusals (401, 403) are auth.c's; 503 when the database is down (unless
 * quotas.on_database_down is "local_only": then keys seen before, and verified
 * JWTs naming a group, are admitted on the local buckets alone, and that is
 * logged).
 */
#ifndef TG_QUOTA_H
#define TG_QUOTA_H

#include "common.h"

struct tg_request;
struct tg_config;

/* Per-process set-up: the reservation holder's name (holder.h). */
int tg_quota_init(void);

/*
 * The request's input tokens as quotas count them before the call. In
 * "upper_bound" mode r->input_bound_tokens, bound.c's true upper bound (the
 * body's bytes plus what they do not hold: images, documents, tools, server
 * tool loops), so spend can never pass a limit; the body's byte count when no
 * bound was computed. "approximate": a quarter of that (closer, not a bound).
 */
int64_t tg_quota_estimate_input(const struct tg_request *r);

/*
 * After the provider answered: when r->usage passed r's bound (input + cache
 * read + cache write tokens over r->input_bound_tokens, output over
 * r->max_tokens, web searches over r->max_web_searches), logs a warning
 * (metadata only) and adds one to tollgate_reservation_exceeded_total. The
 * usage row still records what the provider reported. In "approximate" mode
 * the comparison is with the bound, not the quarter that was reserved. A no-op
 * for a request that was not bounded.
 */
void tg_quota_check_bound(struct tg_request *r);

/*
 * Identifies r from r->credential (auth.c) and reserves its upper bound, in
 * one round trip. TG_OK: r->identity set, r->reserved true, r->quota filled.
 * TG_ERROR with r->error set otherwise (auth.c's refusals, 429, 503, and 400
 * invalid_request_error for a model that has no price in force).
 */
int tg_quota_reserve(struct tg_request *r);

/* Gives back r's reservation unused (a local bucket refused r after reserving). */
void tg_quota_release(struct tg_request *r);

/* Adds x-ratelimit-* and x-tollgate-budget-warning from r->quota, if any. */
void tg_quota_add_headers(struct tg_request *r);

#endif
