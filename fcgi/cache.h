/*
 * cache.h — the response cache's store: a per-host POSIX shared-memory segment
 * of its own (not shm.c's), shared by every worker process of a deployment,
 * holding reply bodies keyed by a 32-byte key (the caller's SHA-256 of what
 * makes two requests the same). It is a store only: what is cacheable, how the
 * key is made and what the metadata holds are the caller's business.
 *
 * Layout: the capacity is fixed at attach, total_bytes of value storage split
 * into TG_CACHE_SLOT_BYTES slots. An entry's value takes as many slots as it
 * needs, chained (not necessarily consecutive, so the store never fragments);
 * a value larger than the whole store is refused. Beside the slots: one entry
 * record per slot (key, times, lengths, a TG_CACHE_META_BYTES metadata blob),
 * a hash index over the keys and a least-recently-used list. When space runs
 * out, the least recently used entries are evicted.
 *
 * Every operation runs under the segment's robust, process-shared mutex and
 * copies in or out while holding it, so no reader sees a half-written entry. A
 * process that died holding the lock may have left the lists half-updated:
 * the next holder empties the cache (it is only a cache) rather than trust it.
 *
 * A segment of another layout or capacity (an older build, another config) is
 * unlinked and made afresh, as shm.c does.
 */
#ifndef TG_CACHE_H
#define TG_CACHE_H

#include "common.h"

#define TG_CACHE_KEY_BYTES 32
#define TG_CACHE_SLOT_BYTES (16 * 1024)
#define TG_CACHE_META_BYTES 256
#define TG_CACHE_DEFAULT_BYTES ((size_t)64 * 1024 * 1024)
#define TG_CACHE_MAX_BYTES ((size_t)1024 * 1024 * 1024)

struct tg_cache; /* a process's handle on the segment */

struct tg_cache_stats {
    uint64_t entries;        /* entries held now */
    uint64_t bytes;          /* value bytes held now */
    uint64_t hits;           /* gets that found a live entry */
    uint64_t misses;         /* gets that found nothing, or an expired entry */
    uint64_t evictions;      /* live entries dropped to make room */
    uint64_t expirations;    /* expired entries dropped (on get, or to make room) */
    uint64_t capacity_bytes; /* value storage: slots times TG_CACHE_SLOT_BYTES */
};

/*
 * Maps the cache segment of the deployment identified by scope (e.g. the shm
 * scope; the segment's name is derived from it and differs from shm.c's),
 * creating and initialising it if this process is the first. total_bytes is
 * the value storage (0: TG_CACHE_DEFAULT_BYTES), rounded down to whole slots;
 * at least one slot, at most TG_CACHE_MAX_BYTES. Returns TG_OK with *out a new
 * handle (the caller's, for tg_cache_detach), or TG_ERROR (errno set).
 */
int tg_cache_attach(const char *scope, size_t total_bytes, struct tg_cache **out);

/* Unmaps the segment and frees the handle (NULL: no-op). The segment stays. */
void tg_cache_detach(struct tg_cache *cache);

/* Removes scope's segment name (tests; processes still attached keep theirs). */
void tg_cache_unlink(const char *scope);

/*
 * Looks key up at now_ms. On a live entry: copies its value into value (cap
 * bytes) with *len its length, and its metadata into meta (the rest of
 * meta_cap zeroed; meta may be NULL when meta_cap is 0 and none is wanted),
 * marks it most recently used and returns TG_OK. TG_DECLINED on a miss, or
 * when the entry has expired (it is then freed). TG_ERROR (errno ENOBUFS) when
 * the value does not fit cap (*len then says how much it needs) or the
 * metadata does not fit meta_cap; the entry is left as it was.
 */
int tg_cache_get(struct tg_cache *cache, const unsigned char key[TG_CACHE_KEY_BYTES],
                 int64_t now_ms, char *value, size_t cap, size_t *len, void *meta, size_t meta_cap);

/*
 * Stores a copy of value (len bytes) and meta (meta_len bytes, at most
 * TG_CACHE_META_BYTES) under key, created at now_ms and expiring ttl_ms later,
 * replacing any entry of the same key and evicting least recently used
 * entries as needed. TG_OK; TG_DECLINED when the value is larger than the whole
 * cache or ttl_ms is not positive (nothing is stored, an older entry of the key
 * is left alone); TG_ERROR (errno EINVAL) when meta is too large.
 */
int tg_cache_put(struct tg_cache *cache, const unsigned char key[TG_CACHE_KEY_BYTES],
                 const char *value, size_t len, const void *meta, size_t meta_len, int64_t now_ms,
                 int64_t ttl_ms);

/*
 * Frees every entry whose metadata match accepts (match is called under the
 * lock with the stored blob, borrowed: it must not call back into the cache),
 * or every entry when match is NULL. *purged (may be NULL) gets the count.
 * TG_OK or TG_ERROR.
 */
int tg_cache_purge(struct tg_cache *cache,
                   bool (*match)(void *ctx, const void *meta, size_t meta_len), void *ctx,
                   size_t *purged);

/* A consistent snapshot of the counters (zeroes if the lock cannot be taken). */
void tg_cache_stats(struct tg_cache *cache, struct tg_cache_stats *out);

#endif
