/*
 * ratelimit.h — request token buckets from the config's "rate_limits"
 * (agentgateway's localRateLimit: max_tokens, tokens_per_fill, fill_interval).
 *
 * A rule applies to every request whose identity matches it and keeps one bucket
 * per key, user, group or route. Local buckets live in the host's shared memory
 * (shm.c) and are exact across that host's workers; global buckets live in
 * PostgreSQL (tollgate.reserve takes them in the same round trip as the quotas).
 * Each request costs one token of every bucket that applies, all or none.
 */
#ifndef TG_RATELIMIT_H
#define TG_RATELIMIT_H

#include "common.h"
#include "config.h"

struct tg_request;
struct tg_shm;
struct tg_shm_bucket;

/* Maps the host's shared memory for this deployment (scope: its socket). */
int tg_ratelimit_init(const char *scope);

/*
 * For tests: takes buckets from table (borrowed; its lock initialised with
 * tg_shm_mutex_init) instead of the host's segment; NULL turns local buckets off.
 */
void tg_ratelimit_use(struct tg_shm *table);

/*
 * Takes a token from every local bucket that applies to r (identity known).
 * TG_OK: admitted (or no local rule applies). TG_DECLINED: a bucket is empty,
 * or the host's table (TG_SHM_BUCKETS slots) has no slot for it — a rule is
 * never skipped; r->error is set (429 rate_limit_error) with retry-after and
 * r->outcome is "rate_limited". TG_ERROR: shared memory unusable (logged; the
 * request is admitted).
 *
 * The table never empties a slot: a bucket that is full again (it carries
 * nothing: a new bucket starts full) or whose rule is no longer configured is
 * given to the next new key whose probe path passes it.
 */
int tg_ratelimit_take_local(struct tg_request *r);

/*
 * The global rules as JSON for tollgate.reserve's p_buckets, or NULL when there
 * are none. The database composes each bucket's name from the identity it finds.
 * Returns a string in r->arena.
 */
const char *tg_ratelimit_global_json(struct tg_request *r);

/*
 * The client-facing denial message of the rule called name (a global bucket's
 * name is "rule:subject"; only the rule is said).
 */
void tg_ratelimit_describe(const struct tg_config *config, const char *name, char *out,
                           size_t size);

/*
 * Refills b by whole fills up to now_ms (first use: full). Pure, for tests.
 * Returns the milliseconds until the next fill.
 */
int64_t tg_ratelimit_refill(struct tg_shm_bucket *b, const struct tg_rate_limit *rl,
                            int64_t now_ms);

#endif
