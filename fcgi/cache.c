/*
 * cache.c — the response cache's store in its own shared-memory segment:
 * shm_open + mmap with a magic and geometry check (as shm.c), chained slots,
 * a hash index and an LRU list, all indices (never pointers: every process
 * maps the segment at its own address).
 *
 * The segment, in order, each part 64-byte aligned:
 *   struct cache_head                      geometry, lock, list heads, counters
 *   struct cache_entry entries[n_slots]    one record per slot at most
 *   uint32_t buckets[n_slots]              hash index: first entry of each chain
 *   uint32_t slot_next[n_slots]            a value's next slot, or the free list
 *   char data[n_slots][TG_CACHE_SLOT_BYTES]
 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "shm.h"

#define CACHE_MAGIC 0x7467636163686501ULL /* "tgcache" + layout version 1 */
#define NONE UINT32_MAX
#define ALIGN 64

struct cache_head {
    uint64_t magic; /* set last, once initialised */
    uint64_t size;  /* the whole mapping */
    uint32_t slot_bytes;
    uint32_t n_slots;
    pthread_mutex_t lock; /* robust, process-shared: guards everything below */
    uint32_t free_slot;   /* head of the free slot chain (through slot_next) */
    uint32_t n_free_slots;
    uint32_t free_entry; /* head of the free entry chain (through hash_next) */
    uint32_t lru_head;   /* most recently used */
    uint32_t lru_tail;   /* least recently used: evicted first */
    uint64_t entries, bytes, hits, misses, evictions, expirations;
};

struct cache_entry {
    unsigned char key[TG_CACHE_KEY_BYTES];
    int64_t created_ms;
    int64_t expires_ms;
    int64_t last_used_ms;
    uint32_t value_len;
    uint32_t meta_len;
    uint32_t first_slot; /* NONE for an empty value */
    uint32_t hash_next;  /* the bucket's chain; the free chain when unused */
    uint32_t lru_prev;
    uint32_t lru_next;
    unsigned char meta[TG_CACHE_META_BYTES];
};

struct tg_cache {
    struct cache_head *head;
    size_t map_size;
    struct cache_entry *entries;
    uint32_t *buckets;
    uint32_t *slot_next;
    char *data;
};

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

/* Offsets of the parts for n slots; returns the whole size. */
static size_t geometry(uint32_t n_slots, size_t *entries_at, size_t *buckets_at, size_t *next_at,
                       size_t *data_at)
{
    size_t at = align_up(sizeof(struct cache_head));
    *entries_at = at;
    at = align_up(at + (size_t)n_slots * sizeof(struct cache_entry));
    *buckets_at = at;
    at = align_up(at + (size_t)n_slots * sizeof(uint32_t));
    *next_at = at;
    at = align_up(at + (size_t)n_slots * sizeof(uint32_t));
    *data_at = at;
    return at + (size_t)n_slots * TG_CACHE_SLOT_BYTES;
}

static void bind_parts(struct tg_cache *c, void *base, uint32_t n_slots)
{
    size_t entries_at, buckets_at, next_at, data_at;
    c->map_size = geometry(n_slots, &entries_at, &buckets_at, &next_at, &data_at);
    c->head = base;
    c->entries = (struct cache_entry *)((char *)base + entries_at);
    c->buckets = (uint32_t *)((char *)base + buckets_at);
    c->slot_next = (uint32_t *)((char *)base + next_at);
    c->data = (char *)base + data_at;
}

static void segment_name(const char *scope, char *out, size_t size)
{
    unsigned char hash[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_crypto_sha256(scope, strlen(scope), hash);
    tg_crypto_hex(hash, 8, hex);
    snprintf(out, size, "/tollgate-%s-cache", hex);
}

/* Empties the store: every slot and entry free, the index and LRU list empty. */
static void format(struct tg_cache *c)
{
    struct cache_head *h = c->head;
    uint32_t n = h->n_slots;
    for (uint32_t i = 0; i < n; i++) {
        c->slot_next[i] = i + 1 < n ? i + 1 : NONE;
        c->buckets[i] = NONE;
        c->entries[i].hash_next = i + 1 < n ? i + 1 : NONE;
    }
    h->free_slot = 0;
    h->n_free_slots = n;
    h->free_entry = 0;
    h->lru_head = h->lru_tail = NONE;
    h->entries = h->bytes = 0;
}

static int cache_lock(struct tg_cache *c)
{
    int rc = pthread_mutex_lock(&c->head->lock);
    if (rc == EOWNERDEAD) {
        /* the holder died mid-update: the lists cannot be trusted, the contents need not be */
        format(c);
        pthread_mutex_consistent(&c->head->lock);
        return TG_OK;
    }
    return rc == 0 ? TG_OK : TG_ERROR;
}

static void cache_unlock(struct tg_cache *c)
{
    pthread_mutex_unlock(&c->head->lock);
}

/* ---- the segment ---- */

static int init_segment(struct tg_cache *c, uint32_t n_slots)
{
    struct cache_head *h = c->head;
    h->slot_bytes = TG_CACHE_SLOT_BYTES;
    h->n_slots = n_slots;
    if (tg_shm_mutex_init(&h->lock) != TG_OK)
        return TG_ERROR;
    format(c);
    h->size = c->map_size;
    __atomic_store_n(&h->magic, CACHE_MAGIC, __ATOMIC_RELEASE);
    return TG_OK;
}

/* Waits (bounded) until the creating process has initialised the segment. */
static int wait_ready(struct tg_cache *c, uint32_t n_slots)
{
    struct cache_head *h = c->head;
    for (int i = 0; i < 200; i++) {
        uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
        if (magic == CACHE_MAGIC) {
            if (h->size == c->map_size && h->slot_bytes == TG_CACHE_SLOT_BYTES &&
                h->n_slots == n_slots)
                return TG_OK;
            errno = EINVAL;
            return TG_ERROR;
        }
        if (magic != 0)
            break; /* initialised by another version of Tollgate */
        usleep(10 * 1000);
    }
    errno = ETIMEDOUT;
    return TG_ERROR;
}

static int open_segment(const char *name, size_t size, bool *created)
{
    *created = true;
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        *created = false;
        fd = shm_open(name, O_RDWR, 0600);
    }
    if (fd >= 0 && *created && ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        shm_unlink(name);
        return -1;
    }
    return fd;
}

/* Maps an opened segment once it has the expected size (a creator may still be sizing it). */
static void *map_segment(int fd, size_t size)
{
    struct stat st;
    for (int i = 0; i < 100; i++) {
        if (fstat(fd, &st) != 0)
            return NULL;
        if (st.st_size != 0)
            break;
        usleep(10 * 1000);
    }
    if ((size_t)st.st_size != size) {
        errno = EINVAL; /* another capacity or layout: mapping it could fault past its end */
        return NULL;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return base == MAP_FAILED ? NULL : base;
}

int tg_cache_attach(const char *scope, size_t total_bytes, struct tg_cache **out)
{
    if (total_bytes == 0)
        total_bytes = TG_CACHE_DEFAULT_BYTES;
    if (total_bytes < TG_CACHE_SLOT_BYTES || total_bytes > TG_CACHE_MAX_BYTES) {
        errno = EINVAL;
        return TG_ERROR;
    }
    uint32_t n_slots = (uint32_t)(total_bytes / TG_CACHE_SLOT_BYTES);
    struct tg_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return TG_ERROR;
    size_t entries_at, buckets_at, next_at, data_at;
    size_t size = geometry(n_slots, &entries_at, &buckets_at, &next_at, &data_at);
    char name[64];
    segment_name(scope, name, sizeof(name));
    /* a stale segment (another layout or capacity, a creator that died first) is made afresh, once
     */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool created;
        int fd = open_segment(name, size, &created);
        if (fd < 0)
            break;
        void *base = map_segment(fd, size);
        close(fd);
        int rc = TG_ERROR;
        if (base != NULL) {
            bind_parts(c, base, n_slots);
            rc = created ? init_segment(c, n_slots) : wait_ready(c, n_slots);
        }
        if (rc == TG_OK) {
            *out = c;
            return TG_OK;
        }
        if (base != NULL)
            munmap(base, size);
        if (created)
            break;
        shm_unlink(name);
    }
    int saved = errno;
    free(c);
    errno = saved;
    return TG_ERROR;
}

void tg_cache_detach(struct tg_cache *cache)
{
    if (cache == NULL)
        return;
    munmap(cache->head, cache->map_size);
    free(cache);
}

void tg_cache_unlink(const char *scope)
{
    char name[64];
    segment_name(scope, name, sizeof(name));
    shm_unlink(name);
}

/* ---- the store (every function below runs under the lock) ---- */

static uint32_t bucket_of(const struct tg_cache *c, const unsigned char *key)
{
    /* the key is a SHA-256 already: its first bytes are as good as any hash */
    uint32_t v;
    memcpy(&v, key, sizeof(v));
    return v % c->head->n_slots;
}

static uint32_t find(const struct tg_cache *c, const unsigned char *key)
{
    for (uint32_t i = c->buckets[bucket_of(c, key)]; i != NONE; i = c->entries[i].hash_next)
        if (memcmp(c->entries[i].key, key, TG_CACHE_KEY_BYTES) == 0)
            return i;
    return NONE;
}

static void lru_unlink(struct tg_cache *c, uint32_t i)
{
    struct cache_entry *e = &c->entries[i];
    if (e->lru_prev != NONE)
        c->entries[e->lru_prev].lru_next = e->lru_next;
    else
        c->head->lru_head = e->lru_next;
    if (e->lru_next != NONE)
        c->entries[e->lru_next].lru_prev = e->lru_prev;
    else
        c->head->lru_tail = e->lru_prev;
}

static void lru_push_front(struct tg_cache *c, uint32_t i)
{
    struct cache_entry *e = &c->entries[i];
    e->lru_prev = NONE;
    e->lru_next = c->head->lru_head;
    if (e->lru_next != NONE)
        c->entries[e->lru_next].lru_prev = i;
    else
        c->head->lru_tail = i;
    c->head->lru_head = i;
}

static uint32_t slots_for(size_t len)
{
    return (uint32_t)((len + TG_CACHE_SLOT_BYTES - 1) / TG_CACHE_SLOT_BYTES);
}

/* Frees entry i: out of its bucket and the LRU list, its slots and record back on the free lists.
 */
static void remove_entry(struct tg_cache *c, uint32_t i)
{
    struct cache_head *h = c->head;
    struct cache_entry *e = &c->entries[i];
    uint32_t *link = &c->buckets[bucket_of(c, e->key)];
    while (*link != NONE && *link != i)
        link = &c->entries[*link].hash_next;
    if (*link == i)
        *link = e->hash_next;
    lru_unlink(c, i);
    if (e->first_slot != NONE) {
        uint32_t last = e->first_slot;
        while (c->slot_next[last] != NONE)
            last = c->slot_next[last];
        c->slot_next[last] = h->free_slot;
        h->free_slot = e->first_slot;
        h->n_free_slots += slots_for(e->value_len);
    }
    h->entries--;
    h->bytes -= e->value_len;
    e->hash_next = h->free_entry;
    h->free_entry = i;
}

/* Takes n slots off the free list (the caller made sure there are), chained in order. */
static uint32_t take_slots(struct tg_cache *c, uint32_t n)
{
    struct cache_head *h = c->head;
    if (n == 0)
        return NONE;
    uint32_t first = h->free_slot, last = first;
    for (uint32_t k = 1; k < n; k++)
        last = c->slot_next[last];
    h->free_slot = c->slot_next[last];
    c->slot_next[last] = NONE;
    h->n_free_slots -= n;
    return first;
}

static void copy_in(struct tg_cache *c, uint32_t slot, const char *value, size_t len)
{
    for (size_t done = 0; done < len; slot = c->slot_next[slot]) {
        size_t n = len - done < TG_CACHE_SLOT_BYTES ? len - done : TG_CACHE_SLOT_BYTES;
        memcpy(c->data + (size_t)slot * TG_CACHE_SLOT_BYTES, value + done, n);
        done += n;
    }
}

static void copy_out(const struct tg_cache *c, uint32_t slot, char *value, size_t len)
{
    for (size_t done = 0; done < len; slot = c->slot_next[slot]) {
        size_t n = len - done < TG_CACHE_SLOT_BYTES ? len - done : TG_CACHE_SLOT_BYTES;
        memcpy(value + done, c->data + (size_t)slot * TG_CACHE_SLOT_BYTES, n);
        done += n;
    }
}

int tg_cache_get(struct tg_cache *cache, const unsigned char key[TG_CACHE_KEY_BYTES],
                 int64_t now_ms, char *value, size_t cap, size_t *len, void *meta, size_t meta_cap)
{
    if (cache_lock(cache) != TG_OK)
        return TG_ERROR;
    struct cache_head *h = cache->head;
    int rc = TG_DECLINED;
    uint32_t i = find(cache, key);
    if (i == NONE) {
        h->misses++;
    } else if (now_ms >= cache->entries[i].expires_ms) {
        remove_entry(cache, i);
        h->expirations++;
        h->misses++;
    } else {
        struct cache_entry *e = &cache->entries[i];
        *len = e->value_len;
        if (e->value_len > cap || e->meta_len > meta_cap) {
            errno = ENOBUFS;
            rc = TG_ERROR;
        } else {
            copy_out(cache, e->first_slot, value, e->value_len);
            if (meta_cap > 0) {
                memcpy(meta, e->meta, e->meta_len);
                memset((char *)meta + e->meta_len, 0, meta_cap - e->meta_len);
            }
            e->last_used_ms = now_ms;
            lru_unlink(cache, i);
            lru_push_front(cache, i);
            h->hits++;
            rc = TG_OK;
        }
    }
    cache_unlock(cache);
    return rc;
}

int tg_cache_put(struct tg_cache *cache, const unsigned char key[TG_CACHE_KEY_BYTES],
                 const char *value, size_t len, const void *meta, size_t meta_len, int64_t now_ms,
                 int64_t ttl_ms)
{
    if (meta_len > TG_CACHE_META_BYTES) {
        errno = EINVAL;
        return TG_ERROR;
    }
    if (ttl_ms <= 0 || len > (size_t)cache->head->n_slots * TG_CACHE_SLOT_BYTES)
        return TG_DECLINED;
    if (cache_lock(cache) != TG_OK)
        return TG_ERROR;
    struct cache_head *h = cache->head;
    uint32_t old = find(cache, key);
    if (old != NONE)
        remove_entry(cache, old);
    uint32_t need = slots_for(len);
    while (h->n_free_slots < need || h->free_entry == NONE) {
        uint32_t victim =
            h->lru_tail; /* never NONE: an empty store has every slot and record free */
        if (now_ms >= cache->entries[victim].expires_ms)
            h->expirations++;
        else
            h->evictions++;
        remove_entry(cache, victim);
    }
    uint32_t i = h->free_entry;
    struct cache_entry *e = &cache->entries[i];
    h->free_entry = e->hash_next;
    memcpy(e->key, key, TG_CACHE_KEY_BYTES);
    e->created_ms = e->last_used_ms = now_ms;
    e->expires_ms = ttl_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + ttl_ms;
    e->value_len = (uint32_t)len;
    e->meta_len = (uint32_t)meta_len;
    if (meta_len > 0)
        memcpy(e->meta, meta, meta_len);
    e->first_slot = take_slots(cache, need);
    copy_in(cache, e->first_slot, value, len);
    uint32_t b = bucket_of(cache, key);
    e->hash_next = cache->buckets[b];
    cache->buckets[b] = i;
    lru_push_front(cache, i);
    h->entries++;
    h->bytes += len;
    cache_unlock(cache);
    return TG_OK;
}

int tg_cache_purge(struct tg_cache *cache,
                   bool (*match)(void *ctx, const void *meta, size_t meta_len), void *ctx,
                   size_t *purged)
{
    if (cache_lock(cache) != TG_OK)
        return TG_ERROR;
    size_t n = 0;
    /* walk the LRU list (it holds every entry), taking the next link before freeing */
    for (uint32_t i = cache->head->lru_head, next; i != NONE; i = next) {
        struct cache_entry *e = &cache->entries[i];
        next = e->lru_next;
        if (match == NULL || match(ctx, e->meta, e->meta_len)) {
            remove_entry(cache, i);
            n++;
        }
    }
    cache_unlock(cache);
    if (purged != NULL)
        *purged = n;
    return TG_OK;
}

void tg_cache_stats(struct tg_cache *cache, struct tg_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (cache_lock(cache) != TG_OK)
        return;
    const struct cache_head *h = cache->head;
    out->entries = h->entries;
    out->bytes = h->bytes;
    out->hits = h->hits;
    out->misses = h->misses;
    out->evictions = h->evictions;
    out->expirations = h->expirations;
    out->capacity_bytes = (uint64_t)h->n_slots * TG_CACHE_SLOT_BYTES;
    cache_unlock(cache);
}
