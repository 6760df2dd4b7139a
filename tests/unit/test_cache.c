/*
 * test_cache.c — cache.c over a real shared-memory segment: a put/get round
 * trip with its metadata, a miss, TTL expiry, LRU eviction order when full, a
 * value larger than the cache refused, a buffer too small, replacement of a
 * key, purge by a predicate over the metadata, the counters; a child's put seen
 * by the parent; forked processes putting and getting the same keys never see
 * a torn value (each value carries its checksum).
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"

/* ---- helpers ---- */

struct fixture {
    char scope[64];
    struct tg_cache *cache;
};

/* A fresh segment per test, named after this process so runs side by side do not meet. */
static int attach_slots(void **state, size_t n_slots)
{
    static unsigned serial;
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->scope, sizeof(f->scope), "test_cache-%ld-%u", (long)getpid(), serial++);
    tg_cache_unlink(f->scope);
    if (tg_cache_attach(f->scope, n_slots * TG_CACHE_SLOT_BYTES, &f->cache) != TG_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_small(void **state)
{
    return attach_slots(state, 8);
}

static int setup_medium(void **state)
{
    return attach_slots(state, 64);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tg_cache_detach(f->cache);
    tg_cache_unlink(f->scope);
    free(f);
    return 0;
}

static void make_key(unsigned n, unsigned char key[TG_CACHE_KEY_BYTES])
{
    memset(key, 0, TG_CACHE_KEY_BYTES);
    /* spread over the index's buckets the way a SHA-256 would */
    uint32_t spread = n * 2654435761u;
    memcpy(key, &spread, sizeof(spread));
    memcpy(key + 8, &n, sizeof(n));
}

static uint64_t fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* A value of len bytes (len >= 8) drawn from seed, its last 8 bytes the checksum of the rest. */
static void make_value(char *out, size_t len, uint64_t seed)
{
    for (size_t i = 0; i + 8 < len; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        out[i] = (char)(seed >> 56);
    }
    uint64_t sum = fnv1a(out, len - 8);
    memcpy(out + len - 8, &sum, 8);
}

static bool value_intact(const char *value, size_t len)
{
    if (len < 8)
        return false;
    uint64_t sum;
    memcpy(&sum, value + len - 8, 8);
    return sum == fnv1a(value, len - 8);
}

static int put_n(struct tg_cache *c, unsigned n, size_t len, int64_t now_ms)
{
    unsigned char key[TG_CACHE_KEY_BYTES];
    static char value[4 * TG_CACHE_SLOT_BYTES];
    make_key(n, key);
    make_value(value, len, n);
    return tg_cache_put(c, key, value, len, &n, sizeof(n), now_ms, 60000);
}

static int get_n(struct tg_cache *c, unsigned n, int64_t now_ms)
{
    unsigned char key[TG_CACHE_KEY_BYTES];
    static char value[4 * TG_CACHE_SLOT_BYTES];
    unsigned char meta[TG_CACHE_META_BYTES];
    size_t len = 0;
    make_key(n, key);
    return tg_cache_get(c, key, now_ms, value, sizeof(value), &len, meta, sizeof(meta));
}

/* ---- single process ---- */

static void test_round_trip(void **state)
{
    struct tg_cache *c = ((struct fixture *)*state)->cache;
    unsigned char key[TG_CACHE_KEY_BYTES];
    make_key(1, key);
    /* spans three slots, the last one partly */
    size_t len = 2 * TG_CACHE_SLOT_BYTES + 100;
    char *value = malloc(len), *got = malloc(len + 10);
    make_value(value, len, 42);
    const char meta[] = "scope=team-a;type=application/json";
    assert_int_equal(tg_cache_put(c, key, value, len, meta, sizeof(meta), 1000, 5000), TG_OK);

    char got_meta[TG_CACHE_META_BYTES];
    memset(got_meta, 'x', sizeof(got_meta));
    size_t got_len = 0;
    assert_int_equal(
        tg_cache_get(c, key, 2000, got, len + 10, &got_len, got_meta, sizeof(got_meta)), TG_OK);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, value, len);
    assert_string_equal(got_meta, meta);
    assert_int_equal(got_meta[sizeof(got_meta) - 1], 0); /* the rest zeroed */

    /* a buffer too small: an error saying how much is needed, the entry kept */
    got_len = 0;
    assert_int_equal(tg_cache_get(c, key, 2000, got, len - 1, &got_len, NULL, 0), TG_ERROR);
    assert_int_equal(got_len, len);
    assert_int_equal(tg_cache_get(c, key, 2000, got, len, &got_len, got_meta, 4), TG_ERROR);
    assert_int_equal(tg_cache_get(c, key, 2000, got, len, &got_len, NULL, 0), TG_ERROR);

    /* an empty value is a value */
    unsigned char empty_key[TG_CACHE_KEY_BYTES];
    make_key(2, empty_key);
    assert_int_equal(tg_cache_put(c, empty_key, "", 0, NULL, 0, 1000, 5000), TG_OK);
    got_len = 99;
    assert_int_equal(tg_cache_get(c, empty_key, 1000, got, 0, &got_len, NULL, 0), TG_OK);
    assert_int_equal(got_len, 0);

    /* replacing a key keeps one entry, the new value */
    make_value(value, 300, 7);
    assert_int_equal(tg_cache_put(c, key, value, 300, NULL, 0, 3000, 5000), TG_OK);
    assert_int_equal(tg_cache_get(c, key, 3000, got, len, &got_len, NULL, 0), TG_OK);
    assert_int_equal(got_len, 300);
    assert_memory_equal(got, value, 300);
    struct tg_cache_stats st;
    tg_cache_stats(c, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, 300);
    free(value);
    free(got);
}

static void test_miss_and_expiry(void **state)
{
    struct tg_cache *c = ((struct fixture *)*state)->cache;
    assert_int_equal(get_n(c, 5, 0), TG_DECLINED);
    unsigned char key[TG_CACHE_KEY_BYTES];
    make_key(5, key);
    assert_int_equal(tg_cache_put(c, key, "hello", 5, NULL, 0, 1000, 500), TG_OK);
    char got[16];
    size_t len;
    assert_int_equal(tg_cache_get(c, key, 1499, got, sizeof(got), &len, NULL, 0), TG_OK);
    assert_int_equal(tg_cache_get(c, key, 1500, got, sizeof(got), &len, NULL, 0), TG_DECLINED);
    /* freed on that get: a later get at an earlier time still misses */
    assert_int_equal(tg_cache_get(c, key, 1000, got, sizeof(got), &len, NULL, 0), TG_DECLINED);
    assert_int_equal(tg_cache_put(c, key, "x", 1, NULL, 0, 1000, 0), TG_DECLINED);
    struct tg_cache_stats st;
    tg_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 3);
    assert_int_equal(st.expirations, 1);
}

/* 8 slots: fill with 8 one-slot entries, touch some, add more: the untouched oldest go first. */
static void test_lru_eviction(void **state)
{
    struct tg_cache *c = ((struct fixture *)*state)->cache;
    for (unsigned n = 0; n < 8; n++)
        assert_int_equal(put_n(c, n, 1000, 100 + n), TG_OK);
    assert_int_equal(get_n(c, 0, 200), TG_OK);
    assert_int_equal(get_n(c, 2, 201), TG_OK);
    assert_int_equal(get_n(c, 1, 202), TG_OK);
    /* LRU order now, oldest first: 3 4 5 6 7 0 2 1 */
    assert_int_equal(put_n(c, 100, 1000, 300), TG_OK); /* evicts 3 */
    assert_int_equal(get_n(c, 3, 301), TG_DECLINED);
    assert_int_equal(get_n(c, 4, 301), TG_OK); /* 4 now most recent: 5 6 7 0 2 1 100 4 */
    /* a three-slot value evicts the three least recently used: 5 6 7 */
    assert_int_equal(put_n(c, 101, 2 * TG_CACHE_SLOT_BYTES + 1, 302), TG_OK);
    for (unsigned n = 5; n <= 7; n++)
        assert_int_equal(get_n(c, n, 303), TG_DECLINED);
    unsigned kept[] = {0, 1, 2, 4, 100, 101};
    for (size_t k = 0; k < TG_ARRAY_LEN(kept); k++)
        assert_int_equal(get_n(c, kept[k], 304), TG_OK);
    struct tg_cache_stats st;
    tg_cache_stats(c, &st);
    assert_int_equal(st.evictions, 4);
    assert_int_equal(st.entries, 6);
    assert_int_equal(st.capacity_bytes, 8 * TG_CACHE_SLOT_BYTES);
}

static void test_too_large(void **state)
{
    struct tg_cache *c = ((struct fixture *)*state)->cache;
    assert_int_equal(put_n(c, 1, 100, 0), TG_OK);
    unsigned char key[TG_CACHE_KEY_BYTES];
    make_key(2, key);
    size_t len = 8 * TG_CACHE_SLOT_BYTES + 1;
    char *big = calloc(1, len);
    assert_int_equal(tg_cache_put(c, key, big, len, NULL, 0, 0, 1000), TG_DECLINED);
    /* nothing evicted for it */
    assert_int_equal(get_n(c, 1, 1), TG_OK);
    /* exactly the whole cache fits, evicting everything else */
    assert_int_equal(tg_cache_put(c, key, big, len - 1, NULL, 0, 0, 1000), TG_OK);
    assert_int_equal(get_n(c, 1, 1), TG_DECLINED);
    /* metadata over its cap is a caller's error */
    static char meta[TG_CACHE_META_BYTES + 1];
    assert_int_equal(tg_cache_put(c, key, "x", 1, meta, sizeof(meta), 0, 1000), TG_ERROR);
    free(big);
}

static bool scope_is(void *ctx, const void *meta, size_t meta_len)
{
    size_t n = strlen(ctx);
    return meta_len >= n && memcmp(meta, ctx, n) == 0;
}

static void test_purge(void **state)
{
    struct tg_cache *c = ((struct fixture *)*state)->cache;
    unsigned char key[TG_CACHE_KEY_BYTES];
    for (unsigned n = 0; n < 6; n++) {
        make_key(n, key);
        const char *meta = n % 2 == 0 ? "team-a" : "team-b";
        assert_int_equal(tg_cache_put(c, key, "v", 1, meta, strlen(meta), 0, 1000), TG_OK);
    }
    size_t purged = 0;
    assert_int_equal(tg_cache_purge(c, scope_is, "team-a", &purged), TG_OK);
    assert_int_equal(purged, 3);
    for (unsigned n = 0; n < 6; n++)
        assert_int_equal(get_n(c, n, 1), n % 2 == 0 ? TG_DECLINED : TG_OK);
    assert_int_equal(tg_cache_purge(c, NULL, NULL, &purged), TG_OK);
    assert_int_equal(purged, 3);
    struct tg_cache_stats st;
    tg_cache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    /* the freed space is whole again */
    for (unsigned n = 0; n < 8; n++)
        assert_int_equal(put_n(c, n, TG_CACHE_SLOT_BYTES, 2), TG_OK);
    tg_cache_stats(c, &st);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.bytes, 8 * TG_CACHE_SLOT_BYTES);
}

static void test_bad_capacity(void **state)
{
    (void)state;
    struct tg_cache *c = NULL;
    assert_int_equal(tg_cache_attach("test_cache-bad", 100, &c), TG_ERROR);
    assert_int_equal(tg_cache_attach("test_cache-bad", TG_CACHE_MAX_BYTES + 1, &c), TG_ERROR);
}

/* Reattaching with another capacity makes the segment afresh; the same capacity shares it. */
static void test_reattach(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(put_n(f->cache, 1, 100, 0), TG_OK);
    struct tg_cache *same = NULL, *other = NULL;
    assert_int_equal(tg_cache_attach(f->scope, 8 * TG_CACHE_SLOT_BYTES, &same), TG_OK);
    assert_int_equal(get_n(same, 1, 1), TG_OK);
    tg_cache_detach(same);
    assert_int_equal(tg_cache_attach(f->scope, 16 * TG_CACHE_SLOT_BYTES, &other), TG_OK);
    assert_int_equal(get_n(other, 1, 1), TG_DECLINED);
    struct tg_cache_stats st;
    tg_cache_stats(other, &st);
    assert_int_equal(st.capacity_bytes, 16 * TG_CACHE_SLOT_BYTES);
    tg_cache_detach(other);
}

/* ---- several processes ---- */

static void test_child_put_parent_get(void **state)
{
    struct fixture *f = *state;
    size_t len = TG_CACHE_SLOT_BYTES + 17;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct tg_cache *mine = NULL;
        if (tg_cache_attach(f->scope, 64 * TG_CACHE_SLOT_BYTES, &mine) != TG_OK)
            _exit(1);
        _exit(put_n(mine, 77, len, 0) == TG_OK ? 0 : 2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    unsigned char key[TG_CACHE_KEY_BYTES];
    make_key(77, key);
    char *want = malloc(len), *got = malloc(len);
    make_value(want, len, 77);
    size_t got_len = 0;
    unsigned meta = 0;
    assert_int_equal(tg_cache_get(f->cache, key, 1, got, len, &got_len, &meta, sizeof(meta)),
                     TG_OK);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, want, len);
    assert_int_equal(meta, 77);
    free(want);
    free(got);
}

#define WORKERS 4
#define ROUNDS 2000
#define HOT_KEYS 24

/* Each worker puts and gets the same hot keys with values of varied length (1 to 3 slots). */
static int hammer(const char *scope, unsigned worker)
{
    struct tg_cache *mine = NULL;
    if (tg_cache_attach(scope, 64 * TG_CACHE_SLOT_BYTES, &mine) != TG_OK)
        return 1;
    size_t cap = 3 * TG_CACHE_SLOT_BYTES;
    char *value = malloc(cap);
    uint64_t seed = 0x1234 + worker;
    int bad = 0, hits = 0;
    for (unsigned r = 0; r < ROUNDS && value != NULL; r++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned char key[TG_CACHE_KEY_BYTES];
        make_key((unsigned)(seed >> 40) % HOT_KEYS, key);
        if ((seed >> 33) % 2 == 0) {
            size_t len = 8 + (size_t)(seed >> 20) % (cap - 8);
            make_value(value, len, seed);
            if (tg_cache_put(mine, key, value, len, &worker, sizeof(worker), r, 1000000) != TG_OK)
                bad++;
        } else {
            size_t len = 0;
            unsigned owner;
            int rc = tg_cache_get(mine, key, r, value, cap, &len, &owner, sizeof(owner));
            if (rc == TG_OK) {
                hits++;
                if (!value_intact(value, len))
                    bad++;
            } else if (rc != TG_DECLINED) {
                bad++;
            }
        }
    }
    free(value);
    tg_cache_detach(mine);
    return bad != 0 ? 2 : hits == 0 ? 3 : 0;
}

static void test_concurrent_no_torn_values(void **state)
{
    struct fixture *f = *state;
    pid_t pids[WORKERS];
    for (unsigned w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0)
            _exit(hammer(f->scope, w));
    }
    for (unsigned w = 0; w < WORKERS; w++) {
        int status;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* what is left is whole, and the books balance */
    struct tg_cache_stats st;
    tg_cache_stats(f->cache, &st);
    assert_true(st.entries > 0 && st.entries <= HOT_KEYS);
    assert_true(st.bytes <= st.capacity_bytes);
    assert_true(st.hits > 0);
    static char value[3 * TG_CACHE_SLOT_BYTES];
    uint64_t bytes = 0;
    for (unsigned n = 0; n < HOT_KEYS; n++) {
        unsigned char key[TG_CACHE_KEY_BYTES];
        make_key(n, key);
        size_t len = 0;
        unsigned owner;
        if (tg_cache_get(f->cache, key, 0, value, sizeof(value), &len, &owner, sizeof(owner)) ==
            TG_OK) {
            assert_true(value_intact(value, len));
            bytes += len;
        }
    }
    assert_int_equal(bytes, st.bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_miss_and_expiry, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_lru_eviction, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup_small, teardown),
        cmocka_unit_test(test_bad_capacity),
        cmocka_unit_test_setup_teardown(test_reattach, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_child_put_parent_get, setup_medium, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_no_torn_values, setup_medium, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
