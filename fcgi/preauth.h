/*
 * preauth.h — what a request costs before its key is known: failed
 * authentications per client address, and a short memory of keys PostgreSQL
 * said do not exist. Without it every request with a made-up key costs the
 * database a full tollgate.reserve (the key is identified inside it).
 *
 * The failure limit (auth.failure_limit, default 20 per 60 000 ms): each 401
 * the gateway answers on an API endpoint (missing, malformed, unknown,
 * revoked or expired key; a JWT that fails verification) takes one token from
 * its client address's bucket (REMOTE_ADDR; IPv6 by its /64, an IPv4-mapped
 * address as IPv4), which refills max tokens per per_ms. Once the bucket is
 * empty, a request from that address is refused with 429 (retry-after, outcome
 * "rate_limited") before any database work — unless it presents a key in the
 * host's recently-valid set (keys that authenticated on this host; a key the
 * database refuses leaves it) or a JWT that verifies (checked locally, no
 * database). So users with working keys behind the same address as an
 * attacker go on; an address over its budget reaches the database at the
 * bucket's refill rate at most. The recently-valid set only lets a key past
 * this limit: the key is still looked up by the reserve, every time.
 *
 * The unknown-key cache (auth.unknown_key_cache_ms, default 3000): a key hash
 * the database answered "unknown_key" for answers 401 again without a round
 * trip until then. Only "no such key" is remembered, never an authorization:
 * revoked, expired and valid keys are looked up on every request, so
 * revocation stays immediate. A key created after its hash was remembered as
 * unknown is accepted once the entry expires (keys are 32 random bytes: only a
 * client retrying a key before an operator created it sees this).
 *
 * Both live in the host's shared memory (shm.h's struct tg_shm_preauth),
 * shared by its workers, bounded (4096 addresses, 4096 unknown hashes, 4096
 * valid hashes; a full set of 8 gives up its least useful entry). Without
 * shared memory, nothing is limited or cached.
 *
 * Never stored: a key; only the first 16 bytes of its SHA-256.
 */
#ifndef TG_PREAUTH_H
#define TG_PREAUTH_H

#include "common.h"
#include "shm.h"

struct tg_request;

/*
 * Whether r may go on to the database. key_hash: the SHA-256 of the key r
 * presents, or NULL when r has no key that could be valid (none, malformed,
 * or a JWT that failed: r->error is then already set). TG_OK: go on.
 * TG_DECLINED with r->error set: 429 when r's address is over its failure
 * budget and key_hash is not recently valid (replacing an error already set),
 * else 401 when key_hash is a remembered unknown key.
 */
int tg_preauth_gate(struct tg_request *r, const unsigned char *key_hash);

/* Remembers that the database knows no key with this hash (for auth.unknown_key_cache_ms). */
void tg_preauth_note_unknown(struct tg_request *r, const unsigned char *key_hash);

/*
 * After r was answered: a 401 on an API endpoint counts one failure for r's
 * address (and takes key_hash, the SHA-256 of r's key or NULL, out of the
 * recently-valid set); an authenticated key goes into it. Call once per
 * request.
 */
void tg_preauth_record(struct tg_request *r, const unsigned char *key_hash);

/*
 * The Prometheus text of tollgate_preauth_refusals_total and
 * tollgate_unknown_key_cache_hits_total into buf (NUL-terminated, cut at
 * size); its length. Zeros before shared memory is attached.
 */
size_t tg_preauth_metrics_text(char *buf, size_t size);

/* ---- the parts below are pure, for tests ---- */

struct tg_preauth_limit {
    int64_t max;    /* failures allowed in a burst; 0 = no limit */
    int64_t per_ms; /* max more every per_ms */
};

/*
 * The table key of a client address: TG_SHM_PREAUTH_ADDR bytes, the family (4
 * or 6) then the IPv4 address, or the IPv6 address's first 64 bits (zeros
 * after). An IPv4-mapped IPv6 address is its IPv4 address. TG_ERROR when text
 * is NULL or no address.
 */
int tg_preauth_address(const char *text, unsigned char *out);

/*
 * Whether addr's bucket in p is empty at now_ms (fewer than one failure left);
 * then *retry_ms (may be NULL) is the wait until one is back.
 */
bool tg_preauth_over(struct tg_shm_preauth *p, const unsigned char *addr,
                     const struct tg_preauth_limit *limit, int64_t now_ms, int64_t *retry_ms);

/* Takes one failure from addr's bucket (full on first sight), claiming an entry. */
void tg_preauth_fail(struct tg_shm_preauth *p, const unsigned char *addr,
                     const struct tg_preauth_limit *limit, int64_t now_ms);

/* Whether table (unknown or valid) holds hash with a stamp above min_stamp_ms. */
bool tg_preauth_hash_find(const struct tg_shm_preauth_hash *table, const unsigned char *hash,
                          int64_t min_stamp_ms);

/* Puts hash into table with stamp_ms (> 0); a full set gives up its lowest stamp. */
void tg_preauth_hash_put(struct tg_shm_preauth_hash *table, const unsigned char *hash,
                         int64_t stamp_ms);

/* Takes hash out of table, if it is there. */
void tg_preauth_hash_drop(struct tg_shm_preauth_hash *table, const unsigned char *hash);

#endif
