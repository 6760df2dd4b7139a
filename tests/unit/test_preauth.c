/*
 * test_preauth.c — preauth.c's tables: client addresses as table keys (IPv4,
 * IPv4-mapped, IPv6 by its /64), the failure bucket per address (its budget,
 * its refill, the wait it reports, eviction of the least suspect address when
 * a set is full), and the hash tables (unknown keys until they expire, valid
 * keys until dropped, a full set giving up its lowest stamp).
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

#include "common.h"
#include "crypto.h"
#include "preauth.h"

static int setup(void **state)
{
    *state = calloc(1, sizeof(struct tg_shm_preauth));
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_addresses(void **state)
{
    (void)state;
    unsigned char a[TG_SHM_PREAUTH_ADDR], b[TG_SHM_PREAUTH_ADDR];
    assert_int_equal(tg_preauth_address("10.1.2.3", a), TG_OK);
    assert_int_equal(a[0], 4);
    assert_memory_equal(a + 1, "\x0a\x01\x02\x03", 4);
    assert_int_equal(tg_preauth_address("::ffff:10.1.2.3", b), TG_OK);
    assert_memory_equal(a, b, TG_SHM_PREAUTH_ADDR); /* mapped = the IPv4 address */
    assert_int_equal(tg_preauth_address("10.1.2.4", b), TG_OK);
    assert_memory_not_equal(a, b, TG_SHM_PREAUTH_ADDR);
    /* one IPv6 /64 is one entry: its host part does not spread it */
    assert_int_equal(tg_preauth_address("2001:db8:1:2::1", a), TG_OK);
    assert_int_equal(tg_preauth_address("2001:db8:1:2:ffff:1:2:3", b), TG_OK);
    assert_int_equal(a[0], 6);
    assert_memory_equal(a, b, TG_SHM_PREAUTH_ADDR);
    assert_int_equal(tg_preauth_address("2001:db8:1:3::1", b), TG_OK);
    assert_memory_not_equal(a, b, TG_SHM_PREAUTH_ADDR);
    assert_int_equal(tg_preauth_address(NULL, a), TG_ERROR);
    assert_int_equal(tg_preauth_address("", a), TG_ERROR);
    assert_int_equal(tg_preauth_address("localhost", a), TG_ERROR);
    assert_int_equal(tg_preauth_address("10.1.2.3/8", a), TG_ERROR);
}

static void test_budget_then_refill(void **state)
{
    struct tg_shm_preauth *p = *state;
    const struct tg_preauth_limit limit = {5, 10000}; /* 5 per 10 s: one every 2 s */
    unsigned char addr[TG_SHM_PREAUTH_ADDR], other[TG_SHM_PREAUTH_ADDR];
    tg_preauth_address("192.0.2.7", addr);
    tg_preauth_address("192.0.2.8", other);
    int64_t now = 1000000, retry = -1;
    assert_false(tg_preauth_over(p, addr, &limit, now, &retry)); /* never failed */
    for (int i = 0; i < 5; i++) {
        assert_false(tg_preauth_over(p, addr, &limit, now, NULL));
        tg_preauth_fail(p, addr, &limit, now);
    }
    assert_true(tg_preauth_over(p, addr, &limit, now, &retry));
    assert_int_equal(retry, 2000);
    assert_false(tg_preauth_over(p, other, &limit, now, NULL)); /* another address */
    /* more failures while over: the bucket stays empty, not below */
    tg_preauth_fail(p, addr, &limit, now);
    assert_true(tg_preauth_over(p, addr, &limit, now + 1999, &retry));
    assert_int_equal(retry, 1);
    assert_false(tg_preauth_over(p, addr, &limit, now + 2000, NULL)); /* one back */
    tg_preauth_fail(p, addr, &limit, now + 2000);
    assert_true(tg_preauth_over(p, addr, &limit, now + 2000, NULL));
    /* a whole period refills it all, and never above max */
    now += 1000000;
    for (int i = 0; i < 5; i++)
        tg_preauth_fail(p, addr, &limit, now);
    assert_true(tg_preauth_over(p, addr, &limit, now, NULL));
}

static void test_refill_in_small_steps_loses_nothing(void **state)
{
    struct tg_shm_preauth *p = *state;
    const struct tg_preauth_limit limit = {1, 60000}; /* one per minute */
    unsigned char addr[TG_SHM_PREAUTH_ADDR];
    tg_preauth_address("198.51.100.1", addr);
    int64_t now = 5000;
    tg_preauth_fail(p, addr, &limit, now);
    /* asked every 30 ms (under a thousandth each), it still comes back after a minute */
    int64_t t = now;
    while (tg_preauth_over(p, addr, &limit, t, NULL))
        t += 30;
    assert_in_range(t - now, 60000, 60030);
}

static void test_off(void **state)
{
    struct tg_shm_preauth *p = *state;
    const struct tg_preauth_limit off = {0, 60000};
    unsigned char addr[TG_SHM_PREAUTH_ADDR];
    tg_preauth_address("203.0.113.9", addr);
    for (int i = 0; i < 100; i++)
        tg_preauth_fail(p, addr, &off, 1000);
    assert_false(tg_preauth_over(p, addr, &off, 1000, NULL));
}

/* Many addresses: the table stays bounded, and a suspect address is not the one evicted. */
static void test_full_set_evicts_the_least_suspect(void **state)
{
    struct tg_shm_preauth *p = *state;
    const struct tg_preauth_limit limit = {3, 60000};
    unsigned char bad[TG_SHM_PREAUTH_ADDR];
    tg_preauth_address("192.0.2.200", bad);
    for (int i = 0; i < 3; i++)
        tg_preauth_fail(p, bad, &limit, 1000);
    assert_true(tg_preauth_over(p, bad, &limit, 1000, NULL));
    /* 20 000 other addresses fail once each: far more than the table holds */
    for (int i = 0; i < 20000; i++) {
        char text[64];
        snprintf(text, sizeof(text), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        unsigned char a[TG_SHM_PREAUTH_ADDR];
        tg_preauth_address(text, a);
        tg_preauth_fail(p, a, &limit, 1000);
    }
    assert_true(tg_preauth_over(p, bad, &limit, 1000, NULL));
}

static void hash_of(const char *key, unsigned char *out)
{
    tg_crypto_sha256(key, strlen(key), out);
}

static void test_unknown_keys_expire(void **state)
{
    struct tg_shm_preauth *p = *state;
    unsigned char h[TG_SHA256_LEN], other[TG_SHA256_LEN];
    hash_of("tg-unknown", h);
    hash_of("tg-another", other);
    assert_false(tg_preauth_hash_find(p->unknown, h, 1000));
    tg_preauth_hash_put(p->unknown, h, 1000 + 3000); /* remembered for 3 s */
    assert_true(tg_preauth_hash_find(p->unknown, h, 1000));
    assert_true(tg_preauth_hash_find(p->unknown, h, 3999));
    assert_false(tg_preauth_hash_find(p->unknown, h, 4000));
    assert_false(tg_preauth_hash_find(p->unknown, other, 1000));
    tg_preauth_hash_put(p->unknown, h, 9000); /* seen unknown again: later expiry, one entry */
    assert_true(tg_preauth_hash_find(p->unknown, h, 5000));
    tg_preauth_hash_drop(p->unknown, h);
    assert_false(tg_preauth_hash_find(p->unknown, h, 5000));
}

static void test_valid_set_bounded_oldest_goes(void **state)
{
    struct tg_shm_preauth *p = *state;
    unsigned char first[TG_SHA256_LEN], recent[TG_SHA256_LEN];
    hash_of("tg-first", first);
    hash_of("tg-recent", recent);
    tg_preauth_hash_put(p->valid, first, 1);
    tg_preauth_hash_put(p->valid, recent, 1000000);
    assert_true(tg_preauth_hash_find(p->valid, first, 0));
    /* many more keys than the table holds, all seen after "first", before "recent" */
    for (int i = 0; i < 50000; i++) {
        char key[32];
        unsigned char h[TG_SHA256_LEN];
        snprintf(key, sizeof(key), "tg-k%d", i);
        hash_of(key, h);
        tg_preauth_hash_put(p->valid, h, 2 + i);
    }
    assert_false(tg_preauth_hash_find(p->valid, first, 0)); /* the oldest went */
    assert_true(tg_preauth_hash_find(p->valid, recent, 0)); /* the most recent stayed */
    size_t used = 0;
    for (size_t i = 0; i < TG_SHM_PREAUTH_HASHES; i++)
        used += p->valid[i].stamp_ms != 0;
    assert_int_equal(used, TG_SHM_PREAUTH_HASHES);
    tg_preauth_hash_drop(p->valid, recent); /* revoked: no longer vouched for */
    assert_false(tg_preauth_hash_find(p->valid, recent, 0));
}

static void test_metrics_text(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = tg_preauth_metrics_text(buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "\ntollgate_preauth_refusals_total 0\n"));
    assert_non_null(strstr(buf, "\ntollgate_unknown_key_cache_hits_total 0\n"));
    char small[16];
    assert_int_equal(tg_preauth_metrics_text(small, sizeof(small)), sizeof(small) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test_setup_teardown(test_budget_then_refill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refill_in_small_steps_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_set_evicts_the_least_suspect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_set_bounded_oldest_goes, setup, teardown),
        cmocka_unit_test(test_metrics_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
