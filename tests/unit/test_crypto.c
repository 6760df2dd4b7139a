/*
 * test_crypto.c — SHA-256 (FIPS 180-2 vectors), base64url (RFC 4648 vectors,
 * URL alphabet, no padding), hex, UUIDv4 format, constant-time compare, random.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto.h"

static void assert_sha256_hex(const void *data, size_t len, const char *want)
{
    unsigned char digest[TG_SHA256_LEN];
    char hex[2 * TG_SHA256_LEN + 1];
    tg_crypto_sha256(data, len, digest);
    tg_crypto_hex(digest, sizeof(digest), hex);
    assert_string_equal(hex, want);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    assert_sha256_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_sha256_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_sha256_hex(two_blocks, strlen(two_blocks),
                      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t million = 1000000;
    char *a = malloc(million);
    assert_non_null(a);
    memset(a, 'a', million);
    unsigned char digest[TG_SHA256_LEN];
    tg_crypto_sha256(a, million, digest);
    free(a);
    static const unsigned char want[TG_SHA256_LEN] = {
        0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
        0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
        0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(digest, want, TG_SHA256_LEN);
}

static void assert_base64url(const void *in, size_t len, const char *want)
{
    size_t want_len = strlen(want);
    /* exactly the room it needs, on the heap, so ASan sees any byte past it */
    char *out = malloc(want_len + 1);
    assert_non_null(out);
    int n = tg_crypto_base64url(in, len, out, want_len + 1);
    assert_int_equal(n, (int)want_len);
    assert_string_equal(out, want);
    free(out);
}

static void test_base64url_rfc4648_vectors(void **state)
{
    (void)state;
    assert_base64url("", 0, "");
    assert_base64url("f", 1, "Zg");
    assert_base64url("fo", 2, "Zm8");
    assert_base64url("foo", 3, "Zm9v");
    assert_base64url("foob", 4, "Zm9vYg");
    assert_base64url("fooba", 5, "Zm9vYmE");
    assert_base64url("foobar", 6, "Zm9vYmFy");
}

static void test_base64url_alphabet(void **state)
{
    (void)state;
    /* the bytes standard base64 writes as '+' and '/' */
    assert_base64url("\xfb\xff", 2, "-_8");
    assert_base64url("\xfb\xff\xbf", 3, "-_-_");
    assert_base64url("\x3e\xff\xfe", 3, "Pv_-");
    assert_base64url("\xff\xfe\xfd\xfc", 4, "__79_A");
    assert_base64url("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10, "AAECAwQFBgcICQ");
    /* 32 random-looking bytes: 43 characters, none of them padding or '+' '/' */
    unsigned char key[32];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i * 37 + 11);
    char out[44];
    assert_int_equal(tg_crypto_base64url(key, sizeof(key), out, sizeof(out)), 43);
    assert_null(strpbrk(out, "=+/"));
}

static void test_base64url_buffer_too_small(void **state)
{
    (void)state;
    char out[16];
    memset(out, '#', sizeof(out));
    /* "foobar" needs 8 characters and the NUL */
    assert_int_equal(tg_crypto_base64url((const unsigned char *)"foobar", 6, out, 8), TG_ERROR);
    assert_int_equal(out[8], '#'); /* nothing written past what it was given */
    assert_int_equal(tg_crypto_base64url((const unsigned char *)"f", 1, out, 2), TG_ERROR);
    assert_int_equal(tg_crypto_base64url((const unsigned char *)"", 0, out, 0), TG_ERROR);
    assert_int_equal(tg_crypto_base64url((const unsigned char *)"foobar", 6, out, 9), 8);
    assert_string_equal(out, "Zm9vYmFy");
}

static void test_hex(void **state)
{
    (void)state;
    static const unsigned char in[] = {0x00, 0x01, 0x0f, 0x10, 0xab, 0xcd, 0xef, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, '#', sizeof(out));
    tg_crypto_hex(in, sizeof(in), out);
    assert_string_equal(out, "00010f10abcdefff");
    char empty[1] = {'#'};
    tg_crypto_hex(in, 0, empty);
    assert_string_equal(empty, "");
}

static void assert_uuid_form(const char *u, char version)
{
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(u[i], '-');
            continue;
        }
        if (strchr("0123456789abcdef", u[i]) == NULL || u[i] == '\0')
            fail_msg("uuid \"%s\": character %d is not lower-case hex", u, i);
    }
    assert_int_equal(u[14], version);       /* version */
    assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
}

static void test_uuid4(void **state)
{
    (void)state;
    char first[37], second[37];
    tg_crypto_uuid4(first);
    tg_crypto_uuid4(second);
    assert_uuid_form(first, '4');
    assert_uuid_form(second, '4');
    assert_string_not_equal(first, second);

    /* the variant nibble takes all four of its values: the bits are random */
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < 400; i++) {
        char u[37];
        tg_crypto_uuid4(u);
        assert_uuid_form(u, '4');
        seen[strchr("89ab", u[19]) - "89ab"] = true;
    }
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid7(void **state)
{
    /* version 7: the time comes first, so ids made later sort later; all distinct */
    (void)state;
    enum { N = 20000 };
    char(*ids)[37] = calloc(N, sizeof(*ids));
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        tg_crypto_uuid7(ids[i]);
        assert_uuid_form(ids[i], '7');
        if (i > 0 && memcmp(ids[i], ids[i - 1], 13) < 0) /* the milliseconds never go back */
            fail_msg("%s sorts before %s, made earlier", ids[i], ids[i - 1]);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char now_ms[13];
    snprintf(now_ms, sizeof(now_ms), "%012llx",
             (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000);
    char last[13] = {0};
    memcpy(last, ids[N - 1], 8);
    memcpy(last + 8, ids[N - 1] + 9, 4);
    assert_true(strcmp(last, now_ms) <= 0); /* the time is the wall clock's, in ms */
    qsort(ids, N, sizeof(*ids), compare_ids);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i], ids[i - 1]) == 0)
            fail_msg("id %s made twice", ids[i]);
    free(ids);
}

static void test_equal(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (unsigned char)i;
    assert_true(tg_crypto_equal(a, b, sizeof(a)));
    b[0] ^= 1;
    assert_false(tg_crypto_equal(a, b, sizeof(a)));
    b[0] ^= 1;
    b[31] ^= 0x80;
    assert_false(tg_crypto_equal(a, b, sizeof(a)));
    assert_true(tg_crypto_equal(a, b, 31)); /* only n bytes count */
    assert_true(tg_crypto_equal(a, b, 0));
}

/* Decoding is strict: one spelling per value, and it inverts the encoder. */
static void test_base64url_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"", ""},           {"YQ", "a"},        {"YWI", "ab"},  {"YWJj", "abc"},
        {"Pz8-", "?\x3f>"}, {"Pz8_", "?\x3f?"}, {"YQ==", NULL}, /* padding */
        {"Y", NULL},                                            /* length 1 mod 4 */
        {"YR", NULL},   /* unused trailing bits set: a second spelling of "a" */
        {"YW+j", NULL}, /* base64, not base64url */
        {"YW j", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char out[16];
        long n = tg_crypto_base64url_decode(cases[i].in, strlen(cases[i].in), out);
        if (cases[i].out == NULL) {
            assert_int_equal(n, -1);
            continue;
        }
        assert_int_equal(n, (long)strlen(cases[i].out));
        assert_memory_equal(out, cases[i].out, (size_t)n);
    }
    unsigned char raw[32], back[32];
    char text[64];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(raw); len++) {
        int n = tg_crypto_base64url(raw, len, text, sizeof(text));
        assert_true(n >= 0);
        assert_int_equal(tg_crypto_base64url_decode(text, (size_t)n, back), (long)len);
        assert_memory_equal(back, raw, len);
    }
}

static void test_random(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(tg_crypto_random(a, sizeof(a)), TG_OK);
    assert_int_equal(tg_crypto_random(b, sizeof(b)), TG_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    static const unsigned char zero[32];
    assert_memory_not_equal(a, zero, sizeof(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_base64url_rfc4648_vectors),
        cmocka_unit_test(test_base64url_alphabet),
        cmocka_unit_test(test_base64url_buffer_too_small),
        cmocka_unit_test(test_base64url_decode),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_uuid4),
        cmocka_unit_test(test_uuid7),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
