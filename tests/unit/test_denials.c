/*
 * test_denials.c — denials.c: which answers count as refusals, UTC day keys,
 * one counter per key, the overflow counter when a table is full, the JSON
 * batch, and the process's flush: the swap, a batch kept (same id, same rows)
 * while the database is down, and a refused batch dropped.
 *
 * The database call is replaced by __wrap_tg_db_denials_add (the test links
 * with -Wl,--wrap=tg_db_denials_add), which records each batch and answers
 * what the test queued with will_return. The upsert itself is tested in
 * tests/sql/240_denials.sql, the whole path in test_denials.py.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "denials.h"
#include "request.h"

/* 2026-03-15T00:00:00Z */
#define MARCH_15 ((time_t)1773532800)

/* ---- the stand-in for the database ---- */

#define MAX_CALLS 8
static struct {
    char batch_id[37];
    char *rows;
} calls[MAX_CALLS];
static int n_calls;

int __wrap_tg_db_denials_add(const char *batch_id, const char *rows_json);

int __wrap_tg_db_denials_add(const char *batch_id, const char *rows_json)
{
    assert_true(n_calls < MAX_CALLS);
    snprintf(calls[n_calls].batch_id, sizeof(calls[n_calls].batch_id), "%s", batch_id);
    calls[n_calls].rows = strdup(rows_json);
    n_calls++;
    return (int)mock();
}

static void forget_calls(void)
{
    for (int i = 0; i < n_calls; i++)
        free(calls[i].rows);
    n_calls = 0;
}

/* Every test starts and ends with nothing unsent and no call recorded. */
static int process_setup(void **state)
{
    (void)state;
    forget_calls();
    return tg_denials_unsent() == 0 ? 0 : -1;
}

static int process_teardown(void **state)
{
    (void)state;
    forget_calls();
    return 0;
}

static int table_setup(void **state)
{
    struct tg_denials_table *t = malloc(sizeof(*t));
    if (t == NULL)
        return -1;
    tg_denials_table_clear(t);
    *state = t;
    return 0;
}

static int table_teardown(void **state)
{
    free(*state);
    return 0;
}

/* ---- helpers ---- */

static struct tg_denials_key key(const char *group, const char *user, int64_t api_key_id,
                                 const char *reason, int status)
{
    return (struct tg_denials_key){
        .day = tg_denials_day(MARCH_15),
        .group_id = group,
        .user_id = user,
        .api_key_id = api_key_id,
        .reason = reason,
        .http_status = status,
    };
}

static bool same_string(json_t *value, const char *want)
{
    return want == NULL ? json_is_null(value)
                        : json_is_string(value) && strcmp(json_string_value(value), want) == 0;
}

/*
 * The requests of the row of rows (JSON text) with that day, group, user, key
 * (0: null), reason and status; 0 when there is none. Fails on a duplicate.
 */
static int64_t row_requests(const char *rows, const char *day, const char *group, const char *user,
                            int64_t api_key_id, const char *reason, int status)
{
    json_error_t err;
    json_t *doc = json_loads(rows, 0, &err);
    if (doc == NULL || !json_is_array(doc))
        fail_msg("not a JSON array: %s", rows);
    int64_t found = 0;
    int matches = 0;
    size_t i;
    json_t *row;
    json_array_foreach(doc, i, row) {
        assert_int_equal(json_object_size(row), 7);
        json_t *key_id = json_object_get(row, "api_key_id");
        bool same_key =
            api_key_id == 0 ? json_is_null(key_id) : json_integer_value(key_id) == api_key_id;
        if (same_string(json_object_get(row, "day"), day) &&
            same_string(json_object_get(row, "group_id"), group) &&
            same_string(json_object_get(row, "user_id"), user) && same_key &&
            same_string(json_object_get(row, "reason"), reason) &&
            json_integer_value(json_object_get(row, "http_status")) == status) {
            found = json_integer_value(json_object_get(row, "requests"));
            matches++;
        }
    }
    json_decref(doc);
    if (matches > 1)
        fail_msg("%d rows for one key in %s", matches, rows);
    return found;
}

static size_t row_count(const char *rows)
{
    json_t *doc = json_loads(rows, 0, NULL);
    assert_non_null(doc);
    size_t n = json_array_size(doc);
    json_decref(doc);
    return n;
}

/* A request answered with status, after the pipeline: outcome, identity. */
static void answer(int status, const char *outcome, const char *group, const char *user,
                   int64_t api_key_id, bool upstream_contacted, int times)
{
    struct tg_request r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.outcome = outcome;
    r.identity.group_id = group;
    r.identity.user_id = user;
    r.identity.api_key_id = api_key_id;
    r.upstream_contacted = upstream_contacted;
    for (int i = 0; i < times; i++)
        tg_denials_record(&r);
}

/* ---- which answers count ---- */

static void test_counts(void **state)
{
    (void)state;
    assert_true(tg_denials_counts(401, false, "rejected"));
    assert_true(tg_denials_counts(403, false, "rejected"));
    assert_true(tg_denials_counts(400, false, "rejected"));
    assert_true(tg_denials_counts(429, false, "quota_exceeded"));
    assert_true(tg_denials_counts(429, false, "rate_limited"));
    assert_true(tg_denials_counts(503, false, "database_unavailable"));
    assert_true(tg_denials_counts(404, false, "ok"));
    /* answered fine, or not answered at all */
    assert_false(tg_denials_counts(200, false, "ok"));
    assert_false(tg_denials_counts(399, false, "rejected"));
    assert_false(tg_denials_counts(0, false, "rejected"));
    /* the provider answered, or was tried: those write a usage row */
    assert_false(tg_denials_counts(429, true, "upstream_error"));
    assert_false(tg_denials_counts(500, true, "ok"));
    assert_false(tg_denials_counts(502, false, "upstream_unreachable"));
    assert_false(tg_denials_counts(504, false, "upstream_timeout"));
    assert_false(tg_denials_counts(502, false, "upstream_error"));
    assert_false(tg_denials_counts(499, false, "client_disconnected"));
}

/* ---- day keys ---- */

static void test_day(void **state)
{
    (void)state;
    assert_int_equal(tg_denials_day(0), 0);
    assert_int_equal(tg_denials_day(86399), 0);
    assert_int_equal(tg_denials_day(86400), 1);
    assert_int_equal(tg_denials_day(MARCH_15 - 1), tg_denials_day(MARCH_15) - 1);
    assert_int_equal(tg_denials_day(MARCH_15 + 86399), tg_denials_day(MARCH_15));
    assert_int_equal(tg_denials_day(-1), -1);
    assert_int_equal(tg_denials_day(-86400), -1);
    assert_int_equal(tg_denials_day(-86401), -2);
}

static void test_day_keys(void **state)
{
    struct tg_denials_table *t = *state;
    struct tg_denials_key k = key("eng", "alice", 7, "rejected", 403);
    k.day = tg_denials_day(MARCH_15 - 1); /* 23:59:59 the day before */
    assert_int_equal(tg_denials_table_add(t, &k, 2), TG_OK);
    k.day = tg_denials_day(MARCH_15);
    assert_int_equal(tg_denials_table_add(t, &k, 3), TG_OK);
    k.day = tg_denials_day(MARCH_15 + 86399);
    assert_int_equal(tg_denials_table_add(t, &k, 4), TG_OK);
    /* New Year's Eve in UTC, and a leap day */
    k.day = tg_denials_day((time_t)1798761599); /* 2026-12-31T23:59:59Z */
    assert_int_equal(tg_denials_table_add(t, &k, 5), TG_OK);
    k.day = tg_denials_day((time_t)1709164800); /* 2024-02-29T00:00:00Z */
    assert_int_equal(tg_denials_table_add(t, &k, 6), TG_OK);
    assert_int_equal(t->n_keys, 4);
    char *rows = tg_denials_table_json(t);
    assert_non_null(rows);
    assert_int_equal(row_count(rows), 4);
    assert_int_equal(row_requests(rows, "2026-03-14", "eng", "alice", 7, "rejected", 403), 2);
    assert_int_equal(row_requests(rows, "2026-03-15", "eng", "alice", 7, "rejected", 403), 7);
    assert_int_equal(row_requests(rows, "2026-12-31", "eng", "alice", 7, "rejected", 403), 5);
    assert_int_equal(row_requests(rows, "2024-02-29", "eng", "alice", 7, "rejected", 403), 6);
    free(rows);
}

/* ---- one counter per key ---- */

static void test_counting(void **state)
{
    struct tg_denials_table *t = *state;
    struct tg_denials_key keys[] = {
        key("eng", "alice", 7, "quota_exceeded", 429),
        key("eng", "alice", 7, "rate_limited", 429),   /* another reason */
        key("eng", "alice", 7, "quota_exceeded", 503), /* another status */
        key("eng", "alice", 8, "quota_exceeded", 429), /* another key */
        key("eng", "bob", 7, "quota_exceeded", 429),   /* another user */
        key("ops", "alice", 7, "quota_exceeded", 429), /* another group */
        key("eng", "alice", 0, "quota_exceeded", 429), /* no key (a JWT) */
        key(NULL, NULL, 0, "rejected", 401),           /* nobody known */
        /* ids that would run together if they were concatenated */
        key("ab", "c", 0, "rejected", 403),
        key("a", "bc", 0, "rejected", 403),
    };
    for (size_t round = 1; round <= 3; round++)
        for (size_t i = 0; i < TG_ARRAY_LEN(keys); i++)
            assert_int_equal(tg_denials_table_add(t, &keys[i], i + 1), TG_OK);
    /* "" and NULL are both "none" */
    struct tg_denials_key empty = key("", "", 0, "rejected", 401);
    assert_int_equal(tg_denials_table_add(t, &empty, 100), TG_OK);
    /* a NULL reason is "rejected" */
    struct tg_denials_key no_reason = key("ab", "c", 0, NULL, 403);
    assert_int_equal(tg_denials_table_add(t, &no_reason, 1000), TG_OK);

    assert_int_equal(t->n_keys, TG_ARRAY_LEN(keys));
    assert_int_equal(t->overflow.requests, 0);
    assert_int_equal(tg_denials_table_total(t), 3 * 55 + 100 + 1000);
    char *rows = tg_denials_table_json(t);
    assert_non_null(rows);
    const char *d = "2026-03-15";
    assert_int_equal(row_count(rows), TG_ARRAY_LEN(keys));
    assert_int_equal(row_requests(rows, d, "eng", "alice", 7, "quota_exceeded", 429), 3);
    assert_int_equal(row_requests(rows, d, "eng", "alice", 7, "rate_limited", 429), 6);
    assert_int_equal(row_requests(rows, d, "eng", "alice", 7, "quota_exceeded", 503), 9);
    assert_int_equal(row_requests(rows, d, "eng", "alice", 8, "quota_exceeded", 429), 12);
    assert_int_equal(row_requests(rows, d, "eng", "bob", 7, "quota_exceeded", 429), 15);
    assert_int_equal(row_requests(rows, d, "ops", "alice", 7, "quota_exceeded", 429), 18);
    assert_int_equal(row_requests(rows, d, "eng", "alice", 0, "quota_exceeded", 429), 21);
    assert_int_equal(row_requests(rows, d, NULL, NULL, 0, "rejected", 401), 24 + 100);
    assert_int_equal(row_requests(rows, d, "ab", "c", 0, "rejected", 403), 27 + 1000);
    assert_int_equal(row_requests(rows, d, "a", "bc", 0, "rejected", 403), 30);
    free(rows);
}

static void test_json_escapes(void **state)
{
    struct tg_denials_table *t = *state;
    struct tg_denials_key k = key("we\"ird\\gr\noup", "ü-ser", 1, "rejected", 400);
    assert_int_equal(tg_denials_table_add(t, &k, 1), TG_OK);
    char *rows = tg_denials_table_json(t);
    assert_non_null(rows);
    assert_int_equal(
        row_requests(rows, "2026-03-15", "we\"ird\\gr\noup", "ü-ser", 1, "rejected", 400), 1);
    free(rows);
    tg_denials_table_clear(t);
    rows = tg_denials_table_json(t);
    assert_string_equal(rows, "[]");
    free(rows);
}

/* ---- the overflow counter ---- */

static void test_overflow_when_full(void **state)
{
    struct tg_denials_table *t = *state;
    char user[32];
    for (int i = 0; i < TG_DENIALS_MAX_KEYS; i++) {
        snprintf(user, sizeof(user), "user-%d", i);
        struct tg_denials_key k = key("eng", user, i + 1, "quota_exceeded", 429);
        assert_int_equal(tg_denials_table_add(t, &k, 1), TG_OK);
    }
    assert_int_equal(t->n_keys, TG_DENIALS_MAX_KEYS);
    /* full: a new key goes to the overflow, on whatever day it comes */
    struct tg_denials_key fresh = key("ops", "carol", 0, "rejected", 403);
    assert_int_equal(tg_denials_table_add(t, &fresh, 5), TG_DECLINED);
    fresh.day += 1;
    fresh.http_status = 401;
    assert_int_equal(tg_denials_table_add(t, &fresh, 2), TG_DECLINED);
    /* a key already there still counts as itself */
    struct tg_denials_key known = key("eng", "user-17", 18, "quota_exceeded", 429);
    assert_int_equal(tg_denials_table_add(t, &known, 10), TG_OK);
    assert_int_equal(t->n_keys, TG_DENIALS_MAX_KEYS);
    assert_int_equal(t->overflow.requests, 7);
    assert_int_equal(tg_denials_table_total(t), TG_DENIALS_MAX_KEYS + 7 + 10);

    char *rows = tg_denials_table_json(t);
    assert_non_null(rows);
    assert_int_equal(row_count(rows), TG_DENIALS_MAX_KEYS + 1);
    assert_int_equal(row_requests(rows, "2026-03-15", "eng", "user-17", 18, "quota_exceeded", 429),
                     11);
    /* the overflow: its first day, nobody, status 0, and last */
    assert_int_equal(row_requests(rows, "2026-03-15", NULL, NULL, 0, TG_DENIALS_OVERFLOW, 0), 7);
    assert_int_equal(row_requests(rows, "2026-03-15", "ops", "carol", 0, "rejected", 403), 0);
    const char *last = strrchr(rows, '{');
    assert_non_null(strstr(last, "\"reason\":\"overflow\""));
    free(rows);
}

static void test_overflow_long_values(void **state)
{
    struct tg_denials_table *t = *state;
    char longest[TG_DENIALS_ID_MAX + 1], too_long[TG_DENIALS_ID_MAX + 2];
    memset(longest, 'g', TG_DENIALS_ID_MAX);
    longest[TG_DENIALS_ID_MAX] = '\0';
    memset(too_long, 'g', TG_DENIALS_ID_MAX + 1);
    too_long[TG_DENIALS_ID_MAX + 1] = '\0';
    struct tg_denials_key fits = key(longest, longest, 1, "rejected", 403);
    assert_int_equal(tg_denials_table_add(t, &fits, 1), TG_OK);
    /* cut short, an id would be charged to someone else: overflow instead */
    struct tg_denials_key group = key(too_long, "alice", 1, "rejected", 403);
    assert_int_equal(tg_denials_table_add(t, &group, 1), TG_DECLINED);
    struct tg_denials_key user = key("eng", too_long, 1, "rejected", 403);
    assert_int_equal(tg_denials_table_add(t, &user, 1), TG_DECLINED);
    struct tg_denials_key reason =
        key("eng", "alice", 1, "a_reason_longer_than_thirty_one_bytes", 403);
    assert_int_equal(tg_denials_table_add(t, &reason, 1), TG_DECLINED);
    assert_int_equal(t->n_keys, 1);
    assert_int_equal(t->overflow.requests, 3);
    char *rows = tg_denials_table_json(t);
    assert_int_equal(row_requests(rows, "2026-03-15", longest, longest, 1, "rejected", 403), 1);
    assert_int_equal(row_requests(rows, "2026-03-15", NULL, NULL, 0, "overflow", 0), 3);
    free(rows);
}

/* ---- the process: record, swap, flush ---- */

static void test_record(void **state)
{
    (void)state;
    answer(401, "rejected", NULL, NULL, 0, false, 7);
    answer(429, "quota_exceeded", "eng", "alice", 7, false, 5);
    answer(403, "rejected", "ops", "bob", 9, false, 3);
    answer(404, "ok", NULL, NULL, 0, false, 2); /* answered without the error record */
    /* not refusals: answered, or the provider was reached or tried */
    answer(200, "ok", "eng", "alice", 7, true, 4);
    answer(429, "upstream_error", "eng", "alice", 7, true, 1);
    answer(502, "upstream_unreachable", "eng", "alice", 7, false, 1);
    answer(0, "rejected", NULL, NULL, 0, false, 1); /* the client left first */
    assert_int_equal(tg_denials_unsent(), 17);

    will_return(__wrap_tg_db_denials_add, TG_OK);
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 1);
    const char *rows = calls[0].rows;
    assert_int_equal(row_count(rows), 4);
    /* the day is today's, in UTC */
    char today[16];
    time_t now = time(NULL);
    struct tm tm;
    strftime(today, sizeof(today), "%Y-%m-%d", gmtime_r(&now, &tm));
    assert_int_equal(row_requests(rows, today, NULL, NULL, 0, "rejected", 401), 7);
    assert_int_equal(row_requests(rows, today, "eng", "alice", 7, "quota_exceeded", 429), 5);
    assert_int_equal(row_requests(rows, today, "ops", "bob", 9, "rejected", 403), 3);
    assert_int_equal(row_requests(rows, today, NULL, NULL, 0, "rejected", 404), 2);
    assert_int_equal(tg_denials_unsent(), 0);

    /* nothing counted since: no statement at all */
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 1);
}

static void test_swap(void **state)
{
    (void)state;
    answer(429, "rate_limited", "eng", "alice", 7, false, 2);
    will_return(__wrap_tg_db_denials_add, TG_OK);
    assert_int_equal(tg_denials_flush(), TG_OK);
    /* counted after the swap: the next batch, under a new id, holding only them */
    answer(429, "rate_limited", "eng", "alice", 7, false, 3);
    assert_int_equal(tg_denials_unsent(), 3);
    will_return(__wrap_tg_db_denials_add, TG_OK);
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 2);
    assert_string_not_equal(calls[0].batch_id, calls[1].batch_id);
    assert_int_equal(strlen(calls[0].batch_id), 36);
    assert_int_equal(row_count(calls[0].rows), 1);
    assert_int_equal(row_count(calls[1].rows), 1);
    assert_non_null(strstr(calls[0].rows, "\"requests\":2"));
    assert_non_null(strstr(calls[1].rows, "\"requests\":3"));
    assert_int_equal(tg_denials_unsent(), 0);
}

static void test_kept_while_database_down(void **state)
{
    (void)state;
    answer(401, "rejected", NULL, NULL, 0, false, 4);
    will_return(__wrap_tg_db_denials_add, TG_ERROR);
    assert_int_equal(tg_denials_flush(), TG_ERROR);
    assert_int_equal(tg_denials_unsent(), 4);
    /* still down: the same batch again, and requests go on counting beside it */
    answer(401, "rejected", NULL, NULL, 0, false, 2);
    will_return(__wrap_tg_db_denials_add, TG_ERROR);
    assert_int_equal(tg_denials_flush(), TG_ERROR);
    assert_int_equal(tg_denials_unsent(), 6);
    /* back: the kept batch as it was (same id: applied once even if resent), then the rest */
    answer(503, "database_unavailable", NULL, NULL, 0, false, 1);
    will_return(__wrap_tg_db_denials_add, TG_OK);
    will_return(__wrap_tg_db_denials_add, TG_OK);
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 4);
    for (int i = 1; i < 3; i++) {
        assert_string_equal(calls[i].batch_id, calls[0].batch_id);
        assert_string_equal(calls[i].rows, calls[0].rows);
    }
    assert_int_equal(row_count(calls[0].rows), 1);
    assert_non_null(strstr(calls[0].rows, "\"requests\":4"));
    assert_string_not_equal(calls[3].batch_id, calls[0].batch_id);
    assert_int_equal(row_count(calls[3].rows), 2);
    assert_non_null(strstr(calls[3].rows, "\"http_status\":401,\"requests\":2"));
    assert_non_null(strstr(calls[3].rows, "\"http_status\":503,\"requests\":1"));
    assert_int_equal(tg_denials_unsent(), 0);
}

static void test_kept_bounded(void **state)
{
    (void)state;
    /* the database is down and new keys keep coming: the live table overflows */
    char user[32];
    for (int i = 0; i < 10; i++) {
        snprintf(user, sizeof(user), "kept-%d", i);
        answer(429, "quota_exceeded", "eng", user, 0, false, 1);
    }
    will_return(__wrap_tg_db_denials_add, TG_ERROR);
    assert_int_equal(tg_denials_flush(), TG_ERROR);
    for (int i = 0; i < TG_DENIALS_MAX_KEYS + 50; i++) {
        snprintf(user, sizeof(user), "live-%d", i);
        answer(429, "quota_exceeded", "eng", user, 0, false, 1);
    }
    assert_int_equal(tg_denials_unsent(), 10 + TG_DENIALS_MAX_KEYS + 50);
    will_return(__wrap_tg_db_denials_add, TG_OK);
    will_return(__wrap_tg_db_denials_add, TG_OK);
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 3);
    assert_int_equal(row_count(calls[1].rows), 10);
    assert_int_equal(row_count(calls[2].rows), TG_DENIALS_MAX_KEYS + 1);
    assert_non_null(
        strstr(calls[2].rows, "\"reason\":\"overflow\",\"http_status\":0,\"requests\":50"));
    assert_int_equal(tg_denials_unsent(), 0);
}

static void test_refused_batch_dropped(void **state)
{
    (void)state;
    answer(400, "rejected", "eng", "alice", 7, false, 3);
    /* the database refused the statement: resending would fail the same way */
    will_return(__wrap_tg_db_denials_add, TG_DECLINED);
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 1);
    assert_int_equal(tg_denials_unsent(), 0);
    assert_int_equal(tg_denials_flush(), TG_OK);
    assert_int_equal(n_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_day),
        cmocka_unit_test_setup_teardown(test_day_keys, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_counting, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_json_escapes, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_when_full, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_long_values, table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_record, process_setup, process_teardown),
        cmocka_unit_test_setup_teardown(test_swap, process_setup, process_teardown),
        cmocka_unit_test_setup_teardown(test_kept_while_database_down, process_setup,
                                        process_teardown),
        cmocka_unit_test_setup_teardown(test_kept_bounded, process_setup, process_teardown),
        cmocka_unit_test_setup_teardown(test_refused_batch_dropped, process_setup,
                                        process_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
