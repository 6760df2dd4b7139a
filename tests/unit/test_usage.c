/*
 * test_usage.c — the pure parts of usage.c: totals, micro-dollar formatting and
 * the record check done before a row is sent or spooled (tg_usage_record_check),
 * the record's JSON (guard_rule only when a guardrail blocked the request).
 * tg_settle_request needs the database and the spool: the integration suite
 * covers it.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
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
    struct tg_usage none = {0};
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

static struct tg_usage_record good_record(void)
{
    return (struct tg_usage_record){
        .request_id = "0b7e3c1a-5f2d-4c8e-9a61-3d2f1e0c9b8a",
        .ts = "2026-03-15T10:00:00.123456Z",
        .api_key_id = 1,
        .user_id = "alice",
        .group_id = "eng",
        .provider = "anthropic",
        .model = "claude-haiku-4-5",
        .usage = {.input_tokens = 10, .cache_write_tokens = 5, .cache_write_1h_tokens = 5},
        .http_status = 200,
        .outcome = "ok",
    };
}

static void assert_refused(const struct tg_usage_record *rec, const char *want_why)
{
    char why[256] = "";
    if (tg_usage_record_check(rec, why, sizeof(why)) != TG_DECLINED)
        fail_msg("accepted a record that should fail with \"%s\"", want_why);
    assert_string_equal(why, want_why);
}

static void test_record_check(void **state)
{
    (void)state;
    char why[256];
    struct tg_usage_record rec = good_record();
    assert_int_equal(tg_usage_record_check(&rec, why, sizeof(why)), TG_OK);
    /* limits are inclusive; NULL strings and the three sources are fine */
    rec.usage.input_tokens = rec.usage.output_tokens = rec.usage.web_search_requests = INT32_MAX;
    rec.user_id = rec.group_id = NULL;
    rec.request_id = "0B7E3C1A-5F2D-4C8E-9A61-3D2F1E0C9B8A";
    rec.ts = "2026-03-15";
    rec.http_status = 999;
    const char *sources[] = {NULL, "provider", "estimated", "reserved_bound"};
    for (size_t i = 0; i < TG_ARRAY_LEN(sources); i++) {
        rec.usage_source = sources[i];
        assert_int_equal(tg_usage_record_check(&rec, why, sizeof(why)), TG_OK);
    }
    char model[TG_USAGE_STRING_MAX + 1];
    memset(model, 'm', TG_USAGE_STRING_MAX);
    model[TG_USAGE_STRING_MAX] = '\0';
    rec.model = model;
    assert_int_equal(tg_usage_record_check(&rec, why, sizeof(why)), TG_OK);
    rec.user_id = "\xc3\xa9l\xc3\xa8ve \xe2\x82\xac \xf0\x9f\x98\x80"; /* UTF-8 of 2, 3, 4 bytes */
    assert_int_equal(tg_usage_record_check(&rec, why, sizeof(why)), TG_OK);
    /* a blocked request's rule: 1 to 64 bytes */
    rec.guard_rule = "a";
    assert_int_equal(tg_usage_record_check(&rec, why, sizeof(why)), TG_OK);
    char rule[TG_USAGE_GUARD_RULE_MAX + 1];
    memset(rule, 'r', TG_USAGE_GUARD_RULE_MAX);
    rule[TG_USAGE_GUARD_RULE_MAX] = '\0';
    rec.guard_rule = rule;
    assert_int_equal(tg_usage_record_check(&rec, why, sizeof(why)), TG_OK);
}

static void test_record_check_refusals(void **state)
{
    (void)state;
    struct tg_usage_record rec;
#define REFUSED(change, why)                                                                       \
    do {                                                                                           \
        rec = good_record();                                                                       \
        change;                                                                                    \
        assert_refused(&rec, why);                                                                 \
    } while (0)
    REFUSED(rec.request_id = NULL, "request_id is not a UUID");
    REFUSED(rec.request_id = "0b7e3c1a-5f2d-4c8e-9a61-3d2f1e0c9b8", "request_id is not a UUID");
    REFUSED(rec.request_id = "0b7e3c1a-5f2d-4c8e-9a61-3d2f1e0c9b8aa", "request_id is not a UUID");
    REFUSED(rec.request_id = "0b7e3c1a5f2d-4c8e-9a61-3d2f1e0c9b8a-", "request_id is not a UUID");
    REFUSED(rec.request_id = "0b7e3c1a-5f2d-4c8e-9a61-3d2f1e0c9b8g", "request_id is not a UUID");
    REFUSED(rec.ts = NULL, "ts is missing or not an ISO 8601 time");
    REFUSED(rec.ts = "", "ts is missing or not an ISO 8601 time");
    REFUSED(rec.ts = "yesterday at noon", "ts is missing or not an ISO 8601 time");
    REFUSED(rec.ts = "2026-03-15X10:00", "ts is missing or not an ISO 8601 time");
    REFUSED(rec.usage.input_tokens = -1, "input_tokens -1 is out of range (0 to 2147483647)");
    REFUSED(rec.usage.output_tokens = INT64_C(2147483648),
            "output_tokens 2147483648 is out of range (0 to 2147483647)");
    REFUSED(rec.usage.cache_read_tokens = INT64_MIN,
            "cache_read_tokens -9223372036854775808 is out of range (0 to 2147483647)");
    REFUSED(rec.usage.cache_write_tokens = -5,
            "cache_write_tokens -5 is out of range (0 to 2147483647)");
    REFUSED(rec.usage.cache_write_1h_tokens = -1,
            "cache_write_1h_tokens -1 is out of range (0 to 2147483647)");
    REFUSED(rec.usage.web_search_requests = INT64_MAX,
            "web_search_requests 9223372036854775807 is out of range (0 to 2147483647)");
    REFUSED(rec.usage.cache_write_1h_tokens = 6,
            "cache_write_1h_tokens 6 exceeds cache_write_tokens 5");
    REFUSED(rec.api_key_id = -1, "api_key_id -1, http_status 200, latency_ms 0 or upstream_ms 0 "
                                 "is out of range");
    REFUSED(rec.http_status = 1000, "api_key_id 1, http_status 1000, latency_ms 0 or "
                                    "upstream_ms 0 is out of range");
    REFUSED(rec.latency_ms = INT64_C(2147483648), "api_key_id 1, http_status 200, latency_ms "
                                                  "2147483648 or upstream_ms 0 is out of range");
    REFUSED(rec.usage_source = "guessed",
            "usage_source is not provider, estimated or reserved_bound");
    char long_model[TG_USAGE_STRING_MAX + 2];
    memset(long_model, 'm', TG_USAGE_STRING_MAX + 1);
    long_model[TG_USAGE_STRING_MAX + 1] = '\0';
    REFUSED(rec.model = long_model, "model is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.user_id = "al\xffice", "user_id is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.group_id = "\xc3", "group_id is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.provider = "\xc0\xaf", "provider is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.outcome = "\xed\xa0\x80", "outcome is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.model = "\xf4\x90\x80\x80", "model is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.ts = "2026-03-15T\xff", "ts is not UTF-8 of at most 1024 bytes");
    REFUSED(rec.guard_rule = "", "guard_rule is not of 1 to 64 bytes");
    char long_rule[TG_USAGE_GUARD_RULE_MAX + 2];
    memset(long_rule, 'r', TG_USAGE_GUARD_RULE_MAX + 1);
    long_rule[TG_USAGE_GUARD_RULE_MAX + 1] = '\0';
    REFUSED(rec.guard_rule = long_rule, "guard_rule is not of 1 to 64 bytes");
    REFUSED(rec.guard_rule = "rule\xff", "guard_rule is not UTF-8 of at most 1024 bytes");
#undef REFUSED
}

/* The record's JSON: "guard_rule" only when there is one, so the others read as before. */
static void test_record_json_guard_rule(void **state)
{
    (void)state;
    struct tg_usage_record rec = good_record();
    json_t *o = tg_usage_record_json(&rec, SIZE_MAX);
    assert_non_null(o);
    assert_null(json_object_get(o, "guard_rule"));
    assert_string_equal(json_string_value(json_object_get(o, "outcome")), "ok");
    json_decref(o);
    rec.outcome = "blocked";
    rec.guard_rule = "aws_access_key";
    o = tg_usage_record_json(&rec, SIZE_MAX);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "guard_rule")), "aws_access_key");
    json_decref(o);
    /* cut like the other strings for the dead letter; a whole one that is not UTF-8 fails */
    rec.guard_rule = "rule_\xff_name";
    o = tg_usage_record_json(&rec, 8);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "guard_rule")), "rule_\\xFF_n");
    json_decref(o);
    assert_null(tg_usage_record_json(&rec, SIZE_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_usd),
        cmocka_unit_test(test_format_usd_negative),
        cmocka_unit_test(test_format_usd_extremes),
        cmocka_unit_test(test_format_usd_small_buffer),
        cmocka_unit_test(test_total),
        cmocka_unit_test(test_record_check),
        cmocka_unit_test(test_record_check_refusals),
        cmocka_unit_test(test_record_json_guard_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
