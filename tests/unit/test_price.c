/*
 * test_price.c — the worker's pricing rule, case by case, against the figures
 * tollgate.price_micros gives for the same rows (tests/sql/250_prices.sql
 * prices the same rule in SQL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "price.h"

/* $1 / $5 per MTok, cache read $0.10, writes $1.25 (5 min) and $2 (1 h), $10 per 1,000
 * searches; above 200k prompt tokens $6 / $22.50 / $0.60 / $7.50 / $12 */
static const struct tg_price LONG = {.model = "m",
                                     .input = 1000000,
                                     .output = 5000000,
                                     .cache_read = 100000,
                                     .cache_write = 1250000,
                                     .cache_write_1h = 2000000,
                                     .long_threshold = 200000,
                                     .long_input = 6000000,
                                     .long_output = 22500000,
                                     .long_cache_read = 600000,
                                     .long_cache_write = 7500000,
                                     .long_cache_write_1h = 12000000,
                                     .web_search = 10000};

/* no 1-hour rate set (null): 1-hour writes at the 5-minute rate; no long context */
static const struct tg_price PLAIN = {.model = "p",
                                      .input = 500000,
                                      .output = 1500000,
                                      .cache_read = 50000,
                                      .cache_write = 625000,
                                      .cache_write_1h = -1,
                                      .long_threshold = -1,
                                      .long_input = -1,
                                      .long_output = -1,
                                      .long_cache_read = -1,
                                      .long_cache_write = -1,
                                      .long_cache_write_1h = -1,
                                      .web_search = 0};

struct price_case {
    const char *name;
    const struct tg_price *price;
    struct tg_usage usage; /* input, output, cache read, cache write (all), of which 1h, searches */
    int64_t micros;
};

/* clang-format off */
static const struct price_case cases[] = {
    {"input and output", &LONG, {1000, 500, 0, 0, 0, 0}, 3500},
    {"nothing used costs nothing", &LONG, {0, 0, 0, 0, 0, 0}, 0},
    {"half a micro-dollar rounds up", &PLAIN, {1, 0, 0, 0, 0, 0}, 1},
    {"one and a half round up", &PLAIN, {3, 0, 0, 0, 0, 0}, 2},
    {"just under a half rounds down", &PLAIN, {0, 0, 9, 0, 0, 0}, 0},
    {"rounded once, not per kind", &PLAIN, {1, 0, 10, 0, 0, 0}, 1},
    {"cache read", &LONG, {0, 0, 1000, 0, 0, 0}, 100},
    {"5-minute and 1-hour writes", &LONG, {0, 0, 0, 300, 200, 0}, 525},
    {"1-hour writes without a 1-hour rate", &PLAIN, {0, 0, 0, 300, 200, 0}, 188},
    {"more 1-hour writes than writes: all are 1-hour", &LONG, {0, 0, 0, 100, 200, 0}, 400},
    {"web searches", &LONG, {1000, 0, 0, 0, 0, 3}, 31000},
    {"exactly at the threshold: base rates", &LONG, {150000, 0, 50000, 0, 0, 0}, 155000},
    {"above it: every kind at its long rate", &LONG, {150000, 100, 50001, 0, 0, 0}, 932251},
    {"cache writes count towards the threshold", &LONG, {199000, 0, 0, 1001, 1001, 0}, 1206012},
    {"the largest counts stay exact", &LONG, {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX,
                                                INT32_MAX, INT32_MAX}, INT64_C(21563098047892)},
};
/* clang-format on */

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = tg_price_compute(cases[i].price, &cases[i].usage);
        if (got != cases[i].micros)
            fail_msg("%s: %lld micro-dollars, want %lld", cases[i].name, (long long)got,
                     (long long)cases[i].micros);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cases)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
