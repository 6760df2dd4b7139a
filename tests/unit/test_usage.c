/*
 * test_usage.c — the pure parts of usage.c: totals and micro-dollar formatting.
 * tg_usage_settle needs the database and the spool: the integration suite
 * covers it.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "usage.h"

static void assert_usd(int64_t micros, const char *want)
{
    char out[32];
    memset(out, '#', sizeof(out));
    tg_usage_format_usd(micros, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("%lld micro-dollars: got \"%s\", want \"%s\"", (long long)micros, out, want);
}

static void test_format_usd(void **state)
{
    (void)state;
    assert_usd(0, "0.000000");
    assert_usd(1, "0.000001");
    assert_usd(999999, "0.999999");
    assert_usd(1000000, "1.000000");
    assert_usd(1234567, "1.234567");
    assert_usd(5000000, "5.000000");
    assert_usd(10000001, "10.000001");
}

static void test_format_usd_negative(void **state)
{
    (void)state;
    assert_usd(-1, "-0.000001");
    assert_usd(-999999, "-0.999999");
    assert_usd(-1234567, "-1.234567");
    assert_usd(-5000000, "-5.000000");
}

static void test_format_usd_extremes(void **state)
{
    (void)state;
    assert_usd(INT64_MAX, "9223372036854.775807");
    assert_usd(INT64_MIN, "-9223372036854.775808"); /* no overflow negating it */
}

static void test_format_usd_small_buffer(void **state)
{
    (void)state;
    char out[5];
    memset(out, '#', sizeof(out));
    tg_usage_format_usd(1234567, out, sizeof(out));
    assert_string_equal(out, "1.23"); /* truncated, still NUL-terminated */
}

static void test_total(void **state)
{
    (void)state;
    struct tg_usage none = {0, 0, 0, 0, 0, 0};
    assert_int_equal(tg_usage_total(&none), 0);
    struct tg_usage u = {.input_tokens = 1000,
                         .output_tokens = 200,
                         .cache_read_tokens = 30,
                         .cache_write_tokens = 4};
    assert_int_equal(tg_usage_total(&u), 1234);
    struct tg_usage only_cache = {.cache_write_tokens = 7};
    assert_int_equal(tg_usage_total(&only_cache), 7);
    struct tg_usage big = {.input_tokens = INT64_C(3000000000),
                           .output_tokens = INT64_C(3000000000)};
    assert_true(tg_usage_total(&big) == INT64_C(6000000000)); /* 64-bit, not int */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_usd),
        cmocka_unit_test(test_format_usd_negative),
        cmocka_unit_test(test_format_usd_extremes),
        cmocka_unit_test(test_format_usd_small_buffer),
        cmocka_unit_test(test_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
