/*
 * preauth.c — the failure limit per client address and the unknown-key cache
 * (contract in preauth.h), over the tables in the host's shared memory.
 */
#include "preauth.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "crypto.h"
#include "log.h"
#include "request.h"

/* ---- the tables (pure) ---- */

int tg_preauth_address(const char *text, unsigned char *out)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char addr[16];
    memset(out, 0, TG_SHM_PREAUTH_ADDR);
    if (text == NULL)
        return TG_ERROR;
    if (inet_pton(AF_INET, text, addr) == 1) {
        out[0] = 4;
        memcpy(out + 1, addr, 4);
        return TG_OK;
    }
    if (inet_pton(AF_INET6, text, addr) != 1)
        return TG_ERROR;
    if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
        out[0] = 4;
        memcpy(out + 1, addr + 12, 4);
    } else {
        /* one host of IPv6 commonly holds a whole /64: count the network */
        out[0] = 6;
        memcpy(out + 1, addr, 8);
    }
    return TG_OK;
}

static uint64_t fnv1a(const unsigned char *p, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/*
 * Refills e up to now_ms. Its credit counts failures in units of 1/per_ms, so
 * max per per_ms is exactly max units a millisecond: nothing is rounded away.
 */
static void refill(struct tg_shm_preauth_addr *e, const struct tg_preauth_limit *limit,
                   int64_t now_ms)
{
    int64_t full = limit->max * limit->per_ms;
    int64_t elapsed = now_ms - e->stamp_ms;
    if (elapsed <= 0)
        return;
    if (elapsed > limit->per_ms)
        elapsed = limit->per_ms; /* a whole period refills it all; no overflow below */
    int64_t credit = e->credit + elapsed * limit->max;
    e->credit = credit > full ? full : credit;
    e->stamp_ms = now_ms;
}

static struct tg_shm_preauth_addr *addr_set(struct tg_shm_preauth *p, const unsigned char *addr)
{
    size_t sets = TG_SHM_PREAUTH_ADDRS / TG_SHM_PREAUTH_WAYS;
    return &p->addrs[(fnv1a(addr, TG_SHM_PREAUTH_ADDR) % sets) * TG_SHM_PREAUTH_WAYS];
}

static struct tg_shm_preauth_addr *addr_find(struct tg_shm_preauth *p, const unsigned char *addr)
{
    struct tg_shm_preauth_addr *set = addr_set(p, addr);
    for (size_t i = 0; i < TG_SHM_PREAUTH_WAYS; i++)
        if (set[i].stamp_ms != 0 && memcmp(set[i].addr, addr, TG_SHM_PREAUTH_ADDR) == 0)
            return &set[i];
    return NULL;
}

bool tg_preauth_over(struct tg_shm_preauth *p, const unsigned char *addr,
                     const struct tg_preauth_limit *limit, int64_t now_ms, int64_t *retry_ms)
{
    if (limit->max <= 0 || limit->per_ms <= 0)
        return false;
    struct tg_shm_preauth_addr *e = addr_find(p, addr);
    if (e == NULL)
        return false;
    refill(e, limit, now_ms);
    if (e->credit >= limit->per_ms)
        return false;
    if (retry_ms != NULL)
        *retry_ms = (limit->per_ms - e->credit + limit->max - 1) / limit->max;
    return true;
}

void tg_preauth_fail(struct tg_shm_preauth *p, const unsigned char *addr,
                     const struct tg_preauth_limit *limit, int64_t now_ms)
{
    if (limit->max <= 0 || limit->per_ms <= 0)
        return;
    struct tg_shm_preauth_addr *e = addr_find(p, addr);
    if (e == NULL) {
        /* a free entry, else the one with the most failures left: the least suspect */
        struct tg_shm_preauth_addr *set = addr_set(p, addr);
        e = &set[0];
        for (size_t i = 0; i < TG_SHM_PREAUTH_WAYS; i++) {
            if (set[i].stamp_ms == 0) {
                e = &set[i];
                break;
            }
            refill(&set[i], limit, now_ms);
            if (set[i].credit > e->credit)
                e = &set[i];
        }
        memcpy(e->addr, addr, TG_SHM_PREAUTH_ADDR);
        e->credit = limit->max * limit->per_ms;
        e->stamp_ms = now_ms > 0 ? now_ms : 1;
    }
    refill(e, limit, now_ms);
    e->credit = e->credit >= limit->per_ms ? e->credit - limit->per_ms : 0;
}

static size_t hash_set(const unsigned char *hash)
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h)); /* a SHA-256: already uniform */
    return (size_t)(h % (TG_SHM_PREAUTH_HASHES / TG_SHM_PREAUTH_WAYS)) * TG_SHM_PREAUTH_WAYS;
}

bool tg_preauth_hash_find(const struct tg_shm_preauth_hash *table, const unsigned char *hash,
                          int64_t min_stamp_ms)
{
    const struct tg_shm_preauth_hash *set = &table[hash_set(hash)];
    for (size_t i = 0; i < TG_SHM_PREAUTH_WAYS; i++)
        if (set[i].stamp_ms != 0 && set[i].stamp_ms > min_stamp_ms &&
            memcmp(set[i].hash, hash, TG_SHM_PREAUTH_HASH) == 0)
            return true;
    return false;
}

void tg_preauth_hash_put(struct tg_shm_preauth_hash *table, const unsigned char *hash,
                         int64_t stamp_ms)
{
    struct tg_shm_preauth_hash *set = &table[hash_set(hash)], *e = &set[0];
    for (size_t i = 0; i < TG_SHM_PREAUTH_WAYS; i++) {
        if (set[i].stamp_ms != 0 && memcmp(set[i].hash, hash, TG_SHM_PREAUTH_HASH) == 0) {
            e = &set[i];
            break;
        }
        if (set[i].stamp_ms < e->stamp_ms)
            e = &set[i]; /* free (0), else the lowest stamp: the oldest or soonest to expire */
    }
    memcpy(e->hash, hash, TG_SHM_PREAUTH_HASH);
    e->stamp_ms = stamp_ms > 0 ? stamp_ms : 1;
}

void tg_preauth_hash_drop(struct tg_shm_preauth_hash *table, const unsigned char *hash)
{
    struct tg_shm_preauth_hash *set = &table[hash_set(hash)];
    for (size_t i = 0; i < TG_SHM_PREAUTH_WAYS; i++)
        if (set[i].stamp_ms != 0 && memcmp(set[i].hash, hash, TG_SHM_PREAUTH_HASH) == 0)
            set[i].stamp_ms = 0;
}

/* ---- the requests ---- */

static struct tg_shm_preauth *lock_tables(struct tg_request *r)
{
    struct tg_shm *shm = tg_shm_get();
    if (shm == NULL)
        return NULL;
    if (tg_shm_mutex_lock(&shm->preauth.lock) != TG_OK) {
        tg_log_error(r->request_id, "could not lock the pre-authentication tables");
        return NULL;
    }
    return &shm->preauth;
}

static void unlock_tables(struct tg_shm_preauth *p)
{
    tg_shm_mutex_unlock(&p->lock);
}

static struct tg_preauth_limit limit_of(const struct tg_request *r)
{
    return (struct tg_preauth_limit){r->config->auth_failure_max, r->config->auth_failure_per_ms};
}

/* Endpoints whose 401s are about an API credential (the admin API has its own). */
static bool api_endpoint(const struct tg_request *r)
{
    return r->endpoint != TG_EP_ADMIN && r->endpoint != TG_EP_METRICS &&
           r->endpoint != TG_EP_HEALTH && r->endpoint != TG_EP_NONE;
}

int tg_preauth_gate(struct tg_request *r, const unsigned char *key_hash)
{
    const struct tg_preauth_limit limit = limit_of(r);
    unsigned char addr[TG_SHM_PREAUTH_ADDR];
    bool limited =
        limit.max > 0 && tg_preauth_address(tg_request_param(r, "REMOTE_ADDR"), addr) == TG_OK;
    bool cached = key_hash != NULL && r->config->auth_unknown_key_ttl_ms > 0;
    if (!limited && !cached)
        return TG_OK;
    struct tg_shm_preauth *p = lock_tables(r);
    if (p == NULL)
        return TG_OK;
    int64_t now = tg_now_ms(), retry_ms = 0;
    bool over = limited && tg_preauth_over(p, addr, &limit, now, &retry_ms) &&
                (key_hash == NULL || !tg_preauth_hash_find(p->valid, key_hash, 0));
    bool unknown = !over && cached && tg_preauth_hash_find(p->unknown, key_hash, now);
    unlock_tables(p);
    if (over) {
        __atomic_add_fetch(&p->refusals_total, 1, __ATOMIC_RELAXED);
        r->error.status = 0; /* a failed credential's 401 becomes the 429 */
        tg_request_add_headerf(r, "retry-after", "%" PRId64, (retry_ms + 999) / 1000);
        tg_request_fail(r, 429, "rate_limit_error",
                        "too many failed authentications from this address: try again later",
                        "pre-authentication limit: address %s over %ld failures per %ld ms",
                        tg_request_param(r, "REMOTE_ADDR"), r->config->auth_failure_max,
                        r->config->auth_failure_per_ms);
        r->outcome = "rate_limited";
        return TG_DECLINED;
    }
    if (unknown) {
        __atomic_add_fetch(&p->unknown_hits_total, 1, __ATOMIC_RELAXED);
        tg_request_fail(r, 401, "authentication_error", "invalid x-api-key",
                        "unknown key (cached)");
        r->outcome = "rejected";
        return TG_DECLINED;
    }
    return TG_OK;
}

void tg_preauth_note_unknown(struct tg_request *r, const unsigned char *key_hash)
{
    long ttl = r->config->auth_unknown_key_ttl_ms;
    if (ttl <= 0)
        return;
    struct tg_shm_preauth *p = lock_tables(r);
    if (p == NULL)
        return;
    tg_preauth_hash_put(p->unknown, key_hash, tg_now_ms() + ttl);
    unlock_tables(p);
}

void tg_preauth_record(struct tg_request *r, const unsigned char *key_hash)
{
    bool failed = r->error.status == 401 && !r->authenticated && api_endpoint(r);
    bool valid = r->authenticated && key_hash != NULL;
    if (!failed && !valid)
        return;
    const struct tg_preauth_limit limit = limit_of(r);
    unsigned char addr[TG_SHM_PREAUTH_ADDR];
    bool counted = failed && limit.max > 0 &&
                   tg_preauth_address(tg_request_param(r, "REMOTE_ADDR"), addr) == TG_OK;
    struct tg_shm_preauth *p = lock_tables(r);
    if (p == NULL)
        return;
    int64_t now = tg_now_ms();
    if (counted)
        tg_preauth_fail(p, addr, &limit, now);
    if (failed && key_hash != NULL)
        tg_preauth_hash_drop(p->valid, key_hash); /* revoked or expired: no longer vouched for */
    else if (valid)
        tg_preauth_hash_put(p->valid, key_hash, now);
    unlock_tables(p);
}

size_t tg_preauth_metrics_text(char *buf, size_t size)
{
    struct tg_shm *shm = tg_shm_get();
    uint64_t refusals = 0, hits = 0;
    if (shm != NULL) {
        refusals = __atomic_load_n(&shm->preauth.refusals_total, __ATOMIC_RELAXED);
        hits = __atomic_load_n(&shm->preauth.unknown_hits_total, __ATOMIC_RELAXED);
    }
    int n = snprintf(buf, size,
                     "# HELP tollgate_preauth_refusals_total Requests refused (429) before any "
                     "lookup: their address was over auth.failure_limit.\n"
                     "# TYPE tollgate_preauth_refusals_total counter\n"
                     "tollgate_preauth_refusals_total %" PRIu64 "\n"
                     "# HELP tollgate_unknown_key_cache_hits_total Unknown keys answered 401 "
                     "from the host's cache, without a lookup.\n"
                     "# TYPE tollgate_unknown_key_cache_hits_total counter\n"
                     "tollgate_unknown_key_cache_hits_total %" PRIu64 "\n",
                     refusals, hits);
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : (size > 0 ? size - 1 : 0);
}
