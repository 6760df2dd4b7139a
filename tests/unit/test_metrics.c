/*
 * test_metrics.c — the pure parts of metrics.c on a table in ordinary memory
 * (the same structure the workers share in shm): label escaping, exact dollar
 * and second formatting, histogram bucket placement, the overflow series when
 * the table is full, and the metrics section of the config (allow, token).
 * Recording from a live request, access over HTTP and the sum over worker
 * processes are the integration suite's (test_metrics.py).
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

#include "config.h"
#include "metrics.h"
#include "prom.h"

/* ---- helpers ---- */

static int table_setup(void **state)
{
    struct tg_shm_metrics *m = malloc(sizeof(*m));
    if (m == NULL || tg_metrics_table_init(m) != TG_OK) {
        free(m);
        return -1;
    }
    *state = m;
    return 0;
}

static int table_teardown(void **state)
{
    free(*state);
    return 0;
}

static struct tg_metrics_sample sample(const char *key, const char *model, int code)
{
    return (struct tg_metrics_sample){
        .api_key_id = key,
        .user_id = "alice",
        .group_id = "research",
        .model = model,
        .provider = "anthropic",
        .code = code,
        .cost_micros = -1,
        .duration_micros = 1000,
        .upstream_micros = -1,
        .first_token_micros = -1,
    };
}

/* The exposition of m; the caller frees it. */
static char *render(struct tg_shm_metrics *m)
{
    size_t len = 0;
    char *text = tg_metrics_render(m, 0, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* Fails unless text has line (a whole line) exactly once. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line), count = 0;
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            count++;
    if (count != 1)
        fail_msg("want the line once, found it %zu times: %s\n--- in ---\n%s", count, line, text);
}

static void assert_no(const char *text, const char *part)
{
    if (strstr(text, part) != NULL)
        fail_msg("did not want \"%s\" in:\n%s", part, text);
}

/* ---- escaping and formatting ---- */

static void assert_escaped(const char *value, const char *want)
{
    char out[64];
    size_t need = tg_prom_escape_label(value, out, sizeof(out));
    assert_string_equal(out, want);
    assert_int_equal(need, strlen(want));
}

static void test_escape_label(void **state)
{
    (void)state;
    assert_escaped("", "");
    assert_escaped("plain-id_1.2@x:y", "plain-id_1.2@x:y");
    assert_escaped("back\\slash", "back\\\\slash");
    assert_escaped("say \"hi\"", "say \\\"hi\\\"");
    assert_escaped("two\nlines", "two\\nlines");
    assert_escaped("\\\"\n", "\\\\\\\"\\n");
    assert_escaped("tab\tand {curly},=", "tab\tand {curly},="); /* only \\ \" \n are special */
}

static void test_escape_label_truncates(void **state)
{
    (void)state;
    char out[5];
    memset(out, '#', sizeof(out));
    size_t need = tg_prom_escape_label("a\"b\"c", out, sizeof(out));
    assert_int_equal(need, 7); /* a\"b\"c */
    assert_string_equal(out, "a\\\"b");
    assert_int_equal(tg_prom_escape_label("abc", NULL, 0), 3);
}

static void test_format_seconds(void **state)
{
    (void)state;
    char out[32];
    tg_prom_format_seconds(0, out, sizeof(out));
    assert_string_equal(out, "0.000000");
    tg_prom_format_seconds(1234, out, sizeof(out));
    assert_string_equal(out, "0.001234");
    tg_prom_format_seconds(60000000, out, sizeof(out));
    assert_string_equal(out, "60.000000");
    tg_prom_format_seconds(UINT64_MAX, out, sizeof(out));
    assert_string_equal(out, "18446744073709.551615");
}

static void test_cost_is_exact(void **state)
{
    struct tg_shm_metrics *m = *state;
    /* 0.1 + 0.2 in micro-dollars: a double would print 0.30000000000000004 */
    struct tg_metrics_sample s = sample("tg-AbCdEfGh", "claude-sonnet-4-5", 200);
    s.tokens[TG_TOKENS_INPUT] = 10;
    s.cost_micros = 100000;
    assert_int_equal(tg_metrics_add(m, 100, &s), TG_OK);
    s.cost_micros = 200000;
    assert_int_equal(tg_metrics_add(m, 100, &s), TG_OK);
    s.cost_micros = 1234; /* 0.001234 */
    s.code = 502;         /* another series, the same identity: costs are summed over codes */
    assert_int_equal(tg_metrics_add(m, 100, &s), TG_OK);
    s.cost_micros = -1; /* not settled: counted as a request, adds no cost */
    assert_int_equal(tg_metrics_add(m, 100, &s), TG_OK);
    struct tg_metrics_sample big = sample("tg-Zzzzzzzz", "claude-sonnet-4-5", 200);
    big.cost_micros = INT64_C(123456789012); /* $123,456.789012 */
    assert_int_equal(tg_metrics_add(m, 100, &big), TG_OK);
    char *text = render(m);
    assert_line(text, "tollgate_cost_usd_total{api_key_id=\"tg-AbCdEfGh\",user_id=\"alice\","
                      "group_id=\"research\",model=\"claude-sonnet-4-5\",provider=\"anthropic\"} "
                      "0.301234");
    assert_line(text, "tollgate_cost_usd_total{api_key_id=\"tg-Zzzzzzzz\",user_id=\"alice\","
                      "group_id=\"research\",model=\"claude-sonnet-4-5\",provider=\"anthropic\"} "
                      "123456.789012");
    assert_line(text, "tollgate_requests_total{api_key_id=\"tg-AbCdEfGh\",user_id=\"alice\","
                      "group_id=\"research\",model=\"claude-sonnet-4-5\",provider=\"anthropic\","
                      "code=\"200\"} 2");
    assert_line(text, "tollgate_requests_total{api_key_id=\"tg-AbCdEfGh\",user_id=\"alice\","
                      "group_id=\"research\",model=\"claude-sonnet-4-5\",provider=\"anthropic\","
                      "code=\"502\"} 2");
    free(text);
}

static void test_tokens_by_type(void **state)
{
    struct tg_shm_metrics *m = *state;
    struct tg_metrics_sample s = sample("", "claude-haiku-4-5-20251001", 200);
    s.user_id = "jwt-user"; /* a JWT caller: no key, api_key_id="" */
    s.tokens[TG_TOKENS_INPUT] = 1000;
    s.tokens[TG_TOKENS_OUTPUT] = 200;
    s.tokens[TG_TOKENS_CACHE_READ] = 30;
    s.tokens[TG_TOKENS_CACHE_WRITE] = 4;
    tg_metrics_add(m, 100, &s);
    tg_metrics_add(m, 100, &s);
    struct tg_metrics_sample refused = sample(NULL, NULL, 401); /* nothing known */
    refused.user_id = refused.group_id = refused.provider = NULL;
    tg_metrics_add(m, 100, &refused);
    char *text = render(m);
    const char *labels = "{api_key_id=\"\",user_id=\"jwt-user\",group_id=\"research\","
                         "model=\"claude-haiku-4-5-20251001\",provider=\"anthropic\"";
    char line[512];
    static const char *const types[] = {"input", "output", "cache_read", "cache_write"};
    static const int want[] = {2000, 400, 60, 8};
    for (int i = 0; i < 4; i++) {
        snprintf(line, sizeof(line), "tollgate_tokens_consumed_total%s,type=\"%s\"} %d", labels,
                 types[i], want[i]);
        assert_line(text, line);
    }
    assert_line(text, "tollgate_requests_total{api_key_id=\"\",user_id=\"\",group_id=\"\","
                      "model=\"\",provider=\"\",code=\"401\"} 1");
    /* a label set that used no tokens has no token or cost series */
    assert_no(text, "tollgate_tokens_consumed_total{api_key_id=\"\",user_id=\"\"");
    assert_no(text, "tollgate_cost_usd_total{api_key_id=\"\",user_id=\"\"");
    free(text);
}

static void test_escaped_in_output(void **state)
{
    struct tg_shm_metrics *m = *state;
    struct tg_metrics_sample s = sample("tg-AbCdEfGh", "m", 200);
    s.user_id = "evil\"} 1\nfake_metric{a=\"\\";
    tg_metrics_add(m, 100, &s);
    char *text = render(m);
    assert_line(text, "tollgate_requests_total{api_key_id=\"tg-AbCdEfGh\","
                      "user_id=\"evil\\\"} 1\\nfake_metric{a=\\\"\\\\\",group_id=\"research\","
                      "model=\"m\",provider=\"anthropic\",code=\"200\"} 1");
    assert_no(text, "\nfake_metric");
    free(text);
}

/* ---- histograms ---- */

static void test_bucket_placement(void **state)
{
    (void)state;
    assert_int_equal(tg_prom_bucket(-5), 0);
    assert_int_equal(tg_prom_bucket(0), 0);
    assert_int_equal(tg_prom_bucket(5000), 0); /* le: the bound itself is inside */
    assert_int_equal(tg_prom_bucket(5001), 1);
    assert_int_equal(tg_prom_bucket(10000), 1);
    assert_int_equal(tg_prom_bucket(999999), 7);
    assert_int_equal(tg_prom_bucket(1000000), 7); /* le="1" */
    assert_int_equal(tg_prom_bucket(1000001), 8);
    assert_int_equal(tg_prom_bucket(60000000), 12);                           /* le="60" */
    assert_int_equal(tg_prom_bucket(60000001), TG_SHM_HISTOGRAM_BUCKETS - 1); /* +Inf */
    assert_int_equal(tg_prom_bucket(INT64_MAX), TG_SHM_HISTOGRAM_BUCKETS - 1);
}

static void test_histogram_output(void **state)
{
    struct tg_shm_metrics *m = *state;
    static const int64_t durations[] = {3000, 5000, 7000, 1000000, 75000000};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        struct tg_metrics_sample s = sample("tg-AbCdEfGh", "m", 200);
        s.duration_micros = durations[i];
        s.upstream_micros = i < 2 ? 1500 : -1; /* two requests called a provider */
        s.first_token_micros = i == 0 ? 250000 : -1;
        tg_metrics_add(m, 100, &s);
    }
    char *text = render(m);
    assert_line(text, "# TYPE tollgate_request_duration_seconds histogram");
    assert_line(text, "tollgate_request_duration_seconds_bucket{le=\"0.005\"} 2");
    assert_line(text, "tollgate_request_duration_seconds_bucket{le=\"0.01\"} 3");
    assert_line(text, "tollgate_request_duration_seconds_bucket{le=\"0.5\"} 3");
    assert_line(text, "tollgate_request_duration_seconds_bucket{le=\"1\"} 4");
    assert_line(text, "tollgate_request_duration_seconds_bucket{le=\"60\"} 4");
    assert_line(text, "tollgate_request_duration_seconds_bucket{le=\"+Inf\"} 5");
    assert_line(text, "tollgate_request_duration_seconds_sum 76.015000");
    assert_line(text, "tollgate_request_duration_seconds_count 5");
    assert_line(text, "tollgate_upstream_duration_seconds_bucket{le=\"0.005\"} 2");
    assert_line(text, "tollgate_upstream_duration_seconds_sum 0.003000");
    assert_line(text, "tollgate_upstream_duration_seconds_count 2");
    assert_line(text, "tollgate_time_to_first_token_seconds_bucket{le=\"0.1\"} 0");
    assert_line(text, "tollgate_time_to_first_token_seconds_bucket{le=\"0.25\"} 1");
    assert_line(text, "tollgate_time_to_first_token_seconds_sum 0.250000");
    assert_line(text, "tollgate_time_to_first_token_seconds_count 1");
    free(text);
}

static void test_rejections(void **state)
{
    struct tg_shm_metrics *m = *state;
    struct tg_metrics_sample s = sample("tg-AbCdEfGh", "m", 429);
    s.rejected_quota = true;
    tg_metrics_add(m, 100, &s);
    tg_metrics_add(m, 100, &s);
    s.rejected_quota = false;
    s.rejected_bucket = true;
    tg_metrics_add(m, 100, &s);
    size_t len;
    char *text = tg_metrics_render(m, 7, &len);
    assert_non_null(text);
    assert_line(text, "tollgate_ratelimit_rejections_total{limit=\"quota\"} 2");
    assert_line(text, "tollgate_ratelimit_rejections_total{limit=\"bucket\"} 1");
    assert_line(text, "tollgate_quota_alerts_total 7");
    assert_line(text, "# TYPE tollgate_quota_alerts_total counter");
    free(text);
}

/* ---- cardinality ---- */

static void test_overflow_when_full(void **state)
{
    struct tg_shm_metrics *m = *state;
    struct tg_metrics_sample a = sample("tg-AAAAAAAA", "m", 200);
    struct tg_metrics_sample b = sample("tg-BBBBBBBB", "m", 200);
    struct tg_metrics_sample c = sample("tg-CCCCCCCC", "m", 200);
    struct tg_metrics_sample d = sample("tg-AAAAAAAA", "m", 500); /* a new code: a new set */
    a.tokens[TG_TOKENS_OUTPUT] = c.tokens[TG_TOKENS_OUTPUT] = d.tokens[TG_TOKENS_OUTPUT] = 5;
    c.cost_micros = 42;
    assert_int_equal(tg_metrics_add(m, 2, &a), TG_OK);
    assert_int_equal(tg_metrics_add(m, 2, &b), TG_OK);
    assert_int_equal(tg_metrics_add(m, 2, &c), TG_OK); /* full: overflow */
    assert_int_equal(tg_metrics_add(m, 2, &d), TG_OK); /* overflow */
    assert_int_equal(tg_metrics_add(m, 2, &a), TG_OK); /* known sets keep counting */
    assert_int_equal(tg_metrics_add(m, 2, &c), TG_OK);
    assert_int_equal(m->n_series, 2);
    char *text = render(m);
    assert_line(text, "tollgate_requests_total{api_key_id=\"tg-AAAAAAAA\",user_id=\"alice\","
                      "group_id=\"research\",model=\"m\",provider=\"anthropic\",code=\"200\"} 2");
    assert_line(text, "tollgate_requests_total{api_key_id=\"tg-BBBBBBBB\",user_id=\"alice\","
                      "group_id=\"research\",model=\"m\",provider=\"anthropic\",code=\"200\"} 1");
    assert_line(text, "tollgate_requests_total{api_key_id=\"__overflow__\","
                      "user_id=\"__overflow__\",group_id=\"__overflow__\",model=\"__overflow__\","
                      "provider=\"__overflow__\",code=\"__overflow__\"} 3");
    assert_line(text, "tollgate_tokens_consumed_total{api_key_id=\"__overflow__\","
                      "user_id=\"__overflow__\",group_id=\"__overflow__\",model=\"__overflow__\","
                      "provider=\"__overflow__\",type=\"output\"} 15");
    assert_line(text, "tollgate_cost_usd_total{api_key_id=\"__overflow__\","
                      "user_id=\"__overflow__\",group_id=\"__overflow__\",model=\"__overflow__\","
                      "provider=\"__overflow__\"} 0.000084");
    assert_no(text, "tg-CCCCCCCC");
    assert_line(text, "tollgate_metrics_series 2");
    free(text);
}

static void test_overflow_for_long_values(void **state)
{
    struct tg_shm_metrics *m = *state;
    char long_id[TG_SHM_LABEL_ID + 1];
    memset(long_id, 'u', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    struct tg_metrics_sample s = sample("tg-AbCdEfGh", "m", 200);
    s.user_id = long_id; /* one past what the field holds: never truncated */
    tg_metrics_add(m, 100, &s);
    long_id[TG_SHM_LABEL_ID - 1] = '\0'; /* 128 characters fit */
    tg_metrics_add(m, 100, &s);
    assert_int_equal(m->n_series, 1);
    assert_int_equal(m->overflow.requests, 1);
    char *text = render(m);
    assert_non_null(strstr(text, long_id));
    free(text);
}

static void test_many_series(void **state)
{
    struct tg_shm_metrics *m = *state;
    char key[16];
    /* a full table of the largest size: every set found again, none lost */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < TG_SHM_SERIES + 10; i++) {
            snprintf(key, sizeof(key), "tg-%08d", i);
            struct tg_metrics_sample s = sample(key, "m", 200);
            assert_int_equal(tg_metrics_add(m, TG_SHM_SERIES, &s), TG_OK);
        }
    }
    assert_int_equal(m->n_series, TG_SHM_SERIES);
    assert_int_equal(m->overflow.requests, 20);
    uint64_t total = m->overflow.requests;
    for (uint32_t i = 0; i < m->n_series; i++) {
        assert_int_equal(m->series[i].requests, 2);
        total += m->series[i].requests;
    }
    assert_int_equal(total, 2 * (TG_SHM_SERIES + 10));
    char *text = render(m);
    free(text);
}

/* ---- the config section ---- */

static const char base_config[] =
    "{\"database\": {\"url\": \"postgresql://tollgate@localhost/tollgate\"},"
    " \"providers\": {\"anthropic\": {\"type\": \"anthropic\","
    " \"base_url\": \"https://api.anthropic.com\", \"api_key\": \"sk-test\"}},"
    " \"models\": {\"claude-sonnet-4-5\": {\"provider\": \"anthropic\"}}%s%s}";

/* Parses the base config with metrics section (NULL: none); err gets the message. */
static struct tg_config *parse(const char *metrics, char *err, size_t err_size)
{
    char text[2048];
    snprintf(text, sizeof(text), base_config, metrics != NULL ? ", \"metrics\": " : "",
             metrics != NULL ? metrics : "");
    struct tg_config *c = NULL;
    if (tg_config_parse(text, &c, err, err_size) != TG_OK)
        return NULL;
    return c;
}

static void test_config_default(void **state)
{
    (void)state;
    char err[512];
    struct tg_config *c = parse(NULL, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->metrics_max_series, 2000);
    assert_false(c->metrics_token_set);
    assert_true(tg_metrics_address_allowed(c, "127.0.0.1"));
    assert_true(tg_metrics_address_allowed(c, "::1"));
    assert_true(tg_metrics_address_allowed(c, "::ffff:127.0.0.1"));
    assert_false(tg_metrics_address_allowed(c, "127.0.0.2"));
    assert_false(tg_metrics_address_allowed(c, "10.1.2.3"));
    assert_false(tg_metrics_address_allowed(c, "::2"));
    assert_false(tg_metrics_address_allowed(c, NULL));
    assert_false(tg_metrics_address_allowed(c, "localhost"));
    assert_false(tg_metrics_address_allowed(c, ""));
    tg_config_free(c);
}

static void test_config_networks(void **state)
{
    (void)state;
    char err[512];
    struct tg_config *c = parse("{\"max_series\": 50, \"allow\": [\"10.0.0.0/8\", "
                                "\"192.168.1.7\", \"fd00::/8\", \"172.16.0.0/12\"], "
                                "\"token\": \"0123456789abcdef\"}",
                                err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->metrics_max_series, 50);
    assert_true(c->metrics_token_set);
    assert_true(tg_metrics_address_allowed(c, "10.255.0.1"));
    assert_true(tg_metrics_address_allowed(c, "::ffff:10.0.0.1"));
    assert_true(tg_metrics_address_allowed(c, "192.168.1.7"));
    assert_false(tg_metrics_address_allowed(c, "192.168.1.8"));
    assert_true(tg_metrics_address_allowed(c, "fd12:3456::1"));
    assert_false(tg_metrics_address_allowed(c, "fe80::1"));
    assert_true(tg_metrics_address_allowed(c, "172.31.255.255"));
    assert_false(tg_metrics_address_allowed(c, "172.32.0.0"));
    assert_false(tg_metrics_address_allowed(c, "127.0.0.1")); /* allow replaces the default */
    tg_config_free(c);
}

static void assert_refused(const char *metrics, const char *want)
{
    char err[512];
    struct tg_config *c = parse(metrics, err, sizeof(err));
    if (c != NULL) {
        tg_config_free(c);
        fail_msg("config with metrics %s loaded; want \"%s\"", metrics, want);
    }
    assert_string_equal(err, want);
}

static void test_config_refused(void **state)
{
    (void)state;
    assert_refused("{\"allow\": [\"10.0.0.0/33\"]}",
                   "config: metrics.allow[0]: \"10.0.0.0/33\" is not an IP address or network "
                   "(\"10.0.0.0/8\")");
    assert_refused("{\"allow\": [\"127.0.0.1\", \"localhost\"]}",
                   "config: metrics.allow[1]: \"localhost\" is not an IP address or network "
                   "(\"10.0.0.0/8\")");
    assert_refused("{\"allow\": [\"::1/\"]}", "config: metrics.allow[0]: \"::1/\" is not an IP "
                                              "address or network (\"10.0.0.0/8\")");
    assert_refused("{\"allow\": [1]}", "config: metrics.allow[0]: must be a string");
    assert_refused("{\"allow\": \"127.0.0.1\"}",
                   "config: metrics.allow: must be an array of addresses");
    assert_refused("{\"token\": \"short\"}",
                   "config: metrics.token: must be at least 16 characters long");
    assert_refused("{\"token\": \"$TG_UNIT_METRICS_TOKEN_UNSET\"}",
                   "config: metrics.token: environment variable \"TG_UNIT_METRICS_TOKEN_UNSET\" "
                   "is not set");
    assert_refused("{\"allow\": []}",
                   "config: metrics: needs an address in \"allow\" or a \"token\": nobody could "
                   "read it");
    assert_refused("{\"max_series\": 0}", "config: metrics.max_series: must be between 1 and 4096");
    assert_refused("{\"max_series\": 5000}",
                   "config: metrics.max_series: must be between 1 and 4096");
    assert_refused("{\"tokens\": \"0123456789abcdef\"}", "config: metrics.tokens: unknown field");
}

static void test_config_token_only(void **state)
{
    (void)state;
    char err[512];
    setenv("TG_UNIT_METRICS_TOKEN", "a-metrics-token-from-the-env", 1);
    struct tg_config *c =
        parse("{\"allow\": [], \"token\": \"$TG_UNIT_METRICS_TOKEN\"}", err, sizeof(err));
    unsetenv("TG_UNIT_METRICS_TOKEN");
    assert_non_null(c);
    assert_true(c->metrics_token_set);
    assert_int_equal(c->n_metrics_allow, 0);
    assert_false(tg_metrics_address_allowed(c, "127.0.0.1"));
    tg_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_label),
        cmocka_unit_test(test_escape_label_truncates),
        cmocka_unit_test(test_format_seconds),
        cmocka_unit_test_setup_teardown(test_cost_is_exact, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_tokens_by_type, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_escaped_in_output, table_setup, table_teardown),
        cmocka_unit_test(test_bucket_placement),
        cmocka_unit_test_setup_teardown(test_histogram_output, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_rejections, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_when_full, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_for_long_values, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_many_series, table_setup, table_teardown),
        cmocka_unit_test(test_config_default),
        cmocka_unit_test(test_config_networks),
        cmocka_unit_test(test_config_refused),
        cmocka_unit_test(test_config_token_only),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
